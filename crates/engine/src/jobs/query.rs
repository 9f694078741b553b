//! Reading jobs in bulk: listing by status with paging, per-queue stats, and the retention
//! sweep of finished jobs.

use std::sync::Arc;

use bytes::Bytes;
use omnibus_storage::StateWrite;

use super::model::{JobPage, JobStats, JobStatus};
use super::store::{self, load_job, FINAL_TABLE, JOBS_TABLE};
use super::{parse_id, FINISHED_JOBS_KEPT, FINISHED_JOB_RETENTION_MS};

/// Finished jobs deleted per queue and status in one retention pass (the rest wait for the
/// next pass), so one pass is one bounded transaction.
const SWEEP_JOBS_MAX: usize = 5_000;
/// How often retention looks for jobs past the retention period in a queue where nothing
/// finished since its last look.
const SWEEP_AGE_CHECK_MS: i64 = 60_000;
use crate::engine::{now_ms, Engine};
use crate::error::Result;
use crate::streams::registry::off_the_runtime;

impl Engine {
    /// Jobs of a queue, optionally of one status, in id order; `after` is the previous page's
    /// `next`. Payloads are not included (fetch a job by id for it).
    pub async fn list_jobs(
        &self,
        queue_name: &str,
        status: Option<JobStatus>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<JobPage> {
        let queue = self.queue(queue_name)?;
        // A failed queue's memory may be ahead of its disk (see `read_job`).
        queue.check_healthy()?;
        let limit = limit.clamp(1, 1_000);
        let after = after.map(parse_id).transpose()?;
        let ids: Vec<u64> = match status {
            Some(final_status) if final_status.is_final() => {
                self.final_ids(queue_name, final_status, after, limit)?
            }
            Some(JobStatus::Waiting) => queue.lock().ready_after(after, limit),
            Some(JobStatus::Active) => {
                let all = queue.lock().leased_offsets();
                all.into_iter()
                    .filter(|o| after.is_none_or(|a| *o > a))
                    .take(limit)
                    .collect()
            }
            Some(waiting) => {
                let core = queue.lock();
                let offsets = core.waiting_offsets();
                offsets
                    .into_iter()
                    .filter(|o| after.is_none_or(|a| *o > a))
                    .filter(|o| (core.attempts_of(*o).0 > 0) == (waiting == JobStatus::Failed))
                    .take(limit)
                    .collect()
            }
            None => {
                // Every job is either unfinished (in the queue, with or without a record) or
                // finished (in `job_final`, by status): merge the first `limit` of each.
                let mut ids: std::collections::BTreeSet<u64> = queue
                    .lock()
                    .unfinished_after(after, limit)
                    .into_iter()
                    .collect();
                for final_status in store::FINAL_STATUSES {
                    ids.extend(self.final_ids(queue_name, final_status, after, limit)?);
                }
                ids.into_iter().take(limit).collect()
            }
        };
        let mut jobs = Vec::with_capacity(ids.len());
        for id in &ids {
            if let Some(mut job) = self.read_job(&queue, *id, false).await? {
                job.payload = Bytes::new();
                jobs.push(job);
            }
        }
        let next = (ids.len() == limit)
            .then(|| ids.last().map(u64::to_string))
            .flatten();
        Ok(JobPage { jobs, next })
    }

    /// Ids of jobs finished with `status`, after `after`, ascending, at most `limit`.
    fn final_ids(
        &self,
        queue_name: &str,
        status: JobStatus,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<u64>> {
        let prefix = store::final_prefix(queue_name, status);
        let start = match after {
            Some(a) => format!("{prefix}{a:020}\u{0}"),
            None => prefix.clone(),
        };
        Ok(self
            .state
            .scan_range(FINAL_TABLE, &start, &format!("{prefix}\u{7f}"), limit)?
            .iter()
            .filter_map(|(key, _)| store::id_of_key(key))
            .collect())
    }

    /// Counts by status and the age of the oldest waiting job. It reads the state store and
    /// the log, off the async runtime.
    pub async fn job_stats(self: &Arc<Self>, queue_name: &str) -> Result<JobStats> {
        let engine = self.clone();
        let queue_name = queue_name.to_string();
        off_the_runtime(move || engine.job_stats_blocking(&queue_name)).await
    }

    fn job_stats_blocking(&self, queue_name: &str) -> Result<JobStats> {
        let queue = self.queue(queue_name)?;
        self.load_final_counts(queue_name)?;
        let (counts, retrying, oldest) = {
            let core = queue.lock();
            let oldest = core.ready_after(None, 1).first().copied();
            (core.counts(), core.retrying_count(), oldest)
        };
        let now = now_ms();
        // A job's creation time is its message's timestamp.
        let oldest_waiting_ms = match oldest {
            Some(id) => queue
                .records_blocking(&[id])?
                .first()
                .map(|record| now - record.timestamp_ms),
            None => None,
        };
        let finals = self.jobs.counts();
        let mine = finals.get(queue_name);
        Ok(JobStats {
            waiting: counts.ready,
            delayed: counts.delayed.saturating_sub(retrying),
            active: counts.leased,
            completed: mine.map_or(0, |c| c.completed),
            failed: retrying,
            dead: mine.map_or(0, |c| c.dead),
            cancelled: mine.map_or(0, |c| c.cancelled),
            oldest_waiting_ms,
            dead_letter_depth: self.queue_info(queue_name)?.dead_letter_depth,
            completed_last_minute: mine.map_or(0, |c| {
                c.recent_completions
                    .iter()
                    .filter(|t| **t >= now - 60_000)
                    .count() as u64
            }),
        })
    }

    /// Counts finished jobs once per queue per process (a scan of the final-status index).
    /// Holds the counts' lock meanwhile, so no finish is missed (one committed while the scan
    /// runs may be counted twice: by the scan and by its own count).
    pub(crate) fn load_final_counts(&self, queue_name: &str) -> Result<()> {
        let mut all = self.jobs.counts();
        if all.contains_key(queue_name) {
            return Ok(());
        }
        let mut counts = store::FinalCounts::default();
        for status in store::FINAL_STATUSES {
            let n = self
                .state
                .scan_prefix(FINAL_TABLE, &store::final_prefix(queue_name, status))?
                .len() as u64;
            match status {
                JobStatus::Completed => counts.completed = n,
                JobStatus::Dead => counts.dead = n,
                _ => counts.cancelled = n,
            }
        }
        all.insert(queue_name.to_string(), counts);
        Ok(())
    }

    /// Retention of finished jobs: per queue and final status, keeps the newest
    /// [`FINISHED_JOBS_KEPT`] and deletes those finished more than
    /// [`FINISHED_JOB_RETENTION_MS`] ago.
    pub(crate) fn sweep_jobs(&self) -> Result<()> {
        self.sweep_finished_jobs(FINISHED_JOBS_KEPT, now_ms())
    }

    /// [`Engine::sweep_jobs`] keeping `kept` per queue and status, as of `now`.
    pub(crate) fn sweep_finished_jobs(&self, kept: u64, now: i64) -> Result<()> {
        let queues: Vec<String> = self
            .queues
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .cloned()
            .collect();
        for queue in queues {
            for status in store::FINAL_STATUSES {
                let start = store::final_prefix(&queue, status);
                let end = format!("{start}\u{7f}");
                // Nothing finished since the last pass (same newest key): nothing to count;
                // the age check still runs once a minute.
                let newest = self.state.key_from_end(FINAL_TABLE, &start, &end, 0)?;
                let Some(newest) = newest else { continue };
                {
                    let mut marks = self
                        .jobs
                        .sweep_marks
                        .lock()
                        .unwrap_or_else(|p| p.into_inner());
                    let mark = marks.entry(start.clone()).or_default();
                    if mark.newest == newest && now - mark.checked_ms < SWEEP_AGE_CHECK_MS {
                        continue;
                    }
                    mark.newest = newest;
                    mark.checked_ms = now;
                }
                // Over the count: every key older than the oldest of the newest `kept`, found
                // by walking `kept` keys back from the end; no record is read (a busy queue
                // finishes tens of thousands of jobs between passes, and reading — or even
                // counting — them all was a tenth of the broker's CPU).
                let oldest_kept = match kept {
                    0 => Some(end.clone()),
                    kept => {
                        self.state
                            .key_from_end(FINAL_TABLE, &start, &end, kept as usize - 1)?
                    }
                };
                let mut doomed = match oldest_kept {
                    Some(oldest_kept) => {
                        self.state
                            .scan_keys(FINAL_TABLE, &start, &oldest_kept, SWEEP_JOBS_MAX)?
                    }
                    None => Vec::new(),
                };
                if doomed.is_empty() {
                    // Too old: oldest first (ids grow with time), stopping at the first one
                    // still within the retention period.
                    let entries = self.state.scan_range(FINAL_TABLE, &start, &end, 256)?;
                    for (key, value) in entries {
                        let Some(id) = store::id_of_key(&key) else {
                            continue;
                        };
                        // An empty value is the older layout: the record is in `jobs`.
                        let record = match value.is_empty() {
                            true => load_job(&self.state, &queue, id)?,
                            false => Some(store::decode_job(&queue, id, &value)?),
                        };
                        let too_old = record
                            .and_then(|job| job.finished_ms)
                            .is_some_and(|finished| now - finished > FINISHED_JOB_RETENTION_MS);
                        if !too_old {
                            break;
                        }
                        doomed.push(key);
                    }
                }
                if doomed.len() >= SWEEP_JOBS_MAX {
                    // More left than one pass deletes: look again next pass.
                    self.jobs
                        .sweep_marks
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(&start);
                }
                let mut writes = Vec::with_capacity(doomed.len() * 2);
                for key in doomed {
                    let Some(id) = store::id_of_key(&key) else {
                        continue;
                    };
                    writes.push(StateWrite::Delete {
                        table: JOBS_TABLE,
                        key: store::job_key(&queue, id),
                    });
                    writes.push(StateWrite::Delete {
                        table: FINAL_TABLE,
                        key,
                    });
                }
                if !writes.is_empty() {
                    self.state.write(&writes)?;
                }
            }
        }
        Ok(())
    }
}
