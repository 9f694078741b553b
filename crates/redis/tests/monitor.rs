//! MONITOR over a real socket: the lines Redis sends for other clients' commands (quoted,
//! AUTH's secrets redacted, administration left out, a script's commands as `lua`), a
//! monitor's refusals of keyspace commands, MONITOR again answering nothing, and RESET
//! ending it.

#[allow(dead_code)]
mod support;

use std::time::Duration;

use support::Broker;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

struct Raw(BufReader<TcpStream>);

impl Raw {
    async fn connect(broker: &Broker) -> Raw {
        Raw(BufReader::new(
            TcpStream::connect(broker.address).await.unwrap(),
        ))
    }

    async fn send(&mut self, command: &str) {
        self.0
            .get_mut()
            .write_all(command.as_bytes())
            .await
            .unwrap();
    }

    async fn line(&mut self) -> String {
        let mut line = String::new();
        tokio::time::timeout(Duration::from_secs(10), self.0.read_line(&mut line))
            .await
            .expect("a line within 10 s")
            .unwrap();
        line.trim_end_matches("\r\n").to_string()
    }
}

/// A monitor line's client (`lua`, or `client` for a loopback address) and command; checks
/// the time (seconds with six decimals).
fn client_and_command(line: &str) -> (&str, &str) {
    let rest = line.strip_prefix('+').unwrap_or_else(|| panic!("{line:?}"));
    let (time, rest) = rest.split_once(' ').unwrap();
    let (seconds, micros) = time.split_once('.').unwrap();
    assert!(seconds.parse::<u64>().unwrap() > 1_700_000_000, "{line}");
    assert_eq!(micros.len(), 6, "{line}");
    let rest = rest
        .strip_prefix("[0 ")
        .unwrap_or_else(|| panic!("{line:?}"));
    let (client, command) = rest.split_once("] ").unwrap();
    if client == "lua" {
        return ("lua", command);
    }
    let port = client
        .strip_prefix("127.0.0.1:")
        .unwrap_or_else(|| panic!("{line:?}"));
    port.parse::<u16>().unwrap();
    ("client", command)
}

/// A loopback client's command in a monitor line.
fn command_of(line: &str) -> &str {
    let (client, command) = client_and_command(line);
    assert_eq!(client, "client", "{line}");
    command
}

#[tokio::test]
async fn a_monitor_sees_every_clients_commands_as_redis_shows_them() {
    let broker = Broker::start().await;
    let mut monitor = Raw::connect(&broker).await;
    monitor.send("MONITOR\r\n").await;
    assert_eq!(monitor.line().await, "+OK");

    let mut client = broker.connect().await;
    let _: () = redis::cmd("SET")
        .arg("k")
        .arg("a \"b\"\n")
        .query_async(&mut client)
        .await
        .unwrap();
    let _: Option<String> = redis::cmd("GET")
        .arg("k")
        .query_async(&mut client)
        .await
        .unwrap();
    let _ = redis::cmd("AUTH")
        .arg("user")
        .arg("secret")
        .query_async::<redis::Value>(&mut client)
        .await;
    // Administration is not shown.
    let _: redis::Value = redis::cmd("CONFIG")
        .arg("GET")
        .arg("maxmemory")
        .query_async(&mut client)
        .await
        .unwrap();
    // A script's commands follow its EVAL, as Redis's `[0 lua]` lines.
    let _: i64 = redis::cmd("EVAL")
        .arg("return redis.call('INCR', KEYS[1])")
        .arg(1)
        .arg("n")
        .query_async(&mut client)
        .await
        .unwrap();
    let _: String = redis::cmd("PING").query_async(&mut client).await.unwrap();

    let mut seen = Vec::new();
    loop {
        let line = monitor.line().await;
        let (from, command) = client_and_command(&line);
        // The client library's own set-up commands (CLIENT SETINFO …) come first.
        if command.starts_with("\"CLIENT\"") {
            continue;
        }
        let done = command == "\"PING\"";
        seen.push(format!("{from} {command}"));
        if done {
            break;
        }
    }
    assert_eq!(
        seen,
        [
            r#"client "SET" "k" "a \"b\"\n""#,
            r#"client "GET" "k""#,
            r#"client "AUTH" "(redacted)" "(redacted)""#,
            r#"client "EVAL" "return redis.call('INCR', KEYS[1])" "1" "n""#,
            r#"lua "INCR" "n""#,
            r#"client "PING""#,
        ]
    );

    // A monitor may not touch the keyspace; it may PING (and sees its own PING).
    monitor.send("GET k\r\n").await;
    assert_eq!(
        monitor.line().await,
        "-ERR Replica can't interact with the keyspace"
    );
    monitor.send("PING\r\n").await;
    assert_eq!(monitor.line().await, "+PONG");
    assert_eq!(command_of(&monitor.line().await), "\"PING\"");
    // MONITOR again answers nothing: the ECHO after it is the next reply.
    monitor.send("MONITOR\r\nECHO x\r\n").await;
    assert_eq!(monitor.line().await, "$1");
    assert_eq!(monitor.line().await, "x");
    let _ = command_of(&monitor.line().await); // the ECHO's own line

    // RESET ends it: the next client command shows no line, the next reply is the PING's.
    monitor.send("RESET\r\n").await;
    assert_eq!(monitor.line().await, "+RESET");
    let _: () = redis::cmd("SET")
        .arg("k")
        .arg("1")
        .query_async(&mut client)
        .await
        .unwrap();
    monitor.send("PING\r\n").await;
    assert_eq!(monitor.line().await, "+PONG");
    monitor.send("GET k\r\n").await;
    assert_eq!(monitor.line().await, "$1");
    broker.stop().await;
}
