//! Administrative changes to existing streams that Kafka's admin APIs need: growing a stream's
//! partition count (CreatePartitions), changing its settings (IncrementalAlterConfigs,
//! AlterConfigs, HTTP PATCH) and deleting records below an offset (DeleteRecords).

use std::sync::{Arc, RwLockWriteGuard};

use omnibus_types::limits;

use crate::engine::{validate_settings, Engine, StreamMap};
use crate::error::{EngineError, Result};
use crate::model::{StreamConfig, StreamInfo, StreamSettings};
use crate::streams::Stream;

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
        let (mut streams, old) = self.stream_to_change(name)?;
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
        self.reopen_stream(&mut streams, old, config)
    }

    /// Sets a stream's settings (retention, segment size and age, fsync policy, largest
    /// record) and stores them durably. With `validate_only`, checks them and changes nothing.
    /// Like growing partitions, the stream's logs are closed (flushed) and reopened under the
    /// new settings: appends and fetches in flight at that moment fail and are retried by
    /// clients. Blocking: call it from a blocking context.
    pub fn alter_stream(
        &self,
        name: &str,
        settings: StreamSettings,
        validate_only: bool,
    ) -> Result<StreamInfo> {
        self.change_stream_settings(name, validate_only, |current| {
            *current = settings;
            Ok(())
        })
    }

    /// [`Engine::alter_stream`] as a read-modify-write: `change` edits the stream's current
    /// settings under the lock that orders every change to the stream, so two concurrent
    /// partial changes (a Kafka IncrementalAlterConfigs, an HTTP PATCH) both take effect.
    pub fn change_stream_settings(
        &self,
        name: &str,
        validate_only: bool,
        change: impl FnOnce(&mut StreamSettings) -> Result<()>,
    ) -> Result<StreamInfo> {
        let (mut streams, old) = self.stream_to_change(name)?;
        let mut settings = old.config.settings();
        change(&mut settings)?;
        let config = old.config.with_settings(settings);
        validate_settings(&config)?;
        if validate_only || config == old.config {
            let mut info = old.info();
            info.config = config;
            return Ok(info);
        }
        self.reopen_stream(&mut streams, old, config)
    }

    /// Write-locks the stream map (other lookups wait until the change is done) and returns
    /// the stream `name`, unless the engine is stopping or a queue lives in the stream.
    fn stream_to_change(
        &self,
        name: &str,
    ) -> Result<(RwLockWriteGuard<'_, StreamMap>, Arc<Stream>)> {
        self.check_running()?;
        self.check_not_a_queue_stream(name)?;
        let streams = self.write_streams();
        let old = streams
            .get(name)
            .cloned()
            .ok_or_else(|| EngineError::StreamNotFound(name.to_string()))?;
        Ok((streams, old))
    }

    /// Replaces an open stream by the same stream under `config`, storing the config.
    fn reopen_stream(
        &self,
        streams: &mut StreamMap,
        old: Arc<Stream>,
        config: StreamConfig,
    ) -> Result<StreamInfo> {
        let name = config.name.clone();
        // One writer per partition folder: the old logs stop and flush before the new
        // stream opens the same files.
        old.close()?;
        let reopened = Stream::open(self.io.clone(), &self.config.data_dir, config.clone())
            .and_then(|stream| {
                let bytes = serde_json::to_vec(&config).expect("stream config serializes");
                self.state.put(STREAMS_TABLE, &name, &bytes)?;
                Ok(stream)
            });
        match reopened {
            Ok(stream) => {
                let stream = Arc::new(stream);
                streams.insert(name, stream.clone());
                Ok(stream.info())
            }
            Err(error) => {
                // Put the old stream back as it was, on fresh logs.
                let restored =
                    Stream::open(self.io.clone(), &self.config.data_dir, old.config.clone())?;
                streams.insert(name, Arc::new(restored));
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn altered_settings_take_effect_on_the_open_stream_and_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = EngineConfig::new(dir.path());
        config.maintenance_interval_ms = 20;
        let engine = Engine::open(config.clone()).await.unwrap();
        engine
            .create_stream(StreamSpec {
                name: "logs".into(),
                segment_bytes: Some(1024),
                retention_ms: None,
                ..StreamSpec::default()
            })
            .unwrap();
        for _ in 0..40 {
            let record = PublishRecord {
                value: Some(Bytes::from(vec![b'x'; 100])),
                ..PublishRecord::default()
            };
            engine
                .publish(PublishTarget::Stream("logs".into()), vec![record])
                .await
                .unwrap();
        }
        let before = engine.stream_info("logs").unwrap();
        assert!(before.partition_info[0].segments > 2, "{before:?}");
        assert_eq!(before.partition_info[0].log_start_offset, 0);

        // Refused settings change nothing; validate_only reports without changing.
        let mut bad = before.config.settings();
        bad.message_bytes_max = 0;
        assert!(engine.alter_stream("logs", bad, false).is_err());
        assert!(engine
            .alter_stream("missing", before.config.settings(), false)
            .is_err());
        let mut wanted = before.config.settings();
        wanted.retention_bytes = Some(1);
        wanted.message_bytes_max = 2048;
        let checked = engine.alter_stream("logs", wanted.clone(), true).unwrap();
        assert_eq!(checked.config.settings(), wanted);
        assert_eq!(engine.stream_info("logs").unwrap().config, before.config);

        // Applied: the new retention removes the old segments, keeping the data above them.
        let altered = engine.alter_stream("logs", wanted.clone(), false).unwrap();
        assert_eq!(altered.config.settings(), wanted);
        assert_eq!(altered.partition_info[0].high_watermark, 40);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while engine.stream_info("logs").unwrap().partition_info[0].log_start_offset == 0 {
            assert!(std::time::Instant::now() < deadline, "retention never ran");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let too_big = PublishRecord {
            value: Some(Bytes::from(vec![b'x'; 4096])),
            ..PublishRecord::default()
        };
        assert!(
            engine
                .publish(PublishTarget::Stream("logs".into()), vec![too_big])
                .await
                .is_err(),
            "the new largest-record limit applies"
        );
        engine.shutdown().await.unwrap();
        drop(engine);

        let engine = Engine::open(config).await.unwrap();
        let info = engine.stream_info("logs").unwrap();
        assert_eq!(info.config.settings(), wanted);
        assert_eq!(info.partition_info[0].high_watermark, 40);
        // Back to the broker's defaults.
        let defaults = engine.stream_defaults().settings();
        let reset = engine
            .alter_stream("logs", defaults.clone(), false)
            .unwrap();
        assert_eq!(reset.config.settings(), defaults);
        assert_eq!(reset.config.created_ms, before.config.created_ms);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_long_poll_on_a_stream_being_altered_ends_instead_of_waiting_out_its_time() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(EngineConfig::new(dir.path())).await.unwrap();
        engine
            .create_stream(StreamSpec {
                name: "live".into(),
                ..StreamSpec::default()
            })
            .unwrap();
        let waiting = {
            let engine = engine.clone();
            tokio::spawn(async move {
                let started = std::time::Instant::now();
                let fetched = engine.fetch_raw("live", 0, 0, 1 << 20, 30_000).await;
                (fetched.map(|f| f.batches.len()), started.elapsed())
            })
        };
        // Alter until the poll ends: on a slow machine the poll may only start waiting after
        // the first change (then on the reopened log, which the next change closes).
        let mut round = 0;
        while !waiting.is_finished() && round < 20 {
            round += 1;
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            let mut settings = engine.stream_info("live").unwrap().config.settings();
            settings.segment_ms = 60_000 + round;
            let engine = engine.clone();
            tokio::task::spawn_blocking(move || engine.alter_stream("live", settings, false))
                .await
                .unwrap()
                .unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(400)).await;
        }
        let (fetched, waited) = waiting.await.unwrap();
        assert_eq!(fetched.unwrap(), 0, "nothing was there");
        assert!(
            waited < std::time::Duration::from_secs(10),
            "the long-poll waited {waited:?}"
        );
        // The next long-poll is on the reopened log and sees new records.
        let polling = {
            let engine = engine.clone();
            tokio::spawn(async move { engine.fetch_raw("live", 0, 0, 1 << 20, 30_000).await })
        };
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let record = PublishRecord {
            value: Some(Bytes::from_static(b"after")),
            ..PublishRecord::default()
        };
        engine
            .publish(PublishTarget::Stream("live".into()), vec![record])
            .await
            .unwrap();
        let fetched = tokio::time::timeout(std::time::Duration::from_secs(10), polling)
            .await
            .expect("woken by the record")
            .unwrap()
            .unwrap();
        assert!(!fetched.batches.is_empty());
    }
}
