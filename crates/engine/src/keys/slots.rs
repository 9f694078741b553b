//! The keyspace's map of keys: a hash table found by each key's SCAN hash, and beside it
//! those hashes in order, so that SCAN's cursor can be a place in that order: "go on from
//! hash h". Keys added or deleted during a scan then move nothing else, and every key present
//! for the whole scan is returned, as Redis promises (a cursor counting keys skipped some: a
//! client deleting what each page returned, the usual delete-by-pattern loop, removed only
//! half of them).
//!
//! Why two structures: a lookup is what every command does, and in one ordered map it was a
//! B-tree walk at each level (~7 % of the broker's samples under pipelined SETs). The order
//! is needed only when a key comes or goes, and by SCAN, so it holds only the hashes (8
//! bytes a key): the table, hashed by the same SCAN hash, finds the key of each. An earlier
//! order of `(hash, key)` held a second reference to every key, which cost each key a
//! shared-buffer header besides the 40-byte element (~70 bytes a key in all).
//!
//! The order is [`BUCKETS`] B-trees, by the top bits of the hash: walked one after the
//! other they are one order, and a key coming or going walks a tree of a few hundred keys
//! where one tree of a million took ~6 cache misses (that insert was 12 % of the door
//! thread's samples under SETs of new keys). Two keys with one hash (62 bits: rare) share
//! their place: the table finds both.

use std::collections::BTreeSet;
use std::hash::BuildHasher;
use std::ops::Bound;
use std::sync::OnceLock;

use bytes::Bytes;
use hashbrown::HashTable;

use super::entry::Entry;

/// Where `key` sits in SCAN order: a hash in `1..2^62` (0 is the cursor that starts and ends
/// a scan; the Redis door numbers stream keys' cursors from 2^62). Random per process, so
/// nobody can choose keys that pile onto one hash; the same for the process's life, so a
/// cursor stays good while the broker runs (as a Redis cursor does).
pub fn scan_hash(key: &[u8]) -> u64 {
    static STATE: OnceLock<std::collections::hash_map::RandomState> = OnceLock::new();
    let state = STATE.get_or_init(Default::default);
    (state.hash_one(key) >> 2).max(1)
}

/// The table's hash of a SCAN place: the place spread over all 64 bits (a bijection), as
/// the table reads its top bits for its tags and the place's top two are always 0.
fn table_hash(place: u64) -> u64 {
    place.wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// How many trees the SCAN order is cut into, by the hash's top bits.
const BUCKET_BITS: u32 = 12;
const BUCKETS: usize = 1 << BUCKET_BITS;

/// The tree holding `hash` (hashes are below 2^62).
fn bucket(hash: u64) -> usize {
    (hash >> (62 - BUCKET_BITS)) as usize
}

/// Every key and its entry, with the keys in SCAN order.
pub(super) struct Entries {
    /// Every key and its entry, found by [`table_hash`] of the key's SCAN place.
    table: HashTable<(Bytes, Entry)>,
    /// The SCAN place of every key in `table` (a place two keys share, once), in
    /// [`BUCKETS`] trees by [`bucket`].
    order: Vec<BTreeSet<u64>>,
}

impl Default for Entries {
    fn default() -> Entries {
        Entries {
            table: HashTable::new(),
            order: vec![BTreeSet::new(); BUCKETS],
        }
    }
}

/// The table's hash of `key` (what it was inserted with; rehashing recomputes it).
fn hash_of(slot: &(Bytes, Entry)) -> u64 {
    table_hash(scan_hash(&slot.0))
}

impl Entries {
    /// Every key of `pairs` (`count` of them; a key given twice keeps its last entry), the
    /// SCAN order built at once (sorted, then bulk-built: a start with a million keys spent
    /// ~40 % of its time inserting them into the order one by one). No other map is built on
    /// the way: a start's memory is the pairs read and this table.
    pub(super) fn from_pairs(
        pairs: impl IntoIterator<Item = (Bytes, Entry)>,
        count: usize,
    ) -> Entries {
        let mut table = HashTable::with_capacity(count);
        let mut buckets = vec![Vec::new(); BUCKETS];
        for (key, entry) in pairs {
            let place = scan_hash(&key);
            let hash = table_hash(place);
            if let Some((_, held)) = table.find_mut(hash, |(held, _)| *held == key) {
                *held = entry;
                continue;
            }
            buckets[bucket(place)].push(place);
            table.insert_unique(hash, (key, entry), hash_of);
        }
        let order = buckets
            .into_iter()
            .map(|mut places| {
                places.sort_unstable();
                places.dedup();
                BTreeSet::from_iter(places)
            })
            .collect();
        Entries { table, order }
    }

    /// Every key and its entry, in no order.
    pub(super) fn all(&self) -> impl Iterator<Item = (&Bytes, &Entry)> {
        self.table.iter().map(|(key, entry)| (key, entry))
    }

    pub(super) fn get(&self, key: &[u8]) -> Option<&Entry> {
        let hash = table_hash(scan_hash(key));
        self.table
            .find(hash, |(held, _)| held.as_ref() == key)
            .map(|(_, entry)| entry)
    }

    pub(super) fn get_mut(&mut self, key: &[u8]) -> Option<&mut Entry> {
        let hash = table_hash(scan_hash(key));
        self.table
            .find_mut(hash, |(held, _)| held.as_ref() == key)
            .map(|(_, entry)| entry)
    }

    /// Puts `entry` under `key`. A key already held keeps its place and its `Bytes`: the
    /// replaced entry comes back with the `key` given (so the caller need not have cloned it).
    pub(super) fn insert(&mut self, key: Bytes, entry: Entry) -> Option<(Bytes, Entry)> {
        let place = scan_hash(&key);
        let hash = table_hash(place);
        if let Some((_, held)) = self.table.find_mut(hash, |(held, _)| *held == key) {
            return Some((key, std::mem::replace(held, entry)));
        }
        self.table.insert_unique(hash, (key, entry), hash_of);
        self.order[bucket(place)].insert(place);
        None
    }

    pub(super) fn remove_entry(&mut self, key: &[u8]) -> Option<(Bytes, Entry)> {
        let place = scan_hash(key);
        let hash = table_hash(place);
        let found = self
            .table
            .find_entry(hash, |(held, _)| held.as_ref() == key);
        let (removed, _) = found.ok()?.remove();
        // The place stays while another key has it.
        if self.at(place).next().is_none() {
            self.order[bucket(place)].remove(&place);
        }
        Some(removed)
    }

    /// The keys at SCAN place `place` (one, or rarely more).
    fn at(&self, place: u64) -> impl Iterator<Item = &(Bytes, Entry)> {
        self.table
            .iter_hash(table_hash(place))
            .filter(move |(key, _)| scan_hash(key) == place)
    }

    pub(super) fn len(&self) -> usize {
        self.table.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Every key and its entry, in SCAN order.
    #[cfg(test)]
    pub(super) fn iter(&self) -> impl Iterator<Item = (&Bytes, &Entry)> {
        self.starting_at(0).map(|(_, key, entry)| (key, entry))
    }

    /// The keys from SCAN place `hash` on (`0`: from the first), with their places.
    pub(super) fn starting_at(&self, hash: u64) -> impl Iterator<Item = (u64, &Bytes, &Entry)> {
        let first = bucket(hash).min(BUCKETS - 1);
        self.order[first..]
            .iter()
            .enumerate()
            .flat_map(move |(index, tree)| {
                // Only the first tree starts at `hash`; the later ones hold larger hashes.
                let start = if index == 0 { hash } else { 0 };
                tree.range((Bound::Included(start), Bound::Unbounded))
            })
            .flat_map(move |place| {
                self.at(*place)
                    .map(move |(key, entry)| (*place, key, entry))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::KeyKind;

    #[test]
    fn lookups_find_what_was_inserted_and_the_walk_goes_by_place() {
        let mut entries = Entries::default();
        for i in 0..1000 {
            let key = Bytes::from(format!("key:{i}"));
            assert!(entries.insert(key, Entry::empty(KeyKind::String)).is_none());
        }
        assert!(entries.get(b"key:7").is_some());
        assert!(entries.get(b"key:1000").is_none());
        let places: Vec<u64> = entries.starting_at(0).map(|(place, _, _)| place).collect();
        assert_eq!(places.len(), 1000);
        assert!(places.windows(2).all(|pair| pair[0] <= pair[1]));
        assert!(places.iter().all(|place| (1..1 << 62).contains(place)));
        // From a place on: only the keys at or after it.
        let middle = places[500];
        assert_eq!(entries.starting_at(middle).count(), 500);
        assert!(entries.remove_entry(b"key:7").is_some());
        assert!(entries.get(b"key:7").is_none());
        assert_eq!(entries.len(), 999);
    }

    #[test]
    fn an_entry_is_as_small_as_a_string_key_needs() {
        // Every slot of the map is this big: 112 bytes before the collections were boxed
        // (a string's 32-byte value, its tag, a deadline and a version now).
        assert!(std::mem::size_of::<Entry>() <= 64);
    }

    #[test]
    fn a_bulk_start_indexes_what_inserts_one_by_one_would() {
        use crate::keys::entry::{Entry, Inner};
        let keys: Vec<(Bytes, Entry)> = (0..1000)
            .map(|i| {
                let deadline = (i % 3 == 0).then_some(1_000_000 + i);
                let value = Bytes::from(format!("value {i}"));
                (
                    Bytes::from(format!("key:{i}")),
                    Entry::string(value, deadline),
                )
            })
            .collect();
        let mut one_by_one = Inner::default();
        for (key, entry) in keys.clone() {
            one_by_one.insert(key, entry);
        }
        // A key given twice keeps its last entry, as a second insert would leave it.
        let mut twice = keys.clone();
        twice.push((
            Bytes::from("key:3"),
            Entry::string(Bytes::from("later"), None),
        ));
        one_by_one.insert(
            Bytes::from("key:3"),
            Entry::string(Bytes::from("later"), None),
        );
        let loaded = Inner::loaded(twice);
        let walk = |inner: &Inner| -> Vec<(u64, Bytes)> {
            inner
                .entries
                .starting_at(0)
                .map(|(place, key, _)| (place, key.clone()))
                .collect()
        };
        assert_eq!(walk(&loaded), walk(&one_by_one));
        assert_eq!(loaded.deadlines, one_by_one.deadlines);
        assert_eq!(loaded.bytes, one_by_one.bytes);
        assert_eq!(loaded.entries.len(), 1000);
        let later = loaded.entries.get(b"key:3").unwrap();
        assert_eq!(later.as_string().unwrap(), &Bytes::from("later"));
        assert_eq!(later.deadline, None);
    }
}
