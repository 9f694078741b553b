//! Pub/sub through the live router: the `redis` crate's subscriber gets PUBLISHes on its
//! channels and its glob patterns, messages routed by another door reach it, and RESP2's
//! subscribed mode refuses other commands with Redis's words.

#[allow(dead_code)]
mod support;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use omnibus_engine::router::LiveMessage;
use redis::cmd;
use support::{exchange, Broker};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn next_message(
    stream: &mut (impl futures_util::Stream<Item = redis::Msg> + Unpin),
) -> redis::Msg {
    tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .expect("a message within 5 s")
        .expect("the stream is open")
}

#[tokio::test]
async fn publish_reaches_channel_and_pattern_subscribers_and_other_doors_reach_them_too() {
    let broker = Broker::start().await;
    let client = redis::Client::open(broker.url()).unwrap();
    let mut subscriber = client.get_async_pubsub().await.unwrap();
    subscriber.subscribe("orders.created").await.unwrap();
    subscriber.psubscribe("orders.*").await.unwrap();
    let mut messages = subscriber.on_message();
    let mut publisher = broker.connect().await;
    let receivers: i64 = cmd("PUBLISH")
        .arg("orders.created")
        .arg("o-1")
        .query_async(&mut publisher)
        .await
        .unwrap();
    assert_eq!(receivers, 2);
    let mut seen = Vec::new();
    for _ in 0..2 {
        let message = next_message(&mut messages).await;
        let payload: String = message.get_payload().unwrap();
        seen.push((
            message.from_pattern(),
            message.get_channel_name().to_string(),
            payload,
        ));
    }
    seen.sort();
    assert_eq!(
        seen,
        vec![
            (false, "orders.created".to_string(), "o-1".to_string()),
            (true, "orders.created".to_string(), "o-1".to_string()),
        ]
    );
    // The glob is Redis's: `orders.*` matches across dots, and not `ordersX`.
    let receivers: i64 = cmd("PUBLISH")
        .arg("orders.eu.paid")
        .arg("o-2")
        .query_async(&mut publisher)
        .await
        .unwrap();
    assert_eq!(receivers, 1);
    let message = next_message(&mut messages).await;
    assert_eq!(message.get_channel_name(), "orders.eu.paid");
    let nobody: i64 = cmd("PUBLISH")
        .arg("invoices.created")
        .arg("x")
        .query_async(&mut publisher)
        .await
        .unwrap();
    assert_eq!(nobody, 0);
    // A message routed by another door (what a NATS PUB does) reaches the Redis subscriber.
    broker.engine.live_router().publish(
        Arc::new(LiveMessage {
            subject: "orders.created".into(),
            payload: Bytes::from_static(b"from-nats"),
            ..LiveMessage::default()
        }),
        None,
    );
    let mut payloads = Vec::new();
    for _ in 0..2 {
        let payload: String = next_message(&mut messages).await.get_payload().unwrap();
        payloads.push(payload);
    }
    assert_eq!(payloads, vec!["from-nats", "from-nats"]);
    // A channel that is not a subject is refused, not silently renamed.
    let error = cmd("PUBLISH")
        .arg("has space")
        .arg("x")
        .query_async::<i64>(&mut publisher)
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some("ERR"));
    drop(messages);
    broker.stop().await;
}

#[tokio::test]
async fn resp2_subscribed_mode_allows_only_pubsub_commands() {
    let broker = Broker::start().await;
    let mut stream = TcpStream::connect(broker.address).await.unwrap();
    let mut expect =
        async |request: &[u8], expected: &[u8]| exchange(&mut stream, request, expected).await;
    expect(
        b"SUBSCRIBE a b\r\n",
        b"*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n*3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:2\r\n",
    )
    .await;
    expect(b"GET k\r\n", b"-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n").await;
    expect(b"PING\r\n", b"*2\r\n$4\r\npong\r\n$0\r\n\r\n").await;
    expect(b"UNSUBSCRIBE\r\n", b"*3\r\n$11\r\nunsubscribe\r\n$1\r\na\r\n:1\r\n*3\r\n$11\r\nunsubscribe\r\n$1\r\nb\r\n:0\r\n").await;
    expect(b"GET k\r\n", b"$-1\r\n").await;
    broker.stop().await;
}

/// RESP3, as redis-server's pub/sub test "unsubscribe inside multi" reads it: an
/// UNSUBSCRIBE of one channel inside MULTI is one element of EXEC's answer, its push itself
/// (one of several channels stays one array of pushes, where Redis breaks the count).
#[tokio::test]
async fn an_unsubscribe_inside_multi_is_one_element_of_execs_answer() {
    let broker = Broker::start().await;
    let mut stream = TcpStream::connect(broker.address).await.unwrap();
    // HELLO's map is long: read up to the answer of the PING sent after it.
    stream
        .write_all(b"HELLO 3\r\nPING hello-done\r\n")
        .await
        .unwrap();
    let mut seen = Vec::new();
    while !seen.ends_with(b"$10\r\nhello-done\r\n") {
        let mut chunk = [0; 4096];
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut chunk))
            .await
            .expect("HELLO's answer")
            .unwrap();
        assert!(read > 0, "closed after HELLO 3");
        seen.extend_from_slice(&chunk[..read]);
    }
    let mut expect =
        async |request: &[u8], expected: &[u8]| exchange(&mut stream, request, expected).await;
    expect(
        b"SUBSCRIBE foo bar baz\r\n",
        b">3\r\n$9\r\nsubscribe\r\n$3\r\nfoo\r\n:1\r\n>3\r\n$9\r\nsubscribe\r\n$3\r\nbar\r\n:2\r\n>3\r\n$9\r\nsubscribe\r\n$3\r\nbaz\r\n:3\r\n",
    )
    .await;
    expect(b"MULTI\r\n", b"+OK\r\n").await;
    for queued in ["PING abc", "UNSUBSCRIBE bar", "UNSUBSCRIBE baz", "PING def"] {
        expect(format!("{queued}\r\n").as_bytes(), b"+QUEUED\r\n").await;
    }
    expect(
        b"EXEC\r\n",
        b"*4\r\n$3\r\nabc\r\n>3\r\n$11\r\nunsubscribe\r\n$3\r\nbar\r\n:2\r\n>3\r\n$11\r\nunsubscribe\r\n$3\r\nbaz\r\n:1\r\n$3\r\ndef\r\n",
    )
    .await;
    broker.stop().await;
}

#[tokio::test]
async fn pubsub_channels_numsub_and_numpat_count_redis_subscribers() {
    let broker = Broker::start().await;
    let client = redis::Client::open(broker.url()).unwrap();
    let mut first = client.get_async_pubsub().await.unwrap();
    first.subscribe("a.b").await.unwrap();
    first.subscribe("x.y").await.unwrap();
    let mut second = client.get_async_pubsub().await.unwrap();
    second.subscribe("a.b").await.unwrap();
    second.psubscribe("news.*").await.unwrap();
    let mut con = broker.connect().await;
    let mut channels: Vec<String> = redis::cmd("PUBSUB")
        .arg("CHANNELS")
        .query_async(&mut con)
        .await
        .unwrap();
    channels.sort();
    assert_eq!(channels, ["a.b", "x.y"]);
    let matching: Vec<String> = redis::cmd("PUBSUB")
        .arg("CHANNELS")
        .arg("a.*")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(matching, ["a.b"]);
    let counts: Vec<(String, i64)> = redis::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg("a.b")
        .arg("x.y")
        .arg("none")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(
        counts,
        vec![("a.b".into(), 2), ("x.y".into(), 1), ("none".into(), 0)]
    );
    let patterns: i64 = redis::cmd("PUBSUB")
        .arg("NUMPAT")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(patterns, 1);
    // A subscriber that goes away is no longer counted.
    drop(second);
    let mut left = 2;
    for _ in 0..100 {
        let counts: Vec<(String, i64)> = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg("a.b")
            .query_async(&mut con)
            .await
            .unwrap();
        left = counts[0].1;
        if left == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(left, 1);
    broker.stop().await;
}
