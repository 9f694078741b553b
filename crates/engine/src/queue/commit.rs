//! Committing a queue's changes, and what a queue does when a commit fails.
//!
//! Memory runs ahead of the disk between a change and its commit. If the commit fails, the
//! change cannot be taken back (the core does not keep undo records, and other changes may
//! have built on it), so the queue is poisoned instead, as a partition is after a failed
//! fsync: every later change is refused with `storage_failed`, waiters are woken with that
//! error, the queue's info carries the reason, and the queue is rebuilt from what is durable:
//! by a restart, or — when the failure was an I/O error of the state store or a full disk under
//! the dead-letter stream, and that has healed — by the maintenance pass, which reloads it
//! (`recovery.rs`). The same holds when a step between a change and its commit fails (reading or
//! appending dead letters).
//!
//! Some commits are answered before they are durable: leases whose attempts are already
//! counted (`core/leases.rs`) and acks of a queue with `batched` completions. They are
//! collected per queue for [`LAZY_WINDOW`] and sent to the group committer as one request
//! ([`Queue::commit_lazily`]), at most [`LAZY_COMMITS_MAX`] calls per queue outstanding
//! (beyond that the caller waits, so memory stays bounded), and a graceful shutdown waits for
//! them ([`Queue::flush`]). If one fails, the
//! queue is poisoned exactly as when a waited-for commit fails.
//!
//! A reload must read a disk that no commit of the failed instance will still change, so
//! commits pass a gate: each one is counted from before it is sent to the committer until it
//! is answered, and none starts once the queue has failed. Lock order: `core`, then
//! `commits_in_flight`.

use std::sync::{Arc, MutexGuard};

use omnibus_storage::{StateWrite, StorageError};

use super::core::QueueCore;
use super::runtime::Queue;
use super::{keys, QueueDurability};
use crate::error::{EngineError, Result};

/// What the dead-letter listener wants done with the queue's own commit: its `writes` go in
/// the same transaction as the queue's (after them), and `on_commit` runs once they are
/// durable — so a job is never reported dead before its record says so.
#[derive(Default)]
pub struct DeadLetterRecords {
    pub writes: Vec<StateWrite>,
    pub on_commit: Option<Box<dyn FnOnce() + Send>>,
}

impl DeadLetterRecords {
    /// Adds the writes to `writes`, keeping what runs after the commit.
    pub(super) fn append_to(self, writes: &mut Vec<StateWrite>) -> AfterCommit {
        writes.extend(self.writes);
        AfterCommit(self.on_commit)
    }
}

/// Runs the listener's follow-up once the commit it was waiting for succeeded.
#[derive(Default)]
pub(super) struct AfterCommit(Option<Box<dyn FnOnce() + Send>>);

impl AfterCommit {
    pub(super) fn run(self) {
        if let Some(on_commit) = self.0 {
            on_commit();
        }
    }
}

/// Most commits of one queue answered before they are durable and not yet durable.
pub const LAZY_COMMITS_MAX: usize = 4_096;
/// How long a queue's lazy batch collects writes before it is sent to the committer. Every
/// commit has a fixed cost (the pages it rewrites, an fsync); at 30,000 completions a second
/// 2 ms made the committer a sixth of the broker's CPU, 5 ms cut that by more than half and
/// raised one-at-a-time workers' throughput ~20 %. It is also how long a `batched`
/// completion can be lost to a crash (then the job runs again).
pub const LAZY_WINDOW: std::time::Duration = std::time::Duration::from_millis(5);

/// Writes answered before they are durable, collected for one commit (`commit_lazily`).
#[derive(Default)]
pub(crate) struct LazyBatch {
    pub(crate) writes: Vec<StateWrite>,
    pub(crate) durable: Durable,
    pub(crate) on_durable: Vec<Box<dyn FnOnce() + Send>>,
    /// One per call in the batch, held until it is durable (bounds them; `flush` waits).
    permits: Vec<tokio::sync::OwnedSemaphorePermit>,
    /// A task will send this batch at the end of its window.
    open: bool,
}

/// The lazy commits of one owner of a state machine — a queue, or a stream's acked consumer
/// (`consumers/`) — which share this batching and bound, and differ only in how a commit is
/// sent and what a failure poisons: the owner sends [`LazyCommits::take`] with its own commit
/// when [`LazyCommits::add`] says it opened the window.
pub(crate) struct LazyCommits {
    batch: std::sync::Mutex<LazyBatch>,
    /// Bounds the calls answered before they are durable ([`LAZY_COMMITS_MAX`]).
    permits: Arc<tokio::sync::Semaphore>,
}

impl Default for LazyCommits {
    fn default() -> Self {
        LazyCommits {
            batch: std::sync::Mutex::default(),
            permits: Arc::new(tokio::sync::Semaphore::new(LAZY_COMMITS_MAX)),
        }
    }
}

impl LazyCommits {
    /// Adds one call's writes to the current window, waiting only for room among the
    /// outstanding lazy calls. True when this call opened the window: the caller then sends
    /// the batch ([`LazyCommits::take`]) [`LAZY_WINDOW`] later.
    pub(crate) async fn add(
        &self,
        writes: Vec<StateWrite>,
        durable: Durable,
        on_durable: Option<Box<dyn FnOnce() + Send>>,
    ) -> Result<bool> {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| EngineError::Internal("lazy commits closed".into()))?;
        let mut batch = self.batch.lock().unwrap_or_else(|p| p.into_inner());
        batch.writes.extend(writes);
        batch.durable.frontiers.extend(durable.frontiers);
        batch.durable.prepaid.extend(durable.prepaid);
        batch.on_durable.extend(on_durable);
        batch.permits.push(permit);
        Ok(!std::mem::replace(&mut batch.open, true))
    }

    /// The window's batch, to send; its permits are released when it is dropped.
    pub(crate) fn take(&self) -> LazyBatch {
        std::mem::take(&mut *self.batch.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Waits (at most `timeout`) until every lazy call has been answered; for a graceful
    /// shutdown. Whether they all were.
    pub(crate) async fn flush(&self, timeout: std::time::Duration) -> bool {
        let all = LAZY_COMMITS_MAX as u32;
        matches!(
            tokio::time::timeout(timeout, self.permits.acquire_many(all)).await,
            Ok(Ok(_))
        )
    }
}

/// What the core may rely on once a commit is durable (`core/leases.rs`).
#[derive(Debug, Default)]
pub(crate) struct Durable {
    /// First-delivery frontiers the commit raised.
    pub(crate) frontiers: Vec<(usize, u64)>,
    /// Retries whose records, counting their next delivery, the commit carried.
    pub(crate) prepaid: Vec<(u64, u32)>,
}

impl Durable {
    pub(crate) fn prepaid(prepaid: Vec<(u64, u32)>) -> Durable {
        Durable {
            frontiers: Vec::new(),
            prepaid,
        }
    }
}

/// Told the queue and why it failed, once, when a state commit fails.
pub type FailureListener = Arc<dyn Fn(&Queue, &str) + Send + Sync>;

/// What must work again before a failed queue may be reloaded from disk without a restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Healing {
    /// An I/O error of the state store (a full disk among them): redb recovers to its last
    /// commit when the store reopens, so once the store takes writes again, what it holds is
    /// the queue's durable state.
    StateStore,
    /// The dead-letter stream's partition refused writes for a full disk: once it accepts
    /// writes again (and the state store works).
    DeadLetterPartition,
    /// Anything else (a state store error that is not I/O, a poisoned partition, a failed
    /// read of the queue's own log): only a restart, where an operator can see the cause.
    Restart,
}

impl Healing {
    /// For a failed state commit: I/O errors heal, and so does any error the store gives while
    /// it waits to be reopened after one (a failed reopen reads as a plain state error).
    pub(super) fn of_commit(error: &StorageError, store_failed: bool) -> Healing {
        match error {
            StorageError::Io { .. } | StorageError::DiskFull { .. } => Healing::StateStore,
            StorageError::State(_) if store_failed => Healing::StateStore,
            _ => Healing::Restart,
        }
    }

    /// For a failed step between a change and its commit: only the dead-letter partition's
    /// refusal for a full disk heals (reads never fail with `disk_full`).
    pub(super) fn of_uncommitted(error: &EngineError) -> Healing {
        match error {
            EngineError::Storage(StorageError::DiskFull { .. }) => Healing::DeadLetterPartition,
            _ => Healing::Restart,
        }
    }
}

/// Why a queue failed, and what would let it be reloaded.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) reason: String,
    pub(crate) healing: Healing,
}

/// A commit counted as in flight until dropped (answered, or its caller gave up on it).
pub(super) struct CommitInFlight<'a>(&'a std::sync::Mutex<usize>);

impl Drop for CommitInFlight<'_> {
    fn drop(&mut self) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) -= 1;
    }
}

impl Queue {
    /// Why the queue refuses work (a state commit failed); `None` while it works.
    pub fn failure(&self) -> Option<&str> {
        self.failure.get().map(|failure| failure.reason.as_str())
    }

    /// What would let this failed queue be reloaded; `None` while it works.
    pub(crate) fn healing(&self) -> Option<Healing> {
        self.failure.get().map(|failure| failure.healing)
    }

    /// Whether a commit of this queue may still be on its way to the state store. Once the
    /// queue has failed no commit starts, so this only turns false.
    pub(crate) fn has_commits_in_flight(&self) -> bool {
        *self
            .commits_in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            > 0
    }

    /// The error every change of a failed queue gets.
    pub(crate) fn check_healthy(&self) -> Result<()> {
        match self.failure.get() {
            Some(failure) => Err(EngineError::QueueFailed {
                queue: self.config.name.clone(),
                reason: failure.reason.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Counts a commit in flight; refused once the queue has failed (see the module doc).
    fn start_commit(&self) -> Result<CommitInFlight<'_>> {
        let mut in_flight = self
            .commits_in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        self.check_healthy()?;
        *in_flight += 1;
        Ok(CommitInFlight(&self.commits_in_flight))
    }

    /// The core, to change it; refused once the queue has failed. The failure is recorded
    /// under the same lock, so no change starts after it.
    pub(crate) fn lock_for_change(&self) -> Result<MutexGuard<'_, QueueCore>> {
        let core = self.lock();
        self.check_healthy()?;
        Ok(core)
    }

    /// Refuses all further work after a failed commit of `reason`, and wakes every waiter
    /// (long-poll receives) so it sees the error instead of waiting out its time.
    pub(super) fn poison(&self, reason: String, healing: Healing) {
        {
            let _core = self.lock();
            // Under the gate too, so a commit either started before (and is counted) or sees it.
            let _commits = self
                .commits_in_flight
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if self.failure.set(Failure { reason, healing }).is_err() {
                return; // already failed: logged and woken then
            }
        }
        let until = match healing {
            Healing::StateStore => "until the state store takes writes again",
            Healing::DeadLetterPartition => {
                "until the dead-letter stream accepts writes again after its full disk"
            }
            Healing::Restart => "until the broker restarts",
        };
        tracing::error!(
            queue = %self.config.name,
            "queue refuses work after a failed state commit, {until}: {}",
            self.failure().unwrap_or_default()
        );
        self.wake_receivers();
        self.timer_changed.notify_one();
        let listener = self
            .on_failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let (Some(listener), Some(reason)) = (listener, self.failure()) {
            listener(self, reason);
        }
    }

    /// Fails the queue when a step between a change of its memory and the change's commit
    /// fails (reading or appending dead letters): the change would otherwise stand in memory
    /// only. Answers the step's own error.
    pub(super) fn uncommitted(&self, error: EngineError) -> EngineError {
        let healing = Healing::of_uncommitted(&error);
        self.poison(format!("a change was not committed: {error}"), healing);
        error
    }

    /// Commits writes that follow a change of this queue's memory; a failure poisons the
    /// queue (see the module doc) and answers with the queue's failure.
    pub(crate) async fn commit(&self, writes: Vec<StateWrite>) -> Result<()> {
        let writes = self.stored_writes(writes);
        if writes.is_empty() {
            return Ok(());
        }
        let _in_flight = self.start_commit()?;
        match self.state.commit(writes).await {
            Ok(()) => Ok(()),
            Err(error) => {
                let healing = Healing::of_commit(&error, self.state.failure().is_some());
                // The committer's error already reads "state store error: ...".
                let reason = match error {
                    StorageError::State(message) => message,
                    other => other.to_string(),
                };
                self.poison(reason, healing);
                self.check_healthy()
            }
        }
    }
}

impl Queue {
    /// The writes that go to the state store: all of a durable queue's; a transient queue's
    /// without its delivery state (see [`is_delivery_state`]).
    fn stored_writes(&self, mut writes: Vec<StateWrite>) -> Vec<StateWrite> {
        if self.config.durability == QueueDurability::Transient {
            writes.retain(|write| !is_delivery_state(&self.config.name, write));
        }
        writes
    }

    /// Tells the core what a durable commit made safe to rely on.
    pub(super) fn note_durable(&self, durable: &Durable) {
        if durable.frontiers.is_empty() && durable.prepaid.is_empty() {
            return;
        }
        let mut core = self.lock();
        core.frontiers_durable(&durable.frontiers);
        core.prepaid_durable(&durable.prepaid);
    }

    /// Commits `writes` without the caller waiting for them to be durable (see the module
    /// doc); `on_durable` runs once they are. They join the queue's lazy batch, which is sent
    /// as one commit request [`LAZY_WINDOW`] after its first writes: one transaction for all
    /// the acks and leases of the window instead of one per call (a transaction's fixed cost —
    /// the pages it rewrites and the fsync's writeback — was most of what a batched
    /// completion cost). Waits only for room among the queue's outstanding lazy commits.
    /// Refused once the queue has failed.
    pub(super) async fn commit_lazily(
        self: &Arc<Self>,
        writes: Vec<StateWrite>,
        durable: Durable,
        on_durable: Option<Box<dyn FnOnce() + Send>>,
    ) -> Result<()> {
        self.check_healthy()?;
        let writes = self.stored_writes(writes);
        if writes.is_empty() {
            self.note_durable(&durable);
            if let Some(on_durable) = on_durable {
                on_durable();
            }
            return Ok(());
        }
        if !self.lazy.add(writes, durable, on_durable).await? {
            return Ok(());
        }
        let queue = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(LAZY_WINDOW).await;
            let mut batch = queue.lazy.take();
            // A failure poisons the queue inside `commit`.
            if queue
                .commit(std::mem::take(&mut batch.writes))
                .await
                .is_ok()
            {
                queue.note_durable(&batch.durable);
                for on_durable in std::mem::take(&mut batch.on_durable) {
                    on_durable();
                }
            }
            // Dropping the batch releases its calls' permits.
        });
        Ok(())
    }

    /// Waits (at most `timeout`) until every lazy commit of this queue has been answered; for
    /// a graceful shutdown. Whether they all were.
    pub(crate) async fn flush(&self, timeout: std::time::Duration) -> bool {
        self.lazy.flush(timeout).await
    }
}

/// Whether `write` is one of `queue`'s delivery state keys — its ack floor (`F`), finished
/// runs (`A`), attempt records (`D`), first-delivery runs (`G`) and frontiers (`L`), see
/// `keys.rs`. A transient queue keeps these in memory only: they exist to rebuild the queue
/// at a restart, and a transient queue is deleted at the next start instead, so committing
/// them bought nothing and cost a state-store transaction per window of leases and acks
/// (most of a request-reply round trip's engine CPU). Everything the queue reads back while
/// it runs stays stored: timers (`T`, loaded beyond the in-memory window), priorities,
/// pause, redrive marks, and other tables' writes (a job's record).
///
/// A transient queue that fails and is reloaded (`recovery.rs`) therefore comes back with
/// every message of its log ready and its attempts at zero: acked ones are delivered again,
/// as after a crash with `batched` completions (its default). At-least-once still holds.
fn is_delivery_state(queue: &str, write: &StateWrite) -> bool {
    let (table, key) = match write {
        StateWrite::Put { table, key, .. }
        | StateWrite::PutMax { table, key, .. }
        | StateWrite::Delete { table, key } => (*table, key.as_str()),
        StateWrite::DeleteRange { table, start, .. } => (*table, start.as_str()),
        // A prefix delete is a queue's deletion or reset: always kept.
        StateWrite::DeletePrefix { .. } => return false,
    };
    table == keys::TABLE
        && keys::suffix(queue, key).is_some_and(|suffix| {
            matches!(
                suffix.as_bytes().first(),
                Some(b'F' | b'A' | b'D' | b'G' | b'L')
            )
        })
}

/// The same failure for another waiter of one commit (engine errors are not `Clone`).
pub(super) fn copy_commit_error(error: &EngineError) -> EngineError {
    match error {
        // Keeps the code a client sees (a full disk stays `disk_full`, not `internal`).
        EngineError::Storage(storage) => EngineError::Storage(storage.duplicate()),
        EngineError::QueueFailed { queue, reason } => EngineError::QueueFailed {
            queue: queue.clone(),
            reason: reason.clone(),
        },
        other => EngineError::Internal(other.to_string()),
    }
}

#[cfg(test)]
mod commit_error_tests {
    use super::*;

    #[test]
    fn every_waiter_of_a_failed_commit_gets_the_same_code() {
        let full = EngineError::Storage(omnibus_storage::StorageError::DiskFull {
            context: "committing".into(),
        });
        let copy = copy_commit_error(&full);
        assert_eq!(copy.code(), omnibus_types::ErrorCode::DiskFull);
        assert_eq!(copy.to_string(), full.to_string());
        let closed = EngineError::Storage(omnibus_storage::StorageError::Closed);
        assert_eq!(copy_commit_error(&closed).code(), closed.code());
    }
}
