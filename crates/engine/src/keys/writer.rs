//! The keyspace's one writer: it takes changes in the order the keyspace made them and folds
//! whatever is waiting into one group commit of the state store, so changes to one key reach
//! the disk in the order they were made (two commits in flight at once could land the other
//! way round) while a burst of writers still shares one fsync.

use std::sync::Arc;

use omnibus_storage::{StateStore, StateWrite};
use tokio::sync::{mpsc, oneshot};

use crate::error::{EngineError, Result};

/// Most queued changes folded into one commit.
const BATCH_MAX: usize = 4096;

/// Resolves once the change it was given for is durable.
pub(super) type Waiter = oneshot::Receiver<Result<()>>;

type Change = (Vec<StateWrite>, Option<oneshot::Sender<Result<()>>>);

pub(super) struct Writer {
    // Unbounded, yet bounded in practice: every caller but the expiry paths waits for its
    // change, and those queue at most one delete per key that exists.
    sender: mpsc::UnboundedSender<Change>,
}

impl Writer {
    pub(super) fn start(state: Arc<StateStore>) -> Writer {
        let (sender, receiver) = mpsc::unbounded_channel();
        tokio::spawn(run(state, receiver));
        Writer { sender }
    }

    /// Queues `writes`; the waiter resolves when they are durable.
    pub(super) fn queue(&self, writes: Vec<StateWrite>) -> Waiter {
        let (done, waiter) = oneshot::channel();
        if let Err(mpsc::error::SendError((_, Some(done)))) = self.sender.send((writes, Some(done)))
        {
            let _ = done.send(Err(EngineError::ShuttingDown));
        }
        waiter
    }

    /// Queues `writes` with nobody waiting (expiry deletes: losing one in a crash only means
    /// the key is found expired again at the next start).
    pub(super) fn queue_detached(&self, writes: Vec<StateWrite>) {
        let _ = self.sender.send((writes, None));
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
        for (_, done) in batch.drain(..) {
            if let Some(done) = done {
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
