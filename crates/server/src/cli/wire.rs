//! The JSON shapes the client sends and reads. They are the client's own (rather than the
//! engine's) because the client reads only a few fields and must keep working when the server
//! adds more; unknown fields are ignored.

use std::collections::BTreeMap;

use omnibus_engine::OffsetCommit;
use serde::{Deserialize, Serialize};

/// The subset of a stream's description the CLI reads.
#[derive(Debug, Clone, Deserialize)]
pub struct StreamSummary {
    pub name: String,
    pub partitions: u32,
    #[serde(default)]
    pub subjects: Vec<String>,
    #[serde(default)]
    pub partition_info: Vec<PartitionSummary>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PartitionSummary {
    pub partition: u32,
    pub log_start_offset: u64,
    pub high_watermark: u64,
    #[serde(default)]
    pub size_bytes: u64,
}

#[derive(Debug, Deserialize)]
pub(super) struct StreamList {
    pub(super) streams: Vec<StreamSummary>,
}

/// Where a publish goes.
#[derive(Debug, Clone)]
pub enum Target {
    Stream(String),
    Subject(String),
}

/// One record to publish, in the API's JSON shape.
#[derive(Debug, Clone, Default, Serialize)]
pub struct OutgoingRecord {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_base64: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partition: Option<u32>,
}

#[derive(Serialize)]
pub(super) struct PublishBody<'a> {
    pub(super) records: &'a [OutgoingRecord],
}

#[derive(Debug, Clone, Copy, Deserialize)]
pub struct Position {
    pub partition: u32,
    pub offset: u64,
}

#[derive(Debug, Deserialize)]
pub(super) struct PublishAnswer {
    pub(super) records: Vec<Position>,
}

/// A record as the fetch endpoint renders it. Serializing it again gives the same JSON
/// (absent fields stay absent), which `consume --format json` relies on.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FetchedRecord {
    pub offset: u64,
    pub timestamp_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    pub partition: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_base64: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_base64: Option<String>,
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub headers: serde_json::Value,
    /// Headers whose values are not UTF-8.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub headers_base64: serde_json::Value,
}

#[derive(Debug, Deserialize)]
pub struct FetchPage {
    pub records: Vec<FetchedRecord>,
    pub next_offset: u64,
}

#[derive(Debug, Clone, Copy)]
pub struct FetchParams {
    pub offset: u64,
    pub max_records: usize,
    pub max_bytes: usize,
    pub wait_ms: u64,
}

#[derive(Debug, Deserialize)]
pub(super) struct OffsetAnswer {
    pub(super) offset: u64,
}

#[derive(Serialize)]
pub(super) struct CommitBody<'a> {
    pub(super) offsets: &'a [OffsetCommit],
}

#[derive(Debug, Clone, Deserialize)]
pub struct Committed {
    pub stream: String,
    pub partition: u32,
    pub offset: u64,
}

#[derive(Debug, Deserialize)]
pub(super) struct CommittedAnswer {
    pub(super) offsets: Vec<Committed>,
}
