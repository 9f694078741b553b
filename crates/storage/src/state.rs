//! The state store: small, transactional, durable key-value tables (stream metadata,
//! committed consumer offsets, and later consumer and job state) in one `redb` file.
//!
//! Payloads never live here; they stay in the partition logs. Tables are addressed by a
//! static name and hold UTF-8 keys and opaque byte values: the layer above chooses its own
//! serialization, so this layer stays free of engine types. Every write is one redb
//! transaction committed with fsync before it returns.
//!
//! redb does its own file I/O, so the state store does not go through [`crate::io::Io`];
//! its crash safety is redb's (copy-on-write B-trees with a checksummed commit slot).

use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use crate::error::{Result, StorageError};

pub struct StateStore {
    db: Database,
}

/// One write in a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateWrite {
    Put {
        table: &'static str,
        key: String,
        value: Vec<u8>,
    },
    Delete {
        table: &'static str,
        key: String,
    },
    /// Deletes every key starting with `prefix`.
    DeletePrefix {
        table: &'static str,
        prefix: String,
    },
}

fn state_error(error: impl std::fmt::Display) -> StorageError {
    StorageError::State(error.to_string())
}

fn definition(table: &'static str) -> TableDefinition<'static, &'static str, &'static [u8]> {
    TableDefinition::new(table)
}

/// The smallest string greater than every string starting with `prefix`, for range scans.
fn prefix_end(prefix: &str) -> Option<String> {
    let mut bytes = prefix.as_bytes().to_vec();
    while let Some(last) = bytes.pop() {
        if last < 0xff {
            bytes.push(last + 1);
            return String::from_utf8(bytes).ok();
        }
    }
    None
}

impl StateStore {
    pub fn open(path: &Path) -> Result<StateStore> {
        let db = Database::create(path).map_err(state_error)?;
        Ok(StateStore { db })
    }

    /// Applies all writes in one transaction, durable on return.
    pub fn write(&self, writes: &[StateWrite]) -> Result<()> {
        let transaction = self.db.begin_write().map_err(state_error)?;
        for write in writes {
            match write {
                StateWrite::Put { table, key, value } => {
                    let mut table = transaction
                        .open_table(definition(table))
                        .map_err(state_error)?;
                    table
                        .insert(key.as_str(), value.as_slice())
                        .map_err(state_error)?;
                }
                StateWrite::Delete { table, key } => {
                    let mut table = transaction
                        .open_table(definition(table))
                        .map_err(state_error)?;
                    table.remove(key.as_str()).map_err(state_error)?;
                }
                StateWrite::DeletePrefix { table, prefix } => {
                    let mut table = transaction
                        .open_table(definition(table))
                        .map_err(state_error)?;
                    let keys: Vec<String> = {
                        let range = match prefix_end(prefix) {
                            Some(end) => table.range(prefix.as_str()..end.as_str()),
                            None => table.range(prefix.as_str()..),
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
                }
            }
        }
        transaction.commit().map_err(state_error)
    }

    pub fn put(&self, table: &'static str, key: &str, value: &[u8]) -> Result<()> {
        self.write(&[StateWrite::Put {
            table,
            key: key.to_string(),
            value: value.to_vec(),
        }])
    }

    pub fn get(&self, table: &'static str, key: &str) -> Result<Option<Vec<u8>>> {
        let transaction = self.db.begin_read().map_err(state_error)?;
        let table = match transaction.open_table(definition(table)) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(error) => return Err(state_error(error)),
        };
        Ok(table
            .get(key)
            .map_err(state_error)?
            .map(|value| value.value().to_vec()))
    }

    /// Every entry whose key starts with `prefix`, in key order.
    pub fn scan_prefix(&self, table: &'static str, prefix: &str) -> Result<Vec<(String, Vec<u8>)>> {
        let transaction = self.db.begin_read().map_err(state_error)?;
        let table = match transaction.open_table(definition(table)) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(error) => return Err(state_error(error)),
        };
        let range = match prefix_end(prefix) {
            Some(end) => table.range(prefix..end.as_str()),
            None => table.range(prefix..),
        }
        .map_err(state_error)?;
        let mut entries = Vec::new();
        for entry in range {
            let (key, value) = entry.map_err(state_error)?;
            entries.push((key.value().to_string(), value.value().to_vec()));
        }
        Ok(entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_survive_reopen_and_prefix_scans_are_exact() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.redb");
        {
            let store = StateStore::open(&path).unwrap();
            store.put("t", "a/1", b"one").unwrap();
            store.put("t", "a/2", b"two").unwrap();
            store.put("t", "b/1", b"three").unwrap();
            store.put("t", "a", b"exact").unwrap();
        }
        let store = StateStore::open(&path).unwrap();
        assert_eq!(store.get("t", "a/2").unwrap().as_deref(), Some(&b"two"[..]));
        assert_eq!(store.get("missing", "x").unwrap(), None);
        let keys: Vec<String> = store
            .scan_prefix("t", "a/")
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(keys, vec!["a/1", "a/2"]);
        store
            .write(&[StateWrite::DeletePrefix {
                table: "t",
                prefix: "a/".into(),
            }])
            .unwrap();
        assert!(store.scan_prefix("t", "a/").unwrap().is_empty());
        assert_eq!(store.get("t", "a").unwrap().as_deref(), Some(&b"exact"[..]));
        assert_eq!(store.scan_prefix("empty", "").unwrap(), vec![]);
    }
}
