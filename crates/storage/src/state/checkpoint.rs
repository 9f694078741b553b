//! Checkpoints and recovery of the state store's journal (see `journal.rs` for the format).
//!
//! A checkpoint is one durable redb commit that also records the sequence of the last journal
//! record it includes; after it the journal starts again at offset 0. Recovery, at open and
//! at a reopen after an I/O error, applies the journal's records after that sequence again.

use redb::{Database, Durability, ReadableDatabase};

use crate::error::Result;

use super::journal::{self, Journal};
use super::{definition, stage, state_error, StateWrite};

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

/// One durable redb commit holding every record journaled so far, with `kept_back` (the
/// write-behind tables' writes since the last checkpoint, `write_behind.rs`) applied in it;
/// the journal starts again. `kept_back` is as it was when this returns.
pub(super) fn checkpoint(
    database: &Database,
    journal: &mut Journal,
    kept_back: &mut Vec<StateWrite>,
) -> Result<()> {
    let last = journal.next_sequence() - 1;
    kept_back.push(StateWrite::Put {
        table: journal::CHECKPOINT_TABLE,
        key: journal::CHECKPOINT_KEY.to_string(),
        value: last.to_be_bytes().to_vec(),
    });
    let committed = stage(database, kept_back, Durability::Immediate)
        .and_then(|transaction| transaction.commit().map_err(state_error));
    kept_back.pop();
    committed?;
    journal.restart_after(last);
    Ok(())
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
    stage(database, &writes, Durability::None)?
        .commit()
        .map_err(state_error)?;
    journal.resume_after(&found);
    Ok(())
}
