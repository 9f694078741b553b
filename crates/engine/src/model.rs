//! The engine's request and answer types. Front doors build these from their wire formats and
//! render them back; nothing here knows about any protocol.

use bytes::Bytes;
use omnibus_types::{Header, Record};
use serde::{Deserialize, Serialize};

use crate::config::FsyncPolicy;

/// What a caller asks for when creating a stream. `None` fields take the broker's defaults.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct StreamSpec {
    pub name: String,
    pub partitions: Option<u32>,
    /// Subject patterns this stream captures. Empty means the stream captures its own name.
    pub subjects: Vec<String>,
    pub retention_ms: Option<u64>,
    pub retention_bytes: Option<u64>,
    pub segment_bytes: Option<u64>,
    pub segment_ms: Option<u64>,
    pub fsync: Option<FsyncPolicy>,
    pub message_bytes_max: Option<usize>,
    /// Keep records whatever their age: no time retention, not even the broker's default
    /// (`retention_ms` is then ignored). For streams whose record timestamps are not arrival
    /// times — a Redis stream's entries carry their ID's milliseconds, which a client may set
    /// to any time, and Redis itself never expires entries by age.
    pub no_time_retention: bool,
}

/// A stream's resolved, stored configuration.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StreamConfig {
    pub name: String,
    pub partitions: u32,
    pub subjects: Vec<String>,
    pub retention_ms: Option<u64>,
    pub retention_bytes: Option<u64>,
    pub segment_bytes: u64,
    pub segment_ms: u64,
    pub fsync: FsyncPolicy,
    pub message_bytes_max: usize,
    pub created_ms: i64,
}

/// The settings of a stream that may change after it is created (`Engine::alter_stream`);
/// its name, subjects and creation time may not, and its partition count only grows.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StreamSettings {
    pub retention_ms: Option<u64>,
    pub retention_bytes: Option<u64>,
    pub segment_bytes: u64,
    pub segment_ms: u64,
    pub fsync: FsyncPolicy,
    pub message_bytes_max: usize,
}

impl StreamConfig {
    pub fn settings(&self) -> StreamSettings {
        StreamSettings {
            retention_ms: self.retention_ms,
            retention_bytes: self.retention_bytes,
            segment_bytes: self.segment_bytes,
            segment_ms: self.segment_ms,
            fsync: self.fsync,
            message_bytes_max: self.message_bytes_max,
        }
    }

    /// This configuration with `settings` in place of its own.
    pub fn with_settings(&self, settings: StreamSettings) -> StreamConfig {
        StreamConfig {
            retention_ms: settings.retention_ms,
            retention_bytes: settings.retention_bytes,
            segment_bytes: settings.segment_bytes,
            segment_ms: settings.segment_ms,
            fsync: settings.fsync,
            message_bytes_max: settings.message_bytes_max,
            ..self.clone()
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PartitionInfo {
    pub partition: u32,
    /// First offset still retained.
    pub log_start_offset: u64,
    /// One past the last offset a reader may see (acknowledged records).
    pub high_watermark: u64,
    pub size_bytes: u64,
    pub segments: usize,
    /// Set when the partition refuses writes after an I/O error.
    pub write_error: Option<String>,
    /// Damaged bytes recovery set aside instead of discarding them (docs/storage.md,
    /// "Quarantine"); listed until an operator removes the files.
    pub quarantined: Vec<QuarantinedFile>,
}

/// A quarantine file in a partition folder: bytes of a segment that was damaged in the
/// middle, with valid batches after the damage.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct QuarantinedFile {
    /// The file's name inside the partition folder.
    pub file: String,
    pub bytes: u64,
    /// When recovery set the bytes aside (unix ms).
    pub found_at_ms: i64,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StreamInfo {
    #[serde(flatten)]
    pub config: StreamConfig,
    pub partition_info: Vec<PartitionInfo>,
}

impl StreamInfo {
    pub fn records_retained(&self) -> u64 {
        self.partition_info
            .iter()
            .map(|p| p.high_watermark - p.log_start_offset)
            .sum()
    }
}

/// Where a publish goes: a stream by name, or a subject routed to the stream capturing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublishTarget {
    Stream(String),
    Subject(String),
}

/// One record to publish.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublishRecord {
    /// Subject for a record published to a stream by name; defaults to the stream's name.
    /// Ignored (taken from the target) when publishing by subject.
    pub subject: Option<String>,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<Header>,
    /// Explicit partition; otherwise by key (Kafka's murmur2 partitioner) or round-robin.
    pub partition: Option<u32>,
    /// Create time; defaults to now.
    pub timestamp_ms: Option<i64>,
}

/// Where an acknowledged record landed.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct RecordPosition {
    pub partition: u32,
    pub offset: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchRequest {
    pub stream: String,
    pub partition: u32,
    pub offset: u64,
    pub max_records: usize,
    pub max_bytes: usize,
    /// Long-poll: wait up to this long for a record at `offset` if there is none yet.
    pub wait_ms: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FetchResult {
    pub records: Vec<Record>,
    /// The offset to fetch next.
    pub next_offset: u64,
    pub high_watermark: u64,
    pub log_start_offset: u64,
}

/// Stored batches as they are on disk (RecordBatch v2), for front doors that serve them
/// without re-encoding.
#[derive(Debug, Clone, PartialEq)]
pub struct RawFetchResult {
    pub batches: Bytes,
    pub high_watermark: u64,
    pub log_start_offset: u64,
    /// The offset after the last batch returned (the fetch offset when none was): below the
    /// high watermark when `max_bytes` left records out.
    pub next_offset: u64,
}

/// Where to start reading a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetSpec {
    Earliest,
    Latest,
    /// The first record with a timestamp at or after this many ms since the epoch.
    Timestamp(i64),
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct OffsetCommit {
    pub stream: String,
    pub partition: u32,
    /// The next offset the group will read (Kafka's convention).
    pub offset: u64,
    #[serde(default)]
    pub metadata: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CommittedOffset {
    pub stream: String,
    pub partition: u32,
    pub offset: u64,
    pub metadata: String,
    pub committed_ms: i64,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PartitionLag {
    pub stream: String,
    pub partition: u32,
    pub committed: Option<u64>,
    pub high_watermark: u64,
    /// high watermark − committed offset (or − log start when nothing is committed).
    pub lag: u64,
    /// Age in ms of the oldest record the group has not consumed, `None` without lag. Read
    /// from the partition's sparse time index in memory, not from the record: a lower bound,
    /// short by at most the time one index interval of records took to arrive.
    pub lag_ms: Option<i64>,
}
