//! Reads: point lookups and ordered scans of a table, each in one read transaction. A read
//! of a write-behind table first applies the writes kept back for it (`write_behind.rs`).

use redb::{Database, ReadOnlyTable, ReadableDatabase};

use super::{definition, prefix_end, state_error, StateStore};
use crate::error::Result;

/// Runs `read` on `table` in a read transaction of its own; `missing()` when the table was
/// never written.
fn read_table<T>(
    db: &Database,
    table: &'static str,
    missing: impl FnOnce() -> T,
    read: impl FnOnce(ReadOnlyTable<&'static str, &'static [u8]>) -> Result<T>,
) -> Result<T> {
    let transaction = db.begin_read().map_err(state_error)?;
    match transaction.open_table(definition(table)) {
        Ok(table) => read(table),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(missing()),
        Err(error) => Err(state_error(error)),
    }
}

impl StateStore {
    /// Values of several keys, read in one transaction.
    pub fn get_many(&self, table: &'static str, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>> {
        self.shared.run(table, |db| {
            read_table(
                db,
                table,
                || vec![None; keys.len()],
                |table| {
                    keys.iter()
                        .map(|key| {
                            Ok(table
                                .get(key.as_str())
                                .map_err(state_error)?
                                .map(|value| value.value().to_vec()))
                        })
                        .collect()
                },
            )
        })
    }

    pub fn get(&self, table: &'static str, key: &str) -> Result<Option<Vec<u8>>> {
        self.shared.run(table, |db| {
            read_table(
                db,
                table,
                || None,
                |table| {
                    Ok(table
                        .get(key)
                        .map_err(state_error)?
                        .map(|value| value.value().to_vec()))
                },
            )
        })
    }

    /// Up to `limit` entries with keys in `[start, end)`, in key order.
    pub fn scan_range(
        &self,
        table: &'static str,
        start: &str,
        end: &str,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>> {
        self.shared.run(table, |db| {
            read_table(db, table, Vec::new, |table| {
                let mut entries = Vec::new();
                for entry in table.range(start..end).map_err(state_error)? {
                    if entries.len() >= limit {
                        break;
                    }
                    let (key, value) = entry.map_err(state_error)?;
                    entries.push((key.value().to_string(), value.value().to_vec()));
                }
                Ok(entries)
            })
        })
    }

    /// The key `back` places before the last one in `[start, end)` (`back` 0: the last key),
    /// found by walking the keys backwards without copying any value: what is over a
    /// "keep the newest N" bound is everything before the key N − 1 places from the end,
    /// and finding it costs N steps however long the range is.
    pub fn key_from_end(
        &self,
        table: &'static str,
        start: &str,
        end: &str,
        back: usize,
    ) -> Result<Option<String>> {
        self.shared.run(table, |db| {
            read_table(
                db,
                table,
                || None,
                |table| {
                    let range = table.range(start..end).map_err(state_error)?;
                    match range.rev().nth(back) {
                        Some(entry) => Ok(Some(entry.map_err(state_error)?.0.value().to_string())),
                        None => Ok(None),
                    }
                },
            )
        })
    }

    /// Up to `limit` keys in `[start, end)`, in key order, without their values.
    pub fn scan_keys(
        &self,
        table: &'static str,
        start: &str,
        end: &str,
        limit: usize,
    ) -> Result<Vec<String>> {
        self.shared.run(table, |db| {
            read_table(db, table, Vec::new, |table| {
                let mut keys = Vec::new();
                for entry in table.range(start..end).map_err(state_error)? {
                    if keys.len() >= limit {
                        break;
                    }
                    let (key, _) = entry.map_err(state_error)?;
                    keys.push(key.value().to_string());
                }
                Ok(keys)
            })
        })
    }

    /// Every entry whose key starts with `prefix`, in key order.
    pub fn scan_prefix(&self, table: &'static str, prefix: &str) -> Result<Vec<(String, Vec<u8>)>> {
        self.shared.run(table, |db| {
            read_table(db, table, Vec::new, |table| {
                let end = prefix_end(prefix);
                let range = match &end {
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
            })
        })
    }
}
