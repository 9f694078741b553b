//! Durable job throughput through the engine API, every step acknowledged only after fsync:
//! enqueue-only, and end to end with 4 workers (each fetches a batch, then completes each job
//! with its own `complete_job` call). Each round is then repeated with workers completing each
//! fetched batch in one `complete_jobs` call, then with each worker completing a batch and
//! fetching the next in one `complete_and_fetch_jobs` call, and once more with the enqueue
//! running at the same time as the workers (`complete_and_fetch_jobs`), the way a queue runs
//! in production.
//!
//! "End to end" in the first two is sequential: all jobs enqueued, then all worked off;
//! jobs / (enqueue time + work time). "Concurrent" is jobs / (first enqueue to last
//! completion) with one producer enqueuing while the workers run.
//!
//! Run: `cargo bench -p omnibus-engine --bench jobs`
//! Settings (env): `BENCH_JOBS` per round (default 100,000), `BENCH_WORKERS` (4),
//! `BENCH_FETCH` jobs per fetch (100), `BENCH_ENQUEUE_BATCH` (1,000), `BENCH_ROUNDS` (3),
//! `BENCH_COMPLETE=each` to skip the batch and concurrent rounds.
//! Prints each round and the medians.

/// The same allocator as the `omnibus` binary, so the figures are the broker's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use omnibus_engine::jobs::{ActiveJob, JobCompletion, NewJob};
use omnibus_engine::queue::QueueSpec;
use omnibus_engine::{Engine, EngineConfig};

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.partial_cmp(b).expect("finite"));
    values[values.len() / 2]
}

async fn enqueue_all(engine: &Engine, queue: &str, jobs: usize, batch: usize) {
    let payload = Bytes::from(vec![b'x'; 100]);
    let mut sent = 0;
    while sent < jobs {
        let n = batch.min(jobs - sent);
        let batch: Vec<NewJob> = (0..n)
            .map(|_| NewJob {
                name: "bench".into(),
                payload: payload.clone(),
                ..Default::default()
            })
            .collect();
        engine.enqueue_jobs(queue, batch).await.expect("enqueue");
        sent += n;
    }
}

/// How workers complete what they fetched.
#[derive(Clone, Copy, PartialEq)]
enum Completion {
    /// One `complete_job` call per job, all of a batch concurrently.
    EachJob,
    /// One `complete_and_fetch_jobs` call per batch: completes it and fetches the next in
    /// one commit.
    AndFetch,
    /// One `complete_jobs` call per fetched batch.
    Batch,
}

struct Round {
    enqueue_rate: f64,
    work_rate: f64,
    end_to_end: f64,
    /// State-store writes (after the committer drops replaced ones) per job, whole round.
    writes_per_job: f64,
    jobs_per_commit: f64,
}

/// Jobs completed so far, and when the last one was.
struct Progress {
    total: usize,
    done: AtomicUsize,
    finished_at: Mutex<Option<Instant>>,
}

impl Progress {
    fn new(total: usize) -> Arc<Progress> {
        Arc::new(Progress {
            total,
            done: AtomicUsize::new(0),
            finished_at: Mutex::new(None),
        })
    }

    fn add(&self, n: usize) {
        if self.done.fetch_add(n, Ordering::AcqRel) + n == self.total {
            *self.finished_at.lock().expect("lock") = Some(Instant::now());
        }
    }

    fn complete(&self) -> bool {
        self.done.load(Ordering::Acquire) >= self.total
    }
}

fn completions_of(batch: Vec<ActiveJob>) -> Vec<JobCompletion> {
    batch
        .into_iter()
        .map(|active| JobCompletion {
            id: active.job.id,
            attempt: active.attempt,
            result: None,
        })
        .collect()
}

/// Workers fetch and complete until every job of the round is completed. Returns when the
/// last job was completed.
async fn work_off(
    engine: &Arc<Engine>,
    workers: usize,
    fetch: usize,
    completion: Completion,
    progress: Arc<Progress>,
) -> Instant {
    let mut tasks = Vec::new();
    for worker in 0..workers {
        let engine: Arc<Engine> = engine.clone();
        let progress = progress.clone();
        tasks.push(tokio::spawn(async move {
            let name = format!("w{worker}");
            let mut held: Vec<ActiveJob> = Vec::new();
            while !progress.complete() {
                let batch = match std::mem::take(&mut held) {
                    batch if !batch.is_empty() => batch,
                    _ => engine
                        .fetch_jobs("bench", &name, fetch, 50)
                        .await
                        .expect("fetch"),
                };
                let fetched = batch.len();
                if completion == Completion::AndFetch && fetched > 0 {
                    // No wait here: an empty answer falls back to a plain long-poll fetch, so
                    // the last completion is not held back by a wait.
                    let outcome = engine
                        .complete_and_fetch_jobs("bench", completions_of(batch), &name, fetch, 0)
                        .await
                        .expect("complete and fetch");
                    for answer in outcome.completed {
                        answer.expect("complete");
                    }
                    held = outcome.next.expect("fetch");
                } else if completion == Completion::Batch {
                    let answers = engine
                        .complete_jobs("bench", completions_of(batch))
                        .await
                        .expect("complete");
                    for answer in answers {
                        answer.expect("complete");
                    }
                } else {
                    let mut completions = tokio::task::JoinSet::new();
                    for active in batch {
                        let engine = engine.clone();
                        completions.spawn(async move {
                            engine
                                .complete_job("bench", &active.job.id, active.attempt, None)
                                .await
                                .expect("complete");
                        });
                    }
                    while let Some(result) = completions.join_next().await {
                        result.expect("completion task");
                    }
                }
                progress.add(fetched);
            }
        }));
    }
    for task in tasks {
        task.await.expect("worker");
    }
    assert_eq!(
        progress.done.load(Ordering::Acquire),
        progress.total,
        "every job completed exactly once"
    );
    let finished = *progress.finished_at.lock().expect("lock");
    finished.expect("the last completion was timed")
}

async fn open_bench_queue(dir: &std::path::Path, fetch: usize) -> Arc<Engine> {
    let engine = Engine::open(EngineConfig::new(dir)).await.expect("engine");
    engine
        .create_queue(QueueSpec {
            name: "bench".into(),
            max_unacked_per_worker: Some(fetch * 4),
            ..Default::default()
        })
        .await
        .expect("queue");
    engine
}

/// Enqueue everything, then work it off.
async fn round(
    jobs: usize,
    workers: usize,
    fetch: usize,
    enqueue_batch: usize,
    completion: Completion,
) -> Round {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = open_bench_queue(dir.path(), fetch).await;
    let started = Instant::now();
    enqueue_all(&engine, "bench", jobs, enqueue_batch).await;
    let enqueued = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let finished = work_off(&engine, workers, fetch, completion, Progress::new(jobs)).await;
    let worked = (finished - started).as_secs_f64();
    let state = engine.state_stats();
    engine.shutdown().await.expect("shutdown");
    Round {
        enqueue_rate: jobs as f64 / enqueued,
        work_rate: jobs as f64 / worked,
        end_to_end: jobs as f64 / (enqueued + worked),
        writes_per_job: state.writes as f64 / jobs as f64,
        jobs_per_commit: jobs as f64 / state.commits as f64,
    }
}

/// Enqueue while the workers run (completing each fetched batch in one call); jobs/s from the
/// first enqueue to the last completion.
async fn concurrent_round(jobs: usize, workers: usize, fetch: usize, enqueue_batch: usize) -> f64 {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = open_bench_queue(dir.path(), fetch).await;
    let started = Instant::now();
    let producer = {
        let engine = engine.clone();
        tokio::spawn(async move { enqueue_all(&engine, "bench", jobs, enqueue_batch).await })
    };
    let finished = work_off(
        &engine,
        workers,
        fetch,
        Completion::AndFetch,
        Progress::new(jobs),
    )
    .await;
    producer.await.expect("producer");
    engine.shutdown().await.expect("shutdown");
    jobs as f64 / (finished - started).as_secs_f64()
}

fn main() {
    let jobs = setting("BENCH_JOBS", 100_000);
    let workers = setting("BENCH_WORKERS", 4);
    let fetch = setting("BENCH_FETCH", 100);
    let enqueue_batch = setting("BENCH_ENQUEUE_BATCH", 1_000);
    let rounds = setting("BENCH_ROUNDS", 3);
    let batch_too = std::env::var("BENCH_COMPLETE").map_or(true, |mode| mode != "each");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        println!(
            "jobs: {jobs} jobs of 100 bytes per round, {workers} workers fetching {fetch} at a time, enqueue batches of {enqueue_batch}, fsync=always"
        );
        let mut enqueue_rates = Vec::new();
        let mut end_to_end_rates = Vec::new();
        let mut batch_rates = Vec::new();
        let mut and_fetch_rates = Vec::new();
        let mut concurrent_rates = Vec::new();
        for round_number in 0..rounds {
            let each = round(jobs, workers, fetch, enqueue_batch, Completion::EachJob).await;
            println!(
                "  round {round_number}: enqueue {:.0} jobs/s; fetch+complete {:.0} jobs/s; end to end {:.0} jobs/s ({:.2} state writes/job, {:.0} jobs/commit)",
                each.enqueue_rate, each.work_rate, each.end_to_end, each.writes_per_job, each.jobs_per_commit
            );
            enqueue_rates.push(each.enqueue_rate);
            end_to_end_rates.push(each.end_to_end);
            if batch_too {
                let batch = round(jobs, workers, fetch, enqueue_batch, Completion::Batch).await;
                println!(
                    "  round {round_number}, complete_jobs per fetched batch: enqueue {:.0} jobs/s; fetch+complete {:.0} jobs/s; end to end {:.0} jobs/s ({:.2} state writes/job, {:.0} jobs/commit)",
                    batch.enqueue_rate, batch.work_rate, batch.end_to_end, batch.writes_per_job, batch.jobs_per_commit
                );
                batch_rates.push(batch.end_to_end);
                let and_fetch =
                    round(jobs, workers, fetch, enqueue_batch, Completion::AndFetch).await;
                println!(
                    "  round {round_number}, complete_and_fetch_jobs per batch: enqueue {:.0} jobs/s; fetch+complete {:.0} jobs/s; end to end {:.0} jobs/s ({:.2} state writes/job, {:.0} jobs/commit)",
                    and_fetch.enqueue_rate, and_fetch.work_rate, and_fetch.end_to_end, and_fetch.writes_per_job, and_fetch.jobs_per_commit
                );
                and_fetch_rates.push(and_fetch.end_to_end);
                let concurrent = concurrent_round(jobs, workers, fetch, enqueue_batch).await;
                println!(
                    "  round {round_number}, concurrent (enqueue while the workers complete_and_fetch_jobs): {concurrent:.0} jobs/s"
                );
                concurrent_rates.push(concurrent);
            }
        }
        println!(
            "median: enqueue {:.0} jobs/s, end to end (enqueue + fetch + complete) {:.0} jobs/s",
            median(enqueue_rates),
            median(end_to_end_rates)
        );
        if batch_too {
            println!(
                "median end to end: complete_jobs per fetched batch {:.0} jobs/s; complete_and_fetch_jobs {:.0} jobs/s; concurrent {:.0} jobs/s",
                median(batch_rates),
                median(and_fetch_rates),
                median(concurrent_rates)
            );
        }
    });
}
