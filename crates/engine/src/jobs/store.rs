//! Job records in the state store, and the shared in-memory parts of the jobs layer.
//!
//! | table | key | value |
//! |---|---|---|
//! | `jobs` | `<queue>␟<id:20>` | JSON [`Job`] without the payload |
//! | `job_final` | `<queue>␟<status>␟<id:20>` | empty: finished jobs by status, for listing and retention |
//! | `job_unique` | `<queue>␟<unique key>` | JSON `{id, expires_ms}` |

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use omnibus_storage::{StateStore, StateWrite};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use super::model::{Job, JobError, JobEvent, JobStatus};
use super::JOB_ERRORS_KEPT;
use crate::engine::now_ms;
use crate::queue::core::DeadLetter;

pub const JOBS_TABLE: &str = "jobs";
pub const FINAL_TABLE: &str = "job_final";
pub const UNIQUE_TABLE: &str = "job_unique";
const SEPARATOR: char = '\u{1f}';
/// Events buffered per subscriber before it is told it lagged.
pub const EVENTS_BUFFER: usize = 4096;

pub fn job_key(queue: &str, id: u64) -> String {
    format!("{queue}{SEPARATOR}{id:020}")
}

pub fn queue_prefix(queue: &str) -> String {
    format!("{queue}{SEPARATOR}")
}

pub fn final_key(queue: &str, status: JobStatus, id: u64) -> String {
    format!("{queue}{SEPARATOR}{}{SEPARATOR}{id:020}", status.as_str())
}

pub fn final_prefix(queue: &str, status: JobStatus) -> String {
    format!("{queue}{SEPARATOR}{}{SEPARATOR}", status.as_str())
}

pub fn unique_key(queue: &str, key: &str) -> String {
    format!("{queue}{SEPARATOR}{key}")
}

/// The id at the end of a `jobs` or `job_final` key.
pub fn id_of_key(key: &str) -> Option<u64> {
    key.rsplit(SEPARATOR).next()?.parse().ok()
}

#[derive(Debug, Serialize, Deserialize)]
pub struct UniqueEntry {
    pub id: u64,
    pub expires_ms: Option<i64>,
}

#[derive(Debug, Default)]
pub struct FinalCounts {
    pub completed: u64,
    pub dead: u64,
    pub cancelled: u64,
    /// Completion times within the last minute.
    pub recent_completions: VecDeque<i64>,
}

impl FinalCounts {
    pub fn add(&mut self, status: JobStatus, now: i64) {
        match status {
            JobStatus::Completed => {
                self.completed += 1;
                self.recent_completions.push_back(now);
                while self
                    .recent_completions
                    .front()
                    .is_some_and(|t| *t < now - 60_000)
                {
                    self.recent_completions.pop_front();
                }
                // Bounded: at most the last minute, and never more than this many entries.
                while self.recent_completions.len() > 1_000_000 {
                    self.recent_completions.pop_front();
                }
            }
            JobStatus::Dead => self.dead += 1,
            JobStatus::Cancelled => self.cancelled += 1,
            _ => {}
        }
    }
}

/// The jobs layer's in-memory state, shared with queue listeners.
pub struct JobsState {
    pub events: broadcast::Sender<JobEvent>,
    /// Serializes enqueues that carry unique keys, so two racing enqueues make one job.
    pub unique_lock: tokio::sync::Mutex<()>,
    /// When each active attempt started: (queue, id) → ms.
    pub started: Mutex<HashMap<(String, u64), i64>>,
    pub counts: Arc<Mutex<HashMap<String, FinalCounts>>>,
}

impl Default for JobsState {
    fn default() -> Self {
        Self::new()
    }
}

impl JobsState {
    pub fn new() -> Self {
        let (events, _) = broadcast::channel(EVENTS_BUFFER);
        JobsState {
            events,
            unique_lock: tokio::sync::Mutex::new(()),
            started: Mutex::new(HashMap::new()),
            counts: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    pub fn counts(&self) -> MutexGuard<'_, HashMap<String, FinalCounts>> {
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn started(&self) -> MutexGuard<'_, HashMap<(String, u64), i64>> {
        self.started.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn emit(&self, event: JobEvent) {
        // No subscribers is fine: events are for whoever listens now.
        let _ = self.events.send(event);
    }
}

pub fn load_job(state: &StateStore, queue: &str, id: u64) -> crate::Result<Option<Job>> {
    let Some(bytes) = state.get(JOBS_TABLE, &job_key(queue, id))? else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| crate::EngineError::Internal(format!("job {queue}/{id}: {e}")))
}

pub fn put_job(job: &Job, id: u64) -> StateWrite {
    StateWrite::Put {
        table: JOBS_TABLE,
        key: job_key(&job.queue, id),
        value: serde_json::to_vec(job).expect("job serializes"),
    }
}

/// Writes that make `job` final with `status`.
pub fn finalize(job: &mut Job, id: u64, status: JobStatus, now: i64) -> Vec<StateWrite> {
    job.status = status;
    job.updated_ms = now;
    job.finished_ms = Some(now);
    let mut writes = vec![
        put_job(job, id),
        StateWrite::Put {
            table: FINAL_TABLE,
            key: final_key(&job.queue, status, id),
            value: Vec::new(),
        },
    ];
    if let Some(key) = &job.unique_key {
        // A unique key without a window holds only while the job is live.
        writes.push(StateWrite::Delete {
            table: UNIQUE_TABLE,
            key: unique_key(&job.queue, key),
        });
    }
    writes
}

pub fn push_error(job: &mut Job, attempt: u32, message: &str, now: i64) {
    job.errors.push(JobError {
        attempt,
        message: message.to_string(),
        at_ms: now,
    });
    if job.errors.len() > JOB_ERRORS_KEPT {
        let excess = job.errors.len() - JOB_ERRORS_KEPT;
        job.errors.drain(..excess);
    }
}

/// Called by a queue when it dead-letters messages on its own (lease expiries, TTL): marks
/// the jobs dead and tells subscribers. Synchronous and rare.
pub fn record_dead_letters(
    state: &StateStore,
    events: &broadcast::Sender<JobEvent>,
    counts: &Mutex<HashMap<String, FinalCounts>>,
    queue: &str,
    letters: &[DeadLetter],
) {
    let now = now_ms();
    let mut writes = Vec::new();
    for letter in letters {
        let Ok(Some(mut job)) = load_job(state, queue, letter.offset) else {
            continue;
        };
        if job.status.is_final() {
            continue;
        }
        job.attempts = job.attempts.max(letter.attempts);
        push_error(&mut job, letter.attempts, &letter.last_error, now);
        writes.extend(finalize(&mut job, letter.offset, JobStatus::Dead, now));
        counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(queue.to_string())
            .or_default()
            .add(JobStatus::Dead, now);
        let _ = events.send(JobEvent {
            queue: queue.to_string(),
            id: letter.offset.to_string(),
            kind: "dead",
            status: JobStatus::Dead,
            attempt: letter.attempts,
            progress: None,
            result: None,
            error: Some(format!("{}: {}", letter.reason, letter.last_error)),
            at_ms: now,
        });
    }
    if let Err(error) = state.write(&writes) {
        tracing::error!(queue, "recording dead jobs failed: {error}");
    }
}
