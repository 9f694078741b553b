//! Completing jobs, one or many per call.
//!
//! A completion is the queue's ack plus the job's final record, in one transaction. Many
//! completions in one call share one lock of the queue and one group-commit request, and
//! read the records they still need in one state-store read: for a worker that finishes jobs
//! in batches, that is most of what a completion costs besides the commit itself.

use omnibus_storage::StateWrite;

use super::store::{self, finalize, KeptJob, JOBS_TABLE};
use super::{document_size, job_not_found, parse_id, CompletedAndFetched, Job, JobStatus};
use super::{JOBS_PER_CALL_MAX, JOB_DOCUMENT_BYTES_MAX};
use crate::engine::{now_ms, Engine};
use crate::error::{EngineError, Result};
use crate::queue::{Completions, Queue};

/// One job to complete.
#[derive(Debug, Clone, PartialEq)]
pub struct JobCompletion {
    pub id: String,
    /// The attempt the worker was given; a stale one is rejected.
    pub attempt: u32,
    pub result: Option<serde_json::Value>,
}

/// Completions checked and turned into acks, waiting for their commit.
struct Prepared {
    /// One per completion; `None` until decided.
    answers: Vec<Option<Result<Job>>>,
    /// Offset, attempt and the final record's writes, for each job in `settled`.
    acks: Vec<(u64, u32, Vec<StateWrite>)>,
    settled: Vec<(Pending, Job)>,
    now: i64,
}

/// A completion past validation, waiting for its record.
struct Pending {
    index: usize,
    id: String,
    offset: u64,
    attempt: u32,
    result: Option<serde_json::Value>,
}

impl Engine {
    /// Completes the attempt with an optional result.
    pub async fn complete_job(
        &self,
        queue_name: &str,
        id: &str,
        attempt: u32,
        result: Option<serde_json::Value>,
    ) -> Result<Job> {
        let completion = JobCompletion {
            id: id.to_string(),
            attempt,
            result,
        };
        let mut answers = self.complete_jobs(queue_name, vec![completion]).await?;
        answers.pop().expect("one answer per completion")
    }

    /// Completes many attempts at once: one answer per completion, in order. Each one
    /// succeeds or fails on its own (a stale attempt, an unknown job, a result too large),
    /// exactly as [`Engine::complete_job`] would answer it; the ones that succeed are
    /// committed together (one transaction), so if that commit fails they all fail. The
    /// outer error is for the call itself (no such queue, too many completions).
    pub async fn complete_jobs(
        &self,
        queue_name: &str,
        completions: Vec<JobCompletion>,
    ) -> Result<Vec<Result<Job>>> {
        let queue = self.queue(queue_name)?;
        let mut prepared = self.prepare_completions(&queue, completions).await?;
        let on_durable = self.hold_unsynced(&queue, &prepared);
        // One transaction for all: each ack with its final record (a stale attempt writes
        // nothing and fails alone).
        let outcomes = queue
            .ack_many(std::mem::take(&mut prepared.acks), on_durable)
            .await;
        self.release_failed_unsynced(&queue, &prepared, &outcomes);
        Ok(self.answer_completions(queue_name, prepared, outcomes))
    }

    /// Completes attempts as [`Engine::complete_jobs`] does and fetches the worker's next
    /// jobs as [`Engine::fetch_jobs`] does, in one commit when jobs are ready (the acks, the
    /// final records and the new deliveries together): a worker that finishes a batch and
    /// asks for the next waits for one fsync instead of two. When nothing is ready it waits
    /// up to `wait_ms` like a fetch, after the completions are durable. `next` is the fetch's
    /// own outcome: the completions stand even if it fails.
    pub async fn complete_and_fetch_jobs(
        &self,
        queue_name: &str,
        completions: Vec<JobCompletion>,
        worker: &str,
        max: usize,
        wait_ms: u64,
    ) -> Result<CompletedAndFetched> {
        let queue = self.queue(queue_name)?;
        let max = max.clamp(1, JOBS_PER_CALL_MAX);
        let mut prepared = self.prepare_completions(&queue, completions).await?;
        let acks = std::mem::take(&mut prepared.acks);
        let on_durable = self.hold_unsynced(&queue, &prepared);
        let (outcomes, deliveries) = queue
            .ack_many_and_receive(acks, worker, max, on_durable)
            .await;
        self.release_failed_unsynced(&queue, &prepared, &outcomes);
        let completed = self.answer_completions(queue_name, prepared, outcomes);
        let next = match deliveries {
            Ok(deliveries) if deliveries.is_empty() && wait_ms > 0 => {
                self.fetch_jobs(queue_name, worker, max, wait_ms).await
            }
            Ok(deliveries) => self.activate(&queue, deliveries).await,
            Err(error) => Err(error),
        };
        Ok(CompletedAndFetched { completed, next })
    }

    /// With `batched` completions: the final records, readable from the answer until their
    /// commit is durable (`unsynced.rs`); the closure forgets them then.
    fn hold_unsynced(
        &self,
        queue: &Queue,
        prepared: &Prepared,
    ) -> Option<Box<dyn FnOnce() + Send>> {
        if queue.config.completions != Completions::Batched || prepared.settled.is_empty() {
            return None;
        }
        let name = &queue.config.name;
        for (item, job) in &prepared.settled {
            self.jobs.unsynced.insert(name, item.offset, job.clone());
        }
        let ids = prepared
            .settled
            .iter()
            .map(|(item, _)| item.offset)
            .collect();
        Some(self.jobs.unsynced.forget_when_durable(name, ids))
    }

    /// Forgets the held final records of completions that were refused.
    fn release_failed_unsynced(&self, queue: &Queue, prepared: &Prepared, outcomes: &[Result<()>]) {
        if queue.config.completions != Completions::Batched {
            return;
        }
        let refused: Vec<u64> = prepared
            .settled
            .iter()
            .zip(outcomes)
            .filter(|(_, outcome)| outcome.is_err())
            .map(|((item, _), _)| item.offset)
            .collect();
        self.jobs.unsynced.remove(&queue.config.name, &refused);
    }

    /// Checks each completion and builds its ack with the job's final record.
    async fn prepare_completions(
        &self,
        queue: &Queue,
        completions: Vec<JobCompletion>,
    ) -> Result<Prepared> {
        if completions.len() > JOBS_PER_CALL_MAX {
            return Err(EngineError::LimitExceeded(format!(
                "{} completions in one call; the limit is {JOBS_PER_CALL_MAX}",
                completions.len()
            )));
        }
        let queue_name = queue.config.name.as_str();
        let mut answers: Vec<Option<Result<Job>>> = Vec::with_capacity(completions.len());
        let mut pending = Vec::with_capacity(completions.len());
        for (index, completion) in completions.into_iter().enumerate() {
            match check(&completion) {
                Ok(offset) => {
                    answers.push(None);
                    pending.push(Pending {
                        index,
                        id: completion.id,
                        offset,
                        attempt: completion.attempt,
                        result: completion.result,
                    });
                }
                Err(error) => answers.push(Some(Err(error))),
            }
        }
        let records = self.settling_jobs(queue, &pending).await?;
        let started: Vec<Option<i64>> = {
            let running = self.jobs.running();
            pending
                .iter()
                .map(|item| running.started_ms(queue_name, item.offset))
                .collect()
        };
        let now = now_ms();
        let mut acks = Vec::with_capacity(pending.len());
        let mut settled = Vec::with_capacity(pending.len());
        for ((item, record), started_ms) in pending.into_iter().zip(records).zip(started) {
            let KeptJob { mut job, stored } = match record {
                Ok(kept) => kept,
                Err(error) => {
                    answers[item.index] = Some(Err(error));
                    continue;
                }
            };
            job.result = item.result.clone();
            job.attempts = item.attempt;
            job.started_ms = started_ms.or(job.started_ms);
            let writes = finalize(&mut job, item.offset, JobStatus::Completed, now, stored);
            acks.push((item.offset, item.attempt, writes));
            settled.push((item, job));
        }
        Ok(Prepared {
            answers,
            acks,
            settled,
            now,
        })
    }

    /// The answers once the acks' commit is decided (`outcomes`: one per settled job).
    fn answer_completions(
        &self,
        queue_name: &str,
        prepared: Prepared,
        outcomes: Vec<Result<()>>,
    ) -> Vec<Result<Job>> {
        let Prepared {
            mut answers,
            settled,
            now,
            ..
        } = prepared;
        let completed: Vec<(Pending, Job)> = settled
            .into_iter()
            .zip(outcomes)
            .filter_map(|((item, job), outcome)| match outcome {
                Ok(()) => Some((item, job)),
                Err(error) => {
                    answers[item.index] = Some(Err(error));
                    None
                }
            })
            .collect();
        self.completed(queue_name, &completed, now);
        for (item, job) in completed {
            answers[item.index] = Some(Ok(job));
        }
        answers
            .into_iter()
            .map(|answer| answer.expect("every completion answered"))
            .collect()
    }

    /// After completions are durable: forget the running attempts, count them, tell
    /// subscribers.
    fn completed(&self, queue_name: &str, completed: &[(Pending, Job)], now: i64) {
        {
            let mut running = self.jobs.running();
            for (item, _) in completed {
                running.remove(queue_name, item.offset);
            }
        }
        self.jobs
            .count_final(queue_name, JobStatus::Completed, completed.len(), now);
        if self.jobs.listening() {
            for (item, job) in completed {
                let mut event = self.event(job, "completed", item.attempt);
                event.result = item.result.clone();
                self.jobs.emit(event);
            }
        }
    }

    /// The jobs being completed: the ones kept at fetch, the rest read in one state-store
    /// read (or from their messages when they have no record).
    async fn settling_jobs(
        &self,
        queue: &Queue,
        pending: &[Pending],
    ) -> Result<Vec<Result<KeptJob>>> {
        let name = &queue.config.name;
        let mut records: Vec<Option<KeptJob>> = {
            let mut running = self.jobs.running();
            pending
                .iter()
                .map(|item| running.take_record(name, item.offset, item.attempt))
                .collect()
        };
        let missing: Vec<usize> = (0..pending.len())
            .filter(|index| records[*index].is_none())
            .collect();
        if missing.is_empty() {
            return Ok(records
                .into_iter()
                .map(|job| Ok(job.expect("kept")))
                .collect());
        }
        let keys: Vec<String> = missing
            .iter()
            .map(|index| store::job_key(name, pending[*index].offset))
            .collect();
        let stored = self.state.get_many(JOBS_TABLE, &keys)?;
        let mut answers: Vec<Option<Result<KeptJob>>> = records.iter().map(|_| None).collect();
        for (index, bytes) in missing.into_iter().zip(stored) {
            let item = &pending[index];
            let job = match bytes {
                Some(bytes) => store::decode_job(name, item.offset, &bytes),
                None => self
                    .read_job(queue, item.offset, false)
                    .await
                    .and_then(|job| job.ok_or_else(|| job_not_found(name, &item.id))),
            };
            // Not known to have no record: finishing it deletes whatever is there.
            answers[index] = Some(job.map(|job| KeptJob { job, stored: true }));
        }
        Ok(records
            .iter_mut()
            .zip(answers)
            .map(|(kept, answer)| match kept.take() {
                Some(job) => Ok(job),
                None => answer.expect("read above"),
            })
            .collect())
    }
}

/// The offset of a completion's job, once its id and result are acceptable.
fn check(completion: &JobCompletion) -> Result<u64> {
    let offset = parse_id(&completion.id)?;
    if let Some(size) = completion
        .result
        .as_ref()
        .map(document_size)
        .filter(|size| *size > JOB_DOCUMENT_BYTES_MAX)
    {
        return Err(EngineError::MessageTooLarge {
            what: "result",
            bytes: size,
            max: JOB_DOCUMENT_BYTES_MAX,
        });
    }
    Ok(offset)
}
