//! Write-behind tables: tables whose rows are read back only when the store opens (the
//! keyspace's: its keys live in memory and the store is their copy on disk), so a commit's
//! writes to them go to the journal — durable before the commit is answered, as every other
//! write — and wait in memory for the next checkpoint instead of being applied to redb at
//! once. The checkpoint applies everything kept back since the one before in its own durable
//! transaction, after dropping the writes a later one overwrote: a key written a thousand
//! times between two checkpoints costs one B-tree update, and one made and deleted (a job's
//! hash, a lock) none.
//!
//! Why: applying each commit to redb (a write transaction, B-tree updates, page checksums)
//! was about a third of the broker's CPU in a BullMQ run, every script's key changes being one
//! small commit (docs/benchmarks.md, "Write-behind keyspace tables").
//!
//! What it keeps: the journal holds every write after the last checkpoint, write-behind or
//! not, so recovery (and a reopen after an I/O error) applies them from there as before. What
//! is kept back is bounded by the journal: a checkpoint comes at least every
//! `CHECKPOINT_INTERVAL` or `CHECKPOINT_BYTES_MAX` of journal (`journal.rs`, "How big a
//! checkpoint is"). A read of a write-behind table (at
//! open there is nothing kept back; anything else would be a new reader) first applies what
//! is kept back, so it never sees an older row than the store holds.

use std::sync::{Mutex, RwLock};

use redb::Durability;

use crate::error::Result;

use super::commit::{in_key_order, stage, without_overwritten};
use super::{state_error, Shared, StateWrite};

/// The write-behind tables and the writes kept back for them since the last checkpoint.
#[derive(Default)]
pub(super) struct WriteBehind {
    tables: RwLock<Vec<&'static str>>,
    /// In commit order. Taken under the journal's lock (journal, then this).
    kept: Mutex<Vec<StateWrite>>,
}

impl WriteBehind {
    pub(super) fn add_tables(&self, tables: &[&'static str]) {
        let mut held = self.tables.write().unwrap_or_else(|p| p.into_inner());
        for table in tables {
            if !held.contains(table) {
                held.push(table);
            }
        }
    }

    pub(super) fn holds(&self, table: &str) -> bool {
        self.tables
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&table)
    }

    /// The writes of a commit to apply to redb now, and those to keep back. Copies only when
    /// a commit mixes both kinds.
    pub(super) fn split<'w>(
        &self,
        writes: &'w [StateWrite],
    ) -> (std::borrow::Cow<'w, [StateWrite]>, Vec<StateWrite>) {
        let tables = self.tables.read().unwrap_or_else(|p| p.into_inner());
        if tables.is_empty() || !writes.iter().any(|w| tables.contains(&w.table())) {
            return (std::borrow::Cow::Borrowed(writes), Vec::new());
        }
        let (behind, now): (Vec<StateWrite>, Vec<StateWrite>) = writes
            .iter()
            .cloned()
            .partition(|write| tables.contains(&write.table()));
        (std::borrow::Cow::Owned(now), behind)
    }

    /// Keeps `writes` back for the next checkpoint (they are journaled).
    pub(super) fn keep(&self, writes: Vec<StateWrite>) {
        if !writes.is_empty() {
            self.lock().extend(writes);
        }
    }

    /// Everything kept back, coalesced and in key order, for a checkpoint (given back with
    /// [`WriteBehind::give_back`] if that fails).
    pub(super) fn take(&self) -> Vec<StateWrite> {
        in_key_order(without_overwritten(self.take_as_kept()))
    }

    /// Everything kept back, as kept: for a checkpoint on a thread of its own, which
    /// coalesces and sorts them there rather than under the journal's lock.
    pub(super) fn take_as_kept(&self) -> Vec<StateWrite> {
        std::mem::take(&mut *self.lock())
    }

    /// Puts back writes taken for a checkpoint that failed, before any kept since.
    pub(super) fn give_back(&self, mut taken: Vec<StateWrite>) {
        let mut kept = self.lock();
        taken.append(&mut kept);
        *kept = taken;
    }

    /// Forgets what is kept back: a recovery applied the journal, which holds all of it.
    pub(super) fn forget(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<StateWrite>> {
        self.kept.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Shared {
    /// Before a read of `table`: if it is a write-behind table with writes kept back, applies
    /// them to redb (without an fsync: the journal has them), so the read sees them.
    pub(super) fn settle_write_behind(&self, table: &'static str) -> Result<()> {
        if !self.write_behind.holds(table) {
            return Ok(());
        }
        let mut journal = self.journal.lock().unwrap_or_else(|p| p.into_inner());
        // A running checkpoint took writes this read must see: it ends (or gives them back)
        // first.
        self.settle_checkpoint_locked(&mut journal);
        let kept = self.write_behind.take();
        if kept.is_empty() {
            return Ok(());
        }
        let outcome = self.on_database(|database| {
            stage(database, &kept, Durability::None)?
                .commit()
                .map_err(state_error)
        });
        if outcome.is_err() {
            self.write_behind.give_back(kept);
        }
        drop(journal);
        outcome
    }
}

#[cfg(test)]
mod tests {
    use crate::io::FaultPlan;
    use crate::state::tests::copy_as_crashed;
    use crate::state::{StateStore, StateWrite};

    fn checkpoint(store: &StateStore) {
        let mut journal = store.shared.journal.lock().unwrap();
        store.shared.checkpoint_locked(&mut journal, false).unwrap();
    }

    fn kept(store: &StateStore) -> usize {
        store.shared.write_behind.lock().len()
    }

    #[test]
    fn kept_back_writes_are_durable_before_the_checkpoint_and_in_redb_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("live");
        std::fs::create_dir_all(&live).unwrap();
        let store = StateStore::open(&live.join("state.redb")).unwrap();
        store.write_behind(&["keys"]);
        store
            .write(&[
                StateWrite::Put {
                    table: "keys",
                    key: "a".into(),
                    value: b"1".to_vec(),
                },
                StateWrite::Put {
                    table: "other",
                    key: "x".into(),
                    value: b"now".to_vec(),
                },
            ])
            .unwrap();
        store.put("keys", "b", b"2").unwrap();
        store
            .write(&[StateWrite::Delete {
                table: "keys",
                key: "b".into(),
            }])
            .unwrap();
        assert_eq!(
            kept(&store),
            3,
            "the keys table's writes wait for the checkpoint"
        );

        // A crash before the checkpoint: the journal has them.
        let crashed = dir.path().join("before-checkpoint");
        copy_as_crashed(&live, &crashed);
        let reopened = StateStore::open(&crashed.join("state.redb")).unwrap();
        assert_eq!(reopened.get("keys", "a").unwrap(), Some(b"1".to_vec()));
        assert_eq!(reopened.get("keys", "b").unwrap(), None);
        assert_eq!(reopened.get("other", "x").unwrap(), Some(b"now".to_vec()));
        drop(reopened);

        // The checkpoint applies them to redb, durably, and the journal starts again: a crash
        // now finds them in redb with nothing to replay.
        checkpoint(&store);
        assert_eq!(kept(&store), 0);
        assert!(!store.shared.journal.lock().unwrap().has_records());
        let crashed = dir.path().join("after-checkpoint");
        copy_as_crashed(&live, &crashed);
        let reopened = StateStore::open(&crashed.join("state.redb")).unwrap();
        assert_eq!(reopened.get("keys", "a").unwrap(), Some(b"1".to_vec()));
        assert_eq!(reopened.get("keys", "b").unwrap(), None);
    }

    #[test]
    fn a_read_of_a_write_behind_table_sees_what_is_kept_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(&dir.path().join("state.redb")).unwrap();
        store.write_behind(&["keys"]);
        for key in ["k1", "k2", "k3"] {
            store.put("keys", key, key.as_bytes()).unwrap();
        }
        store
            .write(&[StateWrite::DeletePrefix {
                table: "keys",
                prefix: "k2".into(),
            }])
            .unwrap();
        let keys: Vec<String> = store
            .scan_prefix("keys", "k")
            .unwrap()
            .into_iter()
            .map(|(key, _)| key)
            .collect();
        assert_eq!(keys, ["k1", "k3"]);
        assert_eq!(kept(&store), 0, "the read applied them");
        assert_eq!(store.get("keys", "k3").unwrap(), Some(b"k3".to_vec()));
    }

    #[tokio::test]
    async fn a_failed_checkpoint_keeps_the_writes_it_held_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.redb");
        let plan = FaultPlan::new();
        let store = StateStore::open_with_faults(&path, plan.clone()).unwrap();
        store.write_behind(&["keys"]);
        store
            .commit(vec![StateWrite::Put {
                table: "keys",
                key: "held".into(),
                value: b"back".to_vec(),
            }])
            .await
            .unwrap();
        plan.fail_sync(1);
        let failed = {
            let mut journal = store.shared.journal.lock().unwrap();
            store.shared.checkpoint_locked(&mut journal, false)
        };
        assert!(failed.is_err());
        // The next read reopens the store (its replay applies the journal) and finds it.
        assert_eq!(store.get("keys", "held").unwrap(), Some(b"back".to_vec()));
        checkpoint(&store);
        drop(store);
        let reopened = StateStore::open(&path).unwrap();
        assert_eq!(
            reopened.get("keys", "held").unwrap(),
            Some(b"back".to_vec())
        );
    }
}
