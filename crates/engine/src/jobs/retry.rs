//! Retrying a job by hand (the dashboard's "retry" button, `POST …/jobs/{id}/retry`).
//!
//! Only a job that is finished without success — `dead` (out of attempts) or `cancelled` —
//! can be retried; a waiting, active or failed-and-retrying job is still in the queue's hands
//! and a completed one has done its work. A retry enqueues a new job (a new id: a job's id is
//! its message's offset, and the log is append-only) with the same name, payload and options,
//! and fresh attempts; the old job keeps its record, so its history stays readable. A dead
//! job's message also stays in the dead-letter stream: redriving it afterwards would run the
//! work a third time, so an operator picks one of the two.

use super::*;

impl Engine {
    /// Enqueues a copy of the dead or cancelled job `id`; returns the new job.
    pub async fn retry_job(&self, queue_name: &str, id: &str) -> Result<EnqueuedJob> {
        let queue = self.queue(queue_name)?;
        let offset = parse_id(id)?;
        let old = self
            .read_job(&queue, offset, true)
            .await?
            .ok_or_else(|| job_not_found(queue_name, id))?;
        if !matches!(old.status, JobStatus::Dead | JobStatus::Cancelled) {
            return Err(EngineError::BadRequest(format!(
                "job {id} is {}: only a dead or cancelled job can be retried",
                old.status.as_str()
            )));
        }
        let copy = NewJob {
            name: old.name,
            payload: old.payload,
            priority: old.priority,
            delay_ms: None,
            max_attempts: Some(old.max_attempts),
            backoff: old.backoff,
            timeout_ms: old.timeout_ms,
            unique_key: old.unique_key,
            unique_window_ms: None,
            parent: old.parent,
        };
        let mut enqueued = self.enqueue_jobs(queue_name, vec![copy]).await?;
        enqueued
            .pop()
            .ok_or_else(|| EngineError::Internal("enqueuing one job answered none".into()))
    }
}
