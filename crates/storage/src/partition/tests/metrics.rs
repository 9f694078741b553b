//! The partition's metrics: traffic counters and the record age read from the time index.

use super::*;

fn batch_at(values: &[&str], timestamp_ms: i64) -> BytesMut {
    encode_batch(&records(values, timestamp_ms)).unwrap()
}

#[test]
fn traffic_counts_acknowledged_appends_reads_and_retention() {
    let rt = runtime();
    let io: Arc<dyn Io> = Arc::new(MemoryIo::new());
    let config = LogConfig {
        retention_bytes: Some(1),
        ..small_segments()
    };
    let log = PartitionLog::open(io, Path::new("/data/p0"), config).unwrap();
    let mut appended_bytes = 0;
    let padding = "x".repeat(200);
    rt.block_on(async {
        // About 19 KiB in all: several 4 KiB segments, so retention has closed ones to delete.
        for round in 0..40 {
            let batch = batch(&[&format!("a-{round}{padding}"), &format!("b-{round}")]);
            appended_bytes += batch.len() as u64;
            log.append(batch).await.unwrap();
        }
    });
    let traffic = log.traffic();
    assert_eq!(traffic.records_in, 80);
    assert_eq!(traffic.bytes_in, appended_bytes);
    assert_eq!(traffic.records_out, 0);
    let read = log.read(10, 1 << 20).unwrap();
    let traffic = log.traffic();
    assert_eq!(traffic.records_out, read.next_offset - 10);
    assert_eq!(traffic.bytes_out, read.bytes.len() as u64);
    let outcome = log.enforce_retention().unwrap();
    assert!(outcome.segments_deleted > 0, "small segments rolled");
    let traffic = log.traffic();
    assert_eq!(
        traffic.retention_segments_deleted,
        outcome.segments_deleted as u64
    );
    assert_eq!(traffic.retention_bytes_deleted, outcome.bytes_deleted);
    assert_eq!(log.size_bytes(), log.status().size_bytes);
}

#[test]
fn timestamp_at_most_after_bounds_a_record_age_from_the_time_index() {
    let rt = runtime();
    let io: Arc<dyn Io> = Arc::new(MemoryIo::new());
    let log = PartitionLog::open(io, Path::new("/data/p0"), small_segments()).unwrap();
    assert_eq!(log.timestamp_at_most_after(0), None, "empty log");
    let padding = "x".repeat(300);
    rt.block_on(async {
        // One batch per second of (made-up) time, each bigger than the index interval, so
        // every batch gets its own index entry.
        for second in 0..30i64 {
            log.append(batch_at(&[&padding], 1_000_000 + second * 1_000))
                .await
                .unwrap();
        }
    });
    for offset in [0u64, 5, 17, 29] {
        let timestamp = log.timestamp_at_most_after(offset).unwrap();
        let actual = 1_000_000 + offset as i64 * 1_000;
        assert!(
            timestamp >= actual,
            "offset {offset}: {timestamp} < {actual}"
        );
        assert!(
            timestamp <= actual + 1_000,
            "offset {offset}: {timestamp} is more than one batch past {actual}"
        );
    }
    assert_eq!(
        log.timestamp_at_most_after(30),
        None,
        "at the high watermark"
    );
}
