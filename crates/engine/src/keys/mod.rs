//! The keyspace: durable string keys with optional expiry, protocol-neutral (the Redis door
//! serves SET/GET/EXPIRE from it; any other door could). It knows no wire type.
//!
//! Every key lives in memory (a `BTreeMap`, so SCAN and KEYS walk it in order) and in the
//! state store's `keys` table. A change is applied in memory under one lock and, still under
//! that lock, queued to a single writer task; the writer folds whatever is queued into one
//! group commit, so changes reach the disk in the order they were made, and a caller is
//! answered only once its change is fsynced. Readers may see a change a few hundred
//! microseconds before it is durable (as Redis readers see writes before the AOF has them).
//!
//! Expiry never scans the keyspace: deadlines sit in an index ordered by deadline. A read of
//! an expired key deletes it on the spot; a sweep every [`SWEEP_INTERVAL`] deletes at most
//! [`SWEEP_BATCH`] keys whose deadline has passed, oldest first.

mod glob;
mod writer;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use bytes::Bytes;
use omnibus_storage::{StateStore, StateWrite};

use crate::engine::now_ms;
use crate::error::{EngineError, Result};

pub use glob::glob_match;

/// The state-store table of keys: hex of the key → 8-byte big-endian deadline (0: none) and
/// the value.
pub const KEYS_TABLE: &str = "keys";
/// Most keys held at once (each costs its bytes plus ~100 bytes of bookkeeping in memory).
pub const KEYS_MAX: usize = 10_000_000;
/// Most bytes of keys and values held at once (all of them stay in memory).
pub const KEYSPACE_BYTES_MAX: u64 = 4 * 1024 * 1024 * 1024;
/// How often expired keys are swept.
pub const SWEEP_INTERVAL: Duration = Duration::from_millis(100);
/// Most keys one sweep deletes, so a mass expiry cannot stall writers.
pub const SWEEP_BATCH: usize = 1000;

/// When a write applies (SET's NX / XX).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SetCondition {
    #[default]
    Always,
    IfAbsent,
    IfPresent,
}

/// What a write does to the key's deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SetExpiry {
    /// No deadline (a plain SET clears the old one).
    #[default]
    Clear,
    /// Keeps the deadline the key had (SET KEEPTTL).
    Keep,
    /// Expires at this Unix time in milliseconds.
    At(i64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SetOptions {
    pub condition: SetCondition,
    pub expiry: SetExpiry,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetOutcome {
    /// Whether the value was written (false: NX or XX said no).
    pub written: bool,
    /// The value before, whether or not it was written.
    pub old: Option<Bytes>,
}

/// When EXPIRE applies (its NX / XX / GT / LT).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExpireCondition {
    #[default]
    Always,
    /// Only when the key has no deadline.
    IfNone,
    /// Only when the key has one.
    IfSome,
    /// Only when the new deadline is later (no deadline counts as infinitely late).
    IfLater,
    /// Only when the new deadline is earlier.
    IfEarlier,
}

/// A key's remaining time to live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeToLive {
    Missing,
    Forever,
    Milliseconds(i64),
}

/// What INCRBY found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Increment {
    Value(i64),
    NotAnInteger,
    Overflow,
}

#[derive(Debug, Clone)]
struct Entry {
    value: Bytes,
    deadline: Option<i64>,
}

#[derive(Default)]
struct Inner {
    entries: BTreeMap<Bytes, Entry>,
    /// (deadline, key) of every key that has one.
    deadlines: BTreeSet<(i64, Bytes)>,
    bytes: u64,
}

/// The durable keyspace; one per engine, from [`crate::Engine::keyspace`].
pub struct Keyspace {
    inner: Mutex<Inner>,
    writer: writer::Writer,
}

impl Keyspace {
    /// Loads every key that has not expired from the state store and starts the writer and
    /// the sweep. Needs a Tokio runtime.
    pub(crate) fn open(state: Arc<StateStore>) -> Result<Arc<Keyspace>> {
        let now = now_ms();
        let mut inner = Inner::default();
        let mut expired = Vec::new();
        for (stored_key, stored) in state.scan_prefix(KEYS_TABLE, "")? {
            let (Some(key), Some(entry)) = (decode_key(&stored_key), decode_entry(&stored)) else {
                return Err(EngineError::Storage(
                    omnibus_storage::StorageError::Corrupt(format!("key {stored_key:?}")),
                ));
            };
            if entry.deadline.is_some_and(|deadline| deadline <= now) {
                expired.push(StateWrite::Delete {
                    table: KEYS_TABLE,
                    key: stored_key,
                });
                continue;
            }
            inner.insert(key, entry);
        }
        let writer = writer::Writer::start(state);
        if !expired.is_empty() {
            writer.queue_detached(expired);
        }
        let keyspace = Arc::new(Keyspace {
            inner: Mutex::new(inner),
            writer,
        });
        spawn_sweep(Arc::downgrade(&keyspace));
        Ok(keyspace)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The value of `key`, or `None` when it is missing or expired.
    pub fn get(&self, key: &[u8]) -> Option<Bytes> {
        let mut inner = self.lock();
        self.live(&mut inner, key, now_ms())
            .map(|e| e.value.clone())
    }

    /// Values of several keys, read under one lock.
    pub fn get_many(&self, keys: &[Bytes]) -> Vec<Option<Bytes>> {
        let mut inner = self.lock();
        let now = now_ms();
        keys.iter()
            .map(|key| self.live(&mut inner, key, now).map(|e| e.value.clone()))
            .collect()
    }

    /// How many of `keys` exist (a key named twice counts twice, as in Redis).
    pub fn exists(&self, keys: &[Bytes]) -> usize {
        let mut inner = self.lock();
        // Every Redis stream command asks first whether its key is a string key; with none
        // held that is answered without reading the clock.
        if inner.entries.is_empty() {
            return 0;
        }
        let now = now_ms();
        keys.iter()
            .filter(|key| self.live(&mut inner, key, now).is_some())
            .count()
    }

    /// Keys held now (some may have expired unseen since the last sweep).
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// How many keys have an expiry.
    pub fn expiring(&self) -> usize {
        self.lock().deadlines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Writes `value` under `key` as `options` say; durable once the returned [`Durable`] resolves.
    pub fn set(
        &self,
        key: Bytes,
        value: Bytes,
        options: SetOptions,
    ) -> Result<Durable<SetOutcome>> {
        let waiter = {
            let mut inner = self.lock();
            let now = now_ms();
            let old = self.live(&mut inner, &key, now).cloned();
            let allowed = match options.condition {
                SetCondition::Always => true,
                SetCondition::IfAbsent => old.is_none(),
                SetCondition::IfPresent => old.is_some(),
            };
            let old_value = old.as_ref().map(|e| e.value.clone());
            if !allowed {
                return Ok(Durable::ready(SetOutcome {
                    written: false,
                    old: old_value,
                }));
            }
            let deadline = match options.expiry {
                SetExpiry::Clear => None,
                SetExpiry::Keep => old.as_ref().and_then(|e| e.deadline),
                SetExpiry::At(at) => Some(at),
            };
            let waiter = if deadline.is_some_and(|deadline| deadline <= now) {
                // Redis: a deadline already past deletes the key at once.
                let writes = inner.remove(&key).map(|_| delete_write(&key));
                self.writer.queue(writes.into_iter().collect())
            } else {
                let entry = Entry { value, deadline };
                check_room(&inner, &key, old.as_ref(), &entry)?;
                let write = put_write(&key, &entry);
                inner.insert(key, entry);
                self.writer.queue(vec![write])
            };
            (waiter, old_value)
        };
        let (waiter, old) = waiter;
        Ok(Durable::new(SetOutcome { written: true, old }, waiter))
    }

    /// Writes every pair (MSET), all in one durable commit: all or none, so a pair that
    /// would take the keyspace over its bound refuses the whole command.
    pub fn set_many(&self, pairs: Vec<(Bytes, Bytes)>) -> Result<Durable<()>> {
        self.set_all(pairs, false)
            .map(|durable| durable.map(|_| ()))
    }

    /// Writes every pair only if none of the keys exists (MSETNX); answers whether it did.
    pub fn set_many_if_absent(&self, pairs: Vec<(Bytes, Bytes)>) -> Result<Durable<bool>> {
        self.set_all(pairs, true)
    }

    fn set_all(&self, pairs: Vec<(Bytes, Bytes)>, if_all_absent: bool) -> Result<Durable<bool>> {
        let waiter = {
            let mut inner = self.lock();
            let now = now_ms();
            if if_all_absent
                && pairs
                    .iter()
                    .any(|(key, _)| self.live(&mut inner, key, now).is_some())
            {
                return Ok(Durable::ready(false));
            }
            let mut writes = Vec::with_capacity(pairs.len());
            // What each key held before, to put back if a later pair is refused.
            let mut undo: Vec<(Bytes, Option<Entry>)> = Vec::with_capacity(pairs.len());
            for (key, value) in pairs {
                let old = self.live(&mut inner, &key, now).cloned();
                let entry = Entry {
                    value,
                    deadline: None,
                };
                if let Err(error) = check_room(&inner, &key, old.as_ref(), &entry) {
                    for (key, old) in undo.into_iter().rev() {
                        match old {
                            Some(old) => inner.insert(key, old),
                            None => {
                                inner.remove(&key);
                            }
                        }
                    }
                    return Err(error);
                }
                writes.push(put_write(&key, &entry));
                undo.push((key.clone(), old));
                inner.insert(key, entry);
            }
            self.writer.queue(writes)
        };
        Ok(Durable::new(true, waiter))
    }

    /// GET with a change of expiry (GETEX): `None` leaves it, `Some(None)` removes it
    /// (PERSIST), `Some(Some(at))` sets it; a deadline already past deletes the key, and
    /// its value is still answered, as in Redis.
    pub fn get_and_expire(
        &self,
        key: &Bytes,
        change: Option<Option<i64>>,
    ) -> Result<Durable<Option<Bytes>>> {
        let (waiter, value) = {
            let mut inner = self.lock();
            let now = now_ms();
            let Some(entry) = self.live(&mut inner, key, now).cloned() else {
                return Ok(Durable::ready(None));
            };
            let value = entry.value.clone();
            let Some(deadline) = change else {
                return Ok(Durable::ready(Some(value)));
            };
            if deadline == entry.deadline {
                return Ok(Durable::ready(Some(value)));
            }
            (
                self.redeadline(&mut inner, key, entry, deadline, now),
                value,
            )
        };
        Ok(Durable::new(Some(value), waiter))
    }

    /// The deadline of `key` in Unix milliseconds: `None` when it does not exist,
    /// `Some(None)` when it never expires (EXPIRETIME, PEXPIRETIME).
    pub fn deadline(&self, key: &[u8]) -> Option<Option<i64>> {
        let mut inner = self.lock();
        self.live(&mut inner, key, now_ms())
            .map(|entry| entry.deadline)
    }

    /// Deletes `keys`; returns how many existed. Durable when it returns.
    pub fn delete(&self, keys: &[Bytes]) -> Result<Durable<usize>> {
        let (waiter, count) = {
            let mut inner = self.lock();
            let now = now_ms();
            let mut writes = Vec::new();
            for key in keys {
                if self.live(&mut inner, key, now).is_some() {
                    inner.remove(key);
                    writes.push(delete_write(key));
                }
            }
            let count = writes.len();
            if writes.is_empty() {
                return Ok(Durable::ready(0));
            }
            (self.writer.queue(writes), count)
        };
        Ok(Durable::new(count, waiter))
    }

    /// Deletes `key` and returns its value (GETDEL).
    pub fn take(&self, key: &Bytes) -> Result<Durable<Option<Bytes>>> {
        let (waiter, value) = {
            let mut inner = self.lock();
            let Some(entry) = self.live(&mut inner, key, now_ms()).cloned() else {
                return Ok(Durable::ready(None));
            };
            inner.remove(key);
            (self.writer.queue(vec![delete_write(key)]), entry.value)
        };
        Ok(Durable::new(Some(value), waiter))
    }

    /// Sets (`Some`) or clears (`None`) the deadline of `key` when `condition` allows;
    /// returns whether it changed. A deadline already past deletes the key.
    pub fn expire(
        &self,
        key: &Bytes,
        deadline: Option<i64>,
        condition: ExpireCondition,
    ) -> Result<Durable<bool>> {
        let waiter = {
            let mut inner = self.lock();
            let now = now_ms();
            let Some(entry) = self.live(&mut inner, key, now).cloned() else {
                return Ok(Durable::ready(false));
            };
            let allowed = match (condition, entry.deadline, deadline) {
                (ExpireCondition::Always, _, _) => true,
                (ExpireCondition::IfNone, current, _) => current.is_none(),
                (ExpireCondition::IfSome, current, _) => current.is_some(),
                (ExpireCondition::IfLater, None, _) => false,
                (ExpireCondition::IfLater, Some(current), Some(new)) => new > current,
                (ExpireCondition::IfEarlier, None, Some(_)) => true,
                (ExpireCondition::IfEarlier, Some(current), Some(new)) => new < current,
                (_, _, None) => false,
            };
            if !allowed || (deadline.is_none() && entry.deadline.is_none()) {
                return Ok(Durable::ready(false));
            }
            self.redeadline(&mut inner, key, entry, deadline, now)
        };
        Ok(Durable::new(true, waiter))
    }

    /// Gives `entry` (the live entry of `key`) a new deadline and queues the change; a
    /// deadline already past deletes the key instead, as Redis does.
    fn redeadline(
        &self,
        inner: &mut Inner,
        key: &Bytes,
        entry: Entry,
        deadline: Option<i64>,
        now: i64,
    ) -> writer::Waiter {
        if deadline.is_some_and(|deadline| deadline <= now) {
            inner.remove(key);
            self.writer.queue(vec![delete_write(key)])
        } else {
            let entry = Entry {
                value: entry.value,
                deadline,
            };
            let write = put_write(key, &entry);
            inner.insert(key.clone(), entry);
            self.writer.queue(vec![write])
        }
    }

    /// The time `key` has left.
    pub fn time_to_live(&self, key: &[u8]) -> TimeToLive {
        let mut inner = self.lock();
        let now = now_ms();
        match self.live(&mut inner, key, now).map(|e| e.deadline) {
            None => TimeToLive::Missing,
            Some(None) => TimeToLive::Forever,
            Some(Some(deadline)) => TimeToLive::Milliseconds(deadline - now),
        }
    }

    /// Adds `delta` to the integer in `key` (missing: 0), keeping its deadline.
    pub fn increment(&self, key: &Bytes, delta: i64) -> Result<Durable<Increment>> {
        let (waiter, value) = {
            let mut inner = self.lock();
            let old = self.live(&mut inner, key, now_ms()).cloned();
            let current = match &old {
                None => 0,
                Some(entry) => match parse_integer(&entry.value) {
                    Some(current) => current,
                    None => return Ok(Durable::ready(Increment::NotAnInteger)),
                },
            };
            let Some(value) = current.checked_add(delta) else {
                return Ok(Durable::ready(Increment::Overflow));
            };
            let entry = Entry {
                value: Bytes::from(value.to_string()),
                deadline: old.as_ref().and_then(|e| e.deadline),
            };
            check_room(&inner, key, old.as_ref(), &entry)?;
            let write = put_write(key, &entry);
            inner.insert(key.clone(), entry);
            (self.writer.queue(vec![write]), value)
        };
        Ok(Durable::new(Increment::Value(value), waiter))
    }

    /// Appends `data` to the value of `key` (missing: empty); returns the new length.
    pub fn append(&self, key: &Bytes, data: &[u8]) -> Result<Durable<usize>> {
        let (waiter, length) = {
            let mut inner = self.lock();
            let old = self.live(&mut inner, key, now_ms()).cloned();
            let mut value = old.as_ref().map(|e| e.value.to_vec()).unwrap_or_default();
            value.extend_from_slice(data);
            let length = value.len();
            let entry = Entry {
                value: Bytes::from(value),
                deadline: old.as_ref().and_then(|e| e.deadline),
            };
            check_room(&inner, key, old.as_ref(), &entry)?;
            let write = put_write(key, &entry);
            inner.insert(key.clone(), entry);
            (self.writer.queue(vec![write]), length)
        };
        Ok(Durable::new(length, waiter))
    }

    /// Up to `count` live keys matching `pattern` (a Redis glob; `None`: all), starting after
    /// the first `cursor` keys in key order; returns the next cursor (0: done). Keys added or
    /// deleted during a scan shift the positions after them.
    pub fn scan(&self, cursor: u64, pattern: Option<&[u8]>, count: usize) -> (u64, Vec<Bytes>) {
        let inner = self.lock();
        let now = now_ms();
        let mut keys = Vec::new();
        let count = count.max(1);
        let entries = inner.entries.iter().skip(cursor as usize);
        for (visited, (key, entry)) in entries.enumerate() {
            if visited >= count {
                return (cursor + visited as u64, keys);
            }
            let live = entry.deadline.is_none_or(|deadline| deadline > now);
            if live && pattern.is_none_or(|pattern| glob_match(pattern, key)) {
                keys.push(key.clone());
            }
        }
        (0, keys)
    }

    /// Deletes every key (FLUSHALL); durable once the returned [`Durable`] resolves.
    pub fn clear(&self) -> Result<Durable<()>> {
        let waiter = {
            let mut inner = self.lock();
            *inner = Inner::default();
            self.writer.queue(vec![StateWrite::DeletePrefix {
                table: KEYS_TABLE,
                prefix: String::new(),
            }])
        };
        Ok(Durable::new((), waiter))
    }

    /// The entry of `key` unless it expired; an expired one is deleted now (lazily).
    fn live<'a>(&self, inner: &'a mut Inner, key: &[u8], now: i64) -> Option<&'a Entry> {
        let expired = inner
            .entries
            .get(key)?
            .deadline
            .is_some_and(|deadline| deadline <= now);
        if expired {
            inner.remove(key);
            self.writer.queue_detached(vec![delete_write(key)]);
            return None;
        }
        inner.entries.get(key)
    }

    /// Deletes up to [`SWEEP_BATCH`] keys whose deadline has passed; returns how many.
    pub fn sweep(&self) -> usize {
        let mut inner = self.lock();
        let now = now_ms();
        let due: Vec<Bytes> = inner
            .deadlines
            .iter()
            .take_while(|(deadline, _)| *deadline <= now)
            .take(SWEEP_BATCH)
            .map(|(_, key)| key.clone())
            .collect();
        if due.is_empty() {
            return 0;
        }
        let writes = due
            .iter()
            .map(|key| {
                inner.remove(key);
                delete_write(key)
            })
            .collect();
        self.writer.queue_detached(writes);
        due.len()
    }
}

/// The outcome of a change, with the wait for it to be durable. The change is already
/// visible when this is returned, so a caller can make many changes in order (a pipeline)
/// and then wait for all of them: they share group commits.
#[must_use = "a change is acknowledged only once it is durable"]
pub struct Durable<T> {
    value: T,
    commit: Commit,
}

/// The wait for one change to be durable.
#[must_use = "a change is acknowledged only once it is durable"]
pub struct Commit(Option<writer::Waiter>);

impl Commit {
    /// Resolves once the change is fsynced (at once when nothing was written).
    pub async fn wait(self) -> Result<()> {
        match self.0 {
            Some(waiter) => writer::durable(waiter).await,
            None => Ok(()),
        }
    }
}

impl<T> Durable<T> {
    fn new(value: T, waiter: writer::Waiter) -> Self {
        Durable {
            value,
            commit: Commit(Some(waiter)),
        }
    }

    fn ready(value: T) -> Self {
        Durable {
            value,
            commit: Commit(None),
        }
    }

    /// The outcome once it is durable.
    pub async fn wait(self) -> Result<T> {
        self.commit.wait().await?;
        Ok(self.value)
    }

    /// The outcome now, and the wait for it to be durable.
    pub fn split(self) -> (T, Commit) {
        (self.value, self.commit)
    }

    fn map<U>(self, change: impl FnOnce(T) -> U) -> Durable<U> {
        Durable {
            value: change(self.value),
            commit: self.commit,
        }
    }
}

impl Inner {
    fn insert(&mut self, key: Bytes, entry: Entry) {
        if let Some(deadline) = entry.deadline {
            self.deadlines.insert((deadline, key.clone()));
        }
        self.bytes += (key.len() + entry.value.len()) as u64;
        if let Some(old) = self.entries.insert(key.clone(), entry) {
            self.forget(&key, &old);
        }
    }

    fn remove(&mut self, key: &[u8]) -> Option<Entry> {
        let (key, old) = self.entries.remove_entry(key)?;
        self.forget(&key, &old);
        Some(old)
    }

    fn forget(&mut self, key: &Bytes, old: &Entry) {
        if let Some(deadline) = old.deadline {
            self.deadlines.remove(&(deadline, key.clone()));
        }
        self.bytes = self
            .bytes
            .saturating_sub((key.len() + old.value.len()) as u64);
    }
}

/// Refuses a write that would take the keyspace over [`KEYS_MAX`] or [`KEYSPACE_BYTES_MAX`].
fn check_room(inner: &Inner, key: &[u8], old: Option<&Entry>, new: &Entry) -> Result<()> {
    let old_bytes = old.map_or(0, |e| (key.len() + e.value.len()) as u64);
    let bytes = inner.bytes - old_bytes.min(inner.bytes) + (key.len() + new.value.len()) as u64;
    if old.is_none() && inner.entries.len() >= KEYS_MAX {
        return Err(EngineError::LimitExceeded(format!(
            "the keyspace holds {KEYS_MAX} keys (its limit)"
        )));
    }
    if bytes > KEYSPACE_BYTES_MAX {
        return Err(EngineError::LimitExceeded(format!(
            "the keyspace would hold {bytes} bytes; the limit is {KEYSPACE_BYTES_MAX}"
        )));
    }
    Ok(())
}

fn spawn_sweep(keyspace: Weak<Keyspace>) {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(SWEEP_INTERVAL);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let Some(keyspace) = keyspace.upgrade() else {
                return;
            };
            keyspace.sweep();
        }
    });
}

/// Redis integers: optional `-`, digits, no leading `+`, spaces or leading zeros, no `-0`:
/// exactly the text the number prints as.
fn parse_integer(value: &[u8]) -> Option<i64> {
    if value.is_empty() || value.len() > 20 {
        return None;
    }
    let text = std::str::from_utf8(value).ok()?;
    let number: i64 = text.parse().ok()?;
    (itoa::Buffer::new().format(number) == text).then_some(number)
}

fn encode_key(key: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(key.len() * 2);
    for byte in key {
        text.push(HEX[usize::from(byte >> 4)] as char);
        text.push(HEX[usize::from(byte & 15)] as char);
    }
    text
}

fn decode_key(text: &str) -> Option<Bytes> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect::<Option<Vec<u8>>>()
        .map(Bytes::from)
}

fn put_write(key: &[u8], entry: &Entry) -> StateWrite {
    let mut value = Vec::with_capacity(8 + entry.value.len());
    value.extend_from_slice(&entry.deadline.unwrap_or(0).to_be_bytes());
    value.extend_from_slice(&entry.value);
    StateWrite::Put {
        table: KEYS_TABLE,
        key: encode_key(key),
        value,
    }
}

fn delete_write(key: &[u8]) -> StateWrite {
    StateWrite::Delete {
        table: KEYS_TABLE,
        key: encode_key(key),
    }
}

fn decode_entry(stored: &[u8]) -> Option<Entry> {
    let deadline = i64::from_be_bytes(stored.get(..8)?.try_into().ok()?);
    Some(Entry {
        value: Bytes::copy_from_slice(&stored[8..]),
        deadline: (deadline != 0).then_some(deadline),
    })
}

#[cfg(test)]
mod tests;
