//! Jobs through the engine API, on real files.

use std::time::Duration;

use super::*;
use crate::queue::{Backoff, QueueSpec};
use crate::EngineConfig;

async fn setup(dir: &std::path::Path, lease_ms: u64, max_deliver: u32) -> Arc<Engine> {
    let engine = Engine::open(EngineConfig::new(dir)).await.unwrap();
    engine
        .create_queue(QueueSpec {
            name: "jobs".into(),
            lease_ms: Some(lease_ms),
            max_deliver: Some(max_deliver),
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
        ..Default::default()
    }
}

#[tokio::test]
async fn a_job_goes_from_waiting_through_progress_to_completed_with_events() {
    let dir = tempfile::tempdir().unwrap();
    let engine = setup(dir.path(), 30_000, 3).await;
    let mut events = engine.job_events();
    let enqueued = engine
        .enqueue_jobs("jobs", vec![job("email", "{\"to\":\"a\"}")])
        .await
        .unwrap();
    let id = enqueued[0].id.clone();
    assert!(enqueued[0].created);
    assert_eq!(
        engine.get_job("jobs", &id).await.unwrap().status,
        JobStatus::Waiting
    );
    let fetched = engine.fetch_jobs("jobs", "w1", 10, 0).await.unwrap();
    assert_eq!(fetched.len(), 1);
    assert_eq!(fetched[0].job.name, "email");
    assert_eq!(fetched[0].job.payload.as_ref(), b"{\"to\":\"a\"}");
    assert_eq!(
        engine.get_job("jobs", &id).await.unwrap().status,
        JobStatus::Active
    );
    engine
        .job_progress("jobs", &id, 1, serde_json::json!({"percent": 50}))
        .await
        .unwrap();
    let done = engine
        .complete_job("jobs", &id, 1, Some(serde_json::json!({"sent": true})))
        .await
        .unwrap();
    assert_eq!(done.status, JobStatus::Completed);
    let stored = engine.get_job("jobs", &id).await.unwrap();
    assert_eq!(stored.status, JobStatus::Completed);
    assert_eq!(stored.result, Some(serde_json::json!({"sent": true})));
    assert_eq!(stored.progress, Some(serde_json::json!({"percent": 50})));
    let kinds: Vec<&str> = std::iter::from_fn(|| events.try_recv().ok())
        .map(|e| e.kind)
        .collect();
    assert_eq!(kinds, vec!["enqueued", "active", "progress", "completed"]);
    let stats = engine.job_stats("jobs").await.unwrap();
    assert_eq!((stats.completed, stats.waiting, stats.active), (1, 0, 0));
}

#[tokio::test]
async fn unique_key_twice_gives_one_job() {
    let dir = tempfile::tempdir().unwrap();
    let engine = setup(dir.path(), 30_000, 3).await;
    let keyed = || NewJob {
        unique_key: Some("invoice-7".into()),
        ..job("bill", "x")
    };
    let first = engine.enqueue_jobs("jobs", vec![keyed()]).await.unwrap();
    let second = engine
        .enqueue_jobs("jobs", vec![keyed(), keyed()])
        .await
        .unwrap();
    assert!(first[0].created);
    assert!(!second[0].created && !second[1].created);
    assert_eq!(second[0].id, first[0].id);
    assert_eq!(second[1].id, first[0].id);
    assert_eq!(engine.job_stats("jobs").await.unwrap().waiting, 1);
}

#[tokio::test]
async fn a_failing_job_retries_then_dies_with_its_error_history() {
    let dir = tempfile::tempdir().unwrap();
    let engine = setup(dir.path(), 30_000, 3).await;
    let id = engine
        .enqueue_jobs("jobs", vec![job("flaky", "p")])
        .await
        .unwrap()[0]
        .id
        .clone();
    for attempt in 1..=3u32 {
        let fetched = engine.fetch_jobs("jobs", "w", 1, 1_000).await.unwrap();
        assert_eq!(fetched[0].attempt, attempt);
        let after = engine
            .fail_job("jobs", &id, attempt, &format!("error {attempt}"), None)
            .await
            .unwrap();
        let expected = if attempt < 3 {
            JobStatus::Failed
        } else {
            JobStatus::Dead
        };
        assert_eq!(after.status, expected);
    }
    let dead = engine.get_job("jobs", &id).await.unwrap();
    assert_eq!(dead.status, JobStatus::Dead);
    assert_eq!(dead.errors.len(), 3);
    assert_eq!(dead.errors[2].message, "error 3");
    let page = engine
        .list_jobs("jobs", Some(JobStatus::Dead), None, 10)
        .await
        .unwrap();
    assert_eq!(page.jobs.len(), 1);
    assert_eq!(engine.queue_info("jobs").unwrap().dead_letter_depth, 1);
}

#[tokio::test]
async fn a_job_whose_worker_vanishes_is_redelivered_and_dies_after_max_attempts() {
    let dir = tempfile::tempdir().unwrap();
    let engine = setup(dir.path(), 500, 2).await;
    let id = engine
        .enqueue_jobs("jobs", vec![job("lost", "p")])
        .await
        .unwrap()[0]
        .id
        .clone();
    let first = engine.fetch_jobs("jobs", "w1", 1, 0).await.unwrap();
    assert_eq!(first[0].attempt, 1);
    let second = engine.fetch_jobs("jobs", "w2", 1, 2_000).await.unwrap();
    assert_eq!(second[0].attempt, 2, "redelivered after the lease");
    let stale = engine.complete_job("jobs", &id, 1, None).await.unwrap_err();
    assert_eq!(stale.code(), omnibus_types::ErrorCode::StaleAttempt);
    // Let the second lease expire too: max attempts reached, the queue dead-letters it. Poll
    // (bounded) rather than sleep a fixed time, so a loaded machine does not make this flaky.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let job = loop {
        let job = engine.get_job("jobs", &id).await.unwrap();
        if job.status == JobStatus::Dead || std::time::Instant::now() > deadline {
            break job;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(job.status, JobStatus::Dead);
    // The dead-letter hook records the final status right after the queue dead-letters it;
    // listing by status sees it once the hook has run.
    let page = loop {
        let page = engine
            .list_jobs("jobs", Some(JobStatus::Dead), None, 10)
            .await
            .unwrap();
        if !page.jobs.is_empty() || std::time::Instant::now() > deadline {
            break page;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(page.jobs.len(), 1, "recorded as dead by the queue's hook");
}

#[tokio::test]
async fn cancel_and_list_by_status_with_paging() {
    let dir = tempfile::tempdir().unwrap();
    let engine = setup(dir.path(), 30_000, 3).await;
    let ids: Vec<String> = engine
        .enqueue_jobs("jobs", (0..5).map(|i| job("n", &i.to_string())).collect())
        .await
        .unwrap()
        .into_iter()
        .map(|j| j.id)
        .collect();
    let delayed = engine
        .enqueue_jobs(
            "jobs",
            vec![NewJob {
                delay_ms: Some(60_000),
                ..job("later", "d")
            }],
        )
        .await
        .unwrap();
    assert_eq!(delayed[0].status, JobStatus::Delayed);
    let cancelled = engine.cancel_job("jobs", &ids[1]).await.unwrap();
    assert_eq!(cancelled.status, JobStatus::Cancelled);
    assert!(
        engine.cancel_job("jobs", &ids[1]).await.is_err(),
        "already cancelled"
    );
    let page1 = engine
        .list_jobs("jobs", Some(JobStatus::Waiting), None, 2)
        .await
        .unwrap();
    let page2 = engine
        .list_jobs("jobs", Some(JobStatus::Waiting), page1.next.as_deref(), 2)
        .await
        .unwrap();
    let listed: Vec<String> = page1
        .jobs
        .iter()
        .chain(page2.jobs.iter())
        .map(|j| j.id.clone())
        .collect();
    assert_eq!(
        listed,
        vec![
            ids[0].clone(),
            ids[2].clone(),
            ids[3].clone(),
            ids[4].clone()
        ]
    );
    let delayed_page = engine
        .list_jobs("jobs", Some(JobStatus::Delayed), None, 10)
        .await
        .unwrap();
    assert_eq!(delayed_page.jobs[0].name, "later");
    let fetched = engine.fetch_jobs("jobs", "w", 10, 0).await.unwrap();
    assert_eq!(
        fetched.len(),
        4,
        "the cancelled and the delayed job are not delivered"
    );
    let all = engine.list_jobs("jobs", None, None, 100).await.unwrap();
    assert_eq!(all.jobs.len(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_job_dies_with_its_last_error_while_ten_thousand_others_complete() {
    let dir = tempfile::tempdir().unwrap();
    let engine = setup(dir.path(), 30_000, 4).await;
    let mut jobs: Vec<NewJob> = (0..10_000).map(|i| job("work", &i.to_string())).collect();
    jobs.insert(5_000, job("poison", "always fails"));
    for chunk in jobs.chunks(1_000) {
        engine.enqueue_jobs("jobs", chunk.to_vec()).await.unwrap();
    }
    let mut workers = Vec::new();
    for worker in 0..4 {
        let engine = engine.clone();
        workers.push(tokio::spawn(async move {
            let name = format!("w{worker}");
            let mut completed = 0;
            loop {
                let batch = engine.fetch_jobs("jobs", &name, 100, 300).await.unwrap();
                if batch.is_empty() {
                    return completed;
                }
                for active in batch {
                    if active.job.name == "poison" {
                        let error = format!("poisoned on attempt {}", active.attempt);
                        engine
                            .fail_job("jobs", &active.job.id, active.attempt, &error, None)
                            .await
                            .unwrap();
                    } else {
                        engine
                            .complete_job("jobs", &active.job.id, active.attempt, None)
                            .await
                            .unwrap();
                        completed += 1;
                    }
                }
            }
        }));
    }
    let mut completed = 0;
    for worker in workers {
        completed += worker.await.unwrap();
    }
    assert_eq!(
        completed, 10_000,
        "every healthy job completed exactly once"
    );
    let dead = engine
        .list_jobs("jobs", Some(JobStatus::Dead), None, 10)
        .await
        .unwrap();
    assert_eq!(dead.jobs.len(), 1);
    assert_eq!(dead.jobs[0].name, "poison");
    assert_eq!(dead.jobs[0].attempts, 4);
    assert_eq!(
        dead.jobs[0].errors.last().unwrap().message,
        "poisoned on attempt 4"
    );
    let stats = engine.job_stats("jobs").await.unwrap();
    assert_eq!(
        (stats.completed, stats.dead, stats.dead_letter_depth),
        (10_000, 1, 1)
    );
    assert_eq!(
        (stats.waiting, stats.active, stats.delayed, stats.failed),
        (0, 0, 0, 0)
    );
}

#[tokio::test]
async fn a_stale_attempt_in_a_batch_completion_fails_alone() {
    let dir = tempfile::tempdir().unwrap();
    // Leases long enough that the second worker's survive a loaded machine until it completes;
    // the first worker's simply run out.
    let engine = setup(dir.path(), 1_000, 5).await;
    let jobs = (0..3).map(|i| job("resize", &format!("{i}"))).collect();
    let ids: Vec<String> = engine
        .enqueue_jobs("jobs", jobs)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(
        engine.fetch_jobs("jobs", "slow", 3, 0).await.unwrap().len(),
        3
    );
    // The slow worker's leases expire; another worker gets attempt 2 of every job.
    let mut second = Vec::new();
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        second.extend(engine.fetch_jobs("jobs", "fast", 3, 0).await.unwrap());
        if second.len() == 3 {
            break;
        }
    }
    assert!(second.iter().all(|a| a.attempt == 2), "redelivered");
    engine
        .job_progress("jobs", &ids[0], 2, serde_json::json!({"step": 1}))
        .await
        .unwrap();
    let completion = |id: &String, attempt| JobCompletion {
        id: id.clone(),
        attempt,
        result: Some(serde_json::json!({"by": attempt})),
    };
    let answers = engine
        .complete_jobs(
            "jobs",
            vec![
                completion(&ids[0], 2),
                completion(&ids[1], 1),
                completion(&"not-a-number".to_string(), 2),
                completion(&ids[2], 2),
            ],
        )
        .await
        .unwrap();
    assert_eq!(answers.len(), 4);
    assert_eq!(answers[0].as_ref().unwrap().status, JobStatus::Completed);
    assert!(matches!(answers[1], Err(EngineError::StaleAttempt(_))));
    assert!(matches!(answers[2], Err(EngineError::BadRequest(_))));
    assert_eq!(answers[3].as_ref().unwrap().status, JobStatus::Completed);
    let first = engine.get_job("jobs", &ids[0]).await.unwrap();
    assert_eq!(first.status, JobStatus::Completed);
    assert_eq!(first.progress, Some(serde_json::json!({"step": 1})));
    assert_eq!(first.result, Some(serde_json::json!({"by": 2})));
    assert_eq!(
        engine.get_job("jobs", &ids[1]).await.unwrap().status,
        JobStatus::Active,
        "the stale completion changed nothing"
    );
    let done = engine
        .complete_jobs("jobs", vec![completion(&ids[1], 2)])
        .await
        .unwrap();
    assert_eq!(done[0].as_ref().unwrap().attempts, 2);
}

#[tokio::test]
async fn retention_keeps_the_newest_finished_jobs_and_drops_those_past_the_period() {
    let dir = tempfile::tempdir().unwrap();
    let engine = setup(dir.path(), 30_000, 3).await;
    let jobs: Vec<NewJob> = (0..8).map(|i| job("j", &format!("{i}"))).collect();
    let ids: Vec<String> = engine
        .enqueue_jobs("jobs", jobs)
        .await
        .unwrap()
        .into_iter()
        .map(|enqueued| enqueued.id)
        .collect();
    let fetched = engine.fetch_jobs("jobs", "w", 8, 0).await.unwrap();
    let completions = fetched
        .iter()
        .map(|leased| JobCompletion {
            id: leased.job.id.clone(),
            attempt: leased.attempt,
            result: None,
        })
        .collect();
    engine.complete_jobs("jobs", completions).await.unwrap();

    let completed = |engine: Arc<Engine>| async move {
        let page = engine
            .list_jobs("jobs", Some(JobStatus::Completed), None, 100)
            .await
            .unwrap();
        page.jobs.into_iter().map(|job| job.id).collect::<Vec<_>>()
    };
    assert_eq!(completed(engine.clone()).await, ids);

    // Over the count: the oldest go, the newest 5 stay.
    engine.sweep_finished_jobs(5, now_ms()).unwrap();
    assert_eq!(completed(engine.clone()).await, ids[3..].to_vec());
    // Within the count but past the retention period: they go too.
    let later = now_ms() + FINISHED_JOB_RETENTION_MS + 1_000;
    engine.sweep_finished_jobs(5, later).unwrap();
    assert!(completed(engine.clone()).await.is_empty());
}
