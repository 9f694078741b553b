//! Jobs on a queue whose state commit fails or stalls: nothing is reported done that the disk
//! does not hold, and a dead job's record goes through the committer with its queue's commit.

use std::time::{Duration, Instant};

use omnibus_storage::io::FaultPlan;
use omnibus_types::ErrorCode;

use super::*;
use crate::queue::failure_tests::engine_with_faults;
use crate::queue::{Backoff, QueueSpec};

async fn setup(dir: &std::path::Path, plan: Option<Arc<FaultPlan>>) -> Arc<Engine> {
    let engine = engine_with_faults(dir, plan).await;
    if engine.queue_info("jobs").is_err() {
        engine
            .create_queue(QueueSpec {
                name: "jobs".into(),
                lease_ms: Some(60_000),
                backoff: Some(Backoff::Fixed { delay_ms: 0 }),
                ..Default::default()
            })
            .await
            .unwrap();
    }
    engine
}

fn job(max_attempts: u32) -> NewJob {
    NewJob {
        name: "email".into(),
        payload: Bytes::from_static(b"{}"),
        max_attempts: Some(max_attempts),
        ..Default::default()
    }
}

/// Enqueues one job and fetches it: its id and attempt.
async fn running_job(engine: &Engine, max_attempts: u32) -> (String, u32) {
    let id = engine
        .enqueue_jobs("jobs", vec![job(max_attempts)])
        .await
        .unwrap()[0]
        .id
        .clone();
    let active = engine.fetch_jobs("jobs", "w", 1, 0).await.unwrap();
    assert_eq!(active[0].job.id, id);
    (id, active[0].attempt)
}

#[tokio::test]
async fn a_completion_whose_commit_fails_poisons_the_queue_and_is_not_completed_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let plan = FaultPlan::new();
    let id = {
        let engine = setup(dir.path(), Some(plan.clone())).await;
        let mut events = engine.job_events();
        let (id, attempt) = running_job(&engine, 3).await;
        plan.fail_write(1);
        let error = engine
            .complete_job(
                "jobs",
                &id,
                attempt,
                Some(serde_json::json!({"sent": true})),
            )
            .await
            .unwrap_err();
        assert_eq!(error.code(), ErrorCode::StorageFailed, "{error}");
        let failed = engine.fetch_jobs("jobs", "w", 1, 0).await.unwrap_err();
        assert_eq!(failed.code(), ErrorCode::StorageFailed, "{failed}");
        assert!(engine.queue_info("jobs").unwrap().failure.is_some());
        let unknown = engine.get_job("jobs", &id).await.unwrap_err();
        assert_eq!(unknown.code(), ErrorCode::StorageFailed, "{unknown}");
        let mut queue_failed = None;
        while let Ok(event) = events.try_recv() {
            assert_ne!(event.kind, "completed", "no completion was announced");
            if event.kind == QUEUE_FAILED_EVENT {
                queue_failed = event.error;
            }
        }
        let reason = queue_failed.expect("event subscribers are told the queue failed");
        assert!(reason.contains("injected I/O failure"), "{reason}");
        let _ = engine.shutdown().await;
        id
    };

    let engine = setup(dir.path(), None).await;
    let job = engine.get_job("jobs", &id).await.unwrap();
    assert_eq!(job.status, JobStatus::Waiting, "{job:?}");
    assert_eq!(job.result, None);
    let again = engine.fetch_jobs("jobs", "w", 1, 0).await.unwrap();
    assert_eq!(
        (again[0].job.id.as_str(), again[0].attempt),
        (id.as_str(), 2)
    );
    engine.complete_job("jobs", &id, 2, None).await.unwrap();
    assert_eq!(
        engine.get_job("jobs", &id).await.unwrap().status,
        JobStatus::Completed
    );
}

#[tokio::test]
async fn a_dead_job_is_announced_only_once_its_record_is_durable_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let plan = FaultPlan::new();
    let (dead, failed) = {
        let engine = setup(dir.path(), Some(plan.clone())).await;
        let mut events = engine.job_events();
        let (dead, attempt) = running_job(&engine, 1).await;
        engine
            .fail_job("jobs", &dead, attempt, "smtp down", None)
            .await
            .unwrap();
        let announced: Vec<_> = std::iter::from_fn(|| events.try_recv().ok())
            .filter(|event| event.id == dead)
            .map(|event| event.kind)
            .collect();
        assert!(announced.contains(&"dead"), "{announced:?}");

        // The next job's dead-lettering commit fails: it is neither announced nor dead.
        let (failed, attempt) = running_job(&engine, 1).await;
        plan.fail_write(1);
        let error = engine
            .fail_job("jobs", &failed, attempt, "smtp down", None)
            .await
            .unwrap_err();
        assert_eq!(error.code(), ErrorCode::StorageFailed, "{error}");
        while let Ok(event) = events.try_recv() {
            assert!(
                !(event.id == failed && event.kind == "dead"),
                "a dead job whose record failed to commit was announced"
            );
        }
        let _ = engine.shutdown().await;
        (dead, failed)
    };

    let engine = setup(dir.path(), None).await;
    let record = engine.get_job("jobs", &dead).await.unwrap();
    assert_eq!(record.status, JobStatus::Dead);
    assert_eq!(
        record.errors.last().map(|e| e.message.as_str()),
        Some("smtp down")
    );
    let not_dead = engine.get_job("jobs", &failed).await.unwrap();
    assert_eq!(not_dead.status, JobStatus::Waiting, "{not_dead:?}");
}

/// One worker thread: a synchronous fsync on it would stall every task, the test's included.
#[tokio::test(flavor = "current_thread")]
async fn a_stalled_dead_letter_commit_does_not_block_the_async_worker() {
    let dir = tempfile::tempdir().unwrap();
    let plan = FaultPlan::new();
    let engine = setup(dir.path(), Some(plan.clone())).await;
    let (id, attempt) = running_job(&engine, 1).await;
    plan.hold_syncs(true);
    // Released after a while whatever happens, so a regression fails instead of hanging.
    let (done, finished) = std::sync::mpsc::channel::<()>();
    let release = std::thread::spawn({
        let plan = plan.clone();
        move || {
            let _ = finished.recv_timeout(Duration::from_secs(3));
            plan.hold_syncs(false);
        }
    });
    let failing = tokio::spawn({
        let engine = engine.clone();
        async move { engine.fail_job("jobs", &id, attempt, "boom", None).await }
    });
    let started = Instant::now();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the runtime's only thread was blocked for {:?} by the dead job's write",
        started.elapsed()
    );
    assert!(
        !failing.is_finished(),
        "the dead-lettering waits for its fsync"
    );
    drop(done);
    let job = failing.await.unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Dead);
    release.join().unwrap();
}
