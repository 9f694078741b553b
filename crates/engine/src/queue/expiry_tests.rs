//! TTL expiry at the head of a queue nobody reads (`expiry.rs`).

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::*;
use crate::EngineConfig;

fn message(value: &str, ttl_ms: Option<u64>) -> EnqueueMessage {
    EnqueueMessage {
        value: Some(Bytes::copy_from_slice(value.as_bytes())),
        ttl_ms,
        ..Default::default()
    }
}

fn spec(name: &str) -> QueueSpec {
    QueueSpec {
        name: name.into(),
        ..Default::default()
    }
}

async fn dead_letters(engine: &Engine, queue: &str) -> Vec<(String, String)> {
    let fetched = engine
        .fetch(crate::FetchRequest {
            stream: format!("{queue}.dlq"),
            partition: 0,
            offset: 0,
            max_records: 100,
            max_bytes: 1 << 20,
            wait_ms: 0,
        })
        .await
        .unwrap();
    fetched
        .records
        .iter()
        .map(|record| {
            let reason = record
                .headers
                .iter()
                .find(|h| h.name == "omnibus.dlq.reason")
                .map(|h| String::from_utf8(h.value.to_vec()).unwrap())
                .unwrap_or_default();
            let value = String::from_utf8(record.value.clone().unwrap().to_vec()).unwrap();
            (value, reason)
        })
        .collect()
}

/// Waits (bounded) until the queue holds `ready` ready messages and `dead` dead letters (a
/// swept message leaves the ready set before its dead letter is appended); answers how long
/// it took.
async fn wait_for(engine: &Engine, queue: &str, ready: u64, dead: u64) -> Duration {
    let started = Instant::now();
    loop {
        let info = engine.queue_info(queue).unwrap();
        if (info.ready, info.dead_letter_depth) == (ready, dead) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "still {} ready, {} dead letters",
            info.ready,
            info.dead_letter_depth
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn expired_messages_are_dead_lettered_on_time_without_any_reader() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(EngineConfig::new(dir.path())).await.unwrap();
    engine
        .create_queue(QueueSpec {
            ttl_ms: Some(300),
            ..spec("delay")
        })
        .await
        .unwrap();
    let started = Instant::now();
    engine
        .enqueue(
            "delay",
            (0..100).map(|i| message(&format!("m{i}"), None)).collect(),
        )
        .await
        .unwrap();
    wait_for(&engine, "delay", 0, 100).await;
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(290),
        "not before the TTL: {took:?}"
    );
    // The timer is due at the head's expiry (bounded loosely: CI machines are busy).
    assert!(took < Duration::from_millis(2_000), "late: {took:?}");
    let letters = dead_letters(&engine, "delay").await;
    assert_eq!(letters.len(), 100);
    assert_eq!(
        letters[0],
        ("m0".to_string(), "message expired (TTL)".to_string())
    );
    assert_eq!(letters[99].0, "m99", "in order");
    let info = engine.queue_info("delay").unwrap();
    assert_eq!((info.dead_letter_depth, info.ack_floor), (100, 100));
}

#[tokio::test]
async fn only_expired_messages_are_taken_and_dropped_when_the_queue_does_not_dead_letter() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(EngineConfig::new(dir.path())).await.unwrap();
    engine
        .create_queue(QueueSpec {
            dead_letter_expired: Some(false),
            ..spec("mixed")
        })
        .await
        .unwrap();
    engine
        .enqueue(
            "mixed",
            vec![
                message("short", Some(100)),
                message("forever", None),
                message("long", Some(60_000)),
            ],
        )
        .await
        .unwrap();
    wait_for(&engine, "mixed", 2, 0).await;
    // Given time for more sweeps, nothing else goes.
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let info = engine.queue_info("mixed").unwrap();
    assert_eq!(info.ready, 2);
    assert_eq!(info.dead_letter_depth, 0, "dropped, not dead-lettered");
    assert_eq!(info.rates.dropped.last_minute, 1);
    let got = engine.receive("mixed", "w", 10, 0).await.unwrap();
    let values: Vec<_> = got
        .iter()
        .map(|d| String::from_utf8(d.record.value.clone().unwrap().to_vec()).unwrap())
        .collect();
    assert_eq!(values, vec!["forever", "long"]);
}

#[tokio::test]
async fn a_requeued_message_expires_once_it_is_ready_again() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(EngineConfig::new(dir.path())).await.unwrap();
    engine.create_queue(spec("requeue")).await.unwrap();
    engine
        .enqueue("requeue", vec![message("m", Some(400))])
        .await
        .unwrap();
    let got = engine.receive("requeue", "w", 1, 0).await.unwrap();
    // Held past its expiry by a worker, then given back.
    tokio::time::sleep(Duration::from_millis(600)).await;
    engine
        .nack("requeue", got[0].offset, got[0].attempt, Some(0), "back")
        .await
        .unwrap();
    // Given back (through a timer of 0 ms), then swept: dead-lettered with nobody reading.
    let started = Instant::now();
    while engine.queue_info("requeue").unwrap().dead_letter_depth == 0 {
        assert!(started.elapsed() < Duration::from_secs(10), "never expired");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(engine.queue_info("requeue").unwrap().ready, 0);
    let letters = dead_letters(&engine, "requeue").await;
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].0, "m");
}

#[tokio::test]
async fn messages_that_expired_while_the_broker_was_down_are_swept_at_open() {
    let dir = tempfile::tempdir().unwrap();
    {
        let engine = Engine::open(EngineConfig::new(dir.path())).await.unwrap();
        engine.create_queue(spec("offline")).await.unwrap();
        engine
            .enqueue(
                "offline",
                vec![message("stale", Some(200)), message("kept", None)],
            )
            .await
            .unwrap();
        engine.shutdown().await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let engine = Engine::open(EngineConfig::new(dir.path())).await.unwrap();
    wait_for(&engine, "offline", 1, 1).await;
    let letters = dead_letters(&engine, "offline").await;
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].0, "stale");
}
