//! Rebuilding a queue from what is durable: its state from the state store, its messages from
//! its partition log, leases dropped, attempts counted conservatively (`Queue::open`). A
//! restart does it for every queue; the maintenance pass does it for a queue that failed
//! (`commit.rs`) once what failed it has healed, so a full disk that comes back brings the
//! queue back without a restart.
//!
//! The reloaded queue is a new instance swapped in for the failed one: new calls find it, while
//! whatever held the old one (a long poll, an SSE stream) was already told of the failure and
//! retries. Swapped only if the failed one is still the queue of that name, so a queue deleted
//! meanwhile stays deleted.

use std::sync::Arc;

use omnibus_storage::batch::decode_batches;
use omnibus_storage::{PartitionLog, StateWrite};

use super::commit::Healing;
use super::core::QueueCore;
use super::overflow::message_bytes;
use super::runtime::{key_hash, Queue};
use crate::engine::{now_ms, Engine};
use crate::error::{EngineError, Result};

/// Where the reload pass proves the state store takes writes again (one key, overwritten).
const HEALTH_TABLE: &str = "engine_health";
const WRITE_PROBE_KEY: &str = "write_probe";

impl Engine {
    /// Reloads every failed queue whose failure has healed (see the module doc). Called by
    /// the maintenance pass once the disk has room; cheap when no queue has failed.
    pub(crate) async fn reload_healed_queues(&self) {
        let candidates: Vec<Arc<Queue>> = self
            .queues
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .filter(|queue| self.has_healed(queue))
            .cloned()
            .collect();
        if candidates.is_empty() {
            return;
        }
        // As `maintain_disk`: no writes into a disk without room (the probe would only fail).
        if self.disk_full_reason().is_some() {
            return;
        }
        // After every commit of theirs was answered (`has_healed`) and none can start, one
        // write through the committer: it answers only after every request sent before it, so
        // once it succeeded the store works and holds all that the failed queues will ever
        // write.
        let probe = StateWrite::Put {
            table: HEALTH_TABLE,
            key: WRITE_PROBE_KEY.to_string(),
            value: now_ms().to_be_bytes().to_vec(),
        };
        if let Err(error) = self.state.commit(vec![probe]).await {
            tracing::warn!(
                "failed queues not reloaded yet, the state store refuses writes: {error}"
            );
            return;
        }
        for failed in candidates {
            let name = failed.config.name.clone();
            match self.reload_queue(failed).await {
                Ok(true) => tracing::info!(
                    queue = %name,
                    "queue reloaded from disk after its failure healed; it takes work again"
                ),
                Ok(false) => {}
                Err(error) => tracing::warn!(queue = %name, "queue not reloaded yet: {error}"),
            }
        }
    }

    /// Whether a failed queue may be reloaded now: what failed it works again and no commit
    /// of it is still on its way. A queue that only a restart heals is never reloaded (its
    /// failure was logged, with that, when it failed).
    fn has_healed(&self, queue: &Queue) -> bool {
        let ready = match queue.healing() {
            None | Some(Healing::Restart) => false,
            Some(Healing::StateStore) => self.state.failure().is_none(),
            Some(Healing::DeadLetterPartition) => {
                self.state.failure().is_none() && queue.dead_letter.failure().is_none()
            }
        };
        ready && !queue.has_commits_in_flight()
    }

    /// Opens `failed` again from disk, exactly as a restart would, and swaps it in; `false`
    /// when the queue was deleted or replaced meanwhile.
    async fn reload_queue(&self, failed: Arc<Queue>) -> Result<bool> {
        let (config, log, dead_letter, state) = (
            failed.config.clone(),
            failed.log.clone(),
            failed.dead_letter.clone(),
            self.state.clone(),
        );
        let queue =
            tokio::task::spawn_blocking(move || Queue::open(config, log, dead_letter, state))
                .await
                .map_err(|error| EngineError::Internal(error.to_string()))??;
        self.watch_dead_letters(&queue);
        {
            let mut queues = self.queues.write().unwrap_or_else(|p| p.into_inner());
            match queues.get_mut(&failed.config.name) {
                Some(current) if Arc::ptr_eq(current, &failed) => *current = queue.clone(),
                _ => return Ok(false),
            }
        }
        // Waiters on the failed queue look the queue up again and find the new one.
        failed.wake_receivers();
        Queue::spawn_timer_task(&queue);
        Ok(true)
    }
}

/// After a restart every unfinished message is waiting (leases are gone): their bytes are
/// counted again, and key-shared queues get each one's key hash back. Reads the unfinished part
/// of the log once, from the ack floor on.
pub(super) fn recover_from_log(
    core: &mut QueueCore,
    log: &PartitionLog,
    queue: &str,
    key_shared: bool,
) -> Result<()> {
    let mut offset = core.floor();
    let end = core.end();
    let mut bytes = 0u64;
    while offset < end {
        let read = log.read(offset, 8 << 20)?;
        let records = decode_batches(read.bytes, offset)?;
        let Some(last) = records.last().map(|r| r.offset) else {
            tracing::warn!(queue, offset, "queue recovery found no records");
            break;
        };
        for record in &records {
            if !core.is_unfinished(record.offset) {
                continue;
            }
            bytes = bytes.saturating_add(message_bytes(record));
            if key_shared {
                core.set_keys(record.offset, &[record.key.as_deref().map(key_hash)]);
            }
        }
        offset = last + 1;
    }
    core.add_waiting_bytes(bytes);
    Ok(())
}
