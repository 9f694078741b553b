//! The queue state machine: which offsets are ready (by priority), waiting on a timer, leased
//! to a worker, or finished; attempts; leases and their expiry; retries with backoff; when to
//! dead-letter. Pure logic with time passed in, so it is tested without clocks or disks.
//! Every change it makes returns the state-store writes that make it durable; the caller
//! commits them before answering its client.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use omnibus_storage::StateWrite;

use super::keys;
use super::policy::Backoff;
use super::ranges::RangeSet;
use crate::error::EngineError;
use offset_hash::{OffsetMap, OffsetSet};

pub use leases::Leased;

pub const PRIORITY_LEVELS: usize = 10;
/// Timers kept in memory; the rest wait in the state store, loaded in order as these fire.
pub const TIMER_WINDOW: usize = 4096;

#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub lease_ms: u64,
    /// Deliveries before a message is dead-lettered (1 = no retry).
    pub max_deliver: u32,
    pub backoff: Backoff,
    /// 0..=1; see [`Backoff::delay_ms`].
    pub jitter: f64,
    /// Most unacknowledged deliveries one worker may hold (its prefetch).
    pub max_unacked_per_worker: usize,
    pub mode: ConsumerMode,
}

/// How deliveries are shared among workers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsumerMode {
    /// Competing workers: any worker gets any message.
    #[default]
    Shared,
    /// One worker at a time; another takes over when the active one holds no leases and has
    /// not asked for a lease period.
    Exclusive,
    /// All messages of one key go to one worker at a time, so per-key order holds with many
    /// workers.
    KeyShared,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub attempt: u32,
    pub deadline_ms: i64,
    /// Shared with the worker's entry in `unacked_by_worker`: no copy of the name per lease.
    pub worker: Arc<str>,
}

/// What a delivery hands a worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub offset: u64,
    pub attempt: u32,
    pub deadline_ms: i64,
}

/// A message to move to the dead-letter stream, then mark finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub offset: u64,
    pub reason: String,
    pub attempts: u32,
    pub last_error: String,
}

/// Where timers beyond the in-memory window are read from.
pub trait TimerSource {
    /// Timers with a key after `after` (all when `None`), in order, at most `limit`.
    fn load_after(&self, after: Option<(i64, u64)>, limit: usize) -> Vec<(i64, u64)>;
}

/// Where one offset of a queue is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Position {
    Ready {
        priority: u8,
    },
    /// Waiting on a timer (delay or retry backoff); `due_ms` when the timer is in memory.
    Waiting {
        due_ms: Option<i64>,
    },
    Leased(Lease),
    Finished,
    /// Not registered (beyond the queue's end).
    Unknown,
}

#[derive(Debug, Default)]
pub struct Counts {
    pub ready: u64,
    pub delayed: u64,
    pub leased: u64,
}

pub struct QueueCore {
    name: String,
    policy: Policy,
    ready: Vec<RangeSet>,
    /// Timers in memory: every stored timer with a key up to `loaded_upto` is here.
    timers: BTreeSet<(i64, u64)>,
    loaded_upto: Option<(i64, u64)>,
    /// No stored timer lies beyond `loaded_upto`.
    timers_complete: bool,
    /// Timers stored beyond the window (counted so stats can report them).
    timers_beyond: u64,
    leases: OffsetMap<Lease>,
    lease_deadlines: BTreeSet<(i64, u64)>,
    /// Attempts and last error of offsets delivered at least once and not finished.
    attempts: OffsetMap<(u32, String)>,
    floor: u64,
    finished_above: RangeSet,
    unacked_by_worker: HashMap<Arc<str>, usize>,
    /// Offsets below this are registered (ready, waiting, leased or finished).
    end: u64,
    /// Priorities of offsets registered with a non-zero priority, for durability.
    priority_of: OffsetMap<u8>,
    /// A paused queue delivers nothing; everything else goes on.
    paused: bool,
    /// Key-shared mode: key hash of each unfinished offset that has a key.
    key_of: OffsetMap<u64>,
    /// Key-shared mode: which worker holds a key now, and how many of its leases.
    key_owner: OffsetMap<(String, usize)>,
    /// Exclusive mode: the active worker and when it last asked for messages.
    active_worker: Option<(String, i64)>,
    /// Bytes of waiting messages (see `core/bytes.rs`).
    bytes: bytes::ByteCount,
    /// Leases that expired since the queue was opened (for its rates).
    lease_expiries: u64,
    /// First deliveries recorded as runs (see `runs.rs`).
    runs: runs::DeliveredRuns,
    /// How far each priority level's first deliveries are durably counted (`leases.rs`).
    frontiers: leases::Frontiers,
    /// Waiting offsets whose next delivery is already durably counted (`leases.rs`).
    prepaid: OffsetSet,
    /// Retries whose record counts their next delivery, until their commit is durable.
    prepay_pending: Vec<(u64, u32)>,
    /// Offsets whose dead letters are being appended: unfinished until then (see `park`).
    parked: OffsetSet,
}

impl QueueCore {
    pub fn new(name: &str, policy: Policy) -> Self {
        QueueCore {
            name: name.to_string(),
            policy,
            ready: vec![RangeSet::new(); PRIORITY_LEVELS],
            timers: BTreeSet::new(),
            loaded_upto: None,
            timers_complete: true,
            timers_beyond: 0,
            leases: OffsetMap::default(),
            lease_deadlines: BTreeSet::new(),
            attempts: OffsetMap::default(),
            floor: 0,
            finished_above: RangeSet::new(),
            unacked_by_worker: HashMap::new(),
            end: 0,
            priority_of: OffsetMap::default(),
            paused: false,
            key_of: OffsetMap::default(),
            key_owner: OffsetMap::default(),
            active_worker: None,
            bytes: bytes::ByteCount::default(),
            lease_expiries: 0,
            runs: runs::DeliveredRuns::default(),
            frontiers: leases::Frontiers::default(),
            prepaid: OffsetSet::default(),
            prepay_pending: Vec::new(),
            parked: OffsetSet::default(),
        }
    }

    pub fn set_paused(&mut self, paused: bool) {
        self.paused = paused;
    }

    pub fn is_paused(&self) -> bool {
        self.paused
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    pub fn floor(&self) -> u64 {
        self.floor
    }

    pub fn end(&self) -> u64 {
        self.end
    }

    /// Whether `offset` is registered and not finished (ready, waiting or leased).
    pub fn is_unfinished(&self, offset: u64) -> bool {
        offset >= self.floor && offset < self.end && !self.finished_above.contains(offset)
    }

    /// Leases that expired since the queue was opened.
    pub fn lease_expiries(&self) -> u64 {
        self.lease_expiries
    }

    pub fn counts(&self) -> Counts {
        Counts {
            ready: self.ready.iter().map(RangeSet::len).sum(),
            delayed: self.timers.len() as u64 + self.timers_beyond,
            leased: self.leases.len() as u64,
        }
    }

    /// Ranges held in memory for ready offsets: what RAM is proportional to.
    pub fn ready_range_count(&self) -> usize {
        self.ready.iter().map(RangeSet::range_count).sum()
    }

    // ----- recovery -----

    /// Rebuilds from stored state: the floor, finished runs `[start, end)` above it, attempts, timers
    /// (only the first window is kept in memory), priorities, and the log's end.
    pub fn recover(
        &mut self,
        floor: u64,
        finished: impl IntoIterator<Item = (u64, u64)>,
        attempts: impl IntoIterator<Item = (u64, u32, String)>,
        priorities: impl IntoIterator<Item = (u64, u64, u8)>,
        timers: &dyn TimerSource,
        log_end: u64,
    ) {
        self.floor = floor;
        for (start, end) in finished {
            self.finished_above.insert_range(start.max(floor), end);
        }
        for (offset, count, error) in attempts {
            if offset >= floor && !self.finished_above.contains(offset) {
                self.attempts.insert(offset, (count, error));
            }
        }
        let mut priority_ranges: Vec<(u64, u64, u8)> = priorities.into_iter().collect();
        priority_ranges.sort_unstable();
        for (first, end, priority) in &priority_ranges {
            for offset in (*first).max(floor)..*end {
                self.priority_of.insert(offset, *priority);
            }
        }
        self.timers_complete = false;
        self.reload_timers(timers);
        // Timers beyond the window: unknown individually, but they must not become ready.
        let mut waiting_beyond = BTreeSet::new();
        if !self.timers_complete {
            let mut after = self.loaded_upto;
            loop {
                let page = timers.load_after(after, 65_536);
                if page.is_empty() {
                    break;
                }
                after = page.last().copied();
                waiting_beyond.extend(page.iter().map(|(_, offset)| *offset));
            }
            self.timers_beyond = waiting_beyond.len() as u64;
        }
        let waiting: BTreeSet<u64> = self.timers.iter().map(|(_, o)| *o).collect();
        // Ready = registered, unfinished, not waiting. Walk the gaps of the finished set.
        let mut start = floor;
        let finished: Vec<(u64, u64)> = self.finished_above.iter_ranges().collect();
        let add_ready = |core: &mut QueueCore, from: u64, to: u64| {
            let mut run_start = from;
            for offset in from..to {
                let skip = waiting.contains(&offset) || waiting_beyond.contains(&offset);
                let priority = core.priority_of.get(&offset).copied().unwrap_or(0);
                if skip || priority != 0 {
                    core.ready[0].insert_range(run_start, offset);
                    if !skip {
                        core.ready[priority as usize].insert(offset);
                    }
                    run_start = offset + 1;
                }
            }
            core.ready[0].insert_range(run_start, to);
        };
        if waiting.is_empty() && waiting_beyond.is_empty() && self.priority_of.is_empty() {
            // The common case: one range per gap, no per-offset walk.
            for (s, e) in &finished {
                self.ready[0].insert_range(start, *s);
                start = *e;
            }
            self.ready[0].insert_range(start, log_end);
        } else {
            for (s, e) in &finished {
                add_ready(self, start, *s);
                start = *e;
            }
            add_ready(self, start, log_end.max(start));
        }
        self.end = log_end.max(floor);
    }

    fn reload_timers(&mut self, source: &dyn TimerSource) {
        if self.timers_complete {
            return;
        }
        let page = source.load_after(self.loaded_upto, TIMER_WINDOW);
        if page.len() < TIMER_WINDOW {
            self.timers_complete = true;
        }
        if let Some(last) = page.last() {
            self.loaded_upto = Some(*last);
        }
        self.timers_beyond = self.timers_beyond.saturating_sub(page.len() as u64);
        self.timers.extend(page);
    }

    // ----- enqueue -----

    /// Registers offsets `[first, end)` just appended to the log. With `due_ms`, they wait for
    /// that time; otherwise they are ready at `priority`.
    pub fn register(
        &mut self,
        first: u64,
        end: u64,
        priority: u8,
        due_ms: Option<i64>,
        now_ms: i64,
    ) -> Vec<StateWrite> {
        let priority = priority.min(PRIORITY_LEVELS as u8 - 1);
        self.end = self.end.max(end);
        let mut writes = Vec::new();
        if priority != 0 {
            writes.push(StateWrite::Put {
                table: keys::TABLE,
                key: keys::priority(&self.name, first),
                value: [end.to_be_bytes().as_slice(), &[priority]].concat(),
            });
            for offset in first..end {
                self.priority_of.insert(offset, priority);
            }
        }
        match due_ms {
            Some(due) if due > now_ms => {
                for offset in first..end {
                    writes.push(self.add_timer(due, offset));
                }
            }
            _ => self.ready[priority as usize].insert_range(first, end),
        }
        writes
    }

    fn add_timer(&mut self, due_ms: i64, offset: u64) -> StateWrite {
        let key = (due_ms.max(0), offset);
        let in_window = match self.loaded_upto {
            _ if self.timers_complete => true,
            Some(upto) => key <= upto,
            None => false,
        };
        if in_window {
            self.timers.insert(key);
            // Keep the window bounded: the latest timer goes back to the store only.
            if self.timers.len() > TIMER_WINDOW {
                self.timers.pop_last();
                self.timers_complete = false;
                self.loaded_upto = self.timers.last().copied();
                self.timers_beyond += 1;
            }
        } else {
            self.timers_beyond += 1;
        }
        StateWrite::Put {
            table: keys::TABLE,
            key: keys::timer(&self.name, key.0, key.1),
            value: Vec::new(),
        }
    }

    // ----- time -----

    /// Fires due timers (waiting → ready) and expired leases (→ retry or dead letter).
    pub fn tick(
        &mut self,
        now_ms: i64,
        source: &dyn TimerSource,
    ) -> (Vec<StateWrite>, Vec<DeadLetter>) {
        let mut writes = Vec::new();
        let mut dead = Vec::new();
        loop {
            while let Some(&(due, offset)) = self.timers.first() {
                if due > now_ms {
                    break;
                }
                self.timers.pop_first();
                writes.push(StateWrite::Delete {
                    table: keys::TABLE,
                    key: keys::timer(&self.name, due, offset),
                });
                if offset >= self.floor && !self.finished_above.contains(offset) {
                    let priority = self.priority_of.get(&offset).copied().unwrap_or(0);
                    self.ready[priority as usize].insert(offset);
                }
            }
            if self.timers.is_empty() && !self.timers_complete {
                self.reload_timers(source);
                continue;
            }
            break;
        }
        while let Some(&(deadline, offset)) = self.lease_deadlines.first() {
            if deadline > now_ms {
                break;
            }
            self.lease_deadlines.pop_first();
            let Some(lease) = self.leases.remove(&offset) else {
                continue;
            };
            self.release_worker(&lease.worker, offset);
            self.lease_expiries += 1;
            let reason = format!("lease of attempt {} expired", lease.attempt);
            self.fail(
                offset,
                lease.attempt,
                None,
                &reason,
                now_ms,
                &mut writes,
                &mut dead,
            );
        }
        (writes, dead)
    }

    /// The earliest time something happens by itself (a timer fires or a lease expires).
    pub fn next_deadline(&self) -> Option<i64> {
        let timer = self.timers.first().map(|(due, _)| *due);
        let lease = self.lease_deadlines.first().map(|(deadline, _)| *deadline);
        match (timer, lease) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether delivery `attempt` of `offset` is still leased (not expired and given again).
    pub fn holds_lease(&self, offset: u64, attempt: u32) -> bool {
        self.check_lease(offset, attempt).is_ok()
    }

    fn check_lease(&self, offset: u64, attempt: u32) -> Result<&Lease, EngineError> {
        let lease = self.leases.get(&offset).ok_or_else(|| {
            EngineError::UnknownDelivery(format!(
                "offset {offset} is not delivered to anyone (already settled, or never delivered)"
            ))
        })?;
        if lease.attempt != attempt {
            return Err(EngineError::StaleAttempt(format!(
                "attempt {attempt} of offset {offset} is stale: the current delivery is attempt {}",
                lease.attempt
            )));
        }
        Ok(lease)
    }

    fn take_lease(&mut self, offset: u64, attempt: u32) -> Result<Lease, EngineError> {
        let deadline = self.check_lease(offset, attempt)?.deadline_ms;
        self.lease_deadlines.remove(&(deadline, offset));
        let lease = self.leases.remove(&offset).expect("checked above");
        self.release_worker(&lease.worker, offset);
        Ok(lease)
    }

    fn release_worker(&mut self, worker: &str, offset: u64) {
        self.release_key(offset);
        if let Some(count) = self.unacked_by_worker.get_mut(worker) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.unacked_by_worker.remove(worker);
            }
        }
    }

    /// Key-shared mode: the offset no longer holds its key's owner.
    fn release_key(&mut self, offset: u64) {
        if let Some(hash) = self.key_of.get(&offset) {
            if let Some(owner) = self.key_owner.get_mut(hash) {
                owner.1 = owner.1.saturating_sub(1);
                if owner.1 == 0 {
                    self.key_owner.remove(hash);
                }
            }
        }
    }

    /// Undoes a delivery of a message that turned out not to be due yet: it waits for
    /// `due_ms` again and the attempt does not count (in memory: on disk it may, which only
    /// ever overcounts).
    pub fn defer(&mut self, offset: u64, attempt: u32, due_ms: i64) -> Vec<StateWrite> {
        if self.take_lease(offset, attempt).is_err() {
            return Vec::new();
        }
        self.bytes_lease_ended(offset, true);
        // The attempt stays durably counted (`leases.rs`): the next delivery is the same
        // attempt again, already paid for, so only the timer is written.
        if let Some(entry) = self.attempts.get_mut(&offset) {
            entry.0 = entry.0.saturating_sub(1);
            if entry.0 == 0 {
                self.attempts.remove(&offset);
            } else {
                self.prepaid.insert(offset);
            }
        }
        vec![self.add_timer(due_ms, offset)]
    }

    /// Completes a delivery.
    pub fn ack(&mut self, offset: u64, attempt: u32) -> Result<Vec<StateWrite>, EngineError> {
        self.take_lease(offset, attempt)?;
        self.bytes_lease_ended(offset, false);
        Ok(self.finish(offset))
    }

    /// Completes many deliveries at once; those not leased under that attempt any more are
    /// passed over, as [`QueueCore::ack`] refuses them. The same state as acking them one by
    /// one, in fewer writes: the floor is written once for the whole batch, where one ack at
    /// a time writes it (and allocates its key) for every offset it passes.
    pub fn ack_many(&mut self, grants: &[(u64, u32)]) -> Vec<StateWrite> {
        let mut writes = Vec::new();
        let mut floor_before = None;
        for &(offset, attempt) in grants {
            if self.take_lease(offset, attempt).is_err() {
                continue;
            }
            self.bytes_lease_ended(offset, false);
            if let Some(old_floor) = self.finish_above_floor(offset, &mut writes) {
                floor_before.get_or_insert(old_floor);
            }
        }
        if let Some(old_floor) = floor_before {
            self.floor_writes(old_floor, &mut writes);
        }
        writes
    }

    /// Pushes a lease's deadline out to `lease_ms` from now.
    pub fn extend(
        &mut self,
        offset: u64,
        attempt: u32,
        lease_ms: u64,
        now_ms: i64,
    ) -> Result<i64, EngineError> {
        let old = self.check_lease(offset, attempt)?.deadline_ms;
        let deadline = now_ms + lease_ms as i64;
        self.lease_deadlines.remove(&(old, offset));
        self.lease_deadlines.insert((deadline, offset));
        self.leases.get_mut(&offset).expect("checked").deadline_ms = deadline;
        Ok(deadline)
    }

    /// A failed attempt: retry after `delay_ms` (or the backoff), or dead-letter when the
    /// attempts are used up.
    pub fn nack(
        &mut self,
        offset: u64,
        attempt: u32,
        delay_ms: Option<u64>,
        error: &str,
        now_ms: i64,
    ) -> Result<(Vec<StateWrite>, Vec<DeadLetter>), EngineError> {
        self.take_lease(offset, attempt)?;
        let mut writes = Vec::new();
        let mut dead = Vec::new();
        self.fail(
            offset,
            attempt,
            delay_ms,
            error,
            now_ms,
            &mut writes,
            &mut dead,
        );
        Ok((writes, dead))
    }

    /// Stops redelivery: dead-letter now. The offset is parked: the caller appends its dead
    /// letter, then finishes it with [`QueueCore::finish_parked`].
    pub fn term(
        &mut self,
        offset: u64,
        attempt: u32,
        reason: &str,
    ) -> Result<(Vec<StateWrite>, DeadLetter), EngineError> {
        self.take_lease(offset, attempt)?;
        self.bytes_lease_ended(offset, false);
        let last_error = self
            .attempts
            .get(&offset)
            .map(|(_, e)| e.clone())
            .unwrap_or_default();
        let letter = DeadLetter {
            offset,
            reason: format!("terminated: {reason}"),
            attempts: attempt,
            last_error: if reason.is_empty() {
                last_error
            } else {
                reason.to_string()
            },
        };
        self.park(offset);
        Ok((Vec::new(), letter))
    }

    #[allow(clippy::too_many_arguments)]
    fn fail(
        &mut self,
        offset: u64,
        attempt: u32,
        delay_ms: Option<u64>,
        error: &str,
        now_ms: i64,
        writes: &mut Vec<StateWrite>,
        dead: &mut Vec<DeadLetter>,
    ) {
        let entry = self
            .attempts
            .entry(offset)
            .or_insert((attempt, String::new()));
        entry.1 = error.to_string();
        let attempts = entry.0;
        self.stop_covering(offset);
        let retry = attempts < self.policy.max_deliver;
        // A retry's record counts the next delivery already (`leases.rs`): once this commit
        // is durable, that delivery is handed out without a commit of its own.
        let counted = if retry { attempts + 1 } else { attempts };
        writes.push(StateWrite::PutMax {
            table: keys::TABLE,
            key: keys::delivery(&self.name, offset),
            value: keys::encode_delivery(counted, error),
        });
        if retry {
            self.prepay_pending.push((offset, counted));
        }
        self.bytes_lease_ended(offset, retry);
        if !retry {
            dead.push(DeadLetter {
                offset,
                reason: format!("max deliveries ({}) reached", self.policy.max_deliver),
                attempts,
                last_error: error.to_string(),
            });
            self.park(offset);
            return;
        }
        let delay = delay_ms.unwrap_or_else(|| {
            self.policy.backoff.delay_ms(
                attempts,
                self.policy.jitter,
                offset ^ ((attempts as u64) << 48),
            )
        });
        if delay == 0 {
            let priority = self.priority_of.get(&offset).copied().unwrap_or(0);
            self.ready[priority as usize].insert(offset);
        } else {
            writes.push(self.add_timer(now_ms + delay as i64, offset));
        }
    }

    /// An offset on its way to the dead-letter stream: out of delivery, but not finished until
    /// its dead letter is appended ([`QueueCore::finish_parked`]). Finishing it first would let
    /// another commit carry the ack floor past it, and a crash before the append would then
    /// lose the message from both the queue and the dead letters.
    fn park(&mut self, offset: u64) {
        self.parked.insert(offset);
    }

    /// Finishes parked offsets whose dead letters are appended; the writes that record it.
    pub fn finish_parked(&mut self, offsets: &[u64]) -> Vec<StateWrite> {
        let mut writes = Vec::new();
        for offset in offsets {
            if self.parked.remove(offset) {
                writes.extend(self.finish(*offset));
            }
        }
        writes
    }

    /// Marks an offset finished and advances the floor over every finished offset after it.
    fn finish(&mut self, offset: u64) -> Vec<StateWrite> {
        let mut writes = Vec::new();
        if let Some(old_floor) = self.finish_above_floor(offset, &mut writes) {
            self.floor_writes(old_floor, &mut writes);
        }
        writes
    }

    /// [`QueueCore::finish`] but for the writes of a floor it moves: the floor before, when
    /// it moved (pass it to [`QueueCore::floor_writes`]).
    fn finish_above_floor(&mut self, offset: u64, writes: &mut Vec<StateWrite>) -> Option<u64> {
        if !self.finish_covered(offset) {
            writes.push(StateWrite::Delete {
                table: keys::TABLE,
                key: keys::delivery(&self.name, offset),
            });
        }
        self.attempts.remove(&offset);
        self.prepaid.remove(&offset);
        self.priority_of.remove(&offset);
        self.key_of.remove(&offset);
        if offset != self.floor {
            // Stored as runs: the run holding `offset` is written under its start, and a run
            // that began right after `offset` is now part of it. Acks of consecutive offsets
            // in one group commit rewrite the same key, which the committer writes once.
            if self.finished_above.contains(offset + 1) {
                writes.push(StateWrite::Delete {
                    table: keys::TABLE,
                    key: keys::acked(&self.name, offset + 1),
                });
            }
            self.finished_above.insert(offset);
            let (start, end) = self
                .finished_above
                .range_containing(offset)
                .expect("just inserted");
            // A run only grows: put-max keeps a later, longer run if this commit reaches the
            // store after it (commits of one queue are not ordered among themselves).
            writes.push(StateWrite::PutMax {
                table: keys::TABLE,
                key: keys::acked(&self.name, start),
                value: end.to_be_bytes().to_vec(),
            });
            return None;
        }
        // The floor moves past this offset and any finished run right after it.
        let mut floor = offset + 1;
        if self.finished_above.first() == Some(floor) {
            let run_end = self
                .finished_above
                .iter_ranges()
                .next()
                .map(|(_, end)| end)
                .expect("first exists");
            floor = run_end;
        }
        let old_floor = self.floor;
        self.floor = floor;
        self.finished_above.remove_below(floor);
        Some(old_floor)
    }

    /// The writes that record the floor's move up from `old_floor` (to where it is now). One
    /// call may cover several moves: the range delete then spans them all, which only also
    /// deletes run keys below the floor, stale either way.
    fn floor_writes(&mut self, old_floor: u64, writes: &mut Vec<StateWrite>) {
        let floor = self.floor;
        // The floor only rises: put-max keeps a later commit's higher floor if this one reaches
        // the store after it. A stale run or attempt record below the floor is ignored at
        // recovery, so only the floor and run ends need this.
        writes.push(StateWrite::PutMax {
            table: keys::TABLE,
            key: keys::floor(&self.name),
            value: floor.to_be_bytes().to_vec(),
        });
        if floor > old_floor + 1 {
            writes.push(StateWrite::DeleteRange {
                table: keys::TABLE,
                start: keys::acked(&self.name, old_floor),
                end: keys::acked(&self.name, floor),
            });
        }
        writes.extend(self.forget_runs_below_floor());
    }
}

mod admin;
mod bytes;
mod inspect;
mod leases;
mod modes;
pub(crate) mod offset_hash;
mod runs;

#[cfg(test)]
mod tests;
