//! What a stream shows after storage recovery had to repair something: a partition folder
//! that vanished, and a segment damaged in the middle (docs/storage.md, "Recovery").

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use omnibus_engine::*;
use omnibus_storage::io::MemoryIo;
use omnibus_types::ErrorCode;

fn record(value: &str, partition: u32) -> PublishRecord {
    PublishRecord {
        value: Some(Bytes::copy_from_slice(value.as_bytes())),
        partition: Some(partition),
        ..Default::default()
    }
}

fn spec(name: &str, partitions: u32) -> StreamSpec {
    StreamSpec {
        name: name.into(),
        partitions: Some(partitions),
        ..Default::default()
    }
}

fn partition_dir(data: &Path, stream: &str, partition: u32) -> PathBuf {
    data.join("streams")
        .join(stream)
        .join(partition.to_string())
}

async fn publish(engine: &Engine, value: &str, partition: u32) -> Result<Vec<RecordPosition>> {
    engine
        .publish(
            PublishTarget::Stream("orders".into()),
            vec![record(value, partition)],
        )
        .await
}

#[tokio::test]
async fn a_missing_partition_folder_is_reported_and_refuses_writes_until_cleared() {
    let dir = tempfile::tempdir().unwrap();
    {
        let engine = Engine::open(EngineConfig::new(dir.path())).await.unwrap();
        engine.create_stream(spec("orders", 2)).await.unwrap();
        for partition in [0, 1] {
            publish(&engine, "acknowledged", partition).await.unwrap();
        }
        engine.shutdown().await.unwrap();
    }
    let lost = partition_dir(dir.path(), "orders", 1);
    std::fs::remove_dir_all(&lost).unwrap();
    for _restart in 0..2 {
        let engine = Engine::open(EngineConfig::new(dir.path())).await.unwrap();
        let info = engine.stream_info("orders").unwrap();
        let error = info.partition_info[1]
            .write_error
            .clone()
            .unwrap_or_default();
        assert!(error.contains("was missing at start"), "{error:?}");
        assert_eq!(info.partition_info[0].write_error, None);
        let refused = publish(&engine, "would reuse offset 0", 1)
            .await
            .unwrap_err();
        assert_eq!(refused.code(), ErrorCode::StorageFailed);
        publish(&engine, "fine", 0).await.unwrap();
        engine.shutdown().await.unwrap();
    }
    // The operator accepts the loss by removing the marker.
    std::fs::remove_file(lost.join("partition-lost")).unwrap();
    let engine = Engine::open(EngineConfig::new(dir.path())).await.unwrap();
    assert_eq!(
        engine.stream_info("orders").unwrap().partition_info[1].write_error,
        None
    );
    publish(&engine, "after", 1).await.unwrap();
}

#[tokio::test]
async fn a_segment_damaged_in_the_middle_is_quarantined_and_shown_in_stream_info() {
    let dir = tempfile::tempdir().unwrap();
    {
        let engine = Engine::open(EngineConfig::new(dir.path())).await.unwrap();
        engine.create_stream(spec("orders", 1)).await.unwrap();
        for index in 0..10 {
            publish(&engine, &format!("record-{index}"), 0)
                .await
                .unwrap();
        }
        engine.shutdown().await.unwrap();
    }
    let segment = partition_dir(dir.path(), "orders", 0).join("00000000000000000000.log");
    let mut bytes = std::fs::read(&segment).unwrap();
    // Walk five batches (12 bytes of offset and length, then the length) and damage the
    // records of the sixth.
    let mut position = 0;
    for _ in 0..5 {
        let length = i32::from_be_bytes(bytes[position + 8..position + 12].try_into().unwrap());
        position += 12 + length as usize;
    }
    bytes[position + 65] ^= 0xff;
    std::fs::write(&segment, &bytes).unwrap();
    for restart in 0..2 {
        let engine = Engine::open(EngineConfig::new(dir.path())).await.unwrap();
        let info = engine.stream_info("orders").unwrap();
        let partition = &info.partition_info[0];
        assert_eq!(partition.high_watermark, 5);
        assert_eq!(partition.quarantined.len(), 1, "{partition:?}");
        assert_eq!(
            partition.quarantined[0].bytes,
            (bytes.len() - position) as u64
        );
        let json = serde_json::to_value(&info).unwrap();
        let shown = &json["partition_info"][0]["quarantined"][0];
        assert!(shown["file"]
            .as_str()
            .unwrap()
            .starts_with("00000000000000000000.log.quarantine-"));
        let reason = shown["reason"].as_str().unwrap();
        let expected = if restart == 0 {
            "4 valid batches (offsets 6..=9)".to_string()
        } else {
            format!("damaged from byte {position}")
        };
        assert!(reason.contains(&expected), "{reason}");
        assert!(shown["found_at_ms"].as_i64().unwrap() > 0);
        engine.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn a_new_streams_folders_survive_a_power_loss() {
    // The logs on a backend that forgets every directory entry not synced; the state store
    // (a real file) keeps the metadata, so a lost folder would be found missing.
    let dir = tempfile::tempdir().unwrap();
    let memory = MemoryIo::new();
    {
        let engine = Engine::open_with_io(EngineConfig::new(dir.path()), Arc::new(memory.clone()))
            .await
            .unwrap();
        engine.create_stream(spec("orders", 2)).await.unwrap();
        for partition in [0, 1] {
            publish(&engine, "acknowledged", partition).await.unwrap();
        }
        engine.shutdown().await.unwrap();
    }
    memory.crash();
    let engine = Engine::open_with_io(EngineConfig::new(dir.path()), Arc::new(memory))
        .await
        .unwrap();
    let info = engine.stream_info("orders").unwrap();
    for partition in &info.partition_info {
        assert_eq!(partition.write_error, None);
        assert_eq!(partition.high_watermark, 1);
    }
}
