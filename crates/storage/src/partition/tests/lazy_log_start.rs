//! Moving the log start without its checkpoint's fsyncs (`log_start.rs`): at once for
//! readers, durable with the next maintenance pass or the close, and a crash before that
//! brings back only records below the moved start.

use super::*;

fn filled(memory: &MemoryIo, dir: &Path) -> Arc<PartitionLog> {
    let log = PartitionLog::open(Arc::new(memory.clone()), dir, small_segments()).unwrap();
    runtime().block_on(async {
        for round in 0..100 {
            let values = [format!("r{round}-a"), format!("r{round}-b")];
            log.append(batch(&[&values[0], &values[1]])).await.unwrap();
        }
    });
    log
}

#[test]
fn a_lazy_move_refuses_reads_below_at_once_and_a_crash_before_maintenance_keeps_everything_above() {
    let memory = MemoryIo::new();
    let dir = Path::new("/p");
    let log = filled(&memory, dir);
    assert_eq!(log.delete_records_before(21).unwrap(), 21);
    let segments_before = log.status().segments;
    assert_eq!(log.delete_records_before_lazily(151).unwrap(), 151);
    assert_eq!(log.log_start_offset(), 151);
    assert!(matches!(
        log.read(150, 1024),
        Err(StorageError::OffsetOutOfRange { log_start: 151, .. })
    ));
    assert!(
        log.status().segments < segments_before,
        "whole segments below went"
    );
    assert_eq!(
        log.delete_records_before_lazily(10).unwrap(),
        151,
        "never moves back"
    );
    assert!(matches!(
        log.delete_records_before_lazily(201),
        Err(StorageError::OffsetOutOfRange { .. })
    ));

    // A crash before any maintenance: the start is where the durable move or the first
    // segment left it, at or below 151, and every record from there on is there.
    memory.crash();
    let reopened = PartitionLog::open(Arc::new(memory.clone()), dir, small_segments()).unwrap();
    let start = reopened.log_start_offset();
    assert!((21..=151).contains(&start), "{start}");
    assert_eq!(reopened.high_watermark(), 200);
    assert_eq!(read_values(&reopened, start).len() as u64, 200 - start);
    assert_eq!(read_values(&reopened, 151)[0], "r75-b");
}

#[test]
fn maintenance_or_the_close_makes_a_lazy_move_durable() {
    let memory = MemoryIo::new();
    let dir = Path::new("/p");
    let log = filled(&memory, dir);
    log.delete_records_before_lazily(151).unwrap();
    log.maintain().unwrap();
    memory.crash();
    let reopened = PartitionLog::open(Arc::new(memory.clone()), dir, small_segments()).unwrap();
    assert_eq!(reopened.log_start_offset(), 151);
    assert_eq!(read_values(&reopened, 151).len(), 49);

    reopened.delete_records_before_lazily(181).unwrap();
    reopened.close().unwrap();
    memory.crash();
    let again = PartitionLog::open(Arc::new(memory.clone()), dir, small_segments()).unwrap();
    assert_eq!(again.log_start_offset(), 181);
    assert_eq!(read_values(&again, 181)[0], "r90-b");
}
