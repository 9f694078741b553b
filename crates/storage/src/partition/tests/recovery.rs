//! Recovery of a damaged active segment: a torn tail is truncated, damage followed by valid
//! batches is set aside in a quarantine file and reported.

use super::*;

const SEGMENT: &str = "00000000000000000000.log";

fn read_file(io: &dyn Io, path: &Path) -> Vec<u8> {
    let file = io.open(path, false).unwrap();
    let mut bytes = vec![0u8; file.len().unwrap() as usize];
    file.read_exact_at(&mut bytes, 0).unwrap();
    bytes
}

/// Flips one byte of a file durably, through the backend itself.
fn flip_byte(io: &dyn Io, path: &Path, position: u64) {
    let file = io.open(path, false).unwrap();
    let mut byte = [0u8; 1];
    file.read_exact_at(&mut byte, position).unwrap();
    file.write_at(&[byte[0] ^ 0x5a], position).unwrap();
    file.sync_data().unwrap();
}

/// Ten acknowledged batches of two records each; returns each batch's start and end.
fn ten_batches(io: &Arc<dyn Io>, dir: &Path) -> Vec<(u64, u64)> {
    let rt = runtime();
    let log = PartitionLog::open(io.clone(), dir, LogConfig::default()).unwrap();
    let mut spans = Vec::new();
    rt.block_on(async {
        for index in 0..10 {
            let start = log.status().size_bytes;
            log.append(batch(&[&format!("b{index}-a"), &format!("b{index}-b")]))
                .await
                .unwrap();
            spans.push((start, log.status().size_bytes));
        }
    });
    // A crash, not a close: the damaged segment is the active one.
    spans
}

#[test]
fn damage_with_valid_batches_after_it_is_set_aside_and_reported() {
    for (name, io, dir, _keep) in backends() {
        let spans = ten_batches(&io, &dir);
        let segment = dir.join(SEGMENT);
        let before = read_file(io.as_ref(), &segment);
        // A byte inside the records of the fifth batch: its CRC no longer matches.
        let (damaged_start, _) = spans[4];
        flip_byte(io.as_ref(), &segment, damaged_start + 70);
        let damaged = read_file(io.as_ref(), &segment);

        let log = PartitionLog::open(io.clone(), &dir, LogConfig::default()).unwrap();
        assert_eq!(log.high_watermark(), 8, "{name}: up to the last good batch");
        let status = log.status();
        assert_eq!(status.quarantined.len(), 1, "{name}: {status:?}");
        let quarantined = &status.quarantined[0];
        assert!(
            quarantined
                .file
                .starts_with("00000000000000000000.log.quarantine-"),
            "{name}: {}",
            quarantined.file
        );
        assert_eq!(
            quarantined.bytes,
            before.len() as u64 - damaged_start,
            "{name}"
        );
        assert!(
            quarantined
                .reason
                .contains("5 valid batches (offsets 10..=19)"),
            "{name}: {}",
            quarantined.reason
        );
        assert!(quarantined.found_at_ms > 0, "{name}");
        assert_eq!(
            read_file(io.as_ref(), &dir.join(&quarantined.file)),
            damaged[damaged_start as usize..].to_vec(),
            "{name}: the quarantine holds exactly the bytes from the damage to the end"
        );
        assert_eq!(
            read_file(io.as_ref(), &segment),
            before[..damaged_start as usize].to_vec(),
            "{name}: the segment keeps its good prefix"
        );
        // Writable from the last good batch.
        let rt = runtime();
        let info = rt.block_on(log.append(batch(&["after"]))).unwrap();
        assert_eq!(info.first_offset, 8, "{name}");
        log.close().unwrap();

        // A second start: nothing new to repair, the quarantine still reported.
        let again = PartitionLog::open(io.clone(), &dir, LogConfig::default()).unwrap();
        let status = again.status();
        assert_eq!(status.quarantined.len(), 1, "{name}");
        assert_eq!(status.quarantined[0].file, quarantined.file, "{name}");
        assert_eq!(status.quarantined[0].bytes, quarantined.bytes, "{name}");
        assert_eq!(
            status.quarantined[0].found_at_ms, quarantined.found_at_ms,
            "{name}"
        );
        let mut expected: Vec<String> = (0..4)
            .flat_map(|index| [format!("b{index}-a"), format!("b{index}-b")])
            .collect();
        expected.push("after".into());
        assert_eq!(read_values(&again, 0), expected, "{name}");
        // Once the operator removes the file, it is no longer reported.
        io.remove_file(&dir.join(&quarantined.file)).unwrap();
        let cleared = PartitionLog::open(io.clone(), &dir, LogConfig::default()).unwrap();
        assert!(cleared.status().quarantined.is_empty(), "{name}");
    }
}

#[test]
fn a_damaged_last_batch_is_a_torn_tail_truncated_without_quarantine() {
    for (name, io, dir, _keep) in backends() {
        let spans = ten_batches(&io, &dir);
        let segment = dir.join(SEGMENT);
        let (last_start, _) = spans[9];
        flip_byte(io.as_ref(), &segment, last_start + 70);
        let log = PartitionLog::open(io.clone(), &dir, LogConfig::default()).unwrap();
        assert_eq!(log.high_watermark(), 18, "{name}");
        assert!(log.status().quarantined.is_empty(), "{name}");
        let names = io.list_dir(&dir).unwrap();
        assert!(
            !names.iter().any(|n| n.contains("quarantine")),
            "{name}: {names:?}"
        );
        assert_eq!(read_file(io.as_ref(), &segment).len() as u64, last_start);
    }
}

#[test]
fn a_damaged_base_offset_with_a_valid_crc_is_not_truncated_away() {
    // The base offset is outside the CRC: a flipped bit there leaves a batch whose CRC
    // verifies but whose offset breaks the sequence. Even as the last batch it is set aside.
    let (_, io, dir, _keep) = backends().remove(1);
    let spans = ten_batches(&io, &dir);
    let (last_start, _) = spans[9];
    flip_byte(io.as_ref(), &dir.join(SEGMENT), last_start + 7);
    let log = PartitionLog::open(io.clone(), &dir, LogConfig::default()).unwrap();
    assert_eq!(log.high_watermark(), 18);
    let status = log.status();
    assert_eq!(status.quarantined.len(), 1, "{status:?}");
    assert!(status.quarantined[0].reason.contains("1 valid batches"));
}

#[test]
fn a_partition_marked_lost_refuses_writes_until_the_marker_is_removed() {
    let rt = runtime();
    let memory = MemoryIo::new();
    let dir = Path::new("/data/streams/orders/1");
    PartitionLog::mark_lost(&memory, dir, "the folder was missing").unwrap();
    memory.crash();
    for _restart in 0..2 {
        let log = PartitionLog::open(Arc::new(memory.clone()), dir, LogConfig::default()).unwrap();
        let failure = log.status().failure.unwrap_or_default();
        assert!(failure.contains("the folder was missing"), "{failure}");
        assert!(
            failure.contains("partition-lost"),
            "says how to clear it: {failure}"
        );
        let error = rt.block_on(log.append(batch(&["x"]))).unwrap_err();
        assert!(matches!(error, StorageError::Poisoned { .. }), "{error}");
    }
    memory.remove_file(&dir.join("partition-lost")).unwrap();
    let log = PartitionLog::open(Arc::new(memory), dir, LogConfig::default()).unwrap();
    assert_eq!(
        rt.block_on(log.append(batch(&["x"]))).unwrap().first_offset,
        0
    );
}

#[test]
fn the_zeros_written_ahead_of_the_log_are_its_end_after_a_crash_not_damage() {
    let rt = runtime();
    for (name, io, dir, _keep) in backends() {
        let spans = ten_batches(&io, &dir);
        let end = spans[9].1;
        let segment = dir.join(SEGMENT);
        let on_disk = read_file(io.as_ref(), &segment);
        assert!(
            on_disk.len() as u64 > end,
            "{name}: an fsynced segment's file runs ahead of its batches"
        );
        assert!(
            on_disk[end as usize..].iter().all(|byte| *byte == 0),
            "{name}"
        );

        let log = PartitionLog::open(io.clone(), &dir, LogConfig::default()).unwrap();
        assert_eq!(log.high_watermark(), 20, "{name}");
        let status = log.status();
        assert!(status.quarantined.is_empty(), "{name}: {status:?}");
        assert_eq!(status.size_bytes, end, "{name}");
        let info = rt.block_on(log.append(batch(&["after"]))).unwrap();
        assert_eq!(
            info.first_offset, 20,
            "{name}: the log goes on after its last batch"
        );
        let size = log.status().size_bytes;
        log.close().unwrap();
        assert_eq!(
            read_file(io.as_ref(), &segment).len() as u64,
            size,
            "{name}: a close cuts the zeros off"
        );
        let reopened = PartitionLog::open(io.clone(), &dir, LogConfig::default()).unwrap();
        assert_eq!(read_values(&reopened, 20), vec!["after"], "{name}");
    }
}

#[test]
fn a_torn_batch_before_the_zeros_is_still_a_torn_tail() {
    // Zeros end the log only when everything after the last whole batch is zero: a batch whose
    // first bytes reached the disk and whose rest did not is damage, truncated and reported.
    let (_, io, dir, _keep) = backends().remove(1);
    let spans = ten_batches(&io, &dir);
    let (last_start, last_end) = spans[9];
    let segment = dir.join(SEGMENT);
    let file = io.open(&segment, false).unwrap();
    let zeros = vec![0u8; (last_end - last_start - 20) as usize];
    file.write_at(&zeros, last_start + 20).unwrap();
    file.sync_data().unwrap();
    drop(file);
    let (opened, repair) = crate::segment::Segment::open(
        io.as_ref(),
        &dir,
        0,
        true,
        LogConfig::default().index_interval_bytes,
        LogConfig::default().batch_bytes_max,
        0,
        None,
    )
    .unwrap();
    let repair = repair.expect("a torn batch is repaired");
    assert!(
        repair
            .note
            .contains(&format!("truncated at byte {last_start}")),
        "{}",
        repair.note
    );
    assert_eq!(opened.written_bytes(), last_start);
    assert_eq!(read_file(io.as_ref(), &segment).len() as u64, last_start);
}

#[test]
fn closed_segments_end_at_their_last_batch_and_unsynced_partitions_write_no_zeros() {
    let rt = runtime();
    let io: Arc<dyn Io> = Arc::new(MemoryIo::new());
    let log = PartitionLog::open(io.clone(), Path::new("/fsynced"), small_segments()).unwrap();
    let never = LogConfig {
        fsync: FsyncPolicy::Never,
        ..LogConfig::default()
    };
    let unsynced = PartitionLog::open(io.clone(), Path::new("/never"), never).unwrap();
    let value = "v".repeat(300);
    rt.block_on(async {
        for _ in 0..40 {
            log.append(batch(&[&value])).await.unwrap();
            unsynced.append(batch(&[&value])).await.unwrap();
        }
    });
    let mut segments: Vec<String> = io
        .list_dir(Path::new("/fsynced"))
        .unwrap()
        .into_iter()
        .filter(|name| name.ends_with(".log"))
        .collect();
    segments.sort();
    assert!(segments.len() > 2, "{segments:?}");
    for name in &segments[..segments.len() - 1] {
        let path = Path::new("/fsynced").join(name);
        let bytes = read_file(io.as_ref(), &path);
        let parsed = crate::scan::scan_batches(
            io.open(&path, false).unwrap().as_ref(),
            0,
            bytes.len() as u64,
            true,
            1 << 20,
            |_, _, _| std::ops::ControlFlow::Continue(()),
        )
        .unwrap();
        assert_eq!(parsed.end, crate::scan::ScanEnd::End, "{name}");
    }
    let never_file = read_file(io.as_ref(), &Path::new("/never").join(SEGMENT));
    assert_eq!(never_file.len() as u64, unsynced.status().size_bytes);
}

#[test]
fn large_group_writes_extend_the_file_without_zeros_ahead() {
    // Zeros ahead double the bytes reaching the disk; a write of 16 KiB or more carries
    // enough data per fsync that it extends the file itself instead.
    let rt = runtime();
    let io: Arc<dyn Io> = Arc::new(MemoryIo::new());
    let log = PartitionLog::open(io.clone(), Path::new("/large"), LogConfig::default()).unwrap();
    let segment = Path::new("/large").join(SEGMENT);
    let large = "v".repeat(crate::partition::append::PREALLOCATE_WRITES_BELOW);
    rt.block_on(log.append(batch(&[&large]))).unwrap();
    let written = log.status().size_bytes;
    assert_eq!(
        read_file(io.as_ref(), &segment).len() as u64,
        written,
        "no zeros after a large write"
    );
    // A small write after it gets zeros ahead again, and both read back after a reopen.
    rt.block_on(log.append(batch(&["small"]))).unwrap();
    let written = log.status().size_bytes;
    let on_disk = read_file(io.as_ref(), &segment);
    assert!(
        on_disk.len() as u64 > written,
        "zeros ahead of a small write"
    );
    assert!(on_disk[written as usize..].iter().all(|byte| *byte == 0));
    drop(log);
    let reopened =
        PartitionLog::open(io.clone(), Path::new("/large"), LogConfig::default()).unwrap();
    assert_eq!(reopened.high_watermark(), 2);
    assert_eq!(read_values(&reopened, 1), vec!["small"]);
}
