//! Where a job lives: its message until something changes, a record in `jobs` while live
//! after progress or a failure, a record in `job_final` once finished. Through the engine API
//! on real files, restarts included.

use super::store::{job_key, JOBS_TABLE};
use super::*;
use crate::queue::{Backoff, QueueSpec};
use crate::EngineConfig;

async fn open(dir: &std::path::Path) -> Arc<Engine> {
    Engine::open(EngineConfig::new(dir)).await.unwrap()
}

async fn setup(dir: &std::path::Path) -> Arc<Engine> {
    let engine = open(dir).await;
    engine
        .create_queue(QueueSpec {
            name: "jobs".into(),
            lease_ms: Some(30_000),
            max_deliver: Some(5),
            backoff: Some(Backoff::Fixed { delay_ms: 60_000 }),
            ..Default::default()
        })
        .await
        .unwrap();
    engine
}

fn job(name: &str) -> NewJob {
    NewJob {
        name: name.into(),
        payload: Bytes::from_static(b"payload"),
        ..Default::default()
    }
}

fn has_live_record(engine: &Engine, id: &str) -> bool {
    let key = job_key("jobs", id.parse().unwrap());
    engine.state.get(JOBS_TABLE, &key).unwrap().is_some()
}

#[tokio::test]
async fn a_job_is_read_back_from_its_message_with_every_option_it_was_enqueued_with() {
    let dir = tempfile::tempdir().unwrap();
    let engine = setup(dir.path()).await;
    let before = crate::engine::now_ms();
    let id = engine
        .enqueue_jobs(
            "jobs",
            vec![NewJob {
                priority: 7,
                max_attempts: Some(2),
                backoff: Some(Backoff::Fixed { delay_ms: 0 }),
                timeout_ms: Some(45_000),
                unique_key: Some("order-17".into()),
                parent: Some("batch-3".into()),
                ..job("resize")
            }],
        )
        .await
        .unwrap()[0]
        .id
        .clone();
    assert!(!has_live_record(&engine, &id), "enqueue writes no record");
    let waiting = engine.get_job("jobs", &id).await.unwrap();
    assert_eq!(waiting.status, JobStatus::Waiting);
    assert_eq!(waiting.name, "resize");
    assert_eq!(waiting.payload.as_ref(), b"payload");
    assert_eq!(waiting.priority, 7);
    assert_eq!(waiting.max_attempts, 2);
    assert_eq!(waiting.backoff, Some(Backoff::Fixed { delay_ms: 0 }));
    assert_eq!(waiting.timeout_ms, Some(45_000));
    assert_eq!(waiting.unique_key.as_deref(), Some("order-17"));
    assert_eq!(waiting.parent.as_deref(), Some("batch-3"));
    assert!(waiting.created_ms >= before && waiting.created_ms <= crate::engine::now_ms());

    let fetched = engine.fetch_jobs("jobs", "w", 1, 0).await.unwrap();
    let active = &fetched[0];
    assert_eq!(active.job.name, "resize");
    assert_eq!(active.job.parent.as_deref(), Some("batch-3"));
    let lease = active.lease_deadline_ms - crate::engine::now_ms();
    assert!(
        lease > 40_000,
        "the job's timeout sets its lease: {lease} ms"
    );

    // The job's own policy applies: no wait before the retry (the queue's is a minute), and
    // dead after its second attempt (the queue allows five).
    let failed = engine
        .fail_job("jobs", &id, 1, "disk full", None)
        .await
        .unwrap();
    assert_eq!(failed.status, JobStatus::Failed);
    assert!(has_live_record(&engine, &id), "a failure writes the record");
    let retry = engine.fetch_jobs("jobs", "w", 1, 2_000).await.unwrap();
    assert_eq!(retry[0].attempt, 2);
    assert_eq!(retry[0].job.errors[0].message, "disk full");
    let dead = engine
        .fail_job("jobs", &id, 2, "disk still full", None)
        .await
        .unwrap();
    assert_eq!(dead.status, JobStatus::Dead);
    assert!(
        !has_live_record(&engine, &id),
        "the record moved to job_final"
    );

    engine.shutdown().await.unwrap();
    drop(engine);
    let engine = open(dir.path()).await;
    let after = engine.get_job("jobs", &id).await.unwrap();
    assert_eq!(after.status, JobStatus::Dead);
    assert_eq!(after.errors.len(), 2);
    assert_eq!(
        (after.priority, after.parent.as_deref(), after.timeout_ms),
        (7, Some("batch-3"), Some(45_000))
    );
    assert_eq!(after.payload.as_ref(), b"payload");
}

#[tokio::test]
async fn listing_all_jobs_merges_live_and_finished_ones_in_id_order_across_pages() {
    let dir = tempfile::tempdir().unwrap();
    let engine = setup(dir.path()).await;
    let mut new_jobs: Vec<NewJob> = (0..8).map(|i| job(&format!("job-{i}"))).collect();
    new_jobs[2].max_attempts = Some(1);
    new_jobs[4].delay_ms = Some(60_000);
    let ids: Vec<String> = engine
        .enqueue_jobs("jobs", new_jobs)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    engine.cancel_job("jobs", &ids[1]).await.unwrap();
    // Fetches 0, 2, 3 (priority 0, in order; 1 is cancelled, 4 is delayed).
    let fetched = engine.fetch_jobs("jobs", "w", 3, 0).await.unwrap();
    let fetched_ids: Vec<&str> = fetched.iter().map(|a| a.job.id.as_str()).collect();
    assert_eq!(fetched_ids, [&ids[0], &ids[2], &ids[3]]);
    engine
        .complete_job("jobs", &ids[0], 1, Some(serde_json::json!("ok")))
        .await
        .unwrap();
    engine
        .fail_job("jobs", &ids[2], 1, "boom", None)
        .await
        .unwrap();
    let expected = [
        JobStatus::Completed,
        JobStatus::Cancelled,
        JobStatus::Dead,
        JobStatus::Active,
        JobStatus::Delayed,
        JobStatus::Waiting,
        JobStatus::Waiting,
        JobStatus::Waiting,
    ];
    let list_all = |engine: Arc<Engine>| async move {
        let mut listed = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..10 {
            let page = engine
                .list_jobs("jobs", None, after.as_deref(), 3)
                .await
                .unwrap();
            listed.extend(page.jobs.into_iter().map(|j| (j.id, j.status, j.name)));
            after = page.next;
            if after.is_none() {
                break;
            }
        }
        listed
    };
    let listed = list_all(engine.clone()).await;
    let want: Vec<(String, JobStatus, String)> = ids
        .iter()
        .zip(expected)
        .enumerate()
        .map(|(i, (id, status))| (id.clone(), status, format!("job-{i}")))
        .collect();
    assert_eq!(listed, want);
    let stats = engine.job_stats("jobs").await.unwrap();
    assert!(stats.oldest_waiting_ms.is_some_and(|age| age >= 0));
    assert_eq!((stats.completed, stats.dead, stats.cancelled), (1, 1, 1));

    // After a restart the leased job is waiting again; the rest are where they were.
    engine.shutdown().await.unwrap();
    drop(engine);
    let engine = open(dir.path()).await;
    let listed = list_all(engine.clone()).await;
    let mut want = want;
    want[3].1 = JobStatus::Waiting;
    assert_eq!(listed, want);
    let result = engine.get_job("jobs", &ids[0]).await.unwrap().result;
    assert_eq!(result, Some(serde_json::json!("ok")));
}

#[tokio::test]
async fn deleting_a_queue_deletes_its_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let engine = setup(dir.path()).await;
    let unique = NewJob {
        unique_key: Some("once".into()),
        unique_window_ms: Some(3_600_000),
        ..job("a")
    };
    let ids: Vec<String> = engine
        .enqueue_jobs("jobs", vec![unique.clone(), job("b")])
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    engine.fetch_jobs("jobs", "w", 2, 0).await.unwrap();
    engine.complete_job("jobs", &ids[0], 1, None).await.unwrap();
    engine
        .job_progress("jobs", &ids[1], 1, serde_json::json!(50))
        .await
        .unwrap();
    engine.delete_queue("jobs").await.unwrap();
    engine.shutdown().await.unwrap();
    drop(engine);
    let engine = setup(dir.path()).await;
    let page = engine.list_jobs("jobs", None, None, 100).await.unwrap();
    assert!(page.jobs.is_empty(), "{:?}", page.jobs);
    let stats = engine.job_stats("jobs").await.unwrap();
    assert_eq!((stats.completed, stats.waiting), (0, 0));
    let again = engine.enqueue_jobs("jobs", vec![unique]).await.unwrap();
    assert!(again[0].created, "the unique key went with the queue");
}

#[tokio::test]
async fn finished_counts_include_jobs_finished_before_and_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let engine = setup(dir.path()).await;
    let ids: Vec<String> = engine
        .enqueue_jobs("jobs", (0..4).map(|i| job(&format!("j{i}"))).collect())
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    engine.fetch_jobs("jobs", "w", 2, 0).await.unwrap();
    engine.complete_job("jobs", &ids[0], 1, None).await.unwrap();
    engine.cancel_job("jobs", &ids[1]).await.unwrap();
    engine.shutdown().await.unwrap();
    drop(engine);
    let engine = open(dir.path()).await;
    // Finished after the restart, before anyone asked for the counts.
    let fetched = engine.fetch_jobs("jobs", "w", 2, 0).await.unwrap();
    let answers = engine
        .complete_jobs(
            "jobs",
            fetched
                .iter()
                .map(|a| JobCompletion {
                    id: a.job.id.clone(),
                    attempt: a.attempt,
                    result: None,
                })
                .collect(),
        )
        .await
        .unwrap();
    assert!(answers.iter().all(Result::is_ok));
    let stats = engine.job_stats("jobs").await.unwrap();
    assert_eq!((stats.completed, stats.cancelled), (3, 1));
    assert_eq!(
        stats.completed_last_minute, 0,
        "loaded counts carry no times"
    );
    // Counted as they happen once loaded.
    let id = engine
        .enqueue_jobs("jobs", vec![job("late")])
        .await
        .unwrap()[0]
        .id
        .clone();
    let attempt = engine.fetch_jobs("jobs", "w", 1, 0).await.unwrap()[0].attempt;
    engine
        .complete_job("jobs", &id, attempt, None)
        .await
        .unwrap();
    let stats = engine.job_stats("jobs").await.unwrap();
    assert_eq!((stats.completed, stats.completed_last_minute), (4, 1));
    // The queue's own rate counts every completion since the restart (one call or a batch).
    let rates = engine.queue_info("jobs").unwrap().rates;
    assert_eq!(rates.completed.last_minute, 3);
}
