//! The JSON shapes of the queue, job and dead-letter endpoints, as the client sends and reads
//! them. Like [`super::wire`], they hold only the fields the CLI uses; unknown fields are
//! ignored, and whatever is printed as JSON is printed as the server rendered it.

use serde::{Deserialize, Serialize};

/// The part of a queue's description the CLI reads (`GET /v1/queues`, `GET /v1/queues/{q}`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct QueueSummary {
    pub name: String,
    pub lease_ms: u64,
    pub max_deliver: u32,
    pub dead_letter: String,
    pub ready: u64,
    pub delayed: u64,
    pub leased: u64,
    pub dead_letter_depth: u64,
}

#[derive(Debug, Deserialize)]
pub(super) struct QueueList {
    pub(super) queues: Vec<QueueSummary>,
}

#[derive(Debug, Deserialize)]
pub(super) struct PurgeAnswer {
    pub(super) purged: u64,
}

/// One job to enqueue. The payload is JSON, or bytes that are not UTF-8 as base64.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct NewJob {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload_base64: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unique_key: Option<String>,
}

#[derive(Serialize)]
pub(super) struct EnqueueBody<'a> {
    pub(super) jobs: &'a [NewJob],
}

#[derive(Debug, Clone, Deserialize)]
pub struct EnqueuedJob {
    pub id: String,
    /// False when a job with the same unique key already existed.
    #[serde(default = "yes")]
    pub created: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
pub(super) struct EnqueueAnswer {
    pub(super) jobs: Vec<EnqueuedJob>,
}

#[derive(Serialize)]
pub(super) struct FetchJobsBody<'a> {
    pub(super) worker: &'a str,
    pub(super) max: usize,
    pub(super) wait_ms: u64,
}

/// A job leased to this worker.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct FetchedJob {
    pub id: String,
    pub name: String,
    pub payload: Option<serde_json::Value>,
    pub payload_base64: Option<String>,
    pub attempt: u32,
    pub lease_deadline_ms: i64,
    /// The job's own limit on one attempt without a progress report, if it has one.
    pub timeout_ms: Option<u64>,
}

#[derive(Debug, Deserialize)]
pub(super) struct FetchJobsAnswer {
    pub(super) jobs: Vec<FetchedJob>,
}

#[derive(Serialize)]
pub(super) struct ProgressBody<'a> {
    pub(super) attempt: u32,
    pub(super) progress: &'a serde_json::Value,
}

#[derive(Debug, Deserialize)]
pub(super) struct ProgressAnswer {
    pub(super) lease_deadline_ms: i64,
}

/// One attempt to complete in a batch (`POST /v1/queues/{q}/jobs/complete`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Completion {
    pub id: String,
    pub attempt: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
}

#[derive(Serialize)]
pub(super) struct CompleteJobsBody<'a> {
    pub(super) completions: &'a [Completion],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) fetch: Option<FetchJobsBody<'a>>,
}

/// A batch completion's answer, asked for with `Prefer: return=minimal`: each accepted
/// completion is `{"status":"completed"}`, each refused one `{"error":{…}}`.
#[derive(Debug, Deserialize)]
pub(super) struct CompleteJobsAnswer {
    pub(super) results: Vec<CompletionResult>,
    /// With a fetch: the next jobs.
    #[serde(default)]
    pub(super) next: Option<Vec<FetchedJob>>,
    /// With a fetch: why fetching failed (the completions stand).
    #[serde(default)]
    pub(super) fetch_error: Option<WireError>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct CompletionResult {
    pub(super) error: Option<WireError>,
}

#[derive(Debug, Deserialize)]
pub(super) struct WireError {
    pub(super) code: String,
    pub(super) message: String,
}

#[derive(Serialize)]
pub(super) struct FailBody<'a> {
    pub(super) attempt: u32,
    pub(super) error: &'a str,
}

/// A page of jobs, each as the server rendered it.
#[derive(Debug, Deserialize)]
pub struct JobPage {
    pub jobs: Vec<serde_json::Value>,
    #[serde(default)]
    pub next: Option<String>,
}

/// The fields of a job the `job list` table shows.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct JobRow {
    pub id: String,
    pub name: String,
    pub status: String,
    pub attempts: u32,
    pub max_attempts: u32,
    pub created_ms: i64,
    pub errors: Vec<JobErrorRow>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct JobErrorRow {
    pub attempt: u32,
    pub message: String,
}

/// A page of a queue's dead letters, each as the server rendered it.
#[derive(Debug, Deserialize)]
pub struct DeadLetterPage {
    pub records: Vec<serde_json::Value>,
    #[serde(default)]
    pub next_offset: Option<u64>,
}

/// The fields of a dead letter the `dlq list` table shows.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct DeadLetterRow {
    pub offset: u64,
    pub value: Option<String>,
    pub value_base64: Option<String>,
    pub headers: std::collections::BTreeMap<String, serde_json::Value>,
}

impl DeadLetterRow {
    pub fn header(&self, name: &str) -> Option<String> {
        match self.headers.get(name)? {
            serde_json::Value::String(text) => Some(text.clone()),
            serde_json::Value::Null => None,
            other => Some(other.to_string()),
        }
    }
}

#[derive(Serialize)]
pub(super) struct RedriveBody {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) max: Option<u64>,
}

#[derive(Debug, Deserialize)]
pub(super) struct RedriveAnswer {
    pub(super) redriven: u64,
}
