//! `omnibus serve` runs the NATS listener beside HTTP and Kafka: its bound address is in the
//! ready line and in `listeners.json`, and `--nats-listen off` turns it off.

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::ready::{ready_addresses_in_log, LISTEN_ANY_PORT};
use support::{Broker, BIN};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

fn listeners_json(data_dir: &std::path::Path) -> serde_json::Value {
    let text = std::fs::read_to_string(data_dir.join("listeners.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[tokio::test]
async fn the_nats_listener_answers_and_is_listed() {
    let directory = tempfile::tempdir().unwrap();
    let data_dir = directory.path().join("data");
    let broker = Broker::start(&data_dir, directory.path().join("broker.log")).await;
    let address = broker
        .nats_address
        .expect("the NATS listener is on by default");
    assert_eq!(listeners_json(&data_dir)["nats"], address.to_string());
    let stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let (reader, mut writer) = stream.into_split();
    let mut lines = BufReader::new(reader).lines();
    let info = lines.next_line().await.unwrap().unwrap();
    assert!(info.starts_with("INFO {"), "{info}");
    writer
        .write_all(b"CONNECT {}\r\nSUB greet 1\r\nPUB greet 5\r\nhello\r\nPING\r\n")
        .await
        .unwrap();
    assert_eq!(lines.next_line().await.unwrap().unwrap(), "MSG greet 1 5");
    assert_eq!(lines.next_line().await.unwrap().unwrap(), "hello");
    assert_eq!(lines.next_line().await.unwrap().unwrap(), "PONG");
}

#[test]
fn nats_listen_off_runs_without_the_listener() {
    let directory = tempfile::tempdir().unwrap();
    let data_dir = directory.path().join("data");
    let log = directory.path().join("broker.log");
    let output = std::fs::File::create(&log).unwrap();
    let mut child = Command::new(BIN)
        .args(["serve", "--data-dir"])
        .arg(&data_dir)
        .args(["--http-listen", LISTEN_ANY_PORT])
        .args(["--kafka-listen", LISTEN_ANY_PORT])
        .args(["--nats-listen", "off"])
        .args(["--amqp-listen", LISTEN_ANY_PORT])
        .env_remove("OMNIBUS_CONFIG")
        .env_remove("OMNIBUS_NATS_LISTEN")
        .env_remove("OMNIBUS_AMQP_LISTEN")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(output)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let addresses = loop {
        if let Some(addresses) = ready_addresses_in_log(&log, 0) {
            break addresses;
        }
        assert!(Instant::now() < deadline, "no ready line");
        std::thread::sleep(Duration::from_millis(20));
    };
    let text = std::fs::read_to_string(&log).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(addresses.nats, None);
    assert!(text.contains(" nats=off"), "{text}");
    assert!(listeners_json(&data_dir)["nats"].is_null());
}
