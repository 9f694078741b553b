//! The keyspace: durable keys with optional expiry, each holding a string, a list, a hash, a
//! set or a sorted set, protocol-neutral (the Redis door serves its key commands from it;
//! any other door could). It knows no wire type. String commands are here, list commands in
//! `lists.rs`, clients blocked on a list or sorted set in `blocking.rs`, hash commands in
//! `hashes.rs`, sets and sorted sets in `sets.rs` and `zsets.rs`, RENAME/COPY in `moves.rs`,
//! the map of keys in SCAN order in `slots.rs`, the lock and exclusive holds in
//! `exclusive.rs`, the stored rows in `stored.rs`, the sweep of expired keys in `expiry.rs`,
//! hash fields' own deadlines in `field_expiry.rs`.
//!
//! Every key lives in memory (a `BTreeMap` in SCAN order, `slots.rs`) and in the
//! state store (`stored.rs`). A change is applied in memory under one lock and, still under
//! that lock, queued to a single writer task; the writer folds whatever is queued into one
//! group commit, so changes reach the disk in the order they were made, and a caller is
//! answered only once its change is fsynced. Readers may see a change a few hundred
//! microseconds before it is durable (as Redis readers see writes before the AOF has them).
//!
//! A script or a transaction holds the keyspace exclusively ([`Keyspace::exclusive`]): no
//! other thread reads or changes a key until it lets go, and its changes go to disk in one
//! commit, so a crash keeps all of them or none (Redis's isolation and atomicity of EXEC and
//! EVAL). Single commands share a gate that the hold takes whole; the holder's own commands
//! pass it.
//!
//! Expiry never scans the keyspace: deadlines sit in an index ordered by deadline. A read of
//! an expired key deletes it on the spot; a sweep every [`SWEEP_INTERVAL`] deletes keys whose
//! deadline has passed, oldest first, [`SWEEP_BATCH`] at a time, for up to a quarter of the
//! interval.

mod blocking;
mod elements_view;
mod entry;
mod exclusive;
mod expiry;
mod field_expiry;
mod glob;
mod hashes;
mod layout;
mod libraries;
mod lists;
mod moves;
mod objects;
mod options;
mod sets;
mod slots;
mod stored;
mod strings;
mod wholes;
mod writer;
mod zset_view;
mod zsets;

use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use omnibus_storage::StateStore;

use crate::engine::now_ms;
use crate::error::Result;

pub use blocking::{Blocked, ListRequest, Served, Taken, Took};
pub use elements_view::ElementsView;
pub use entry::KeyKind;
pub use exclusive::{Entered, Exclusive};
pub use expiry::KeyspaceStats;
pub use field_expiry::{Expiration, FieldDeadline, FieldExpire, FieldPersist};
pub use glob::glob_match;
pub use layout::LayoutLimits;
pub use libraries::LIBRARIES_TABLE;
pub use lists::{End, ListSet, Popped};
pub use moves::{Copied, Renamed};
pub use objects::{Object, KEY_OVERHEAD_BYTES};
pub use options::{
    ExpireCondition, FloatIncrement, Increment, SetCondition, SetExpiry, SetOptions, SetOutcome,
    TimeToLive,
};
pub use sets::SetOperation;
pub use slots::scan_hash;
pub use stored::{
    HASHES_TABLE, HASH_FIELDS_TABLE, HASH_FIELD_DEADLINES_TABLE, KEYS_TABLE, LISTS_TABLE,
    LIST_ITEMS_TABLE, SETS_TABLE, SET_MEMBERS_TABLE, ZSETS_TABLE, ZSET_MEMBERS_TABLE,
};
pub use wholes::Whole;
pub use zset_view::ZSetView;
pub use zsets::{
    Aggregate, LexBound, ScoreBound, ScoreUpdate, Scored, ZAddOptions, ZAdded, ZOperation, ZQuery,
    ZRange,
};

use entry::{wrong_kind, Entry, Inner};
/// Most keys held at once (each costs its bytes plus ~100 bytes of bookkeeping in memory; a
/// list element ~40 bytes more).
pub const KEYS_MAX: usize = 10_000_000;
/// Most bytes of keys and values held at once (all of them stay in memory).
pub const KEYSPACE_BYTES_MAX: u64 = 4 * 1024 * 1024 * 1024;
/// Expirations a listener may fall behind by before it misses some
/// ([`Keyspace::expirations`]).
pub const EXPIRATIONS_BUFFERED: usize = 65_536;
/// How often expired keys are swept.
pub const SWEEP_INTERVAL: Duration = Duration::from_millis(100);
/// Most keys (and most hash fields) one sweep deletes under one hold of the lock, so a mass
/// expiry cannot stall writers; sweeps follow each other while they come back full, for up
/// to a quarter of [`SWEEP_INTERVAL`].
pub const SWEEP_BATCH: usize = 1000;

/// The durable keyspace; one per engine, from [`crate::Engine::keyspace`].
pub struct Keyspace {
    inner: Mutex<Inner>,
    /// Taken shared by every command, whole by an exclusive hold.
    gate: std::sync::RwLock<()>,
    /// Told when a hold ends: doors waiting for the gate try again.
    released: tokio::sync::Notify,
    /// Holds waiting for the gate from a door ([`Keyspace::exclusive_async`]): commands
    /// let them go first.
    wanted: AtomicUsize,
    /// The thread holding the keyspace exclusively ([`thread_number`]; 0: none): its own
    /// commands pass the gate.
    holder: AtomicU64,
    /// How many holds the holder has open (EXEC running EVAL nests one in another); only the
    /// holder changes it.
    depth: AtomicUsize,
    writer: writer::Writer,
    /// Script libraries by name (`libraries.rs`): not keys.
    libraries: Mutex<std::collections::BTreeMap<Bytes, Bytes>>,
    /// The keys (and hash fields) deleted because their deadline passed, for whoever
    /// listens ([`Keyspace::expirations`]); sent only while someone does.
    expired: tokio::sync::broadcast::Sender<Expiration>,
    /// How many keys, and how many hash fields, were deleted at their deadline since the
    /// keyspace opened (metrics).
    expired_keys: AtomicU64,
    expired_fields: AtomicU64,
}

impl Keyspace {
    /// Loads every key that has not expired from the state store and starts the writer and
    /// the sweep. Needs a Tokio runtime.
    pub(crate) fn open(state: Arc<StateStore>) -> Result<Arc<Keyspace>> {
        let now = now_ms();
        // Read back only here: their rows can wait for the store's checkpoints (still fsynced).
        state.write_behind(&stored::TABLES);
        let stored::Loaded {
            mut keys,
            orphans: mut cleanup,
        } = stored::load(&state)?;
        keys.retain(|(key, entry)| {
            let expired = entry.deadline.is_some_and(|deadline| deadline <= now);
            if expired {
                cleanup.extend(stored::delete_entry(key, entry));
            }
            !expired
        });
        let inner = Inner::loaded(keys);
        let libraries = libraries::load(&state)?;
        let writer = writer::Writer::start(state);
        if !cleanup.is_empty() {
            writer.queue_detached(cleanup);
        }
        let keyspace = Arc::new(Keyspace {
            inner: Mutex::new(inner),
            gate: std::sync::RwLock::new(()),
            released: tokio::sync::Notify::new(),
            wanted: AtomicUsize::new(0),
            holder: AtomicU64::new(0),
            depth: AtomicUsize::new(0),
            writer,
            expired: tokio::sync::broadcast::channel(EXPIRATIONS_BUFFERED).0,
            expired_keys: AtomicU64::new(0),
            expired_fields: AtomicU64::new(0),
            libraries: Mutex::new(libraries),
        });
        expiry::spawn_sweep(Arc::downgrade(&keyspace));
        Ok(keyspace)
    }

    /// The value of string `key`, or `None` when it is missing, expired or a list.
    pub fn get(&self, key: &[u8]) -> Option<Bytes> {
        let mut inner = self.lock();
        self.live(&mut inner, key, now_ms())
            .and_then(|e| e.as_string().cloned())
    }

    /// Values of several string keys, read under one lock (a list answers `None`, as Redis's
    /// MGET answers nil for a key of another type).
    pub fn get_many(&self, keys: &[Bytes]) -> Vec<Option<Bytes>> {
        let mut inner = self.lock();
        let now = now_ms();
        keys.iter()
            .map(|key| {
                self.live(&mut inner, key, now)
                    .and_then(|e| e.as_string().cloned())
            })
            .collect()
    }

    /// What `key` holds, or `None` when it is missing or expired.
    pub fn kind(&self, key: &[u8]) -> Option<KeyKind> {
        let mut inner = self.lock();
        if inner.entries.is_empty() {
            return None;
        }
        self.live(&mut inner, key, now_ms()).map(Entry::kind)
    }

    /// A number that changes whenever `key` is written (`None`: missing), for WATCH.
    pub fn version(&self, key: &[u8]) -> Option<u64> {
        let mut inner = self.lock();
        self.live(&mut inner, key, now_ms()).map(|e| e.version)
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

    /// How many hashes have a field with a deadline (INFO keyspace's `subexpiry`, Redis 7.4).
    pub fn hashes_with_field_deadlines(&self) -> usize {
        self.lock().field_deadlines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Writes `value` under `key` as `options` say, replacing a list as Redis's SET does; the
    /// outcome's `old` is the string it held (`None` for a list). Durable once the returned
    /// [`Durable`] resolves.
    pub fn set(
        &self,
        key: Bytes,
        value: Bytes,
        options: SetOptions,
    ) -> Result<Durable<SetOutcome>> {
        let mut inner = self.lock();
        let now = now_ms();
        let old = self
            .live(&mut inner, &key, now)
            .map(|e| (e.as_string().cloned(), e.deadline, e.size()));
        let allowed = match options.condition {
            SetCondition::Always => true,
            SetCondition::IfAbsent => old.is_none(),
            SetCondition::IfPresent => old.is_some(),
        };
        let old_value = old.as_ref().and_then(|(value, _, _)| value.clone());
        if !allowed {
            return Ok(Durable::ready(SetOutcome {
                written: false,
                old: old_value,
            }));
        }
        let deadline = match options.expiry {
            SetExpiry::Clear => None,
            SetExpiry::Keep => old.as_ref().and_then(|(_, deadline, _)| *deadline),
            SetExpiry::At(at) => Some(at),
        };
        let waiter = if deadline.is_some_and(|deadline| deadline <= now) {
            // Redis: a deadline already past deletes the key at once.
            let writes = inner
                .remove(&key)
                .map(|old| stored::delete_entry(&key, &old))
                .unwrap_or_default();
            self.writer.queue(writes)
        } else {
            let entry = Entry::string(value, deadline);
            inner.check_room(&key, old.map(|(_, _, size)| size), entry.size())?;
            self.replace(&mut inner, key, entry)
        };
        Ok(Durable::new(
            SetOutcome {
                written: true,
                old: old_value,
            },
            waiter,
        ))
    }

    /// `value`, durable once `writes` are: at once when there are none (a change that
    /// changed nothing waits for no commit).
    fn durable<T>(&self, value: T, writes: Vec<omnibus_storage::StateWrite>) -> Durable<T> {
        if writes.is_empty() {
            Durable::ready(value)
        } else {
            Durable::new(value, self.writer.queue(writes))
        }
    }

    /// Puts `entry` under `key` in memory and queues the rows that store it (deleting the
    /// old key's rows when they differ).
    fn replace(&self, inner: &mut Inner, key: Bytes, entry: Entry) -> writer::Waiter {
        // Read, then overwritten in place by the insert (which forgets the old entry's
        // deadline and bytes): cheaper than removing the key from the map and adding it back.
        let writes = stored::replace_entry(&key, inner.entries.get(&key), &entry);
        inner.insert(key, entry);
        self.writer.queue(writes)
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
        let mut inner = self.lock();
        let now = now_ms();
        if if_all_absent
            && pairs
                .iter()
                .any(|(key, _)| self.live(&mut inner, key, now).is_some())
        {
            return Ok(Durable::ready(false));
        }
        // Checked before anything changes: the sizes the keys would have, pair by pair
        // (a key named twice counts its last value).
        let mut sizes: std::collections::HashMap<&Bytes, (Option<u64>, u64)> =
            std::collections::HashMap::new();
        for (key, value) in &pairs {
            let old = match sizes.get(key) {
                Some((old, _)) => *old,
                None => self.live(&mut inner, key, now).map(Entry::size),
            };
            sizes.insert(key, (old, value.len() as u64));
        }
        let mut room = 0i128;
        let mut added = 0usize;
        for (key, (old, new)) in &sizes {
            let key_bytes = key.len() as i128;
            room += key_bytes + *new as i128 - old.map_or(0, |old| key_bytes + old as i128);
            added += usize::from(old.is_none());
        }
        if inner.entries.len() + added > KEYS_MAX {
            return Err(crate::error::EngineError::LimitExceeded(format!(
                "the keyspace holds {KEYS_MAX} keys (its limit)"
            )));
        }
        let bytes = inner.bytes as i128 + room;
        if bytes > i128::from(KEYSPACE_BYTES_MAX) {
            return Err(crate::error::EngineError::LimitExceeded(format!(
                "the keyspace would hold {bytes} bytes; the limit is {KEYSPACE_BYTES_MAX}"
            )));
        }
        let mut writes = Vec::with_capacity(pairs.len());
        for (key, value) in pairs {
            let entry = Entry::string(value, None);
            let old = inner.remove(&key);
            writes.extend(stored::replace_entry(&key, old.as_ref(), &entry));
            inner.insert(key, entry);
        }
        Ok(Durable::new(true, self.writer.queue(writes)))
    }

    /// GET with a change of expiry (GETEX): `None` leaves it, `Some(None)` removes it
    /// (PERSIST), `Some(Some(at))` sets it; a deadline already past deletes the key, and
    /// its value is still answered, as in Redis.
    pub fn get_and_expire(
        &self,
        key: &Bytes,
        change: Option<Option<i64>>,
    ) -> Result<Durable<Option<Bytes>>> {
        let mut inner = self.lock();
        let now = now_ms();
        let Some(entry) = self.live(&mut inner, key, now) else {
            return Ok(Durable::ready(None));
        };
        let (value, current) = (
            entry.as_string().cloned().ok_or_else(wrong_kind)?,
            entry.deadline,
        );
        let Some(deadline) = change else {
            return Ok(Durable::ready(Some(value)));
        };
        if deadline == current {
            return Ok(Durable::ready(Some(value)));
        }
        let waiter = self.redeadline(&mut inner, key, deadline, now);
        Ok(Durable::new(Some(value), waiter))
    }

    /// The deadline of `key` in Unix milliseconds: `None` when it does not exist,
    /// `Some(None)` when it never expires (EXPIRETIME, PEXPIRETIME).
    pub fn deadline(&self, key: &[u8]) -> Option<Option<i64>> {
        let mut inner = self.lock();
        self.live(&mut inner, key, now_ms())
            .map(|entry| entry.deadline)
    }

    /// Deletes `keys` of any kind; returns how many existed. Durable when it returns.
    pub fn delete(&self, keys: &[Bytes]) -> Result<Durable<usize>> {
        let mut inner = self.lock();
        let now = now_ms();
        let mut writes = Vec::new();
        let mut count = 0;
        for key in keys {
            if self.live(&mut inner, key, now).is_some() {
                if let Some(old) = inner.remove(key) {
                    writes.extend(stored::delete_entry(key, &old));
                    count += 1;
                }
            }
        }
        if count == 0 {
            return Ok(Durable::ready(0));
        }
        Ok(Durable::new(count, self.writer.queue(writes)))
    }

    /// Deletes string `key` and returns its value (GETDEL).
    pub fn take(&self, key: &Bytes) -> Result<Durable<Option<Bytes>>> {
        let mut inner = self.lock();
        let Some(entry) = self.live(&mut inner, key, now_ms()) else {
            return Ok(Durable::ready(None));
        };
        let value = entry.as_string().cloned().ok_or_else(wrong_kind)?;
        let old = inner.remove(key).expect("the entry just read");
        let waiter = self.writer.queue(stored::delete_entry(key, &old));
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
        let mut inner = self.lock();
        let now = now_ms();
        let Some(current) = self.live(&mut inner, key, now).map(|e| e.deadline) else {
            return Ok(Durable::ready(false));
        };
        if !condition.allows(current, deadline) {
            return Ok(Durable::ready(false));
        }
        let waiter = self.redeadline(&mut inner, key, deadline, now);
        Ok(Durable::new(true, waiter))
    }

    /// Gives the live entry of `key` a new deadline and queues the change; a deadline
    /// already past deletes the key instead, as Redis does.
    fn redeadline(
        &self,
        inner: &mut Inner,
        key: &Bytes,
        deadline: Option<i64>,
        now: i64,
    ) -> writer::Waiter {
        let mut entry = inner.remove(key).expect("a live entry");
        if deadline.is_some_and(|deadline| deadline <= now) {
            self.writer.queue(stored::delete_entry(key, &entry))
        } else {
            entry.deadline = deadline;
            let writes = stored::put_deadline(key, &entry);
            inner.insert(key.clone(), entry);
            self.writer.queue(writes)
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
        let mut inner = self.lock();
        let old = self.live(&mut inner, key, now_ms());
        let current = match old.map(|e| e.as_string().ok_or_else(wrong_kind)) {
            None => 0,
            Some(value) => match parse_integer(value?) {
                Some(current) => current,
                None => return Ok(Durable::ready(Increment::NotAnInteger)),
            },
        };
        let Some(value) = current.checked_add(delta) else {
            return Ok(Durable::ready(Increment::Overflow));
        };
        let (deadline, size) = (old.and_then(|e| e.deadline), old.map(Entry::size));
        let entry = Entry::string(Bytes::from(value.to_string()), deadline);
        inner.check_room(key, size, entry.size())?;
        let waiter = self.replace(&mut inner, key.clone(), entry);
        Ok(Durable::new(Increment::Value(value), waiter))
    }

    /// Adds `delta` to the number in string `key` (missing: 0) (INCRBYFLOAT).
    pub fn increment_float(&self, key: &Bytes, delta: f64) -> Result<Durable<FloatIncrement>> {
        let mut inner = self.lock();
        let old = self.live(&mut inner, key, now_ms());
        let current = match old.map(|e| e.as_string().ok_or_else(wrong_kind)) {
            None => Some(0.0),
            Some(value) => parse_float(value?),
        };
        let text = match float_sum(current, delta) {
            Ok(text) => text,
            Err(refused) => return Ok(Durable::ready(refused)),
        };
        let (deadline, size) = (old.and_then(|e| e.deadline), old.map(Entry::size));
        let entry = Entry::string(text.clone(), deadline);
        inner.check_room(key, size, entry.size())?;
        let waiter = self.replace(&mut inner, key.clone(), entry);
        Ok(Durable::new(FloatIncrement::Value(text), waiter))
    }

    /// Appends `data` to the value of `key` (missing: empty); returns the new length.
    pub fn append(&self, key: &Bytes, data: &[u8]) -> Result<Durable<usize>> {
        self.change_string(key, |old| {
            let mut value = old.map(<[u8]>::to_vec).unwrap_or_default();
            value.extend_from_slice(data);
            let length = value.len();
            (Some(value), length)
        })
    }

    /// Up to `count` live keys matching `pattern` (a Redis glob; `None`: all) and `kind`
    /// (`None`: any), from SCAN place `cursor` on (`slots.rs`: 0 starts); returns the next
    /// cursor (0: done). Every key present for a whole scan is returned once (or, rarely,
    /// twice); keys added or deleted meanwhile move nothing else.
    pub fn scan(
        &self,
        cursor: u64,
        pattern: Option<&[u8]>,
        kind: Option<KeyKind>,
        count: usize,
    ) -> (u64, Vec<Bytes>) {
        let inner = self.lock();
        let now = now_ms();
        let mut keys = Vec::new();
        let count = count.max(1);
        let entries = inner.entries.starting_at(cursor);
        for (visited, (place, key, entry)) in entries.enumerate() {
            if visited >= count {
                return (place, keys);
            }
            let live = entry.deadline.is_none_or(|deadline| deadline > now);
            if live
                && kind.is_none_or(|kind| kind == entry.kind())
                && pattern.is_none_or(|pattern| glob_match(pattern, key))
            {
                keys.push(key.clone());
            }
        }
        (0, keys)
    }

    /// Deletes every key (FLUSHALL); durable once the returned [`Durable`] resolves.
    pub fn clear(&self) -> Result<Durable<()>> {
        let mut inner = self.lock();
        let waiters = std::mem::take(&mut inner.waiters);
        *inner = Inner::default();
        inner.waiters = waiters;
        let waiter = self.writer.queue(stored::delete_all());
        Ok(Durable::new((), waiter))
    }

    /// The entry of `key` unless it expired; an expired one is deleted now (lazily), and
    /// so are a hash's fields whose deadlines passed (`field_expiry.rs`).
    fn live<'a>(&self, inner: &'a mut Inner, key: &[u8], now: i64) -> Option<&'a Entry> {
        let keys_due = inner.deadlines.first().is_some_and(|(due, _)| *due <= now);
        // No key's or field's deadline has passed (the earliest are still ahead): one
        // lookup, no check.
        if !keys_due && !inner.fields_due(now) {
            return inner.entries.get(key);
        }
        let entry = inner.entries.get(key)?;
        let fields_due = entry
            .earliest_field_deadline()
            .is_some_and(|deadline| deadline <= now);
        if entry.deadline.is_some_and(|deadline| deadline <= now) {
            let old = inner.remove(key).expect("the entry just read");
            self.writer.queue_detached(stored::delete_entry(key, &old));
            self.expired_keys
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.tell_expired(|| Expiration::Key(Bytes::copy_from_slice(key)));
            return None;
        }
        if fields_due {
            self.expire_fields(inner, key, now);
        }
        inner.entries.get(key)
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
pub struct Commit(Wait);

enum Wait {
    Nothing,
    /// A change to the keyspace, in its writer's group commits.
    Keyspace(writer::Waiter),
    /// A change made elsewhere in the engine (a consumer group's acknowledgement).
    Elsewhere(std::pin::Pin<Box<dyn std::future::Future<Output = Result<()>> + Send>>),
}

impl Commit {
    /// Resolves once the change is fsynced (at once when nothing was written).
    pub async fn wait(self) -> Result<()> {
        match self.0 {
            Wait::Keyspace(waiter) => writer::durable(waiter).await,
            Wait::Elsewhere(durable) => durable.await,
            Wait::Nothing => Ok(()),
        }
    }

    fn keyspace(waiter: writer::Waiter) -> Commit {
        Commit(Wait::Keyspace(waiter))
    }

    /// The wait for a change made outside the keyspace, already made in memory.
    pub(crate) fn elsewhere(
        durable: impl std::future::Future<Output = Result<()>> + Send + 'static,
    ) -> Commit {
        Commit(Wait::Elsewhere(Box::pin(durable)))
    }
}

impl<T> Durable<T> {
    fn new(value: T, waiter: writer::Waiter) -> Self {
        Durable {
            value,
            commit: Commit::keyspace(waiter),
        }
    }

    fn ready(value: T) -> Self {
        Durable {
            value,
            commit: Commit(Wait::Nothing),
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

/// A number as Redis reads one from a value or an argument: decimal or exponent digits, or
/// `inf`; no surrounding spaces, never NaN.
pub fn parse_float(value: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(value).ok()?;
    if text.is_empty() || text.trim() != text {
        return None;
    }
    let number: f64 = text.parse().ok()?;
    (!number.is_nan()).then_some(number)
}

/// `current + delta` as INCRBYFLOAT stores it: the shortest digits that read back as the
/// sum, never an exponent (Redis writes 17 digits of a long double and cuts trailing zeros,
/// which reads back as the same double for sums a double holds exactly). `None` for
/// `current`: the value held is not a number.
fn float_sum(current: Option<f64>, delta: f64) -> std::result::Result<Bytes, FloatIncrement> {
    let current = current.ok_or(FloatIncrement::NotAFloat)?;
    let sum = current + delta;
    if !sum.is_finite() {
        return Err(FloatIncrement::NotFinite);
    }
    Ok(Bytes::from(format!("{}", sum + 0.0)))
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

#[cfg(test)]
mod tests;

#[cfg(test)]
mod list_tests;

#[cfg(test)]
mod hash_tests;

#[cfg(test)]
mod set_tests;

#[cfg(test)]
mod exclusive_tests;

#[cfg(test)]
mod layout_tests;

#[cfg(test)]
mod move_tests;
#[cfg(test)]
mod size_tests;
