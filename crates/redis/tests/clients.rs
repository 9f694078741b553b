//! CLIENT LIST and CLIENT KILL across connections, over real sockets: every connection
//! listed with its name, flags and last command, the filters, and killed connections
//! closed — one blocked in BLPOP among them.

#[allow(dead_code)]
mod support;

use std::time::Duration;

use redis::cmd;
use support::Broker;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A raw connection that names itself and says its id.
async fn raw(broker: &Broker, name: &str) -> (TcpStream, u64) {
    let mut stream = TcpStream::connect(broker.address).await.unwrap();
    stream
        .write_all(format!("CLIENT SETNAME {name}\r\nCLIENT ID\r\n").as_bytes())
        .await
        .unwrap();
    let mut reply = Vec::new();
    while !reply.ends_with(b"\r\n") || reply.iter().filter(|&&b| b == b'\n').count() < 2 {
        let mut byte = [0u8; 1];
        stream.read_exact(&mut byte).await.unwrap();
        reply.push(byte[0]);
    }
    let text = String::from_utf8(reply).unwrap();
    let id = text
        .lines()
        .nth(1)
        .unwrap()
        .trim_start_matches(':')
        .parse()
        .unwrap();
    (stream, id)
}

/// Reads until the broker closes `stream` (at most 10 s); what came before.
async fn closed(stream: &mut TcpStream) -> String {
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut rest))
        .await
        .expect("closed within 10 s")
        .unwrap();
    String::from_utf8_lossy(&rest).into_owned()
}

async fn list(con: &mut redis::aio::MultiplexedConnection, filter: &[&str]) -> Vec<String> {
    let mut command = cmd("CLIENT");
    command.arg("LIST");
    for word in filter {
        command.arg(*word);
    }
    let text: String = command.query_async(con).await.unwrap();
    text.lines().map(str::to_string).collect()
}

fn field<'a>(line: &'a str, name: &str) -> &'a str {
    line.split(' ')
        .find_map(|pair| pair.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} in {line}"))
}

#[tokio::test]
async fn client_list_shows_every_connection_and_client_kill_closes_them() {
    let broker = Broker::start().await;
    let (mut worker, worker_id) = raw(&broker, "worker").await;
    let (mut listener, listener_id) = raw(&broker, "listener").await;
    listener.write_all(b"SUBSCRIBE news\r\n").await.unwrap();
    let (mut blocked, blocked_id) = raw(&broker, "blocked").await;
    blocked.write_all(b"BLPOP jobs 0\r\n").await.unwrap();
    let mut admin = broker.connect().await;

    // Every connection, oldest first, each with what it did last.
    let started = std::time::Instant::now();
    let lines = loop {
        let lines = list(&mut admin, &[]).await;
        let subscribed = lines
            .iter()
            .any(|l| field(l, "name") == "listener" && field(l, "sub") == "1");
        let blocking = lines
            .iter()
            .any(|l| field(l, "name") == "blocked" && field(l, "cmd") == "blpop");
        if subscribed && blocking {
            break lines;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{lines:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let names: Vec<&str> = lines.iter().map(|l| field(l, "name")).collect();
    assert_eq!(names[..3], ["worker", "listener", "blocked"], "{lines:?}");
    assert_eq!(lines.len(), 4, "{lines:?}");
    let own = &lines[3];
    assert_eq!(field(own, "cmd"), "client");
    assert_eq!(field(own, "flags"), "N");
    assert_eq!(field(&lines[1], "flags"), "P");
    assert_eq!(field(&lines[0], "id"), worker_id.to_string());
    assert!(field(&lines[0], "addr").starts_with("127.0.0.1:"));

    // Filters.
    let pubsub = list(&mut admin, &["TYPE", "pubsub"]).await;
    assert_eq!(pubsub.len(), 1);
    assert_eq!(field(&pubsub[0], "id"), listener_id.to_string());
    let by_id = list(&mut admin, &["ID", &worker_id.to_string(), "999999"]).await;
    assert_eq!(by_id.len(), 1);
    assert_eq!(field(&by_id[0], "name"), "worker");
    let error = cmd("CLIENT")
        .arg("LIST")
        .arg("TYPE")
        .arg("bogus")
        .query_async::<String>(&mut admin)
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("Unknown client type 'bogus'"),
        "{error}"
    );

    // CLIENT KILL ID closes a connection blocked in BLPOP; the others stay.
    let killed: i64 = cmd("CLIENT")
        .arg("KILL")
        .arg("ID")
        .arg(blocked_id)
        .query_async(&mut admin)
        .await
        .unwrap();
    assert_eq!(killed, 1);
    assert_eq!(closed(&mut blocked).await, "", "no reply to the BLPOP");
    // The old form, by address.
    let worker_address = worker.local_addr().unwrap().to_string();
    let ok: String = cmd("CLIENT")
        .arg("KILL")
        .arg(&worker_address)
        .query_async(&mut admin)
        .await
        .unwrap();
    assert_eq!(ok, "OK");
    closed(&mut worker).await;
    let error = cmd("CLIENT")
        .arg("KILL")
        .arg(&worker_address)
        .query_async::<String>(&mut admin)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("No such client"), "{error}");

    // TYPE normal leaves out the connection asking (SKIPME yes) and the subscriber.
    let killed: i64 = cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("normal")
        .query_async(&mut admin)
        .await
        .unwrap();
    assert_eq!(killed, 0);
    let killed: i64 = cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("pubsub")
        .query_async(&mut admin)
        .await
        .unwrap();
    assert_eq!(killed, 1);
    closed(&mut listener).await;
    let remaining = list(&mut admin, &[]).await;
    assert_eq!(remaining.len(), 1, "{remaining:?}");
    let error = cmd("CLIENT")
        .arg("KILL")
        .arg("ID")
        .arg(0)
        .query_async::<i64>(&mut admin)
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("client-id should be greater than 0"),
        "{error}"
    );
    broker.stop().await;
}
