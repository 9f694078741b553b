//! How keys sit in the state store, and reading them back at start (docs/storage.md, "The
//! keyspace"):
//!
//! - `keys`: hex of a string key → 8-byte big-endian deadline (0: none), then the value;
//! - `lists`: hex of a list key → 8-byte big-endian deadline (0: none): present exactly
//!   while the list has elements;
//! - `list_items`: hex of the list key, `.`, 16 hex digits of the element's position → the
//!   element. Positions grow from the list's head to its tail, so the rows of one list read
//!   back in order; a push at either end writes one row and a pop deletes one.
//!
//! A key changes kind (SET over a list) in one commit that deletes the old rows and writes
//! the new, so a start never finds a key of both kinds.

use std::collections::BTreeMap;

use bytes::Bytes;
use omnibus_storage::{StateStore, StateWrite, StorageError};

use super::entry::{Entry, List, Value};
use crate::error::{EngineError, Result};

/// The state-store table of string keys.
pub const KEYS_TABLE: &str = "keys";
/// The state-store table of list keys (their deadlines).
pub const LISTS_TABLE: &str = "lists";
/// The state-store table of list elements.
pub const LIST_ITEMS_TABLE: &str = "list_items";

/// What a start reads: every key held in the store, live or expired, and the deletes of
/// rows no key owns (none, unless the store was written by something else).
pub(super) struct Loaded {
    pub(super) keys: Vec<(Bytes, Entry)>,
    pub(super) orphans: Vec<StateWrite>,
}

pub(super) fn load(state: &StateStore) -> Result<Loaded> {
    let mut keys = Vec::new();
    for (stored_key, stored) in state.scan_prefix(KEYS_TABLE, "")? {
        let (Some(key), Some(entry)) = (decode_key(&stored_key), decode_string(&stored)) else {
            return Err(corrupt(&stored_key));
        };
        keys.push((key, entry));
    }
    let mut lists: BTreeMap<String, (Option<i64>, List)> = BTreeMap::new();
    for (stored_key, stored) in state.scan_prefix(LISTS_TABLE, "")? {
        let deadline = decode_deadline(&stored).ok_or_else(|| corrupt(&stored_key))?;
        lists.insert(stored_key, (deadline, List::new()));
    }
    let mut orphans = Vec::new();
    for (stored_key, element) in state.scan_prefix(LIST_ITEMS_TABLE, "")? {
        let (hex, position) = split_item_key(&stored_key).ok_or_else(|| corrupt(&stored_key))?;
        let Some((_, list)) = lists.get_mut(hex) else {
            orphans.push(StateWrite::Delete {
                table: LIST_ITEMS_TABLE,
                key: stored_key,
            });
            continue;
        };
        if list.items.is_empty() {
            list.head = position;
        } else if position != list.position(list.len()) {
            // Positions of one list are contiguous: a gap means rows were lost.
            return Err(corrupt(&stored_key));
        }
        list.bytes += element.len() as u64;
        list.items.push_back(Bytes::from(element));
    }
    for (hex, (deadline, list)) in lists {
        let key = decode_key(&hex).ok_or_else(|| corrupt(&hex))?;
        if list.items.is_empty() {
            orphans.push(StateWrite::Delete {
                table: LISTS_TABLE,
                key: hex,
            });
            continue;
        }
        keys.push((
            key,
            Entry {
                value: Value::List(list),
                deadline,
                version: 0,
            },
        ));
    }
    Ok(Loaded { keys, orphans })
}

fn corrupt(stored_key: &str) -> EngineError {
    EngineError::Storage(StorageError::Corrupt(format!("key {stored_key:?}")))
}

/// The writes that store `entry` whole under `key` (for a list: its deadline row and every
/// element).
pub(super) fn put_entry(key: &[u8], entry: &Entry) -> Vec<StateWrite> {
    match &entry.value {
        Value::String(value) => {
            let mut stored = Vec::with_capacity(8 + value.len());
            stored.extend_from_slice(&entry.deadline.unwrap_or(0).to_be_bytes());
            stored.extend_from_slice(value);
            vec![StateWrite::Put {
                table: KEYS_TABLE,
                key: encode_key(key),
                value: stored,
            }]
        }
        Value::List(list) => {
            let mut writes = vec![put_list_deadline(key, entry.deadline)];
            let hex = encode_key(key);
            for (i, element) in list.items.iter().enumerate() {
                writes.push(put_item(&hex, list.position(i), element));
            }
            writes
        }
    }
}

/// The writes that change only the deadline of `entry`.
pub(super) fn put_deadline(key: &[u8], entry: &Entry) -> Vec<StateWrite> {
    match entry.value {
        Value::String(_) => put_entry(key, entry),
        Value::List(_) => vec![put_list_deadline(key, entry.deadline)],
    }
}

/// The writes that delete `entry`, stored under `key`.
pub(super) fn delete_entry(key: &[u8], entry: &Entry) -> Vec<StateWrite> {
    match entry.value {
        Value::String(_) => vec![StateWrite::Delete {
            table: KEYS_TABLE,
            key: encode_key(key),
        }],
        Value::List(_) => {
            let hex = encode_key(key);
            vec![
                StateWrite::DeletePrefix {
                    table: LIST_ITEMS_TABLE,
                    prefix: format!("{hex}."),
                },
                StateWrite::Delete {
                    table: LISTS_TABLE,
                    key: hex,
                },
            ]
        }
    }
}

/// Replacing `old` (if any) with `new` under `key`: the old rows go if the kind changes.
pub(super) fn replace_entry(key: &[u8], old: Option<&Entry>, new: &Entry) -> Vec<StateWrite> {
    let mut writes = match old {
        Some(old) if old.kind() != new.kind() || old.kind() == super::KeyKind::List => {
            delete_entry(key, old)
        }
        _ => Vec::new(),
    };
    writes.extend(put_entry(key, new));
    writes
}

/// Deleting every key of every kind (FLUSHALL).
pub(super) fn delete_all() -> Vec<StateWrite> {
    [KEYS_TABLE, LISTS_TABLE, LIST_ITEMS_TABLE]
        .into_iter()
        .map(|table| StateWrite::DeletePrefix {
            table,
            prefix: String::new(),
        })
        .collect()
}

pub(super) fn put_list_deadline(key: &[u8], deadline: Option<i64>) -> StateWrite {
    StateWrite::Put {
        table: LISTS_TABLE,
        key: encode_key(key),
        value: deadline.unwrap_or(0).to_be_bytes().to_vec(),
    }
}

/// The row of one list element; `hex` is [`encode_key`] of the list's key.
pub(super) fn put_item(hex: &str, position: u64, element: &Bytes) -> StateWrite {
    StateWrite::Put {
        table: LIST_ITEMS_TABLE,
        key: item_key(hex, position),
        value: element.to_vec(),
    }
}

pub(super) fn delete_item(hex: &str, position: u64) -> StateWrite {
    StateWrite::Delete {
        table: LIST_ITEMS_TABLE,
        key: item_key(hex, position),
    }
}

fn item_key(hex: &str, position: u64) -> String {
    format!("{hex}.{position:016x}")
}

fn split_item_key(stored: &str) -> Option<(&str, u64)> {
    let (hex, position) = stored.rsplit_once('.')?;
    if position.len() != 16 {
        return None;
    }
    Some((hex, u64::from_str_radix(position, 16).ok()?))
}

pub(super) fn encode_key(key: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(key.len() * 2);
    for byte in key {
        text.push(HEX[usize::from(byte >> 4)] as char);
        text.push(HEX[usize::from(byte & 15)] as char);
    }
    text
}

fn decode_key(text: &str) -> Option<Bytes> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect::<Option<Vec<u8>>>()
        .map(Bytes::from)
}

fn decode_deadline(stored: &[u8]) -> Option<Option<i64>> {
    let deadline = i64::from_be_bytes(stored.get(..8)?.try_into().ok()?);
    Some((deadline != 0).then_some(deadline))
}

fn decode_string(stored: &[u8]) -> Option<Entry> {
    let deadline = decode_deadline(stored)?;
    Some(Entry::string(
        Bytes::copy_from_slice(&stored[8..]),
        deadline,
    ))
}
