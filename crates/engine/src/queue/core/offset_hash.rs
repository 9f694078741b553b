//! Maps and sets keyed by offset (or by a key's hash), with a hasher made for them.
//!
//! The standard SipHash resists collision attacks on keys an attacker chooses; offsets are
//! assigned by the log, dense and increasing, so that protection buys nothing here and costs
//! a SipHash round on every lease, ack and settle (several lookups each). Multiplying by the
//! 64-bit golden ratio (Fibonacci hashing) is one instruction: an odd multiplier is a
//! bijection on every run of low bits, so dense offsets fill the table's buckets evenly, and
//! the high bits (hashbrown's control tags) are well mixed.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// 2^64 / φ, odd.
const MULTIPLIER: u64 = 0x9E37_79B9_7F4A_7C15;

#[derive(Debug, Default, Clone, Copy)]
pub struct OffsetHasher(u64);

impl Hasher for OffsetHasher {
    fn write(&mut self, bytes: &[u8]) {
        // Only integers are hashed in these maps; a byte key still hashes correctly.
        for &byte in bytes {
            self.write_u64(u64::from(byte));
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = (self.0.rotate_left(5) ^ value).wrapping_mul(MULTIPLIER);
    }

    fn write_u32(&mut self, value: u32) {
        self.write_u64(u64::from(value));
    }

    fn write_usize(&mut self, value: usize) {
        self.write_u64(value as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

pub type OffsetMap<V> = HashMap<u64, V, BuildHasherDefault<OffsetHasher>>;
pub type OffsetSet = HashSet<u64, BuildHasherDefault<OffsetHasher>>;

#[cfg(test)]
mod tests {
    use std::hash::BuildHasher;

    use super::*;

    #[test]
    fn dense_offsets_spread_over_every_bucket_of_a_power_of_two_table() {
        let build = BuildHasherDefault::<OffsetHasher>::default();
        let buckets = 1024u64;
        let mut used = vec![0u32; buckets as usize];
        for offset in 1_000_000..1_000_000 + buckets {
            used[(build.hash_one(offset) % buckets) as usize] += 1;
        }
        // One offset per bucket: the low bits of the product are a bijection.
        assert!(used.iter().all(|count| *count == 1), "{used:?}");
    }

    #[test]
    fn an_offset_map_behaves_as_a_map() {
        let mut map: OffsetMap<u32> = OffsetMap::default();
        for offset in 0..10_000u64 {
            map.insert(offset * 3, offset as u32);
        }
        assert_eq!(map.len(), 10_000);
        assert_eq!(map.get(&2_997), Some(&999));
        assert_eq!(map.get(&2_998), None);
        assert_eq!(map.remove(&0), Some(0));
        let set: OffsetSet = (0..100u64).collect();
        assert!(set.contains(&99) && !set.contains(&100));
    }
}
