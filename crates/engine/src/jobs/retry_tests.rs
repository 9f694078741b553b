//! Retrying dead and cancelled jobs by hand.

use super::*;
use crate::queue::{Backoff, QueueSpec};
use crate::EngineConfig;

async fn setup(dir: &std::path::Path) -> Arc<Engine> {
    let engine = Engine::open(EngineConfig::new(dir)).await.unwrap();
    engine
        .create_queue(QueueSpec {
            name: "jobs".into(),
            max_deliver: Some(1),
            backoff: Some(Backoff::Fixed { delay_ms: 0 }),
            ..Default::default()
        })
        .await
        .unwrap();
    engine
}

fn job(name: &str, payload: &str) -> NewJob {
    NewJob {
        name: name.into(),
        payload: Bytes::copy_from_slice(payload.as_bytes()),
        priority: 3,
        ..Default::default()
    }
}

#[tokio::test]
async fn retrying_a_dead_job_enqueues_a_copy_that_runs_again() {
    let dir = tempfile::tempdir().unwrap();
    let engine = setup(dir.path()).await;
    let id = engine
        .enqueue_jobs("jobs", vec![job("resize", "{\"image\":7}")])
        .await
        .unwrap()[0]
        .id
        .clone();
    engine.fetch_jobs("jobs", "w1", 1, 0).await.unwrap();
    let dead = engine
        .fail_job("jobs", &id, 1, "out of memory", None)
        .await
        .unwrap();
    assert_eq!(dead.status, JobStatus::Dead);

    let retried = engine.retry_job("jobs", &id).await.unwrap();
    assert!(retried.created);
    assert_ne!(retried.id, id, "a retry is a new job");
    assert_eq!(retried.status, JobStatus::Waiting);
    let fetched = engine.fetch_jobs("jobs", "w2", 1, 0).await.unwrap();
    assert_eq!(fetched.len(), 1);
    assert_eq!(fetched[0].job.id, retried.id);
    assert_eq!(fetched[0].job.name, "resize");
    assert_eq!(fetched[0].job.payload.as_ref(), b"{\"image\":7}");
    assert_eq!(fetched[0].job.priority, 3);
    assert_eq!(fetched[0].attempt, 1, "fresh attempts");
    let old = engine.get_job("jobs", &id).await.unwrap();
    assert_eq!(old.status, JobStatus::Dead, "the old job keeps its history");
    assert_eq!(old.errors.len(), 1);
}

#[tokio::test]
async fn a_cancelled_job_can_be_retried_but_a_waiting_or_completed_one_cannot() {
    let dir = tempfile::tempdir().unwrap();
    let engine = setup(dir.path()).await;
    let enqueued = engine
        .enqueue_jobs("jobs", vec![job("a", "1"), job("b", "2")])
        .await
        .unwrap();
    let (first, second) = (enqueued[0].id.clone(), enqueued[1].id.clone());
    let waiting = engine.retry_job("jobs", &first).await;
    assert!(
        matches!(waiting, Err(EngineError::BadRequest(_))),
        "{waiting:?}"
    );
    engine.cancel_job("jobs", &first).await.unwrap();
    let retried = engine.retry_job("jobs", &first).await.unwrap();
    assert_eq!(retried.status, JobStatus::Waiting);

    let fetched = engine.fetch_jobs("jobs", "w1", 1, 0).await.unwrap();
    assert_eq!(fetched[0].job.id, second);
    engine.complete_job("jobs", &second, 1, None).await.unwrap();
    let completed = engine.retry_job("jobs", &second).await;
    assert!(
        matches!(completed, Err(EngineError::BadRequest(_))),
        "{completed:?}"
    );
    let unknown = engine.retry_job("jobs", "999").await;
    assert!(
        matches!(unknown, Err(EngineError::JobNotFound(_))),
        "{unknown:?}"
    );
}
