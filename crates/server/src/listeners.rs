//! `<data_dir>/listeners.json`: where a running `omnibus serve` listens, for scripts and tests.
//!
//! A listener configured with port 0 gets a port from the kernel, so whoever started the
//! broker cannot know the address in advance. Probing for a free port and passing it in races
//! with every other process on the machine (the port can be taken between the probe and the
//! bind); binding port 0 and reading the bound address back cannot race. The ready line on
//! stderr carries the same addresses; this file saves scripts from parsing a log.
//!
//! The file is written once, after every listener is bound and the data folder is open, and
//! just before the ready line is printed: write to a temporary name, then rename, so a reader
//! sees either no file or a whole one. A clean shutdown removes it. After a crash it stays
//! behind with the dead process's id in `pid`; the next start replaces it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Serialize;

pub const FILE_NAME: &str = "listeners.json";
const TEMPORARY_NAME: &str = "listeners.json.tmp";

/// The file's content; its field names are a public format (documented in the README).
#[derive(Debug, Serialize)]
struct Listeners {
    pid: u32,
    http: String,
    /// `null` when the Kafka listener is off.
    kafka: Option<String>,
    /// `null` when the NATS listener is off.
    nats: Option<String>,
    /// `null` when the AMQP listener is off.
    amqp: Option<String>,
    /// `null` when the Redis listener is off (the default).
    redis: Option<String>,
}

/// The written file; remove it with [`ListenersFile::remove`] at a clean shutdown.
#[derive(Debug)]
pub struct ListenersFile {
    path: PathBuf,
}

impl ListenersFile {
    /// Writes the bound addresses into `data_dir`, replacing what a crashed broker left there.
    pub async fn write(
        data_dir: &Path,
        http: SocketAddr,
        kafka: Option<SocketAddr>,
        nats: Option<SocketAddr>,
        amqp: Option<SocketAddr>,
        redis: Option<SocketAddr>,
    ) -> anyhow::Result<ListenersFile> {
        let listeners = Listeners {
            pid: std::process::id(),
            http: http.to_string(),
            kafka: kafka.map(|address| address.to_string()),
            nats: nats.map(|address| address.to_string()),
            amqp: amqp.map(|address| address.to_string()),
            redis: redis.map(|address| address.to_string()),
        };
        let mut text = serde_json::to_string(&listeners)?;
        text.push('\n');
        let path = data_dir.join(FILE_NAME);
        let temporary = data_dir.join(TEMPORARY_NAME);
        // Not fsynced: the file describes this process only, and a crash makes it stale anyway.
        tokio::fs::write(&temporary, text)
            .await
            .with_context(|| format!("cannot write {}", temporary.display()))?;
        tokio::fs::rename(&temporary, &path)
            .await
            .with_context(|| format!("cannot rename {} to {FILE_NAME}", temporary.display()))?;
        Ok(ListenersFile { path })
    }

    /// Removes the file: the addresses in it are about to stop answering.
    pub async fn remove(self) -> anyhow::Result<()> {
        tokio::fs::remove_file(&self.path)
            .await
            .with_context(|| format!("cannot remove {}", self.path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_file_names_every_address_and_this_process_and_is_removed() {
        let directory = tempfile::tempdir().expect("temp dir");
        let http: SocketAddr = "127.0.0.1:41001".parse().expect("address");
        let kafka: SocketAddr = "127.0.0.1:41002".parse().expect("address");
        let nats: SocketAddr = "127.0.0.1:41003".parse().expect("address");
        // A stale file from a crashed broker is replaced.
        std::fs::write(directory.path().join(FILE_NAME), "{\"pid\": 1}").expect("stale file");

        let amqp: SocketAddr = "127.0.0.1:41004".parse().expect("address");
        let file = ListenersFile::write(
            directory.path(),
            http,
            Some(kafka),
            Some(nats),
            Some(amqp),
            Some("127.0.0.1:41005".parse().expect("address")),
        )
        .await
        .expect("write");
        let text = std::fs::read_to_string(directory.path().join(FILE_NAME)).expect("read");
        let value: serde_json::Value = serde_json::from_str(&text).expect("json");
        assert_eq!(value["http"], "127.0.0.1:41001");
        assert_eq!(value["kafka"], "127.0.0.1:41002");
        assert_eq!(value["nats"], "127.0.0.1:41003");
        assert_eq!(value["amqp"], "127.0.0.1:41004");
        assert_eq!(value["redis"], "127.0.0.1:41005");
        assert_eq!(value["pid"], std::process::id());
        assert!(!directory.path().join(TEMPORARY_NAME).exists());

        file.remove().await.expect("remove");
        assert!(!directory.path().join(FILE_NAME).exists());

        // A listener turned off is null.
        let file = ListenersFile::write(directory.path(), http, None, None, None, None)
            .await
            .expect("write");
        let text = std::fs::read_to_string(directory.path().join(FILE_NAME)).expect("read");
        let value: serde_json::Value = serde_json::from_str(&text).expect("json");
        assert!(value["kafka"].is_null());
        assert!(value["nats"].is_null());
        assert!(value["amqp"].is_null());
        assert!(value["redis"].is_null());
        file.remove().await.expect("remove");
    }
}
