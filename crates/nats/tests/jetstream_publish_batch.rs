//! JetStream publishes read together on one connection: stored as one append, each still
//! answered with its own PubAck, in order, with what one of them cannot pass refused alone
//! and a publish carrying `Nats-Expected-*` headers checked after the ones before it.

mod support;

use async_nats::jetstream::{self, stream};
use async_nats::HeaderMap;
use bytes::Bytes;
use support::{Broker, Raw};

/// Stored batches in `bytes` (RecordBatch v2: base offset, then the length of the rest).
fn count_batches(bytes: &[u8]) -> usize {
    let mut position = 0;
    let mut batches = 0;
    while position + 12 <= bytes.len() {
        let length = u32::from_be_bytes(bytes[position + 8..position + 12].try_into().unwrap());
        position += 12 + length as usize;
        batches += 1;
    }
    batches
}

async fn connected(broker: &Broker) -> Raw {
    let mut raw = broker.raw().await;
    raw.send("CONNECT {\"verbose\":false,\"headers\":true,\"no_responders\":true}\r\nSUB _INBOX.r.* 1\r\nPING\r\n")
        .await;
    assert_eq!(raw.line().await, "PONG");
    raw
}

#[tokio::test]
async fn publishes_written_at_once_share_one_append_and_get_their_own_pub_acks() {
    let broker = Broker::start().await;
    let js = jetstream::new(broker.client().await);
    js.create_stream(stream::Config {
        name: "PIPE".into(),
        subjects: vec!["pipe.>".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    let mut raw = connected(&broker).await;
    let mut burst = String::new();
    for n in 0..50 {
        let subject = if n % 2 == 0 { "pipe.even" } else { "pipe.odd" };
        let body = format!("m{n}");
        burst.push_str(&format!(
            "PUB {subject} _INBOX.r.{n} {}\r\n{body}\r\n",
            body.len()
        ));
    }
    raw.send(&burst).await;
    for n in 0..50u64 {
        let header = raw.line().await;
        assert!(
            header.starts_with(&format!("MSG _INBOX.r.{n} 1 ")),
            "{header}"
        );
        let ack: serde_json::Value = serde_json::from_str(&raw.line().await).unwrap();
        assert_eq!(ack["stream"], "PIPE", "{ack}");
        assert_eq!(ack["seq"], n + 1, "{ack}");
    }
    let stored = broker
        .engine
        .fetch_raw("PIPE", 0, 0, 1 << 20, 0)
        .await
        .unwrap();
    let batches = count_batches(&stored.batches);
    assert!(
        batches < 10,
        "50 publishes in one write became {batches} appends"
    );
    let stream = js.get_stream("PIPE").await.unwrap();
    for n in 0..50u64 {
        let message = stream.get_raw_message(n + 1).await.unwrap();
        assert_eq!(message.payload, Bytes::from(format!("m{n}")));
        let subject = if n % 2 == 0 { "pipe.even" } else { "pipe.odd" };
        assert_eq!(message.subject.as_str(), subject);
    }
}

#[tokio::test]
async fn a_refused_publish_among_pipelined_ones_leaves_the_others_stored() {
    let broker = Broker::start().await;
    let js = jetstream::new(broker.client().await);
    js.create_stream(stream::Config {
        name: "SMALL".into(),
        subjects: vec!["small".into()],
        max_message_size: 16,
        ..Default::default()
    })
    .await
    .unwrap();
    let first = js.publish("small", "one".into()).await.unwrap();
    let big = js
        .publish("small", Bytes::from(vec![b'x'; 64]))
        .await
        .unwrap();
    let last = js.publish("small", "two".into()).await.unwrap();
    assert_eq!(first.await.unwrap().sequence, 1);
    let error = big.await.unwrap_err();
    assert!(error.to_string().contains("10054"), "{error}");
    assert_eq!(last.await.unwrap().sequence, 2);
}

#[tokio::test]
async fn an_expected_last_sequence_sees_the_pipelined_publishes_before_it() {
    let broker = Broker::start().await;
    let js = jetstream::new(broker.client().await);
    js.create_stream(stream::Config {
        name: "ORDER".into(),
        subjects: vec!["order.>".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    let mut acks = Vec::new();
    for n in 0..3 {
        acks.push(js.publish("order.a", format!("{n}").into()).await.unwrap());
    }
    let mut headers = HeaderMap::new();
    headers.insert("Nats-Expected-Last-Sequence", "3");
    let checked = js
        .publish_with_headers("order.a", headers, "checked".into())
        .await
        .unwrap();
    let mut headers = HeaderMap::new();
    headers.insert("Nats-Expected-Last-Sequence", "3");
    let stale = js
        .publish_with_headers("order.a", headers, "stale".into())
        .await
        .unwrap();
    let after = js.publish("order.b", "after".into()).await.unwrap();
    for (n, ack) in acks.into_iter().enumerate() {
        assert_eq!(ack.await.unwrap().sequence, n as u64 + 1);
    }
    assert_eq!(checked.await.unwrap().sequence, 4);
    let error = stale.await.unwrap_err();
    assert!(
        error.to_string().contains("wrong last sequence: 4"),
        "{error}"
    );
    assert_eq!(after.await.unwrap().sequence, 5);
}
