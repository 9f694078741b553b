//! Consumer modes: key-shared (one worker per key at a time) and exclusive (one active
//! worker). The shared mode needs nothing beyond `deliver` itself.

use super::offset_hash::OffsetSet;
use super::{ConsumerMode, QueueCore};

impl QueueCore {
    /// Key-shared mode: remembers the key hashes of offsets `first..` (None = no key).
    pub fn set_keys(&mut self, first: u64, hashes: &[Option<u64>]) {
        if self.policy.mode != ConsumerMode::KeyShared {
            return;
        }
        for (index, hash) in hashes.iter().enumerate() {
            let offset = first + index as u64;
            if let Some(hash) = hash {
                if offset >= self.floor && !self.finished_above.contains(offset) {
                    self.key_of.insert(offset, *hash);
                }
            }
        }
    }

    /// Exclusive mode: whether `worker` may receive now (and records that it asked).
    pub(super) fn claim_exclusive(&mut self, worker: &str, now_ms: i64) -> bool {
        if self.policy.mode != ConsumerMode::Exclusive {
            return true;
        }
        if let Some((active, seen)) = &self.active_worker {
            let still_active = self.unacked_by_worker.contains_key(active.as_str())
                || now_ms - seen < self.policy.lease_ms as i64;
            if active != worker && still_active {
                return false;
            }
        }
        match &mut self.active_worker {
            // The same worker asking again: no new copy of its name.
            Some((active, seen)) if active.as_str() == worker => *seen = now_ms,
            other => *other = Some((worker.to_string(), now_ms)),
        }
        true
    }

    /// Key-shared mode: up to `count` ready offsets of `priority` whose key is free or
    /// already held by `worker`, in offset order. Looks at a bounded number of candidates.
    pub(super) fn pick_key_shared(
        &mut self,
        priority: usize,
        worker: &str,
        count: usize,
    ) -> Vec<u64> {
        let scan_limit = count.saturating_mul(16).saturating_add(256);
        let mut chosen = Vec::new();
        let mut claimed = OffsetSet::default();
        for offset in self.ready[priority].iter_after(None).take(scan_limit) {
            if chosen.len() >= count {
                break;
            }
            match self.key_of.get(&offset) {
                None => chosen.push(offset),
                Some(hash) => match self.key_owner.get(hash) {
                    Some((owner, _)) if owner != worker => {}
                    _ => {
                        claimed.insert(*hash);
                        chosen.push(offset);
                    }
                },
            }
        }
        for offset in &chosen {
            self.ready[priority].remove(*offset);
            if let Some(hash) = self.key_of.get(offset).copied() {
                let entry = self
                    .key_owner
                    .entry(hash)
                    .or_insert((worker.to_string(), 0));
                entry.1 += 1;
            }
        }
        chosen
    }
}
