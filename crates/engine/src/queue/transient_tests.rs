//! A transient queue keeps its delivery state in memory only (`commit.rs`), and deliveries
//! of just-appended records read no log (`reader.rs`).

use std::time::Duration;

use bytes::Bytes;
use omnibus_types::Header;

use super::*;
use crate::EngineConfig;

async fn engine(dir: &std::path::Path) -> Arc<Engine> {
    Engine::open(EngineConfig::new(dir)).await.unwrap()
}

fn spec(name: &str, durability: QueueDurability) -> QueueSpec {
    QueueSpec {
        name: name.into(),
        durability: Some(durability),
        // Both answer acks at once, so the only difference is what reaches the store.
        completions: Some(Completions::Batched),
        // A nacked message is ready again at once (the default backoff waits a second).
        backoff: Some(Backoff::Fixed { delay_ms: 0 }),
        ..Default::default()
    }
}

fn message(value: &str) -> EnqueueMessage {
    EnqueueMessage {
        value: Some(Bytes::copy_from_slice(value.as_bytes())),
        ..Default::default()
    }
}

/// The delivery-state keys (`F`, `A`, `D`, `G`, `L`) stored for `queue`, once every lazy
/// commit of it was answered.
async fn stored_delivery_state(engine: &Arc<Engine>, queue: &str) -> Vec<String> {
    assert!(
        engine
            .queue(queue)
            .unwrap()
            .flush(Duration::from_secs(5))
            .await
    );
    engine
        .state
        .scan_prefix(keys::TABLE, &keys::prefix(queue))
        .unwrap()
        .into_iter()
        .filter_map(|(key, _)| keys::suffix(queue, &key).map(str::to_string))
        .filter(|suffix| suffix.starts_with(['F', 'A', 'D', 'G', 'L']))
        .collect()
}

/// Receives, nacks one (redelivered), then acks everything.
async fn deliver_nack_and_ack(engine: &Arc<Engine>, queue: &str) {
    engine
        .enqueue(queue, (0..10).map(|i| message(&format!("m{i}"))).collect())
        .await
        .unwrap();
    let first = engine.receive(queue, "worker", 10, 0).await.unwrap();
    assert_eq!(first.len(), 10);
    engine
        .nack(queue, first[0].offset, first[0].attempt, Some(0), "dropped")
        .await
        .unwrap();
    for delivery in &first[1..] {
        engine
            .ack(queue, delivery.offset, delivery.attempt)
            .await
            .unwrap();
    }
    let again = engine.receive(queue, "worker", 10, 1_000).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].offset, first[0].offset);
    engine
        .ack(queue, again[0].offset, again[0].attempt)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_transient_queues_leases_and_acks_write_no_state_a_durable_ones_do() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    engine
        .create_queue(spec("transient", QueueDurability::Transient))
        .await
        .unwrap();
    engine
        .create_queue(spec("durable", QueueDurability::Durable))
        .await
        .unwrap();
    deliver_nack_and_ack(&engine, "transient").await;
    deliver_nack_and_ack(&engine, "durable").await;
    assert_eq!(
        stored_delivery_state(&engine, "transient").await,
        Vec::<String>::new()
    );
    let durable = stored_delivery_state(&engine, "durable").await;
    assert!(
        durable.iter().any(|suffix| suffix == "F"),
        "a durable queue stores its ack floor: {durable:?}"
    );
    for name in ["transient", "durable"] {
        let counts = engine.queue(name).unwrap().lock().counts();
        assert_eq!((counts.ready, counts.leased), (0, 0), "{name}");
    }
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_transient_queues_delivery_dropped_by_its_consumer_is_redelivered_as_a_retry() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    engine
        .create_queue(spec("rpc", QueueDurability::Transient))
        .await
        .unwrap();
    engine
        .enqueue("rpc", vec![message("request")])
        .await
        .unwrap();
    let first = engine.receive("rpc", "gone", 1, 0).await.unwrap();
    assert_eq!(first[0].attempt, 1);
    // What a session does with the unacked deliveries of a consumer that went away.
    engine
        .nack(
            "rpc",
            first[0].offset,
            first[0].attempt,
            Some(0),
            "consumer gone",
        )
        .await
        .unwrap();
    let again = engine.receive("rpc", "next", 1, 1_000).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].offset, first[0].offset);
    assert_eq!(again[0].attempt, 2, "the retry counts as a second attempt");
    assert_eq!(again[0].record.value.as_deref(), Some(&b"request"[..]));
    // The first delivery's lease is stale: acking it is refused, the retry's ack is taken.
    assert!(engine
        .ack("rpc", first[0].offset, first[0].attempt)
        .await
        .is_err());
    engine
        .ack("rpc", again[0].offset, again[0].attempt)
        .await
        .unwrap();
    assert!(engine
        .receive("rpc", "next", 1, 0)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        stored_delivery_state(&engine, "rpc").await,
        Vec::<String>::new()
    );
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn just_appended_records_are_delivered_without_a_log_read_and_as_the_log_holds_them() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    engine
        .create_queue(spec("fresh", QueueDurability::Durable))
        .await
        .unwrap();
    let messages = vec![
        EnqueueMessage {
            key: Some(Bytes::from_static(b"k")),
            value: Some(Bytes::from_static(b"with a key and a header")),
            headers: vec![Header {
                name: "correlation_id".into(),
                value: Bytes::from_static(b"42"),
            }],
            ttl_ms: Some(60_000),
            ..Default::default()
        },
        EnqueueMessage {
            value: Some(Bytes::new()),
            ..Default::default()
        },
        EnqueueMessage::default(),
    ];
    for message in messages {
        // One enqueue each: every delivery asks for an offset past any kept read.
        engine.enqueue("fresh", vec![message]).await.unwrap();
        let delivered = engine.receive("fresh", "worker", 1, 0).await.unwrap();
        assert_eq!(delivered.len(), 1);
        let queue = engine.queue("fresh").unwrap();
        assert_eq!(queue.reader.log_reads(), 0, "delivered from memory");
        // A lookup by offset decodes the log (it does not use the kept appends).
        let from_log = queue.records(&[delivered[0].offset]).await.unwrap();
        assert_eq!(delivered[0].record, from_log[0]);
        queue.reader.forget_kept_read_for_tests();
    }
    engine.shutdown().await.unwrap();
}
