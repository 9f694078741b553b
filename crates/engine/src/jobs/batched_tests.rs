//! Fetches that do not wait for the disk, and `batched` completions: answered at once,
//! readable at once, durable with the next group commit, flushed by a graceful shutdown, and
//! run again (never lost) when the broker stops before their commit.

use std::time::Duration;

use omnibus_storage::io::FaultPlan;

use super::*;
use crate::queue::failure_tests::engine_with_faults;
use crate::queue::{Backoff, Completions, QueueSpec};

async fn setup(
    dir: &std::path::Path,
    plan: &Arc<FaultPlan>,
    completions: Completions,
) -> Arc<Engine> {
    let engine = engine_with_faults(dir, Some(plan.clone())).await;
    if engine.queue_info("jobs").is_err() {
        engine
            .create_queue(QueueSpec {
                name: "jobs".into(),
                lease_ms: Some(60_000),
                backoff: Some(Backoff::Fixed { delay_ms: 0 }),
                completions: Some(completions),
                ..Default::default()
            })
            .await
            .unwrap();
    }
    engine
}

async fn enqueue(engine: &Engine, count: usize) -> Vec<String> {
    let jobs = (0..count)
        .map(|i| NewJob {
            name: format!("job-{i}"),
            payload: Bytes::from_static(b"{}"),
            ..Default::default()
        })
        .collect();
    engine
        .enqueue_jobs("jobs", jobs)
        .await
        .unwrap()
        .into_iter()
        .map(|created| created.id)
        .collect()
}

/// Runs `future` while the state store's fsyncs are held: it must finish without one.
async fn without_fsync<T>(
    plan: &Arc<FaultPlan>,
    future: impl std::future::Future<Output = T>,
) -> T {
    plan.hold_syncs(true);
    let outcome = tokio::time::timeout(Duration::from_secs(2), future).await;
    plan.hold_syncs(false);
    outcome.expect("it waited for an fsync")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_behind_the_first_delivery_frontier_does_not_wait_for_the_disk() {
    let dir = tempfile::tempdir().unwrap();
    let plan = FaultPlan::new();
    let engine = setup(dir.path(), &plan, Completions::Fsync).await;
    let ids = enqueue(&engine, 3).await;
    // The first fetch of a new queue raises the frontier and waits for it.
    let first = engine.fetch_jobs("jobs", "w", 1, 0).await.unwrap();
    assert_eq!(first[0].job.id, ids[0]);
    let second = without_fsync(&plan, engine.fetch_jobs("jobs", "w", 1, 0))
        .await
        .unwrap();
    assert_eq!(
        (second[0].job.id.as_str(), second[0].attempt),
        (ids[1].as_str(), 1)
    );
    // A completion with `fsync` still waits for its commit.
    plan.hold_syncs(true);
    let completing = tokio::spawn({
        let engine = engine.clone();
        let id = ids[1].clone();
        async move { engine.complete_job("jobs", &id, 1, None).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !completing.is_finished(),
        "an fsync completion waits for its fsync"
    );
    plan.hold_syncs(false);
    assert_eq!(
        completing.await.unwrap().unwrap().status,
        JobStatus::Completed
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batched_completions_are_answered_and_readable_before_their_fsync_and_survive_a_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let plan = FaultPlan::new();
    let ids = {
        let engine = setup(dir.path(), &plan, Completions::Batched).await;
        let ids = enqueue(&engine, 20).await;
        let active = engine.fetch_jobs("jobs", "w", 20, 0).await.unwrap();
        let completions: Vec<JobCompletion> = active
            .iter()
            .map(|job| JobCompletion {
                id: job.job.id.clone(),
                attempt: job.attempt,
                result: Some(serde_json::json!({"ok": true})),
            })
            .collect();
        let (one, rest) = completions.split_at(1);
        let done = without_fsync(
            &plan,
            engine.complete_job("jobs", &one[0].id, one[0].attempt, one[0].result.clone()),
        )
        .await
        .unwrap();
        assert_eq!(done.status, JobStatus::Completed);
        let answers = without_fsync(&plan, engine.complete_jobs("jobs", rest.to_vec()))
            .await
            .unwrap();
        assert!(answers.iter().all(|answer| answer.is_ok()));
        plan.hold_syncs(true);
        // Read back while the commit is still held: completed, with its result.
        let read = engine.get_job("jobs", &ids[0]).await.unwrap();
        assert_eq!(read.status, JobStatus::Completed);
        assert_eq!(read.result, Some(serde_json::json!({"ok": true})));
        plan.hold_syncs(false);
        // A graceful shutdown waits for the commits it answered early.
        engine.shutdown().await.unwrap();
        ids
    };
    let engine = setup(dir.path(), &plan, Completions::Batched).await;
    for id in &ids {
        assert_eq!(
            engine.get_job("jobs", id).await.unwrap().status,
            JobStatus::Completed
        );
    }
    assert!(engine
        .fetch_jobs("jobs", "w", 20, 0)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batched_completion_whose_commit_never_lands_runs_again_and_is_never_lost() {
    let dir = tempfile::tempdir().unwrap();
    let plan = FaultPlan::new();
    let id = {
        let engine = setup(dir.path(), &plan, Completions::Batched).await;
        let id = enqueue(&engine, 1).await.remove(0);
        let active = engine.fetch_jobs("jobs", "w", 1, 0).await.unwrap();
        // The broker "stops" before the commit: it fails instead of landing.
        plan.sticky(true);
        plan.fail_write(1);
        let done = engine
            .complete_job("jobs", &id, active[0].attempt, None)
            .await
            .unwrap();
        assert_eq!(
            done.status,
            JobStatus::Completed,
            "answered before the commit"
        );
        for _ in 0..100 {
            if engine.queue_info("jobs").unwrap().failure.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(
            engine.queue_info("jobs").unwrap().failure.is_some(),
            "the failed commit poisons the queue"
        );
        plan.clear();
        id
    };
    let engine = setup(dir.path(), &plan, Completions::Batched).await;
    let again = engine.fetch_jobs("jobs", "w", 1, 0).await.unwrap();
    assert_eq!(again.len(), 1, "the job runs again");
    assert_eq!(again[0].job.id, id);
    assert_eq!(again[0].attempt, 2);
}
