//! Partition log tests, run against every I/O backend where the backend matters.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use omnibus_types::Record;
use proptest::prelude::*;

use super::*;
use crate::batch::{decode_batches, encode_batch};
use crate::config::FsyncPolicy;
use crate::io::{FaultPlan, FaultyIo, FileIo, MemoryIo};

mod encoded;
mod inline;
mod lazy_log_start;
mod metrics;
mod power_loss;
mod recovery;

fn records(values: &[&str], timestamp_ms: i64) -> Vec<Record> {
    values
        .iter()
        .map(|value| Record {
            offset: 0,
            timestamp_ms,
            subject: String::new(),
            key: None,
            value: Some(Bytes::copy_from_slice(value.as_bytes())),
            headers: vec![],
        })
        .collect()
}

pub(in crate::partition) fn batch(values: &[&str]) -> BytesMut {
    encode_batch(&records(values, now_ms())).unwrap()
}

fn small_segments() -> LogConfig {
    LogConfig {
        segment_bytes: 4096,
        index_interval_bytes: 256,
        ..LogConfig::default()
    }
}

pub(in crate::partition) fn read_values(log: &PartitionLog, from: u64) -> Vec<String> {
    let mut values = Vec::new();
    let mut offset = from;
    while offset < log.high_watermark() {
        let read = log.read(offset, 1 << 20).unwrap();
        let decoded = decode_batches(read.bytes, offset).unwrap();
        assert!(!decoded.is_empty(), "read at {offset} returned nothing");
        for record in &decoded {
            assert_eq!(record.offset, offset, "offsets are dense");
            offset += 1;
            values.push(String::from_utf8(record.value.clone().unwrap().to_vec()).unwrap());
        }
    }
    values
}

pub(in crate::partition) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A backend under test: its name, the backend, the partition folder, and the temporary
/// folder that must outlive the test (file backend only).
type Backend = (
    &'static str,
    Arc<dyn Io>,
    PathBuf,
    Option<tempfile::TempDir>,
);

fn backends() -> Vec<Backend> {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("p0");
    vec![
        ("file", Arc::new(FileIo) as Arc<dyn Io>, dir, Some(temp)),
        (
            "memory",
            Arc::new(MemoryIo::new()),
            PathBuf::from("/data/p0"),
            None,
        ),
        (
            "faulty",
            Arc::new(FaultyIo::new(Arc::new(MemoryIo::new()), FaultPlan::new())),
            PathBuf::from("/data/p0"),
            None,
        ),
    ]
}

#[test]
fn appends_get_dense_offsets_and_read_back_across_segments() {
    let rt = runtime();
    for (name, io, dir, _keep) in backends() {
        let log = PartitionLog::open(io.clone(), &dir, small_segments()).unwrap();
        let mut expected = Vec::new();
        rt.block_on(async {
            for round in 0..200 {
                let values: Vec<String> = (0..3).map(|i| format!("{name}-{round}-{i}")).collect();
                let refs: Vec<&str> = values.iter().map(String::as_str).collect();
                let info = log.append(batch(&refs)).await.unwrap();
                assert_eq!(info.first_offset, round * 3);
                assert_eq!(info.last_offset, round * 3 + 2);
                expected.extend(values);
            }
        });
        assert!(
            log.status().segments > 1,
            "{name}: small segments must roll"
        );
        assert_eq!(read_values(&log, 0), expected, "{name}");
        assert_eq!(
            read_values(&log, 301),
            expected[301..].to_vec(),
            "{name}: mid-batch read"
        );
        log.close().unwrap();
        let reopened = PartitionLog::open(io, &dir, small_segments()).unwrap();
        assert_eq!(reopened.high_watermark(), 600, "{name}");
        assert_eq!(read_values(&reopened, 0), expected, "{name}: after reopen");
    }
}

#[test]
fn concurrent_appends_are_group_committed_and_all_acknowledged() {
    let rt = runtime();
    let temp = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(
        Arc::new(FileIo),
        &temp.path().join("p"),
        LogConfig::default(),
    )
    .unwrap();
    let total = rt.block_on(async {
        let mut tasks = Vec::new();
        for producer in 0..16 {
            let log = log.clone();
            tasks.push(tokio::spawn(async move {
                let mut offsets = Vec::new();
                for i in 0..50 {
                    let value = format!("{producer}-{i}");
                    offsets.push(log.append(batch(&[&value])).await.unwrap().first_offset);
                }
                offsets
            }));
        }
        let mut all = Vec::new();
        for task in tasks {
            let offsets = task.await.unwrap();
            assert!(
                offsets.windows(2).all(|w| w[0] < w[1]),
                "per-producer order"
            );
            all.extend(offsets);
        }
        all.sort_unstable();
        all
    });
    assert_eq!(total, (0..800).collect::<Vec<u64>>());
    assert_eq!(log.high_watermark(), 800);
}

#[test]
fn read_respects_max_bytes_but_always_returns_one_batch() {
    let rt = runtime();
    let log = PartitionLog::open(
        Arc::new(MemoryIo::new()),
        Path::new("/p"),
        LogConfig::default(),
    )
    .unwrap();
    let big = "x".repeat(5000);
    rt.block_on(async {
        log.append(batch(&[&big])).await.unwrap();
        log.append(batch(&["small"])).await.unwrap();
    });
    let read = log.read(0, 10).unwrap();
    let decoded = decode_batches(read.bytes, 0).unwrap();
    assert_eq!(
        decoded.len(),
        1,
        "one whole batch even though it exceeds max_bytes"
    );
    assert_eq!(
        log.read(2, 10).unwrap().bytes.len(),
        0,
        "empty at the high watermark"
    );
    assert!(matches!(
        log.read(3, 10),
        Err(StorageError::OffsetOutOfRange { .. })
    ));
}

#[test]
fn offset_for_timestamp_finds_the_first_record_at_or_after() {
    let rt = runtime();
    let log =
        PartitionLog::open(Arc::new(MemoryIo::new()), Path::new("/p"), small_segments()).unwrap();
    rt.block_on(async {
        for i in 0..100i64 {
            let bytes = encode_batch(&records(&["a", "b"], 1_000 + i * 10)).unwrap();
            log.append(bytes).await.unwrap();
        }
    });
    assert_eq!(log.offset_for_timestamp(0).unwrap(), 0);
    assert_eq!(log.offset_for_timestamp(1_000).unwrap(), 0);
    assert_eq!(log.offset_for_timestamp(1_001).unwrap(), 2);
    assert_eq!(log.offset_for_timestamp(1_500).unwrap(), 100);
    assert_eq!(
        log.offset_for_timestamp(99_999).unwrap(),
        200,
        "past the end = high watermark"
    );
}

#[test]
fn fsync_failure_poisons_the_partition_and_keeps_acknowledged_data() {
    let rt = runtime();
    let plan = FaultPlan::new();
    let memory = MemoryIo::new();
    let io: Arc<dyn Io> = Arc::new(FaultyIo::new(Arc::new(memory.clone()), plan.clone()));
    let dir = Path::new("/p");
    let log = PartitionLog::open(io.clone(), dir, LogConfig::default()).unwrap();
    rt.block_on(async {
        log.append(batch(&["kept-1", "kept-2"])).await.unwrap();
        plan.fail_sync(1);
        let error = log.append(batch(&["lost"])).await.unwrap_err();
        assert!(matches!(error, StorageError::Poisoned { .. }), "{error}");
        let again = log.append(batch(&["refused"])).await.unwrap_err();
        assert!(matches!(again, StorageError::Poisoned { .. }), "{again}");
    });
    assert_eq!(log.high_watermark(), 2, "the failed write is never visible");
    assert_eq!(read_values(&log, 0), vec!["kept-1", "kept-2"]);
    assert!(log.status().failure.is_some());
    memory.crash();
    let reopened = PartitionLog::open(Arc::new(memory), dir, LogConfig::default()).unwrap();
    assert_eq!(read_values(&reopened, 0), vec!["kept-1", "kept-2"]);
    rt.block_on(async {
        reopened.append(batch(&["after-restart"])).await.unwrap();
    });
}

#[test]
fn enqueued_appends_keep_their_order_and_become_durable_together() {
    let rt = runtime();
    let memory = MemoryIo::new();
    let dir = Path::new("/p");
    let log = PartitionLog::open(Arc::new(memory.clone()), dir, LogConfig::default()).unwrap();
    rt.block_on(async {
        let mut pending = Vec::new();
        for index in 0..5 {
            let values = [format!("a{index}"), format!("b{index}")];
            let values: Vec<&str> = values.iter().map(String::as_str).collect();
            pending.push(log.enqueue(batch(&values)).await.unwrap());
        }
        let offsets: Vec<u64> = pending.iter().map(|p| p.offsets().first_offset).collect();
        assert_eq!(
            offsets,
            [0, 2, 4, 6, 8],
            "offsets are given in enqueue order"
        );
        // Waited for in reverse: each resolves once its own group is durable.
        for pending in pending.into_iter().rev() {
            let info = pending.durable().await.unwrap();
            assert!(log.high_watermark() > info.last_offset);
        }
        let earlier = AppendInfo {
            first_offset: 2,
            last_offset: 3,
        };
        assert_eq!(log.wait_durable(earlier).await.unwrap(), earlier);
    });
    memory.crash();
    let reopened = PartitionLog::open(Arc::new(memory), dir, LogConfig::default()).unwrap();
    assert_eq!(read_values(&reopened, 0).len(), 10);
}

#[test]
fn a_failed_group_fails_every_enqueued_append_and_earlier_waits() {
    let rt = runtime();
    let plan = FaultPlan::new();
    let io: Arc<dyn Io> = Arc::new(FaultyIo::new(Arc::new(MemoryIo::new()), plan.clone()));
    let log = PartitionLog::open(io, Path::new("/p"), LogConfig::default()).unwrap();
    rt.block_on(async {
        plan.fail_sync(1);
        let first = log.enqueue(batch(&["x"])).await.unwrap();
        let second = log.enqueue(batch(&["y"])).await;
        let offsets = first.offsets();
        assert!(first.durable().await.is_err());
        // The second either was refused at enqueue (already poisoned) or fails its wait.
        if let Ok(second) = second {
            assert!(second.durable().await.is_err());
        }
        assert!(log.wait_durable(offsets).await.is_err());
    });
    assert_eq!(log.high_watermark(), 0);
}

#[test]
fn deleting_records_moves_the_log_start_durably_and_drops_whole_segments_below() {
    let rt = runtime();
    let memory = MemoryIo::new();
    let dir = Path::new("/p");
    let log = PartitionLog::open(Arc::new(memory.clone()), dir, small_segments()).unwrap();
    rt.block_on(async {
        for round in 0..100 {
            let values = [format!("r{round}-a"), format!("r{round}-b")];
            log.append(batch(&[&values[0], &values[1]])).await.unwrap();
        }
    });
    let segments_before = log.status().segments;
    assert!(segments_before > 2);
    // Inside a batch: the start is exactly the asked offset.
    assert_eq!(log.delete_records_before(151).unwrap(), 151);
    assert_eq!(log.log_start_offset(), 151);
    assert!(
        log.status().segments < segments_before,
        "whole segments below went"
    );
    assert!(matches!(
        log.read(150, 1024),
        Err(StorageError::OffsetOutOfRange { log_start: 151, .. })
    ));
    assert_eq!(read_values(&log, 151)[0], "r75-b");
    assert_eq!(
        log.delete_records_before(10).unwrap(),
        151,
        "never moves back"
    );
    assert!(matches!(
        log.delete_records_before(201),
        Err(StorageError::OffsetOutOfRange { .. })
    ));
    // A crash right after: the start survives, the records above it are all there.
    memory.crash();
    let reopened = PartitionLog::open(Arc::new(memory.clone()), dir, small_segments()).unwrap();
    assert_eq!(reopened.log_start_offset(), 151);
    assert_eq!(reopened.high_watermark(), 200);
    assert_eq!(read_values(&reopened, 151).len(), 49);
    // Up to the high watermark: nothing left to read, appends go on after it.
    assert_eq!(reopened.delete_records_before(200).unwrap(), 200);
    rt.block_on(async {
        reopened.append(batch(&["after"])).await.unwrap();
    });
    assert_eq!(read_values(&reopened, 200), vec!["after"]);
}

#[test]
fn max_timestamp_offset_finds_the_first_record_with_the_largest_timestamp() {
    let rt = runtime();
    let log =
        PartitionLog::open(Arc::new(MemoryIo::new()), Path::new("/p"), small_segments()).unwrap();
    assert_eq!(log.max_timestamp_offset().unwrap(), None, "empty");
    let now = now_ms();
    rt.block_on(async {
        // Timestamps out of order, the largest twice, across several segments.
        for (round, delta) in [5, 9, 3, 9, 1, 7].iter().enumerate() {
            for _ in 0..20 {
                let mut records = records(&["x", "y"], now + delta * 1000);
                records[1].timestamp_ms -= 1;
                let value = format!("{round}");
                records[0].value = Some(Bytes::from(value));
                log.append(encode_batch(&records).unwrap()).await.unwrap();
            }
        }
    });
    assert!(log.status().segments > 1);
    // Round 1 starts at offset 40: its first record carries the largest timestamp.
    assert_eq!(log.max_timestamp_offset().unwrap(), Some((40, now + 9000)));
}

/// `values` as one batch from idempotent producer `id` (epoch 0) starting at `sequence`.
fn producer_batch(values: &[&str], id: i64, sequence: i32) -> BytesMut {
    let mut bytes = batch(values);
    bytes[43..51].copy_from_slice(&id.to_be_bytes());
    bytes[51..53].copy_from_slice(&0i16.to_be_bytes());
    bytes[53..57].copy_from_slice(&sequence.to_be_bytes());
    let crc = crc32c::crc32c(&bytes[21..]);
    bytes[17..21].copy_from_slice(&crc.to_be_bytes());
    bytes
}

#[test]
fn producer_batches_survive_a_crash_even_from_segments_rolled_since() {
    let rt = runtime();
    let memory = MemoryIo::new();
    let dir = Path::new("/p");
    let log = PartitionLog::open(Arc::new(memory.clone()), dir, small_segments()).unwrap();
    rt.block_on(async {
        // Producer 7 writes first, then others fill several segments after it.
        for index in 0..3 {
            log.append(producer_batch(&["a", "b"], 7, index * 2))
                .await
                .unwrap();
        }
        for round in 0..150 {
            log.append(producer_batch(&["c"], 8, round)).await.unwrap();
            log.append(batch(&["plain"])).await.unwrap();
        }
    });
    assert!(
        log.status().segments > 3,
        "the producer's batches are in an old segment"
    );
    let before = log.producer_batches(7).unwrap();
    assert_eq!(before.len(), 3);
    assert_eq!(
        (
            before[2].first_sequence,
            before[2].last_sequence,
            before[2].first_offset
        ),
        (4, 5, 4)
    );
    memory.crash();
    let reopened = PartitionLog::open(Arc::new(memory.clone()), dir, small_segments()).unwrap();
    assert_eq!(
        reopened.producer_batches(7),
        Some(before),
        "from the roll's snapshot"
    );
    let eight = reopened.producer_batches(8).unwrap();
    assert_eq!(
        eight.last().unwrap().first_sequence,
        149,
        "from the active segment's scan"
    );
    assert_eq!(reopened.producer_batches(9), None);
    // Only the active segment's snapshot is kept.
    let snapshots = memory
        .list_dir(dir)
        .unwrap()
        .into_iter()
        .filter(|name| name.ends_with(".producers"))
        .count();
    assert_eq!(snapshots, 1);
}

#[test]
fn disk_full_is_reported_as_such() {
    let rt = runtime();
    let plan = FaultPlan::new();
    let io: Arc<dyn Io> = Arc::new(FaultyIo::new(Arc::new(MemoryIo::new()), plan.clone()));
    let log = PartitionLog::open(io, Path::new("/p"), LogConfig::default()).unwrap();
    plan.as_disk_full(true);
    // A full disk refuses every write: the zeros written ahead of the batch as well as the
    // batch itself (a refused preallocation alone is not an error).
    plan.sticky(true);
    plan.fail_write(1);
    rt.block_on(async {
        let error = log.append(batch(&["x"])).await.unwrap_err();
        assert!(error.to_string().contains("disk full"), "{error}");
    });
}

#[test]
fn retention_deletes_old_and_excess_closed_segments_only() {
    let rt = runtime();
    let io = Arc::new(MemoryIo::new());
    let config = LogConfig {
        retention_bytes: Some(8192),
        retention_ms: Some(60_000),
        ..small_segments()
    };
    let log = PartitionLog::open(io, Path::new("/p"), config).unwrap();
    let value = "v".repeat(500);
    rt.block_on(async {
        for _ in 0..100 {
            log.append(batch(&[&value])).await.unwrap();
        }
    });
    let before = log.status();
    let outcome = log.enforce_retention().unwrap();
    let after = log.status();
    assert!(outcome.segments_deleted > 0);
    assert!(
        after.size_bytes < 8192 + 4096,
        "size {} after retention",
        after.size_bytes
    );
    assert!(after.log_start_offset > 0);
    assert_eq!(after.high_watermark, before.high_watermark);
    let tail = read_values(&log, after.log_start_offset);
    assert_eq!(
        tail.len() as u64,
        after.high_watermark - after.log_start_offset
    );
    assert!(matches!(
        log.read(0, 100),
        Err(StorageError::OffsetOutOfRange { .. })
    ));
    // By age: everything closed is older than the limit an hour from now.
    let aged = log.enforce_retention_at(now_ms() + 3_600_000).unwrap();
    assert!(aged.segments_deleted > 0);
    assert_eq!(log.status().segments, 1, "the active segment always stays");
}

#[test]
fn crash_loses_only_unsynced_data_under_never_policy() {
    let rt = runtime();
    let memory = MemoryIo::new();
    let config = LogConfig {
        fsync: FsyncPolicy::Never,
        ..LogConfig::default()
    };
    let log =
        PartitionLog::open(Arc::new(memory.clone()), Path::new("/p"), config.clone()).unwrap();
    rt.block_on(async {
        log.append(batch(&["a"])).await.unwrap();
    });
    assert_eq!(log.high_watermark(), 1, "acknowledged after the write");
    memory.crash();
    let reopened = PartitionLog::open(Arc::new(memory), Path::new("/p"), config).unwrap();
    assert_eq!(
        reopened.high_watermark(),
        0,
        "never-synced data may be lost, as documented"
    );
}

#[test]
fn stale_or_missing_index_files_are_rebuilt() {
    let rt = runtime();
    let memory = MemoryIo::new();
    let dir = Path::new("/p");
    let log = PartitionLog::open(Arc::new(memory.clone()), dir, small_segments()).unwrap();
    let values: Vec<String> = (0..300).map(|i| format!("value-{i}")).collect();
    rt.block_on(async {
        for value in &values {
            log.append(batch(&[value])).await.unwrap();
        }
    });
    log.close().unwrap();
    // Damage the first segment's index so its last entry points at the wrong batch.
    memory
        .corrupt(
            &dir.join("00000000000000000000.index"),
            8,
            &[0, 0, 0, 0, 0, 0, 0, 0],
        )
        .unwrap();
    memory
        .remove_file(&dir.join("00000000000000000000.timeindex"))
        .ok();
    let reopened = PartitionLog::open(Arc::new(memory), dir, small_segments()).unwrap();
    assert_eq!(read_values(&reopened, 0), values);
    assert_eq!(read_values(&reopened, 123), values[123..].to_vec());
}

/// Appends `counts.len()` batches, syncing each, then returns the log bytes and the end
/// position of every batch.
fn build_log(memory: &MemoryIo, counts: &[usize]) -> (Vec<u64>, u64) {
    let rt = runtime();
    let log = PartitionLog::open(
        Arc::new(memory.clone()),
        Path::new("/p"),
        LogConfig::default(),
    )
    .unwrap();
    let mut ends = Vec::new();
    let mut offset = 0u64;
    rt.block_on(async {
        for (index, count) in counts.iter().enumerate() {
            let values: Vec<String> = (0..*count).map(|i| format!("b{index}-r{i}")).collect();
            let refs: Vec<&str> = values.iter().map(String::as_str).collect();
            log.append(batch(&refs)).await.unwrap();
            offset += *count as u64;
            ends.push(log.status().size_bytes);
        }
    });
    (ends, offset)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Truncating the segment at any byte of its last batches recovers a clean prefix that
    /// holds every batch that ended before the cut.
    #[test]
    fn recovery_after_truncation_at_any_byte_is_a_clean_prefix(
        counts in proptest::collection::vec(1usize..5, 2..6),
        cut_back in 0u64..400,
    ) {
        let memory = MemoryIo::new();
        let (ends, total) = build_log(&memory, &counts);
        let log_path = Path::new("/p/00000000000000000000.log");
        let file_length = *ends.last().unwrap();
        let cut = file_length.saturating_sub(cut_back);
        memory.open(log_path, false).unwrap().set_len(cut).unwrap();
        memory.open(log_path, false).unwrap().sync_data().unwrap();
        let log = PartitionLog::open(Arc::new(memory.clone()), Path::new("/p"), LogConfig::default()).unwrap();
        let whole_batches = ends.iter().filter(|end| **end <= cut).count();
        let expected_records: usize = counts[..whole_batches].iter().sum();
        prop_assert_eq!(log.high_watermark(), expected_records as u64);
        prop_assert!(log.high_watermark() <= total);
        let values = read_values(&log, 0);
        prop_assert_eq!(values.len(), expected_records);
        // The log accepts appends at the recovered end.
        let rt = runtime();
        let info = rt.block_on(log.append(batch(&["next"]))).unwrap();
        prop_assert_eq!(info.first_offset, expected_records as u64);
    }

    /// Flipping a byte in the last batch truncates exactly that batch.
    #[test]
    fn recovery_drops_a_corrupt_last_batch(counts in proptest::collection::vec(1usize..5, 2..5), at in 0usize..1000) {
        let memory = MemoryIo::new();
        let (ends, _) = build_log(&memory, &counts);
        let last_start = ends[ends.len() - 2] as usize;
        let last_end = *ends.last().unwrap() as usize;
        let position = last_start + 21 + at % (last_end - last_start - 21);
        let log_path = Path::new("/p/00000000000000000000.log");
        let mut byte = [0u8; 1];
        memory.open(log_path, false).unwrap().read_exact_at(&mut byte, position as u64).unwrap();
        memory.corrupt(log_path, position, &[byte[0] ^ 0xff]).unwrap();
        let log = PartitionLog::open(Arc::new(memory), Path::new("/p"), LogConfig::default()).unwrap();
        let expected: usize = counts[..counts.len() - 1].iter().sum();
        prop_assert_eq!(log.high_watermark(), expected as u64);
        prop_assert!(log.status().quarantined.is_empty(), "a torn tail is not media corruption");
    }

    /// append → read is the identity, across segment rolls.
    #[test]
    fn append_then_read_is_identity(batches in proptest::collection::vec(proptest::collection::vec("[a-z0-9]{0,300}", 1..8), 1..40)) {
        let rt = runtime();
        let log = PartitionLog::open(Arc::new(MemoryIo::new()), Path::new("/p"), small_segments()).unwrap();
        let mut expected = Vec::new();
        rt.block_on(async {
            for values in &batches {
                let refs: Vec<&str> = values.iter().map(String::as_str).collect();
                log.append(batch(&refs)).await.unwrap();
                expected.extend(values.iter().cloned());
            }
        });
        prop_assert_eq!(read_values(&log, 0), expected);
    }
}

/// A new partition's folders (`streams/<stream>/<partition>`) must survive a power loss:
/// when only the partition folder itself was synced, its entry in the stream folder could
/// vanish, and the partition reopened empty with every acknowledged record gone.
#[test]
fn a_new_partition_folder_and_its_acknowledged_records_survive_a_crash() {
    let rt = runtime();
    let memory = MemoryIo::new();
    memory.create_dir_all(Path::new("/data/streams")).unwrap();
    let dir = Path::new("/data/streams/orders/0");
    let log = PartitionLog::open(Arc::new(memory.clone()), dir, LogConfig::default()).unwrap();
    rt.block_on(async {
        log.append(batch(&["first", "second"])).await.unwrap();
        log.append(batch(&["third"])).await.unwrap();
    });
    memory.crash();
    assert!(memory.exists(dir), "the partition folder is durable");
    let reopened = PartitionLog::open(Arc::new(memory), dir, LogConfig::default()).unwrap();
    assert_eq!(read_values(&reopened, 0), vec!["first", "second", "third"]);
}

#[test]
fn closing_makes_the_index_files_durable() {
    let rt = runtime();
    let memory = MemoryIo::new();
    let dir = Path::new("/p");
    let log = PartitionLog::open(Arc::new(memory.clone()), dir, LogConfig::default()).unwrap();
    rt.block_on(async {
        log.append(batch(&["a"])).await.unwrap();
    });
    log.close().unwrap();
    memory.crash();
    let names = memory.list_dir(dir).unwrap();
    assert!(
        names.contains(&"00000000000000000000.index".to_string())
            && names.contains(&"00000000000000000000.timeindex".to_string()),
        "{names:?}"
    );
}
