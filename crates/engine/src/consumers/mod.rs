//! Acked consumers over a stream: several independent readers of one ordinary stream, each
//! with server-tracked per-record state (delivered, acked, attempts, ack deadline), as
//! JetStream's durable consumers are (DESIGN.md §1: "acked" consumers).
//!
//! A consumer reuses the queue state machine (`queue/core`) unchanged: the same ready set,
//! leases with deadlines, attempt counts that never undercount across a crash, retries with
//! delays, `max_deliver`, and the same state-store layout (`queue/keys.rs`) under a key prefix
//! of its own (`$consumer␞<stream>␞<name>`, which no queue name can be). What differs from a
//! queue: the records are the stream's (partition 0), which the consumer does not own — it
//! registers new offsets as the stream grows, whoever appended them, and deleting a record is
//! retention's business, not the consumer's; a record below the stream's start is simply
//! passed over. A message whose deliveries run out is finished without a dead-letter stream.
//!
//! Durability, as a queue's (`commit.rs`): the consumer's spec, every ack a caller waits for
//! ([`Engine::consumer_ack`]), nack and term are state-store commits (fsynced) made before the
//! call returns, so such an ack survives a kill -9. A lazy ack
//! ([`Engine::consumer_ack_lazily`]) is answered at once and committed with the consumer's
//! next lazy batch (within `LAZY_WINDOW` plus a commit): a crash before that delivers the
//! record again. Leases are not durable: after a restart a delivered, unacked record is ready
//! again with its attempt counted (`queue/core/leases.rs`); a delivery whose attempt is
//! already counted is handed out without waiting for the disk.

mod commit;
mod delivery;
mod lag;
mod ordered;
mod owned;
mod owned_runs;
#[cfg(test)]
mod owned_tests;
mod removal;
mod settle;
#[cfg(test)]
mod tests;

pub use delivery::ConsumerDelivery;
pub use owned::{
    ClaimOptions, OwnerInfo, PendingEntry, PendingQuery, OWNED_PENDING_MAX, OWNED_TABLE,
    OWNERS_MAX, OWNER_NAME_BYTES_MAX,
};

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, OnceLock};

use omnibus_storage::{PartitionLog, StateStore, StateWrite};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::engine::{now_ms, Engine};
use crate::error::{EngineError, Result};
use crate::queue::core::{ConsumerMode, Policy, QueueCore};
use crate::queue::{keys, stored_core, Backoff, LazyCommits, RecordReader, StoredCore};

/// Where consumer specs are stored, under `<stream>␟<name>`.
pub const CONSUMERS_TABLE: &str = "stream_consumers";
/// Consumers one stream may have.
pub const CONSUMERS_PER_STREAM_MAX: usize = 1_000;
/// Longest consumer name, in bytes.
pub const CONSUMER_NAME_BYTES_MAX: usize = 255;
/// Deliveries one consumer may have unacknowledged at once, at most.
pub const ACK_PENDING_MAX: usize = 100_000;
/// The one worker name under which a consumer's leases are held: every reader of a consumer
/// competes for the same records, so the state machine needs no per-reader identity.
const WORKER: &str = "consumer";

/// Where a new consumer starts in its stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "offset")]
pub enum ConsumerStart {
    /// The first record still retained.
    Earliest,
    /// Only records appended after the consumer is created.
    New,
    /// The last record, then everything after it.
    LastRecord,
    /// This offset (or the first retained one, if it is gone).
    Offset(u64),
    /// The first record with a timestamp at or after this many ms since the epoch.
    Time(i64),
}

/// Which deliveries an acknowledgement settles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AckMode {
    /// Each delivery is acknowledged on its own.
    Explicit,
    /// Nothing is acknowledged: a delivery settles as it is handed out (at most once).
    None,
    /// Acknowledging one delivery settles every earlier one still pending.
    All,
}

/// What a caller asks for when creating a consumer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumerSpec {
    pub stream: String,
    pub name: String,
    /// Subject patterns; empty means every record of the stream.
    pub filter_subjects: Vec<String>,
    pub start: ConsumerStart,
    pub ack: AckMode,
    /// How long a delivery may stay unacknowledged before it is delivered again.
    pub ack_wait_ms: u64,
    /// Deliveries of one record at most; `None` for no limit.
    pub max_deliver: Option<u32>,
    /// Per attempt, the ack wait of that attempt (the last repeats); empty: `ack_wait_ms`.
    pub backoff_ms: Vec<u64>,
    /// Unacknowledged deliveries at once.
    pub max_ack_pending: usize,
    /// Settings of the front door that created the consumer, kept and returned untouched
    /// (the engine never reads them).
    pub door_settings: BTreeMap<String, String>,
    /// What this consumer acknowledges is removed from the stream once every consumer of
    /// the stream with this flag has acknowledged it too (work-queue retention: one such
    /// consumer; interest retention: all of them).
    #[serde(default)]
    pub remove_acked: bool,
    /// Redis consumer-group mode (`owned.rs`): each delivery stays pending with the reader
    /// that got it until acknowledged or claimed; nothing is redelivered by itself.
    #[serde(default)]
    pub owned_pending: bool,
}

/// A consumer as stored: its spec, when it was made and where it started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredConsumer {
    pub spec: ConsumerSpec,
    pub created_ms: i64,
    pub start_offset: u64,
}

/// A consumer's state, for an info call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerInfo {
    pub stored: StoredConsumer,
    /// Every offset below it is acknowledged (or passed over).
    pub ack_floor: u64,
    /// The same counting the records gone from the log (retention, a trim) as settled.
    pub ack_floor_in_log: u64,
    /// Deliveries handed out since the consumer was opened (this process), plus the ack
    /// floor's distance from the start before that.
    pub delivered_count: u64,
    /// One past the highest offset delivered so far (0: none).
    pub delivered_end: u64,
    /// Delivered and not yet acknowledged.
    pub ack_pending: u64,
    /// Records delivered more than once and not yet settled.
    pub redelivered: u64,
    /// Records delivered before, not settled and not leased now (counted in `pending`).
    pub awaiting_redelivery: u64,
    /// Records not yet delivered (for a filtered consumer, an upper bound: records of other
    /// subjects are counted until they are passed over).
    pub pending: u64,
}

/// One consumer: its stored spec, the stream's log it reads, and its state machine.
pub(crate) struct Consumer {
    pub(crate) stored: StoredConsumer,
    pub(crate) log: Arc<PartitionLog>,
    pub(crate) core_name: String,
    pub(crate) state: Mutex<ConsumerState>,
    /// Woken when records may have become ready again (a nack, a term, an expiry).
    pub(crate) changed: Notify,
    /// Reads the records to deliver, keeping the last read decoded (the queues' reader).
    pub(crate) reader: Arc<RecordReader>,
    pub(crate) state_store: Arc<StateStore>,
    /// Commits answered before they are durable (`commit.rs`).
    lazy: LazyCommits,
    /// Commits submitted in the order of their changes (`ordered.rs`): owned-pending mode.
    pub(crate) ordered: ordered::OrderedCommits,
    /// Why the consumer refuses work: set when a state commit fails (`commit.rs`).
    failure: OnceLock<String>,
    /// The highest ack floor known to be durable: records below it may be removed from the
    /// stream (work-queue retention).
    pub(crate) durable_floor: AtomicU64,
    /// For a consumer that removes what it acknowledged: the stream's removing consumers
    /// (`removal.rs`), set when it is opened.
    pub(crate) removal: OnceLock<Arc<removal::RemovalGroup>>,
}

pub(crate) struct ConsumerState {
    pub(crate) core: QueueCore,
    pub(crate) delivered_count: u64,
    pub(crate) delivered_end: u64,
    /// The pending deliveries and owners of an owned-pending consumer.
    pub(crate) owned: Option<owned::OwnedPending>,
}

/// The key prefix of a consumer's state in the queue state table.
fn core_name(stream: &str, name: &str) -> String {
    format!("$consumer\u{1e}{stream}\u{1e}{name}")
}

fn spec_key(stream: &str, name: &str) -> String {
    format!("{stream}\u{1f}{name}")
}

pub(crate) fn policy(spec: &ConsumerSpec) -> Policy {
    Policy {
        lease_ms: spec.ack_wait_ms.max(1),
        max_deliver: spec.max_deliver.unwrap_or(u32::MAX).max(1),
        // Retries are immediate unless the caller gives a delay (a NAK's own): JetStream
        // redelivers at once after an expired ack wait.
        backoff: Backoff::Fixed { delay_ms: 0 },
        jitter: 0.0,
        max_unacked_per_worker: spec.max_ack_pending.clamp(1, ACK_PENDING_MAX),
        mode: ConsumerMode::Shared,
    }
}

fn validate(spec: &ConsumerSpec) -> Result<()> {
    let name = &spec.name;
    if name.is_empty() || name.len() > CONSUMER_NAME_BYTES_MAX {
        return Err(EngineError::InvalidName(format!(
            "consumer name must be 1 to {CONSUMER_NAME_BYTES_MAX} bytes"
        )));
    }
    if name
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '.' | '*' | '>'))
    {
        return Err(EngineError::InvalidName(format!(
            "consumer name {name:?} may not contain whitespace, '.', '*' or '>'"
        )));
    }
    for pattern in &spec.filter_subjects {
        omnibus_types::validate_pattern(pattern)
            .map_err(|e| EngineError::InvalidSubject(e.to_string()))?;
    }
    Ok(())
}

impl Consumer {
    fn open(stored: StoredConsumer, log: Arc<PartitionLog>, engine: &Engine) -> Result<Consumer> {
        let core_name = core_name(&stored.spec.stream, &stored.spec.name);
        let StoredCore { core, .. } = stored_core(
            &engine.state,
            &core_name,
            policy(&stored.spec),
            log.log_start_offset(),
            log.high_watermark(),
        )?;
        let delivered_end = core.floor();
        let delivered_count = core.floor().saturating_sub(stored.start_offset);
        let owned = if stored.spec.owned_pending {
            Some(owned::OwnedPending::load(
                &engine.state,
                &stored.spec.stream,
                &stored.spec.name,
            )?)
        } else {
            None
        };
        Ok(Consumer {
            reader: Arc::new(RecordReader::new(log.clone(), &core_name)),
            state_store: engine.state.clone(),
            lazy: LazyCommits::default(),
            ordered: ordered::OrderedCommits::default(),
            failure: OnceLock::new(),
            durable_floor: AtomicU64::new(core.floor()),
            removal: OnceLock::new(),
            stored,
            log,
            core_name,
            state: Mutex::new(ConsumerState {
                core,
                delivered_count,
                delivered_end,
                owned,
            }),
            changed: Notify::new(),
        })
    }

    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, ConsumerState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn info(&self) -> ConsumerInfo {
        let state = self.lock();
        // Records gone from the log (retention, a trim) are not counted pending, leased or
        // redelivered, as a JetStream consumer forgets messages removed from its stream; the
        // read that meets them finishes them (`skip_to_log_start`). The floor stays the
        // consumer's own (a Redis group's position is not moved by a trim).
        let log_start = self.log.log_start_offset();
        let (counts, redelivered, awaiting_redelivery) = state.core.counts_from(log_start);
        let unregistered = self
            .log
            .high_watermark()
            .saturating_sub(state.core.end().max(log_start));
        ConsumerInfo {
            stored: self.stored.clone(),
            ack_floor: state.core.floor(),
            ack_floor_in_log: state.core.floor_from(log_start),
            delivered_count: state.delivered_count,
            delivered_end: state.delivered_end,
            ack_pending: counts.leased,
            redelivered,
            awaiting_redelivery,
            pending: counts.ready + counts.delayed + unregistered,
        }
    }
}

impl Engine {
    /// Opens every stored consumer whose stream exists (at startup).
    pub(crate) fn open_consumers(&self) -> Result<()> {
        for (key, bytes) in self.state.scan_prefix(CONSUMERS_TABLE, "")? {
            let stored: StoredConsumer = serde_json::from_slice(&bytes).map_err(|e| {
                EngineError::Storage(omnibus_storage::StorageError::Corrupt(format!(
                    "consumer {key:?}: {e}"
                )))
            })?;
            let Ok(stream) = self.stream(&stored.spec.stream) else {
                continue;
            };
            let log = stream.partition(0)?.clone();
            let id = (stored.spec.stream.clone(), stored.spec.name.clone());
            let consumer = Arc::new(Consumer::open(stored, log, self)?);
            self.join_removal(&consumer);
            self.consumers_mut().insert(id, consumer);
        }
        Ok(())
    }

    fn consumers_mut(
        &self,
    ) -> std::sync::RwLockWriteGuard<'_, BTreeMap<(String, String), Arc<Consumer>>> {
        self.consumers.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Puts a removing consumer into its stream's removal group (that of its removing
    /// siblings, or a new one).
    fn join_removal(&self, consumer: &Arc<Consumer>) {
        if !consumer.stored.spec.remove_acked {
            return;
        }
        let stream = &consumer.stored.spec.stream;
        let existing = self
            .consumers
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|((s, _), _)| s == stream)
            .find_map(|(_, sibling)| sibling.removal.get().cloned());
        let group =
            existing.unwrap_or_else(|| Arc::new(removal::RemovalGroup::new(consumer.log.clone())));
        group.join(consumer);
        let _ = consumer.removal.set(group);
    }

    /// Every acked consumer now, in (stream, name) order; the table's lock is held only to
    /// copy the handles.
    pub(crate) fn consumer_list(&self) -> Vec<Arc<Consumer>> {
        self.consumers
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    pub(crate) fn consumer(&self, stream: &str, name: &str) -> Result<Arc<Consumer>> {
        self.consumers
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(stream.to_string(), name.to_string()))
            .cloned()
            .ok_or_else(|| EngineError::ConsumerNotFound {
                stream: stream.to_string(),
                consumer: name.to_string(),
            })
    }

    /// Creates an acked consumer over partition 0 of `spec.stream`, durably. Creating one
    /// that exists with the same spec answers its info; with another spec, `ConsumerExists`.
    pub async fn create_consumer(&self, spec: ConsumerSpec) -> Result<ConsumerInfo> {
        self.check_running()?;
        validate(&spec)?;
        let _change = self.consumer_changes.lock().await;
        let stream = self.stream(&spec.stream)?;
        if let Ok(existing) = self.consumer(&spec.stream, &spec.name) {
            if existing.stored.spec == spec {
                return Ok(existing.info());
            }
            return Err(EngineError::ConsumerExists {
                stream: spec.stream,
                consumer: spec.name,
            });
        }
        if self.list_consumers(&spec.stream).len() >= CONSUMERS_PER_STREAM_MAX {
            return Err(EngineError::LimitExceeded(format!(
                "stream {:?} has {CONSUMERS_PER_STREAM_MAX} consumers, the most it may have",
                spec.stream
            )));
        }
        let log = stream.partition(0)?.clone();
        let (first, end) = (log.log_start_offset(), log.high_watermark());
        let start_offset = match spec.start {
            ConsumerStart::Earliest => first,
            ConsumerStart::New => end,
            ConsumerStart::LastRecord => end.saturating_sub(1).max(first),
            ConsumerStart::Offset(offset) => offset.max(first),
            ConsumerStart::Time(ms) => self
                .resolve_offset(&spec.stream, 0, crate::OffsetSpec::Timestamp(ms))
                .await?
                .max(first),
        };
        let stored = StoredConsumer {
            spec,
            created_ms: now_ms(),
            start_offset,
        };
        let name = core_name(&stored.spec.stream, &stored.spec.name);
        let json = serde_json::to_vec(&stored).map_err(|e| EngineError::Internal(e.to_string()))?;
        let mut writes = delete_state_writes(&stored.spec.stream, &stored.spec.name);
        writes.push(StateWrite::Put {
            table: CONSUMERS_TABLE,
            key: spec_key(&stored.spec.stream, &stored.spec.name),
            value: json,
        });
        writes.push(StateWrite::Put {
            table: keys::TABLE,
            key: keys::floor(&name),
            value: start_offset.to_be_bytes().to_vec(),
        });
        self.state.commit(writes).await?;
        let id = (stored.spec.stream.clone(), stored.spec.name.clone());
        let consumer = Arc::new(Consumer::open(stored, log, self)?);
        self.join_removal(&consumer);
        let info = consumer.info();
        self.consumers_mut().insert(id, consumer);
        Ok(info)
    }

    pub fn consumer_info(&self, stream: &str, name: &str) -> Result<ConsumerInfo> {
        Ok(self.consumer(stream, name)?.info())
    }

    /// The consumers of `stream`, by name.
    pub fn list_consumers(&self, stream: &str) -> Vec<ConsumerInfo> {
        let consumers: Vec<Arc<Consumer>> = self
            .consumers
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|((s, _), _)| s == stream)
            .map(|(_, consumer)| consumer.clone())
            .collect();
        consumers.iter().map(|c| c.info()).collect()
    }

    /// Deletes a consumer and its state, durably.
    pub async fn delete_consumer(&self, stream: &str, name: &str) -> Result<()> {
        self.check_running()?;
        let _change = self.consumer_changes.lock().await;
        self.consumer(stream, name)?;
        self.state.commit(delete_state_writes(stream, name)).await?;
        self.consumers_mut()
            .remove(&(stream.to_string(), name.to_string()));
        self.consumers_removed.notify_waiters();
        Ok(())
    }

    /// Woken each time acked consumers are removed (deleted, or gone with their stream): a
    /// read waiting on one (a blocked Redis XREADGROUP) looks again and finds it gone. Call
    /// `notified()` and `enable` it before checking the consumer exists, so a removal in
    /// between is not missed.
    pub fn consumers_removed(&self) -> &tokio::sync::Notify {
        &self.consumers_removed
    }

    /// The writes that remove every consumer of `stream` (its deletion), and forgets them.
    pub(crate) fn forget_consumers_of(&self, stream: &str) -> Vec<StateWrite> {
        let mut consumers = self.consumers_mut();
        let names: Vec<String> = consumers
            .keys()
            .filter(|(s, _)| s == stream)
            .map(|(_, name)| name.clone())
            .collect();
        let mut writes = Vec::new();
        for name in names {
            consumers.remove(&(stream.to_string(), name.clone()));
            writes.extend(delete_state_writes(stream, &name));
        }
        if !writes.is_empty() {
            self.consumers_removed.notify_waiters();
        }
        writes
    }
}

/// Removes a consumer's spec and every key of its state.
fn delete_state_writes(stream: &str, name: &str) -> Vec<StateWrite> {
    vec![
        StateWrite::Delete {
            table: CONSUMERS_TABLE,
            key: spec_key(stream, name),
        },
        StateWrite::DeletePrefix {
            table: keys::TABLE,
            prefix: keys::prefix(&core_name(stream, name)),
        },
        owned::delete_writes(stream, name),
    ]
}
