//! Checkpoints and recovery of the state store's journal (see `journal.rs` for the format).
//!
//! A checkpoint is one durable redb commit that also records the sequence of the last journal
//! record it includes: of a sealed side, on a thread of its own while records go on to the
//! other side, or of everything, under the journal's lock, after which the journal starts
//! again at offset 0. Recovery, at open and at a reopen after an I/O error, applies the
//! records after that sequence again, from both sides.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use redb::{Database, Durability, ReadableDatabase};

use crate::error::{Result, StorageError};

use super::commit::{in_key_order, without_overwritten};
use super::journal::{self, Journal};
use super::{definition, stage, state_error, Shared, StateWrite};

/// The sequence of the last journal record the database's durable state includes.
fn checkpoint_of(database: &Database) -> Result<u64> {
    let transaction = database.begin_read().map_err(state_error)?;
    let table = match transaction.open_table(definition(journal::CHECKPOINT_TABLE)) {
        Ok(table) => table,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(0),
        Err(error) => return Err(state_error(error)),
    };
    let value = table.get(journal::CHECKPOINT_KEY).map_err(state_error)?;
    Ok(value
        .and_then(|value| value.value().try_into().ok())
        .map_or(0, u64::from_be_bytes))
}

/// One durable redb commit holding every record journaled so far, on both sides, with
/// `kept_back` (the write-behind tables' writes since the last checkpoint,
/// `write_behind.rs`) applied in it; the journal starts again. `kept_back` is as it was when
/// this returns.
pub(super) fn checkpoint(
    database: &Database,
    journal: &mut Journal,
    kept_back: &mut Vec<StateWrite>,
) -> Result<()> {
    let last = journal.next_sequence() - 1;
    commit(database, last, kept_back)?;
    journal.restart_after(last);
    Ok(())
}

/// The durable redb commit of a checkpoint through record `last`: `kept_back` applied, and
/// `last` noted. Every record up to `last` is in redb already (committed without an fsync)
/// but for the write-behind tables' writes, which are `kept_back`. Needs no journal: the
/// checkpoint of a sealed side runs it on a thread of its own.
pub(super) fn commit(
    database: &Database,
    last: u64,
    kept_back: &mut Vec<StateWrite>,
) -> Result<()> {
    kept_back.push(StateWrite::Put {
        table: journal::CHECKPOINT_TABLE,
        key: journal::CHECKPOINT_KEY.to_string(),
        value: last.to_be_bytes().to_vec(),
    });
    let committed = stage(database, kept_back, Durability::Immediate)
        .and_then(|transaction| transaction.commit().map_err(state_error));
    kept_back.pop();
    committed
}

/// Applies the journal's records after the database's checkpoint again, in one commit
/// without an fsync (redb keeps it in its write buffer, so this works on a full disk too),
/// and has the journal continue after them: they stay durable there until the next
/// checkpoint. Applying a record twice leaves what applying it once does.
pub(super) fn recover(database: &Database, journal: &mut Journal) -> Result<()> {
    let checkpoint = checkpoint_of(database)?;
    let found = journal.read(checkpoint)?;
    if found.records.is_empty() {
        journal.restart_after(found.last_sequence.max(checkpoint));
        return Ok(());
    }
    tracing::info!(
        records = found.records.len(),
        from = checkpoint + 1,
        to = found.last_sequence,
        "state store: applying journal records after the last checkpoint"
    );
    let writes: Vec<StateWrite> = found
        .records
        .iter()
        .flat_map(|(_, writes)| writes.iter().cloned())
        .collect();
    // One transaction, so the same outcome with fewer B-tree updates, in key order.
    let writes = in_key_order(without_overwritten(writes));
    stage(database, &writes, Durability::None)?
        .commit()
        .map_err(state_error)?;
    journal.resume_after(&found);
    Ok(())
}

impl Shared {
    /// After a commit has been answered: starts the checkpoint of the journal's active side
    /// if one is due, on a thread of its own, while records go on to the other side
    /// (`journal.rs`, "Two files"). If the other side still waits for a checkpoint (the last
    /// one failed), the checkpoint covers both, here, under the journal's lock. The writes
    /// are durable in the journal whatever happens to a checkpoint: a failed one keeps its
    /// side sealed, or marks the database for a reopen, which applies the journal again.
    pub(super) fn checkpoint_if_due(self: &Arc<Self>) {
        let mut journal = self.journal.lock().unwrap_or_else(|p| p.into_inner());
        if self.checkpointing_finished() {
            self.settle_checkpoint_locked(&mut journal);
        }
        let running = self
            .checkpointing
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some();
        if running
            || !journal.checkpoint_due()
            || self.failed.load(Ordering::Acquire)
            // Retried by the writes themselves, every `CHECKPOINT_RETRY` (`apply_once`).
            || journal.checkpoint_refused_at().is_some()
        {
            return;
        }
        // The side taking records from now on is sized to the database as it is now.
        if let Ok(metadata) = std::fs::metadata(&self.path) {
            journal.size_checkpoints(metadata.len());
        }
        let Some(last) = journal.seal() else {
            if let Err(error) = self.checkpoint_locked(&mut journal, false) {
                tracing::warn!("state store checkpoint failed: {error}");
            }
            return;
        };
        // Coalesced on the checkpoint's thread: with many keys that is milliseconds the
        // committer would otherwise spend under the journal's lock.
        let taken = self.write_behind.take_as_kept();
        let shared = Arc::clone(self);
        let spawned = std::thread::Builder::new()
            .name("state-checkpoint".into())
            .spawn(move || {
                let mut taken =
                    super::commit::in_key_order(super::commit::without_overwritten(taken));
                let outcome = shared.on_database(|database| commit(database, last, &mut taken));
                outcome.map_err(|error| (error, taken))
            });
        match spawned {
            Ok(handle) => {
                *self.checkpointing.lock().unwrap_or_else(|p| p.into_inner()) = Some(handle);
            }
            Err(error) => {
                // The writes it took are in the journal: a reopen applies them again.
                self.record_failure(&StorageError::io("starting a checkpoint thread", error));
            }
        }
    }

    fn checkpointing_finished(&self) -> bool {
        self.checkpointing
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .is_some_and(|handle| handle.is_finished())
    }

    /// Waits for the running checkpoint, if any, and takes its outcome in: its side is free,
    /// or (it failed) the writes it took are kept again and the side stays sealed, so the
    /// next checkpoint covers both sides. Called with the journal held, before what needs no
    /// checkpoint running: a checkpoint of everything, a reopen, a read of a write-behind
    /// table, the close.
    pub(super) fn settle_checkpoint_locked(&self, journal: &mut Journal) {
        let handle = self
            .checkpointing
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let Some(handle) = handle else {
            return;
        };
        match handle.join() {
            Ok(Ok(())) => journal.sealed_checkpointed(),
            Ok(Err((error, taken))) => {
                self.write_behind.give_back(taken);
                if error.is_disk_full() {
                    journal.checkpoint_refused();
                }
                tracing::warn!("state store checkpoint failed: {error}");
            }
            Err(_) => {
                // What it took is lost from memory but not from the journal: a reopen
                // applies the journal again (and forgets what is kept back).
                self.record_failure(&StorageError::State(
                    "the state store's checkpoint thread panicked".into(),
                ));
            }
        }
    }
}
