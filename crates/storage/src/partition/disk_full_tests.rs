//! A full disk heals by itself (`disk_full.rs`), run on the fault-injecting backend.

use std::path::Path;
use std::sync::Arc;

use bytes::BytesMut;
use omnibus_types::ErrorCode;

use crate::config::{FsyncPolicy, LogConfig};
use crate::error::StorageError;
use crate::io::{FaultPlan, FaultyIo, Io, MemoryIo};
use crate::partition::tests::{batch, read_values, runtime};
use crate::PartitionLog;

fn producer_batch(values: &[&str], id: i64, sequence: i32) -> BytesMut {
    let mut bytes = batch(values);
    bytes[43..51].copy_from_slice(&id.to_be_bytes());
    bytes[51..53].copy_from_slice(&0i16.to_be_bytes());
    bytes[53..57].copy_from_slice(&sequence.to_be_bytes());
    let crc = crc32c::crc32c(&bytes[21..]);
    bytes[17..21].copy_from_slice(&crc.to_be_bytes());
    bytes
}

struct Setup {
    plan: Arc<FaultPlan>,
    memory: MemoryIo,
    log: Arc<PartitionLog>,
}

fn open(fsync: FsyncPolicy) -> Setup {
    let plan = FaultPlan::new();
    plan.as_disk_full(true);
    let memory = MemoryIo::new();
    let io: Arc<dyn Io> = Arc::new(FaultyIo::new(Arc::new(memory.clone()), plan.clone()));
    let config = LogConfig {
        fsync,
        ..LogConfig::default()
    };
    let log = PartitionLog::open(io, Path::new("/p"), config).unwrap();
    Setup { plan, memory, log }
}

/// The first segment's bytes up to its last non-zero byte: what was written, without the
/// zeros written ahead of it (`Segment::preallocate`).
fn segment_data(memory: &MemoryIo) -> Vec<u8> {
    let name = format!("{}.log", crate::segment::file_stem(0));
    let file = memory.open(&Path::new("/p").join(name), false).unwrap();
    let mut bytes = vec![0u8; file.len().unwrap() as usize];
    file.read_exact_at(&mut bytes, 0).unwrap();
    let end = bytes
        .iter()
        .rposition(|byte| *byte != 0)
        .map_or(0, |at| at + 1);
    bytes.truncate(end);
    bytes
}

#[test]
fn a_full_disk_refuses_writes_until_resumed_then_offsets_stay_dense() {
    let rt = runtime();
    let Setup { plan, memory, log } = open(FsyncPolicy::Always);
    rt.block_on(async {
        log.append(batch(&["a", "b"])).await.unwrap();
        let data = segment_data(&memory);
        plan.fail_write(1);
        let error = log.append(batch(&["refused"])).await.unwrap_err();
        assert_eq!(error.code(), ErrorCode::DiskFull, "{error}");
        // Still refused, with the same code, even once the disk would take it.
        plan.clear();
        let again = log.append(batch(&["also refused"])).await.unwrap_err();
        assert_eq!(again.code(), ErrorCode::DiskFull, "{again}");
        assert!(log.is_disk_full());
        assert!(log.status().failure.unwrap().contains("disk full"));
        assert_eq!(segment_data(&memory), data, "nothing refused stays on disk");

        assert!(log.resume_after_disk_full());
        assert!(!log.is_disk_full());
        assert_eq!(log.status().failure, None);
        let info = log.append(batch(&["c"])).await.unwrap();
        assert_eq!(
            info.first_offset, 2,
            "the refused appends' offsets are given out again"
        );
    });
    assert_eq!(read_values(&log, 0), vec!["a", "b", "c"]);
    memory.crash();
    let reopened = PartitionLog::open(Arc::new(memory), Path::new("/p"), LogConfig::default());
    assert_eq!(read_values(&reopened.unwrap(), 0), vec!["a", "b", "c"]);
}

#[test]
fn an_enospc_fsync_under_fsync_always_heals_and_cuts_the_refused_bytes() {
    let rt = runtime();
    let Setup { plan, memory, log } = open(FsyncPolicy::Always);
    rt.block_on(async {
        log.append(batch(&["a"])).await.unwrap();
        let data = segment_data(&memory);
        plan.fail_sync(1);
        let error = log
            .append(batch(&["written, not synced"]))
            .await
            .unwrap_err();
        assert_eq!(error.code(), ErrorCode::DiskFull, "{error}");
        assert_eq!(segment_data(&memory), data, "the unsynced bytes are cut");
        plan.clear();
        assert!(log.resume_after_disk_full());
        log.append(batch(&["b"])).await.unwrap();
    });
    assert_eq!(read_values(&log, 0), vec!["a", "b"]);
}

#[test]
fn an_enospc_fsync_under_fsync_interval_poisons() {
    let rt = runtime();
    let Setup { plan, log, .. } = open(FsyncPolicy::IntervalMs(0));
    rt.block_on(async {
        log.append(batch(&["a"])).await.unwrap();
        plan.fail_sync(1);
        // Acknowledged, unsynced bytes that readers saw may be lost: no way back but a restart.
        let error = log.append(batch(&["b"])).await.unwrap_err();
        assert!(matches!(error, StorageError::Poisoned { .. }), "{error}");
    });
    assert!(!log.is_disk_full());
    assert!(
        !log.resume_after_disk_full(),
        "a poisoned log does not resume"
    );
}

#[test]
fn an_enospc_write_under_fsync_never_keeps_acknowledged_unsynced_records() {
    let rt = runtime();
    let Setup { plan, memory, log } = open(FsyncPolicy::Never);
    rt.block_on(async {
        log.append(batch(&["a", "b"])).await.unwrap();
        plan.fail_write(1);
        let error = log.append(batch(&["refused"])).await.unwrap_err();
        assert_eq!(error.code(), ErrorCode::DiskFull, "{error}");
        assert_eq!(
            read_values(&log, 0),
            vec!["a", "b"],
            "readers lose nothing they saw"
        );
        plan.clear();
        assert!(log.resume_after_disk_full());
        log.append(batch(&["c"])).await.unwrap();
    });
    assert_eq!(read_values(&log, 0), vec!["a", "b", "c"]);
    log.close().unwrap();
    memory.crash();
    let reopened = PartitionLog::open(Arc::new(memory), Path::new("/p"), LogConfig::default());
    assert_eq!(read_values(&reopened.unwrap(), 0), vec!["a", "b", "c"]);
}

#[test]
fn a_refused_idempotent_batch_is_written_when_retried_after_the_resume() {
    let rt = runtime();
    let Setup { plan, log, .. } = open(FsyncPolicy::Always);
    rt.block_on(async {
        log.append(producer_batch(&["first"], 9, 0)).await.unwrap();
        plan.fail_write(1);
        log.append(producer_batch(&["second"], 9, 1))
            .await
            .unwrap_err();
        let known = log.producer_batches(9).unwrap();
        assert_eq!(known.len(), 1, "the refused batch is forgotten: {known:?}");
        plan.clear();
        assert!(log.resume_after_disk_full());
        log.append(producer_batch(&["second"], 9, 1)).await.unwrap();
    });
    assert_eq!(read_values(&log, 0), vec!["first", "second"]);
}

#[test]
fn a_waiter_that_sleeps_through_a_resume_gets_its_true_outcome() {
    let rt = runtime();
    let Setup { plan, log, .. } = open(FsyncPolicy::Always);
    rt.block_on(async {
        let durable = log.enqueue(batch(&["durable"])).await.unwrap();
        while log.high_watermark() < 1 {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        plan.fail_write(1);
        let refused = log.enqueue(batch(&["refused"])).await.unwrap();
        while log.failure().is_none() || !log.is_disk_full() {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        plan.clear();
        assert!(log.resume_after_disk_full());
        // The refused append's offset goes to the next one, which lands.
        let next = log.append(batch(&["next"])).await.unwrap();
        assert_eq!(next.first_offset, 1);
        // Only now do the two waiters look.
        assert_eq!(durable.durable().await.unwrap().first_offset, 0);
        let error = refused.durable().await.unwrap_err();
        assert_eq!(error.code(), ErrorCode::DiskFull, "{error}");
    });
    assert_eq!(read_values(&log, 0), vec!["durable", "next"]);
}
