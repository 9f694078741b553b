//! Committed offsets mirrored in memory, so `/metrics` can report every group's lag at each
//! scrape without scanning the state store.
//!
//! The state store stays the truth: the mirror is loaded from it once when the engine opens
//! and is changed only after a write to it succeeded (commit, offset delete, group delete,
//! stream delete). Its size is that of the `group_offsets` table: one entry per (group,
//! stream, partition) a client committed on.

use std::collections::BTreeMap;
use std::sync::RwLock;

use omnibus_storage::StateStore;

use crate::error::Result;
use crate::groups;

/// (group, stream, partition) → committed offset.
type Offsets = BTreeMap<(String, String, u32), u64>;

#[derive(Default)]
pub(crate) struct CommittedOffsets {
    offsets: RwLock<Offsets>,
}

/// One group's committed offset on one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CommittedEntry {
    pub group: String,
    pub stream: String,
    pub partition: u32,
    pub offset: u64,
}

impl CommittedOffsets {
    /// Reads every committed offset from the store (once, at open).
    pub fn load(state: &StateStore) -> Result<CommittedOffsets> {
        let mut offsets = Offsets::new();
        for (key, value) in state.scan_prefix(groups::TABLE, "")? {
            let Some((group, stream, partition)) = groups::parse_key(&key) else {
                continue;
            };
            // An unreadable value is reported by the API that reads it; the mirror skips it.
            if let Ok(stored) = serde_json::from_slice::<groups::StoredOffset>(&value) {
                offsets.insert(
                    (group.to_string(), stream.to_string(), partition),
                    stored.offset,
                );
            }
        }
        Ok(CommittedOffsets {
            offsets: RwLock::new(offsets),
        })
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Offsets> {
        self.offsets.write().unwrap_or_else(|p| p.into_inner())
    }

    pub fn set(&self, group: &str, stream: &str, partition: u32, offset: u64) {
        self.write()
            .insert((group.to_string(), stream.to_string(), partition), offset);
    }

    pub fn remove(&self, group: &str, stream: &str, partition: u32) {
        self.write()
            .remove(&(group.to_string(), stream.to_string(), partition));
    }

    pub fn remove_group(&self, group: &str) {
        self.write().retain(|(name, _, _), _| name != group);
    }

    pub fn remove_stream(&self, stream: &str) {
        self.write().retain(|(_, name, _), _| name != stream);
    }

    /// Every entry, ordered by group, stream and partition.
    pub fn snapshot(&self) -> Vec<CommittedEntry> {
        self.offsets
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|((group, stream, partition), offset)| CommittedEntry {
                group: group.clone(),
                stream: stream.clone(),
                partition: *partition,
                offset: *offset,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removals_take_out_only_what_they_name() {
        let mirror = CommittedOffsets::default();
        mirror.set("a", "orders", 0, 5);
        mirror.set("a", "orders", 1, 7);
        mirror.set("a", "payments", 0, 1);
        mirror.set("b", "orders", 0, 9);
        mirror.set("a", "orders", 0, 6);
        mirror.remove("a", "orders", 1);
        let offsets: Vec<(String, u64)> = mirror
            .snapshot()
            .into_iter()
            .map(|e| {
                (
                    format!("{}/{}/{}", e.group, e.stream, e.partition),
                    e.offset,
                )
            })
            .collect();
        assert_eq!(
            offsets,
            vec![
                ("a/orders/0".to_string(), 6),
                ("a/payments/0".to_string(), 1),
                ("b/orders/0".to_string(), 9)
            ]
        );
        mirror.remove_stream("orders");
        assert_eq!(mirror.snapshot().len(), 1);
        mirror.remove_group("a");
        assert!(mirror.snapshot().is_empty());
    }
}
