//! Storage-engine append throughput with `fsync = always`: concurrent producers, each
//! appending batches the way a Kafka producer sends them, acknowledged only after fsync.
//!
//! Run: `cargo bench -p omnibus-storage --bench append`
//! Each iteration writes `PRODUCERS × BATCHES_PER_PRODUCER` batches to fresh logs on the real
//! disk (in `OMNIBUS_BENCH_DIR`, default the system temp folder), each producer keeping
//! `IN_FLIGHT` appends outstanding, and waits for every acknowledgement; criterion reports
//! records/s.

/// The same allocator as the `omnibus` binary, so the figures are the broker's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use omnibus_storage::batch::encode_batch;
use omnibus_storage::io::FileIo;
use omnibus_storage::{LogConfig, PartitionLog};
use omnibus_types::Record;

const PRODUCERS: usize = 64;
const BATCHES_PER_PRODUCER: usize = 20;
/// Appends each producer keeps in flight, like librdkafka's `max.in.flight` of 5.
const IN_FLIGHT: usize = 4;

fn bench_dir() -> PathBuf {
    std::env::var_os("OMNIBUS_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
}

fn batch(records_per_batch: usize, value_bytes: usize) -> BytesMut {
    let value = Bytes::from(vec![b'x'; value_bytes]);
    let records: Vec<Record> = (0..records_per_batch)
        .map(|_| Record {
            offset: 0,
            timestamp_ms: 1_700_000_000_000,
            subject: String::new(),
            key: None,
            value: Some(value.clone()),
            headers: vec![],
        })
        .collect();
    encode_batch(&records).expect("encode")
}

fn append_throughput(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("append_fsync_always");
    group.sample_size(10);
    group.measurement_time(std::time::Duration::from_secs(8));
    // (record bytes, records per producer batch): batches of ~16 KiB, librdkafka's default.
    for (value_bytes, records_per_batch) in [(100usize, 160usize), (1024, 16)] {
        for partitions in [1usize, 8] {
            let records = PRODUCERS * BATCHES_PER_PRODUCER * records_per_batch;
            group.throughput(Throughput::Elements(records as u64));
            let template = batch(records_per_batch, value_bytes);
            let id = BenchmarkId::new(format!("{value_bytes}B"), format!("{partitions}p"));
            group.bench_function(id, |b| {
                b.iter_custom(|iterations| {
                    let mut total = std::time::Duration::ZERO;
                    for _ in 0..iterations {
                        let root = tempfile::tempdir_in(bench_dir()).expect("tempdir");
                        let logs: Vec<Arc<PartitionLog>> = (0..partitions)
                            .map(|p| {
                                PartitionLog::open(
                                    Arc::new(FileIo),
                                    &root.path().join(p.to_string()),
                                    LogConfig::default(),
                                )
                                .expect("open")
                            })
                            .collect();
                        let started = std::time::Instant::now();
                        runtime.block_on(async {
                            let mut tasks = Vec::new();
                            for producer in 0..PRODUCERS {
                                let log = logs[producer % partitions].clone();
                                let template = template.clone();
                                tasks.push(tokio::spawn(async move {
                                    let mut in_flight = tokio::task::JoinSet::new();
                                    for _ in 0..BATCHES_PER_PRODUCER {
                                        if in_flight.len() == IN_FLIGHT {
                                            in_flight.join_next().await;
                                        }
                                        let log = log.clone();
                                        let bytes = template.clone();
                                        in_flight.spawn(async move {
                                            log.append(bytes).await.expect("append");
                                        });
                                    }
                                    while in_flight.join_next().await.is_some() {}
                                }));
                            }
                            for task in tasks {
                                task.await.expect("producer");
                            }
                        });
                        total += started.elapsed();
                        for log in logs {
                            log.close().expect("close");
                        }
                    }
                    total
                });
            });
        }
    }
    group.finish();
}

criterion_group!(benches, append_throughput);
criterion_main!(benches);
