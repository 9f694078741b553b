//! Committing a consumer's changes — waited for, or lazily — and what a failed commit does.
//!
//! A consumer's state machine is a queue's (`queue/core`), so it makes the same promises the
//! same way (docs/delivery.md): a delivery whose attempt is already durably counted (below the
//! first-delivery frontier, or a prepaid retry) is handed out at once and its writes (a
//! frontier raised ahead, a timer fired) ride the next lazy batch; an ack without a reply
//! subject (a plain JetStream ack) is answered once it is in the batch. The batching is the
//! queues' own (`queue::LazyCommits`: one commit per [`LAZY_WINDOW`], at most
//! `LAZY_COMMITS_MAX` calls outstanding, the caller waits beyond that). Everything else —
//! an ack whose caller waits for it (a double ack), a nack, a term, a delivery not counted
//! yet, an `AckNone` delivery's settlement — is committed before the call returns.
//!
//! Memory runs ahead of the disk between a change and its commit. If a commit fails the
//! change cannot be taken back, so the consumer fails, as a queue does (`queue/commit.rs`):
//! every later call gets `ConsumerFailed` (`storage_failed`) and waiters are woken, until a
//! restart reloads it from what is durable. (Queues are also reloaded by the maintenance pass
//! once an I/O failure heals; consumers are not yet.)
//!
//! The ack floor a commit carries is remembered once the commit is durable
//! (`Consumer::durable_floor`): a consumer that removes what it acknowledged (work-queue
//! retention) removes records only below durable floors (`removal.rs`), so a crash never
//! loses a record whose ack was still in a lazy batch — it is delivered again.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use omnibus_storage::{StateWrite, StorageError};

use super::ordered::Ticket;
use super::Consumer;
use crate::error::{EngineError, Result};
use crate::queue::{keys, Durable, LAZY_WINDOW};

impl Consumer {
    /// The error every call of a failed consumer gets.
    pub(crate) fn check_healthy(&self) -> Result<()> {
        match self.failure.get() {
            Some(reason) => Err(EngineError::ConsumerFailed {
                stream: self.stored.spec.stream.clone(),
                consumer: self.stored.spec.name.clone(),
                reason: reason.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Refuses all further work after a failed commit, and wakes waiting readers so they see
    /// the error instead of waiting out their time.
    fn poison(&self, reason: String) {
        if self.failure.set(reason).is_err() {
            return; // already failed: logged and woken then
        }
        tracing::error!(
            stream = %self.stored.spec.stream,
            consumer = %self.stored.spec.name,
            "consumer refuses work after a failed state commit, until the broker restarts: {}",
            self.failure.get().map(String::as_str).unwrap_or_default()
        );
        self.changed.notify_waiters();
    }

    /// Commits `writes` and waits until they are durable. A failure fails the consumer (see
    /// the module doc).
    pub(crate) async fn commit(&self, writes: Vec<StateWrite>, durable: Durable) -> Result<()> {
        self.check_healthy()?;
        let floor = self.floor_written(&writes);
        self.commit_writes(writes).await?;
        self.note_durable(&durable, floor);
        Ok(())
    }

    async fn commit_writes(&self, writes: Vec<StateWrite>) -> Result<()> {
        if writes.is_empty() {
            return Ok(());
        }
        if let Err(error) = self.state_store.commit(writes).await {
            self.poison(failure_reason(error));
            return self.check_healthy();
        }
        Ok(())
    }

    /// Waits until the writes behind `ticket`, pushed to the ordered outbox under the
    /// consumer's lock with the change they record (`ordered.rs`), are durable, then notes
    /// what they made safe to rely on. A failure fails the consumer.
    pub(crate) async fn commit_ordered(
        &self,
        ticket: Option<Ticket>,
        durable: Durable,
        floor: u64,
    ) -> Result<()> {
        self.check_healthy()?;
        if let Some(ticket) = ticket {
            if let Err(error) = self.ordered.wait(ticket, &self.state_store).await {
                self.poison(failure_reason(error));
                return self.check_healthy();
            }
        }
        self.note_durable(&durable, floor);
        Ok(())
    }

    /// [`Consumer::commit`] for a lazy batch, whose floors its calls note themselves.
    async fn commit_carrying_no_floor(
        &self,
        writes: Vec<StateWrite>,
        durable: Durable,
    ) -> Result<()> {
        self.check_healthy()?;
        self.commit_writes(writes).await?;
        self.note_durable(&durable, 0);
        Ok(())
    }

    /// The ack floor `writes` store (0 if they do not move it): the floor a restart finds once
    /// they are durable. Taken from the writes themselves, not from memory, whose floor may
    /// already count acks still waiting in a lazy batch.
    pub(crate) fn floor_written(&self, writes: &[StateWrite]) -> u64 {
        let key = keys::floor(&self.core_name);
        writes
            .iter()
            .filter_map(|write| match write {
                StateWrite::PutMax { key: k, value, .. }
                | StateWrite::Put { key: k, value, .. }
                    if *k == key =>
                {
                    value.as_slice().try_into().ok().map(u64::from_be_bytes)
                }
                _ => None,
            })
            .max()
            .unwrap_or(0)
    }

    /// Tells the state machine what a durable commit made safe to rely on.
    fn note_durable(&self, durable: &Durable, floor: u64) {
        let before = self.durable_floor.fetch_max(floor, Ordering::AcqRel);
        if floor > before {
            self.schedule_removal();
        }
        if durable.frontiers.is_empty() && durable.prepaid.is_empty() {
            return;
        }
        let mut state = self.lock();
        state.core.frontiers_durable(&durable.frontiers);
        state.core.prepaid_durable(&durable.prepaid);
    }

    /// Commits `writes` without the caller waiting for them to be durable: they join the
    /// consumer's lazy batch, sent [`LAZY_WINDOW`] after its first writes. Waits only for room
    /// among the outstanding lazy calls.
    pub(crate) async fn commit_lazily(
        self: &Arc<Self>,
        writes: Vec<StateWrite>,
        durable: Durable,
    ) -> Result<()> {
        self.check_healthy()?;
        if writes.is_empty() {
            self.note_durable(&durable, 0);
            return Ok(());
        }
        let floor = self.floor_written(&writes);
        // Weak: the batch is owned by the consumer itself.
        let consumer = Arc::downgrade(self);
        let floor_durable: Box<dyn FnOnce() + Send> = Box::new(move || {
            if let Some(consumer) = Weak::upgrade(&consumer) {
                if consumer.durable_floor.fetch_max(floor, Ordering::AcqRel) < floor {
                    consumer.schedule_removal();
                }
            }
        });
        if !self.lazy.add(writes, durable, Some(floor_durable)).await? {
            return Ok(());
        }
        let consumer = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(LAZY_WINDOW).await;
            let mut batch = consumer.lazy.take();
            let writes = std::mem::take(&mut batch.writes);
            let durable = std::mem::take(&mut batch.durable);
            // A failure fails the consumer inside `commit`. The floors the batch carries are
            // noted by its calls' own `on_durable`.
            if consumer
                .commit_carrying_no_floor(writes, durable)
                .await
                .is_ok()
            {
                for on_durable in std::mem::take(&mut batch.on_durable) {
                    on_durable();
                }
            }
            // Dropping the batch releases its calls' permits.
        });
        Ok(())
    }

    /// A consumer that removes what it acknowledged: its durable floor rose, so the stream
    /// may remove records (`removal.rs`).
    pub(crate) fn schedule_removal(&self) {
        if let Some(group) = self.removal.get() {
            group.schedule();
        }
    }

    /// Waits (at most `timeout`) until every lazy commit has been answered; for a graceful
    /// shutdown. Whether they all were.
    pub(crate) async fn flush(&self, timeout: std::time::Duration) -> bool {
        self.lazy.flush(timeout).await
    }
}

/// Why a commit failed, as a consumer's failure reads it.
pub(crate) fn failure_reason(error: StorageError) -> String {
    // The committer's error already reads "state store error: ...".
    match error {
        StorageError::State(message) => message,
        other => other.to_string(),
    }
}
