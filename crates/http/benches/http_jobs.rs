//! End-to-end HTTP job throughput: workers on loopback fetching and completing jobs against a
//! server in this process, each on its own keep-alive HTTP/1.1 connection.
//!
//! Shapes, each run on a freshly enqueued backlog:
//! - `one-at-a-time`: every worker loops `jobs/fetch` (max 1) → `jobs/{id}/complete`.
//! - `one-at-a-time, minimal`: the same, the completion sent with `Prefer: return=minimal`
//!   (204, no job record rendered).
//! - `batched`: every worker fetches `BENCH_BATCH` jobs, then loops `jobs/complete` with all of
//!   them and a `fetch` for the next batch in the same request.
//! - `batched, minimal`: the same with `Prefer: return=minimal`.
//!
//! Run: `cargo bench -p omnibus-http --bench http_jobs`
//! Settings (env): `BENCH_JOBS` per round (20000), `BENCH_WORKERS` (4), `BENCH_BATCH` (100),
//! `BENCH_VALUE_BYTES` payload size (100), `BENCH_ENQUEUE_BATCH` jobs per enqueue request
//! (1000, as `omnibus job enqueue` sends them; one request is one log batch, and a fetch of
//! one job decodes the whole batch holding it), `BENCH_ROUNDS` per shape (3), `BENCH_SHAPES`
//! (comma-separated subset of `single,single-minimal,batched,batched-minimal`), and
//! `BENCH_DATA_DIR`: where the data directory goes (e.g. `/dev/shm`, so that fsync costs
//! nothing and the figures show the CPU cost per job). Prints every round and the median,
//! and the CPU time this process (server and workers together) spent per job: on a shared
//! machine that figure moves much less than jobs/s.

/// The same allocator as the `omnibus` binary, so the figures are the broker's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use omnibus_engine::queue::QueueSpec;
use omnibus_engine::{Engine, EngineConfig};
use omnibus_http::HttpConfig;
use serde_json::{json, Value};

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// How the workers take and finish jobs.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Shape {
    Single { minimal: bool },
    Batched { minimal: bool },
}

impl Shape {
    fn parse(name: &str) -> Option<Shape> {
        match name.trim() {
            "single" => Some(Shape::Single { minimal: false }),
            "single-minimal" => Some(Shape::Single { minimal: true }),
            "batched" => Some(Shape::Batched { minimal: false }),
            "batched-minimal" => Some(Shape::Batched { minimal: true }),
            _ => None,
        }
    }
}

/// Where the server listens and what every worker sends to.
struct Target {
    base: String,
    queue: String,
}

fn main() {
    let jobs = setting("BENCH_JOBS", 20_000);
    let workers = setting("BENCH_WORKERS", 4);
    let batch = setting("BENCH_BATCH", 100);
    let value_bytes = setting("BENCH_VALUE_BYTES", 100);
    let rounds = setting("BENCH_ROUNDS", 3);
    let enqueue_batch = setting("BENCH_ENQUEUE_BATCH", 1000).max(1);
    let shapes: Vec<(String, Shape)> = std::env::var("BENCH_SHAPES")
        .unwrap_or_else(|_| "single,single-minimal,batched,batched-minimal".to_string())
        .split(',')
        .map(|name| {
            let shape = Shape::parse(name).unwrap_or_else(|| panic!("unknown shape {name:?}"));
            (name.trim().to_string(), shape)
        })
        .collect();
    let data_parent = std::env::var("BENCH_DATA_DIR").ok();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let dir = match &data_parent {
            Some(parent) => tempfile::tempdir_in(parent).expect("tempdir in BENCH_DATA_DIR"),
            None => tempfile::tempdir().expect("tempdir"),
        };
        let engine = Engine::open(EngineConfig::new(dir.path()))
            .await
            .expect("engine");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        tokio::spawn(omnibus_http::serve(
            listener,
            engine.clone(),
            HttpConfig::default(),
            std::future::pending(),
        ));
        println!(
            "http_jobs: {jobs} jobs/round enqueued {enqueue_batch} per request, {workers} workers, \
             batch {batch}, {value_bytes}-byte payloads, data in {}",
            dir.path().display()
        );
        let payload = "x".repeat(value_bytes);
        for (index, (name, shape)) in shapes.iter().enumerate() {
            let queue = format!("bench{index}");
            engine
                .create_queue(QueueSpec {
                    name: queue.clone(),
                    ..Default::default()
                })
                .await
                .expect("queue");
            let target = Arc::new(Target {
                base: format!("http://{address}/v1/queues/{queue}/jobs"),
                queue,
            });
            let mut rates = Vec::new();
            let mut cpu = Vec::new();
            for round in 0..rounds {
                enqueue(&target, jobs, enqueue_batch, &payload).await;
                let done = Arc::new(AtomicU64::new(0));
                let started = Instant::now();
                let cpu_started = cpu_ms();
                let mut tasks = Vec::new();
                for worker in 0..workers {
                    let (target, done, shape) = (target.clone(), done.clone(), *shape);
                    tasks.push(tokio::spawn(async move {
                        let client = reqwest::Client::new();
                        let name = format!("w{worker}");
                        let finished = match shape {
                            Shape::Single { minimal } => {
                                one_at_a_time(&client, &target, &name, minimal).await
                            }
                            Shape::Batched { minimal } => {
                                batched(&client, &target, &name, batch, minimal).await
                            }
                        };
                        done.fetch_add(finished, Ordering::Relaxed);
                    }));
                }
                for task in tasks {
                    task.await.expect("worker");
                }
                let finished = done.load(Ordering::Relaxed);
                assert_eq!(finished, jobs as u64, "every job completed once");
                let rate = finished as f64 / started.elapsed().as_secs_f64();
                let cpu_us = (cpu_ms() - cpu_started) as f64 * 1000.0 / finished as f64;
                println!("  {name} round {round}: {rate:.0} jobs/s, {cpu_us:.0} µs CPU/job");
                rates.push(rate);
                cpu.push(cpu_us);
            }
            rates.sort_by(|a, b| a.partial_cmp(b).expect("finite"));
            cpu.sort_by(|a, b| a.partial_cmp(b).expect("finite"));
            println!(
                "{name} (queue {}): median {:.0} jobs/s, {:.0} µs CPU/job",
                target.queue,
                rates[rates.len() / 2],
                cpu[cpu.len() / 2]
            );
        }
    });
}

/// CPU time (user and system) this process has used, in ms, from `/proc/self/stat` (0 where
/// there is no such file).
fn cpu_ms() -> u64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0;
    };
    // The fields after the command name (which may hold spaces, inside parentheses).
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks =
        |index: usize| -> u64 { fields.get(index).and_then(|v| v.parse().ok()).unwrap_or(0) };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name; clock ticks
    // are 100 per second on Linux.
    (ticks(11) + ticks(12)) * 10
}

async fn enqueue(target: &Target, jobs: usize, per_request: usize, payload: &str) {
    let client = reqwest::Client::new();
    let mut left = jobs;
    while left > 0 {
        let count = left.min(per_request);
        let batch: Vec<Value> = (0..count)
            .map(|_| json!({"name": "bench", "payload": payload}))
            .collect();
        let response = client
            .post(&target.base)
            .json(&json!({ "jobs": batch }))
            .send()
            .await
            .expect("enqueue");
        assert!(response.status().is_success(), "{}", response.status());
        left -= count;
    }
}

/// POSTs `body` and returns the JSON answer (or `Null` for an empty one).
async fn post(client: &reqwest::Client, url: &str, body: Value, minimal: bool) -> Value {
    let mut request = client.post(url).json(&body);
    if minimal {
        request = request.header("prefer", "return=minimal");
    }
    let response = request.send().await.expect("request");
    let status = response.status();
    let bytes = response.bytes().await.expect("body");
    assert!(
        status.is_success(),
        "{url}: {status} {}",
        String::from_utf8_lossy(&bytes)
    );
    if bytes.is_empty() {
        return Value::Null;
    }
    serde_json::from_slice(&bytes).expect("JSON answer")
}

/// Fetch one, complete it, until the queue is empty; returns how many were completed.
async fn one_at_a_time(
    client: &reqwest::Client,
    target: &Target,
    worker: &str,
    minimal: bool,
) -> u64 {
    let fetch_url = format!("{}/fetch", target.base);
    let mut finished = 0;
    loop {
        let answer = post(
            client,
            &fetch_url,
            json!({"worker": worker, "max": 1}),
            false,
        )
        .await;
        let Some(job) = answer["jobs"].as_array().and_then(|jobs| jobs.first()) else {
            return finished;
        };
        let id = job["id"].as_str().expect("id");
        let url = format!("{}/{id}/complete", target.base);
        post(client, &url, json!({"attempt": job["attempt"]}), minimal).await;
        finished += 1;
    }
}

/// Fetch a batch, then complete it and fetch the next in one request, until none comes.
async fn batched(
    client: &reqwest::Client,
    target: &Target,
    worker: &str,
    batch: usize,
    minimal: bool,
) -> u64 {
    let fetch = json!({"worker": worker, "max": batch});
    let answer = post(
        client,
        &format!("{}/fetch", target.base),
        fetch.clone(),
        false,
    )
    .await;
    let mut jobs = answer["jobs"].as_array().cloned().unwrap_or_default();
    let url = format!("{}/complete", target.base);
    let mut finished = 0;
    while !jobs.is_empty() {
        let completions: Vec<Value> = jobs
            .iter()
            .map(|job| json!({"id": job["id"], "attempt": job["attempt"]}))
            .collect();
        let body = json!({"completions": completions, "fetch": fetch});
        let answer = post(client, &url, body, minimal).await;
        let results = answer["results"].as_array().expect("results");
        assert!(
            results.iter().all(|result| result.get("error").is_none()),
            "{answer}"
        );
        finished += results.len() as u64;
        jobs = answer["next"].as_array().cloned().unwrap_or_default();
    }
    finished
}
