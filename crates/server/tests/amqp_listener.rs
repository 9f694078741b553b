//! `omnibus serve` runs the AMQP 0-9-1 listener beside the others: its bound address is in
//! the ready line and in `listeners.json`, and `--amqp-listen off` turns it off.

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::ready::{ready_addresses_in_log, LISTEN_ANY_PORT};
use support::{Broker, BIN};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn listeners_json(data_dir: &std::path::Path) -> serde_json::Value {
    let text = std::fs::read_to_string(data_dir.join("listeners.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[tokio::test]
async fn the_amqp_listener_answers_the_protocol_header_and_is_listed() {
    let directory = tempfile::tempdir().unwrap();
    let data_dir = directory.path().join("data");
    let broker = Broker::start(&data_dir, directory.path().join("broker.log")).await;
    let address = broker
        .amqp_address
        .expect("the AMQP listener is on by default");
    assert_eq!(listeners_json(&data_dir)["amqp"], address.to_string());
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream.write_all(b"AMQP\x00\x00\x09\x01").await.unwrap();
    let mut header = [0u8; 11];
    tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut header))
        .await
        .unwrap()
        .unwrap();
    // A method frame on channel 0 carrying connection.start (class 10, method 10).
    assert_eq!(header[0], 1);
    assert_eq!(&header[1..3], &[0, 0]);
    assert_eq!(&header[7..11], &[0, 10, 0, 10]);
}

#[test]
fn amqp_listen_off_runs_without_the_listener() {
    let directory = tempfile::tempdir().unwrap();
    let data_dir = directory.path().join("data");
    let log = directory.path().join("broker.log");
    let output = std::fs::File::create(&log).unwrap();
    let mut child = Command::new(BIN)
        .args(["serve", "--data-dir"])
        .arg(&data_dir)
        .args(["--http-listen", LISTEN_ANY_PORT])
        .args(["--kafka-listen", LISTEN_ANY_PORT])
        .args(["--nats-listen", LISTEN_ANY_PORT])
        .env_remove("OMNIBUS_CONFIG")
        .env_remove("OMNIBUS_NATS_LISTEN")
        .env("OMNIBUS_AMQP_LISTEN", "off")
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
    assert_eq!(addresses.amqp, None);
    assert!(text.contains(" amqp=off"), "{text}");
    assert!(listeners_json(&data_dir)["amqp"].is_null());
}
