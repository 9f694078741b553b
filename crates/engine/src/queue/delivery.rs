//! Handing messages out: leasing (waiting for the disk only when an attempt is not counted
//! yet, `core/leases.rs`), acking a batch and leasing the next in one commit, reading the
//! leased records and turning back the ones not due or expired.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use omnibus_storage::StateWrite;
use omnibus_types::Record;

use super::commit::{copy_commit_error, AfterCommit, Durable};
use super::core::{Grant, Leased};
use super::rates::RateKind;
use super::runtime::{ack_all, header_i64, Queue, DUE_HEADER, EXPIRES_HEADER};
use crate::engine::{now_ms, Engine};
use crate::error::{EngineError, Result};

/// One message handed to a worker.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// The queue's [`Queue::incarnation`] it came from.
    pub incarnation: u64,
    pub offset: u64,
    pub attempt: u32,
    pub lease_deadline_ms: i64,
    pub record: Record,
}

/// A snapshot of a queue's readiness, taken before a receive that leases without waiting
/// (`wait_ms` 0). When that receive comes back empty, [`ReadySignal::changed`] waits until
/// the queue may have ready messages again: an enqueue, a nack with requeue, a timer coming
/// due, a lease expiring, a resume, or the queue deleted or replaced since the snapshot.
/// It leases nothing, so dropping the wait (a cancelled consumer) loses no lease — which a
/// long-polling receive cut short could. It is the long poll's own wake-up source.
pub struct ReadySignal {
    queue: Arc<Queue>,
    seen: u64,
}

impl ReadySignal {
    /// Returns at once when the queue changed since the snapshot, otherwise at its next
    /// change. Cancel-safe.
    pub async fn changed(self) {
        loop {
            let notified = self.queue.available.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.queue.ready_generation.load(Ordering::Acquire) != self.seen {
                return;
            }
            notified.await;
        }
    }

    /// The [`Queue::incarnation`] the snapshot is of.
    pub fn incarnation(&self) -> u64 {
        self.queue.incarnation
    }
}

/// One queue's deletion, awaitable: what a consumer bound to that queue (not to its name)
/// waits on beside anything else, such as prefetch credit.
pub struct QueueRemoval {
    queue: Arc<Queue>,
}

impl QueueRemoval {
    /// Returns once the queue is deleted (at once if it already is). Cancel-safe.
    pub async fn removed(&self) {
        let notified = self.queue.removed_notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if self.queue.removed.load(Ordering::Acquire) {
            return;
        }
        notified.await;
    }

    /// The [`Queue::incarnation`] it watches.
    pub fn incarnation(&self) -> u64 {
        self.queue.incarnation
    }
}

impl Engine {
    /// The deletion of the queue now named `queue`.
    pub fn queue_removal(&self, queue: &str) -> Result<QueueRemoval> {
        Ok(QueueRemoval {
            queue: self.queue(queue)?,
        })
    }

    /// Snapshots `queue`'s readiness; take it *before* the receive it guards (see
    /// [`ReadySignal`]).
    pub fn ready_signal(&self, queue: &str) -> Result<ReadySignal> {
        let queue = self.queue(queue)?;
        let seen = queue.ready_generation.load(Ordering::Acquire);
        Ok(ReadySignal { queue, seen })
    }

    /// How many of `queue`'s messages are ready now.
    pub fn queue_ready(&self, queue: &str) -> Result<u64> {
        Ok(self.queue(queue)?.lock().counts().ready)
    }

    /// The [`Queue::incarnation`] of the queue now under this name.
    pub fn queue_incarnation(&self, queue: &str) -> Result<u64> {
        Ok(self.queue(queue)?.incarnation)
    }
}

impl Queue {
    /// Leases up to `max` messages to `worker`, waiting up to `wait_ms` for one.
    pub async fn receive(
        self: &Arc<Self>,
        worker: &str,
        max: usize,
        wait_ms: u64,
    ) -> Result<Vec<Delivery>> {
        let deadline = tokio::time::Instant::now() + Duration::from_millis(wait_ms);
        loop {
            let notified = self.available.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let deliveries = self.receive_now(worker, max).await?;
            if !deliveries.is_empty() || tokio::time::Instant::now() >= deadline {
                return Ok(deliveries);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Ok(Vec::new());
            }
        }
    }

    async fn receive_now(self: &Arc<Self>, worker: &str, max: usize) -> Result<Vec<Delivery>> {
        let now = now_ms();
        let leased = self.lock_for_change()?.lease(worker, max, now);
        if leased.grants.is_empty() && leased.exhausted.is_empty() {
            return Ok(Vec::new());
        }
        let grants = self.settle_lease(leased, Vec::new(), false, None).await?;
        if grants.is_empty() {
            return Ok(Vec::new());
        }
        self.hand_out(grants, now).await
    }

    /// Commits what a lease wrote, with `writes` of the caller before it: waited for when the
    /// grants are not counted yet or a dead letter goes with it (or `wait`), otherwise sent
    /// lazily (`core/leases.rs`). Answers the grants, ready to hand out.
    async fn settle_lease(
        self: &Arc<Self>,
        leased: Leased,
        mut writes: Vec<StateWrite>,
        wait: bool,
        on_durable: Option<Box<dyn FnOnce() + Send>>,
    ) -> Result<Vec<Grant>> {
        let Leased {
            grants,
            writes: lease_writes,
            wait: lease_waits,
            frontiers,
            exhausted,
        } = leased;
        // Only a lease due before the timer task's planned wake-up needs it woken.
        let wake_at = self.timer_wake_at_ms.load(Ordering::Acquire);
        if grants.iter().any(|grant| grant.deadline_ms < wake_at) {
            self.timer_changed.notify_one();
        }
        writes.extend(lease_writes);
        let durable = Durable {
            frontiers,
            prepaid: Vec::new(),
        };
        if !exhausted.is_empty() {
            self.count(RateKind::Failed, exhausted.len() as u64);
            let after = self
                .dead_letter_all(exhausted)
                .await
                .map_err(|error| self.uncommitted(error))?
                .append_to(&mut writes);
            self.commit(writes).await?;
            self.note_durable(&durable);
            after.run();
        } else if wait || lease_waits {
            self.commit(writes).await?;
            self.note_durable(&durable);
        } else {
            return self
                .commit_lazily(writes, durable, on_durable)
                .await
                .map(|()| grants);
        }
        if let Some(on_durable) = on_durable {
            on_durable();
        }
        Ok(grants)
    }

    /// Acks several deliveries (as [`Queue::ack_many`]) and leases up to `max` ready messages
    /// to `worker` under the same lock, committing both in one request: a worker that
    /// finishes a batch and asks for the next costs one commit, not two. Does not wait for
    /// messages: the deliveries may be empty.
    /// With `batched` completions the acks are answered without waiting for their commit
    /// (unless the lease needs it) and `on_durable` runs once it is durable.
    pub(crate) async fn ack_many_and_receive(
        self: &Arc<Self>,
        acks: Vec<(u64, u32, Vec<StateWrite>)>,
        worker: &str,
        max: usize,
        on_durable: Option<Box<dyn FnOnce() + Send>>,
    ) -> (Vec<Result<()>>, Result<Vec<Delivery>>) {
        let now = now_ms();
        let (mut answers, writes, leased) = {
            let mut core = match self.lock_for_change() {
                Ok(core) => core,
                Err(error) => {
                    let answers = acks
                        .iter()
                        .map(|_| Err(copy_commit_error(&error)))
                        .collect();
                    return (answers, Err(error));
                }
            };
            let (answers, writes) = ack_all(&mut core, acks);
            // Acks first: the prefetch slots they free count for this delivery.
            let leased = core.lease(worker, max, now);
            (answers, writes, leased)
        };
        let fsync = self.config.completions == super::Completions::Fsync;
        let acked = answers.iter().filter(|answer| answer.is_ok()).count();
        let settled = self
            .settle_lease(leased, writes, fsync && acked > 0, on_durable)
            .await;
        if let Err(error) = &settled {
            for answer in answers.iter_mut().filter(|answer| answer.is_ok()) {
                *answer = Err(copy_commit_error(error));
            }
        }
        let acked = answers.iter().filter(|answer| answer.is_ok()).count();
        self.count(RateKind::Completed, acked as u64);
        match settled {
            Ok(grants) if grants.is_empty() => (answers, Ok(Vec::new())),
            Ok(grants) => (answers, self.hand_out(grants, now).await),
            Err(error) => (answers, Err(error)),
        }
    }

    /// Reads the records of committed grants and hands them out; a message found not yet due
    /// or expired goes back to waiting or is finished instead.
    pub(super) async fn hand_out(&self, grants: Vec<Grant>, now: i64) -> Result<Vec<Delivery>> {
        let records = self.read_records(&grants).await?;
        let offsets: Vec<u64> = grants.iter().map(|g| g.offset).collect();
        self.settle_sizes(&offsets, &records);
        let mut deliveries = Vec::with_capacity(grants.len());
        for (grant, record) in grants.into_iter().zip(records) {
            let due = header_i64(&record, DUE_HEADER);
            if due.is_some_and(|due| due > now) {
                // Not yet due (its timer was lost in a crash): back to waiting.
                let _timer_io = self.timer_io.lock().await;
                let writes =
                    self.lock_for_change()?
                        .defer(grant.offset, grant.attempt, due.unwrap_or(now));
                self.commit(writes).await?;
                self.timer_changed.notify_one();
                continue;
            }
            let expires = header_i64(&record, EXPIRES_HEADER);
            if expires.is_some_and(|expires| expires <= now) {
                let result = self.lock_for_change()?.term(
                    grant.offset,
                    grant.attempt,
                    super::expiry::EXPIRED_REASON,
                );
                if let Ok((mut writes, letter)) = result {
                    let dropped = !self.config.dead_letter_expired;
                    let mut after = AfterCommit::default();
                    if dropped {
                        writes.extend(self.lock().finish_parked(&[grant.offset]));
                    } else {
                        after = self
                            .dead_letter_all(vec![letter])
                            .await
                            .map_err(|error| self.uncommitted(error))?
                            .append_to(&mut writes);
                    }
                    self.commit(writes).await?;
                    after.run();
                    if dropped {
                        self.count(RateKind::Dropped, 1);
                    }
                }
                continue;
            }
            deliveries.push(Delivery {
                incarnation: self.incarnation,
                offset: grant.offset,
                attempt: grant.attempt,
                lease_deadline_ms: grant.deadline_ms,
                record,
            });
        }
        self.count(RateKind::Delivered, deliveries.len() as u64);
        Ok(deliveries)
    }

    /// Reads the records of `grants` (sorted or not) from the log, reading ahead for the next
    /// deliveries; see `reader.rs`.
    pub(super) async fn read_records(&self, grants: &[Grant]) -> Result<Vec<Record>> {
        let reader = self.reader.clone();
        let offsets: Vec<u64> = grants.iter().map(|g| g.offset).collect();
        if let Some(records) = reader.cached(&offsets) {
            return Ok(records);
        }
        tokio::task::spawn_blocking(move || reader.read_ahead(&offsets))
            .await
            .map_err(|e| EngineError::Internal(e.to_string()))?
    }
}
