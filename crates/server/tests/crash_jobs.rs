//! Jobs under `kill -9`: enqueue and work jobs over HTTP while the broker is killed at random
//! moments and restarted on the same data. Checks, over all cycles:
//! - every enqueue that was acknowledged is still there and ends completed (or dead);
//! - a job whose completion was acknowledged is never handed to a worker again;
//! - after the last restart the queue drains: nothing is left waiting, delayed or active.
//!
//! `OMNIBUS_JOB_CRASH_CYCLES` sets the number of cycles (default 8);
//! `OMNIBUS_CRASH_SEED` replays the kill timing. The last line printed is the summary:
//! `crash summary: crash_jobs [kill -9] cycles=<n> acknowledged=<n> lost=0 ...`.
//! Every start binds port 0 and reads its addresses from the ready line, so the workers and
//! producers of each cycle talk to that start's address.

mod support;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use support::Broker;

const QUEUE: &str = "crashjobs";
const CYCLES_DEFAULT: usize = 8;
const PRODUCERS: usize = 2;
const WORKERS: usize = 2;
const BATCH: usize = 10;
/// Pause between a producer's batches, so workers keep up and the final drain is short.
const PRODUCE_PAUSE: Duration = Duration::from_millis(25);
const KILL_AFTER_MS: (u64, u64) = (300, 1_200);
const DRAIN_TIMEOUT: Duration = Duration::from_secs(120);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Default)]
struct Ledger {
    enqueued: HashSet<String>,
    completed: HashSet<String>,
    violations: Vec<String>,
}

type Shared = Arc<Mutex<Ledger>>;

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .no_proxy()
        .build()
        .expect("http client")
}

async fn create_queue(base: &str) {
    let response = client()
        .post(format!("{base}/v1/queues"))
        .json(&json!({
            "name": QUEUE,
            "lease_ms": 1500,
            "max_deliver": 1000,
            "backoff": {"kind": "fixed", "delay_ms": 0}
        }))
        .send()
        .await
        .expect("create queue");
    let status = response.status().as_u16();
    assert!(
        status == 201 || status == 409,
        "create queue answered {status}"
    );
}

/// Enqueues batches until stopped or the broker goes away; records acknowledged ids.
async fn produce(
    base: String,
    cycle: usize,
    producer: usize,
    stop: Arc<AtomicBool>,
    ledger: Shared,
) {
    let client = client();
    let mut sequence = 0;
    while !stop.load(Ordering::SeqCst) {
        let jobs: Vec<Value> = (0..BATCH)
            .map(|i| json!({"name": "crash", "payload": {"cycle": cycle, "producer": producer, "n": sequence + i}}))
            .collect();
        sequence += BATCH;
        let Ok(response) = client
            .post(format!("{base}/v1/queues/{QUEUE}/jobs"))
            .json(&json!({ "jobs": jobs }))
            .send()
            .await
        else {
            return;
        };
        if !response.status().is_success() {
            return;
        }
        let Ok(body) = response.json::<Value>().await else {
            return;
        };
        {
            let mut ledger = ledger.lock().unwrap();
            for job in body["jobs"].as_array().into_iter().flatten() {
                if let Some(id) = job["id"].as_str() {
                    ledger.enqueued.insert(id.to_string());
                }
            }
        }
        tokio::time::sleep(PRODUCE_PAUSE).await;
    }
}

/// Records a violation if `id` is delivered again after its completion was acknowledged.
fn check_delivery(ledger: &Shared, job: &Value) {
    let id = job["id"].as_str().unwrap_or_default();
    let mut ledger = ledger.lock().unwrap();
    if ledger.completed.contains(id) {
        let attempt = &job["attempt"];
        ledger.violations.push(format!(
            "job {id} was delivered again (attempt {attempt}) after its completion was acknowledged"
        ));
    }
}

/// Fetches and completes jobs until stopped or the broker goes away. Returns how many it
/// completed. Odd-numbered workers complete each batch and take the next in one call
/// (`fetch` in the batch completion: acks and new deliveries in one commit); even ones
/// complete each job with its own call.
async fn work(base: String, worker: String, stop: Arc<AtomicBool>, ledger: Shared) -> usize {
    if worker.ends_with(|c: char| c.to_digit(10).is_some_and(|d| d % 2 == 1)) {
        return work_in_batches(base, worker, stop, ledger).await;
    }
    let client = client();
    let mut done = 0;
    while !stop.load(Ordering::SeqCst) {
        let Ok(response) = client
            .post(format!("{base}/v1/queues/{QUEUE}/jobs/fetch"))
            .json(&json!({"worker": worker, "max": 10, "wait_ms": 300}))
            .send()
            .await
        else {
            return done;
        };
        if !response.status().is_success() {
            return done;
        }
        let Ok(body) = response.json::<Value>().await else {
            return done;
        };
        let jobs = body["jobs"].as_array().cloned().unwrap_or_default();
        // Complete the batch concurrently, as a worker pool would.
        let mut completions = tokio::task::JoinSet::new();
        for job in jobs {
            let id = job["id"].as_str().unwrap_or_default().to_string();
            let attempt = job["attempt"].as_u64().unwrap_or_default();
            check_delivery(&ledger, &job);
            let (client, base, worker) = (client.clone(), base.clone(), worker.clone());
            completions.spawn(async move {
                let response = client
                    .post(format!("{base}/v1/queues/{QUEUE}/jobs/{id}/complete"))
                    .json(&json!({"attempt": attempt, "result": {"by": worker}}))
                    .send()
                    .await;
                (id, response.is_ok_and(|r| r.status().is_success()))
            });
        }
        while let Some(outcome) = completions.join_next().await {
            let Ok((id, acknowledged)) = outcome else {
                continue;
            };
            if acknowledged {
                ledger.lock().unwrap().completed.insert(id);
                done += 1;
            }
        }
    }
    done
}

/// A worker that completes each batch and gets the next one in the same call.
async fn work_in_batches(
    base: String,
    worker: String,
    stop: Arc<AtomicBool>,
    ledger: Shared,
) -> usize {
    let client = client();
    let mut done = 0;
    let mut jobs: Vec<Value> = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        let request = if jobs.is_empty() {
            client
                .post(format!("{base}/v1/queues/{QUEUE}/jobs/fetch"))
                .json(&json!({"worker": worker, "max": 10, "wait_ms": 300}))
        } else {
            let completions: Vec<Value> = jobs
                .iter()
                .map(|job| json!({"id": job["id"], "attempt": job["attempt"], "result": {"by": worker}}))
                .collect();
            client
                .post(format!("{base}/v1/queues/{QUEUE}/jobs/complete"))
                .json(&json!({
                    "completions": completions,
                    "fetch": {"worker": worker, "max": 10, "wait_ms": 300},
                }))
        };
        let Ok(response) = request.send().await else {
            return done;
        };
        if !response.status().is_success() {
            return done;
        }
        let Ok(body) = response.json::<Value>().await else {
            return done;
        };
        for result in body["results"].as_array().into_iter().flatten() {
            if let Some(id) = result["job"]["id"].as_str() {
                ledger.lock().unwrap().completed.insert(id.to_string());
                done += 1;
            }
        }
        let next = if body.get("results").is_some() {
            &body["next"]
        } else {
            &body["jobs"]
        };
        jobs = next.as_array().cloned().unwrap_or_default();
        for job in &jobs {
            check_delivery(&ledger, job);
        }
    }
    done
}

async fn queue_counts(base: &str) -> Option<(u64, u64, u64)> {
    let body: Value = client()
        .get(format!("{base}/v1/queues/{QUEUE}"))
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    Some((
        body["ready"].as_u64()?,
        body["delayed"].as_u64()?,
        body["leased"].as_u64()?,
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_jobs_survive_kill_9_and_completed_jobs_never_run_again() {
    let cycles = std::env::var("OMNIBUS_JOB_CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(CYCLES_DEFAULT)
        .max(1);
    let seed = std::env::var("OMNIBUS_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| rand::rng().random());
    println!("crash_jobs: seed={seed} cycles={cycles} (rerun with OMNIBUS_CRASH_SEED={seed})");
    let mut rng = StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let ledger: Shared = Arc::new(Mutex::new(Ledger::default()));
    let started = Instant::now();

    for cycle in 0..cycles {
        let mut broker = Broker::start(&data, dir.path().join(format!("broker-{cycle}.log"))).await;
        create_queue(&broker.base()).await;
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = tokio::task::JoinSet::new();
        for producer in 0..PRODUCERS {
            tasks.spawn(produce(
                broker.base(),
                cycle,
                producer,
                stop.clone(),
                ledger.clone(),
            ));
        }
        for worker in 0..WORKERS {
            let (base, stop, ledger) = (broker.base(), stop.clone(), ledger.clone());
            tasks.spawn(async move {
                work(base, format!("c{cycle}w{worker}"), stop, ledger).await;
            });
        }
        tokio::time::sleep(Duration::from_millis(
            rng.random_range(KILL_AFTER_MS.0..=KILL_AFTER_MS.1),
        ))
        .await;
        broker.kill_9();
        stop.store(true, Ordering::SeqCst);
        while tasks.join_next().await.is_some() {}
        let ledger = ledger.lock().unwrap();
        println!(
            "cycle {cycle}: {} enqueues and {} completions acknowledged so far",
            ledger.enqueued.len(),
            ledger.completed.len()
        );
    }

    // Last start: drain everything with workers, then check every acknowledged job.
    let broker = Broker::start(&data, dir.path().join("broker-final.log")).await;
    let base = broker.base();
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = tokio::task::JoinSet::new();
    for worker in 0..WORKERS {
        workers.spawn(work(
            base.clone(),
            format!("final{worker}"),
            stop.clone(),
            ledger.clone(),
        ));
    }
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    loop {
        if queue_counts(&base).await == Some((0, 0, 0)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "seed {seed}: the queue did not drain: {:?}; log:\n{}",
            queue_counts(&base).await,
            std::fs::read_to_string(&broker.log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, Ordering::SeqCst);
    while workers.join_next().await.is_some() {}

    let (violations, enqueued, completed) = {
        let ledger = ledger.lock().unwrap();
        (
            ledger.violations.clone(),
            ledger.enqueued.clone(),
            ledger.completed.len(),
        )
    };
    assert!(violations.is_empty(), "seed {seed}: {violations:#?}");
    assert!(
        !enqueued.is_empty(),
        "seed {seed}: no enqueue was acknowledged, nothing was tested"
    );
    let client = client();
    let mut unfinished = Vec::new();
    for id in &enqueued {
        let job: Value = client
            .get(format!("{base}/v1/queues/{QUEUE}/jobs/{id}"))
            .send()
            .await
            .expect("get job")
            .json()
            .await
            .expect("job json");
        let status = job["status"].as_str().unwrap_or("missing");
        if status != "completed" && status != "dead" {
            unfinished.push(format!("{id}: {status}"));
        }
    }
    assert!(
        unfinished.is_empty(),
        "seed {seed}: acknowledged jobs not finished: {unfinished:?}"
    );
    // The crash tests' common summary line; any lost job or redelivery failed above.
    println!(
        "crash summary: crash_jobs [kill -9] cycles={cycles} acknowledged={} lost=0 \
         completions={completed} redelivered_after_completion=0 seed={seed} seconds={:.1}",
        enqueued.len(),
        started.elapsed().as_secs_f64()
    );
}
