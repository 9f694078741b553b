//! The keyspace's one writer: it takes changes in the order the keyspace made them and folds
//! whatever is waiting into one group commit of the state store, so changes to one key reach
//! the disk in the order they were made (two commits in flight at once could land the other
//! way round) while a burst of writers still shares one fsync.
//!
//! While a caller holds the keyspace exclusively (a script or a transaction, `Exclusive` in
//! `mod.rs`), its changes are kept here instead and handed over as one change when it lets
//! go: they reach the state store in one commit, one journal record, so a crash keeps all of
//! them or none.

use std::sync::{Arc, Mutex, MutexGuard};

use omnibus_storage::{StateStore, StateWrite};
use tokio::sync::{mpsc, oneshot};

use crate::error::{EngineError, Result};

/// Most queued changes folded into one commit.
const BATCH_MAX: usize = 4096;

/// Resolves once the change it was given for is durable.
pub(super) type Waiter = oneshot::Receiver<Result<()>>;

type Done = oneshot::Sender<Result<()>>;

/// Writes, and whoever waits for them to be durable.
type Change = (Vec<StateWrite>, Vec<Done>);

pub(super) struct Writer {
    // Unbounded, yet bounded in practice: every caller but the expiry paths waits for its
    // change, and those queue at most one delete per key that exists.
    sender: mpsc::UnboundedSender<Change>,
    /// The changes of an exclusive hold, `Some` while one is open. Every caller of `queue`
    /// holds the keyspace's lock, so while a hold is open only its own thread gets here.
    held: Mutex<Option<Change>>,
}

impl Writer {
    pub(super) fn start(state: Arc<StateStore>) -> Writer {
        let (sender, receiver) = mpsc::unbounded_channel();
        tokio::spawn(run(state, receiver));
        Writer {
            sender,
            held: Mutex::new(None),
        }
    }

    fn held(&self) -> MutexGuard<'_, Option<Change>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `writes`; the waiter resolves when they are durable.
    pub(super) fn queue(&self, writes: Vec<StateWrite>) -> Waiter {
        let (done, waiter) = oneshot::channel();
        if let Some((held, waiting)) = self.held().as_mut() {
            held.extend(writes);
            waiting.push(done);
            return waiter;
        }
        self.send((writes, vec![done]));
        waiter
    }

    /// Queues `writes` with nobody waiting (expiry deletes: losing one in a crash only means
    /// the key is found expired again at the next start).
    pub(super) fn queue_detached(&self, writes: Vec<StateWrite>) {
        if let Some((held, _)) = self.held().as_mut() {
            held.extend(writes);
            return;
        }
        self.send((writes, Vec::new()));
    }

    /// Starts keeping changes back (an exclusive hold begins).
    pub(super) fn hold(&self) {
        let mut held = self.held();
        debug_assert!(held.is_none(), "holds do not nest here");
        *held = Some((Vec::new(), Vec::new()));
    }

    /// Hands what was kept back over as one change (the hold ends).
    pub(super) fn release(&self) {
        let Some(change) = self.held().take() else {
            return;
        };
        if !change.0.is_empty() || !change.1.is_empty() {
            self.send(change);
        }
    }

    fn send(&self, change: Change) {
        if let Err(mpsc::error::SendError((_, waiting))) = self.sender.send(change) {
            for done in waiting {
                let _ = done.send(Err(EngineError::ShuttingDown));
            }
        }
    }
}

/// Waits for a queued change to be durable.
pub(super) async fn durable(waiter: Waiter) -> Result<()> {
    waiter.await.unwrap_or(Err(EngineError::ShuttingDown))
}

async fn run(state: Arc<StateStore>, mut receiver: mpsc::UnboundedReceiver<Change>) {
    let mut batch = Vec::new();
    while let Some(first) = receiver.recv().await {
        batch.push(first);
        while batch.len() < BATCH_MAX {
            match receiver.try_recv() {
                Ok(change) => batch.push(change),
                Err(_) => break,
            }
        }
        let writes: Vec<StateWrite> = batch
            .iter_mut()
            .flat_map(|(writes, _)| std::mem::take(writes))
            .collect();
        let outcome = if writes.is_empty() {
            Ok(())
        } else {
            state.commit(writes).await
        };
        for (_, waiting) in batch.drain(..) {
            for done in waiting {
                let _ = done.send(match &outcome {
                    Ok(()) => Ok(()),
                    Err(error) => Err(EngineError::Internal(format!(
                        "the keyspace commit failed: {error}"
                    ))),
                });
            }
        }
    }
}
