//! `max_bytes` with each overflow policy, the waiting-bytes count through every way a message
//! leaves or comes back, across a restart, and the queue's rates — through the engine API, on
//! real files.

use bytes::Bytes;
use omnibus_types::{ErrorCode, Record};

use super::*;
use crate::EngineConfig;

/// A message whose value is `name` padded with dots to `bytes` bytes (no key, no headers: it
/// counts exactly `bytes`).
fn sized(name: &str, bytes: usize) -> EnqueueMessage {
    assert!(
        name.len() <= bytes,
        "{name:?} does not fit in {bytes} bytes"
    );
    let mut value = name.to_string();
    value.extend(std::iter::repeat_n('.', bytes - name.len()));
    EnqueueMessage {
        value: Some(Bytes::from(value)),
        ..Default::default()
    }
}

fn name_of(delivery: &Delivery) -> String {
    let value = delivery.record.value.clone().unwrap();
    String::from_utf8(value.to_vec())
        .unwrap()
        .trim_end_matches('.')
        .to_string()
}

async fn engine(dir: &std::path::Path) -> Arc<Engine> {
    Engine::open(EngineConfig::new(dir)).await.unwrap()
}

fn spec(name: &str) -> QueueSpec {
    QueueSpec {
        name: name.into(),
        lease_ms: Some(60_000),
        max_deliver: Some(2),
        backoff: Some(Backoff::Fixed { delay_ms: 0 }),
        ..Default::default()
    }
}

fn waiting_bytes(engine: &Engine, queue: &str) -> u64 {
    engine.queue_info(queue).unwrap().waiting_bytes
}

async fn dead_letters(engine: &Engine, queue: &str) -> Vec<Record> {
    engine.dead_letters(queue, 0, 100).await.unwrap().records
}

fn header(record: &Record, name: &str) -> Option<String> {
    record
        .headers
        .iter()
        .find(|h| h.name == name)
        .map(|h| String::from_utf8(h.value.to_vec()).unwrap())
}

#[tokio::test]
async fn max_bytes_reject_new_refuses_what_does_not_fit_and_keeps_the_queue() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    let info = engine
        .create_queue(QueueSpec {
            max_bytes: Some(300),
            ..spec("reject")
        })
        .await
        .unwrap();
    assert_eq!(info.config.max_bytes, Some(300));
    let three = (0..3).map(|i| sized(&format!("m{i}"), 100)).collect();
    engine.enqueue("reject", three).await.unwrap();
    assert_eq!(waiting_bytes(&engine, "reject"), 300);

    let full = engine
        .enqueue("reject", vec![sized("x", 1)])
        .await
        .unwrap_err();
    assert_eq!(full.code(), ErrorCode::QueueFull, "{full}");
    assert!(full.to_string().contains("max_bytes 300"), "{full}");
    let too_big = engine
        .enqueue("reject", vec![sized("huge", 301)])
        .await
        .unwrap_err();
    assert_eq!(too_big.code(), ErrorCode::MessageTooLarge, "{too_big}");
    assert!(too_big.to_string().contains("max_bytes"), "{too_big}");
    let batch_too_big = engine
        .enqueue("reject", vec![sized("a", 200), sized("b", 200)])
        .await
        .unwrap_err();
    assert_eq!(batch_too_big.code(), ErrorCode::LimitExceeded);

    let info = engine.queue_info("reject").unwrap();
    assert_eq!(
        (info.ready, info.waiting_bytes),
        (3, 300),
        "nothing changed"
    );
    // Delivering a message makes room: leased messages do not count.
    let got = engine.receive("reject", "w", 1, 0).await.unwrap();
    assert_eq!(waiting_bytes(&engine, "reject"), 200);
    engine
        .enqueue("reject", vec![sized("m3", 100)])
        .await
        .unwrap();
    engine
        .ack("reject", got[0].offset, got[0].attempt)
        .await
        .unwrap();
    assert_eq!(waiting_bytes(&engine, "reject"), 300);
}

#[tokio::test]
async fn max_bytes_drop_or_dead_letter_oldest_removes_just_enough_for_the_new_message() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    for (name, overflow) in [
        ("drop", Overflow::DropOldest),
        ("dlq", Overflow::DeadLetterOldest),
    ] {
        engine
            .create_queue(QueueSpec {
                max_bytes: Some(300),
                overflow: Some(overflow),
                ..spec(name)
            })
            .await
            .unwrap();
        let three = (0..3).map(|i| sized(&format!("m{i}"), 100)).collect();
        engine.enqueue(name, three).await.unwrap();
        // 300 + 150 is 150 too many: the two oldest (200 bytes) make room.
        engine.enqueue(name, vec![sized("big", 150)]).await.unwrap();
        assert_eq!(waiting_bytes(&engine, name), 250, "{name}");
        let got: Vec<String> = engine
            .receive(name, "w", 10, 0)
            .await
            .unwrap()
            .iter()
            .map(name_of)
            .collect();
        assert_eq!(got, vec!["m2", "big"], "{name}: the oldest made room");
    }
    assert!(dead_letters(&engine, "drop").await.is_empty());
    let letters = dead_letters(&engine, "dlq").await;
    let values: Vec<String> = letters
        .iter()
        .map(|r| {
            let value = String::from_utf8(r.value.clone().unwrap().to_vec()).unwrap();
            value.trim_end_matches('.').to_string()
        })
        .collect();
    assert_eq!(values, vec!["m0", "m1"]);
    assert_eq!(
        header(&letters[0], "omnibus.dlq.reason").as_deref(),
        Some("queue full (max_bytes): oldest message dead-lettered")
    );
    assert_eq!(
        header(&letters[0], "omnibus.dlq.source").as_deref(),
        Some("dlq")
    );
    let info = engine.queue_info("dlq").unwrap();
    assert_eq!(info.dead_letter_depth, 2);
    assert_eq!(info.rates.dead_lettered.last_minute, 2);
    assert_eq!(info.rates.dropped.last_minute, 0);
    let info = engine.queue_info("drop").unwrap();
    assert_eq!(
        info.rates.dropped.last_minute, 2,
        "the two oldest were dropped"
    );
    assert_eq!(info.rates.dead_lettered.last_minute, 0);
}

#[tokio::test]
async fn dead_letter_new_refuses_the_enqueue_and_dead_letters_what_it_refused() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    engine
        .create_queue(QueueSpec {
            max_length: Some(2),
            overflow: Some(Overflow::DeadLetterNew),
            ..spec("full")
        })
        .await
        .unwrap();
    let two = (0..2).map(|i| sized(&format!("m{i}"), 10)).collect();
    engine.enqueue("full", two).await.unwrap();
    let refused = engine
        .enqueue("full", vec![sized("late", 10)])
        .await
        .unwrap_err();
    assert_eq!(refused.code(), omnibus_types::ErrorCode::QueueFull);
    let got: Vec<String> = engine
        .receive("full", "w", 10, 0)
        .await
        .unwrap()
        .iter()
        .map(name_of)
        .collect();
    assert_eq!(got, vec!["m0", "m1"], "the queue kept what it had");
    let letters = dead_letters(&engine, "full").await;
    assert_eq!(letters.len(), 1);
    let value = String::from_utf8(letters[0].value.clone().unwrap().to_vec()).unwrap();
    assert_eq!(value.trim_end_matches('.'), "late");
    assert_eq!(
        header(&letters[0], "omnibus.dlq.reason").as_deref(),
        Some("queue full (max_length): refused message dead-lettered")
    );
    assert_eq!(
        header(&letters[0], "omnibus.dlq.source").as_deref(),
        Some("full")
    );
    assert_eq!(
        header(&letters[0], "omnibus.dlq.source_offset"),
        None,
        "never in the queue"
    );
    let info = engine.queue_info("full").unwrap();
    assert_eq!((info.ready, info.dead_letter_depth), (0, 1));
    assert_eq!(info.rates.dead_lettered.last_minute, 1);
}

#[tokio::test]
async fn a_full_queue_of_delayed_messages_refuses_even_with_drop_oldest() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    engine
        .create_queue(QueueSpec {
            max_bytes: Some(1_000),
            overflow: Some(Overflow::DropOldest),
            ..spec("later")
        })
        .await
        .unwrap();
    let delayed = EnqueueMessage {
        delay_ms: Some(60_000),
        ..sized("d", 900)
    };
    engine.enqueue("later", vec![delayed]).await.unwrap();
    // The delay is stored as a header, which does not count: the value alone does.
    let stored = waiting_bytes(&engine, "later");
    assert_eq!(stored, 900);
    let full = engine
        .enqueue("later", vec![sized("new", 200)])
        .await
        .unwrap_err();
    assert_eq!(full.code(), ErrorCode::QueueFull, "{full}");
    assert_eq!(waiting_bytes(&engine, "later"), stored);
}

#[tokio::test]
async fn waiting_bytes_follow_ack_nack_dead_letter_cancel_and_purge() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    engine.create_queue(spec("count")).await.unwrap();
    let four = (0..4).map(|i| sized(&format!("m{i}"), 100)).collect();
    engine.enqueue("count", four).await.unwrap();
    assert_eq!(waiting_bytes(&engine, "count"), 400);

    let got = engine.receive("count", "w", 2, 0).await.unwrap();
    assert_eq!(waiting_bytes(&engine, "count"), 200, "leased: not waiting");
    engine
        .ack("count", got[0].offset, got[0].attempt)
        .await
        .unwrap();
    assert_eq!(waiting_bytes(&engine, "count"), 200, "acked: gone");
    engine
        .nack("count", got[1].offset, got[1].attempt, Some(0), "retry")
        .await
        .unwrap();
    assert_eq!(
        waiting_bytes(&engine, "count"),
        300,
        "nacked: waiting again"
    );

    // The retried message is first again; its second failure dead-letters it (max_deliver 2).
    let again = engine.receive("count", "w", 1, 0).await.unwrap();
    assert_eq!((again[0].offset, again[0].attempt), (got[1].offset, 2));
    assert_eq!(waiting_bytes(&engine, "count"), 200);
    engine
        .nack("count", again[0].offset, again[0].attempt, Some(0), "again")
        .await
        .unwrap();
    let info = engine.queue_info("count").unwrap();
    assert_eq!((info.waiting_bytes, info.dead_letter_depth), (200, 1));

    // A cancelled job's bytes leave the count too.
    let jobs = engine
        .enqueue_jobs(
            "count",
            vec![crate::jobs::NewJob {
                name: "j".into(),
                payload: Bytes::from(vec![b'x'; 50]),
                ..Default::default()
            }],
        )
        .await
        .unwrap();
    let with_job = waiting_bytes(&engine, "count");
    assert_eq!(with_job, 250, "the payload alone, not its name header");
    engine.cancel_job("count", &jobs[0].id).await.unwrap();
    assert_eq!(waiting_bytes(&engine, "count"), 200);

    // Purge empties the count; a message out with a worker comes back when nacked.
    let out = engine.receive("count", "w", 1, 0).await.unwrap();
    engine
        .enqueue(
            "count",
            vec![EnqueueMessage {
                delay_ms: Some(60_000),
                ..sized("later", 100)
            }],
        )
        .await
        .unwrap();
    assert_eq!(engine.purge_queue("count").await.unwrap(), 2);
    assert_eq!(waiting_bytes(&engine, "count"), 0);
    engine
        .nack("count", out[0].offset, out[0].attempt, Some(0), "back")
        .await
        .unwrap();
    assert_eq!(waiting_bytes(&engine, "count"), 100);
}

#[tokio::test]
async fn waiting_bytes_and_max_bytes_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let engine = engine(dir.path()).await;
        engine
            .create_queue(QueueSpec {
                max_bytes: Some(500),
                ..spec("durable")
            })
            .await
            .unwrap();
        let five = (0..5).map(|i| sized(&format!("m{i}"), 100)).collect();
        engine.enqueue("durable", five).await.unwrap();
        let got = engine.receive("durable", "w", 2, 0).await.unwrap();
        engine
            .ack("durable", got[0].offset, got[0].attempt)
            .await
            .unwrap();
        assert_eq!(waiting_bytes(&engine, "durable"), 300);
        engine.shutdown().await.unwrap();
    }
    let engine = engine(dir.path()).await;
    let info = engine.queue_info("durable").unwrap();
    assert_eq!(info.config.max_bytes, Some(500));
    assert_eq!(
        info.waiting_bytes, 400,
        "the unacked delivery is waiting again after the restart"
    );
    assert_eq!(info.rates.enqueued.last_minute, 0, "rates start over");
    engine
        .enqueue("durable", vec![sized("fits", 100)])
        .await
        .unwrap();
    let full = engine
        .enqueue("durable", vec![sized("o", 1)])
        .await
        .unwrap_err();
    assert_eq!(full.code(), ErrorCode::QueueFull);
}

#[tokio::test]
async fn max_bytes_zero_is_refused_and_old_configs_load_without_it() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    let zero = engine
        .create_queue(QueueSpec {
            max_bytes: Some(0),
            ..spec("zero")
        })
        .await
        .unwrap_err();
    assert_eq!(zero.code(), ErrorCode::InvalidConfig);
    assert!(engine.queue_info("zero").is_err(), "nothing was created");

    let config = engine.create_queue(spec("old")).await.unwrap().config;
    let mut stored = serde_json::to_value(&config).unwrap();
    stored.as_object_mut().unwrap().remove("max_bytes");
    let loaded: QueueConfig = serde_json::from_value(stored).unwrap();
    assert_eq!(loaded, config);
    assert_eq!(loaded.max_bytes, None);
}

#[tokio::test]
async fn rates_count_enqueues_deliveries_completions_failures_and_dead_letters() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    engine
        .create_queue(QueueSpec {
            max_deliver: Some(1),
            ..spec("busy")
        })
        .await
        .unwrap();
    let three = (0..3).map(|i| sized(&format!("m{i}"), 10)).collect();
    engine.enqueue("busy", three).await.unwrap();
    let got = engine.receive("busy", "w", 3, 0).await.unwrap();
    for delivery in &got[..2] {
        engine
            .ack("busy", delivery.offset, delivery.attempt)
            .await
            .unwrap();
    }
    engine
        .nack("busy", got[2].offset, got[2].attempt, None, "boom")
        .await
        .unwrap();
    let rates = engine.queue_info("busy").unwrap().rates;
    let last_minute = [
        rates.enqueued.last_minute,
        rates.delivered.last_minute,
        rates.completed.last_minute,
        rates.failed.last_minute,
        rates.dead_lettered.last_minute,
    ];
    assert_eq!(last_minute, [3, 3, 2, 1, 1]);
    assert!(rates.enqueued.per_second > 0.0, "{rates:?}");
    assert!((1_000..=60_000).contains(&rates.window_ms), "{rates:?}");
}

/// A message given back (a nack, an AMQP requeue) to a queue at its `max_length` puts it past
/// the limit: with drop-oldest the oldest goes — the requeued one, back at its old place —
/// as RabbitMQ's drop-head does (found by seeded AMQP sequences against RabbitMQ); policies
/// that refuse new messages keep it.
#[tokio::test]
async fn a_requeue_past_max_length_drops_the_oldest_unless_new_messages_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    for (name, overflow) in [
        ("drop", Overflow::DropOldest),
        ("refuse", Overflow::RejectNew),
    ] {
        engine
            .create_queue(QueueSpec {
                max_length: Some(3),
                overflow: Some(overflow),
                ..spec(name)
            })
            .await
            .unwrap();
        let three = (0..3).map(|i| sized(&format!("m{i}"), 10)).collect();
        engine.enqueue(name, three).await.unwrap();
        let first = engine.receive(name, "w", 1, 0).await.unwrap();
        assert_eq!(name_of(&first[0]), "m0");
        engine.enqueue(name, vec![sized("m3", 10)]).await.unwrap();
        engine
            .nack(name, first[0].offset, first[0].attempt, Some(0), "requeued")
            .await
            .unwrap();
        let left: Vec<String> = engine
            .receive(name, "w2", 10, 0)
            .await
            .unwrap()
            .iter()
            .map(name_of)
            .collect();
        let expected = match overflow {
            Overflow::DropOldest => vec!["m1", "m2", "m3"],
            _ => vec!["m0", "m1", "m2", "m3"],
        };
        assert_eq!(left, expected, "{name}");
    }
    assert_eq!(
        engine.queue_info("drop").unwrap().rates.dropped.last_minute,
        1
    );
}
