//! Administrative changes to existing streams that Kafka's admin APIs need: growing a stream's
//! partition count (CreatePartitions) and deleting records below an offset (DeleteRecords).

use std::sync::Arc;

use omnibus_types::limits;

use crate::engine::Engine;
use crate::error::{EngineError, Result};
use crate::model::StreamInfo;
use crate::stream::Stream;

/// The state-store table of stream configurations (the same one `engine.rs` writes).
const STREAMS_TABLE: &str = "streams";

impl Engine {
    /// Deletes the records of one partition below `offset` (or below the high watermark when
    /// `offset` is `None`): reads below it are refused from now on, and whole segments below
    /// it are removed. Returns the new log start. Blocking (it writes and fsyncs a checkpoint):
    /// call it from a blocking context.
    pub fn delete_records(&self, stream: &str, partition: u32, offset: Option<u64>) -> Result<u64> {
        self.check_running()?;
        let log = self.stream(stream)?.partition(partition)?.clone();
        let offset = offset.unwrap_or_else(|| log.high_watermark());
        Ok(log.delete_records_before(offset)?)
    }

    /// Grows stream `name` to `partitions` partitions. Existing partitions keep their data;
    /// records with a key may hash to a different partition afterwards (as in Kafka).
    ///
    /// Blocking (it flushes and reopens the stream's logs): call it from a blocking context.
    /// While it runs, other calls that look up streams wait; appends already under way on
    /// the old partitions fail with `unavailable` and can be retried.
    pub fn add_partitions(&self, name: &str, partitions: u32) -> Result<StreamInfo> {
        self.check_running()?;
        let mut streams = self.streams.write().unwrap_or_else(|p| p.into_inner());
        let old = streams
            .get(name)
            .cloned()
            .ok_or_else(|| EngineError::StreamNotFound(name.to_string()))?;
        if partitions <= old.config.partitions {
            return Err(EngineError::InvalidConfig(format!(
                "stream {name:?} has {} partitions; the count can only grow",
                old.config.partitions
            )));
        }
        if partitions > limits::PARTITIONS_MAX {
            return Err(EngineError::InvalidConfig(format!(
                "partitions must be between 1 and {}",
                limits::PARTITIONS_MAX
            )));
        }
        let mut config = old.config.clone();
        config.partitions = partitions;
        // One writer per partition folder: the old logs stop and flush before the new
        // stream opens the same files.
        old.close()?;
        let grown = Stream::open(self.io.clone(), &self.config.data_dir, config.clone()).and_then(
            |stream| {
                let bytes = serde_json::to_vec(&config).expect("stream config serializes");
                self.state.put(STREAMS_TABLE, name, &bytes)?;
                Ok(stream)
            },
        );
        match grown {
            Ok(stream) => {
                let stream = Arc::new(stream);
                streams.insert(name.to_string(), stream.clone());
                Ok(stream.info())
            }
            Err(error) => {
                // Put the old stream back as it was, on fresh logs.
                let restored =
                    Stream::open(self.io.clone(), &self.config.data_dir, old.config.clone())?;
                streams.insert(name.to_string(), Arc::new(restored));
                Err(error)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use crate::{EngineConfig, FetchRequest, PublishRecord, PublishTarget, StreamSpec};

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn partitions_grow_keeping_data_and_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(EngineConfig::new(dir.path())).await.unwrap();
        engine
            .create_stream(StreamSpec {
                name: "orders".into(),
                partitions: Some(1),
                ..StreamSpec::default()
            })
            .unwrap();
        let one = |partition| PublishRecord {
            value: Some(Bytes::from_static(b"v")),
            partition: Some(partition),
            ..PublishRecord::default()
        };
        engine
            .publish(PublishTarget::Stream("orders".into()), vec![one(0)])
            .await
            .unwrap();
        assert!(engine.add_partitions("orders", 1).is_err(), "must grow");
        assert!(engine.add_partitions("missing", 2).is_err());
        let info = engine.add_partitions("orders", 3).unwrap();
        assert_eq!(info.config.partitions, 3);
        assert_eq!(info.partition_info[0].high_watermark, 1);
        engine
            .publish(PublishTarget::Stream("orders".into()), vec![one(2), one(0)])
            .await
            .unwrap();
        engine.shutdown().await.unwrap();
        drop(engine);

        let engine = Engine::open(EngineConfig::new(dir.path())).await.unwrap();
        let info = engine.stream_info("orders").unwrap();
        assert_eq!(info.config.partitions, 3);
        assert_eq!(info.partition_info[0].high_watermark, 2);
        assert_eq!(info.partition_info[2].high_watermark, 1);
        let fetched = engine
            .fetch(FetchRequest {
                stream: "orders".into(),
                partition: 0,
                offset: 0,
                max_records: 10,
                max_bytes: 1 << 20,
                wait_ms: 0,
            })
            .await
            .unwrap();
        assert_eq!(fetched.records.len(), 2);
    }
}
