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

const UNBLOCKED: &str = "-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n";

/// Asks CLIENT UNBLOCK until the connection is blocked (at most 10 s); its answer then.
async fn unblock(con: &mut redis::aio::MultiplexedConnection, id: u64, how: &str) {
    for _ in 0..1000 {
        let unblocked: i64 = cmd("CLIENT")
            .arg("UNBLOCK")
            .arg(id)
            .arg(how)
            .query_async(con)
            .await
            .unwrap();
        if unblocked == 1 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("connection {id} never blocked");
}

/// Sends `command` on the raw connection `id`, unblocks it `how`, and answers its reply line.
async fn unblocked(
    blocked: &mut TcpStream,
    admin: &mut redis::aio::MultiplexedConnection,
    (id, how): (u64, &str),
    command: &[u8],
) -> String {
    blocked.write_all(command).await.unwrap();
    unblock(admin, id, how).await;
    line(blocked).await
}

/// Reads one reply line from a raw connection (at most 10 s).
async fn line(stream: &mut TcpStream) -> String {
    let mut reply = Vec::new();
    let read = async {
        while !reply.ends_with(b"\r\n") {
            let mut byte = [0u8; 1];
            stream.read_exact(&mut byte).await.unwrap();
            reply.push(byte[0]);
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("no reply");
    String::from_utf8(reply).unwrap()
}

#[tokio::test]
async fn client_unblock_ends_a_blocked_command_as_its_timeout_or_with_an_error() {
    let broker = Broker::start().await;
    let mut admin = broker.connect().await;
    let (mut blocked, id) = raw(&broker, "waiter").await;
    // Nothing blocked yet, or no such connection: 0.
    let none: (i64, i64) = redis::pipe()
        .cmd("CLIENT")
        .arg("UNBLOCK")
        .arg(id)
        .cmd("CLIENT")
        .arg("UNBLOCK")
        .arg(999_999)
        .query_async(&mut admin)
        .await
        .unwrap();
    assert_eq!(none, (0, 0));

    // BLPOP for ever, ended as its timeout would: a nil array. A later push stays.
    let reply = unblocked(
        &mut blocked,
        &mut admin,
        (id, "TIMEOUT"),
        b"BLPOP jobs 0\r\n",
    )
    .await;
    assert_eq!(reply, "*-1\r\n");
    let _: i64 = cmd("RPUSH")
        .arg("jobs")
        .arg("a")
        .query_async(&mut admin)
        .await
        .unwrap();
    let length: i64 = cmd("LLEN")
        .arg("jobs")
        .query_async(&mut admin)
        .await
        .unwrap();
    assert_eq!(length, 1, "the unblocked BLPOP took nothing");

    // XREAD BLOCK, ended with the error.
    let command = b"XREAD BLOCK 0 STREAMS events $\r\n";
    let reply = unblocked(&mut blocked, &mut admin, (id, "ERROR"), command).await;
    assert_eq!(reply, UNBLOCKED);

    // XREADGROUP BLOCK: ended, it leaves nothing pending with the consumer.
    let () = cmd("XGROUP")
        .arg("CREATE")
        .arg("events")
        .arg("workers")
        .arg("$")
        .arg("MKSTREAM")
        .query_async(&mut admin)
        .await
        .unwrap();
    let command = b"XREADGROUP GROUP workers w1 BLOCK 0 STREAMS events >\r\n";
    let reply = unblocked(&mut blocked, &mut admin, (id, "TIMEOUT"), command).await;
    assert_eq!(reply, "*-1\r\n");
    let _: String = cmd("XADD")
        .arg("events")
        .arg("*")
        .arg("n")
        .arg(1)
        .query_async(&mut admin)
        .await
        .unwrap();
    let pending: redis::Value = cmd("XPENDING")
        .arg("events")
        .arg("workers")
        .query_async(&mut admin)
        .await
        .unwrap();
    let redis::Value::Array(summary) = pending else {
        panic!("{pending:?}");
    };
    assert_eq!(summary[0], redis::Value::Int(0), "nothing pending");

    // BZPOPMIN too; and the connection goes on answering.
    let command = b"BZPOPMIN scores 0\r\nPING\r\n";
    let reply = unblocked(&mut blocked, &mut admin, (id, "ERROR"), command).await;
    assert_eq!(reply, UNBLOCKED);
    assert_eq!(line(&mut blocked).await, "+PONG\r\n");

    // Redis's refusals.
    for (words, refusal) in [
        (vec!["UNBLOCK", "abc"], "value is not an integer"),
        (
            vec!["UNBLOCK", "1", "SOON"],
            "reason should be TIMEOUT or ERROR",
        ),
        (
            vec!["UNBLOCK", "1", "TIMEOUT", "x"],
            "unknown subcommand or wrong number",
        ),
    ] {
        let error = cmd("CLIENT")
            .arg(&words)
            .query_async::<i64>(&mut admin)
            .await
            .unwrap_err();
        assert!(error.to_string().contains(refusal), "{words:?}: {error}");
    }
    broker.stop().await;
}
