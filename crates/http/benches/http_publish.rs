//! End-to-end HTTP batch publish throughput: real HTTP clients on loopback posting JSON
//! batches to a server in this process, each response sent only after fsync.
//!
//! Run: `cargo bench -p omnibus-http --bench http_publish`
//! Settings (env): `BENCH_CLIENTS` (default 8), `BENCH_BATCH` records per request (1000),
//! `BENCH_VALUE_BYTES` (100), `BENCH_PARTITIONS` (1), `BENCH_SECONDS` per round (3),
//! `BENCH_ROUNDS` (5). Prints every round and the median records/s.

/// The same allocator as the `omnibus` binary, so the figures are the broker's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use omnibus_engine::{Engine, EngineConfig, StreamSpec};
use omnibus_http::HttpConfig;

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing else we use.
    let clients = setting("BENCH_CLIENTS", 8);
    let batch = setting("BENCH_BATCH", 1000);
    let value_bytes = setting("BENCH_VALUE_BYTES", 100);
    let partitions = setting("BENCH_PARTITIONS", 1) as u32;
    let seconds = setting("BENCH_SECONDS", 3) as u64;
    let rounds = setting("BENCH_ROUNDS", 5);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = Engine::open(EngineConfig::new(dir.path())).await.expect("engine");
        engine
            .create_stream(StreamSpec {
                name: "bench".into(),
                partitions: Some(partitions),
                ..Default::default()
            }).await
            .expect("stream");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        tokio::spawn(omnibus_http::serve(
            listener,
            engine.clone(),
            HttpConfig::default(),
            std::future::pending(),
        ));
        let value = "x".repeat(value_bytes);
        let record = format!("{{\"value\":\"{value}\"}}");
        let body = format!("{{\"records\":[{}]}}", vec![record; batch].join(","));
        let url = format!("http://{address}/v1/streams/bench/records");
        println!(
            "http_publish: {clients} clients, {batch} records/request, {value_bytes}-byte values, {partitions} partition(s), fsync=always"
        );
        let mut rates = Vec::new();
        for round in 0..rounds {
            let published = Arc::new(AtomicU64::new(0));
            let stop = Arc::new(AtomicBool::new(false));
            let started = Instant::now();
            let mut tasks = Vec::new();
            for _ in 0..clients {
                let client = reqwest::Client::new();
                let (url, body) = (url.clone(), body.clone());
                let (published, stop) = (published.clone(), stop.clone());
                tasks.push(tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        let response = client
                            .post(&url)
                            .header("content-type", "application/json")
                            .body(body.clone())
                            .send()
                            .await
                            .expect("request");
                        assert!(response.status().is_success(), "{}", response.status());
                        response.bytes().await.expect("body");
                        published.fetch_add(batch as u64, Ordering::Relaxed);
                    }
                }));
            }
            tokio::time::sleep(Duration::from_secs(seconds)).await;
            stop.store(true, Ordering::Relaxed);
            for task in tasks {
                task.await.expect("client");
            }
            let rate = published.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
            println!("  round {round}: {rate:.0} records/s");
            rates.push(rate);
        }
        rates.sort_by(|a, b| a.partial_cmp(b).expect("finite"));
        println!("median: {:.0} records/s", rates[rates.len() / 2]);
    });
}
