//! Job records in the state store, and the shared in-memory parts of the jobs layer.
//!
//! | table | key | value |
//! |---|---|---|
//! | `jobs` | `<queue>␟<id:20>` | JSON [`Job`] without the payload: a live job that reported progress or failed (a job with neither has no record; its message carries it) |
//! | `job_final` | `<queue>␟<status>␟<id:20>` | JSON [`Job`] without the payload: a finished job, by final status, for lookup, listing and retention |
//! | `job_unique` | `<queue>␟<unique key>` | JSON `{id, expires_ms}` |
//!
//! A job has at most one record: finishing it moves the record from `jobs` to `job_final`
//! (one put, one delete, in one transaction). A `job_final` entry with an empty value is the
//! layout before records moved there; its record is then in `jobs`.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use omnibus_storage::{StateStore, StateWrite};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use omnibus_types::Record;

use super::message::job_of_message;
use super::model::{Job, JobError, JobEvent, JobStatus};
use super::JOB_ERRORS_KEPT;
use crate::engine::now_ms;
use crate::queue::core::offset_hash::OffsetMap;
use crate::queue::core::DeadLetter;
use crate::queue::{DeadLetterRecords, Queue};

pub const JOBS_TABLE: &str = "jobs";
pub const FINAL_TABLE: &str = "job_final";
pub const UNIQUE_TABLE: &str = "job_unique";
const SEPARATOR: char = '\u{1f}';
/// Events buffered per subscriber before it is told it lagged.
pub const EVENTS_BUFFER: usize = 4096;

pub fn job_key(queue: &str, id: u64) -> String {
    let mut key = String::with_capacity(queue.len() + 1 + ID_DIGITS);
    key.push_str(queue);
    key.push(SEPARATOR);
    push_id(&mut key, id);
    key
}

/// Digits of an id in a key: zero-padded, so keys sort in id order.
const ID_DIGITS: usize = 20;

/// Appends `id` zero-padded to [`ID_DIGITS`] (what `{id:020}` writes, without the
/// formatter: two keys are built per completion).
fn push_id(key: &mut String, id: u64) {
    let mut digits = [b'0'; ID_DIGITS];
    let mut rest = id;
    for digit in digits.iter_mut().rev() {
        *digit = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    key.push_str(std::str::from_utf8(&digits).expect("ASCII digits"));
}

pub fn queue_prefix(queue: &str) -> String {
    format!("{queue}{SEPARATOR}")
}

pub fn final_key(queue: &str, status: JobStatus, id: u64) -> String {
    let status = status.as_str();
    let mut key = String::with_capacity(queue.len() + status.len() + 2 + ID_DIGITS);
    key.push_str(queue);
    key.push(SEPARATOR);
    key.push_str(status);
    key.push(SEPARATOR);
    push_id(&mut key, id);
    key
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
    /// Jobs being worked on: when each attempt started, and their records.
    pub running: Arc<Mutex<RunningJobs>>,
    pub counts: Arc<Mutex<HashMap<String, FinalCounts>>>,
    /// Jobs completed with `batched` completions whose commit is not durable yet.
    pub unsynced: Arc<super::unsynced::UnsyncedFinals>,
    /// Retention's last look at each final-status index (by its key prefix).
    pub sweep_marks: Mutex<HashMap<String, SweepMark>>,
}

/// What retention saw in one final-status index at its last look.
#[derive(Debug, Default)]
pub struct SweepMark {
    /// The newest key then: unchanged means nothing finished since.
    pub newest: String,
    pub checked_ms: i64,
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
            running: Arc::new(Mutex::new(RunningJobs::default())),
            counts: Arc::new(Mutex::new(HashMap::new())),
            unsynced: Arc::default(),
            sweep_marks: Mutex::default(),
        }
    }

    pub fn counts(&self) -> MutexGuard<'_, HashMap<String, FinalCounts>> {
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn running(&self) -> MutexGuard<'_, RunningJobs> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether anyone subscribes to job events now: hot paths build events only then.
    pub fn listening(&self) -> bool {
        self.events.receiver_count() > 0
    }

    pub fn count_final(&self, queue: &str, status: JobStatus, n: usize, now: i64) {
        count_final(&self.counts, queue, status, n, now);
    }

    pub fn emit(&self, event: JobEvent) {
        // No subscribers is fine: events are for whoever listens now.
        let _ = self.events.send(event);
    }
}

/// Adds `n` jobs of `queue` finished (committed) with `status` to its counts — if they are
/// loaded: until then the jobs are in the index the first load counts.
pub fn count_final(
    counts: &Mutex<HashMap<String, FinalCounts>>,
    queue: &str,
    status: JobStatus,
    n: usize,
    now: i64,
) {
    let mut counts = counts.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(counts) = counts.get_mut(queue) {
        for _ in 0..n {
            counts.add(status, now);
        }
    }
}

/// Total bytes of job records kept for running jobs; beyond it they are read again.
pub const RUNNING_RECORDS_BYTES_MAX: usize = 64 * 1024 * 1024;
/// A record larger than this (a big progress document) is not kept.
pub const RUNNING_RECORD_BYTES_MAX: usize = 16 * 1024;

/// One fetched attempt of a job.
struct Running {
    started_ms: i64,
    attempt: u32,
    /// The job as it was fetched (no payload) and its encoded size.
    record: Option<(Job, usize)>,
    /// Whether the job has a record in `jobs` (else its message is all there is).
    stored: bool,
}

/// A running attempt's job as kept since its fetch.
pub struct KeptJob {
    pub job: Job,
    /// It has a record in `jobs`, which finishing it must delete.
    pub stored: bool,
}

/// Jobs fetched and not yet settled, per queue and id. Settling a job needs its stored
/// record; keeping the one read at fetch saves a state-store read and a JSON decode per
/// completion. Only the current attempt's record is used, and every write of a running
/// job's record (progress) goes through [`RunningJobs::update`], so the copy is the stored
/// record. Bounded: one entry per delivered attempt, records up to
/// [`RUNNING_RECORDS_BYTES_MAX`] in all; entries go when the job is settled, redelivered or
/// dead-lettered.
#[derive(Default)]
pub struct RunningJobs {
    queues: HashMap<String, OffsetMap<Running>>,
    record_bytes: usize,
}

impl RunningJobs {
    /// Records that `attempt` of job `id` started; keeps `record` (encoded in `size` bytes)
    /// if there is room. `stored`: it has a record in `jobs`.
    pub fn start(
        &mut self,
        queue: &str,
        id: u64,
        attempt: u32,
        now: i64,
        record: Option<(Job, usize)>,
        stored: bool,
    ) {
        self.remove(queue, id);
        let record = record
            .filter(|(_, size)| self.fits(*size))
            .map(|(mut job, size)| {
                // The payload is in the log; holding it would pin the read buffer.
                job.payload = bytes::Bytes::new();
                (job, size)
            });
        self.record_bytes += record.as_ref().map_or(0, |(_, size)| *size);
        let entry = Running {
            started_ms: now,
            attempt,
            record,
            stored,
        };
        match self.queues.get_mut(queue) {
            Some(jobs) => {
                jobs.insert(id, entry);
            }
            None => {
                let mut jobs = OffsetMap::default();
                jobs.insert(id, entry);
                self.queues.insert(queue.to_string(), jobs);
            }
        }
    }

    fn fits(&self, size: usize) -> bool {
        size <= RUNNING_RECORD_BYTES_MAX && self.record_bytes + size <= RUNNING_RECORDS_BYTES_MAX
    }

    pub fn started_ms(&self, queue: &str, id: u64) -> Option<i64> {
        Some(self.queues.get(queue)?.get(&id)?.started_ms)
    }

    /// The kept job of `attempt`, if that is the attempt running.
    pub fn record(&self, queue: &str, id: u64, attempt: u32) -> Option<KeptJob> {
        let running = self.queues.get(queue)?.get(&id)?;
        if running.attempt != attempt {
            return None;
        }
        running.record.as_ref().map(|(job, _)| KeptJob {
            job: job.clone(),
            stored: running.stored,
        })
    }

    /// The kept job of `attempt`, taken out: for completing it, which ends the attempt (the
    /// entry stays, without its record, until the completion is durable). A copy would be
    /// one more clone of the whole job per completion. A completion that then fails (a
    /// failed commit) leaves the job to be read from the state store if it is settled again.
    pub fn take_record(&mut self, queue: &str, id: u64, attempt: u32) -> Option<KeptJob> {
        let running = self.queues.get_mut(queue)?.get_mut(&id)?;
        if running.attempt != attempt {
            return None;
        }
        let (job, size) = running.record.take()?;
        self.record_bytes -= size;
        Some(KeptJob {
            job,
            stored: running.stored,
        })
    }

    /// The record of `attempt` was rewritten (as `size` bytes): keep the new one, or none.
    pub fn update(&mut self, queue: &str, id: u64, attempt: u32, record: &Job, size: usize) {
        let fits = |bytes: usize, old: usize| {
            size <= RUNNING_RECORD_BYTES_MAX && bytes - old + size <= RUNNING_RECORDS_BYTES_MAX
        };
        let bytes = self.record_bytes;
        let Some(running) = self
            .queues
            .get_mut(queue)
            .and_then(|jobs| jobs.get_mut(&id))
        else {
            return;
        };
        if running.attempt != attempt {
            return;
        }
        running.stored = true;
        let old = running.record.take().map_or(0, |(_, size)| size);
        self.record_bytes -= old;
        if fits(bytes, old) {
            let mut kept = record.clone();
            kept.payload = bytes::Bytes::new();
            running.record = Some((kept, size));
            self.record_bytes += size;
        }
    }

    /// Forgets job `id`; returns when its attempt started.
    /// Forgets every running job of `queue` (deleted).
    pub fn forget_queue(&mut self, queue: &str) {
        if let Some(jobs) = self.queues.remove(queue) {
            let held: usize = jobs
                .values()
                .filter_map(|running| running.record.as_ref().map(|(_, size)| *size))
                .sum();
            self.record_bytes -= held;
        }
    }

    pub fn remove(&mut self, queue: &str, id: u64) -> Option<i64> {
        let jobs = self.queues.get_mut(queue)?;
        let running = jobs.remove(&id)?;
        if jobs.is_empty() {
            self.queues.remove(queue);
        }
        self.record_bytes -= running.record.map_or(0, |(_, size)| size);
        Some(running.started_ms)
    }
}

pub const FINAL_STATUSES: [JobStatus; 3] =
    [JobStatus::Completed, JobStatus::Dead, JobStatus::Cancelled];

pub fn decode_job(queue: &str, id: u64, bytes: &[u8]) -> crate::Result<Job> {
    serde_json::from_slice(bytes)
        .map_err(|e| crate::EngineError::Internal(format!("job {queue}/{id}: {e}")))
}

/// A job's record: a live job's in `jobs`, else a finished job's in `job_final`.
pub fn load_job(state: &StateStore, queue: &str, id: u64) -> crate::Result<Option<Job>> {
    if let Some(bytes) = state.get(JOBS_TABLE, &job_key(queue, id))? {
        return decode_job(queue, id, &bytes).map(Some);
    }
    for status in FINAL_STATUSES {
        match state.get(FINAL_TABLE, &final_key(queue, status, id))? {
            Some(bytes) if !bytes.is_empty() => return decode_job(queue, id, &bytes).map(Some),
            _ => {}
        }
    }
    Ok(None)
}

/// Writes that delete every job record and unique key of `queue`.
pub fn delete_queue_jobs(queue: &str) -> Vec<StateWrite> {
    [JOBS_TABLE, FINAL_TABLE, UNIQUE_TABLE]
        .into_iter()
        .map(|table| StateWrite::DeletePrefix {
            table,
            prefix: queue_prefix(queue),
        })
        .collect()
}

pub fn put_job(job: &Job, id: u64) -> StateWrite {
    StateWrite::Put {
        table: JOBS_TABLE,
        key: job_key(&job.queue, id),
        value: serde_json::to_vec(job).expect("job serializes"),
    }
}

/// Writes that make `job` final with `status`: its record moves to `job_final`. `stored`:
/// it may have a record in `jobs` (false only when known not to, which saves a write).
pub fn finalize(
    job: &mut Job,
    id: u64,
    status: JobStatus,
    now: i64,
    stored: bool,
) -> Vec<StateWrite> {
    job.status = status;
    job.updated_ms = now;
    job.finished_ms = Some(now);
    let mut writes = vec![StateWrite::Put {
        table: FINAL_TABLE,
        key: final_key(&job.queue, status, id),
        value: record_bytes(job),
    }];
    if stored {
        writes.push(StateWrite::Delete {
            table: JOBS_TABLE,
            key: job_key(&job.queue, id),
        });
    }
    if let Some(key) = &job.unique_key {
        // A unique key without a window holds only while the job is live.
        writes.push(StateWrite::Delete {
            table: UNIQUE_TABLE,
            key: unique_key(&job.queue, key),
        });
    }
    writes
}

/// A job's record as JSON, in a buffer sized for a typical record (serde_json's own starts at
/// 128 bytes and grows twice, copying, for a job's ~350).
fn record_bytes(job: &Job) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(RECORD_BYTES_TYPICAL);
    serde_json::to_writer(&mut bytes, job).expect("job serializes");
    bytes
}

/// About the size of a finished job's record without progress, result or errors.
const RECORD_BYTES_TYPICAL: usize = 512;

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

/// Called by a queue when it dead-letters messages on its own (lease expiries, TTL, `term`):
/// answers the writes that mark the jobs dead, for the queue to commit with its own, and
/// counts them and tells subscribers once that commit is durable. `originals` are the
/// messages, in the order of `letters` (a job without a record is read from its message).
/// Reads the state store but never writes it: no fsync on the caller's async task.
#[allow(clippy::too_many_arguments)]
pub fn record_dead_letters(
    state: &StateStore,
    events: &broadcast::Sender<JobEvent>,
    counts: &Arc<Mutex<HashMap<String, FinalCounts>>>,
    running: &Mutex<RunningJobs>,
    queue: &Queue,
    letters: &[DeadLetter],
    originals: &[Record],
) -> DeadLetterRecords {
    let now = now_ms();
    let mut writes = Vec::new();
    let mut dead_events = Vec::new();
    let queue_name = queue.config.name.as_str();
    for (letter, original) in letters.iter().zip(originals) {
        running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(queue_name, letter.offset);
        let stored = match load_job(state, queue_name, letter.offset) {
            Ok(stored) => stored,
            Err(error) => {
                tracing::error!(queue = queue_name, "reading a dead job: {error}");
                continue;
            }
        };
        let Some(mut job) = stored.or_else(|| job_of_message(queue, letter.offset, original))
        else {
            continue; // not a job
        };
        job.payload = bytes::Bytes::new();
        if job.status.is_final() {
            continue;
        }
        job.attempts = job.attempts.max(letter.attempts);
        push_error(&mut job, letter.attempts, &letter.last_error, now);
        writes.extend(finalize(
            &mut job,
            letter.offset,
            JobStatus::Dead,
            now,
            true,
        ));
        dead_events.push(JobEvent {
            queue: queue_name.to_string(),
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
    if writes.is_empty() {
        return DeadLetterRecords::default();
    }
    let (events, counts, queue_name) = (events.clone(), counts.clone(), queue_name.to_string());
    DeadLetterRecords {
        writes,
        on_commit: Some(Box::new(move || {
            count_final(
                &counts,
                &queue_name,
                JobStatus::Dead,
                dead_events.len(),
                now,
            );
            for event in dead_events {
                // No subscribers is fine: events are for whoever listens now.
                let _ = events.send(event);
            }
        })),
    }
}

#[cfg(test)]
mod running_tests {
    use super::*;

    fn job() -> Job {
        Job {
            id: "7".into(),
            queue: "q".into(),
            name: "n".into(),
            payload: bytes::Bytes::from_static(b"payload"),
            status: JobStatus::Active,
            priority: 0,
            attempts: 1,
            max_attempts: 5,
            backoff: None,
            timeout_ms: None,
            unique_key: None,
            parent: None,
            progress: None,
            result: None,
            errors: Vec::new(),
            created_ms: 1,
            updated_ms: 1,
            run_at_ms: None,
            started_ms: Some(5),
            finished_ms: None,
        }
    }

    #[test]
    fn keys_are_the_queue_then_the_zero_padded_id_as_before() {
        for id in [0, 7, 10, 12_345, 99_999_999_999, u64::MAX] {
            assert_eq!(job_key("q", id), format!("q{SEPARATOR}{id:020}"));
            assert_eq!(
                final_key("orders", JobStatus::Completed, id),
                format!("orders{SEPARATOR}completed{SEPARATOR}{id:020}")
            );
            assert_eq!(id_of_key(&job_key("q", id)), Some(id));
        }
        assert!(job_key("q", 9) < job_key("q", 10), "keys sort in id order");
    }

    #[test]
    fn forgetting_a_queue_releases_its_running_jobs_and_their_bytes() {
        let mut running = RunningJobs::default();
        running.start("a", 1, 1, 10, Some((job(), 300)), false);
        running.start("a", 2, 1, 10, Some((job(), 200)), false);
        running.start("b", 1, 1, 10, Some((job(), 100)), false);
        assert_eq!(running.record_bytes, 600);
        running.forget_queue("a");
        assert_eq!(running.started_ms("a", 1), None);
        assert_eq!(running.started_ms("b", 1), Some(10));
        assert_eq!(running.record_bytes, 100);
    }

    #[test]
    fn taking_a_kept_record_frees_its_bytes_and_keeps_the_attempt_running() {
        let mut running = RunningJobs::default();
        running.start("q", 7, 2, 5, Some((job(), 300)), false);
        assert_eq!(running.record_bytes, 300);
        assert!(running.take_record("q", 7, 1).is_none(), "another attempt");
        let kept = running.take_record("q", 7, 2).expect("kept at fetch");
        assert_eq!((kept.job.id.as_str(), kept.stored), ("7", false));
        assert!(kept.job.payload.is_empty(), "the payload stays in the log");
        assert_eq!(running.record_bytes, 0);
        assert!(running.take_record("q", 7, 2).is_none(), "taken once");
        assert_eq!(running.started_ms("q", 7), Some(5), "still running");
        assert_eq!(running.remove("q", 7), Some(5));
        assert_eq!(running.record_bytes, 0);
    }

    #[test]
    fn a_record_renders_as_the_jobs_json() {
        let mut job = job();
        job.payload = bytes::Bytes::new();
        let rendered = record_bytes(&job);
        assert_eq!(rendered, serde_json::to_vec(&job).unwrap());
        assert!(rendered.len() <= RECORD_BYTES_TYPICAL, "{}", rendered.len());
    }
}
