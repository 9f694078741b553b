//! The engine object: stream registry, lifecycle and background maintenance. Publishing,
//! fetching and offsets live in `publish.rs`, `fetch.rs` and `offsets.rs`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use omnibus_storage::io::{FileIo, Io};
use omnibus_storage::{StateStore, StateWrite};
use omnibus_types::{
    limits, patterns_overlap, validate_pattern, validate_stream_name, validate_subject,
};

use crate::config::{EngineConfig, StreamDefaults};
use crate::error::{EngineError, Result};
use crate::groups;
use crate::model::*;
use crate::stream::{log_config, stream_dir, Stream};

const STREAMS_TABLE: &str = "streams";

/// The open streams by name.
pub(crate) type StreamMap = BTreeMap<String, Arc<Stream>>;

/// The broker's core. Cheap to share: front doors hold an `Arc<Engine>`.
pub struct Engine {
    pub(crate) config: EngineConfig,
    pub(crate) io: Arc<dyn Io>,
    pub(crate) state: Arc<StateStore>,
    /// Released by the state store on a full disk, restored by maintenance (`health.rs`).
    pub(crate) disk_reserve: Arc<omnibus_storage::DiskReserve>,
    pub(crate) queues: RwLock<BTreeMap<String, Arc<crate::queue::Queue>>>,
    pub(crate) jobs: crate::jobs::JobsState,
    pub(crate) streams: RwLock<StreamMap>,
    pub(crate) shutting_down: Arc<AtomicBool>,
    /// Held by a maintenance pass while it runs (and holds the engine); `shutdown` takes it
    /// so that no pass outlives it — a test that reopens the folder right after a shutdown
    /// would otherwise find the state store still open.
    maintenance_running: Arc<tokio::sync::Mutex<()>>,
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Engine {
    /// Opens (or creates) the data directory, recovers every stream, and starts the background
    /// maintenance task (segment roll by age, retention, interval fsync). Needs a Tokio runtime.
    pub async fn open(config: EngineConfig) -> Result<Arc<Engine>> {
        Self::open_with_io(config, Arc::new(FileIo)).await
    }

    /// As [`Engine::open`], with the partition logs on a chosen I/O backend (tests use the
    /// in-memory and fault-injecting ones). The state store is always a real file.
    pub async fn open_with_io(config: EngineConfig, io: Arc<dyn Io>) -> Result<Arc<Engine>> {
        let data_dir = config.data_dir.clone();
        std::fs::create_dir_all(&data_dir).map_err(|e| {
            EngineError::Storage(omnibus_storage::StorageError::io(
                format!("creating data directory {}", data_dir.display()),
                e,
            ))
        })?;
        io.create_dir_all(&data_dir.join("streams")).map_err(|e| {
            EngineError::Storage(omnibus_storage::StorageError::io(
                "creating streams directory",
                e,
            ))
        })?;
        let state = Arc::new(StateStore::open(&data_dir.join("state.redb"))?);
        let disk_reserve = crate::health::open_reserve(&data_dir, config.disk_reserve_bytes);
        state.set_disk_reserve(disk_reserve.clone());
        let mut streams = BTreeMap::new();
        for (name, bytes) in state.scan_prefix(STREAMS_TABLE, "")? {
            let stream_config: StreamConfig = serde_json::from_slice(&bytes).map_err(|e| {
                EngineError::Storage(omnibus_storage::StorageError::Corrupt(format!(
                    "stream {name:?} metadata: {e}"
                )))
            })?;
            let stream = Stream::open(io.clone(), &data_dir, stream_config)?;
            streams.insert(name, Arc::new(stream));
        }
        remove_orphan_stream_dirs(io.as_ref(), &data_dir, &streams);
        let engine = Arc::new(Engine {
            config,
            io,
            state,
            disk_reserve,
            streams: RwLock::new(streams),
            queues: RwLock::new(BTreeMap::new()),
            jobs: crate::jobs::JobsState::new(),
            shutting_down: Arc::new(AtomicBool::new(false)),
            maintenance_running: Arc::new(tokio::sync::Mutex::new(())),
        });
        engine.open_queues()?;
        spawn_maintenance(&engine);
        Ok(engine)
    }

    /// State-store commits and writes since the engine opened (benchmarks, metrics).
    pub fn state_stats(&self) -> omnibus_storage::StateStats {
        self.state.stats()
    }

    pub fn data_dir(&self) -> &Path {
        &self.config.data_dir
    }

    pub(crate) fn read_streams(&self) -> RwLockReadGuard<'_, StreamMap> {
        self.streams.read().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn write_streams(&self) -> RwLockWriteGuard<'_, StreamMap> {
        self.streams.write().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn stream(&self, name: &str) -> Result<Arc<Stream>> {
        self.read_streams()
            .get(name)
            .cloned()
            .ok_or_else(|| EngineError::StreamNotFound(name.to_string()))
    }

    pub(crate) fn check_running(&self) -> Result<()> {
        if self.shutting_down.load(Ordering::Acquire) {
            return Err(EngineError::ShuttingDown);
        }
        Ok(())
    }

    /// Stops accepting writes, waits for in-flight appends, fsyncs every partition.
    pub async fn shutdown(&self) -> Result<()> {
        self.shutting_down.store(true, Ordering::Release);
        // Waits out a maintenance pass in progress; later ones see the flag and stop.
        drop(self.maintenance_running.lock().await);
        let streams: Vec<Arc<Stream>> = self.read_streams().values().cloned().collect();
        tokio::task::spawn_blocking(move || {
            for stream in streams {
                stream.close()?;
            }
            Ok::<_, EngineError>(())
        })
        .await
        .map_err(|e| EngineError::Internal(format!("shutdown task failed: {e}")))?
    }

    pub fn create_stream(&self, spec: StreamSpec) -> Result<StreamInfo> {
        self.check_running()?;
        let config = self.resolve_spec(spec)?;
        let mut streams = self.write_streams();
        if streams.contains_key(&config.name) {
            return Err(EngineError::StreamExists(config.name));
        }
        if streams.len() >= self.config.streams_max {
            return Err(EngineError::LimitExceeded(format!(
                "the broker holds {} streams, its limit (streams_max)",
                streams.len()
            )));
        }
        for other in streams.values() {
            for pattern in &config.subjects {
                if let Some(clash) = other
                    .config
                    .subjects
                    .iter()
                    .find(|o| patterns_overlap(pattern, o))
                {
                    return Err(EngineError::SubjectsOverlap {
                        pattern: pattern.clone(),
                        other: clash.clone(),
                        stream: other.config.name.clone(),
                    });
                }
            }
        }
        // Leftovers of a stream deleted before a crash must not be adopted.
        let dir = stream_dir(&self.config.data_dir, &config.name);
        if self.io.exists(&dir) {
            self.io.remove_dir_all(&dir).map_err(|e| {
                omnibus_storage::StorageError::io("removing a stale stream folder", e)
            })?;
        }
        let stream = Stream::open(self.io.clone(), &self.config.data_dir, config.clone())?;
        let bytes = serde_json::to_vec(&config).expect("stream config serializes");
        self.state.put(STREAMS_TABLE, &config.name, &bytes)?;
        let stream = Arc::new(stream);
        streams.insert(config.name.clone(), stream.clone());
        Ok(stream.info())
    }

    fn resolve_spec(&self, spec: StreamSpec) -> Result<StreamConfig> {
        validate_stream_name(&spec.name).map_err(|e| EngineError::InvalidName(e.to_string()))?;
        let defaults = &self.config.stream_defaults;
        let partitions = spec.partitions.unwrap_or(defaults.partitions);
        if partitions == 0 || partitions > limits::PARTITIONS_MAX {
            return Err(EngineError::InvalidConfig(format!(
                "partitions must be between 1 and {}",
                limits::PARTITIONS_MAX
            )));
        }
        let mut subjects = spec.subjects;
        if subjects.is_empty() && validate_subject(&spec.name).is_ok() {
            subjects.push(spec.name.clone());
        }
        if subjects.len() > limits::STREAM_SUBJECTS_MAX {
            return Err(EngineError::LimitExceeded(format!(
                "a stream may capture at most {} subject patterns",
                limits::STREAM_SUBJECTS_MAX
            )));
        }
        for pattern in &subjects {
            validate_pattern(pattern).map_err(|e| EngineError::InvalidSubject(e.to_string()))?;
        }
        let message_bytes_max = spec.message_bytes_max.unwrap_or(defaults.message_bytes_max);
        let config = StreamConfig {
            name: spec.name,
            partitions,
            subjects,
            retention_ms: spec.retention_ms.or(defaults.retention_ms),
            retention_bytes: spec.retention_bytes.or(defaults.retention_bytes),
            segment_bytes: spec.segment_bytes.unwrap_or(defaults.segment_bytes),
            segment_ms: spec.segment_ms.unwrap_or(defaults.segment_ms),
            fsync: spec.fsync.unwrap_or(defaults.fsync),
            message_bytes_max,
            created_ms: now_ms(),
        };
        validate_settings(&config)?;
        Ok(config)
    }

    /// The settings a stream gets unless it is created with others.
    pub fn stream_defaults(&self) -> &StreamDefaults {
        &self.config.stream_defaults
    }

    pub fn list_streams(&self) -> Vec<StreamInfo> {
        self.read_streams().values().map(|s| s.info()).collect()
    }

    pub fn stream_info(&self, name: &str) -> Result<StreamInfo> {
        Ok(self.stream(name)?.info())
    }

    /// Deletes a stream, its data and every group offset committed on it.
    pub fn delete_stream(&self, name: &str) -> Result<()> {
        self.check_running()?;
        self.check_not_a_queue_stream(name)?;
        let stream = self
            .write_streams()
            .remove(name)
            .ok_or_else(|| EngineError::StreamNotFound(name.to_string()))?;
        let mut writes = vec![StateWrite::Delete {
            table: STREAMS_TABLE,
            key: name.to_string(),
        }];
        for (key, _) in self.state.scan_prefix(groups::TABLE, "")? {
            if groups::parse_key(&key).is_some_and(|(_, s, _)| s == name) {
                writes.push(StateWrite::Delete {
                    table: groups::TABLE,
                    key,
                });
            }
        }
        self.state.write(&writes)?;
        // The stream is gone from the metadata: a failed close (a full disk cannot take its
        // index files) must not keep its files, the space a full disk needs back.
        if let Err(error) = stream.close() {
            tracing::warn!(stream = %name, "closing a deleted stream failed: {error}");
        }
        for log in &stream.partitions {
            log.delete()?;
        }
        let dir = stream_dir(&self.config.data_dir, name);
        if self.io.exists(&dir) {
            self.io
                .remove_dir_all(&dir)
                .map_err(|e| omnibus_storage::StorageError::io("removing a stream folder", e))?;
        }
        Ok(())
    }

    /// One pass of upkeep over every partition: interval fsync, roll by age, retention.
    fn maintain(&self) {
        self.maintain_disk();
        if let Err(error) = self.sweep_jobs() {
            tracing::error!("job retention failed: {error}");
        }
        if let Err(error) = self.sweep_dedup() {
            tracing::error!("dedup window cleanup failed: {error}");
        }
        let streams: Vec<Arc<Stream>> = self.read_streams().values().cloned().collect();
        for stream in streams {
            for log in &stream.partitions {
                if let Err(error) = log.maintain() {
                    tracing::error!(stream = %stream.config.name, "maintenance failed: {error}");
                }
                match log.enforce_retention() {
                    Ok(outcome) if outcome.segments_deleted > 0 => tracing::info!(
                        stream = %stream.config.name,
                        segments = outcome.segments_deleted,
                        bytes = outcome.bytes_deleted,
                        "retention deleted segments"
                    ),
                    Ok(_) => {}
                    Err(error) => {
                        tracing::error!(stream = %stream.config.name, "retention failed: {error}")
                    }
                }
            }
        }
    }
}

fn remove_orphan_stream_dirs(io: &dyn Io, data_dir: &Path, streams: &StreamMap) {
    let root = data_dir.join("streams");
    let Ok(names) = io.list_dir(&root) else {
        return;
    };
    for name in names {
        if !streams.contains_key(&name) {
            tracing::warn!(stream = %name, "removing the folder of a stream with no metadata");
            let _ = io.remove_dir_all(&root.join(&name));
        }
    }
}

/// Runs maintenance every `maintenance_interval_ms` until the engine is dropped or shut down.
/// A pass holds `maintenance_running` from before it checks the shutdown flag until it has
/// let go of the engine, so none runs on, or keeps alive, an engine that has shut down.
fn spawn_maintenance(engine: &Arc<Engine>) {
    let weak = Arc::downgrade(engine);
    let shutting_down = engine.shutting_down.clone();
    let running = engine.maintenance_running.clone();
    let interval_ms = engine.config.maintenance_interval_ms;
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(Duration::from_millis(interval_ms.max(10)));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let _pass = running.lock().await;
            if shutting_down.load(Ordering::Acquire) {
                return;
            }
            let Some(engine) = weak.upgrade() else {
                return;
            };
            let _ = tokio::task::spawn_blocking(move || engine.maintain()).await;
        }
    });
}

/// The checks a stream's changeable settings must pass, at create and at every change.
pub(crate) fn validate_settings(config: &StreamConfig) -> Result<()> {
    if config.message_bytes_max == 0 || config.message_bytes_max > limits::MESSAGE_BYTES_MAX {
        return Err(EngineError::InvalidConfig(format!(
            "message_bytes_max must be between 1 and {}",
            limits::MESSAGE_BYTES_MAX
        )));
    }
    log_config(config)
        .validate()
        .map_err(EngineError::InvalidConfig)
}
