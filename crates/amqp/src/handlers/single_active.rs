//! `x-single-active-consumer`: of a queue's consumers only one receives at a time, the
//! earliest subscribed; when it goes (cancelled, its channel or connection closed) the next
//! one takes over, as RabbitMQ does. Every consumer gets consume-ok; the waiting ones just
//! receive nothing until their turn.
//!
//! Our choice: the turn order is the door's, in memory, kept with the queue's owner record
//! (`QueueOwner::single_active`); it is set when the queue is declared with the argument
//! (true), so after a broker restart a queue must be declared again to have it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use amq_protocol::types::{AMQPValue, FieldTable};
use tokio::sync::Notify;

use super::consumer::Stop;

/// The consumers of one single-active queue, in subscription order; the first is active.
#[derive(Debug, Default)]
pub(crate) struct SingleActive {
    order: Mutex<VecDeque<u64>>,
    changed: Notify,
}

/// A consumer's place in the order; leaving it (dropped with the consumer's task) passes
/// the turn on.
pub(crate) struct Turn {
    queue: Arc<SingleActive>,
    id: u64,
}

/// Whether the declaration asks for a single active consumer.
pub(crate) fn requested(arguments: &FieldTable) -> bool {
    matches!(
        arguments.inner().get("x-single-active-consumer"),
        Some(AMQPValue::Boolean(true))
    )
}

impl SingleActive {
    /// Takes a place at the end of the order.
    pub fn join(self: &Arc<Self>) -> Turn {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        self.order
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push_back(id);
        Turn {
            queue: self.clone(),
            id,
        }
    }

    fn is_first(&self, id: u64) -> bool {
        self.order.lock().unwrap_or_else(|p| p.into_inner()).front() == Some(&id)
    }
}

impl Turn {
    /// Waits until this consumer is the active one; false when it was stopped first.
    pub async fn wait(&self, stop: &Stop) -> bool {
        loop {
            let changed = self.queue.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if stop.is_stopped() {
                return false;
            }
            if self.queue.is_first(self.id) {
                return true;
            }
            tokio::select! {
                () = changed => {}
                () = stop.stopped() => return false,
            }
        }
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        self.queue
            .order
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|id| *id != self.id);
        self.queue.changed.notify_waiters();
    }
}
