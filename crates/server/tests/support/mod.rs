//! A broker process for integration tests: free loopback ports, a fresh or reused data
//! folder, a bounded wait for readiness, kill on drop. Shared by the newer server tests.

#![allow(dead_code)]

pub mod process;

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_omnibus");
const READY_TIMEOUT: Duration = Duration::from_secs(30);

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
        .port()
}

/// Whether this build of `serve` has a Kafka listener to move off its default port.
fn serve_has_kafka_flag() -> bool {
    Command::new(BIN)
        .args(["serve", "--help"])
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).contains("--kafka-listen"))
        .unwrap_or(false)
}

pub struct Broker {
    child: Option<Child>,
    pub http_port: u16,
    pub log: PathBuf,
}

impl Broker {
    /// Starts `omnibus serve` on `data_dir` and waits until `/health` answers.
    pub async fn start(data_dir: &Path, log: PathBuf) -> Broker {
        Broker::start_with_args(data_dir, log, &[]).await
    }

    /// [`Broker::start`] with more `serve` arguments (`--config FILE`).
    pub async fn start_with_args(data_dir: &Path, log: PathBuf, args: &[&str]) -> Broker {
        let http_port = free_port();
        let mut command = Command::new(BIN);
        command
            .arg("serve")
            .args(args)
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--http-listen")
            .arg(format!("127.0.0.1:{http_port}"))
            .env_remove("OMNIBUS_CONFIG")
            .env_remove("OMNIBUS_DATA_DIR")
            .env_remove("OMNIBUS_HTTP_LISTEN")
            .env_remove("OMNIBUS_KAFKA_LISTEN")
            .stdin(Stdio::null());
        if serve_has_kafka_flag() {
            command
                .arg("--kafka-listen")
                .arg(format!("127.0.0.1:{}", free_port()));
        }
        let output = File::options()
            .create(true)
            .append(true)
            .open(&log)
            .expect("open the broker log");
        command
            .stdout(output.try_clone().expect("clone the log handle"))
            .stderr(output);
        let child = command.spawn().expect("start omnibus serve");
        let broker = Broker {
            child: Some(child),
            http_port,
            log,
        };
        let client = reqwest::Client::new();
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let health = client.get(format!("{}/health", broker.base())).send().await;
            if health.is_ok_and(|r| r.status().is_success()) {
                return broker;
            }
            assert!(
                Instant::now() < deadline,
                "the broker did not become ready; log:\n{}",
                std::fs::read_to_string(&broker.log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    /// The broker's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILL: the broker gets no chance to flush anything.
    pub fn kill_9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill_9();
    }
}
