//! What the keyspace holds in memory: each key's value (a string, list, hash, set or sorted
//! set), its deadline,
//! the deadline index and the byte count the bounds are checked against.

use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use bytes::Bytes;

use super::blocking::Waiter;
use super::layout::{listpack_entry_bytes, settle, Layout, LayoutLimits};
use super::{KEYSPACE_BYTES_MAX, KEYS_MAX};
use crate::error::{EngineError, Result};

/// The kind of value a key holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    String,
    List,
    Hash,
    Set,
    SortedSet,
}

#[derive(Debug, Clone)]
pub(super) enum Value {
    String(Bytes),
    // Collections boxed: a string, most keys, needs 32 bytes where the largest collection
    // needs 88, and every slot of the keyspace's map is as big as its largest value.
    List(Box<List>),
    Hash(Box<Hash>),
    Set(Box<Set>),
    SortedSet(Box<SortedSet>),
}

/// A set: its members in the order they were added (while it stays in memory; a start reads
/// them back in byte order, as no place is stored: a set promises no order).
#[derive(Debug, Clone, Default)]
pub(super) struct Set {
    pub(super) members: indexmap::IndexSet<Bytes>,
    /// The members' sizes ([`member_size`]).
    pub(super) bytes: u64,
    /// The longest member ever added (`layout.rs`).
    pub(super) longest: usize,
    /// The form Redis would hold it in (`layout.rs`).
    pub(super) layout: Layout,
    /// How many members it had when its form was last settled (`layout.rs`).
    pub(super) settled: usize,
}

/// A sorted set: each member's score, and the members ordered by (score, member bytes), as
/// Redis orders them. Ranks are counted along that order (linear in the rank).
#[derive(Debug, Clone, Default)]
pub(super) struct SortedSet {
    pub(super) scores: HashMap<Bytes, f64>,
    pub(super) order: BTreeSet<(Score, Bytes)>,
    /// The members' sizes with their scores ([`scored_size`]).
    pub(super) bytes: u64,
    /// The longest member ever added (`layout.rs`).
    pub(super) longest: usize,
    /// The form Redis would hold it in (`layout.rs`).
    pub(super) layout: Layout,
}

/// A score with the total order a sorted set needs: never NaN (refused before it gets
/// here), and -0 is kept as 0 so the two sort as one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Score(pub(super) f64);

impl Score {
    pub(super) fn new(score: f64) -> Score {
        Score(score + 0.0)
    }
}

impl Eq for Score {}

impl PartialOrd for Score {
    fn partial_cmp(&self, other: &Score) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Score {
    fn cmp(&self, other: &Score) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

impl SortedSet {
    /// Sets `member`'s score (adding it if new); returns the score it had.
    pub(super) fn put(&mut self, member: Bytes, score: f64) -> Option<f64> {
        let score = Score::new(score).0;
        match self.scores.get_mut(&member) {
            Some(current) => {
                let old = *current;
                *current = score;
                self.order.remove(&(Score(old), member.clone()));
                self.order.insert((Score(score), member));
                Some(old)
            }
            None => {
                self.bytes += scored_size(&member);
                self.longest = self.longest.max(member.len());
                self.scores.insert(member.clone(), score);
                self.order.insert((Score(score), member));
                None
            }
        }
    }

    /// Removes `member`; returns its score.
    pub(super) fn take(&mut self, member: &[u8]) -> Option<f64> {
        let (member, score) = self.scores.remove_entry(member)?;
        self.bytes -= scored_size(&member);
        self.order.remove(&(Score(score), member));
        Some(score)
    }
}

/// What one part of a collection costs in memory beyond its own bytes, counted with them
/// against [`KEYSPACE_BYTES_MAX`]: its `Bytes` handle (32 bytes) and its allocation's header,
/// and its slot in the list's deque or the set's or hash's table — twice for a sorted set's
/// member (its score table and its order) and for a hash's field (field and value, and
/// their place in insertion order). Estimated from those layouts, rounded up. Without them
/// the bound counted only the bytes given, and four GiB of one-byte members held over a
/// hundred GiB of memory.
pub(super) const LIST_ITEM_OVERHEAD: u64 = 48;
pub(super) const SET_MEMBER_OVERHEAD: u64 = 64;
pub(super) const HASH_FIELD_OVERHEAD: u64 = 112;
pub(super) const SORTED_MEMBER_OVERHEAD: u64 = 112;

/// What a list element counts against the keyspace's bound.
pub(super) fn item_size(item: &[u8]) -> u64 {
    item.len() as u64 + LIST_ITEM_OVERHEAD
}

/// What a set member counts against the keyspace's bound.
pub(super) fn member_size(member: &[u8]) -> u64 {
    member.len() as u64 + SET_MEMBER_OVERHEAD
}

/// What a hash field with its value counts against the keyspace's bound.
pub(super) fn field_size(field: &[u8], value: &[u8]) -> u64 {
    (field.len() + value.len()) as u64 + HASH_FIELD_OVERHEAD
}

/// What a sorted set's member (with its 8-byte score) counts against the keyspace's bound.
pub(super) fn scored_size(member: &[u8]) -> u64 {
    member.len() as u64 + 8 + SORTED_MEMBER_OVERHEAD
}

/// A hash: its fields in the order they were first set (as Redis's small hashes keep them),
/// each with its place in that order, which is what a stored row keeps to read them back in
/// order (`stored.rs`). Removing a field leaves the others in order.
#[derive(Debug, Clone, Default)]
pub(super) struct Hash {
    pub(super) fields: indexmap::IndexMap<Bytes, (u64, Bytes)>,
    /// The place of the next new field.
    pub(super) next: u64,
    /// The fields' and values' sizes ([`field_size`]), with their deadlines'.
    pub(super) bytes: u64,
    /// The deadlines of the fields that have one (`field_expiry.rs`); `None` when none has.
    pub(super) deadlines: Option<Box<super::field_expiry::FieldDeadlines>>,
    /// The longest field or value ever written (`layout.rs`).
    pub(super) longest: usize,
    /// The form Redis would hold it in (`layout.rs`).
    pub(super) layout: Layout,
}

/// A list: its elements in order, and the stored position of the first one (the element at
/// index `i` is stored at `head + i`, so a push or pop at either end writes one row).
#[derive(Debug, Clone)]
pub(super) struct List {
    pub(super) items: VecDeque<Bytes>,
    pub(super) head: u64,
    /// The elements' sizes ([`item_size`]).
    pub(super) bytes: u64,
    /// The bytes of the elements' entries in a Redis listpack (`layout.rs`).
    pub(super) packed: u64,
    /// The form Redis would hold it in (`layout.rs`).
    pub(super) layout: Layout,
}

/// A value with parts (a list's elements, a hash's fields), changed in place a part at a
/// time and deleted with its last part.
pub(super) trait Collection {
    fn of(value: &mut Value) -> Option<&mut Self>;
    /// The parts' bytes.
    fn bytes(&self) -> u64;
    fn is_empty(&self) -> bool;
    /// The earliest deadline of a part (a hash's fields may have one).
    fn earliest_deadline(&self) -> Option<i64> {
        None
    }
}

impl Collection for List {
    fn of(value: &mut Value) -> Option<&mut List> {
        match value {
            Value::List(list) => Some(list),
            _ => None,
        }
    }
    fn bytes(&self) -> u64 {
        self.bytes
    }
    fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

impl Collection for Set {
    fn of(value: &mut Value) -> Option<&mut Set> {
        match value {
            Value::Set(set) => Some(set),
            _ => None,
        }
    }
    fn bytes(&self) -> u64 {
        self.bytes
    }
    fn is_empty(&self) -> bool {
        self.members.is_empty()
    }
}

impl Collection for SortedSet {
    fn of(value: &mut Value) -> Option<&mut SortedSet> {
        match value {
            Value::SortedSet(set) => Some(set),
            _ => None,
        }
    }
    fn bytes(&self) -> u64 {
        self.bytes
    }
    fn is_empty(&self) -> bool {
        self.scores.is_empty()
    }
}

impl Collection for Hash {
    fn of(value: &mut Value) -> Option<&mut Hash> {
        match value {
            Value::Hash(hash) => Some(hash),
            _ => None,
        }
    }
    fn bytes(&self) -> u64 {
        self.bytes
    }
    fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }
    fn earliest_deadline(&self) -> Option<i64> {
        self.earliest_field_deadline()
    }
}

/// Where a new list's first element is stored: the middle of the position space, so that
/// 2^63 pushes fit at either end.
pub(super) const FIRST_POSITION: u64 = 1 << 63;

impl List {
    pub(super) fn new() -> List {
        List {
            items: VecDeque::new(),
            head: FIRST_POSITION,
            bytes: 0,
            packed: 0,
            layout: Layout::default(),
        }
    }

    /// Counts `item` in the list's sizes, as it is added.
    pub(super) fn count_in(&mut self, item: &[u8]) {
        self.bytes += item_size(item);
        self.packed += listpack_entry_bytes(item);
    }

    /// Takes `item` out of the list's sizes, as it is removed.
    pub(super) fn count_out(&mut self, item: &[u8]) {
        self.bytes -= item_size(item);
        self.packed -= listpack_entry_bytes(item);
    }

    /// Counts the sizes again from the elements.
    pub(super) fn recount(&mut self) {
        self.bytes = self.items.iter().map(|item| item_size(item)).sum();
        self.packed = self
            .items
            .iter()
            .map(|item| listpack_entry_bytes(item))
            .sum();
    }

    pub(super) fn len(&self) -> usize {
        self.items.len()
    }

    /// The stored position of index `i`.
    pub(super) fn position(&self, i: usize) -> u64 {
        self.head.wrapping_add(i as u64)
    }
}

#[derive(Debug, Clone)]
pub(super) struct Entry {
    pub(super) value: Value,
    pub(super) deadline: Option<i64>,
    /// Changes on every write to the key (WATCH compares it).
    pub(super) version: u64,
}

impl Entry {
    pub(super) fn string(value: Bytes, deadline: Option<i64>) -> Entry {
        Entry {
            value: Value::String(owned(value)),
            deadline,
            version: 0,
        }
    }

    /// An empty value of `kind`'s collection, to be filled at once (a string is empty).
    pub(super) fn empty(kind: KeyKind) -> Entry {
        let value = match kind {
            KeyKind::String => Value::String(Bytes::new()),
            KeyKind::List => Value::List(Box::new(List::new())),
            KeyKind::Hash => Value::Hash(Box::default()),
            KeyKind::Set => Value::Set(Box::default()),
            KeyKind::SortedSet => Value::SortedSet(Box::default()),
        };
        Entry {
            value,
            deadline: None,
            version: 0,
        }
    }

    /// Bytes counted against [`KEYSPACE_BYTES_MAX`], without the key.
    pub(super) fn size(&self) -> u64 {
        match &self.value {
            Value::String(value) => value.len() as u64,
            Value::List(list) => list.bytes,
            Value::Hash(hash) => hash.bytes,
            Value::Set(set) => set.bytes,
            Value::SortedSet(set) => set.bytes,
        }
    }

    /// The earliest deadline of a hash's fields (`None` for other kinds).
    pub(super) fn earliest_field_deadline(&self) -> Option<i64> {
        match &self.value {
            Value::Hash(hash) => hash.earliest_field_deadline(),
            _ => None,
        }
    }

    pub(super) fn kind(&self) -> KeyKind {
        match self.value {
            Value::String(_) => KeyKind::String,
            Value::List(_) => KeyKind::List,
            Value::Hash(_) => KeyKind::Hash,
            Value::Set(_) => KeyKind::Set,
            Value::SortedSet(_) => KeyKind::SortedSet,
        }
    }

    /// The string value; `None` for a list.
    pub(super) fn as_string(&self) -> Option<&Bytes> {
        match &self.value {
            Value::String(value) => Some(value),
            _ => None,
        }
    }
}

#[derive(Default)]
pub(super) struct Inner {
    pub(super) entries: super::slots::Entries,
    /// (deadline, key) of every key that has one.
    pub(super) deadlines: BTreeSet<(i64, Bytes)>,
    /// (earliest field deadline, key) of every hash with a field that has a deadline
    /// (`field_expiry.rs`).
    pub(super) field_deadlines: BTreeSet<(i64, Bytes)>,
    pub(super) bytes: u64,
    /// Source of [`Entry::version`].
    pub(super) versions: u64,
    /// Clients blocked on each list key, the longest-waiting first.
    pub(super) waiters: HashMap<Bytes, VecDeque<Arc<Waiter>>>,
    /// What decides the form Redis would hold each collection in (`layout.rs`).
    pub(super) layout_limits: LayoutLimits,
    /// Keys with blocked clients written inside a hold, served when it ends (`blocking.rs`).
    pub(super) ready_after_hold: Vec<Bytes>,
}

impl Inner {
    /// The keys a start read back (each in an allocation of its own), indexed at once
    /// rather than one insert at a time; a key given twice keeps its last entry.
    pub(super) fn loaded(keys: Vec<(Bytes, Entry)>) -> Inner {
        let count = keys.len();
        let mut versions = 0;
        let limits = LayoutLimits::default();
        let versioned = keys.into_iter().map(|(key, mut entry)| {
            versions += 1;
            entry.version = versions;
            // As redis-server loading a file: each collection in the most compact form
            // that holds it.
            settle(&mut entry, &limits);
            (key, entry)
        });
        let entries = super::slots::Entries::from_pairs(versioned, count);
        let bytes = entries
            .all()
            .map(|(key, entry)| key.len() as u64 + entry.size())
            .sum();
        let deadlines = entries
            .all()
            .filter_map(|(key, entry)| Some((entry.deadline?, key.clone())))
            .collect();
        let field_deadlines = entries
            .all()
            .filter_map(|(key, entry)| Some((entry.earliest_field_deadline()?, key.clone())))
            .collect();
        Inner {
            entries,
            deadlines,
            field_deadlines,
            bytes,
            versions,
            waiters: HashMap::new(),
            layout_limits: limits,
            ready_after_hold: Vec::new(),
        }
    }

    pub(super) fn insert(&mut self, key: Bytes, mut entry: Entry) {
        let key = owned(key);
        let deadline = entry.deadline;
        self.versions += 1;
        entry.version = self.versions;
        settle(&mut entry, &self.layout_limits);
        self.bytes += key.len() as u64 + entry.size();
        // Cloned only for the deadlines' index: a clone gives the key a shared header, which
        // a key without a deadline need not carry.
        let indexed = deadline.map(|deadline| (deadline, key.clone()));
        let fields_indexed = entry
            .earliest_field_deadline()
            .map(|deadline| (deadline, key.clone()));
        // The old entry's deadline goes before the new one is indexed: a key rewritten with
        // the deadline it had (INCR, SET … KEEPTTL) must keep it in the index.
        if let Some((key, old)) = self.entries.insert(key, entry) {
            self.forget(&key, &old);
        }
        if let Some(indexed) = indexed {
            self.deadlines.insert(indexed);
        }
        if let Some(indexed) = fields_indexed {
            self.field_deadlines.insert(indexed);
        }
    }

    pub(super) fn remove(&mut self, key: &[u8]) -> Option<Entry> {
        let (key, old) = self.entries.remove_entry(key)?;
        self.forget(&key, &old);
        Some(old)
    }

    fn forget(&mut self, key: &Bytes, old: &Entry) {
        if let Some(deadline) = old.deadline {
            self.deadlines.remove(&(deadline, key.clone()));
        }
        if let Some(deadline) = old.earliest_field_deadline() {
            self.field_deadlines.remove(&(deadline, key.clone()));
        }
        self.bytes = self.bytes.saturating_sub(key.len() as u64 + old.size());
    }

    /// The list or hash under `key` to change in place; the caller keeps `bytes` right with
    /// [`Inner::resize`] and marks a change with [`Inner::touch`].
    pub(super) fn collection_mut<C: Collection>(&mut self, key: &[u8]) -> Option<&mut C> {
        C::of(&mut self.entries.get_mut(key)?.value)
    }

    /// Gives `key` a new version: it was written (WATCH sees it).
    pub(super) fn touch(&mut self, key: &[u8]) {
        self.versions += 1;
        let version = self.versions;
        if let Some(entry) = self.entries.get_mut(key) {
            entry.version = version;
            settle(entry, &self.layout_limits);
        }
    }

    /// Moves the byte count by a list's change of size.
    pub(super) fn resize(&mut self, before: u64, after: u64) {
        self.bytes = (self.bytes + after).saturating_sub(before);
    }

    /// Refuses a write that would take the keyspace over [`KEYS_MAX`] or
    /// [`KEYSPACE_BYTES_MAX`]: `old` is what the key holds now (its bytes), `new` what it
    /// would hold.
    pub(super) fn check_room(&self, key: &[u8], old: Option<u64>, new: u64) -> Result<()> {
        let key_bytes = key.len() as u64;
        let old_bytes = old.map_or(0, |size| key_bytes + size);
        let bytes = self.bytes - old_bytes.min(self.bytes) + key_bytes + new;
        if old.is_none() && self.entries.len() >= KEYS_MAX {
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
}

/// `bytes` in an allocation of its own. What a door hands in is often a slice of the buffer
/// a whole read landed in (the Redis door cuts arguments out of it without copying): kept
/// as it is, one 100-byte value held the read's ~16 KiB for as long as the key lived (100,000
/// LPUSHes from 50 connections took 1.6 GB). Everything the keyspace keeps goes through here.
pub(super) fn owned(bytes: Bytes) -> Bytes {
    Bytes::copy_from_slice(&bytes)
}

/// The error for a command on a key of the other kind.
pub(super) fn wrong_kind() -> EngineError {
    EngineError::WrongKind
}
