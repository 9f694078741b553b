//! `omnibus serve` runs the NATS listener beside HTTP and Kafka: its bound address is in the
//! ready line and in `listeners.json`, and `--nats-listen off` turns it off (as every door but
//! HTTP can be).

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
        .write_all(
            b"CONNECT {\"verbose\":false}\r\nSUB greet 1\r\nPUB greet 5\r\nhello\r\nPING\r\n",
        )
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

/// Every door but HTTP can be turned off: the broker then serves HTTP alone, and the ready
/// line and `listeners.json` say which doors are off.
#[test]
fn every_door_but_http_can_be_turned_off() {
    let directory = tempfile::tempdir().unwrap();
    let data_dir = directory.path().join("data");
    let log = directory.path().join("broker.log");
    let output = std::fs::File::create(&log).unwrap();
    let mut child = Command::new(BIN)
        .args(["serve", "--data-dir"])
        .arg(&data_dir)
        .args(["--http-listen", LISTEN_ANY_PORT])
        .args(["--kafka-listen", "off"])
        .args(["--nats-listen", "off"])
        .args(["--amqp-listen", "off"])
        .args(["--redis-listen", "off"])
        .env_remove("OMNIBUS_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(output)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let ready = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(line) = text
            .lines()
            .find(|line| line.starts_with("omnibus ready: "))
        {
            break line.to_string();
        }
        assert!(Instant::now() < deadline, "no ready line: {text}");
        std::thread::sleep(Duration::from_millis(20));
    };
    let listeners = listeners_json(&data_dir);
    let http = listeners["http"].as_str().unwrap().to_string();
    let mut health = std::net::TcpStream::connect(&http).unwrap();
    std::io::Write::write_all(
        &mut health,
        b"GET /health HTTP/1.1\r\nhost: omnibus\r\nconnection: close\r\n\r\n",
    )
    .unwrap();
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut health, &mut answer).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    for door in ["kafka", "nats", "amqp", "redis"] {
        assert!(ready.contains(&format!(" {door}=off")), "{ready}");
        assert!(listeners[door].is_null(), "{listeners}");
    }
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}
