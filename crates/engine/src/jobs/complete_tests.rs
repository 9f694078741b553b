//! Completing and fetching the next jobs in one call.

use std::time::Duration;

use super::*;
use crate::queue::QueueSpec;
use crate::EngineConfig;

async fn setup(dir: &std::path::Path, prefetch: usize) -> Arc<Engine> {
    let engine = Engine::open(EngineConfig::new(dir)).await.unwrap();
    engine
        .create_queue(QueueSpec {
            name: "jobs".into(),
            lease_ms: Some(30_000),
            max_unacked_per_worker: Some(prefetch),
            ..Default::default()
        })
        .await
        .unwrap();
    engine
}

fn jobs(n: usize) -> Vec<NewJob> {
    (0..n)
        .map(|i| NewJob {
            name: "work".into(),
            payload: Bytes::from(format!("p{i}")),
            ..Default::default()
        })
        .collect()
}

fn completions(active: &[ActiveJob]) -> Vec<JobCompletion> {
    active
        .iter()
        .map(|a| JobCompletion {
            id: a.job.id.clone(),
            attempt: a.attempt,
            result: Some(serde_json::json!({"done": a.job.id})),
        })
        .collect()
}

fn ids(active: &[ActiveJob]) -> Vec<String> {
    active.iter().map(|a| a.job.id.clone()).collect()
}

#[tokio::test]
async fn completing_a_batch_and_fetching_the_next_is_one_commit() {
    let dir = tempfile::tempdir().unwrap();
    // The worker may hold 3 at a time: the next 3 fit only because the acks free them first.
    let engine = setup(dir.path(), 3).await;
    engine.enqueue_jobs("jobs", jobs(8)).await.unwrap();
    let first = engine.fetch_jobs("jobs", "w", 3, 0).await.unwrap();
    assert_eq!(ids(&first), ["0", "1", "2"]);
    let before = engine.state_stats().commits;
    let outcome = engine
        .complete_and_fetch_jobs("jobs", completions(&first), "w", 3, 0)
        .await
        .unwrap();
    assert_eq!(
        engine.state_stats().commits - before,
        1,
        "acks, final records and deliveries in one commit"
    );
    for (done, id) in outcome.completed.iter().zip(["0", "1", "2"]) {
        let job = done.as_ref().unwrap();
        assert_eq!((job.id.as_str(), job.status), (id, JobStatus::Completed));
    }
    let next = outcome.next.unwrap();
    assert_eq!(ids(&next), ["3", "4", "5"]);
    assert!(next.iter().all(|a| a.attempt == 1 && a.job.name == "work"));
    assert_eq!(next[0].job.payload.as_ref(), b"p3");
    let done = engine.get_job("jobs", "1").await.unwrap();
    assert_eq!(done.result, Some(serde_json::json!({"done": "1"})));
    assert_eq!(engine.queue_info("jobs").unwrap().leased, 3);
}

#[tokio::test]
async fn a_stale_completion_fails_alone_and_the_fetch_still_happens() {
    let dir = tempfile::tempdir().unwrap();
    let engine = setup(dir.path(), 10).await;
    engine.enqueue_jobs("jobs", jobs(4)).await.unwrap();
    let first = engine.fetch_jobs("jobs", "w", 2, 0).await.unwrap();
    let mut batch = completions(&first);
    batch[1].attempt = 7;
    let outcome = engine
        .complete_and_fetch_jobs("jobs", batch, "w", 5, 0)
        .await
        .unwrap();
    assert!(outcome.completed[0].is_ok());
    assert!(matches!(
        outcome.completed[1],
        Err(EngineError::StaleAttempt(_))
    ));
    assert_eq!(ids(&outcome.next.unwrap()), ["2", "3"]);
    assert_eq!(
        engine.get_job("jobs", "1").await.unwrap().status,
        JobStatus::Active,
        "the stale completion changed nothing"
    );
}

#[tokio::test]
async fn with_nothing_ready_the_fetch_waits_after_the_completions_are_durable() {
    let dir = tempfile::tempdir().unwrap();
    let engine = setup(dir.path(), 10).await;
    engine.enqueue_jobs("jobs", jobs(1)).await.unwrap();
    let first = engine.fetch_jobs("jobs", "w", 1, 0).await.unwrap();
    let late = {
        let engine = engine.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            engine.enqueue_jobs("jobs", jobs(1)).await.unwrap()
        })
    };
    let outcome = engine
        .complete_and_fetch_jobs("jobs", completions(&first), "w", 5, 10_000)
        .await
        .unwrap();
    assert!(outcome.completed[0].is_ok());
    let next = outcome.next.unwrap();
    assert_eq!(ids(&next), [late.await.unwrap()[0].id.clone()]);
    assert_eq!(
        engine
            .get_job("jobs", &first[0].job.id)
            .await
            .unwrap()
            .status,
        JobStatus::Completed
    );
    // Nothing at all: an empty fetch after the wait, completions answered.
    let outcome = engine
        .complete_and_fetch_jobs("jobs", completions(&next), "w", 5, 50)
        .await
        .unwrap();
    assert!(outcome.completed[0].is_ok());
    assert!(outcome.next.unwrap().is_empty());
}
