//! Background jobs on top of queues: a job is a queue message plus a job record (status,
//! attempts, progress, result, errors, timestamps). Workers fetch jobs, report progress
//! (which extends their lease), and complete or fail them; a failure retries per the job's
//! policy until it is dead. Every change is an event on subject `$jobs.<queue>.<id>`.
//!
//! Where the truth lives: the queue core knows where a job's message is (ready, waiting on a
//! timer, leased, finished); the message carries what the job was enqueued with (name,
//! options, unique key: `message.rs`); the job record (state store) holds what changed since —
//! progress, error history, result — and the final status.

mod complete;
mod message;
mod model;
mod query;
mod retry;
mod store;
mod unsynced;

use std::sync::Arc;

use bytes::Bytes;
use omnibus_storage::StateWrite;

pub use complete::JobCompletion;
pub use message::{JOB_NAME_HEADER, JOB_OPTIONS_HEADER};
pub use model::*;
pub use store::JobsState;

use crate::engine::{now_ms, Engine};
use crate::error::{EngineError, Result};
use crate::queue::core::Position;
use crate::queue::{Delivery, EnqueueMessage, Queue};
use message::{job_headers, job_of_message, plain_message_job};
use store::{finalize, load_job, push_error, put_job, JOBS_TABLE, UNIQUE_TABLE};
/// Finished jobs kept per queue and final status; older ones are deleted.
pub const FINISHED_JOBS_KEPT: u64 = 10_000;
/// Finished jobs older than this are deleted.
pub const FINISHED_JOB_RETENTION_MS: i64 = 7 * 24 * 3600 * 1000;
const NAME_BYTES_MAX: usize = 256;
const UNIQUE_KEY_BYTES_MAX: usize = 1024;

/// Kind of the event sent once when a queue fails (its state commit failed): `id` is empty
/// (it concerns every job of the queue), `error` says why, and `status` is `failed`. Event
/// streams of the queue and of its jobs end with it.
pub const QUEUE_FAILED_EVENT: &str = "queue_failed";

/// Most jobs in one enqueue or fetch call.
pub const JOBS_PER_CALL_MAX: usize = 10_000;
/// Largest progress or result document, in bytes of JSON.
pub const JOB_DOCUMENT_BYTES_MAX: usize = 1024 * 1024;
/// Error messages kept per job (the newest).
pub const JOB_ERRORS_KEPT: usize = 20;

/// The status a job has because of where its message is; `None` once it is finished (the
/// record says how) or unknown.
fn live_status(position: &Position, attempts: u32) -> Option<JobStatus> {
    match position {
        Position::Ready { .. } => Some(JobStatus::Waiting),
        Position::Waiting { .. } if attempts > 0 => Some(JobStatus::Failed),
        Position::Waiting { .. } => Some(JobStatus::Delayed),
        Position::Leased(_) => Some(JobStatus::Active),
        Position::Finished | Position::Unknown => None,
    }
}

/// Bytes a record built from its message is charged in [`store::RunningJobs`]: about what its
/// JSON would take.
fn kept_size(job: &Job) -> usize {
    256 + job.name.len()
        + job.unique_key.as_ref().map_or(0, String::len)
        + job.parent.as_ref().map_or(0, String::len)
}

/// The writes that delete a queue's jobs, for `delete_queue`.
pub(crate) fn queue_jobs_deletion(queue: &str) -> Vec<StateWrite> {
    store::delete_queue_jobs(queue)
}

/// Forgets what memory holds of a deleted queue's jobs (counts, running attempts, final
/// records waiting for their commit), once the deletion is durable: a queue created again
/// under the name numbers its jobs from 0 again and must not meet the old ones.
pub(crate) fn forget_queue(jobs: &JobsState, queue: &str) {
    jobs.counts().remove(queue);
    jobs.running().forget_queue(queue);
    jobs.unsynced.forget_queue(queue);
}

fn job_event(
    queue: &str,
    id: String,
    status: JobStatus,
    kind: &'static str,
    attempt: u32,
) -> JobEvent {
    JobEvent {
        queue: queue.to_string(),
        id,
        kind,
        status,
        attempt,
        progress: None,
        result: None,
        error: None,
        at_ms: now_ms(),
    }
}

fn parse_id(id: &str) -> Result<u64> {
    id.parse()
        .map_err(|_| EngineError::BadRequest(format!("job id {id:?} is not a number")))
}

fn job_not_found(queue: &str, id: &str) -> EngineError {
    EngineError::JobNotFound(format!("queue {queue:?} has no job {id}"))
}

fn document_size(value: &serde_json::Value) -> usize {
    serde_json::to_vec(value)
        .map(|v| v.len())
        .unwrap_or(usize::MAX)
}

impl Engine {
    /// Installs the hook that records jobs a queue dead-letters on its own: their final
    /// records go into the queue's own commit (through the committer, in the transaction
    /// that finishes their messages), and they are counted and announced once it is durable.
    pub(crate) fn watch_dead_letters(&self, queue: &Queue) {
        let state = self.state.clone();
        let events = self.jobs.events.clone();
        let counts = self.jobs.counts.clone();
        let running = self.jobs.running.clone();
        let listener: crate::queue::DeadLetterListener =
            Arc::new(move |queue, letters, originals| {
                store::record_dead_letters(
                    &state, &events, &counts, &running, queue, letters, originals,
                )
            });
        *queue
            .on_dead_letter
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(listener);
        let events = self.jobs.events.clone();
        let on_failure: crate::queue::FailureListener = Arc::new(move |queue, reason| {
            // Wakes event streams (SSE) following the queue or its jobs: nothing more will
            // happen to them until a restart.
            let mut event = job_event(
                &queue.config.name,
                String::new(),
                JobStatus::Failed,
                QUEUE_FAILED_EVENT,
                0,
            );
            event.error = Some(reason.to_string());
            let _ = events.send(event);
        });
        *queue.on_failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(on_failure);
    }

    /// The stored record, or the job its message carries when it has none, with its live
    /// status.
    async fn read_job(&self, queue: &Queue, id: u64, with_payload: bool) -> Result<Option<Job>> {
        // A failed queue's memory may be ahead of its disk: it shows no job it cannot vouch for.
        queue.check_healthy()?;
        let position = queue.lock().position(id);
        if position == Position::Finished {
            // Completed with `batched` completions, its commit not durable yet.
            if let Some(mut job) = self.jobs.unsynced.get(&queue.config.name, id) {
                if with_payload {
                    if let Some(record) = queue.records(&[id]).await.ok().and_then(|mut r| r.pop())
                    {
                        job.payload = record.value.unwrap_or_default();
                    }
                }
                return Ok(Some(job));
            }
        }
        if position == Position::Unknown {
            return load_job(&self.state, &queue.config.name, id);
        }
        // One read of the record; the message is read only when its payload is wanted or the
        // record is missing.
        let stored = load_job(&self.state, &queue.config.name, id)?;
        let record = if with_payload || stored.is_none() {
            queue.records(&[id]).await.ok().and_then(|mut r| r.pop())
        } else {
            None
        };
        let mut job = match stored {
            Some(job) => job,
            None => match record.as_ref().and_then(|r| job_of_message(queue, id, r)) {
                Some(job) => job,
                None => return Ok(None),
            },
        };
        if let Some(record) = record {
            job.payload = record.value.unwrap_or_default();
        }
        let (attempts, _) = queue.lock().attempts_of(id);
        job.attempts = job.attempts.max(attempts);
        if let Position::Leased(lease) = &position {
            job.attempts = lease.attempt;
            job.started_ms = self
                .jobs
                .running()
                .started_ms(&queue.config.name, id)
                .or(job.started_ms);
        }
        match live_status(&position, attempts) {
            Some(status) => job.status = status,
            // Finished without a final record: the queue dropped it (TTL, purge, overflow).
            None if position == Position::Finished && !job.status.is_final() => {
                job.status = JobStatus::Dead
            }
            None => {}
        }
        Ok(Some(job))
    }

    fn event(&self, job: &Job, kind: &'static str, attempt: u32) -> JobEvent {
        job_event(&job.queue, job.id.clone(), job.status, kind, attempt)
    }

    /// Enqueues jobs on a queue (created beforehand with `create_queue`). A job whose unique
    /// key matches a live job is not enqueued again: its existing id comes back with
    /// `created: false`.
    pub async fn enqueue_jobs(
        &self,
        queue_name: &str,
        jobs: Vec<NewJob>,
    ) -> Result<Vec<EnqueuedJob>> {
        let queue = self.queue(queue_name)?;
        if jobs.len() > JOBS_PER_CALL_MAX {
            return Err(EngineError::LimitExceeded(format!(
                "{} jobs in one call; the limit is {JOBS_PER_CALL_MAX}",
                jobs.len()
            )));
        }
        for job in &jobs {
            if job.name.is_empty() || job.name.len() > NAME_BYTES_MAX {
                return Err(EngineError::BadRequest(format!(
                    "a job name must be 1 to {NAME_BYTES_MAX} bytes"
                )));
            }
            if job
                .unique_key
                .as_ref()
                .is_some_and(|k| k.is_empty() || k.len() > UNIQUE_KEY_BYTES_MAX)
            {
                return Err(EngineError::BadRequest(format!(
                    "a unique key must be 1 to {UNIQUE_KEY_BYTES_MAX} bytes"
                )));
            }
            if job.max_attempts == Some(0) {
                return Err(EngineError::BadRequest(
                    "max_attempts must be at least 1".into(),
                ));
            }
        }
        let has_unique = jobs.iter().any(|j| j.unique_key.is_some());
        let _unique_guard = if has_unique {
            Some(self.jobs.unique_lock.lock().await)
        } else {
            None
        };
        let now = now_ms();
        let mut answers: Vec<Option<EnqueuedJob>> = vec![None; jobs.len()];
        let mut fresh = Vec::new();
        let mut seen_keys: std::collections::HashMap<String, usize> =
            std::collections::HashMap::new();
        for (index, job) in jobs.into_iter().enumerate() {
            if let Some(key) = &job.unique_key {
                if let Some(existing) = self.live_unique(&queue, key, now)? {
                    answers[index] = Some(existing);
                    continue;
                }
                if let Some(first) = seen_keys.get(key) {
                    // The same key twice in one call: the second points at the first.
                    answers[index] = Some(EnqueuedJob {
                        id: String::new(),
                        created: false,
                        status: JobStatus::Waiting,
                    });
                    fresh.push((index, None, *first));
                    continue;
                }
                seen_keys.insert(key.clone(), index);
            }
            fresh.push((index, Some(job), index));
        }
        let new_jobs: Vec<(usize, NewJob)> = fresh
            .iter()
            .filter_map(|(index, job, _)| job.clone().map(|j| (*index, j)))
            .collect();
        let messages: Vec<EnqueueMessage> = new_jobs
            .iter()
            .map(|(_, job)| EnqueueMessage {
                // The unique key is the message key: the job is read back from its message.
                key: job.unique_key.clone().map(Bytes::from),
                value: Some(job.payload.clone()),
                headers: job_headers(job),
                priority: job.priority,
                delay_ms: job.delay_ms,
                ttl_ms: None,
                id: None,
            })
            .collect();
        let mut ids_by_index = std::collections::HashMap::new();
        let mut events = Vec::new();
        if !messages.is_empty() {
            self.check_running()?;
            // No job record: the message carries the job. Unique keys are committed with the
            // messages' registration, so a registered job always holds its key.
            let listening = self.jobs.listening();
            let job_writes = |ids: &[u64]| {
                let mut writes = Vec::new();
                for ((index, job), &id) in new_jobs.into_iter().zip(ids) {
                    let status = match job.delay_ms.is_some_and(|d| d > 0) {
                        true => JobStatus::Delayed,
                        false => JobStatus::Waiting,
                    };
                    if let Some(key) = &job.unique_key {
                        let entry = store::UniqueEntry {
                            id,
                            expires_ms: job.unique_window_ms.map(|w| now + w as i64),
                        };
                        writes.push(StateWrite::Put {
                            table: UNIQUE_TABLE,
                            key: store::unique_key(queue_name, key),
                            value: serde_json::to_vec(&entry).expect("serializes"),
                        });
                    }
                    if listening {
                        events.push(job_event(queue_name, id.to_string(), status, "enqueued", 0));
                    }
                    ids_by_index.insert(index, (id, status));
                    answers[index] = Some(EnqueuedJob {
                        id: id.to_string(),
                        created: true,
                        status,
                    });
                }
                writes
            };
            self.enqueue_fresh_with(&queue, messages, job_writes)
                .await?;
        }
        for (index, _, first) in fresh {
            if let Some(answer) = &mut answers[index] {
                if answer.id.is_empty() {
                    if let Some((id, status)) = ids_by_index.get(&first) {
                        answer.id = id.to_string();
                        answer.status = *status;
                    }
                }
            }
        }
        for event in events {
            self.jobs.emit(event);
        }
        Ok(answers
            .into_iter()
            .map(|a| a.expect("every job answered"))
            .collect())
    }

    /// The live job holding `key`, if any.
    fn live_unique(&self, queue: &Queue, key: &str, now: i64) -> Result<Option<EnqueuedJob>> {
        let Some(bytes) = self
            .state
            .get(UNIQUE_TABLE, &store::unique_key(&queue.config.name, key))?
        else {
            return Ok(None);
        };
        let Ok(entry) = serde_json::from_slice::<store::UniqueEntry>(&bytes) else {
            return Ok(None);
        };
        if entry.expires_ms.is_some_and(|expires| expires <= now) {
            return Ok(None);
        }
        let position = queue.lock().position(entry.id);
        let status = match live_status(&position, 0) {
            Some(status) => status,
            None => load_job(&self.state, &queue.config.name, entry.id)?
                .map(|job| job.status)
                .filter(|status| status.is_final())
                .unwrap_or(JobStatus::Dead),
        };
        if entry.expires_ms.is_none() && status.is_final() {
            return Ok(None);
        }
        Ok(Some(EnqueuedJob {
            id: entry.id.to_string(),
            created: false,
            status,
        }))
    }

    /// Leases up to `max` jobs to `worker`, waiting up to `wait_ms` for the first.
    pub async fn fetch_jobs(
        &self,
        queue_name: &str,
        worker: &str,
        max: usize,
        wait_ms: u64,
    ) -> Result<Vec<ActiveJob>> {
        let queue = self.queue(queue_name)?;
        let deliveries = self
            .receive(queue_name, worker, max.clamp(1, JOBS_PER_CALL_MAX), wait_ms)
            .await?;
        self.activate(&queue, deliveries).await
    }

    /// Turns deliveries into active jobs: each job's record (one batched lookup) or the job
    /// its message carries, its lease stretched to its own timeout, remembered as running.
    async fn activate(&self, queue: &Queue, deliveries: Vec<Delivery>) -> Result<Vec<ActiveJob>> {
        let queue_name = queue.config.name.as_str();
        let now = now_ms();
        // A job gets a record only by reporting progress or failing, both of which end or
        // follow an earlier attempt: a first attempt has none, and is not looked up (the
        // one-job-at-a-time loop then reads nothing from the state store).
        let keys: Vec<String> = deliveries
            .iter()
            .filter(|d| d.attempt > 1)
            .map(|d| store::job_key(queue_name, d.offset))
            .collect();
        let mut looked_up = if keys.is_empty() {
            Vec::new()
        } else {
            self.state.get_many(JOBS_TABLE, &keys)?
        }
        .into_iter();
        let stored: Vec<Option<Vec<u8>>> = deliveries
            .iter()
            .map(|d| {
                if d.attempt > 1 {
                    looked_up.next().flatten()
                } else {
                    None
                }
            })
            .collect();
        let mut active = Vec::with_capacity(deliveries.len());
        for (delivery, stored) in deliveries.into_iter().zip(stored) {
            let id = delivery.offset;
            let stored: Option<(Job, usize)> = stored.and_then(|bytes| {
                let job = serde_json::from_slice(&bytes).ok()?;
                Some((job, bytes.len()))
            });
            let stored_size = stored.as_ref().map(|(_, size)| *size);
            let mut job = match stored {
                Some((job, _)) => job,
                // Nothing since the enqueue (or not a job: a plain message on a job queue).
                None => job_of_message(queue, id, &delivery.record)
                    .unwrap_or_else(|| plain_message_job(queue, id, &delivery.record)),
            };
            // Kept for settling this attempt without reading the record again.
            let kept = Some((job.clone(), stored_size.unwrap_or_else(|| kept_size(&job))));
            job.payload = delivery.record.value.clone().unwrap_or_default();
            job.status = JobStatus::Active;
            job.attempts = delivery.attempt;
            job.started_ms = Some(now);
            let mut deadline = delivery.lease_deadline_ms;
            if let Some(timeout) = job.timeout_ms {
                deadline = queue
                    .extend(id, delivery.attempt, timeout)
                    .await
                    .unwrap_or(deadline);
            }
            self.jobs.running().start(
                queue_name,
                id,
                delivery.attempt,
                now,
                kept,
                stored_size.is_some(),
            );
            if self.jobs.listening() {
                self.jobs.emit(self.event(&job, "active", delivery.attempt));
            }
            active.push(ActiveJob {
                job,
                attempt: delivery.attempt,
                lease_deadline_ms: deadline,
            });
        }
        Ok(active)
    }

    fn stored_job(&self, queue: &str, id: u64, text_id: &str) -> Result<Job> {
        load_job(&self.state, queue, id)?.ok_or_else(|| job_not_found(queue, text_id))
    }

    /// The record of a job being settled by `attempt`: the one kept at fetch, else read;
    /// rebuilt from its message when a crash lost it.
    async fn settling_job(
        &self,
        queue: &Queue,
        id: u64,
        text_id: &str,
        attempt: u32,
    ) -> Result<Job> {
        let kept = self.jobs.running().record(&queue.config.name, id, attempt);
        if let Some(kept) = kept {
            return Ok(kept.job);
        }
        match load_job(&self.state, &queue.config.name, id)? {
            Some(job) => Ok(job),
            None => self
                .read_job(queue, id, false)
                .await?
                .ok_or_else(|| job_not_found(&queue.config.name, text_id)),
        }
    }

    /// Records progress (any JSON) and extends the attempt's lease; returns the new deadline.
    pub async fn job_progress(
        &self,
        queue_name: &str,
        id: &str,
        attempt: u32,
        progress: serde_json::Value,
    ) -> Result<i64> {
        let queue = self.queue(queue_name)?;
        let offset = parse_id(id)?;
        if document_size(&progress) > JOB_DOCUMENT_BYTES_MAX {
            return Err(EngineError::MessageTooLarge {
                what: "progress",
                bytes: document_size(&progress),
                max: JOB_DOCUMENT_BYTES_MAX,
            });
        }
        let mut job = self.settling_job(&queue, offset, id, attempt).await?;
        let lease_ms = job.timeout_ms.unwrap_or(queue.config.lease_ms);
        let deadline = queue.extend(offset, attempt, lease_ms).await?;
        job.progress = Some(progress.clone());
        job.updated_ms = now_ms();
        job.status = JobStatus::Active;
        let write = put_job(&job, offset);
        let size = match &write {
            StateWrite::Put { value, .. } => value.len(),
            _ => usize::MAX,
        };
        queue.commit(vec![write]).await?;
        self.jobs
            .running()
            .update(queue_name, offset, attempt, &job, size);
        let mut event = self.event(&job, "progress", attempt);
        event.progress = Some(progress);
        self.jobs.emit(event);
        Ok(deadline)
    }

    /// Fails the attempt: retried after `retry_delay_ms` or the job's backoff, or dead when its
    /// attempts are used up.
    pub async fn fail_job(
        &self,
        queue_name: &str,
        id: &str,
        attempt: u32,
        error: &str,
        retry_delay_ms: Option<u64>,
    ) -> Result<Job> {
        let queue = self.queue(queue_name)?;
        let offset = parse_id(id)?;
        let error: String = error.chars().take(4096).collect();
        let mut job = self.settling_job(&queue, offset, id, attempt).await?;
        let now = now_ms();
        job.attempts = attempt;
        push_error(&mut job, attempt, &error, now);
        if attempt >= job.max_attempts {
            queue.term(offset, attempt, &error).await?;
            self.jobs.running().remove(queue_name, offset);
            // The queue's dead-letter hook wrote the final record; reload it.
            let mut dead = self.stored_job(queue_name, offset, id)?;
            if !dead.status.is_final() {
                let writes = finalize(&mut job, offset, JobStatus::Dead, now, true);
                queue.commit(writes).await?;
                dead = job;
            }
            return Ok(dead);
        }
        let delay = retry_delay_ms.or_else(|| {
            job.backoff
                .map(|b| b.delay_ms(attempt, queue.config.jitter, offset))
        });
        job.status = JobStatus::Failed;
        job.updated_ms = now;
        // The record goes with the nack, so the retry's worker reads it with this error.
        queue
            .nack_with(offset, attempt, delay, &error, vec![put_job(&job, offset)])
            .await?;
        self.jobs.running().remove(queue_name, offset);
        let mut event = self.event(&job, "failed", attempt);
        event.error = Some(error);
        self.jobs.emit(event);
        Ok(job)
    }

    /// Cancels a waiting, delayed or active job. An active job's worker finds out on its next
    /// progress / complete / fail (rejected as `unknown_delivery`).
    pub async fn cancel_job(&self, queue_name: &str, id: &str) -> Result<Job> {
        let queue = self.queue(queue_name)?;
        let offset = parse_id(id)?;
        let mut job = self
            .read_job(&queue, offset, false)
            .await?
            .ok_or_else(|| job_not_found(queue_name, id))?;
        if job.status.is_final() {
            return Err(EngineError::JobFinished(format!(
                "job {id} is already {}",
                job.status.as_str()
            )));
        }
        let now = now_ms();
        // The final record goes with the message's finish: one transaction, never one
        // without the other.
        let writes = finalize(&mut job, offset, JobStatus::Cancelled, now, true);
        if !queue.cancel_with(offset, writes).await? {
            return Err(EngineError::BadRequest(format!(
                "job {id} is already finished"
            )));
        }
        self.jobs.running().remove(queue_name, offset);
        self.jobs
            .count_final(queue_name, JobStatus::Cancelled, 1, now);
        self.jobs.emit(self.event(&job, "cancelled", job.attempts));
        Ok(job)
    }

    /// A job with its payload and live status.
    pub async fn get_job(&self, queue_name: &str, id: &str) -> Result<Job> {
        let queue = self.queue(queue_name)?;
        let offset = parse_id(id)?;
        self.read_job(&queue, offset, true)
            .await?
            .ok_or_else(|| job_not_found(queue_name, id))
    }

    /// Live job events (every queue); filter by `event.queue` / `event.id`. A receiver that
    /// falls more than 4,096 events behind skips ahead (it is told how many it missed).
    pub fn job_events(&self) -> tokio::sync::broadcast::Receiver<JobEvent> {
        self.jobs.events.subscribe()
    }
}

#[cfg(test)]
mod batched_tests;
#[cfg(test)]
mod complete_tests;
#[cfg(test)]
mod failure_tests;
#[cfg(test)]
mod record_tests;
#[cfg(test)]
mod retry_tests;
#[cfg(test)]
mod tests;
