//! Memory held by a deep queue: enqueue millions of waiting (and delayed) messages and report
//! the process's resident memory as the queue grows. Waiting messages are kept as offset
//! ranges and delayed ones in the state store with a bounded in-memory window, so RSS should
//! stay flat while the queue grows. Then the engine is reopened on the same folder: a restart
//! reads the unfinished part of each queue's log once to count its waiting bytes.
//!
//! Run: `cargo bench -p omnibus-engine --bench queue_depth`
//! Settings (env): `BENCH_WAITING` (10,000,000), `BENCH_DELAYED` (1,000,000), `BENCH_BATCH`
//! (10,000), `BENCH_KIND=jobs` to enqueue jobs (`enqueue_jobs`) instead of plain messages.

/// The same allocator as the `omnibus` binary, so the figures are the broker's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::Instant;

use bytes::Bytes;
use omnibus_engine::jobs::NewJob;
use omnibus_engine::queue::{EnqueueMessage, QueueSpec};
use omnibus_engine::{Engine, EngineConfig};

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

async fn fill(
    engine: &Engine,
    queue: &str,
    total: usize,
    batch: usize,
    delay_ms: Option<u64>,
    jobs: bool,
) {
    let value = Bytes::from(vec![b'x'; 100]);
    let started = Instant::now();
    let mut sent = 0;
    let mut next_report = total / 10;
    while sent < total {
        let n = batch.min(total - sent);
        // Spread due times so the timer index really holds distinct entries.
        let delay = |i: usize| delay_ms.map(|d| d + (sent + i) as u64 % 100_000);
        if jobs {
            let new_jobs = (0..n)
                .map(|i| NewJob {
                    name: "bench".into(),
                    payload: value.clone(),
                    delay_ms: delay(i),
                    ..Default::default()
                })
                .collect();
            engine.enqueue_jobs(queue, new_jobs).await.expect("enqueue");
        } else {
            let messages = (0..n)
                .map(|i| EnqueueMessage {
                    value: Some(value.clone()),
                    delay_ms: delay(i),
                    ..Default::default()
                })
                .collect();
            engine.enqueue(queue, messages).await.expect("enqueue");
        }
        sent += n;
        if sent >= next_report {
            let info = engine.queue_info(queue).expect("info");
            println!(
                "  {queue}: {sent:>10} enqueued ({} ready, {} delayed) in {:>6.1} s, RSS {:>7.1} MiB",
                info.ready,
                info.delayed,
                started.elapsed().as_secs_f64(),
                rss_mib()
            );
            next_report += total / 10;
        }
    }
}

fn main() {
    let waiting = setting("BENCH_WAITING", 10_000_000);
    let delayed = setting("BENCH_DELAYED", 1_000_000);
    let batch = setting("BENCH_BATCH", 10_000);
    let jobs = std::env::var("BENCH_KIND").is_ok_and(|kind| kind == "jobs");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = Engine::open(EngineConfig::new(dir.path()))
            .await
            .expect("engine");
        for name in ["waiting", "delayed"] {
            engine
                .create_queue(QueueSpec {
                    name: name.into(),
                    ..Default::default()
                })
                .await
                .expect("queue");
        }
        let kind = if jobs { "jobs" } else { "messages" };
        println!(
            "queue_depth: 100-byte {kind}, batches of {batch}; RSS at start {:.1} MiB",
            rss_mib()
        );
        fill(&engine, "waiting", waiting, batch, None, jobs).await;
        fill(&engine, "delayed", delayed, batch, Some(3_600_000), jobs).await;
        engine.shutdown().await.expect("shutdown");
        drop(engine);

        let started = Instant::now();
        let engine = Engine::open(EngineConfig::new(dir.path()))
            .await
            .expect("engine reopens");
        let reopened = started.elapsed().as_secs_f64();
        for name in ["waiting", "delayed"] {
            let info = engine.queue_info(name).expect("info");
            println!(
                "  {name}: after a restart {} waiting, {} bytes",
                info.ready + info.delayed,
                info.waiting_bytes
            );
        }
        println!("reopened in {reopened:.2} s, RSS {:.1} MiB", rss_mib());
        engine.shutdown().await.expect("shutdown");
    });
}
