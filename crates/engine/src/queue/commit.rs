//! Committing a queue's changes, and what a queue does when a commit fails.
//!
//! Memory runs ahead of the disk between a change and its commit. If the commit fails, the
//! change cannot be taken back (the core does not keep undo records, and other changes may
//! have built on it), so the queue is poisoned instead, as a partition is after a failed
//! fsync: every later change is refused with `storage_failed`, waiters are woken with that
//! error, the queue's info carries the reason, and a restart rebuilds the queue from what is
//! durable. The same holds when a step between a change and its commit fails (reading or
//! appending dead letters).

use std::sync::{Arc, MutexGuard};

use omnibus_storage::StateWrite;

use super::core::QueueCore;
use super::runtime::Queue;
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

/// Told the queue and why it failed, once, when a state commit fails.
pub type FailureListener = Arc<dyn Fn(&Queue, &str) + Send + Sync>;

impl Queue {
    /// Why the queue refuses work (a state commit failed); `None` while it works.
    pub fn failure(&self) -> Option<&str> {
        self.failure.get().map(String::as_str)
    }

    /// The error every change of a failed queue gets.
    pub(crate) fn check_healthy(&self) -> Result<()> {
        match self.failure.get() {
            Some(reason) => Err(EngineError::QueueFailed {
                queue: self.config.name.clone(),
                reason: reason.clone(),
            }),
            None => Ok(()),
        }
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
    fn poison(&self, reason: String) {
        {
            let _core = self.lock();
            if self.failure.set(reason).is_err() {
                return; // already failed: logged and woken then
            }
        }
        tracing::error!(
            queue = %self.config.name,
            "queue refuses work after a failed state commit: {}",
            self.failure().unwrap_or_default()
        );
        self.available.notify_waiters();
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
        self.poison(format!("a change was not committed: {error}"));
        error
    }

    /// Commits writes that follow a change of this queue's memory; a failure poisons the
    /// queue (see the module doc) and answers with the queue's failure.
    pub(crate) async fn commit(&self, writes: Vec<StateWrite>) -> Result<()> {
        if writes.is_empty() {
            return Ok(());
        }
        match self.state.commit(writes).await {
            Ok(()) => Ok(()),
            Err(error) => {
                // The committer's error already reads "state store error: ...".
                let reason = match error {
                    omnibus_storage::StorageError::State(message) => message,
                    other => other.to_string(),
                };
                self.poison(reason);
                self.check_healthy()
            }
        }
    }
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
