//! Which NATS acknowledgements wait for the disk, through async-nats on a real socket, on a
//! disk whose fsyncs (of the stream logs and of the state store) can be held.
//!
//! `kill -9` cannot show this: the page cache survives it, so an acknowledgement sent before
//! its fsync would still pass every crash test. A JetStream publish's PubAck and a double
//! ack's answer must wait for their fsync; core NATS (not durable by design) and reads of a
//! stream's state must not.

mod support;

use std::future::Future;
use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull, stream};
use bytes::Bytes;
use futures_util::StreamExt;
use support::Broker;

/// How long an acknowledgement must stay unsent while fsyncs are held.
const UNANSWERED: Duration = Duration::from_millis(250);
/// How long anything may take once the disk is not held (or for what needs no disk).
const WAIT: Duration = Duration::from_secs(10);

/// Runs `acknowledged` while every fsync is held: it must not finish until they are released.
/// Its output.
async fn after_fsync<T: Send + 'static>(
    plan: &std::sync::Arc<omnibus_storage::io::FaultPlan>,
    what: &str,
    acknowledged: impl Future<Output = T> + Send + 'static,
) -> T {
    let held = plan.hold_syncs_while_held();
    let waiting = tokio::spawn(acknowledged);
    tokio::time::sleep(UNANSWERED).await;
    let early = waiting.is_finished();
    drop(held);
    let output = tokio::time::timeout(WAIT, waiting)
        .await
        .unwrap_or_else(|_| panic!("{what}: nothing after the fsyncs were released"))
        .unwrap();
    assert!(!early, "{what} was acknowledged while its fsync was held");
    output
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pub_acks_and_double_acks_wait_for_their_fsync_and_core_nats_does_not() {
    let (broker, plan) = Broker::with_faults().await;
    let client = broker.client().await;
    let js = jetstream::new(client.clone());
    let stream = js
        .create_stream(stream::Config {
            name: "ORDERS".into(),
            subjects: vec!["orders.>".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    let consumer = stream
        .create_consumer(pull::Config {
            durable_name: Some("workers".into()),
            ..Default::default()
        })
        .await
        .unwrap();

    // The PubAck: sent once the record is fsynced, with the sequence it got.
    let publishing = js.clone();
    let ack = after_fsync(&plan, "a JetStream publish", async move {
        publishing
            .publish("orders.new", Bytes::from_static(b"first"))
            .await
            .unwrap()
            .await
    })
    .await
    .unwrap();
    assert_eq!((ack.stream.as_str(), ack.sequence), ("ORDERS", 1));

    // A double ack (AckSync): answered once the consumer's commit is fsynced.
    let mut batch = consumer
        .batch()
        .max_messages(1)
        .expires(WAIT)
        .messages()
        .await
        .unwrap();
    let message = tokio::time::timeout(WAIT, batch.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(&message.payload[..], b"first");
    after_fsync(
        &plan,
        "a double ack",
        async move { message.double_ack().await },
    )
    .await
    .unwrap();
    let info = consumer.clone().info().await.unwrap().clone();
    assert_eq!(info.ack_floor.stream_sequence, 1, "{info:?}");

    // Core NATS stores nothing: a message reaches its subscriber while every fsync is held,
    // and reading the stream's and the consumer's state needs no disk either.
    let held = plan.hold_syncs_while_held();
    let mut news = client.subscribe("news.today").await.unwrap();
    client.flush().await.unwrap();
    client
        .publish("news.today", Bytes::from_static(b"hello"))
        .await
        .unwrap();
    let heard = tokio::time::timeout(WAIT, news.next())
        .await
        .expect("a core message waited for a held fsync")
        .unwrap();
    assert_eq!(&heard.payload[..], b"hello");
    let mut stream = stream;
    let state = tokio::time::timeout(WAIT, stream.info())
        .await
        .expect("stream info waited for a held fsync")
        .unwrap()
        .state
        .clone();
    assert_eq!(state.messages, 1, "{state:?}");
    drop(held);
    broker.stop().await;
}
