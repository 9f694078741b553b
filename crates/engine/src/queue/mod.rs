//! Queues: a stream with work-queue retention and one shared acked consumer, adding
//! priorities (0–9, higher first, FIFO within a level), delayed delivery, per-message TTL,
//! leases with attempt numbers, retries with backoff, and dead-lettering with the reason.
//!
//! - `core.rs`: the state machine (pure, time passed in).
//! - `keys.rs`: its durable layout in the state store.
//! - `runtime.rs`: a live queue — core + logs + state store + timer task; `delivery.rs`:
//!   leasing, reading and handing out messages; `commit.rs`: its
//!   commits, and the failed state it enters when one fails.
//! - `append.rs`: building and appending new messages; `overflow.rs`: `max_length` and
//!   `max_bytes` with the overflow policy; `rates.rs`: per-second rates for the stats.
//! - `reader.rs`: reads messages by offset, keeping the last read decoded.
//! - `recovery.rs`: rebuilding a queue from disk, at start and when a failure healed.
//! - `durability.rs`: durable queues, and transient ones (no fsync, deleted at the next start).
//! - this file: the engine API.
//!
//! Delivery is at-least-once: a message is redelivered when its lease expires, when it is
//! nacked, and — for deliveries in flight — after a crash (attempt counts survive). A message
//! acked (or dead-lettered) with the answer received is never delivered again.

mod append;
mod bridged;
mod commit;
pub mod core;
pub mod deaths;
mod delivery;
mod durability;
mod expiry;
pub mod keys;
mod overflow;
pub mod policy;
pub mod ranges;
pub mod rates;
mod reader;
mod recovery;
mod redrive;
mod runtime;

use std::sync::Arc;

use bytes::Bytes;
use omnibus_storage::StateWrite;
use omnibus_types::{limits, Header};
use serde::{Deserialize, Serialize};

pub use commit::{DeadLetterRecords, FailureListener};
pub(crate) use commit::{Durable, LazyCommits, LAZY_WINDOW};
pub use core::ConsumerMode;
pub use delivery::{Delivery, QueueRemoval, ReadySignal};
pub use durability::QueueDurability;
pub use overflow::message_bytes;
pub use policy::Backoff;
pub use rates::{QueueRates, Rate};
pub(crate) use reader::RecordReader;
pub use redrive::RedriveState;
pub(crate) use runtime::header_i64;
pub(crate) use runtime::{reset_core, stored_core, StoredCore, StoredTimers};
pub use runtime::{DeadLetterListener, Queue, DUE_HEADER, EXPIRES_HEADER, PRIORITY_HEADER};

use crate::engine::{now_ms, Engine};
use crate::error::{EngineError, Result};
use crate::model::StreamSpec;
use crate::streams::registry::off_the_runtime;

const QUEUES_TABLE: &str = "queues";
/// Longest delay a message may ask for (one year).
pub const DELAY_MS_MAX: u64 = 365 * 24 * 3600 * 1000;

/// What a caller asks for when creating a queue; `None` takes the default.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct QueueSpec {
    pub name: String,
    pub lease_ms: Option<u64>,
    pub max_deliver: Option<u32>,
    pub backoff: Option<Backoff>,
    pub jitter: Option<f64>,
    pub max_unacked_per_worker: Option<usize>,
    /// Stream receiving dead letters; default `<name>.dlq`.
    pub dead_letter: Option<String>,
    /// Default time-to-live of a message; expired messages are dead-lettered or dropped.
    pub ttl_ms: Option<u64>,
    pub dead_letter_expired: Option<bool>,
    pub mode: Option<core::ConsumerMode>,
    /// Most messages waiting (ready or delayed); `None` is unbounded.
    pub max_length: Option<u64>,
    /// Most bytes of waiting messages ([`message_bytes`] each); `None` is unbounded, 0 is
    /// refused.
    pub max_bytes: Option<u64>,
    /// What an enqueue into a full queue does.
    pub overflow: Option<Overflow>,
    /// Enqueues carrying a message id seen within this window are not enqueued again.
    pub dedup_window_ms: Option<u64>,
    /// When an ack (a job's completion) is answered: after its fsync, or at once.
    pub completions: Option<Completions>,
    /// Whether the queue outlives the broker: `transient` skips the fsync of enqueues and is
    /// deleted at the next start (`durability.rs`).
    pub durability: Option<QueueDurability>,
}

/// When an acknowledgement of a delivery (a job's completion) is answered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Completions {
    /// After it is fsynced (group-committed with concurrent ones): an acknowledged completion
    /// never runs again.
    #[default]
    Fsync,
    /// At once, its commit sent to the group committer without waiting for it (at most
    /// `LAZY_COMMITS_MAX` of a queue's commits outstanding). A crash before that commit can
    /// run a completed job again; it never loses an enqueued one.
    Batched,
}

impl Completions {
    pub fn as_str(self) -> &'static str {
        match self {
            Completions::Fsync => "fsync",
            Completions::Batched => "batched",
        }
    }
}

/// What happens when an enqueue would exceed `max_length` or `max_bytes`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Overflow {
    /// Refuse the enqueue (`queue_full`).
    #[default]
    RejectNew,
    /// Drop the oldest ready messages (by id, any priority) until the new ones fit. Delayed
    /// messages are not removed: a queue full of them refuses (`queue_full`).
    DropOldest,
    /// Move the oldest ready messages to the dead-letter stream until the new ones fit.
    DeadLetterOldest,
    /// Refuse the enqueue (`queue_full`), and write the refused messages to the dead-letter
    /// stream (AMQP's `reject-publish-dlx`).
    DeadLetterNew,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct QueueConfig {
    pub name: String,
    pub lease_ms: u64,
    pub max_deliver: u32,
    pub backoff: Backoff,
    pub jitter: f64,
    pub max_unacked_per_worker: usize,
    pub dead_letter: String,
    pub ttl_ms: Option<u64>,
    pub dead_letter_expired: bool,
    #[serde(default)]
    pub mode: core::ConsumerMode,
    #[serde(default)]
    pub max_length: Option<u64>,
    /// Absent in configs stored before it existed: unbounded.
    #[serde(default)]
    pub max_bytes: Option<u64>,
    #[serde(default)]
    pub overflow: Overflow,
    #[serde(default = "default_dedup_window_ms")]
    pub dedup_window_ms: u64,
    /// Absent in configs stored before it existed: `fsync`, what they promised.
    #[serde(default)]
    pub completions: Completions,
    /// Absent in configs stored before it existed: `durable`, what they promised.
    #[serde(default)]
    pub durability: QueueDurability,
    pub created_ms: i64,
}

fn dedup_key(queue: &str, id: &str) -> String {
    format!("{queue}\u{1f}{id}")
}

/// Sorts by expiry after every `dedup_key` of the queue (`~` follows printable ids).
fn dedup_expiry_key(queue: &str, expires_ms: i64, id: &str) -> String {
    format!("{queue}\u{1f}~{:020}\u{1f}{id}", expires_ms.max(0))
}

fn default_dedup_window_ms() -> u64 {
    DEDUP_WINDOW_MS_DEFAULT
}

/// Default dedup window for message ids (JetStream's default duplicate window).
pub const DEDUP_WINDOW_MS_DEFAULT: u64 = 120_000;
const DEDUP_TABLE: &str = "queue_dedup";

fn durability_of(spec: &QueueSpec) -> QueueDurability {
    spec.durability.unwrap_or_default()
}

impl QueueConfig {
    pub fn policy(&self) -> core::Policy {
        core::Policy {
            lease_ms: self.lease_ms,
            max_deliver: self.max_deliver,
            backoff: self.backoff,
            jitter: self.jitter,
            max_unacked_per_worker: self.max_unacked_per_worker,
            mode: self.mode,
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct QueueInfo {
    #[serde(flatten)]
    pub config: QueueConfig,
    pub ready: u64,
    pub delayed: u64,
    pub leased: u64,
    /// Every offset below this is finished.
    pub ack_floor: u64,
    pub enqueued_total: u64,
    pub paused: bool,
    /// Dead letters not yet redriven.
    pub dead_letter_depth: u64,
    /// Bytes of the waiting (ready or delayed) messages, as `max_bytes` counts them.
    pub waiting_bytes: u64,
    /// What happened in the last minute; in memory, starting over when the broker restarts.
    pub rates: QueueRates,
    /// Why the queue refuses all work (`storage_failed`): a state commit failed after its
    /// memory had changed. Absent while the queue works; the queue is rebuilt from what is
    /// durable by a restart, or without one once an I/O failure of the state store (a full
    /// disk) or of the dead-letter stream's full disk has healed (`recovery.rs`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
}

/// One message to enqueue.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnqueueMessage {
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<Header>,
    /// 0–9, higher first.
    pub priority: u8,
    /// Not delivered before this many ms from now.
    pub delay_ms: Option<u64>,
    /// Overrides the queue's TTL.
    pub ttl_ms: Option<u64>,
    /// Producer's message id: a second enqueue with the same id within the queue's dedup
    /// window is not stored again and answers with the first one's offset.
    pub id: Option<String>,
}

impl Engine {
    pub(crate) fn open_queues(&self) -> Result<()> {
        for (name, bytes) in self.state.scan_prefix(QUEUES_TABLE, "")? {
            if durability::is_transient_config(&bytes) {
                continue; // deleted, unopened, by `delete_transient_queues`
            }
            let config: QueueConfig = serde_json::from_slice(&bytes)
                .map_err(|e| EngineError::Internal(format!("queue {name:?} metadata: {e}")))?;
            self.start_queue(config)?;
        }
        Ok(())
    }

    fn start_queue(&self, config: QueueConfig) -> Result<Arc<Queue>> {
        let log = self.stream(&config.name)?.partition(0)?.clone();
        let dead_letter = self.stream(&config.dead_letter)?.partition(0)?.clone();
        let queue = Queue::open(config.clone(), log, dead_letter, self.state.clone())?;
        self.watch_dead_letters(&queue);
        Queue::spawn_timer_task(&queue);
        self.queues
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(config.name.clone(), queue.clone());
        Ok(queue)
    }

    pub(crate) fn queue(&self, name: &str) -> Result<Arc<Queue>> {
        self.queues
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
            .ok_or_else(|| EngineError::QueueNotFound(name.to_string()))
    }

    /// Creates a queue, its backing stream (same name, one partition, no time retention:
    /// finished messages are removed by the queue) and its dead-letter stream, durably. The
    /// disk work runs off the async runtime.
    pub async fn create_queue(self: &Arc<Self>, spec: QueueSpec) -> Result<QueueInfo> {
        let engine = self.clone();
        off_the_runtime(move || engine.create_queue_blocking(spec)).await
    }

    /// [`Engine::create_queue`] on the calling thread, which must be allowed to block.
    fn create_queue_blocking(&self, spec: QueueSpec) -> Result<QueueInfo> {
        self.check_running()?;
        let _ordered = self.queue_changes.lock().unwrap_or_else(|p| p.into_inner());
        if self.queue(&spec.name).is_ok() {
            return Err(EngineError::QueueExists(spec.name));
        }
        let config = QueueConfig {
            lease_ms: spec.lease_ms.unwrap_or(30_000).clamp(1, 24 * 3600 * 1000),
            max_deliver: spec.max_deliver.unwrap_or(5).max(1),
            backoff: spec.backoff.unwrap_or_default(),
            jitter: spec.jitter.unwrap_or(0.2).clamp(0.0, 1.0),
            max_unacked_per_worker: spec
                .max_unacked_per_worker
                .unwrap_or(1_000)
                .clamp(1, 1_000_000),
            dead_letter: spec
                .dead_letter
                .clone()
                .unwrap_or_else(|| format!("{}.dlq", spec.name)),
            ttl_ms: spec.ttl_ms,
            dead_letter_expired: spec.dead_letter_expired.unwrap_or(true),
            mode: spec.mode.unwrap_or_default(),
            max_length: spec.max_length,
            max_bytes: spec.max_bytes,
            overflow: spec.overflow.unwrap_or_default(),
            dedup_window_ms: spec
                .dedup_window_ms
                .unwrap_or(DEDUP_WINDOW_MS_DEFAULT)
                .min(DELAY_MS_MAX),
            completions: spec
                .completions
                .unwrap_or_else(|| durability_of(&spec).default_completions()),
            durability: durability_of(&spec),
            created_ms: now_ms(),
            name: spec.name,
        };
        if config.max_bytes == Some(0) {
            return Err(EngineError::InvalidConfig(
                "max_bytes must be at least 1 (leave it out for no limit)".into(),
            ));
        }
        if config.ttl_ms.is_some_and(|t| t > DELAY_MS_MAX) {
            return Err(EngineError::InvalidConfig(format!(
                "ttl_ms is over {DELAY_MS_MAX}"
            )));
        }
        if let Backoff::Exponential {
            initial_ms,
            max_ms,
            multiplier,
        } = config.backoff
        {
            if initial_ms > DELAY_MS_MAX
                || max_ms > DELAY_MS_MAX
                || !(1.0..=1_000.0).contains(&multiplier)
            {
                return Err(EngineError::InvalidConfig(
                    "backoff: delays must be at most a year and the multiplier between 1 and 1000"
                        .into(),
                ));
            }
        }
        if let Backoff::Fixed { delay_ms } = config.backoff {
            if delay_ms > DELAY_MS_MAX {
                return Err(EngineError::InvalidConfig(
                    "backoff delay is over a year".into(),
                ));
            }
        }
        if config.dead_letter == config.name {
            return Err(EngineError::InvalidConfig(
                "a queue cannot dead-letter into itself".into(),
            ));
        }
        self.create_stream_blocking(StreamSpec {
            name: config.name.clone(),
            partitions: Some(1),
            retention_ms: None,
            fsync: config.durability.backing_fsync(),
            ..Default::default()
        })?;
        if self.stream(&config.dead_letter).is_err() {
            if let Err(error) = self.create_stream_blocking(StreamSpec {
                name: config.dead_letter.clone(),
                partitions: Some(1),
                ..Default::default()
            }) {
                let _ = self.delete_stream_blocking(&config.name);
                return Err(error);
            }
        }
        let bytes = serde_json::to_vec(&config).expect("queue config serializes");
        self.state.put(QUEUES_TABLE, &config.name, &bytes)?;
        let queue = self.start_queue(config)?;
        Ok(self.describe_queue(&queue))
    }

    fn describe_queue(&self, queue: &Queue) -> QueueInfo {
        let rates = queue.rates();
        let core = queue.lock();
        let counts = core.counts();
        QueueInfo {
            config: queue.config.clone(),
            ready: counts.ready,
            delayed: counts.delayed,
            leased: counts.leased,
            ack_floor: core.floor(),
            enqueued_total: core.end(),
            paused: core.is_paused(),
            dead_letter_depth: queue.dead_letter_depth(),
            waiting_bytes: core.waiting_bytes(),
            rates,
            failure: queue.failure().map(str::to_string),
        }
    }

    pub fn queue_info(&self, name: &str) -> Result<QueueInfo> {
        let queue = self.queue(name)?;
        Ok(self.describe_queue(&queue))
    }

    pub fn list_queues(&self) -> Vec<QueueInfo> {
        let queues: Vec<Arc<Queue>> = self
            .queues
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        queues.iter().map(|q| self.describe_queue(q)).collect()
    }

    /// Deletes a queue, its state and its backing stream (not its dead-letter stream).
    /// The queue whose messages live in `stream` — or, with `dead_letters`, whose messages
    /// or dead letters do.
    pub(crate) fn queue_in_stream(&self, stream: &str, dead_letters: bool) -> Option<String> {
        let queues = self.queues.read().unwrap_or_else(|p| p.into_inner());
        // A queue's stream has its name: one lookup on the publish path.
        if queues.contains_key(stream) {
            return Some(stream.to_string());
        }
        if !dead_letters {
            return None;
        }
        queues
            .values()
            .find(|queue| queue.config.dead_letter == stream)
            .map(|queue| queue.config.name.clone())
    }

    /// Refuses writes into a queue's own stream from outside the queue (a publish, a Kafka
    /// produce): such a record would sit in the queue's log untracked, never delivered, and
    /// would hold the queue's ack floor below it forever. The dead-letter stream is a plain
    /// stream and takes writes.
    pub(crate) fn check_not_a_queue_log(&self, stream: &str) -> Result<()> {
        match self.queue_in_stream(stream, false) {
            Some(queue) => Err(EngineError::InvalidConfig(format!(
                "stream {stream:?} holds the messages of queue {queue:?}: enqueue to the queue instead"
            ))),
            None => Ok(()),
        }
    }

    /// Refuses to change or delete a stream a queue keeps its messages or dead letters in: the
    /// queue holds its partition log open, and deleting it would lose acknowledged messages.
    pub fn check_not_a_queue_stream(&self, stream: &str) -> Result<()> {
        match self.queue_in_stream(stream, true) {
            Some(queue) => Err(EngineError::InvalidConfig(format!(
                "stream {stream:?} holds the messages of queue {queue:?}: change or delete the queue instead"
            ))),
            None => Ok(()),
        }
    }

    /// Deletes a queue, its jobs and its streams, durably; the disk work runs off the async
    /// runtime.
    pub async fn delete_queue(self: &Arc<Self>, name: &str) -> Result<()> {
        let engine = self.clone();
        let name = name.to_string();
        off_the_runtime(move || engine.delete_queue_blocking(&name)).await
    }

    /// [`Engine::delete_queue`] on the calling thread, which must be allowed to block.
    fn delete_queue_blocking(&self, name: &str) -> Result<()> {
        self.check_running()?;
        let _ordered = self.queue_changes.lock().unwrap_or_else(|p| p.into_inner());
        self.queue(name)?;
        let mut writes = vec![
            StateWrite::Delete {
                table: QUEUES_TABLE,
                key: name.to_string(),
            },
            StateWrite::DeletePrefix {
                table: keys::TABLE,
                prefix: keys::prefix(name),
            },
        ];
        // Its jobs go with it, so a queue created again under the name starts empty.
        writes.extend(crate::jobs::queue_jobs_deletion(name));
        // Forgotten in memory only once gone from the disk: a failed write leaves the queue
        // as it was, not deleted until a restart brings it back.
        self.state.write(&writes)?;
        crate::jobs::forget_queue(&self.jobs, name);
        let queue = self
            .queues
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name)
            .ok_or_else(|| EngineError::QueueNotFound(name.to_string()))?;
        // Waiters look it up again and find it gone; holders of its removal hear of it.
        queue.mark_removed();
        drop(queue);
        self.delete_stream_blocking(name)
    }

    /// Appends messages durably and makes them deliverable; returns their offsets (ids).
    pub async fn enqueue(
        &self,
        queue_name: &str,
        messages: Vec<EnqueueMessage>,
    ) -> Result<Vec<u64>> {
        self.check_running()?;
        let queue = self.queue(queue_name)?;
        queue.check_healthy()?;
        if messages.is_empty() {
            return Ok(Vec::new());
        }
        if messages.iter().all(|m| m.id.is_none()) {
            return self.enqueue_fresh(&queue, messages).await;
        }
        // Message ids: look up, enqueue the new ones, remember them — one at a time per queue.
        let _dedup = queue.dedup_lock.lock().await;
        let now = now_ms();
        let mut answers: Vec<Option<u64>> = vec![None; messages.len()];
        let mut fresh = Vec::new();
        let mut fresh_slots = Vec::new();
        let mut in_batch: std::collections::HashMap<String, usize> =
            std::collections::HashMap::new();
        let mut copies = Vec::new();
        for (index, message) in messages.into_iter().enumerate() {
            if let Some(id) = &message.id {
                if id.is_empty() || id.len() > 1024 {
                    return Err(EngineError::BadRequest(
                        "a message id must be 1 to 1024 bytes".into(),
                    ));
                }
                if let Some(offset) = self.dedup_lookup(queue_name, id, now)? {
                    answers[index] = Some(offset);
                    continue;
                }
                if let Some(first) = in_batch.get(id) {
                    copies.push((index, *first));
                    continue;
                }
                in_batch.insert(id.clone(), fresh.len());
            }
            fresh_slots.push(index);
            fresh.push(message);
        }
        let ids: Vec<Option<String>> = fresh.iter().map(|m| m.id.clone()).collect();
        let offsets = if fresh.is_empty() {
            Vec::new()
        } else {
            self.enqueue_fresh(&queue, fresh).await?
        };
        let expires = now + queue.config.dedup_window_ms as i64;
        let mut writes = Vec::new();
        for (slot, (offset, id)) in fresh_slots.iter().zip(offsets.iter().zip(&ids)) {
            answers[*slot] = Some(*offset);
            if let Some(id) = id {
                writes.push(StateWrite::Put {
                    table: DEDUP_TABLE,
                    key: dedup_key(queue_name, id),
                    value: [offset.to_be_bytes(), expires.to_be_bytes()].concat(),
                });
                writes.push(StateWrite::Put {
                    table: DEDUP_TABLE,
                    key: dedup_expiry_key(queue_name, expires, id),
                    value: Vec::new(),
                });
            }
        }
        for (index, first) in copies {
            answers[index] = Some(offsets[first]);
        }
        queue.commit(writes).await?;
        Ok(answers
            .into_iter()
            .map(|a| a.expect("every message answered"))
            .collect())
    }

    fn dedup_lookup(&self, queue: &str, id: &str, now: i64) -> Result<Option<u64>> {
        let Some(value) = self.state.get(DEDUP_TABLE, &dedup_key(queue, id))? else {
            return Ok(None);
        };
        if value.len() != 16 {
            return Ok(None);
        }
        let offset = u64::from_be_bytes(value[..8].try_into().expect("8 bytes"));
        let expires = i64::from_be_bytes(value[8..].try_into().expect("8 bytes"));
        Ok((expires > now).then_some(offset))
    }

    /// Deletes dedup entries whose window has passed (run by maintenance).
    pub(crate) fn sweep_dedup(&self) -> Result<()> {
        let now = now_ms();
        let names: Vec<String> = self
            .queues
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .cloned()
            .collect();
        for queue in names {
            let start = dedup_expiry_key(&queue, 0, "");
            let end = dedup_expiry_key(&queue, now, "");
            let expired = self.state.scan_range(DEDUP_TABLE, &start, &end, 10_000)?;
            let mut writes = Vec::with_capacity(expired.len() * 2);
            for (key, _) in expired {
                // `<queue>␟~<expires:20>␟<id>`
                if let Some(id) = key.splitn(3, '\u{1f}').nth(2) {
                    if self.dedup_lookup(&queue, id, now)?.is_none() {
                        writes.push(StateWrite::Delete {
                            table: DEDUP_TABLE,
                            key: dedup_key(&queue, id),
                        });
                    }
                }
                writes.push(StateWrite::Delete {
                    table: DEDUP_TABLE,
                    key,
                });
            }
            if !writes.is_empty() {
                self.state.write(&writes)?;
            }
        }
        Ok(())
    }

    /// Leases up to `max` messages to `worker`, waiting up to `wait_ms` for the first.
    pub async fn receive(
        &self,
        queue: &str,
        worker: &str,
        max: usize,
        wait_ms: u64,
    ) -> Result<Vec<Delivery>> {
        let wait_ms = wait_ms.min(limits::FETCH_WAIT_MS_MAX);
        self.queue(queue)?
            .receive(worker, max.clamp(1, 10_000), wait_ms)
            .await
    }

    pub async fn ack(&self, queue: &str, offset: u64, attempt: u32) -> Result<()> {
        self.queue(queue)?.ack(offset, attempt).await
    }

    /// A failed attempt: redelivered after `delay_ms` or the queue's backoff, or
    /// dead-lettered with `error` once `max_deliver` attempts are used.
    pub async fn nack(
        &self,
        queue: &str,
        offset: u64,
        attempt: u32,
        delay_ms: Option<u64>,
        error: &str,
    ) -> Result<()> {
        if delay_ms.is_some_and(|d| d > DELAY_MS_MAX) {
            return Err(EngineError::BadRequest("nack delay too large".into()));
        }
        self.queue(queue)?
            .nack(offset, attempt, delay_ms, error)
            .await
    }

    /// Heartbeat: the lease now ends `lease_ms` from now (default: the queue's lease).
    pub async fn extend(
        &self,
        queue: &str,
        offset: u64,
        attempt: u32,
        lease_ms: Option<u64>,
    ) -> Result<i64> {
        let queue = self.queue(queue)?;
        let lease_ms = lease_ms
            .unwrap_or(queue.config.lease_ms)
            .clamp(1, 24 * 3600 * 1000);
        queue.extend(offset, attempt, lease_ms).await
    }

    /// Stops redelivery and dead-letters now.
    pub async fn term(&self, queue: &str, offset: u64, attempt: u32, reason: &str) -> Result<()> {
        self.queue(queue)?.term(offset, attempt, reason).await
    }
}

impl Engine {
    /// Stops deliveries (enqueues, acks and timers go on). Durable.
    pub async fn pause_queue(&self, name: &str) -> Result<()> {
        self.queue(name)?.set_paused(true).await
    }

    pub async fn resume_queue(&self, name: &str) -> Result<()> {
        self.queue(name)?.set_paused(false).await
    }

    /// Removes every ready and waiting message; returns how many.
    pub async fn purge_queue(&self, name: &str) -> Result<u64> {
        self.queue(name)?.purge().await
    }

    /// Dead letters of a queue, from `offset` of its dead-letter stream.
    pub async fn dead_letters(
        &self,
        queue: &str,
        offset: u64,
        limit: usize,
    ) -> Result<crate::FetchResult> {
        let queue = self.queue(queue)?;
        let start = offset.max(queue.dead_letter.log_start_offset());
        self.fetch(crate::FetchRequest {
            stream: queue.config.dead_letter.clone(),
            partition: 0,
            offset: start,
            max_records: limit.clamp(1, 10_000),
            max_bytes: 16 << 20,
            wait_ms: 0,
        })
        .await
    }
}

#[cfg(test)]
mod expiry_tests;
#[cfg(test)]
pub(crate) mod failure_tests;
#[cfg(test)]
mod limits_tests;
#[cfg(test)]
mod redrive_tests;
#[cfg(test)]
mod reload_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod transient_tests;
#[cfg(test)]
mod wakeup_tests;
