//! What a key is made of, for the commands that report it (Redis's OBJECT ENCODING and
//! MEMORY USAGE), and a key picked at random (RANDOMKEY).

use bytes::Bytes;

use super::layout::LayoutLimits;
use super::{KeyKind, Keyspace};
use crate::engine::now_ms;

/// Bytes each key costs beyond its name and value: its slot in the keyspace's table (the
/// name's handle and the entry, 96 bytes, at the table's load), its place in the SCAN order
/// and the allocator's rounding. An estimate from the structures' sizes; docs/redis.md
/// ("OBJECT and MEMORY") says how it compares with measurements.
pub const KEY_OVERHEAD_BYTES: u64 = 160;

/// One key as OBJECT and MEMORY describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    pub kind: KeyKind,
    /// The key's name, value (each element with its overhead) and [`KEY_OVERHEAD_BYTES`].
    pub bytes: u64,
    /// Redis's name for the form redis-server would hold the value in: `int`, `embstr` or
    /// `raw` for a string, and for a collection the form `layout.rs` follows (`listpack`,
    /// `intset`, `quicklist`, `hashtable`, `skiplist`…).
    pub encoding: &'static str,
}

impl Keyspace {
    /// What `key` is made of, or `None` when it is missing or expired.
    pub fn object(&self, key: &[u8]) -> Option<Object> {
        let mut inner = self.lock();
        let entry = self.live(&mut inner, key, now_ms())?;
        Some(Object {
            kind: entry.kind(),
            bytes: key.len() as u64 + entry.size() + KEY_OVERHEAD_BYTES,
            encoding: super::layout::encoding(entry),
        })
    }

    /// The parameters that decide the form Redis would hold each collection in
    /// (`layout.rs`).
    pub fn layout_limits(&self) -> LayoutLimits {
        self.lock().layout_limits
    }

    /// Changes those parameters (Redis's CONFIG SET): each collection's form moves at its
    /// next write, as redis-server converts a value only when it writes it.
    pub fn update_layout_limits(&self, change: impl FnOnce(&mut LayoutLimits)) {
        change(&mut self.lock().layout_limits);
    }

    /// Bytes of keys and values held (what [`super::KEYSPACE_BYTES_MAX`] bounds).
    pub fn bytes(&self) -> u64 {
        self.lock().bytes
    }

    /// A live key picked at random with `seed`, or `None` when there is none: one of the
    /// [`RANDOM_WINDOW`] keys that follow a random place in SCAN order (all of them when
    /// there are no more), each as likely as the others, so that no key depends on the
    /// hashes' gaps alone.
    pub fn random_key(&self, seed: u64) -> Option<Bytes> {
        let mut window = Vec::with_capacity(RANDOM_WINDOW);
        if self.len() <= RANDOM_WINDOW {
            window = self.scan(0, None, None, RANDOM_WINDOW).1;
        } else {
            // A SCAN place is a hash below 2^62 (0 starts a scan).
            let place = (seed >> 2).max(1);
            let (next, keys) = self.scan(place, None, None, RANDOM_WINDOW);
            window.extend(keys);
            if next == 0 && window.len() < RANDOM_WINDOW {
                // Past the last place: on from the first (more keys than the window, so
                // these are others).
                let rest = RANDOM_WINDOW - window.len();
                window.extend(self.scan(0, None, None, rest).1);
            }
        }
        if window.is_empty() {
            return None;
        }
        let pick = (seed.rotate_left(29) % window.len() as u64) as usize;
        Some(window.swap_remove(pick))
    }
}

/// Keys RANDOMKEY picks among.
const RANDOM_WINDOW: usize = 64;

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::Bytes;
    use omnibus_storage::StateStore;

    use crate::keys::{KeyKind, Keyspace, SetOptions};

    #[tokio::test]
    async fn objects_report_kind_size_and_encoding_and_any_key_is_picked() {
        let dir = tempfile::tempdir().expect("temp dir");
        let state = Arc::new(StateStore::open(&dir.path().join("state.redb")).expect("open"));
        let keys = Keyspace::open(state).expect("open keyspace");
        assert_eq!(keys.random_key(7), None);
        for (key, value) in [("n", "12345"), ("s", "hello"), ("z", "007")] {
            keys.set(Bytes::from(key), Bytes::from(value), SetOptions::default())
                .unwrap()
                .wait()
                .await
                .unwrap();
        }
        let long = Bytes::from(vec![b'x'; 45]);
        keys.set(Bytes::from("long"), long, SetOptions::default())
            .unwrap()
            .wait()
            .await
            .unwrap();
        let object = keys.object(b"n").unwrap();
        assert_eq!((object.kind, object.encoding), (KeyKind::String, "int"));
        assert_eq!(object.bytes, 1 + 5 + super::KEY_OVERHEAD_BYTES);
        assert_eq!(keys.object(b"s").unwrap().encoding, "embstr");
        // Not the integer's own spelling: a string.
        assert_eq!(keys.object(b"z").unwrap().encoding, "embstr");
        assert_eq!(keys.object(b"long").unwrap().encoding, "raw");
        assert_eq!(keys.object(b"missing"), None);
        let mut seen = std::collections::HashSet::new();
        for seed in 0..200u64 {
            seen.insert(
                keys.random_key(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15))
                    .unwrap(),
            );
        }
        assert_eq!(seen.len(), 4, "every key is picked by some seed: {seen:?}");

        // More keys than the window: picks still spread over all of them.
        let pairs = (0..300).map(|n| (Bytes::from(format!("k{n}")), Bytes::from("v")));
        keys.set_many(pairs.collect())
            .unwrap()
            .wait()
            .await
            .unwrap();
        let mut seen = std::collections::HashSet::new();
        for seed in 0..6_000u64 {
            seen.insert(
                keys.random_key(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15))
                    .unwrap(),
            );
        }
        assert!(seen.len() > 290, "{} of 304 keys picked", seen.len());
    }
}
