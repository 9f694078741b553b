//! A live queue: the state machine behind a mutex, its backing stream's log, the state store,
//! and a timer task that fires delays and lease expiries on time.
//!
//! The core is mutated under a std mutex (never held across an await); the writes it returns
//! are then group-committed to the state store, and only after that does the caller answer
//! its client. Two steps on the same offset cannot have their writes reordered: a worker
//! acks only a delivery it has received, and it receives it only after the delivery's writes
//! are committed; the committer applies requests in arrival order. What happens when a
//! commit fails: `commit.rs`.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use omnibus_storage::batch::EncodedBatches;
use omnibus_storage::{PartitionLog, StateStore, StateWrite};
use omnibus_types::Record;
use tokio::sync::Notify;

use super::commit::Durable;
use super::commit::{copy_commit_error, DeadLetterRecords, Failure, FailureListener};
use super::core::{DeadLetter, Grant, QueueCore, TimerSource};
use super::keys;
use super::overflow::message_bytes;
use super::rates::{QueueRates, RateKind, RateRing};
use super::reader::RecordReader;
use super::QueueConfig;
use crate::engine::now_ms;
use crate::error::{EngineError, Result};

/// Header carrying a message's not-before time (ms since the epoch). Authoritative: a
/// delivery of a message that is not yet due is turned back into a timer, which covers a crash
/// between the log append and the timer's commit.
pub const DUE_HEADER: &str = "omnibus.due_ms";
pub const PRIORITY_HEADER: &str = "omnibus.priority";
pub const EXPIRES_HEADER: &str = "omnibus.expires_ms";

pub struct Queue {
    pub config: QueueConfig,
    /// Which queue of this name this is: unique in the process, so a queue deleted and
    /// declared again under the same name is told apart from the one before (a door's
    /// consumer of the old one ends; its unsettled deliveries settle nothing in the new one).
    pub incarnation: u64,
    core: Mutex<QueueCore>,
    pub(crate) log: Arc<PartitionLog>,
    pub(crate) dead_letter: Arc<PartitionLog>,
    /// Reads messages by offset for deliveries and dead letters.
    pub(super) reader: Arc<RecordReader>,
    pub(super) state: Arc<StateStore>,
    /// Woken when offsets become ready, so long-polling receivers retry.
    pub(crate) available: Notify,
    /// Set, and `removed_notify` woken, once the queue is deleted (`QueueRemoval`).
    pub(super) removed: std::sync::atomic::AtomicBool,
    pub(super) removed_notify: Notify,
    /// Raised with every wake-up of `available`, so a waiter that snapshots it before an
    /// empty receive cannot miss a wake-up that came in between (`ReadySignal`).
    pub(super) ready_generation: std::sync::atomic::AtomicU64,
    /// Woken when a new timer or lease may be earlier than the timer task's sleep.
    pub(super) timer_changed: Arc<Notify>,
    /// When the timer task will next wake on its own (ms since the epoch), set under the
    /// `core` lock with the deadline it was computed from. A lease due after it needs no
    /// wake-up: waking the task for every delivery (leases are due in seconds, the task wakes
    /// at least every second) was a task switch, often across threads, per job.
    pub(super) timer_wake_at_ms: std::sync::atomic::AtomicI64,
    /// When the timer task should next sweep the head for expired messages (`expiry.rs`).
    pub(super) next_expiry_ms: std::sync::atomic::AtomicI64,
    /// Whether the queue has held a message with a TTL (so its head is swept every second
    /// while messages are ready).
    pub(super) ttl_seen: std::sync::atomic::AtomicBool,
    /// Passes of the timer task (for tests of how often deliveries wake it).
    pub(super) timer_ticks: std::sync::atomic::AtomicU64,
    /// Dead-letter stream offset up to which messages were redriven.
    pub(crate) redriven: std::sync::atomic::AtomicU64,
    /// Dead letters at or above `redriven` that were redriven one at a time (`redrive.rs`).
    pub(crate) redriven_one: Mutex<std::collections::BTreeSet<u64>>,
    /// Held from adding a timer until its write is committed, and while loading timers from
    /// the store, so a load never misses a timer whose write is still in flight.
    pub(super) timer_io: tokio::sync::Mutex<()>,
    /// Serializes enqueues that carry message ids (lookup, append, remember).
    pub(crate) dedup_lock: tokio::sync::Mutex<()>,
    /// Told about every message the queue dead-letters (the jobs layer records them).
    pub(crate) on_dead_letter: Mutex<Option<DeadLetterListener>>,
    /// Told once if the queue fails (the jobs layer tells event subscribers).
    pub(crate) on_failure: Mutex<Option<FailureListener>>,
    /// Events per second over the last minute. Its own small mutex, never held with `core`.
    rates: Mutex<RateRing>,
    /// Why the queue refuses work: set (under the `core` lock) when a state commit fails.
    pub(super) failure: std::sync::OnceLock<Failure>,
    /// Commits sent and not yet answered; none starts once `failure` is set (`commit.rs`).
    pub(super) commits_in_flight: Mutex<usize>,
    /// The commits answered before they are durable, and their bound (`commit.rs`).
    pub(super) lazy: super::commit::LazyCommits,
}

/// Applies acks to the core: one answer per ack, and the writes of those that succeeded (each
/// with its `extra` writes). A stale or unknown delivery writes nothing.
pub(super) fn ack_all(
    core: &mut QueueCore,
    acks: Vec<(u64, u32, Vec<StateWrite>)>,
) -> (Vec<Result<()>>, Vec<StateWrite>) {
    let mut writes = Vec::new();
    let answers = acks
        .into_iter()
        .map(|(offset, attempt, extra)| {
            let ack = core.ack(offset, attempt)?;
            writes.extend(ack);
            writes.extend(extra);
            Ok(())
        })
        .collect();
    (answers, writes)
}

/// Told the queue, the dead letters and their original messages (in the same order); answers
/// what to commit with them. Runs on the caller's task: it must not block on I/O (reads of
/// the state store are fine, writes go back in its answer).
pub type DeadLetterListener =
    Arc<dyn Fn(&Queue, &[DeadLetter], &[Record]) -> DeadLetterRecords + Send + Sync>;

/// Reads stored timers for the core's window.
pub(crate) struct StoredTimers<'a> {
    pub(crate) state: &'a StateStore,
    pub(crate) queue: &'a str,
}

impl TimerSource for StoredTimers<'_> {
    fn load_after(&self, after: Option<(i64, u64)>, limit: usize) -> Vec<(i64, u64)> {
        let start = match after {
            // The next key after `after`: same key plus a byte that sorts first.
            Some((due, offset)) => format!("{}\u{0}", keys::timer(self.queue, due, offset)),
            None => keys::timer_range_start(self.queue),
        };
        let end = keys::timer_range_end(self.queue);
        match self.state.scan_range(keys::TABLE, &start, &end, limit) {
            Ok(entries) => entries
                .iter()
                .filter_map(|(key, _)| keys::suffix(self.queue, key).and_then(keys::parse_timer))
                .collect(),
            Err(error) => {
                tracing::error!(queue = self.queue, "reading timers failed: {error}");
                Vec::new()
            }
        }
    }
}

/// A queue core as its stored state leaves it (see `keys.rs`), over a log whose records run
/// from `log_start` to `log_end`: leases gone, attempts counted conservatively. Queues and the
/// acked consumers of streams (`crate::consumers`) both start this way.
pub(crate) struct StoredCore {
    pub(crate) core: QueueCore,
    pub(crate) paused: bool,
    pub(crate) redriven: u64,
}

pub(crate) fn stored_core(
    state: &StateStore,
    name: &str,
    policy: super::core::Policy,
    log_start: u64,
    log_end: u64,
) -> Result<StoredCore> {
    let mut core = QueueCore::new(name, policy);
    let mut floor = 0;
    let mut paused = false;
    let mut redriven = 0;
    let mut finished = Vec::new();
    let mut attempts = Vec::new();
    let mut priorities = Vec::new();
    let mut runs = Vec::new();
    let mut frontiers = Vec::new();
    for (key, value) in state.scan_prefix(keys::TABLE, &keys::prefix(name))? {
        let Some(suffix) = keys::suffix(name, &key) else {
            continue;
        };
        let number = |text: &str| text.parse::<u64>().ok();
        match suffix.split_at(1) {
            ("F", _) if value.len() == 8 => {
                floor = u64::from_be_bytes(value[..8].try_into().expect("8 bytes"))
            }
            ("A", start) => {
                if let Some(start) = number(start) {
                    let end = match value.len() {
                        8 => u64::from_be_bytes(value[..8].try_into().expect("8 bytes")),
                        _ => start + 1, // the one-key-per-offset layout
                    };
                    finished.push((start, end));
                }
            }
            ("S", "") => paused = true,
            ("R", "") if value.len() == 8 => {
                redriven = u64::from_be_bytes(value[..8].try_into().expect("8 bytes"))
            }
            ("D", offset) => {
                if let Some(offset) = number(offset) {
                    let (count, error) = keys::decode_delivery(&value);
                    attempts.push((offset, count, error));
                }
            }
            ("G", end) if value.len() == 8 => {
                if let Some(end) = number(end) {
                    let first = u64::from_be_bytes(value[..8].try_into().expect("8 bytes"));
                    runs.push((first, end));
                }
            }
            ("L", priority) if value.len() == 8 => {
                if let Ok(priority) = priority.parse::<usize>() {
                    let frontier = u64::from_be_bytes(value[..8].try_into().expect("8 bytes"));
                    frontiers.push((priority, frontier));
                }
            }
            ("P", first) if value.len() == 9 => {
                if let Some(first) = number(first) {
                    let end = u64::from_be_bytes(value[..8].try_into().expect("8 bytes"));
                    priorities.push((first, end, value[8]));
                }
            }
            _ => {}
        }
    }
    let floor = floor.max(log_start);
    let timers = StoredTimers { state, queue: name };
    core.recover(floor, finished, attempts, priorities, &timers, log_end);
    core.recover_runs(runs);
    core.recover_frontiers(&frontiers);
    Ok(StoredCore {
        core,
        paused,
        redriven,
    })
}

/// A queue core with nothing stored but its ack floor, over a log ending at `log_end`: what
/// [`stored_core`] builds once a reset (every key of the core deleted, the floor put) is
/// durable, built before it is, so a caller can swap it in under the lock it pushes the
/// reset's writes under.
pub(crate) fn reset_core(
    name: &str,
    policy: super::core::Policy,
    floor: u64,
    log_end: u64,
) -> QueueCore {
    /// The reset deleted every timer.
    struct NoTimers;
    impl TimerSource for NoTimers {
        fn load_after(&self, _: Option<(i64, u64)>, _: usize) -> Vec<(i64, u64)> {
            Vec::new()
        }
    }
    let mut core = QueueCore::new(name, policy);
    core.recover(
        floor,
        Vec::new(),
        Vec::new(),
        Vec::new(),
        &NoTimers,
        log_end,
    );
    core
}

impl Queue {
    /// Opens a queue over its logs, rebuilding its state from the state store.
    pub fn open(
        config: QueueConfig,
        log: Arc<PartitionLog>,
        dead_letter: Arc<PartitionLog>,
        state: Arc<StateStore>,
    ) -> Result<Arc<Queue>> {
        let name = config.name.clone();
        let StoredCore {
            mut core,
            paused,
            redriven,
        } = stored_core(
            &state,
            &name,
            config.policy(),
            log.log_start_offset(),
            log.high_watermark(),
        )?;
        core.set_paused(paused);
        let ttl_configured = config.ttl_ms.is_some();
        super::recovery::recover_from_log(
            &mut core,
            &log,
            &name,
            config.mode == super::core::ConsumerMode::KeyShared,
        )?;
        static INCARNATIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Ok(Arc::new(Queue {
            incarnation: INCARNATIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            rates: Mutex::new(RateRing::new(now_ms())),
            redriven: std::sync::atomic::AtomicU64::new(redriven),
            redriven_one: Mutex::new(super::redrive::load_redriven_one(&state, &name)?),
            on_dead_letter: Mutex::new(None),
            on_failure: Mutex::new(None),
            timer_io: tokio::sync::Mutex::new(()),
            dedup_lock: tokio::sync::Mutex::new(()),
            config,
            core: Mutex::new(core),
            reader: Arc::new(RecordReader::new(log.clone(), &name)),
            log,
            dead_letter,
            state,
            available: Notify::new(),
            removed: std::sync::atomic::AtomicBool::new(false),
            removed_notify: Notify::new(),
            ready_generation: std::sync::atomic::AtomicU64::new(0),
            timer_changed: Arc::new(Notify::new()),
            // Until the timer task has planned its sleep, every lease wakes it.
            timer_wake_at_ms: std::sync::atomic::AtomicI64::new(i64::MAX),
            timer_ticks: std::sync::atomic::AtomicU64::new(0),
            // Swept once at open: the log may hold messages with a TTL.
            next_expiry_ms: std::sync::atomic::AtomicI64::new(0),
            ttl_seen: std::sync::atomic::AtomicBool::new(ttl_configured),
            failure: std::sync::OnceLock::new(),
            commits_in_flight: Mutex::new(0),
            lazy: super::commit::LazyCommits::default(),
        }))
    }

    /// Marks the queue deleted and wakes what waits on its `QueueRemoval`.
    pub(crate) fn mark_removed(&self) {
        self.removed
            .store(true, std::sync::atomic::Ordering::Release);
        self.removed_notify.notify_waiters();
        self.wake_receivers();
    }

    /// Tells receivers (long polls and `ReadySignal`s) that messages may be ready: after an
    /// enqueue, a nack, a timer or lease expiry, a resume, and when the queue is deleted or
    /// replaced (so a waiter looks the queue up again).
    pub(crate) fn wake_receivers(&self) {
        self.ready_generation
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        self.available.notify_waiters();
    }

    pub(crate) async fn set_paused(&self, paused: bool) -> Result<()> {
        self.lock_for_change()?.set_paused(paused);
        let key = keys::paused(&self.config.name);
        let write = if paused {
            StateWrite::Put {
                table: keys::TABLE,
                key,
                value: b"paused".to_vec(),
            }
        } else {
            StateWrite::Delete {
                table: keys::TABLE,
                key,
            }
        };
        self.commit(vec![write]).await?;
        self.wake_receivers();
        Ok(())
    }

    /// Reads records by offset (for job payloads, and to make room in a full queue).
    pub(crate) async fn records(&self, offsets: &[u64]) -> Result<Vec<Record>> {
        let reader = self.reader.clone();
        let offsets = offsets.to_vec();
        tokio::task::spawn_blocking(move || reader.read(&offsets))
            .await
            .map_err(|e| EngineError::Internal(e.to_string()))?
    }

    /// [`Queue::records`] for callers already on a blocking thread.
    pub(crate) fn records_blocking(&self, offsets: &[u64]) -> Result<Vec<Record>> {
        self.reader.read(offsets)
    }

    /// Finishes every ready and waiting message (leased ones stay with their workers).
    pub(crate) async fn purge(&self) -> Result<u64> {
        // Held like `tick`: timers beyond the window are loaded from the store.
        let _timer_io = self.timer_io.lock().await;
        let (count, writes) = {
            let timers = StoredTimers {
                state: &self.state,
                queue: &self.config.name,
            };
            let mut core = self.lock_for_change()?;
            let before = core.counts();
            let writes = core.purge(&timers);
            (before.ready + before.delayed, writes)
        };
        self.commit(writes).await?;
        Ok(count)
    }

    /// Finishes one message wherever it is, without delivering it again, committing `extra`
    /// writes with it (a job's final record). `false` (nothing written) when it is already
    /// finished or unknown.
    pub(crate) async fn cancel_with(&self, offset: u64, extra: Vec<StateWrite>) -> Result<bool> {
        let writes = self.lock_for_change()?.cancel(offset);
        match writes {
            Some(mut writes) => {
                writes.extend(extra);
                self.commit(writes).await?;
                // Its bytes leave the waiting count once its size is known.
                match self.records(&[offset]).await {
                    Ok(records) => self.settle_sizes(&[offset], &records),
                    Err(error) => tracing::warn!(
                        queue = %self.config.name,
                        offset,
                        "reading a cancelled message for its size failed: {error}"
                    ),
                }
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Tells the core the sizes of messages just read from the log.
    pub(super) fn settle_sizes(&self, offsets: &[u64], records: &[Record]) {
        let mut core = self.lock();
        for (offset, record) in offsets.iter().zip(records) {
            core.settle_size(*offset, message_bytes(record));
        }
    }

    /// Counts `count` events of `kind` now, for the queue's rates.
    pub(super) fn count(&self, kind: RateKind, count: u64) {
        self.rates
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .record(kind, count, now_ms());
    }

    /// The queue's rates over the last minute.
    pub fn rates(&self) -> QueueRates {
        self.rates
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .snapshot(now_ms())
    }

    /// Events of each kind since the queue was opened, in [`RateKind`] order.
    pub fn event_totals(&self) -> [(RateKind, u64); 6] {
        let rates = self.rates.lock().unwrap_or_else(|p| p.into_inner());
        RateKind::ALL.map(|kind| (kind, rates.total(kind)))
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, QueueCore> {
        self.core.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers just-appended offsets — runs of `(first, end, priority, due)` holding
    /// `bytes` in all — and makes them durable in one commit, with `extra` writes.
    pub(crate) async fn register(
        &self,
        runs: &[(u64, u64, u8, Option<i64>)],
        key_hashes: &[Option<u64>],
        bytes: u64,
        extra: Vec<StateWrite>,
    ) -> Result<()> {
        let now = now_ms();
        let delayed = runs
            .iter()
            .any(|(.., due)| due.is_some_and(|due| due > now));
        // Only runs that add timers need the timer lock held until they are committed;
        // enqueues without delays do not wait for each other's commits.
        let _timer_io = if delayed {
            Some(self.timer_io.lock().await)
        } else {
            None
        };
        let mut writes = Vec::new();
        {
            let mut core = self.lock_for_change()?;
            if let Some((first, ..)) = runs.first() {
                core.set_keys(*first, key_hashes);
            }
            for (first, end, priority, due) in runs {
                writes.extend(core.register(*first, *end, *priority, *due, now));
            }
            core.add_waiting_bytes(bytes);
        }
        writes.extend(extra);
        let messages = runs.iter().map(|(first, end, ..)| end - first).sum();
        self.count(RateKind::Enqueued, messages);
        self.commit(writes).await?;
        if delayed {
            self.timer_changed.notify_one();
        }
        self.wake_receivers();
        Ok(())
    }

    /// Fires due timers and expired leases; dead-letters what must be.
    pub(crate) async fn tick(&self) -> Result<()> {
        let _timer_io = self.timer_io.lock().await;
        let (writes, dead, expired, durable) = {
            let timers = StoredTimers {
                state: &self.state,
                queue: &self.config.name,
            };
            let mut core = self.lock_for_change()?;
            let before = core.lease_expiries();
            let (writes, dead) = core.tick(now_ms(), &timers);
            let durable = Durable::prepaid(core.take_prepay_pending());
            (writes, dead, core.lease_expiries() - before, durable)
        };
        self.count(RateKind::Failed, expired);
        let became_ready = !writes.is_empty();
        let mut writes = writes;
        let after = self
            .dead_letter_all(dead)
            .await
            .map_err(|error| self.uncommitted(error))?
            .append_to(&mut writes);
        self.commit(writes).await?;
        self.note_durable(&durable);
        after.run();
        if became_ready {
            if self.ttl_seen.load(Ordering::Acquire) {
                // A delayed or retried message with a TTL may be ready and expired now.
                self.next_expiry_ms.fetch_min(now_ms(), Ordering::AcqRel);
            }
            self.wake_receivers();
        }
        Ok(())
    }

    pub async fn ack(self: &Arc<Self>, offset: u64, attempt: u32) -> Result<()> {
        let mut answers = self
            .ack_many(vec![(offset, attempt, Vec::new())], None)
            .await;
        answers.pop().expect("one answer per ack")
    }

    /// Acks several deliveries under one lock of the core, committing them in one request
    /// (so in one group commit), each with its `extra` writes (a job's final record). A stale
    /// or unknown delivery gets its own error and writes nothing, without failing the others.
    /// With `fsync` completions the answers wait for the commit, and if it fails every ack it
    /// carried gets the error; with `batched` ones they come at once and `on_durable` runs
    /// once the commit is durable (right away with `fsync`, after the answers are decided).
    pub(crate) async fn ack_many(
        self: &Arc<Self>,
        acks: Vec<(u64, u32, Vec<StateWrite>)>,
        on_durable: Option<Box<dyn FnOnce() + Send>>,
    ) -> Vec<Result<()>> {
        let (mut answers, writes) = match self.lock_for_change() {
            Ok(mut core) => ack_all(&mut core, acks),
            Err(error) => {
                return acks
                    .iter()
                    .map(|_| Err(copy_commit_error(&error)))
                    .collect()
            }
        };
        if self.config.completions == super::Completions::Batched {
            let lazily = self
                .commit_lazily(writes, Durable::default(), on_durable)
                .await;
            if let Err(error) = &lazily {
                for answer in answers.iter_mut().filter(|answer| answer.is_ok()) {
                    *answer = Err(copy_commit_error(error));
                }
            }
            let acked = answers.iter().filter(|answer| answer.is_ok()).count();
            self.count(RateKind::Completed, acked as u64);
            return answers;
        }
        let _ = self.commit_acks(&mut answers, writes).await;
        if let Some(on_durable) = on_durable {
            on_durable();
        }
        answers
    }

    /// Commits the writes of acks applied by [`ack_all`] (with any others): if the commit
    /// fails, every accepted ack gets its error; the ones that stand are counted.
    async fn commit_acks(&self, answers: &mut [Result<()>], writes: Vec<StateWrite>) -> Result<()> {
        let committed = self.commit(writes).await;
        if let Err(error) = &committed {
            for answer in answers.iter_mut().filter(|answer| answer.is_ok()) {
                *answer = Err(copy_commit_error(error));
            }
        }
        let acked = answers.iter().filter(|answer| answer.is_ok()).count();
        self.count(RateKind::Completed, acked as u64);
        committed
    }

    pub async fn nack(
        &self,
        offset: u64,
        attempt: u32,
        delay_ms: Option<u64>,
        error: &str,
    ) -> Result<()> {
        self.nack_with(offset, attempt, delay_ms, error, Vec::new())
            .await
    }

    /// Nacks and commits `extra` writes in the same transaction (a job's updated record), so
    /// a worker that receives the retry also finds the record that says why it is retried.
    pub(crate) async fn nack_with(
        &self,
        offset: u64,
        attempt: u32,
        delay_ms: Option<u64>,
        error: &str,
        extra: Vec<StateWrite>,
    ) -> Result<()> {
        let _timer_io = self.timer_io.lock().await;
        let (mut writes, dead, durable) = {
            let mut core = self.lock_for_change()?;
            let (writes, dead) = core.nack(offset, attempt, delay_ms, error, now_ms())?;
            (writes, dead, Durable::prepaid(core.take_prepay_pending()))
        };
        self.count(RateKind::Failed, 1);
        let dead_records = self
            .dead_letter_all(dead)
            .await
            .map_err(|error| self.uncommitted(error))?;
        // The job's updated record first: a dead job's final record replaces it.
        writes.extend(extra);
        let after = dead_records.append_to(&mut writes);
        self.commit(writes).await?;
        self.note_durable(&durable);
        after.run();
        self.timer_changed.notify_one();
        self.wake_receivers();
        self.trim_after_requeue().await
    }

    pub async fn extend(&self, offset: u64, attempt: u32, lease_ms: u64) -> Result<i64> {
        let deadline = self
            .lock_for_change()?
            .extend(offset, attempt, lease_ms, now_ms())?;
        Ok(deadline)
    }

    pub async fn term(&self, offset: u64, attempt: u32, reason: &str) -> Result<()> {
        let (mut writes, letter) = self.lock_for_change()?.term(offset, attempt, reason)?;
        self.count(RateKind::Failed, 1);
        let after = self
            .dead_letter_all(vec![letter])
            .await
            .map_err(|error| self.uncommitted(error))?
            .append_to(&mut writes);
        self.commit(writes).await?;
        after.run();
        Ok(())
    }

    /// Copies each message to the dead-letter stream with why, before it is marked finished,
    /// so a crash in between dead-letters it again rather than losing it. Answers what the
    /// dead-letter listener wants committed with the queue's writes.
    pub(super) async fn dead_letter_all(
        &self,
        letters: Vec<DeadLetter>,
    ) -> Result<DeadLetterRecords> {
        if letters.is_empty() {
            return Ok(DeadLetterRecords::default());
        }
        let grants: Vec<Grant> = letters
            .iter()
            .map(|l| Grant {
                offset: l.offset,
                attempt: l.attempts,
                deadline_ms: 0,
            })
            .collect();
        let originals = self.read_records(&grants).await?;
        let offsets: Vec<u64> = letters.iter().map(|l| l.offset).collect();
        self.settle_sizes(&offsets, &originals);
        self.append_dead_letters(letters, originals).await
    }

    /// Appends `originals` (the records of `letters`, in order) to the dead-letter stream with
    /// why, and tells the dead-letter listener; answers the listener's writes, which the
    /// caller commits with its own.
    pub(super) async fn append_dead_letters(
        &self,
        letters: Vec<DeadLetter>,
        originals: Vec<Record>,
    ) -> Result<DeadLetterRecords> {
        let now = now_ms();
        let listener = self
            .on_dead_letter
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        // The listener reads jobs from their original messages; only cloned when one listens.
        let kept = listener.as_ref().map(|_| originals.clone());
        let records: Vec<Record> = letters
            .iter()
            .zip(originals)
            .map(|(letter, mut record)| {
                super::deaths::mark_death(
                    &mut record,
                    super::deaths::Dying {
                        reason: &letter.reason,
                        attempts: letter.attempts,
                        last_error: &letter.last_error,
                        source: &self.config.name,
                        offset: Some(letter.offset),
                        now_ms: now,
                    },
                );
                record
            })
            .collect();
        let batches = EncodedBatches::of(&records)?;
        self.dead_letter.append_encoded(batches).await?;
        self.count(RateKind::DeadLettered, letters.len() as u64);
        // Only now, with the dead letters durable, are the messages finished (`park`).
        let offsets: Vec<u64> = letters.iter().map(|letter| letter.offset).collect();
        let finished = self.lock().finish_parked(&offsets);
        let mut records = match (listener, kept) {
            (Some(listener), Some(originals)) => listener(self, &letters, &originals),
            _ => DeadLetterRecords::default(),
        };
        records.writes.splice(0..0, finished);
        Ok(records)
    }

    /// Runs until the queue is dropped: ticks when the next timer or lease is due, or at
    /// least every second.
    pub(crate) fn spawn_timer_task(queue: &Arc<Queue>) {
        let weak = Arc::downgrade(queue);
        tokio::spawn(async move {
            loop {
                let Some(queue) = weak.upgrade() else { return };
                if queue.failure().is_some() {
                    // A failed queue does nothing more; a reload starts a new one with its own task.
                    return;
                }
                queue.timer_ticks.fetch_add(1, Ordering::Relaxed);
                if let Err(error) = queue.tick().await {
                    tracing::error!(queue = %queue.config.name, "queue tick failed: {error}");
                }
                if let Err(error) = queue.expire_head(now_ms()).await {
                    tracing::error!(queue = %queue.config.name, "queue expiry failed: {error}");
                }
                let now = now_ms();
                let sleep_ms = {
                    let core = queue.lock();
                    let next = core
                        .next_deadline()
                        .unwrap_or(now + 1_000)
                        .min(queue.next_expiry_ms());
                    let sleep_ms = next.saturating_sub(now).clamp(1, 1_000);
                    // Under the lock: a lease taken after this is compared with it (and
                    // wakes the task if earlier); one taken before is in `next`.
                    queue
                        .timer_wake_at_ms
                        .store(now + sleep_ms, Ordering::Release);
                    sleep_ms
                };
                let sleep = Duration::from_millis(sleep_ms as u64);
                let wake = queue.timer_changed.clone();
                drop(queue);
                let _ = tokio::time::timeout(sleep, wake.notified()).await;
            }
        });
    }
}

/// The hash that groups messages by key in key-shared mode.
pub fn key_hash(key: &[u8]) -> u64 {
    crate::streams::partitioner::murmur2(key) as u32 as u64
}

pub(crate) fn header_i64(record: &Record, name: &str) -> Option<i64> {
    record
        .headers
        .iter()
        .find(|h| h.name == name)
        .and_then(|h| std::str::from_utf8(&h.value).ok())
        .and_then(|text| text.parse().ok())
}
