//! How keys sit in the state store, and reading them back at start (docs/storage.md, "The
//! keyspace"):
//!
//! - `keys`: hex of a string key → 8-byte big-endian deadline (0: none), then the value;
//! - `lists`: hex of a list key → 8-byte big-endian deadline (0: none): present exactly
//!   while the list has elements;
//! - `list_items`: hex of the list key, `.`, 16 hex digits of the element's position → the
//!   element. Positions grow from the list's head to its tail, so the rows of one list read
//!   back in order; a push at either end writes one row and a pop deletes one;
//! - `hashes`: hex of a hash key → 8-byte big-endian deadline (0: none), present exactly
//!   while the hash has fields;
//! - `hash_fields`: hex of the hash key, `.`, hex of the field → the field's place in
//!   insertion order (8 bytes big-endian), then the value. One row per field: HSET of a
//!   field writes one row, HDEL deletes one.
//! - `hash_field_deadlines`: hex of the hash key, `.`, hex of the field → the field's
//!   deadline, Unix ms as 8 bytes big-endian; present exactly while the field has one
//!   (HEXPIRE writes it, HPERSIST and HSET delete it). A store without the table (written
//!   before field deadlines existed) reads back as hashes without them.
//!
//! - `sets`: hex of a set key → 8-byte big-endian deadline (0: none), present exactly while
//!   the set has members;
//! - `set_members`: hex of the set key, `.`, hex of the member → nothing (an empty value);
//! - `zsets`: hex of a sorted-set key → 8-byte big-endian deadline (0: none), present
//!   exactly while it has members;
//! - `zset_members`: hex of the sorted-set key, `.`, hex of the member → the score, an IEEE
//!   754 double as 8 bytes big-endian.
//!
//! A key changes kind (SET over a list) in one commit that deletes the old rows and writes
//! the new, so a start never finds a key of both kinds.

use std::collections::BTreeMap;

use bytes::Bytes;
use omnibus_storage::{StateStore, StateWrite, StorageError};

use super::entry::{field_size, member_size, Entry, Hash, List, Set, SortedSet, Value};
use crate::error::{EngineError, Result};

/// The state-store table of string keys.
pub const KEYS_TABLE: &str = "keys";
/// The state-store table of list keys (their deadlines).
pub const LISTS_TABLE: &str = "lists";
/// The state-store table of list elements.
pub const LIST_ITEMS_TABLE: &str = "list_items";
/// The state-store table of hash keys (their deadlines).
pub const HASHES_TABLE: &str = "hashes";
/// The state-store table of hash fields.
pub const HASH_FIELDS_TABLE: &str = "hash_fields";
/// The state-store table of hash fields' deadlines (`field_expiry.rs`).
pub const HASH_FIELD_DEADLINES_TABLE: &str = "hash_field_deadlines";
/// The state-store table of set keys (their deadlines).
pub const SETS_TABLE: &str = "sets";
/// The state-store table of set members.
pub const SET_MEMBERS_TABLE: &str = "set_members";
/// The state-store table of sorted-set keys (their deadlines).
pub const ZSETS_TABLE: &str = "zsets";
/// The state-store table of sorted-set members and their scores.
pub const ZSET_MEMBERS_TABLE: &str = "zset_members";

/// Every table the keyspace keeps its keys in.
pub(super) const TABLES: [&str; 10] = [
    KEYS_TABLE,
    LISTS_TABLE,
    LIST_ITEMS_TABLE,
    HASHES_TABLE,
    HASH_FIELDS_TABLE,
    HASH_FIELD_DEADLINES_TABLE,
    SETS_TABLE,
    SET_MEMBERS_TABLE,
    ZSETS_TABLE,
    ZSET_MEMBERS_TABLE,
];

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
        list.count_in(&element);
        list.items.push_back(Bytes::from(element));
    }
    keys.extend(load_collections(state, &mut orphans)?);
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
                value: Value::List(Box::new(list)),
                deadline,
                version: 0,
            },
        ));
    }
    Ok(Loaded { keys, orphans })
}

/// The collections of one kind read back: each key's deadline and its parts (part name,
/// stored value), in stored order.
type Parts = BTreeMap<String, (Option<i64>, Vec<Part>)>;

/// A part's name and stored value.
type Part = (Bytes, Vec<u8>);

/// A collection read back: its key, deadline and parts.
type Collection = (Bytes, Option<i64>, Vec<Part>);

/// Every collection of one kind (`meta` rows and their `parts` rows, `hex.parthex`); part rows
/// no key owns are to be deleted, and so are key rows with no parts.
fn load_parts(
    state: &StateStore,
    meta: &'static str,
    parts: &'static str,
    orphans: &mut Vec<StateWrite>,
) -> Result<Vec<Collection>> {
    let mut found: Parts = BTreeMap::new();
    for (stored_key, stored) in state.scan_prefix(meta, "")? {
        let deadline = decode_deadline(&stored).ok_or_else(|| corrupt(&stored_key))?;
        found.insert(stored_key, (deadline, Vec::new()));
    }
    for (stored_key, stored) in state.scan_prefix(parts, "")? {
        let (hex, part) = stored_key
            .split_once('.')
            .and_then(|(hex, part)| Some((hex, decode_key(part)?)))
            .ok_or_else(|| corrupt(&stored_key))?;
        let Some((_, list)) = found.get_mut(hex) else {
            orphans.push(StateWrite::Delete {
                table: parts,
                key: stored_key,
            });
            continue;
        };
        list.push((part, stored));
    }
    let mut loaded = Vec::with_capacity(found.len());
    for (hex, (deadline, list)) in found {
        let key = decode_key(&hex).ok_or_else(|| corrupt(&hex))?;
        if list.is_empty() {
            orphans.push(StateWrite::Delete {
                table: meta,
                key: hex,
            });
            continue;
        }
        loaded.push((key, deadline, list));
    }
    Ok(loaded)
}

/// Every hash, set and sorted set in the store.
fn load_collections(
    state: &StateStore,
    orphans: &mut Vec<StateWrite>,
) -> Result<Vec<(Bytes, Entry)>> {
    let mut loaded = Vec::new();
    let entry = |value, deadline| Entry {
        value,
        deadline,
        version: 0,
    };
    let mut field_deadlines = load_field_deadlines(state)?;
    for (key, deadline, fields) in load_parts(state, HASHES_TABLE, HASH_FIELDS_TABLE, orphans)? {
        let mut placed = Vec::with_capacity(fields.len());
        for (field, stored) in fields {
            let place = stored
                .get(..8)
                .map(|place| u64::from_be_bytes(place.try_into().expect("8 bytes")))
                .ok_or_else(|| corrupt(&encode_key(&key)))?;
            placed.push((place, field, Bytes::copy_from_slice(&stored[8..])));
        }
        placed.sort_unstable_by_key(|(place, _, _)| *place);
        let mut hash = Hash::default();
        for (place, field, value) in placed {
            hash.bytes += field_size(&field, &value);
            hash.longest = hash.longest.max(field.len()).max(value.len());
            hash.next = place + 1;
            hash.fields.insert(field, (place, value));
        }
        let hex = encode_key(&key);
        for (field, at) in field_deadlines.remove(&hex).unwrap_or_default() {
            if hash.fields.contains_key(&field) {
                hash.set_field_deadline(&field, at);
            } else {
                orphans.push(delete_field_deadline(&hex, &field));
            }
        }
        loaded.push((key, entry(Value::Hash(Box::new(hash)), deadline)));
    }
    // Deadlines of fields of no hash.
    for (hex, fields) in field_deadlines {
        orphans.extend(
            fields
                .iter()
                .map(|(field, _)| delete_field_deadline(&hex, field)),
        );
    }
    for (key, deadline, members) in load_parts(state, SETS_TABLE, SET_MEMBERS_TABLE, orphans)? {
        let mut set = Set::default();
        for (member, _) in members {
            set.bytes += member_size(&member);
            set.longest = set.longest.max(member.len());
            set.members.insert(member);
        }
        loaded.push((key, entry(Value::Set(Box::new(set)), deadline)));
    }
    for (key, deadline, members) in load_parts(state, ZSETS_TABLE, ZSET_MEMBERS_TABLE, orphans)? {
        let mut set = SortedSet::default();
        for (member, stored) in members {
            let score = <[u8; 8]>::try_from(stored.as_slice())
                .map(f64::from_be_bytes)
                .ok()
                .filter(|score| !score.is_nan())
                .ok_or_else(|| corrupt(&encode_key(&key)))?;
            set.put(member, score);
        }
        loaded.push((key, entry(Value::SortedSet(Box::new(set)), deadline)));
    }
    Ok(loaded)
}

/// Every field deadline in the store, by the hex of its hash's key.
fn load_field_deadlines(state: &StateStore) -> Result<BTreeMap<String, Vec<(Bytes, i64)>>> {
    let mut found: BTreeMap<String, Vec<(Bytes, i64)>> = BTreeMap::new();
    for (stored_key, stored) in state.scan_prefix(HASH_FIELD_DEADLINES_TABLE, "")? {
        let parsed = stored_key.split_once('.').and_then(|(hex, field)| {
            let at = i64::from_be_bytes(stored.as_slice().try_into().ok()?);
            Some((hex.to_string(), decode_key(field)?, at))
        });
        let (hex, field, at) = parsed.ok_or_else(|| corrupt(&stored_key))?;
        found.entry(hex).or_default().push((field, at));
    }
    Ok(found)
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
        Value::Hash(hash) => {
            let mut writes = vec![put_meta(HASHES_TABLE, key, entry.deadline)];
            let hex = encode_key(key);
            for (field, (place, value)) in &hash.fields {
                writes.push(put_field(&hex, field, *place, value));
            }
            for (field, at) in hash.field_deadlines() {
                writes.push(put_field_deadline(&hex, field, at));
            }
            writes
        }
        Value::Set(set) => {
            let mut writes = vec![put_meta(SETS_TABLE, key, entry.deadline)];
            let hex = encode_key(key);
            for member in &set.members {
                writes.push(put_member(&hex, member));
            }
            writes
        }
        Value::SortedSet(set) => {
            let mut writes = vec![put_meta(ZSETS_TABLE, key, entry.deadline)];
            let hex = encode_key(key);
            for (member, score) in &set.scores {
                writes.push(put_scored(&hex, member, *score));
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
        Value::Hash(_) => vec![put_meta(HASHES_TABLE, key, entry.deadline)],
        Value::Set(_) => vec![put_meta(SETS_TABLE, key, entry.deadline)],
        Value::SortedSet(_) => vec![put_meta(ZSETS_TABLE, key, entry.deadline)],
    }
}

/// The writes that delete `entry`, stored under `key`.
pub(super) fn delete_entry(key: &[u8], entry: &Entry) -> Vec<StateWrite> {
    match entry.value {
        Value::String(_) => vec![StateWrite::Delete {
            table: KEYS_TABLE,
            key: encode_key(key),
        }],
        Value::List(_) => delete_collection(key, LISTS_TABLE, LIST_ITEMS_TABLE),
        Value::Hash(ref hash) => {
            let mut writes = delete_collection(key, HASHES_TABLE, HASH_FIELDS_TABLE);
            // Rows of deadlines exist only while a field in memory has one.
            if hash.deadlines.is_some() {
                writes.push(StateWrite::DeletePrefix {
                    table: HASH_FIELD_DEADLINES_TABLE,
                    prefix: format!("{}.", encode_key(key)),
                });
            }
            writes
        }
        Value::Set(_) => delete_collection(key, SETS_TABLE, SET_MEMBERS_TABLE),
        Value::SortedSet(_) => delete_collection(key, ZSETS_TABLE, ZSET_MEMBERS_TABLE),
    }
}

/// A list's or hash's rows: its parts (`hex.…` in `parts`) and its row in `meta`.
fn delete_collection(key: &[u8], meta: &'static str, parts: &'static str) -> Vec<StateWrite> {
    let hex = encode_key(key);
    vec![
        StateWrite::DeletePrefix {
            table: parts,
            prefix: format!("{hex}."),
        },
        StateWrite::Delete {
            table: meta,
            key: hex,
        },
    ]
}

/// Replacing `old` (if any) with `new` under `key`: the old rows go, unless a string
/// replaces a string (its one row is overwritten).
pub(super) fn replace_entry(key: &[u8], old: Option<&Entry>, new: &Entry) -> Vec<StateWrite> {
    use super::KeyKind::String;
    let mut writes = match old {
        Some(old) if old.kind() != String || new.kind() != String => delete_entry(key, old),
        _ => Vec::new(),
    };
    writes.extend(put_entry(key, new));
    writes
}

/// Deleting every key of every kind (FLUSHALL).
pub(super) fn delete_all() -> Vec<StateWrite> {
    TABLES
        .into_iter()
        .map(|table| StateWrite::DeletePrefix {
            table,
            prefix: String::new(),
        })
        .collect()
}

pub(super) fn put_list_deadline(key: &[u8], deadline: Option<i64>) -> StateWrite {
    put_meta(LISTS_TABLE, key, deadline)
}

/// The row that says a list or hash exists, with its deadline.
pub(super) fn put_meta(table: &'static str, key: &[u8], deadline: Option<i64>) -> StateWrite {
    StateWrite::Put {
        table,
        key: encode_key(key),
        value: deadline.unwrap_or(0).to_be_bytes().to_vec(),
    }
}

/// The row of one hash field; `hex` is [`encode_key`] of the hash's key.
pub(super) fn put_field(hex: &str, field: &[u8], place: u64, value: &[u8]) -> StateWrite {
    let mut stored = Vec::with_capacity(8 + value.len());
    stored.extend_from_slice(&place.to_be_bytes());
    stored.extend_from_slice(value);
    StateWrite::Put {
        table: HASH_FIELDS_TABLE,
        key: part_key(hex, field),
        value: stored,
    }
}

pub(super) fn delete_field(hex: &str, field: &[u8]) -> StateWrite {
    StateWrite::Delete {
        table: HASH_FIELDS_TABLE,
        key: part_key(hex, field),
    }
}

/// The row of one hash field's deadline; `hex` is [`encode_key`] of the hash's key.
pub(super) fn put_field_deadline(hex: &str, field: &[u8], at: i64) -> StateWrite {
    StateWrite::Put {
        table: HASH_FIELD_DEADLINES_TABLE,
        key: part_key(hex, field),
        value: at.to_be_bytes().to_vec(),
    }
}

pub(super) fn delete_field_deadline(hex: &str, field: &[u8]) -> StateWrite {
    StateWrite::Delete {
        table: HASH_FIELD_DEADLINES_TABLE,
        key: part_key(hex, field),
    }
}

/// The row of one set member; `hex` is [`encode_key`] of the set's key.
pub(super) fn put_member(hex: &str, member: &[u8]) -> StateWrite {
    StateWrite::Put {
        table: SET_MEMBERS_TABLE,
        key: part_key(hex, member),
        value: Vec::new(),
    }
}

pub(super) fn delete_member(hex: &str, member: &[u8]) -> StateWrite {
    StateWrite::Delete {
        table: SET_MEMBERS_TABLE,
        key: part_key(hex, member),
    }
}

/// The row of one sorted-set member with its score.
pub(super) fn put_scored(hex: &str, member: &[u8], score: f64) -> StateWrite {
    StateWrite::Put {
        table: ZSET_MEMBERS_TABLE,
        key: part_key(hex, member),
        value: score.to_be_bytes().to_vec(),
    }
}

pub(super) fn delete_scored(hex: &str, member: &[u8]) -> StateWrite {
    StateWrite::Delete {
        table: ZSET_MEMBERS_TABLE,
        key: part_key(hex, member),
    }
}

/// A part's row key: the collection's hex key, `.`, the part's hex.
fn part_key(hex: &str, part: &[u8]) -> String {
    format!("{hex}.{}", encode_key(part))
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

pub(super) fn decode_key(text: &str) -> Option<Bytes> {
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
