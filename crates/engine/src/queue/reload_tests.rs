//! A failed queue comes back without a restart once what failed it has healed: the maintenance
//! pass reloads it from disk (`recovery.rs`), and it is then what a restart would have made of
//! it. Faults come from fault-injecting backends under the state store and the logs.

use std::time::{Duration, Instant};

use omnibus_storage::io::{FaultPlan, FaultyIo, FileIo};
use omnibus_types::ErrorCode;

use super::commit::Healing;
use super::failure_tests::{message, spec};
use super::*;
use crate::EngineConfig;

/// Short, so a test sees many maintenance passes in little time.
const MAINTENANCE_INTERVAL_MS: u64 = 20;

fn config(dir: &std::path::Path, state_faults: Option<Arc<FaultPlan>>) -> EngineConfig {
    let mut config = EngineConfig::new(dir);
    config.state_faults = state_faults;
    config.maintenance_interval_ms = MAINTENANCE_INTERVAL_MS;
    config
}

/// Waits (up to 5 s, some 250 maintenance passes) until the queue takes work again.
async fn wait_until_reloaded(engine: &Engine, queue: &str) -> QueueInfo {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let info = engine.queue_info(queue).unwrap();
        if info.failure.is_none() {
            return info;
        }
        assert!(Instant::now() < deadline, "never reloaded: {info:?}");
        tokio::time::sleep(Duration::from_millis(MAINTENANCE_INTERVAL_MS)).await;
    }
}

/// Lets some ten maintenance passes run.
async fn some_maintenance_passes() {
    tokio::time::sleep(Duration::from_millis(10 * MAINTENANCE_INTERVAL_MS)).await;
}

fn offsets_and_attempts(deliveries: &[Delivery]) -> Vec<(u64, u32)> {
    deliveries.iter().map(|d| (d.offset, d.attempt)).collect()
}

/// A state commit fails (`disk_full`: ENOSPC, else EIO) and keeps failing until the fault
/// clears; the queue stays failed until then and is reloaded after, as the disk has it.
async fn a_failed_state_commit_heals_once_the_store_takes_writes(disk_full: bool) {
    let dir = tempfile::tempdir().unwrap();
    let plan = FaultPlan::new();
    let engine = Engine::open(config(dir.path(), Some(plan.clone())))
        .await
        .unwrap();
    engine.create_queue(spec("work")).await.unwrap();
    let enqueued = engine
        .enqueue("work", vec![message("a"), message("b"), message("c")])
        .await
        .unwrap();
    assert_eq!(enqueued, vec![0, 1, 2]);
    let delivery = engine.receive("work", "w1", 1, 0).await.unwrap().remove(0);
    assert_eq!((delivery.offset, delivery.attempt), (0, 1));

    plan.as_disk_full(disk_full);
    plan.sticky(true);
    plan.fail_write(1);
    let ack = engine.ack("work", 0, 1).await.unwrap_err();
    assert_eq!(ack.code(), ErrorCode::StorageFailed, "{ack}");
    let reason = engine.queue_info("work").unwrap().failure.expect("failed");
    let cause = if disk_full {
        "disk full"
    } else {
        "injected I/O failure"
    };
    assert!(reason.contains(cause), "{reason}");

    // While the store refuses writes the queue stays failed, pass after pass.
    some_maintenance_passes().await;
    assert!(engine.queue_info("work").unwrap().failure.is_some());
    let refused = engine
        .enqueue("work", vec![message("x")])
        .await
        .unwrap_err();
    assert_eq!(refused.code(), ErrorCode::StorageFailed, "{refused}");

    plan.clear();
    let info = wait_until_reloaded(&engine, "work").await;
    assert_eq!(
        (info.ack_floor, info.ready, info.leased, info.enqueued_total),
        (0, 3, 0, 3),
        "what the disk says: the ack never committed, the refused enqueue never appended"
    );
    let again = engine.receive("work", "w1", 10, 0).await.unwrap();
    assert_eq!(
        offsets_and_attempts(&again),
        vec![(0, 2), (1, 2), (2, 2)],
        "the message whose ack failed is delivered again, with its next attempt; 1 and 2 lie \
         below the first-delivery frontier, so they count as maybe delivered (core/leases.rs)"
    );
    for delivery in &again {
        engine
            .ack("work", delivery.offset, delivery.attempt)
            .await
            .unwrap();
    }
    assert_eq!(
        engine.enqueue("work", vec![message("d")]).await.unwrap(),
        vec![3]
    );
    engine.shutdown().await.unwrap();
    drop(engine);

    // A restart finds what the reloaded queue committed.
    let engine = Engine::open(config(dir.path(), None)).await.unwrap();
    let info = engine.queue_info("work").unwrap();
    assert_eq!((info.ack_floor, info.ready, info.failure), (3, 1, None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_failed_by_a_full_disk_comes_back_once_the_state_store_takes_writes_again() {
    a_failed_state_commit_heals_once_the_store_takes_writes(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_failed_by_a_state_store_io_error_comes_back_once_the_store_works_again() {
    a_failed_state_commit_heals_once_the_store_takes_writes(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_failed_by_a_full_dead_letter_partition_comes_back_once_the_partition_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let disk = FaultPlan::new();
    disk.as_disk_full(true);
    let io = Arc::new(FaultyIo::new(Arc::new(FileIo), disk.clone()));
    let engine = Engine::open_with_io(config(dir.path(), None), io)
        .await
        .unwrap();
    engine.create_queue(spec("work")).await.unwrap();
    engine.enqueue("work", vec![message("a")]).await.unwrap();
    let delivery = engine.receive("work", "w1", 1, 0).await.unwrap().remove(0);
    // The next log writes are the dead letter's (zeros ahead of it, then the record): the
    // partition refuses them for a full disk, until space returns.
    disk.sticky(true);
    disk.fail_write(1);
    let term = engine.term("work", delivery.offset, 1, "bad input").await;
    assert_eq!(term.unwrap_err().code(), ErrorCode::DiskFull);
    let reason = engine.queue_info("work").unwrap().failure.expect("failed");
    assert!(reason.contains("not committed"), "{reason}");

    // The disk has room: the next pass resumes the partition, and the queue is reloaded.
    disk.clear();
    let info = wait_until_reloaded(&engine, "work").await;
    assert_eq!((info.ready, info.dead_letter_depth), (1, 0), "{info:?}");
    let again = engine.receive("work", "w1", 1, 0).await.unwrap();
    assert_eq!(offsets_and_attempts(&again), vec![(delivery.offset, 2)]);
    engine
        .term("work", delivery.offset, 2, "bad input")
        .await
        .unwrap();
    let letters = engine.dead_letters("work", 0, 10).await.unwrap();
    assert_eq!(
        letters.records.len(),
        1,
        "dead-lettered once, after the reload"
    );
    assert_eq!(
        letters.records[0].offset, 0,
        "the refused append was cut back"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_failed_by_anything_else_waits_for_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(config(dir.path(), None)).await.unwrap();
    engine.create_queue(spec("work")).await.unwrap();
    engine.enqueue("work", vec![message("a")]).await.unwrap();
    let queue = engine.queue("work").unwrap();
    queue.poison(
        "a state store error that is not I/O".into(),
        Healing::Restart,
    );
    some_maintenance_passes().await;
    let info = engine.queue_info("work").unwrap();
    assert!(info.failure.is_some(), "{info:?}");
    assert!(
        Arc::ptr_eq(&engine.queue("work").unwrap(), &queue),
        "not reloaded"
    );
}

#[test]
fn only_io_failures_and_a_full_dead_letter_partition_heal() {
    use omnibus_storage::StorageError;
    let full = || StorageError::DiskFull {
        context: "committing".into(),
    };
    let io = StorageError::io("committing", std::io::Error::other("EIO"));
    let state = || StorageError::State("table of the wrong type".into());
    assert_eq!(Healing::of_commit(&full(), true), Healing::StateStore);
    assert_eq!(Healing::of_commit(&io, true), Healing::StateStore);
    assert_eq!(
        Healing::of_commit(&state(), true),
        Healing::StateStore,
        "a failed reopen after an I/O error reads as a state error"
    );
    assert_eq!(Healing::of_commit(&state(), false), Healing::Restart);
    assert_eq!(
        Healing::of_commit(&StorageError::Closed, false),
        Healing::Restart
    );
    assert_eq!(
        Healing::of_uncommitted(&EngineError::Storage(full())),
        Healing::DeadLetterPartition
    );
    let poisoned = StorageError::Poisoned {
        reason: "EIO".into(),
    };
    assert_eq!(
        Healing::of_uncommitted(&EngineError::Storage(poisoned)),
        Healing::Restart
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_commit_starts_once_the_queue_has_failed_and_one_in_flight_holds_off_the_reload() {
    let dir = tempfile::tempdir().unwrap();
    let plan = FaultPlan::new();
    let engine = Engine::open(config(dir.path(), Some(plan.clone())))
        .await
        .unwrap();
    engine.create_queue(spec("work")).await.unwrap();
    engine.enqueue("work", vec![message("a")]).await.unwrap();
    let queue = engine.queue("work").unwrap();
    // A delivery whose commit waits on a stalled fsync when the queue fails.
    plan.hold_syncs(true);
    let receive = tokio::spawn({
        let engine = engine.clone();
        async move { engine.receive("work", "w1", 1, 0).await }
    });
    let deadline = Instant::now() + Duration::from_secs(5);
    while !queue.has_commits_in_flight() {
        assert!(
            Instant::now() < deadline && !receive.is_finished(),
            "the receive never waited on its commit"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    queue.poison(
        "failed while a commit was in flight".into(),
        Healing::StateStore,
    );
    let put = StateWrite::Put {
        table: keys::TABLE,
        key: keys::paused("work"),
        value: b"paused".to_vec(),
    };
    // Refused at once; were it sent, it would wait on the stalled fsync too.
    let refused = tokio::time::timeout(Duration::from_secs(1), queue.commit(vec![put]))
        .await
        .expect("refused without reaching the state store")
        .unwrap_err();
    assert_eq!(refused.code(), ErrorCode::StorageFailed, "{refused}");
    some_maintenance_passes().await;
    assert!(
        Arc::ptr_eq(&engine.queue("work").unwrap(), &queue),
        "not reloaded while a commit of the failed queue is on its way"
    );

    plan.hold_syncs(false);
    let delivered = receive.await.unwrap().unwrap();
    assert_eq!(offsets_and_attempts(&delivered), vec![(0, 1)]);
    let info = wait_until_reloaded(&engine, "work").await;
    assert_eq!(
        (info.ready, info.paused),
        (1, false),
        "the refused commit wrote nothing"
    );
    let again = engine.receive("work", "w1", 1, 0).await.unwrap();
    assert_eq!(
        offsets_and_attempts(&again),
        vec![(0, 2)],
        "the reload read the delivery committed after the failure"
    );
}
