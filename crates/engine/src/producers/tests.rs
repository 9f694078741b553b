use bytes::{Bytes, BytesMut};
use omnibus_storage::batch::encode_batch;
use omnibus_types::Record;

use super::*;
use crate::{EngineConfig, StreamSpec};

/// CRC-32C (Castagnoli), bit by bit: only tests need it here, the log has the fast one.
fn crc32c(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for byte in bytes {
        crc ^= *byte as u32;
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A batch of `count` records from producer `id` with `epoch`, starting at `sequence`.
fn batch(id: i64, epoch: i16, sequence: i32, count: usize) -> BytesMut {
    let records: Vec<Record> = (0..count)
        .map(|i| Record {
            offset: 0,
            timestamp_ms: 1_000,
            subject: String::new(),
            key: None,
            value: Some(Bytes::from(format!("value {i}"))),
            headers: Vec::new(),
        })
        .collect();
    let mut bytes = encode_batch(&records).unwrap();
    bytes[43..51].copy_from_slice(&id.to_be_bytes());
    bytes[51..53].copy_from_slice(&epoch.to_be_bytes());
    bytes[53..57].copy_from_slice(&sequence.to_be_bytes());
    let crc = crc32c(&bytes[21..]);
    bytes[17..21].copy_from_slice(&crc.to_be_bytes());
    bytes
}

async fn engine() -> (tempfile::TempDir, Arc<Engine>) {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(EngineConfig::new(dir.path())).await.unwrap();
    engine
        .create_stream(StreamSpec {
            name: "orders".into(),
            partitions: Some(2),
            ..StreamSpec::default()
        })
        .await
        .unwrap();
    (dir, engine)
}

fn high_watermark(engine: &Engine, partition: u32) -> u64 {
    engine.stream_info("orders").unwrap().partition_info[partition as usize].high_watermark
}

#[tokio::test]
async fn producer_ids_are_never_reused_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let registry = ProducerRegistry::default();
    let first = {
        let engine = Engine::open(EngineConfig::new(dir.path())).await.unwrap();
        let a = registry.allocate_producer_id(&engine).await.unwrap();
        let b = registry.allocate_producer_id(&engine).await.unwrap();
        assert_eq!(b, a + 1);
        engine.shutdown().await.unwrap();
        b
    };
    let engine = Engine::open(EngineConfig::new(dir.path())).await.unwrap();
    assert_eq!(
        registry.allocate_producer_id(&engine).await.unwrap(),
        first + 1
    );
}

#[tokio::test]
async fn a_retried_batch_returns_its_original_offsets_without_a_second_write() {
    let (_dir, engine) = engine().await;
    let registry = ProducerRegistry::default();
    let first = registry
        .append(&engine, "orders", 0, batch(5, 0, 0, 3))
        .await
        .unwrap();
    assert!(matches!(first, ProducedBatch::Appended(_)));
    let second = registry
        .append(&engine, "orders", 0, batch(5, 0, 3, 2))
        .await
        .unwrap();
    assert_eq!(second.offsets().first_offset, 3);
    let retry = registry
        .append(&engine, "orders", 0, batch(5, 0, 0, 3))
        .await
        .unwrap();
    assert_eq!(retry, ProducedBatch::Duplicate(first.offsets()));
    assert_eq!(high_watermark(&engine, 0), 5, "the retry wrote nothing");
}

#[tokio::test]
async fn a_sequence_gap_is_refused() {
    let (_dir, engine) = engine().await;
    let registry = ProducerRegistry::default();
    registry
        .append(&engine, "orders", 0, batch(5, 0, 0, 3))
        .await
        .unwrap();
    let gap = registry
        .append(&engine, "orders", 0, batch(5, 0, 7, 1))
        .await
        .unwrap_err();
    assert!(matches!(
        gap,
        EngineError::OutOfOrderSequence {
            expected: 3,
            received: 7
        }
    ));
    assert_eq!(high_watermark(&engine, 0), 3);
    // Sequences are per partition: the other partition starts fresh.
    registry
        .append(&engine, "orders", 1, batch(5, 0, 0, 1))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_stale_epoch_is_fenced_and_a_new_epoch_restarts_at_zero() {
    let (_dir, engine) = engine().await;
    let registry = ProducerRegistry::default();
    registry
        .append(&engine, "orders", 0, batch(5, 1, 0, 2))
        .await
        .unwrap();
    let stale = registry
        .append(&engine, "orders", 0, batch(5, 0, 2, 1))
        .await
        .unwrap_err();
    assert!(matches!(
        stale,
        EngineError::ProducerFenced {
            current: 1,
            received: 0
        }
    ));
    let bad_restart = registry
        .append(&engine, "orders", 0, batch(5, 2, 9, 1))
        .await
        .unwrap_err();
    assert!(matches!(
        bad_restart,
        EngineError::OutOfOrderSequence { expected: 0, .. }
    ));
    registry
        .append(&engine, "orders", 0, batch(5, 2, 0, 1))
        .await
        .unwrap();
    assert_eq!(high_watermark(&engine, 0), 3);
}

#[tokio::test]
async fn non_idempotent_batches_skip_the_checks() {
    let (_dir, engine) = engine().await;
    let registry = ProducerRegistry::default();
    for _ in 0..2 {
        let produced = registry
            .append(&engine, "orders", 1, batch(-1, -1, -1, 2))
            .await
            .unwrap();
        assert!(matches!(produced, ProducedBatch::Appended(_)));
    }
    assert_eq!(high_watermark(&engine, 1), 4);
}

#[tokio::test]
async fn a_retry_after_a_restart_gets_its_original_offsets_and_sequences_still_count() {
    let (dir, engine) = engine().await;
    let registry = ProducerRegistry::default();
    let mut written = Vec::new();
    for index in 0..3 {
        let produced = registry
            .append(&engine, "orders", 1, batch(8, 2, index * 4, 4))
            .await
            .unwrap();
        written.push(produced.offsets());
    }
    engine.shutdown().await.unwrap();
    drop(engine);

    // A new broker process: a fresh registry, state rebuilt from the log.
    let engine = Engine::open(EngineConfig::new(dir.path())).await.unwrap();
    let registry = ProducerRegistry::default();
    let retry = registry
        .append(&engine, "orders", 1, batch(8, 2, 8, 4))
        .await
        .unwrap();
    assert_eq!(
        retry,
        ProducedBatch::Duplicate(written[2]),
        "the batch whose answer the crash lost is not written again"
    );
    let gap = registry
        .append(&engine, "orders", 1, batch(8, 2, 20, 1))
        .await
        .unwrap_err();
    assert!(matches!(
        gap,
        EngineError::OutOfOrderSequence {
            expected: 12,
            received: 20
        }
    ));
    let old_epoch = registry
        .append(&engine, "orders", 1, batch(8, 1, 12, 1))
        .await
        .unwrap_err();
    assert!(matches!(old_epoch, EngineError::ProducerFenced { .. }));
    let next = registry
        .append(&engine, "orders", 1, batch(8, 2, 12, 1))
        .await
        .unwrap();
    // (Its log start may have moved: these test records are stamped in 1970, so retention
    // may drop the segment the restart closed.)
    assert!(matches!(next, ProducedBatch::Appended(_)));
    assert_eq!(next.offsets().first_offset, 12);
    assert_eq!(high_watermark(&engine, 1), 13);
}
