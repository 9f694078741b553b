//! Leasing messages to workers without waiting for the disk.
//!
//! A lease is not durable: after a crash every leased, unfinished message is ready again (it
//! would have been redelivered at lease expiry anyway). What must survive is the attempt
//! count, so that `max_deliver` still stops a message that crashes its workers. The rule that
//! keeps it honest is one line: **a delivery is handed out without waiting only when its
//! attempt is already durably counted**; otherwise its record is committed first. The count
//! on disk may be higher than the deliveries that really happened (a delivery that may have
//! happened counts), never lower.
//!
//! How an attempt gets counted before it happens, so that the common paths never wait:
//! - **First deliveries** are counted by a per-priority *frontier* `L<p>`: every offset of
//!   priority `p` below it counts as delivered once, whether it was or not. The frontier is
//!   raised `FRONTIER_AHEAD` offsets ahead of the deliveries, lazily (with whatever commit
//!   comes next), so workers only wait when they overtake it. At recovery, every unfinished
//!   ready offset below its level's frontier without a record of its own has one attempt: at
//!   most `FRONTIER_AHEAD` per level (plus any a key-shared queue skipped) were not really
//!   delivered, and each loses one of its `max_deliver` deliveries.
//! - **Retries** are counted by the failure that causes them: a nack or an expired lease
//!   writes `D` = attempts + 1 (the next delivery), in the commit that the nack waits for
//!   anyway. Once that commit is durable the offset is *prepaid* and its redelivery writes
//!   nothing. A redelivery that races ahead of that commit, or of a recovered message, writes
//!   its own `D` and waits.
//! - A queue with `max_deliver` 1 promises at most one delivery, so it cannot overcount
//!   messages that were never delivered: its first deliveries are recorded exactly, as runs
//!   (`runs.rs`), and wait for the commit.
//!
//! A message whose count already reached `max_deliver` when it is next due for delivery
//! (possible only after a crash: its last delivery may have happened) is dead-lettered
//! instead.

use std::sync::Arc;

use omnibus_storage::StateWrite;

use super::{keys, ConsumerMode, DeadLetter, Grant, Lease, QueueCore, PRIORITY_LEVELS};

/// How far ahead of the deliveries a frontier is raised (offsets per priority level). It is
/// raised again when half of it is used, and that raise must be durable before the other
/// half is: at 30,000 deliveries a second, 512 offsets last 17 ms, several lazy windows
/// (`LAZY_WINDOW`) plus a commit. 256 left workers waiting on the frontier at that rate.
pub const FRONTIER_AHEAD: u64 = 1024;

/// Per priority level: the frontier durably stored, and the highest one written.
#[derive(Debug, Default)]
pub(super) struct Frontiers {
    durable: [u64; PRIORITY_LEVELS],
    requested: [u64; PRIORITY_LEVELS],
}

/// What one lease call decided.
#[derive(Debug, Default)]
pub struct Leased {
    pub grants: Vec<Grant>,
    pub writes: Vec<StateWrite>,
    /// The grants may be handed out only once `writes` are durable; otherwise `writes` may
    /// be committed lazily.
    pub wait: bool,
    /// Frontiers raised in `writes`: tell [`QueueCore::frontiers_durable`] once they are.
    pub frontiers: Vec<(usize, u64)>,
    /// Messages whose deliveries ran out before a restart, parked: the caller dead-letters
    /// them, then finishes them (`QueueCore::finish_parked`) in the same commit.
    pub exhausted: Vec<DeadLetter>,
}

impl QueueCore {
    /// Leases up to `max` ready offsets to `worker` (highest priority first, then oldest),
    /// bounded by the worker's prefetch. Each lease increments the offset's attempt count.
    pub fn lease(&mut self, worker: &str, max: usize, now_ms: i64) -> Leased {
        let mut leased = Leased::default();
        if self.paused || !self.claim_exclusive(worker, now_ms) {
            return leased;
        }
        let held = self.unacked_by_worker.get(worker).copied().unwrap_or(0);
        let room = self
            .policy
            .max_unacked_per_worker
            .saturating_sub(held)
            .min(max);
        // One shared name for all of this worker's leases: taken from its entry when it
        // holds some already, so a steady consumer allocates no name per lease.
        let worker_name: Arc<str> = self
            .unacked_by_worker
            .get_key_value(worker)
            .map_or_else(|| Arc::from(worker), |(name, _)| name.clone());
        let exact_first_deliveries = self.policy.max_deliver <= 1;
        let mut first_deliveries = Vec::new();
        let mut raised = [false; PRIORITY_LEVELS];
        for priority in (0..PRIORITY_LEVELS).rev() {
            // Exhausted messages do not use up room: keep taking until it is used or the
            // level is empty.
            while leased.grants.len() < room {
                let wanted = room - leased.grants.len();
                let offsets = if self.policy.mode == ConsumerMode::KeyShared {
                    self.pick_key_shared(priority, worker, wanted)
                } else {
                    self.ready[priority].pop_first(wanted)
                };
                if offsets.is_empty() {
                    break;
                }
                for offset in offsets {
                    let (count, last_error) =
                        self.attempts.get(&offset).cloned().unwrap_or_default();
                    if count >= self.policy.max_deliver {
                        self.exhaust(offset, count, last_error, &mut leased);
                        continue;
                    }
                    self.bytes_granted(offset);
                    let attempt = count + 1;
                    self.attempts.insert(offset, (attempt, last_error.clone()));
                    if attempt == 1 {
                        if exact_first_deliveries {
                            first_deliveries.push(offset);
                            leased.wait = true;
                        } else {
                            self.runs_cover(offset);
                            raised[priority] |= self.cover_first_delivery(priority, offset);
                            if offset >= self.frontiers.durable[priority] {
                                leased.wait = true;
                            }
                        }
                    } else if !self.prepaid.remove(&offset) {
                        // Not counted yet (a recovered message, or its failure's commit is
                        // still in flight): its own record, before it is handed out.
                        self.stop_covering(offset);
                        leased.writes.push(StateWrite::PutMax {
                            table: keys::TABLE,
                            key: keys::delivery(&self.name, offset),
                            value: keys::encode_delivery(attempt, &last_error),
                        });
                        leased.wait = true;
                    }
                    let deadline_ms = now_ms + self.policy.lease_ms as i64;
                    self.leases.insert(
                        offset,
                        Lease {
                            attempt,
                            deadline_ms,
                            worker: worker_name.clone(),
                        },
                    );
                    self.lease_deadlines.insert((deadline_ms, offset));
                    leased.grants.push(Grant {
                        offset,
                        attempt,
                        deadline_ms,
                    });
                }
            }
        }
        for (priority, raised) in raised.into_iter().enumerate() {
            if raised {
                let frontier = self.frontiers.requested[priority];
                leased.writes.push(StateWrite::PutMax {
                    table: keys::TABLE,
                    key: keys::frontier(&self.name, priority),
                    value: frontier.to_be_bytes().to_vec(),
                });
                leased.frontiers.push((priority, frontier));
            }
        }
        leased
            .writes
            .extend(self.record_first_deliveries(&mut first_deliveries));
        if !leased.grants.is_empty() {
            *self.unacked_by_worker.entry(worker_name).or_insert(0) += leased.grants.len();
        }
        leased
    }

    /// [`QueueCore::lease`] for callers that commit every write before handing out.
    pub fn deliver(
        &mut self,
        worker: &str,
        max: usize,
        now_ms: i64,
    ) -> (Vec<Grant>, Vec<StateWrite>) {
        let leased = self.lease(worker, max, now_ms);
        (leased.grants, leased.writes)
    }

    /// Raises the level's frontier when a first delivery comes within half of
    /// [`FRONTIER_AHEAD`] of it; whether it was raised.
    fn cover_first_delivery(&mut self, priority: usize, offset: u64) -> bool {
        let requested = &mut self.frontiers.requested[priority];
        if offset + 1 + FRONTIER_AHEAD / 2 <= *requested {
            return false;
        }
        *requested = offset + 1 + FRONTIER_AHEAD;
        true
    }

    /// A message popped for delivery whose deliveries were used up (its last one may have
    /// happened before a restart): finished and dead-lettered instead.
    fn exhaust(&mut self, offset: u64, attempts: u32, last_error: String, leased: &mut Leased) {
        if self.policy.mode == ConsumerMode::KeyShared {
            // `pick_key_shared` made this offset hold its key.
            self.release_key(offset);
        }
        self.bytes_finished_unread(offset);
        self.park(offset);
        leased.exhausted.push(DeadLetter {
            offset,
            reason: format!(
                "max deliveries ({}) reached: the last may have been in progress when the broker stopped",
                self.policy.max_deliver
            ),
            attempts,
            last_error,
        });
        leased.wait = true;
    }

    /// The frontiers written by a lease are durable now.
    pub fn frontiers_durable(&mut self, frontiers: &[(usize, u64)]) {
        for &(priority, frontier) in frontiers {
            let durable = &mut self.frontiers.durable[priority];
            *durable = (*durable).max(frontier);
        }
    }

    /// Retries whose records (counting their next delivery) were written since the last
    /// call: pass them to [`QueueCore::prepaid_durable`] once the commit is durable.
    pub fn take_prepay_pending(&mut self) -> Vec<(u64, u32)> {
        std::mem::take(&mut self.prepay_pending)
    }

    /// The records of these retries are durable: each one whose next delivery is still the
    /// counted one is handed out without a commit of its own.
    pub fn prepaid_durable(&mut self, retries: &[(u64, u32)]) {
        for &(offset, counted) in retries {
            let waiting = !self.leases.contains_key(&offset) && self.is_unfinished(offset);
            if waiting && self.attempts.get(&offset).map(|(n, _)| n + 1) == Some(counted) {
                self.prepaid.insert(offset);
            }
        }
    }

    /// At recovery, after [`QueueCore::recover`] and [`QueueCore::recover_runs`]: the stored
    /// frontiers, and one attempt for every ready offset below its level's frontier that has
    /// no record of its own (it may have been delivered).
    pub fn recover_frontiers(&mut self, frontiers: &[(usize, u64)]) {
        for &(priority, frontier) in frontiers {
            if priority >= PRIORITY_LEVELS {
                continue;
            }
            self.frontiers.durable[priority] = frontier;
            self.frontiers.requested[priority] = frontier;
            let below: Vec<(u64, u64)> = self.ready[priority]
                .iter_ranges()
                .take_while(|(start, _)| *start < frontier)
                .collect();
            for (start, end) in below {
                for offset in start..end.min(frontier) {
                    if let std::collections::hash_map::Entry::Vacant(entry) =
                        self.attempts.entry(offset)
                    {
                        entry.insert((1, String::new()));
                        self.runs_cover(offset);
                    }
                }
            }
        }
    }
}
