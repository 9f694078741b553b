//! A queue's durability: whether it and its messages outlive the broker process.
//!
//! A `durable` queue (the default) keeps the promise of docs/delivery.md: an enqueue is
//! answered once its messages are fsynced, and the queue comes back after any crash.
//!
//! A `transient` queue is the shape of AMQP's non-durable and exclusive queues (RabbitMQ
//! confirms their messages once they are in memory and deletes the queues when it restarts):
//! its backing stream has the fsync policy `never`, so an enqueue is answered once its
//! messages are written to the page cache, and the queue — messages, state, bindings,
//! dead-letter route — is deleted when the engine opens next, whatever the stop was (clean,
//! kill -9, power loss). Its leases, acks and attempt counts are kept in memory only (never
//! written to the state store, `commit.rs`), so its acks wait for no commit whatever its
//! `completions`. Deleting it *before* it is
//! opened is what makes skipping the fsync safe: after a power loss its log may have lost a
//! suffix that the state store still counts, and such a queue is never rebuilt from that
//! disk. The choice is stored in the
//! queue's configuration, written in the same state-store write that creates the queue, so
//! no crash leaves a transient queue durable. Its dead-letter stream is a plain stream and
//! keeps its own (default) policy: dead letters are rare and may go to a shared stream.

use std::sync::Arc;

use omnibus_storage::StateWrite;
use serde::{Deserialize, Serialize};

use super::{keys, Completions, QueueConfig, QUEUES_TABLE};
use crate::config::FsyncPolicy;
use crate::engine::Engine;
use crate::error::{EngineError, Result};
use crate::streams::registry::off_the_runtime;

/// Whether a queue and its messages outlive the broker process.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueueDurability {
    /// An enqueue is answered after its messages are fsynced; the queue survives restarts
    /// and crashes with every acknowledged message.
    #[default]
    Durable,
    /// An enqueue is answered once its messages are in the page cache (no fsync); the queue
    /// is deleted, with its messages, when the engine opens next.
    Transient,
}

impl QueueDurability {
    pub fn as_str(self) -> &'static str {
        match self {
            QueueDurability::Durable => "durable",
            QueueDurability::Transient => "transient",
        }
    }

    /// When acks are answered if the creator does not say: a transient queue's acks wait
    /// for no commit (the queue does not outlive the process, so a durable ack buys nothing).
    pub(super) fn default_completions(self) -> Completions {
        match self {
            QueueDurability::Durable => Completions::default(),
            QueueDurability::Transient => Completions::Batched,
        }
    }

    /// The fsync policy of the queue's backing stream: `None` keeps the engine's default.
    pub(super) fn backing_fsync(self) -> Option<FsyncPolicy> {
        match self {
            QueueDurability::Durable => None,
            QueueDurability::Transient => Some(FsyncPolicy::Never),
        }
    }
}

/// The configuration stored for `bytes`, when it names a transient queue (read at open,
/// before the queue would be started).
pub(crate) fn is_transient_config(bytes: &[u8]) -> bool {
    serde_json::from_slice::<QueueConfig>(bytes)
        .is_ok_and(|config| config.durability == QueueDurability::Transient)
}

impl Engine {
    /// Names of the stored queues created `transient`: never started, deleted at open.
    pub(crate) fn stored_transient_queues(&self) -> Result<Vec<String>> {
        Ok(self
            .state
            .scan_prefix(QUEUES_TABLE, "")?
            .into_iter()
            .filter(|(_, bytes)| is_transient_config(bytes))
            .map(|(name, _)| name)
            .collect())
    }

    /// Deletes a queue that was not started (a transient one, at open): its configuration,
    /// state and jobs, then its backing stream. Its dead-letter stream stays, as
    /// [`Engine::delete_queue`] leaves it.
    pub(crate) async fn discard_unopened_queue(self: &Arc<Self>, name: &str) -> Result<()> {
        let engine = self.clone();
        let name = name.to_string();
        off_the_runtime(move || {
            let mut writes = vec![
                StateWrite::Delete {
                    table: QUEUES_TABLE,
                    key: name.clone(),
                },
                StateWrite::DeletePrefix {
                    table: keys::TABLE,
                    prefix: keys::prefix(&name),
                },
            ];
            writes.extend(crate::jobs::queue_jobs_deletion(&name));
            engine.state.write(&writes)?;
            crate::jobs::forget_queue(&engine.jobs, &name);
            match engine.delete_stream_blocking(&name) {
                Ok(()) | Err(EngineError::StreamNotFound(_)) => Ok(()),
                Err(error) => Err(error),
            }
        })
        .await
    }
}
