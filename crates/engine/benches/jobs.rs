//! Durable job throughput through the engine API: enqueue-only, and end to end with 4
//! workers (fetch a batch, complete each job), every step acknowledged only after fsync.
//!
//! Run: `cargo bench -p omnibus-engine --bench jobs`
//! Settings (env): `BENCH_JOBS` per round (default 100,000), `BENCH_WORKERS` (4),
//! `BENCH_FETCH` jobs per fetch (100), `BENCH_ENQUEUE_BATCH` (1,000), `BENCH_ROUNDS` (3).
//! Prints each round and the median.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use omnibus_engine::jobs::NewJob;
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

fn main() {
    let jobs = setting("BENCH_JOBS", 100_000);
    let workers = setting("BENCH_WORKERS", 4);
    let fetch = setting("BENCH_FETCH", 100);
    let enqueue_batch = setting("BENCH_ENQUEUE_BATCH", 1_000);
    let rounds = setting("BENCH_ROUNDS", 3);
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
        for round in 0..rounds {
            let dir = tempfile::tempdir().expect("tempdir");
            let engine = Engine::open(EngineConfig::new(dir.path())).await.expect("engine");
            engine
                .create_queue(QueueSpec {
                    name: "bench".into(),
                    max_unacked_per_worker: Some(fetch * 4),
                    ..Default::default()
                })
                .expect("queue");
            // Enqueue only.
            let started = Instant::now();
            enqueue_all(&engine, "bench", jobs, enqueue_batch).await;
            let enqueue_rate = jobs as f64 / started.elapsed().as_secs_f64();
            // Work them off with N workers.
            let started = Instant::now();
            let mut tasks = Vec::new();
            for worker in 0..workers {
                let engine: Arc<Engine> = engine.clone();
                tasks.push(tokio::spawn(async move {
                    let name = format!("w{worker}");
                    let mut done = 0usize;
                    loop {
                        let batch = engine.fetch_jobs("bench", &name, fetch, 200).await.expect("fetch");
                        if batch.is_empty() {
                            return done;
                        }
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
                            done += 1;
                        }
                    }
                }));
            }
            let mut completed = 0;
            for task in tasks {
                completed += task.await.expect("worker");
            }
            assert_eq!(completed, jobs, "every job completed exactly once");
            let worked = started.elapsed().as_secs_f64() - 0.2; // the final empty long-poll
            let end_to_end = jobs as f64 / (enqueue_rate.recip() * jobs as f64 + worked);
            println!(
                "  round {round}: enqueue {enqueue_rate:.0} jobs/s; fetch+complete {:.0} jobs/s; end to end {end_to_end:.0} jobs/s",
                jobs as f64 / worked
            );
            enqueue_rates.push(enqueue_rate);
            end_to_end_rates.push(end_to_end);
            engine.shutdown().await.expect("shutdown");
        }
        println!(
            "median: enqueue {:.0} jobs/s, end to end (enqueue + fetch + complete) {:.0} jobs/s",
            median(enqueue_rates),
            median(end_to_end_rates)
        );
    });
}
