//! The open streams: a map by name plus a subject index of what each captures, creation and
//! deletion, and the rule that no lock every publish and fetch needs is held across disk I/O.
//!
//! Locks:
//! - `Engine::streams` (a `std::sync::RwLock<StreamTable>`) is taken for map lookups and swaps
//!   only — never across a segment open, an fsync or a state-store commit, so a stalled disk
//!   under one stream does not stall publishes and fetches on the others.
//! - `Engine::stream_changes` orders the changes of one stream (create, delete, grow, alter):
//!   one lock per stream name, held on a blocking thread for the whole change, so two changes
//!   of one stream never interleave while changes of different streams run side by side.
//!   Taken before `streams`, never while holding it.
//!
//! Creating a stream first *reserves* its name and subjects in the table (so a concurrent
//! create of the same name or an overlapping subject is refused at once), makes its folders
//! and metadata durable without any table lock, then puts the open stream in the table.

use std::collections::{BTreeMap, HashMap};
use std::ops::Deref;
use std::sync::{Arc, Mutex, MutexGuard};

use omnibus_storage::{StateWrite, StorageError};
use omnibus_types::{
    limits, patterns_overlap, validate_pattern, validate_stream_name, validate_subject,
};

use crate::engine::{now_ms, validate_settings, Engine};
use crate::error::{EngineError, Result};
use crate::groups;
use crate::model::{StreamConfig, StreamInfo, StreamSpec};
use crate::router::SubjectIndex;
use crate::streams::{stream_dir, Stream};

/// The state-store table of stream configurations, keyed by stream name.
pub(crate) const STREAMS_TABLE: &str = "streams";

/// The open streams by name, and which stream captures which subject patterns. Reads go
/// through `Deref` to the map; every change goes through a method that keeps the subject
/// index in step.
#[derive(Default)]
pub(crate) struct StreamTable {
    open: BTreeMap<String, Arc<Stream>>,
    /// Pattern -> name of the stream capturing it. Patterns of different streams never
    /// overlap (refused at create), so a subject matches at most one stream.
    subjects: SubjectIndex<String>,
    /// Streams being created: name -> the subject patterns they will capture.
    reserved: BTreeMap<String, Vec<String>>,
    /// Counts the streams put in the table, so a wait for records of a stream that does not
    /// exist yet (a Redis `XREAD BLOCK` before the first `XADD`) ends when one appears.
    created: tokio::sync::watch::Sender<u64>,
}

impl Deref for StreamTable {
    type Target = BTreeMap<String, Arc<Stream>>;

    fn deref(&self) -> &Self::Target {
        &self.open
    }
}

impl StreamTable {
    /// Puts `stream` in the table, replacing (and unindexing) one of the same name.
    pub(crate) fn insert(&mut self, stream: Arc<Stream>) {
        let name = stream.config.name.clone();
        self.unindex(&name);
        for pattern in &stream.config.subjects {
            self.subjects.insert(pattern, name.clone());
        }
        self.open.insert(name, stream);
        self.created.send_modify(|count| *count += 1);
    }

    /// A receiver that sees every stream put in the table from now on.
    pub(crate) fn watch_created(&self) -> tokio::sync::watch::Receiver<u64> {
        self.created.subscribe()
    }

    pub(crate) fn remove(&mut self, name: &str) -> Option<Arc<Stream>> {
        self.unindex(name);
        self.open.remove(name)
    }

    fn unindex(&mut self, name: &str) {
        if let Some(old) = self.open.get(name) {
            for pattern in &old.config.subjects {
                self.subjects.remove(pattern, &old.config.name);
            }
        }
    }

    /// The stream whose subject patterns match `subject`, if any.
    pub(crate) fn capturing(&self, subject: &str) -> Option<&Arc<Stream>> {
        let mut found = None;
        self.subjects
            .for_each_match(subject, |name| found = found.or(Some(name)));
        found.and_then(|name| self.open.get(name))
    }

    /// Holds `patterns` for stream `name`, whose subjects are being changed, so no stream
    /// created meanwhile takes them; refused if they overlap another stream's (open or being
    /// created). Undone by [`StreamTable::release_subjects`].
    pub(crate) fn reserve_subjects(&mut self, name: &str, patterns: &[String]) -> Result<()> {
        let taken = self
            .open
            .values()
            .filter(|stream| stream.config.name != name)
            .map(|stream| (&stream.config.name, &stream.config.subjects))
            .chain(self.reserved.iter().filter(|(other, _)| *other != name));
        for (other, held) in taken {
            for pattern in patterns {
                if let Some(clash) = held.iter().find(|p| patterns_overlap(pattern, p)) {
                    return Err(EngineError::SubjectsOverlap {
                        pattern: pattern.clone(),
                        other: clash.clone(),
                        stream: other.clone(),
                    });
                }
            }
        }
        self.reserved.insert(name.to_string(), patterns.to_vec());
        Ok(())
    }

    pub(crate) fn release_subjects(&mut self, name: &str) {
        self.reserved.remove(name);
    }

    /// Takes `config`'s name and subjects for a stream about to be created, or says why not.
    fn reserve(&mut self, config: &StreamConfig, streams_max: usize) -> Result<()> {
        if self.open.contains_key(&config.name) || self.reserved.contains_key(&config.name) {
            return Err(EngineError::StreamExists(config.name.clone()));
        }
        let held = self.open.len() + self.reserved.len();
        if held >= streams_max {
            return Err(EngineError::LimitExceeded(format!(
                "the broker holds {held} streams, its limit (streams_max)"
            )));
        }
        let taken = self
            .open
            .values()
            .map(|stream| (&stream.config.name, &stream.config.subjects))
            .chain(self.reserved.iter());
        for (other, patterns) in taken {
            for pattern in &config.subjects {
                if let Some(clash) = patterns.iter().find(|p| patterns_overlap(pattern, p)) {
                    return Err(EngineError::SubjectsOverlap {
                        pattern: pattern.clone(),
                        other: clash.clone(),
                        stream: other.clone(),
                    });
                }
            }
        }
        self.reserved
            .insert(config.name.clone(), config.subjects.clone());
        Ok(())
    }
}

/// One lock per stream name that orders the changes of that stream (see the module doc).
#[derive(Default)]
pub(crate) struct StreamChanges {
    locks: Mutex<HashMap<String, Arc<Mutex<()>>>>,
}

/// Held for the whole of one change to one stream.
pub(crate) struct ChangeGuard {
    lock: Arc<Mutex<()>>,
}

impl ChangeGuard {
    pub(crate) fn hold(&self) -> MutexGuard<'_, ()> {
        self.lock.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl StreamChanges {
    /// The change lock of `name`. Entries are dropped when their stream is deleted, so the map
    /// holds at most one per stream that exists or is being changed.
    pub(crate) fn of(&self, name: &str) -> ChangeGuard {
        let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        let lock = locks.entry(name.to_string()).or_default().clone();
        ChangeGuard { lock }
    }

    fn forget(&self, name: &str) {
        let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        if locks
            .get(name)
            .is_some_and(|lock| Arc::strong_count(lock) == 1)
        {
            locks.remove(name);
        }
    }
}

/// Runs disk work on Tokio's blocking pool, so an engine method called from an async task
/// never blocks a runtime worker however slow the disk is.
pub(crate) async fn off_the_runtime<T, F>(work: F) -> Result<T>
where
    F: FnOnce() -> Result<T> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| EngineError::Internal(format!("a blocking engine task failed: {error}")))?
}

impl Engine {
    pub(crate) fn stream(&self, name: &str) -> Result<Arc<Stream>> {
        self.read_streams()
            .get(name)
            .cloned()
            .ok_or_else(|| EngineError::StreamNotFound(name.to_string()))
    }

    /// The stream capturing `subject` (which must be valid).
    pub(crate) fn stream_for_subject(&self, subject: &str) -> Result<Arc<Stream>> {
        self.read_streams()
            .capturing(subject)
            .cloned()
            .ok_or_else(|| EngineError::NoStreamForSubject(subject.to_string()))
    }

    pub fn list_streams(&self) -> Vec<StreamInfo> {
        self.read_streams().values().map(|s| s.info()).collect()
    }

    /// Every stream's name, in name order. Cheaper than [`Engine::list_streams`] when only
    /// names are wanted: no partition's state is read.
    pub fn stream_names(&self) -> Vec<String> {
        self.read_streams().keys().cloned().collect()
    }

    /// How many streams there are.
    pub fn stream_count(&self) -> usize {
        self.read_streams().len()
    }

    pub fn stream_info(&self, name: &str) -> Result<StreamInfo> {
        Ok(self.stream(name)?.info())
    }

    /// When stream `name` was made (ms since the epoch), which tells it from a stream deleted
    /// and made again under its name; without reading every partition's state as
    /// [`Engine::stream_info`] does (doors ask on every read).
    pub fn stream_created_ms(&self, name: &str) -> Result<i64> {
        Ok(self.stream(name)?.config.created_ms)
    }

    /// The settings a stream gets unless it is created with others.
    pub fn stream_defaults(&self) -> &crate::config::StreamDefaults {
        &self.config.stream_defaults
    }

    /// Creates a stream: its partition folders and its metadata are durable before this
    /// returns. The disk work runs off the async runtime.
    pub async fn create_stream(self: &Arc<Self>, spec: StreamSpec) -> Result<StreamInfo> {
        let engine = self.clone();
        off_the_runtime(move || engine.create_stream_blocking(spec)).await
    }

    /// [`Engine::create_stream`] on the calling thread, which must be allowed to block.
    pub(crate) fn create_stream_blocking(&self, spec: StreamSpec) -> Result<StreamInfo> {
        self.check_running()?;
        let config = self.resolve_spec(spec)?;
        let change = self.stream_changes.of(&config.name);
        let _held = change.hold();
        self.write_streams()
            .reserve(&config, self.config.streams_max)?;
        let created = self.make_stream(&config);
        let mut streams = self.write_streams();
        streams.reserved.remove(&config.name);
        let stream = Arc::new(created?);
        streams.insert(stream.clone());
        drop(streams);
        Ok(stream.info())
    }

    /// The disk part of creating a stream (no table lock held).
    fn make_stream(&self, config: &StreamConfig) -> Result<Stream> {
        // Leftovers of a stream deleted before a crash must not be adopted.
        let dir = stream_dir(&self.config.data_dir, &config.name);
        if self.io.exists(&dir) {
            self.io
                .remove_dir_all(&dir)
                .map_err(|e| StorageError::io("removing a stale stream folder", e))?;
        }
        let stream = Stream::open(self.io.clone(), &self.config.data_dir, config.clone())?;
        let bytes = serde_json::to_vec(config).expect("stream config serializes");
        self.state.put(STREAMS_TABLE, &config.name, &bytes)?;
        Ok(stream)
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
            retention_ms: if spec.no_time_retention {
                None
            } else {
                spec.retention_ms.or(defaults.retention_ms)
            },
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

    /// Deletes a stream, its data and every group offset committed on it. The disk work runs
    /// off the async runtime.
    pub async fn delete_stream(self: &Arc<Self>, name: &str) -> Result<()> {
        let engine = self.clone();
        let name = name.to_string();
        off_the_runtime(move || engine.delete_stream_blocking(&name)).await
    }

    /// [`Engine::delete_stream`] on the calling thread, which must be allowed to block.
    pub(crate) fn delete_stream_blocking(&self, name: &str) -> Result<()> {
        self.check_running()?;
        self.check_not_a_queue_stream(name)?;
        let change = self.stream_changes.of(name);
        let held = change.hold();
        // The metadata goes first: if that fails, nothing changed.
        self.stream(name)?;
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
        writes.extend(self.forget_consumers_of(name));
        writes.push(super::door_settings::delete_writes(name));
        self.state.write(&writes)?;
        self.committed.remove_stream(name);
        let stream = self
            .write_streams()
            .remove(name)
            .ok_or_else(|| EngineError::StreamNotFound(name.to_string()))?;
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
                .map_err(|e| StorageError::io("removing a stream folder", e))?;
        }
        drop(held);
        drop(change);
        self.stream_changes.forget(name);
        Ok(())
    }
}
