//! Transient queues: queues that live as long as the broker process, as AMQP's non-durable
//! and exclusive queues do. A queue created with `durability: transient`
//! (`queue/durability.rs`) carries that in its stored configuration: it is never started
//! again, only deleted — with its bindings and dead-letter route — when the engine opens
//! next. Queues marked before that option existed (table `transient_queues`, set by
//! [`Engine::set_queue_transient`]) are durable queues with a mark; they are started, then
//! deleted the same way.

use std::sync::Arc;

use omnibus_storage::StateWrite;

use crate::engine::Engine;
use crate::error::{EngineError, Result};
use crate::streams::registry::off_the_runtime;

const TRANSIENT_TABLE: &str = "transient_queues";

impl Engine {
    /// Marks `queue` as deleted at the next start (or takes the mark off). Durable.
    pub async fn set_queue_transient(self: &Arc<Self>, queue: &str, transient: bool) -> Result<()> {
        let engine = self.clone();
        let key = queue.to_string();
        off_the_runtime(move || {
            let write = if transient {
                StateWrite::Put {
                    table: TRANSIENT_TABLE,
                    key,
                    value: Vec::new(),
                }
            } else {
                StateWrite::Delete {
                    table: TRANSIENT_TABLE,
                    key,
                }
            };
            Ok(engine.state.write(&[write])?)
        })
        .await
    }

    /// Deletes every transient queue (at open, before dead-letter routes start): the ones
    /// created transient, which were not started, and the ones marked transient.
    pub(crate) async fn delete_transient_queues(self: &Arc<Self>) -> Result<()> {
        for queue in self.stored_transient_queues()? {
            self.unbind_queue_everywhere(&queue).await?;
            self.forget_dead_letter_route(&queue).await?;
            self.discard_unopened_queue(&queue).await?;
        }
        for (queue, _) in self.state.scan_prefix(TRANSIENT_TABLE, "")? {
            self.unbind_queue_everywhere(&queue).await?;
            match self.set_dead_letter_route(&queue, None).await {
                Ok(()) | Err(EngineError::QueueNotFound(_)) => {}
                Err(error) => return Err(error),
            }
            match self.delete_queue(&queue).await {
                Ok(()) | Err(EngineError::QueueNotFound(_)) => {}
                Err(error) => return Err(error),
            }
            self.set_queue_transient(&queue, false).await?;
        }
        Ok(())
    }
}
