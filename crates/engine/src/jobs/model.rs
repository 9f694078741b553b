//! Job types: what callers send, what they get back, and the events that follow a job.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::queue::Backoff;

/// A job's lifecycle. `Failed` means "failed, will retry"; `Dead` means out of attempts (the
/// message went to the dead-letter stream).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Waiting,
    Delayed,
    Active,
    Completed,
    Failed,
    Dead,
    Cancelled,
}

impl JobStatus {
    pub const ALL: [JobStatus; 7] = [
        JobStatus::Waiting,
        JobStatus::Delayed,
        JobStatus::Active,
        JobStatus::Completed,
        JobStatus::Failed,
        JobStatus::Dead,
        JobStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Waiting => "waiting",
            JobStatus::Delayed => "delayed",
            JobStatus::Active => "active",
            JobStatus::Completed => "completed",
            JobStatus::Failed => "failed",
            JobStatus::Dead => "dead",
            JobStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<JobStatus> {
        JobStatus::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Finished for good: completed, dead or cancelled.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            JobStatus::Completed | JobStatus::Dead | JobStatus::Cancelled
        )
    }
}

/// A job to enqueue.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewJob {
    /// What kind of work (free text, e.g. `send-email`).
    pub name: String,
    pub payload: Bytes,
    /// 0–9, higher first.
    pub priority: u8,
    pub delay_ms: Option<u64>,
    /// Attempts before the job is dead (default: the queue's `max_deliver`).
    pub max_attempts: Option<u32>,
    pub backoff: Option<Backoff>,
    /// How long one attempt may run without a progress report before it is retried
    /// (default: the queue's lease).
    pub timeout_ms: Option<u64>,
    /// Enqueuing the same key again within `unique_window_ms` returns the existing job.
    pub unique_key: Option<String>,
    /// Default: until the job is finished and purged by retention.
    pub unique_window_ms: Option<u64>,
    pub parent: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobError {
    pub attempt: u32,
    pub message: String,
    pub at_ms: i64,
}

/// A job as stored and reported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub id: String,
    pub queue: String,
    pub name: String,
    /// Not stored in the job record (it is in the log); filled in when a job is read.
    #[serde(skip)]
    pub payload: Bytes,
    pub status: JobStatus,
    pub priority: u8,
    pub attempts: u32,
    pub max_attempts: u32,
    pub backoff: Option<Backoff>,
    pub timeout_ms: Option<u64>,
    pub unique_key: Option<String>,
    pub parent: Option<String>,
    pub progress: Option<serde_json::Value>,
    pub result: Option<serde_json::Value>,
    pub errors: Vec<JobError>,
    pub created_ms: i64,
    pub updated_ms: i64,
    pub run_at_ms: Option<i64>,
    pub started_ms: Option<i64>,
    pub finished_ms: Option<i64>,
}

/// What [`crate::Engine::complete_and_fetch_jobs`] did: one answer per completion, in
/// order, and the next jobs (or why fetching them failed; the completions stand).
#[derive(Debug)]
pub struct CompletedAndFetched {
    pub completed: Vec<crate::Result<Job>>,
    pub next: crate::Result<Vec<ActiveJob>>,
}

/// An enqueue's answer for one job.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EnqueuedJob {
    pub id: String,
    /// False when a job with the same unique key already existed (its id is returned).
    pub created: bool,
    pub status: JobStatus,
}

/// A job handed to a worker.
#[derive(Debug, Clone, PartialEq)]
pub struct ActiveJob {
    pub job: Job,
    /// Pass back with progress / complete / fail; a stale attempt is rejected.
    pub attempt: u32,
    pub lease_deadline_ms: i64,
}

/// Something that happened to a job. Published on subject `$jobs.<queue>.<id>`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobEvent {
    pub queue: String,
    pub id: String,
    /// `enqueued`, `active`, `progress`, `completed`, `failed`, `dead`, `cancelled`, or
    /// [`super::QUEUE_FAILED_EVENT`] (the whole queue, with an empty `id`).
    pub kind: &'static str,
    pub status: JobStatus,
    pub attempt: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub at_ms: i64,
}

impl JobEvent {
    pub fn subject(&self) -> String {
        format!("$jobs.{}.{}", self.queue, self.id)
    }
}

/// Counts and ages for a queue's dashboard.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct JobStats {
    pub waiting: u64,
    pub delayed: u64,
    pub active: u64,
    pub completed: u64,
    pub failed: u64,
    pub dead: u64,
    pub cancelled: u64,
    /// Age of the oldest job still waiting, in ms.
    pub oldest_waiting_ms: Option<i64>,
    pub dead_letter_depth: u64,
    /// Jobs completed in the last minute.
    pub completed_last_minute: u64,
}

/// A page of jobs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobPage {
    pub jobs: Vec<Job>,
    /// Pass as `after` to get the next page; `None` at the end.
    pub next: Option<String>,
}
