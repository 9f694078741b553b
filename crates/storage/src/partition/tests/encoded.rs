//! Batches the engine encoded (`EncodedBatches`) are appended without being validated again.

use super::*;
use crate::batch::EncodedBatches;

#[test]
fn encoded_batches_get_dense_offsets_and_survive_a_crash() {
    let rt = runtime();
    let memory = MemoryIo::new();
    let dir = Path::new("/p");
    let log = PartitionLog::open(Arc::new(memory.clone()), dir, LogConfig::default()).unwrap();
    rt.block_on(async {
        log.append(batch(&["before"])).await.unwrap();
        let mut batches = EncodedBatches::default();
        batches.push(&records(&["a", "b", "c"], now_ms())).unwrap();
        batches.push(&records(&["d"], now_ms())).unwrap();
        let info = log.append_encoded(batches).await.unwrap();
        assert_eq!((info.first_offset, info.last_offset), (1, 4));
        let single = EncodedBatches::of(&records(&["e"], now_ms())).unwrap();
        let pending = log.enqueue_encoded(single).await.unwrap();
        assert_eq!(pending.durable().await.unwrap().first_offset, 5);
    });
    memory.crash();
    let reopened = PartitionLog::open(Arc::new(memory), dir, LogConfig::default()).unwrap();
    assert_eq!(
        read_values(&reopened, 0),
        ["before", "a", "b", "c", "d", "e"]
    );
}

#[test]
fn encoded_batches_are_held_to_the_batch_size_bound() {
    let rt = runtime();
    let config = LogConfig {
        batch_bytes_max: 1024,
        ..LogConfig::default()
    };
    let log = PartitionLog::open(Arc::new(MemoryIo::new()), Path::new("/p"), config).unwrap();
    rt.block_on(async {
        let large = "x".repeat(2000);
        let mut batches = EncodedBatches::default();
        batches.push(&records(&["small"], now_ms())).unwrap();
        batches.push(&records(&[large.as_str()], now_ms())).unwrap();
        let error = log.append_encoded(batches).await.unwrap_err();
        assert!(
            matches!(error, StorageError::BatchTooLarge { max: 1024, .. }),
            "{error}"
        );
        let error = log
            .append_encoded(EncodedBatches::default())
            .await
            .unwrap_err();
        assert!(matches!(error, StorageError::InvalidBatch(_)), "{error}");
        assert_eq!(
            log.high_watermark(),
            0,
            "nothing of a refused append is written"
        );
    });
}
