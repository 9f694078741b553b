//! Engine and per-stream configuration, with the defaults a zero-config start uses.

use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use omnibus_storage::io::FaultPlan;
pub use omnibus_storage::FsyncPolicy;

/// Settings that apply to a stream unless its spec overrides them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct StreamDefaults {
    pub partitions: u32,
    /// Roll the active segment once it holds this many bytes.
    pub segment_bytes: u64,
    /// Roll the active segment once it is this old (and not empty).
    pub segment_ms: u64,
    /// Delete closed segments whose newest record is older than this. `None` keeps forever.
    pub retention_ms: Option<u64>,
    /// Delete the oldest closed segments while the partition is larger than this.
    pub retention_bytes: Option<u64>,
    pub fsync: FsyncPolicy,
    /// Largest single record (key + value + headers).
    pub message_bytes_max: usize,
}

impl Default for StreamDefaults {
    fn default() -> Self {
        StreamDefaults {
            partitions: 1,
            segment_bytes: 128 * 1024 * 1024,
            segment_ms: 7 * 24 * 3600 * 1000,
            retention_ms: Some(7 * 24 * 3600 * 1000),
            retention_bytes: None,
            fsync: FsyncPolicy::Always,
            message_bytes_max: omnibus_types::limits::MESSAGE_BYTES_DEFAULT,
        }
    }
}

impl StreamDefaults {
    /// What a stream created without overrides would have (what "reset to the default"
    /// restores in `Engine::alter_stream`).
    pub fn settings(&self) -> crate::model::StreamSettings {
        crate::model::StreamSettings {
            retention_ms: self.retention_ms,
            retention_bytes: self.retention_bytes,
            segment_bytes: self.segment_bytes,
            segment_ms: self.segment_ms,
            fsync: self.fsync,
            message_bytes_max: self.message_bytes_max,
        }
    }
}

#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub data_dir: PathBuf,
    pub stream_defaults: StreamDefaults,
    /// How often the background task rolls aged segments, applies retention and runs interval
    /// fsyncs.
    pub maintenance_interval_ms: u64,
    /// Most streams the broker will hold.
    pub streams_max: usize,
    /// The group coordinator's bounds (tests lower its session timeouts).
    pub coordinator: crate::groups::coordinator::CoordinatorLimits,
    /// For tests only: open the state store on a backend that fails writes or fsyncs as this
    /// plan says (`StateStore::open_with_faults`). `None` (always, outside tests) opens it
    /// plainly.
    pub state_faults: Option<std::sync::Arc<FaultPlan>>,
    /// Size of the preallocated `reserve.bin` in the data folder, released on a full disk so
    /// metadata deletes can still commit (`health.rs`). 0 disables it.
    pub disk_reserve_bytes: u64,
    /// Alarm rules and the evaluator (`alerts/`); off unless turned on.
    pub alerts: crate::alerts::AlertsConfig,
}

impl EngineConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        EngineConfig {
            data_dir: data_dir.into(),
            stream_defaults: StreamDefaults::default(),
            maintenance_interval_ms: 1000,
            streams_max: 10_000,
            coordinator: Default::default(),
            state_faults: None,
            disk_reserve_bytes: 4 * 1024 * 1024,
            alerts: crate::alerts::AlertsConfig::default(),
        }
    }
}

/// Parses `always`, `never` or `interval:<ms>`.
pub fn parse_fsync(text: &str) -> Result<FsyncPolicy, String> {
    FsyncPolicy::from_str(text)
}
