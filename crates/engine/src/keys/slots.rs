//! The keyspace's map of keys, ordered by a hash of each key (then by its bytes) rather than
//! by the bytes alone, so that SCAN's cursor can be a place in that order: "go on from hash
//! h". Keys added or deleted during a scan then move nothing else, and every key present for
//! the whole scan is returned, as Redis promises (a cursor counting keys skipped some: a
//! client deleting what each page returned, the usual delete-by-pattern loop, removed only
//! half of them). Lookups by key borrow the map's `(hash, key)` slots as a trait object, so
//! no key is copied to look it up.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::collections::btree_map::{self, BTreeMap};
use std::hash::BuildHasher;
use std::ops::Bound;
use std::sync::OnceLock;

use bytes::Bytes;

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

/// A key with its hash, the map's own key.
struct Slot {
    hash: u64,
    key: Bytes,
}

/// What the map is ordered and searched by: a [`Slot`], or a `(hash, key)` borrowed for a
/// lookup.
trait SlotKey {
    fn parts(&self) -> (u64, &[u8]);
}

impl SlotKey for Slot {
    fn parts(&self) -> (u64, &[u8]) {
        (self.hash, &self.key)
    }
}

impl SlotKey for (u64, &[u8]) {
    fn parts(&self) -> (u64, &[u8]) {
        (self.0, self.1)
    }
}

impl<'a> Borrow<dyn SlotKey + 'a> for Slot {
    fn borrow(&self) -> &(dyn SlotKey + 'a) {
        self
    }
}

impl Ord for dyn SlotKey + '_ {
    fn cmp(&self, other: &Self) -> Ordering {
        self.parts().cmp(&other.parts())
    }
}

impl PartialOrd for dyn SlotKey + '_ {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for dyn SlotKey + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.parts() == other.parts()
    }
}

impl Eq for dyn SlotKey + '_ {}

// The slot's own order must be the borrowed one's.
impl Ord for Slot {
    fn cmp(&self, other: &Self) -> Ordering {
        self.parts().cmp(&other.parts())
    }
}

impl PartialOrd for Slot {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Slot {
    fn eq(&self, other: &Self) -> bool {
        self.parts() == other.parts()
    }
}

impl Eq for Slot {}

/// Every key and its entry, in SCAN order.
#[derive(Default)]
pub(super) struct Entries {
    map: BTreeMap<Slot, Entry>,
}

impl Entries {
    pub(super) fn get(&self, key: &[u8]) -> Option<&Entry> {
        let probe = (scan_hash(key), key);
        self.map.get(&probe as &dyn SlotKey)
    }

    pub(super) fn get_mut(&mut self, key: &[u8]) -> Option<&mut Entry> {
        let probe = (scan_hash(key), key);
        self.map.get_mut(&probe as &dyn SlotKey)
    }

    pub(super) fn insert(&mut self, key: Bytes, entry: Entry) -> Option<Entry> {
        let hash = scan_hash(&key);
        self.map.insert(Slot { hash, key }, entry)
    }

    pub(super) fn remove_entry(&mut self, key: &[u8]) -> Option<(Bytes, Entry)> {
        let probe = (scan_hash(key), key);
        self.map
            .remove_entry(&probe as &dyn SlotKey)
            .map(|(slot, entry)| (slot.key, entry))
    }

    pub(super) fn len(&self) -> usize {
        self.map.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Every key and its entry, in SCAN order.
    #[cfg(test)]
    pub(super) fn iter(&self) -> impl Iterator<Item = (&Bytes, &Entry)> {
        self.map.iter().map(|(slot, entry)| (&slot.key, entry))
    }

    /// The keys from SCAN place `hash` on (`0`: from the first), with their places.
    pub(super) fn starting_at(&self, hash: u64) -> impl Iterator<Item = (u64, &Bytes, &Entry)> {
        let start = (hash, &[][..]);
        let range: btree_map::Range<'_, Slot, Entry> = self
            .map
            .range::<dyn SlotKey, _>((Bound::Included(&start as &dyn SlotKey), Bound::Unbounded));
        range.map(|(slot, entry)| (slot.hash, &slot.key, entry))
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
}
