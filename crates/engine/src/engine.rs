use std::sync::Arc;

use crate::config::EngineConfig;
use crate::error::Result;
use crate::model::*;

/// The broker's core. Cheap to share: front doors hold an `Arc<Engine>`.
pub struct Engine {
    _config: EngineConfig,
}

impl Engine {
    /// Opens (or creates) the data directory, recovers every stream, and starts the background
    /// maintenance task (segment roll by age, retention, interval fsync). Needs a Tokio runtime.
    pub async fn open(_config: EngineConfig) -> Result<Arc<Engine>> {
        todo!()
    }
    /// Stops accepting writes, waits for in-flight appends, fsyncs every partition.
    pub async fn shutdown(&self) -> Result<()> {
        todo!()
    }
    pub fn create_stream(&self, _spec: StreamSpec) -> Result<StreamInfo> {
        todo!()
    }
    pub fn list_streams(&self) -> Vec<StreamInfo> {
        todo!()
    }
    pub fn stream_info(&self, _name: &str) -> Result<StreamInfo> {
        todo!()
    }
    pub fn delete_stream(&self, _name: &str) -> Result<()> {
        todo!()
    }
    /// Appends records and returns once they are acknowledged under the stream's fsync policy
    /// (with the default `always`: after fsync). Positions are in the order of `records`.
    pub async fn publish(
        &self,
        _target: PublishTarget,
        _records: Vec<PublishRecord>,
    ) -> Result<Vec<RecordPosition>> {
        todo!()
    }
    /// Records from `offset` on, waiting up to `wait_ms` when there are none yet.
    pub async fn fetch(&self, _request: FetchRequest) -> Result<FetchResult> {
        todo!()
    }
    /// Stored batches from the one containing `offset`, up to about `max_bytes` (always at
    /// least one whole batch when any exists), waiting up to `wait_ms`.
    pub async fn fetch_raw(
        &self,
        _stream: &str,
        _partition: u32,
        _offset: u64,
        _max_bytes: usize,
        _wait_ms: u64,
    ) -> Result<RawFetchResult> {
        todo!()
    }
    /// Resolves earliest / latest / by-timestamp to an offset. For a timestamp past every
    /// record, returns the high watermark.
    pub fn resolve_offset(&self, _stream: &str, _partition: u32, _spec: OffsetSpec) -> Result<u64> {
        todo!()
    }
    pub fn commit_offsets(&self, _group: &str, _commits: Vec<OffsetCommit>) -> Result<()> {
        todo!()
    }
    /// Committed offsets of a group, optionally for one stream.
    pub fn committed_offsets(
        &self,
        _group: &str,
        _stream: Option<&str>,
    ) -> Result<Vec<CommittedOffset>> {
        todo!()
    }
    /// Lag for every partition of the streams the group has committed on (or of `stream`).
    pub fn group_lag(&self, _group: &str, _stream: Option<&str>) -> Result<Vec<PartitionLag>> {
        todo!()
    }
    pub fn list_groups(&self) -> Result<Vec<String>> {
        todo!()
    }
}
