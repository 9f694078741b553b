//! Commits that reach the disk in the order their changes were made in memory.
//!
//! An owned-pending consumer (Redis consumer groups, `owned.rs`) settles a read in its state
//! machine as it hands the records out, and the read's pending entries are what keep those
//! records from being lost. Two reads settle one after the other under the consumer's lock,
//! but each used to commit on its own afterwards, so their commits could reach the committer
//! in either order. When the later read's settlement moved the ack floor over the earlier
//! read's records (it completes the range below it), a commit carrying that floor could be
//! durable before the commit carrying the earlier read's pending entries: a crash between the
//! two left records neither pending nor below a floor that delivers them again — skipped for
//! the group.
//!
//! So every change's writes are pushed here *under the same lock as the change itself*, into
//! one outbox, and the outbox is submitted to the state store's group committer in batches,
//! one submitter at a time, oldest writes first. The committer applies commits in submission
//! order, so what is durable is always a prefix of the changes made in memory. A caller waits
//! for the batch its writes went into: it submits the outbox itself, or, when another caller
//! already took its writes into an earlier submission, waits for that one.

use std::collections::BTreeSet;

use omnibus_storage::{StateStore, StateWrite, StorageError};
use tokio::sync::watch;

/// Where a caller's writes went: the number of the outbox batch that holds them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "the writes are durable only once waited for"]
pub(crate) struct Ticket(u64);

#[derive(Default)]
struct Outbox {
    writes: Vec<StateWrite>,
    /// Batches taken out of the outbox so far; the writes now in it go into batch `taken`.
    taken: u64,
    /// Batches found durable whose earlier batches are not all known durable yet.
    completed: BTreeSet<u64>,
    /// How many batches are durable, all of them, from the first on.
    durable: u64,
    /// Why a batch did not commit: every later batch is refused too, since what is on disk
    /// would no longer be a prefix of the changes.
    failure: Option<String>,
}

/// The ordered outbox of one consumer.
pub(crate) struct OrderedCommits {
    outbox: std::sync::Mutex<Outbox>,
    /// Held from taking a batch until the committer has it: submissions in batch order.
    submitting: tokio::sync::Mutex<()>,
    /// Bumped whenever a batch ends (the counts themselves are in the outbox, so nothing
    /// holds this channel's lock and the outbox's at once in the other order).
    ended: watch::Sender<()>,
}

impl Default for OrderedCommits {
    fn default() -> Self {
        OrderedCommits {
            outbox: std::sync::Mutex::default(),
            submitting: tokio::sync::Mutex::new(()),
            ended: watch::Sender::new(()),
        }
    }
}

impl OrderedCommits {
    fn outbox(&self) -> std::sync::MutexGuard<'_, Outbox> {
        self.outbox.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues the writes of a change. Call it while holding the lock the change was made
    /// under, so the outbox's order is the changes' order. `None`: nothing to wait for.
    pub(crate) fn push(&self, writes: Vec<StateWrite>) -> Option<Ticket> {
        if writes.is_empty() {
            return None;
        }
        let mut outbox = self.outbox();
        outbox.writes.extend(writes);
        Some(Ticket(outbox.taken))
    }

    /// Waits until the writes behind `ticket`, and every write queued before them, are
    /// durable: submits the outbox itself unless another caller already took those writes
    /// into a submission. An error once any batch failed to commit.
    pub(crate) async fn wait(
        &self,
        ticket: Ticket,
        store: &StateStore,
    ) -> Result<(), StorageError> {
        let Ticket(batch) = ticket;
        if self.outbox().durable <= batch {
            let submitting = self.submitting.lock().await;
            let writes = {
                let mut outbox = self.outbox();
                (outbox.taken <= batch && outbox.failure.is_none()).then(|| {
                    outbox.taken += 1;
                    (outbox.taken - 1, std::mem::take(&mut outbox.writes))
                })
            };
            if let Some((taken, writes)) = writes {
                let submitted = store.submit(writes).await;
                drop(submitting);
                let outcome = match submitted {
                    Ok(submitted) => submitted.durable().await,
                    Err(error) => Err(error),
                };
                self.completed(taken, outcome);
            }
        }
        let settled = |outbox: &Outbox| outbox.durable > batch || outbox.failure.is_some();
        let mut ended = self.ended.subscribe();
        let _ = ended.wait_for(|()| settled(&self.outbox())).await;
        let outbox = self.outbox();
        match &outbox.failure {
            _ if outbox.durable > batch => Ok(()),
            failure => Err(StorageError::State(failure.clone().unwrap_or_default())),
        }
    }

    /// Notes how batch `taken` ended and moves the durable prefix.
    fn completed(&self, taken: u64, outcome: Result<(), StorageError>) {
        let mut guard = self.outbox();
        let outbox = &mut *guard;
        match outcome {
            Ok(()) => {
                outbox.completed.insert(taken);
            }
            Err(error) => {
                outbox
                    .failure
                    .get_or_insert(super::commit::failure_reason(error));
            }
        }
        while outbox.completed.remove(&outbox.durable) {
            outbox.durable += 1;
        }
        drop(guard);
        // Wakes the waiters in either case: a failure is news too.
        self.ended.send_modify(|()| ());
    }
}

/// Pause points for tests: a read of a named owner stops at a named point until released,
/// so a test can order two reads' steps as a race would.
#[cfg(test)]
pub(crate) mod pauses {
    use std::sync::{Arc, Mutex};

    use tokio::sync::Notify;

    /// One pause: `reached` once the read is at the point, `release` lets it go on.
    #[derive(Default)]
    pub(crate) struct Gate {
        pub(crate) reached: Notify,
        pub(crate) release: Notify,
    }

    type Gates = Vec<(String, &'static str, Arc<Gate>)>;
    static GATES: Mutex<Gates> = Mutex::new(Vec::new());

    /// Makes reads of `owner` stop at `point` (once).
    pub(crate) fn set(owner: &str, point: &'static str) -> Arc<Gate> {
        let gate = Arc::new(Gate::default());
        let mut gates = GATES.lock().unwrap();
        gates.push((owner.to_string(), point, gate.clone()));
        gate
    }

    pub(crate) async fn at(owner: &str, point: &'static str) {
        let gate = {
            let mut gates = GATES.lock().unwrap();
            let found = gates.iter().position(|(o, p, _)| o == owner && *p == point);
            found.map(|index| gates.remove(index).2)
        };
        if let Some(gate) = gate {
            gate.reached.notify_one();
            gate.release.notified().await;
        }
    }
}
