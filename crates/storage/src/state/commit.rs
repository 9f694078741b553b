//! The state store's transactions: the committer thread that folds the writes of every
//! caller waiting at the same time into one group, and how a group's writes become updates
//! of redb tables (`stage`).

use super::*;

/// The committer thread: takes everything queued (up to a bound), applies it in one
/// transaction, answers every caller. Ends when every sender is gone.
pub(super) fn run_committer(shared: Arc<Shared>, mut receiver: mpsc::Receiver<CommitRequest>) {
    while let Some(first) = receiver.blocking_recv() {
        let mut group = vec![first];
        while group.len() < COMMIT_GROUP_MAX {
            match receiver.try_recv() {
                Ok(request) => group.push(request),
                Err(_) => break,
            }
        }
        let writes = without_overwritten(
            group
                .iter_mut()
                .flat_map(|(writes, _)| std::mem::take(writes))
                .collect(),
        );
        let outcome = shared.apply(&writes);
        for (_, done) in group {
            let answer = match &outcome {
                Ok(()) => Ok(()),
                Err(error) => Err(error.duplicate()),
            };
            let _ = done.send(answer);
        }
        // After the answers: a checkpoint due starts on a thread of its own.
        shared.checkpoint_if_due();
    }
}

/// Drops every put or delete of a key that a later put or delete in the same transaction
/// replaces: the outcome is the same (a point write decides its key's final value whatever
/// came before it, ranges included), and redb charges a B-tree update for each. Acks at a
/// queue's ack floor each rewrite the floor key, so a group of acks carries many of them.
pub(super) fn without_overwritten(writes: Vec<StateWrite>) -> Vec<StateWrite> {
    // The last put or delete of each key decides it, whatever came before.
    let mut deciding = std::collections::HashMap::with_capacity(writes.len());
    for (index, write) in writes.iter().enumerate() {
        if let StateWrite::Put { table, key, .. } | StateWrite::Delete { table, key } = write {
            deciding.insert((*table, key.as_str()), index);
        }
    }
    let overwritten = |index: usize, table: &'static str, key: &str| {
        deciding
            .get(&(table, key))
            .is_some_and(|&last| last > index)
    };
    let mut keep = vec![true; writes.len()];
    // Of the put-max writes that survive, one to the same key as an earlier one (with no range
    // delete between them, which could have removed the key) is the same as one write of the
    // larger value: the earlier one goes and the later one carries the maximum.
    let mut largest: Vec<Option<Vec<u8>>> = vec![None; writes.len()];
    let mut open_max = std::collections::HashMap::new();
    for (index, write) in writes.iter().enumerate() {
        match write {
            StateWrite::Put { table, key, .. } | StateWrite::Delete { table, key } => {
                keep[index] = !overwritten(index, table, key);
            }
            StateWrite::PutMax { table, key, value } => {
                if overwritten(index, table, key) {
                    keep[index] = false;
                    continue;
                }
                let mut value = value.clone();
                if let Some(earlier) = open_max.insert((*table, key.as_str()), index) {
                    keep[earlier] = false;
                    if let Some(earlier_value) = largest[earlier].take() {
                        value = value.max(earlier_value);
                    }
                }
                largest[index] = Some(value);
            }
            StateWrite::DeletePrefix { .. } | StateWrite::DeleteRange { .. } => open_max.clear(),
        }
    }
    // Nothing dropped means nothing merged either.
    if keep.iter().all(|kept| *kept) {
        return writes;
    }
    writes
        .into_iter()
        .zip(keep)
        .zip(largest)
        .filter_map(|((write, kept), value)| match (write, value) {
            _ if !kept => None,
            (StateWrite::PutMax { table, key, .. }, Some(value)) => {
                Some(StateWrite::PutMax { table, key, value })
            }
            (write, _) => Some(write),
        })
        .collect()
}

/// `writes` with each run between range deletes sorted by table and key (stably: writes to
/// one key keep their order), which leaves the same outcome: within such a run, writes to
/// different keys do not touch each other. A B-tree takes keys in order page after page; a
/// checkpoint of many random keys spent most of its time on the pages each key led it to
/// (docs/benchmarks.md, "Checkpoints in key order").
pub(super) fn in_key_order(mut writes: Vec<StateWrite>) -> Vec<StateWrite> {
    fn point(write: &StateWrite) -> Option<(&'static str, &str)> {
        match write {
            StateWrite::Put { table, key, .. }
            | StateWrite::PutMax { table, key, .. }
            | StateWrite::Delete { table, key } => Some((table, key.as_str())),
            StateWrite::DeletePrefix { .. } | StateWrite::DeleteRange { .. } => None,
        }
    }
    for run in writes.split_mut(|write| point(write).is_none()) {
        run.sort_by(|a, b| point(a).cmp(&point(b)));
    }
    writes
}

fn delete_keys(
    table: &mut redb::Table<'_, &'static str, &'static [u8]>,
    start: &str,
    end: Option<&str>,
) -> Result<()> {
    let keys: Vec<String> = {
        let range = match end {
            Some(end) => table.range(start..end),
            None => table.range(start..),
        }
        .map_err(state_error)?;
        let mut keys = Vec::new();
        for entry in range {
            let (key, _) = entry.map_err(state_error)?;
            keys.push(key.value().to_string());
        }
        keys
    };
    for key in keys {
        table.remove(key.as_str()).map_err(state_error)?;
    }
    Ok(())
}

type OpenTable<'txn> = redb::Table<'txn, &'static str, &'static [u8]>;

/// A write transaction of `writes`, not yet committed.
pub(super) fn stage(
    db: &Database,
    writes: &[StateWrite],
    durability: Durability,
) -> Result<redb::WriteTransaction> {
    let mut transaction = db.begin_write().map_err(state_error)?;
    transaction
        .set_durability(durability)
        .map_err(|e| StorageError::State(e.to_string()))?;
    {
        // Each table is opened once per transaction: opening one costs about as much as a
        // write, and a group commit carries thousands of writes to a few tables.
        let mut tables: Vec<(&'static str, OpenTable<'_>)> = Vec::new();
        for write in writes {
            let name = write.table();
            let index = match tables.iter().position(|(open, _)| *open == name) {
                Some(index) => index,
                None => {
                    let table = transaction
                        .open_table(definition(name))
                        .map_err(state_error)?;
                    tables.push((name, table));
                    tables.len() - 1
                }
            };
            apply_one(&mut tables[index].1, write)?;
        }
    }
    Ok(transaction)
}

fn apply_one(table: &mut OpenTable<'_>, write: &StateWrite) -> Result<()> {
    match write {
        StateWrite::Put { key, value, .. } => {
            table
                .insert(key.as_str(), value.as_slice())
                .map_err(state_error)?;
        }
        StateWrite::PutMax { key, value, .. } => {
            let larger = match table.get(key.as_str()).map_err(state_error)? {
                Some(stored) => value.as_slice() > stored.value(),
                None => true,
            };
            if larger {
                table
                    .insert(key.as_str(), value.as_slice())
                    .map_err(state_error)?;
            }
        }
        StateWrite::Delete { key, .. } => {
            table.remove(key.as_str()).map_err(state_error)?;
        }
        StateWrite::DeletePrefix { prefix, .. } => {
            let end = prefix_end(prefix);
            delete_keys(table, prefix, end.as_deref())?;
        }
        StateWrite::DeleteRange { start, end, .. } => {
            delete_keys(table, start, Some(end))?;
        }
    }
    Ok(())
}
