//! Administrative changes to existing streams that Kafka's admin APIs need: growing a stream's
//! partition count (CreatePartitions), changing its settings (IncrementalAlterConfigs,
//! AlterConfigs, HTTP PATCH) and deleting records below an offset (DeleteRecords). Each runs
//! its disk work off the async runtime and holds only its stream's change lock across it.

use std::sync::Arc;

use omnibus_types::limits;

use crate::engine::{validate_settings, Engine};
use crate::error::{EngineError, Result};
use crate::model::{StreamConfig, StreamInfo, StreamSettings};
use crate::streams::registry::{off_the_runtime, STREAMS_TABLE};
use crate::streams::Stream;

impl Engine {
    /// Deletes the records of one partition below `offset` (or below the high watermark when
    /// `offset` is `None`): reads below it are refused from now on, and whole segments below
    /// it are removed. Returns the new log start. The checkpoint it writes and fsyncs is
    /// written off the async runtime.
    pub async fn delete_records(
        &self,
        stream: &str,
        partition: u32,
        offset: Option<u64>,
    ) -> Result<u64> {
        self.check_running()?;
        let log = self.stream(stream)?.partition(partition)?.clone();
        let offset = offset.unwrap_or_else(|| log.high_watermark());
        off_the_runtime(move || Ok(log.delete_records_before(offset)?)).await
    }

    /// [`Engine::delete_records`] below `offset` without waiting for the new log start to be
    /// durable: readers are refused below it at once, and it is written by the partition's
    /// next maintenance pass (about a second) or its close. A crash before that can bring
    /// back records below `offset`, never lose one above it: for trims allowed to keep more
    /// than they asked for (Redis's `MAXLEN ~`).
    pub async fn delete_records_lazily(
        &self,
        stream: &str,
        partition: u32,
        offset: u64,
    ) -> Result<u64> {
        self.check_running()?;
        let log = self.stream(stream)?.partition(partition)?.clone();
        off_the_runtime(move || Ok(log.delete_records_before_lazily(offset)?)).await
    }

    /// Grows stream `name` to `partitions` partitions. Existing partitions keep their data;
    /// records with a key may hash to a different partition afterwards (as in Kafka).
    ///
    /// The stream's logs are flushed and reopened off the async runtime; publishes and
    /// fetches on other streams go on meanwhile. Appends already under way on this stream's
    /// old partitions fail with `unavailable` and can be retried.
    pub async fn add_partitions(
        self: &Arc<Self>,
        name: &str,
        partitions: u32,
    ) -> Result<StreamInfo> {
        let engine = self.clone();
        let name = name.to_string();
        off_the_runtime(move || {
            engine.change_stream(&name, false, |config| {
                if partitions <= config.partitions {
                    return Err(EngineError::InvalidConfig(format!(
                        "stream {name:?} has {} partitions; the count can only grow",
                        config.partitions
                    )));
                }
                if partitions > limits::PARTITIONS_MAX {
                    return Err(EngineError::InvalidConfig(format!(
                        "partitions must be between 1 and {}",
                        limits::PARTITIONS_MAX
                    )));
                }
                config.partitions = partitions;
                Ok(())
            })
        })
        .await
    }

    /// Replaces the subject patterns stream `name` captures (a JetStream STREAM.UPDATE that
    /// adds or drops subjects). The new patterns are checked as at create, and held in the
    /// stream table while the stream is reopened under them, so a stream created meanwhile
    /// cannot take an overlapping one. Records already stored keep their subjects.
    pub async fn set_stream_subjects(
        self: &Arc<Self>,
        name: &str,
        subjects: Vec<String>,
    ) -> Result<StreamInfo> {
        if subjects.is_empty() || subjects.len() > limits::STREAM_SUBJECTS_MAX {
            return Err(EngineError::InvalidConfig(format!(
                "a stream captures between 1 and {} subject patterns",
                limits::STREAM_SUBJECTS_MAX
            )));
        }
        for pattern in &subjects {
            omnibus_types::validate_pattern(pattern)
                .map_err(|e| EngineError::InvalidSubject(e.to_string()))?;
        }
        let engine = self.clone();
        let name = name.to_string();
        off_the_runtime(move || {
            // A stream being created holds its name in the same map: none can be, since this
            // one exists, and the change lock keeps two changes of this stream apart.
            let lock = engine.stream_changes.of(&name);
            let _held = lock.hold();
            engine.stream(&name)?;
            engine.write_streams().reserve_subjects(&name, &subjects)?;
            let changed = engine.change_stream_locked(&name, |config| {
                config.subjects = subjects;
                Ok(())
            });
            engine.write_streams().release_subjects(&name);
            changed
        })
        .await
    }

    /// Sets a stream's settings (retention, segment size and age, fsync policy, largest
    /// record) and stores them durably. With `validate_only`, checks them and changes nothing.
    /// Like growing partitions, the stream's logs are closed (flushed) and reopened under the
    /// new settings, off the async runtime: appends and fetches on this stream in flight at
    /// that moment fail and are retried by clients; other streams are not held up.
    pub async fn alter_stream(
        self: &Arc<Self>,
        name: &str,
        settings: StreamSettings,
        validate_only: bool,
    ) -> Result<StreamInfo> {
        self.change_stream_settings(name, validate_only, move |current| {
            *current = settings;
            Ok(())
        })
        .await
    }

    /// [`Engine::alter_stream`] as a read-modify-write: `change` edits the stream's current
    /// settings under the lock that orders every change to the stream, so two concurrent
    /// partial changes (a Kafka IncrementalAlterConfigs, an HTTP PATCH) both take effect.
    pub async fn change_stream_settings(
        self: &Arc<Self>,
        name: &str,
        validate_only: bool,
        change: impl FnOnce(&mut StreamSettings) -> Result<()> + Send + 'static,
    ) -> Result<StreamInfo> {
        let engine = self.clone();
        let name = name.to_string();
        off_the_runtime(move || {
            engine.change_stream(&name, validate_only, |config| {
                let mut settings = config.settings();
                change(&mut settings)?;
                *config = config.with_settings(settings);
                validate_settings(config)
            })
        })
        .await
    }

    /// Applies `change` to stream `name`'s configuration and reopens the stream under it,
    /// holding only the stream's own change lock across the I/O. Blocking.
    fn change_stream(
        &self,
        name: &str,
        validate_only: bool,
        change: impl FnOnce(&mut StreamConfig) -> Result<()>,
    ) -> Result<StreamInfo> {
        let lock = self.stream_changes.of(name);
        let _held = lock.hold();
        if validate_only {
            self.check_running()?;
            self.check_not_a_queue_stream(name)?;
            let old = self.stream(name)?;
            let mut info = old.info();
            change(&mut info.config)?;
            return Ok(info);
        }
        self.change_stream_locked(name, change)
    }

    /// [`Engine::change_stream`] for a caller that holds the stream's change lock.
    fn change_stream_locked(
        &self,
        name: &str,
        change: impl FnOnce(&mut StreamConfig) -> Result<()>,
    ) -> Result<StreamInfo> {
        self.check_running()?;
        self.check_not_a_queue_stream(name)?;
        let old = self.stream(name)?;
        let mut config = old.config.clone();
        change(&mut config)?;
        if config == old.config {
            return Ok(old.info());
        }
        self.reopen_stream(old, config)
    }

    /// Replaces an open stream by the same stream under `config`, storing the config. The
    /// table lock is taken only to swap the stream in.
    fn reopen_stream(&self, old: Arc<Stream>, config: StreamConfig) -> Result<StreamInfo> {
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
                self.write_streams().insert(stream.clone());
                Ok(stream.info())
            }
            Err(error) => {
                // Put the old stream back as it was, on fresh logs.
                let restored =
                    Stream::open(self.io.clone(), &self.config.data_dir, old.config.clone())?;
                self.write_streams().insert(Arc::new(restored));
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
            .await
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
        assert!(
            engine.add_partitions("orders", 1).await.is_err(),
            "must grow"
        );
        assert!(engine.add_partitions("missing", 2).await.is_err());
        let info = engine.add_partitions("orders", 3).await.unwrap();
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
            .await
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
        assert!(engine.alter_stream("logs", bad, false).await.is_err());
        assert!(engine
            .alter_stream("missing", before.config.settings(), false)
            .await
            .is_err());
        let mut wanted = before.config.settings();
        wanted.retention_bytes = Some(1);
        wanted.message_bytes_max = 2048;
        let checked = engine
            .alter_stream("logs", wanted.clone(), true)
            .await
            .unwrap();
        assert_eq!(checked.config.settings(), wanted);
        assert_eq!(engine.stream_info("logs").unwrap().config, before.config);

        // Applied: the new retention removes the old segments, keeping the data above them.
        let altered = engine
            .alter_stream("logs", wanted.clone(), false)
            .await
            .unwrap();
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
            .await
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
            .await
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
            engine.alter_stream("live", settings, false).await.unwrap();
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
