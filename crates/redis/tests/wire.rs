//! Raw bytes on a socket where no client library would send them: inline commands, exact
//! error lines, protocol errors that close only the offending connection.

#[allow(dead_code)]
mod support;

use std::time::Duration;

use support::{exchange, Broker};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test]
async fn inline_commands_and_exact_errors() {
    let broker = Broker::start().await;
    let mut stream = TcpStream::connect(broker.address).await.unwrap();
    exchange(&mut stream, b"PING\r\n", b"+PONG\r\n").await;
    exchange(
        &mut stream,
        b"SET greeting \"hello world\"\r\nGET greeting\n",
        b"+OK\r\n$11\r\nhello world\r\n",
    )
    .await;
    exchange(
        &mut stream,
        b"*1\r\n$3\r\nGET\r\n",
        b"-ERR wrong number of arguments for 'get' command\r\n",
    )
    .await;
    exchange(
        &mut stream,
        b"foo a b\r\n",
        b"-ERR unknown command 'foo', with args beginning with: 'a' 'b' \r\n",
    )
    .await;
    exchange(&mut stream, b"MULTI\r\nSET a 1\r\nBAD\r\nEXEC\r\n", b"+OK\r\n+QUEUED\r\n-ERR unknown command 'BAD', with args beginning with: \r\n-EXECABORT Transaction discarded because of previous errors.\r\n").await;
    exchange(&mut stream, b"EXEC\r\n", b"-ERR EXEC without MULTI\r\n").await;
    exchange(
        &mut stream,
        b"HELLO 4\r\n",
        b"-NOPROTO unsupported protocol version\r\n",
    )
    .await;
    exchange(
        &mut stream,
        b"MSET a\r\n",
        b"-ERR wrong number of arguments for 'mset' command\r\n",
    )
    .await;
    exchange(
        &mut stream,
        b"MSET a 1 b\r\n",
        b"-ERR wrong number of arguments for 'mset' command\r\n",
    )
    .await;
    exchange(&mut stream, b"QUIT\r\n", b"+OK\r\n").await;
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).await.unwrap();
    assert!(rest.is_empty());
    broker.stop().await;
}

#[tokio::test]
async fn a_huge_bulk_length_closes_only_that_connection() {
    let broker = Broker::start().await;
    let mut bystander = TcpStream::connect(broker.address).await.unwrap();
    exchange(&mut bystander, b"SET k v\r\n", b"+OK\r\n").await;
    let mut offender = TcpStream::connect(broker.address).await.unwrap();
    // 1 GiB announced: refused from the header, before any of it is buffered.
    exchange(
        &mut offender,
        b"*2\r\n$3\r\nGET\r\n$1073741824\r\n",
        b"-ERR Protocol error: invalid bulk length\r\n",
    )
    .await;
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), offender.read_to_end(&mut rest))
        .await
        .expect("closed within 5 s")
        .unwrap();
    assert!(rest.is_empty());
    exchange(&mut bystander, b"GET k\r\n", b"$1\r\nv\r\n").await;
    broker.stop().await;
}

/// Past `connections_max` a connection is told Redis's words for `maxclients` and closed;
/// the connections in hand go on, and a closed one frees its place.
#[tokio::test]
async fn a_connection_past_the_bound_is_told_max_number_of_clients_reached() {
    let dir = tempfile::tempdir().unwrap();
    let config = omnibus_redis::RedisConfig {
        connections_max: 1,
        ..Default::default()
    };
    let broker = Broker::start_in(dir.path(), config).await;
    let mut first = TcpStream::connect(broker.address).await.unwrap();
    exchange(&mut first, b"PING\r\n", b"+PONG\r\n").await;

    let mut refused = TcpStream::connect(broker.address).await.unwrap();
    let mut words = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), refused.read_to_end(&mut words))
        .await
        .expect("closed within 5 s")
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&words),
        "-ERR max number of clients reached\r\n"
    );
    exchange(&mut first, b"PING\r\n", b"+PONG\r\n").await;

    drop(first);
    // The session notices the close and gives its place back.
    let started = std::time::Instant::now();
    loop {
        let mut next = TcpStream::connect(broker.address).await.unwrap();
        next.write_all(b"PING\r\n").await.unwrap();
        let mut reply = [0; 7];
        let read = tokio::time::timeout(Duration::from_secs(5), next.read_exact(&mut reply)).await;
        if matches!(read, Ok(Ok(_))) && &reply == b"+PONG\r\n" {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the place never came back"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
