//! A queue whose state commit fails: it refuses all work, says why, wakes its waiters, and a
//! restart recovers it from what is durable (its memory never ran ahead of the disk for
//! anyone to see). Faults come from a state store on a fault-injecting backend.

use std::time::Duration;

use bytes::Bytes;
use omnibus_storage::io::FaultPlan;
use omnibus_types::ErrorCode;

use super::*;
use crate::EngineConfig;

pub(super) fn message(value: &str) -> EnqueueMessage {
    EnqueueMessage {
        value: Some(Bytes::copy_from_slice(value.as_bytes())),
        ..Default::default()
    }
}

pub(super) fn spec(name: &str) -> QueueSpec {
    QueueSpec {
        name: name.into(),
        lease_ms: Some(60_000),
        ..Default::default()
    }
}

/// An engine whose state store fails as `plan` says (`None`: an ordinary one).
pub(crate) async fn engine_with_faults(
    dir: &std::path::Path,
    plan: Option<Arc<FaultPlan>>,
) -> Arc<Engine> {
    let mut config = EngineConfig::new(dir);
    config.state_faults = plan;
    Engine::open(config).await.unwrap()
}

fn assert_storage_failed<T: std::fmt::Debug>(outcome: Result<T>, what: &str) {
    match outcome {
        Err(error) => assert_eq!(error.code(), ErrorCode::StorageFailed, "{what}: {error}"),
        Ok(value) => panic!("{what} succeeded on a failed queue: {value:?}"),
    }
}

#[tokio::test]
async fn a_failed_ack_commit_poisons_the_queue_and_a_restart_redelivers_the_message() {
    let dir = tempfile::tempdir().unwrap();
    let plan = FaultPlan::new();
    let first = {
        let engine = engine_with_faults(dir.path(), Some(plan.clone())).await;
        engine.create_queue(spec("work")).await.unwrap();
        engine.enqueue("work", vec![message("a")]).await.unwrap();
        let delivery = engine.receive("work", "w1", 1, 0).await.unwrap().remove(0);
        // Nothing else is ready: this receive waits (long poll) until the queue fails.
        let waiter = tokio::spawn({
            let engine = engine.clone();
            async move { engine.receive("work", "w2", 1, 20_000).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;

        plan.fail_write(1);
        let ack = engine.ack("work", delivery.offset, delivery.attempt).await;
        assert_storage_failed(ack, "the ack whose commit failed");
        let woken = tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("the waiting receive is woken, not left to time out")
            .unwrap();
        assert_storage_failed(woken, "the waiting receive");

        let info = engine.queue_info("work").unwrap();
        let reason = info.failure.clone().expect("the queue info says it failed");
        assert!(reason.contains("injected I/O failure"), "{reason}");

        // Every later operation is refused with the same stable code.
        let offset = delivery.offset;
        assert_storage_failed(engine.enqueue("work", vec![message("b")]).await, "enqueue");
        assert_storage_failed(engine.receive("work", "w1", 1, 0).await, "receive");
        assert_storage_failed(engine.ack("work", offset, 1).await, "ack again");
        assert_storage_failed(engine.nack("work", offset, 1, None, "x").await, "nack");
        assert_storage_failed(engine.extend("work", offset, 1, None).await, "extend");
        assert_storage_failed(engine.term("work", offset, 1, "x").await, "term");
        assert_storage_failed(engine.pause_queue("work").await, "pause");
        assert_storage_failed(engine.purge_queue("work").await, "purge");
        assert_storage_failed(engine.redrive("work", 10).await, "redrive");
        assert_storage_failed(engine.list_jobs("work", None, None, 10).await, "list jobs");
        assert_eq!(
            engine.queue("work").unwrap().log.high_watermark(),
            1,
            "the refused enqueue appended nothing to the log"
        );
        let _ = engine.shutdown().await;
        delivery
    };

    plan.clear();
    let engine = engine_with_faults(dir.path(), None).await;
    let info = engine.queue_info("work").unwrap();
    assert_eq!(info.failure, None, "a restart recovers the queue");
    assert_eq!((info.ack_floor, info.ready), (0, 1), "{info:?}");
    let again = engine.receive("work", "w1", 1, 0).await.unwrap();
    assert_eq!(
        again.len(),
        1,
        "the message whose ack failed is delivered again"
    );
    assert_eq!(again[0].offset, first.offset);
    assert_eq!(again[0].attempt, 2);
    engine.ack("work", again[0].offset, 2).await.unwrap();
}

#[tokio::test]
async fn a_failed_commit_poisons_only_its_own_queue() {
    let dir = tempfile::tempdir().unwrap();
    let plan = FaultPlan::new();
    let engine = engine_with_faults(dir.path(), Some(plan.clone())).await;
    engine.create_queue(spec("failing")).await.unwrap();
    engine.create_queue(spec("other")).await.unwrap();
    engine.enqueue("failing", vec![message("a")]).await.unwrap();
    plan.fail_write(1);
    assert_storage_failed(engine.receive("failing", "w", 1, 0).await, "receive");
    let infos = engine.list_queues();
    let failure_of = |name: &str| {
        infos
            .iter()
            .find(|info| info.config.name == name)
            .map(|info| info.failure.is_some())
    };
    assert_eq!(failure_of("failing"), Some(true));
    assert_eq!(
        failure_of("other"),
        Some(false),
        "the other queue made no commit"
    );
    let serialized = serde_json::to_value(&infos).unwrap();
    assert!(
        serialized
            .as_array()
            .unwrap()
            .iter()
            .any(|info| info["failure"].is_string()),
        "the failure reaches the serialized queue info: {serialized}"
    );
}

#[tokio::test]
async fn a_failed_dead_letter_append_fails_the_queue_instead_of_finishing_the_message_in_memory() {
    use omnibus_storage::io::{FaultyIo, FileIo};
    let dir = tempfile::tempdir().unwrap();
    let disk = FaultPlan::new();
    let offset = {
        let io = Arc::new(FaultyIo::new(Arc::new(FileIo), disk.clone()));
        let engine = Engine::open_with_io(EngineConfig::new(dir.path()), io)
            .await
            .unwrap();
        engine.create_queue(spec("work")).await.unwrap();
        engine.enqueue("work", vec![message("a")]).await.unwrap();
        let delivery = engine.receive("work", "w1", 1, 0).await.unwrap().remove(0);
        // The next log writes are the dead letter's (zeros ahead of it, then the record):
        // they fail after `term` took the message, as on a failing disk, until cleared.
        disk.sticky(true);
        disk.fail_write(1);
        let term = engine.term("work", delivery.offset, 1, "bad input").await;
        assert!(term.is_err(), "the term whose dead letter failed fails");
        let info = engine.queue_info("work").unwrap();
        let reason = info.failure.expect("the queue failed");
        assert!(reason.contains("not committed"), "{reason}");
        assert_storage_failed(engine.receive("work", "w1", 1, 0).await, "receive");
        disk.clear();
        let _ = engine.shutdown().await;
        delivery.offset
    };
    let engine = engine_with_faults(dir.path(), None).await;
    let again = engine.receive("work", "w1", 1, 0).await.unwrap();
    assert_eq!(again.len(), 1, "the message was not finished on disk");
    assert_eq!((again[0].offset, again[0].attempt), (offset, 2));
}
