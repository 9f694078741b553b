//! Acked consumers through the engine API, on real files.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::removal::REMOVAL_DELAY;
use super::*;
use crate::{EngineConfig, PublishRecord, PublishTarget, StreamSpec};

async fn engine(dir: &std::path::Path) -> Arc<Engine> {
    Engine::open(EngineConfig::new(dir)).await.unwrap()
}

async fn stream_with(engine: &Engine, subjects: &[&str], count: usize) {
    let _ = engine
        .create_stream_blocking(StreamSpec {
            name: "S".into(),
            partitions: Some(1),
            subjects: subjects.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        })
        .ok();
    for index in 0..count {
        publish(
            engine,
            subjects[index % subjects.len()],
            &format!("m{index}"),
        )
        .await;
    }
}

async fn publish(engine: &Engine, subject: &str, value: &str) {
    engine
        .publish(
            PublishTarget::Subject(subject.into()),
            vec![PublishRecord {
                value: Some(Bytes::copy_from_slice(value.as_bytes())),
                ..Default::default()
            }],
        )
        .await
        .unwrap();
}

fn spec(name: &str) -> ConsumerSpec {
    ConsumerSpec {
        stream: "S".into(),
        name: name.into(),
        filter_subjects: Vec::new(),
        start: ConsumerStart::Earliest,
        ack: AckMode::Explicit,
        ack_wait_ms: 30_000,
        max_deliver: None,
        backoff_ms: Vec::new(),
        max_ack_pending: 1000,
        door_settings: BTreeMap::new(),
        remove_acked: false,
        owned_pending: false,
    }
}

fn offsets(deliveries: &[ConsumerDelivery]) -> Vec<(u64, u32)> {
    deliveries
        .iter()
        .map(|d| (d.record.offset, d.attempt))
        .collect()
}

#[tokio::test]
async fn two_consumers_read_one_stream_independently() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    stream_with(&engine, &["a"], 3).await;
    engine.create_consumer(spec("one")).await.unwrap();
    engine.create_consumer(spec("two")).await.unwrap();
    let one = engine.consumer_next("S", "one", 10, 0).await.unwrap();
    assert_eq!(offsets(&one), vec![(0, 1), (1, 1), (2, 1)]);
    assert_eq!(one[2].delivery_count, 3);
    let two = engine.consumer_next("S", "two", 2, 0).await.unwrap();
    assert_eq!(offsets(&two), vec![(0, 1), (1, 1)]);
    assert_eq!(engine.consumer_info("S", "two").unwrap().pending, 1);
    assert_eq!(engine.consumer_info("S", "one").unwrap().ack_pending, 3);
    // The stream keeps every record: consumers do not remove what they acknowledge.
    engine.consumer_ack("S", "one", 0, 1).await.unwrap();
    assert_eq!(engine.partition_bounds("S", 0).unwrap(), (0, 3));
    assert_eq!(engine.consumer_info("S", "one").unwrap().ack_floor, 1);
    assert_eq!(engine.consumer_info("S", "two").unwrap().ack_floor, 0);
}

#[tokio::test]
async fn nack_redelivers_term_stops_and_acks_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let engine = engine(dir.path()).await;
        stream_with(&engine, &["a"], 3).await;
        engine.create_consumer(spec("c")).await.unwrap();
        let first = engine.consumer_next("S", "c", 10, 0).await.unwrap();
        assert_eq!(first.len(), 3);
        engine.consumer_ack("S", "c", 0, 1).await.unwrap();
        engine.consumer_nack("S", "c", 1, 1, None).await.unwrap();
        engine.consumer_term("S", "c", 2, 1, "bad").await.unwrap();
        let again = engine.consumer_next("S", "c", 10, 0).await.unwrap();
        assert_eq!(offsets(&again), vec![(1, 2)]);
        assert_eq!(
            engine.consumer_info("S", "c").unwrap().ack_floor,
            1,
            "offset 1 is still pending"
        );
        engine.shutdown().await.unwrap();
    }
    let engine = engine(dir.path()).await;
    // The lease of offset 1 is gone; its two attempts are not.
    let after = engine.consumer_next("S", "c", 10, 0).await.unwrap();
    assert_eq!(offsets(&after), vec![(1, 3)]);
    engine.consumer_ack("S", "c", 1, 3).await.unwrap();
    assert_eq!(engine.consumer_info("S", "c").unwrap().ack_floor, 3);
    assert!(engine
        .consumer_next("S", "c", 10, 0)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn an_expired_ack_wait_redelivers_until_max_deliver() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    stream_with(&engine, &["a"], 1).await;
    engine
        .create_consumer(ConsumerSpec {
            ack_wait_ms: 50,
            max_deliver: Some(2),
            ..spec("c")
        })
        .await
        .unwrap();
    assert_eq!(
        offsets(&engine.consumer_next("S", "c", 1, 0).await.unwrap()),
        vec![(0, 1)]
    );
    assert!(engine
        .consumer_next("S", "c", 1, 0)
        .await
        .unwrap()
        .is_empty());
    engine
        .consumer_wait("S", "c", Duration::from_secs(2))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(
        offsets(&engine.consumer_next("S", "c", 1, 0).await.unwrap()),
        vec![(0, 2)]
    );
    tokio::time::sleep(Duration::from_millis(80)).await;
    // Two deliveries used up: finished, not delivered again.
    assert!(engine
        .consumer_next("S", "c", 1, 0)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(engine.consumer_info("S", "c").unwrap().ack_floor, 1);
}

#[tokio::test]
async fn filters_start_positions_and_ack_all() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    stream_with(&engine, &["a", "b"], 6).await;
    engine
        .create_consumer(ConsumerSpec {
            filter_subjects: vec!["b".into()],
            ..spec("only-b")
        })
        .await
        .unwrap();
    let only_b = engine.consumer_next("S", "only-b", 10, 0).await.unwrap();
    assert_eq!(offsets(&only_b), vec![(1, 1), (3, 1), (5, 1)]);

    engine
        .create_consumer(ConsumerSpec {
            start: ConsumerStart::LastRecord,
            ..spec("last")
        })
        .await
        .unwrap();
    let last = engine.consumer_next("S", "last", 10, 0).await.unwrap();
    assert_eq!(offsets(&last), vec![(5, 1)]);

    engine
        .create_consumer(ConsumerSpec {
            start: ConsumerStart::Time(i64::MAX),
            ..spec("after-everything")
        })
        .await
        .unwrap();
    assert!(engine
        .consumer_next("S", "after-everything", 10, 0)
        .await
        .unwrap()
        .is_empty());
    engine
        .create_consumer(ConsumerSpec {
            start: ConsumerStart::Time(0),
            ..spec("from-the-start")
        })
        .await
        .unwrap();
    assert_eq!(
        engine
            .consumer_next("S", "from-the-start", 10, 0)
            .await
            .unwrap()
            .len(),
        6
    );
    engine
        .create_consumer(ConsumerSpec {
            start: ConsumerStart::New,
            ack: AckMode::All,
            ..spec("new")
        })
        .await
        .unwrap();
    assert!(engine
        .consumer_next("S", "new", 10, 0)
        .await
        .unwrap()
        .is_empty());
    publish(&engine, "a", "later-1").await;
    publish(&engine, "a", "later-2").await;
    let new = engine.consumer_next("S", "new", 10, 0).await.unwrap();
    assert_eq!(offsets(&new), vec![(6, 1), (7, 1)]);
    engine.consumer_ack("S", "new", 7, 1).await.unwrap();
    let info = engine.consumer_info("S", "new").unwrap();
    assert_eq!((info.ack_floor, info.ack_pending), (8, 0));

    // Same spec again: the consumer as it is; another spec: refused.
    engine.create_consumer(spec("only-b")).await.unwrap_err();
    engine
        .create_consumer(ConsumerSpec {
            filter_subjects: vec!["b".into()],
            ..spec("only-b")
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn deleting_a_consumer_or_its_stream_removes_its_state() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    stream_with(&engine, &["a"], 2).await;
    engine.create_consumer(spec("c")).await.unwrap();
    engine.consumer_next("S", "c", 1, 0).await.unwrap();
    engine.consumer_ack("S", "c", 0, 1).await.unwrap();
    engine.delete_consumer("S", "c").await.unwrap();
    assert!(matches!(
        engine.consumer_info("S", "c"),
        Err(EngineError::ConsumerNotFound { .. })
    ));
    // A new consumer of that name starts afresh, not from the old ack floor.
    engine.create_consumer(spec("c")).await.unwrap();
    assert_eq!(engine.consumer_info("S", "c").unwrap().ack_floor, 0);
    let settings = BTreeMap::from([("retention".to_string(), "workqueue".to_string())]);
    engine
        .set_stream_door_settings("S", settings.clone())
        .await
        .unwrap();
    assert_eq!(engine.stream_door_settings("S").unwrap(), settings);
    engine.delete_stream("S").await.unwrap();
    assert!(engine.list_consumers("S").is_empty());
    stream_with(&engine, &["a"], 0).await;
    assert!(engine.list_consumers("S").is_empty());
    assert!(engine.stream_door_settings("S").unwrap().is_empty());
}

#[tokio::test]
async fn a_consumer_that_owns_its_stream_removes_what_it_acked() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    stream_with(&engine, &["a"], 3).await;
    engine
        .create_consumer(ConsumerSpec {
            remove_acked: true,
            ..spec("work")
        })
        .await
        .unwrap();
    let delivered = engine.consumer_next("S", "work", 3, 0).await.unwrap();
    assert_eq!(delivered.len(), 3);
    engine.consumer_ack("S", "work", 1, 1).await.unwrap();
    // Offset 0 is not acked yet: nothing can be removed.
    tokio::time::sleep(REMOVAL_DELAY * 4).await;
    assert_eq!(engine.partition_bounds("S", 0).unwrap(), (0, 3));
    engine.consumer_ack("S", "work", 0, 1).await.unwrap();
    removed_up_to(&engine, 2).await;
    engine.consumer_term("S", "work", 2, 1, "").await.unwrap();
    removed_up_to(&engine, 3).await;
}

/// Waits until the stream's removal (scheduled after a settlement, `removal.rs`) moved the
/// start of `S` to `start`.
async fn removed_up_to(engine: &Engine, start: u64) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    while engine.partition_bounds("S", 0).unwrap().0 != start {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the start of S is {:?}, not {start}",
            engine.partition_bounds("S", 0)
        );
        tokio::time::sleep(REMOVAL_DELAY).await;
    }
}

#[tokio::test]
async fn a_lazy_ack_removes_its_record_once_durable() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    stream_with(&engine, &["a"], 2).await;
    engine
        .create_consumer(ConsumerSpec {
            remove_acked: true,
            ..spec("work")
        })
        .await
        .unwrap();
    engine.consumer_next("S", "work", 2, 0).await.unwrap();
    engine.consumer_ack_lazily("S", "work", 0, 1).await.unwrap();
    engine.consumer_ack_lazily("S", "work", 1, 1).await.unwrap();
    // Answered before durable: nothing removed yet.
    assert_eq!(engine.partition_bounds("S", 0).unwrap(), (0, 2));
    removed_up_to(&engine, 2).await;
}

#[tokio::test]
async fn consumers_that_remove_what_they_acked_wait_for_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    stream_with(&engine, &["a"], 2).await;
    for name in ["one", "two"] {
        engine
            .create_consumer(ConsumerSpec {
                remove_acked: true,
                ..spec(name)
            })
            .await
            .unwrap();
        engine.consumer_next("S", name, 2, 0).await.unwrap();
    }
    engine.consumer_ack("S", "one", 0, 1).await.unwrap();
    engine.consumer_ack("S", "one", 1, 1).await.unwrap();
    tokio::time::sleep(REMOVAL_DELAY * 4).await;
    assert_eq!(engine.partition_bounds("S", 0).unwrap(), (0, 2));
    engine.consumer_ack("S", "two", 0, 1).await.unwrap();
    removed_up_to(&engine, 1).await;
}

#[tokio::test]
async fn records_larger_than_the_read_estimate_are_all_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    stream_with(&engine, &["a"], 0).await;
    // 40 KiB each: a read sized for the offsets wanted holds less than one of them.
    let big = "x".repeat(40 * 1024);
    for _ in 0..5 {
        publish(&engine, "a", &big).await;
    }
    engine.create_consumer(spec("c")).await.unwrap();
    let first = engine.consumer_next("S", "c", 1, 0).await.unwrap();
    assert_eq!(offsets(&first), vec![(0, 1)]);
    let rest = engine.consumer_next("S", "c", 10, 0).await.unwrap();
    assert_eq!(offsets(&rest), vec![(1, 1), (2, 1), (3, 1), (4, 1)]);
    assert!(rest
        .iter()
        .all(|d| d.record.value.as_ref().map(|v| v.len()) == Some(big.len())));
}

#[tokio::test]
async fn lazy_acks_are_committed_by_a_graceful_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    {
        let engine = engine(dir.path()).await;
        stream_with(&engine, &["a"], 3).await;
        engine.create_consumer(spec("c")).await.unwrap();
        let delivered = engine.consumer_next("S", "c", 3, 0).await.unwrap();
        for delivery in &delivered {
            engine
                .consumer_ack_lazily("S", "c", delivery.record.offset, delivery.attempt)
                .await
                .unwrap();
        }
        // At once: the lazy batch is still collecting.
        engine.shutdown().await.unwrap();
    }
    let engine = engine(dir.path()).await;
    assert_eq!(engine.consumer_info("S", "c").unwrap().ack_floor, 3);
    assert!(engine
        .consumer_next("S", "c", 3, 0)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn a_failed_lazy_commit_fails_the_consumer_and_a_restart_redelivers() {
    let dir = tempfile::tempdir().unwrap();
    let plan = omnibus_storage::io::FaultPlan::new();
    {
        let mut config = EngineConfig::new(dir.path());
        config.state_faults = Some(plan.clone());
        let engine = Engine::open(config).await.unwrap();
        stream_with(&engine, &["a"], 1).await;
        engine.create_consumer(spec("c")).await.unwrap();
        let delivered = engine.consumer_next("S", "c", 1, 0).await.unwrap();
        plan.fail_write(1);
        // Answered before its commit, which fails.
        engine
            .consumer_ack_lazily("S", "c", 0, delivered[0].attempt)
            .await
            .unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            match engine.consumer_next("S", "c", 1, 0).await {
                Err(error) => {
                    assert_eq!(error.code(), omnibus_types::ErrorCode::StorageFailed);
                    assert!(error.to_string().contains("refuses work"), "{error}");
                    break;
                }
                Ok(_) => assert!(tokio::time::Instant::now() < deadline, "never failed"),
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(engine.consumer_ack("S", "c", 0, 1).await.is_err());
        assert!(engine.consumer_nack("S", "c", 0, 1, None).await.is_err());
    }
    plan.clear();
    let engine = engine(dir.path()).await;
    let again = engine.consumer_next("S", "c", 1, 0).await.unwrap();
    assert_eq!(
        offsets(&again),
        vec![(0, 2)],
        "the ack was lost with its commit"
    );
}

#[tokio::test]
async fn acks_settled_together_skip_unknown_ones_and_survive_a_graceful_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    {
        let engine = engine(dir.path()).await;
        stream_with(&engine, &["a"], 5).await;
        engine.create_consumer(spec("c")).await.unwrap();
        let delivered = engine.consumer_next("S", "c", 5, 0).await.unwrap();
        assert_eq!(delivered.len(), 5);
        // Offset 1 twice (the second is settled already) and a stale attempt of offset 3:
        // skipped, as single acks of them would be ignored.
        let acks = [(0, 1), (1, 1), (1, 1), (3, 9), (4, 1)];
        engine
            .consumer_ack_many_lazily("S", "c", &acks)
            .await
            .unwrap();
        let info = engine.consumer_info("S", "c").unwrap();
        assert_eq!(info.ack_pending, 2, "offsets 2 and 3 stay delivered");
        assert_eq!(info.ack_floor, 2);
        assert!(engine
            .consumer_ack_many_lazily("S", "nobody", &acks)
            .await
            .is_err());
        engine.shutdown().await.unwrap();
    }
    // After a restart only the unacknowledged ones come again.
    let engine = engine(dir.path()).await;
    let again = engine.consumer_next("S", "c", 5, 0).await.unwrap();
    let again: Vec<u64> = again.iter().map(|d| d.record.offset).collect();
    assert_eq!(again, vec![2, 3]);
}

#[tokio::test]
async fn a_consumer_left_behind_by_deleted_records_reads_on_from_the_logs_start() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    stream_with(&engine, &["a"], 1).await;
    engine
        .create_consumer(ConsumerSpec {
            start: ConsumerStart::New,
            ..spec("late")
        })
        .await
        .unwrap();
    for index in 0..200 {
        publish(&engine, "a", &format!("n{index}")).await;
    }
    engine.delete_records("S", 0, Some(199)).await.unwrap();
    // One record asked for: the first still there, at once (not 16 gone offsets a call).
    let next = engine.consumer_next("S", "late", 1, 0).await.unwrap();
    assert_eq!(offsets(&next), vec![(199, 1)]);
    assert_eq!(next[0].record.value.as_deref(), Some(b"n198".as_slice()));
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn records_removed_under_a_reading_consumer_are_passed_over_in_one_read() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    stream_with(&engine, &["a"], 300).await;
    engine.create_consumer(spec("slow")).await.unwrap();
    // The first read registers every record up to the end as ready; it takes one.
    let first = engine.consumer_next("S", "slow", 1, 0).await.unwrap();
    assert_eq!(offsets(&first), vec![(0, 1)]);
    engine.consumer_ack("S", "slow", 0, 1).await.unwrap();
    engine.delete_records("S", 0, Some(299)).await.unwrap();
    let next = engine.consumer_next("S", "slow", 1, 0).await.unwrap();
    assert_eq!(offsets(&next), vec![(299, 1)]);
    engine.shutdown().await.unwrap();
}
