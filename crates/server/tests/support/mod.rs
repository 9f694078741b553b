//! A broker process for integration tests: loopback ports the broker picks itself (read back
//! from its ready line), a fresh or reused data folder, a bounded wait for readiness, kill on
//! drop. Shared by the newer server tests.

#![allow(dead_code)]

pub mod crash;
pub mod process;
pub mod ready;

use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ready::{log_length, ready_addresses_in_log, LISTEN_ANY_PORT};

pub const BIN: &str = env!("CARGO_BIN_EXE_omnibus");
const READY_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Broker {
    child: Option<Child>,
    pub http_address: SocketAddr,
    pub kafka_address: SocketAddr,
    /// `None` when started with `--nats-listen off`.
    pub nats_address: Option<SocketAddr>,
    /// `None` when started with `--amqp-listen off`.
    pub amqp_address: Option<SocketAddr>,
    /// The Redis listener's bound address (the tests turn it on; it is off by default).
    pub redis_address: Option<SocketAddr>,
    pub log: PathBuf,
}

impl Broker {
    /// Starts `omnibus serve` on `data_dir` and waits until `/health` answers.
    pub async fn start(data_dir: &Path, log: PathBuf) -> Broker {
        Broker::start_with_args(data_dir, log, &[]).await
    }

    /// [`Broker::start`] with more `serve` arguments (`--config FILE`). Every listener binds
    /// port 0; the bound addresses come from the ready line (a restart gets new ones).
    pub async fn start_with_args(data_dir: &Path, log: PathBuf, args: &[&str]) -> Broker {
        // A caller may reuse a log file across starts: read only what this start writes.
        let log_start = log_length(&log);
        let output = File::options()
            .create(true)
            .append(true)
            .open(&log)
            .expect("open the broker log");
        let mut child = Command::new(BIN)
            .arg("serve")
            .args(args)
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--http-listen", LISTEN_ANY_PORT])
            .args(["--kafka-listen", LISTEN_ANY_PORT])
            .args(["--nats-listen", LISTEN_ANY_PORT])
            .args(["--amqp-listen", LISTEN_ANY_PORT])
            .args(["--redis-listen", LISTEN_ANY_PORT])
            .env_remove("OMNIBUS_CONFIG")
            .env_remove("OMNIBUS_DATA_DIR")
            .env_remove("OMNIBUS_HTTP_LISTEN")
            .env_remove("OMNIBUS_KAFKA_LISTEN")
            .env_remove("OMNIBUS_NATS_LISTEN")
            .env_remove("OMNIBUS_AMQP_LISTEN")
            .env_remove("OMNIBUS_REDIS_LISTEN")
            .stdin(Stdio::null())
            .stdout(output.try_clone().expect("clone the log handle"))
            .stderr(output)
            .spawn()
            .expect("start omnibus serve");
        let deadline = Instant::now() + READY_TIMEOUT;
        let addresses = loop {
            if let Some(addresses) = ready_addresses_in_log(&log, log_start) {
                break addresses;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "omnibus serve exited with {status} before it was ready; log:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "omnibus serve printed no ready line within {READY_TIMEOUT:?}; log:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let broker = Broker {
            child: Some(child),
            http_address: addresses.http,
            kafka_address: addresses.kafka,
            nats_address: addresses.nats,
            amqp_address: addresses.amqp,
            redis_address: addresses.redis,
            log,
        };
        // The ready line comes after the listeners are serving; /health must answer now.
        let health = reqwest::Client::new()
            .get(format!("{}/health", broker.base()))
            .send()
            .await;
        assert!(
            health.is_ok_and(|r| r.status().is_success()),
            "the broker printed its ready line but /health did not answer 200; log:\n{}",
            std::fs::read_to_string(&broker.log).unwrap_or_default()
        );
        broker
    }

    pub fn base(&self) -> String {
        format!("http://{}", self.http_address)
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
