//! Transient queues: queues that live as long as the broker process, as AMQP's non-durable
//! and exclusive queues do. Engine queues are always durable, so the mark is kept in the
//! state store (table `transient_queues`) and the queues it names are deleted — with their
//! bindings and dead-letter routes — when the engine opens next.

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

    /// Deletes every queue marked transient (at open, before dead-letter routes start).
    pub(crate) async fn delete_transient_queues(self: &Arc<Self>) -> Result<()> {
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
