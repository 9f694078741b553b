//! Hash fields with deadlines of their own (Redis 7.4's HEXPIRE family): a field whose
//! deadline has passed is gone, as a key is at its own.
//!
//! A hash keeps its fields' deadlines beside its fields ([`FieldDeadlines`], only while one
//! has a deadline, so a hash without any pays one empty pointer), and the keyspace indexes
//! each such hash once by its earliest field deadline (`Inner::field_deadlines`), so finding
//! what is due never scans hashes. A field due is deleted on the first command that touches
//! its hash ([`Keyspace::live`]) or by the sweep, whichever comes first, and listeners are
//! told ([`Expiration::Fields`]); when that takes the last field, the key goes too.
//!
//! Stored as a row per field with a deadline (`stored.rs`, `hash_field_deadlines`), so a
//! store written before this existed reads back unchanged.

use std::collections::{BTreeSet, HashMap};

use bytes::Bytes;
use omnibus_storage::StateWrite;

use super::entry::{field_size, Hash, Inner};
use super::{stored, Durable, ExpireCondition, Keyspace};
use crate::engine::now_ms;
use crate::error::Result;

/// What a field's deadline costs in memory beyond the field (its entry in the by-field
/// table and in the order), counted against the keyspace's byte bound.
pub(super) const FIELD_DEADLINE_OVERHEAD: u64 = 96;

/// A key deleted at its deadline, or fields of a hash deleted at theirs, for whoever
/// listens ([`Keyspace::expirations`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expiration {
    /// The key reached its deadline and is gone.
    Key(Bytes),
    /// `fields` fields of hash `key` reached their deadlines and are gone; `emptied`: they
    /// were its last, so the key is gone too.
    Fields {
        key: Bytes,
        fields: usize,
        emptied: bool,
    },
}

/// What HEXPIRE did to one field (Redis's reply codes: -2, 0, 1, 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldExpire {
    /// No such field (or no such key).
    Missing,
    /// The condition (NX, XX, GT, LT) said no.
    NotMet,
    /// The deadline is set.
    Set,
    /// The deadline had already passed: the field is deleted.
    Deleted,
}

/// What HPERSIST did to one field (Redis's reply codes: -2, -1, 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldPersist {
    Missing,
    /// The field has no deadline to clear.
    NoDeadline,
    Persisted,
}

/// A field's deadline, for HTTL and HEXPIRETIME.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldDeadline {
    Missing,
    Forever,
    /// Unix time in milliseconds.
    At(i64),
}

/// The deadlines of a hash's fields that have one: by field, and in deadline order.
#[derive(Debug, Clone, Default)]
pub(super) struct FieldDeadlines {
    by_field: HashMap<Bytes, i64>,
    order: BTreeSet<(i64, Bytes)>,
}

impl Hash {
    pub(super) fn field_deadline(&self, field: &[u8]) -> Option<i64> {
        self.deadlines.as_ref()?.by_field.get(field).copied()
    }

    /// The earliest deadline of any field, which indexes the hash for the sweep.
    pub(super) fn earliest_field_deadline(&self) -> Option<i64> {
        Some(self.deadlines.as_ref()?.order.first()?.0)
    }

    /// Gives `field` (present in the hash) `deadline`, replacing any it had.
    pub(super) fn set_field_deadline(&mut self, field: &Bytes, deadline: i64) {
        let deadlines = self.deadlines.get_or_insert_with(Box::default);
        match deadlines.by_field.insert(field.clone(), deadline) {
            Some(old) => {
                deadlines.order.remove(&(old, field.clone()));
            }
            None => self.bytes += FIELD_DEADLINE_OVERHEAD,
        }
        deadlines.order.insert((deadline, field.clone()));
    }

    /// Clears the deadline of `field`; returns the one it had.
    pub(super) fn clear_field_deadline(&mut self, field: &[u8]) -> Option<i64> {
        let deadlines = self.deadlines.as_mut()?;
        let (field, deadline) = deadlines.by_field.remove_entry(field)?;
        deadlines.order.remove(&(deadline, field));
        self.bytes -= FIELD_DEADLINE_OVERHEAD;
        if deadlines.by_field.is_empty() {
            self.deadlines = None;
        }
        Some(deadline)
    }

    /// Every field with its deadline, in deadline order.
    pub(super) fn field_deadlines(&self) -> impl Iterator<Item = (&Bytes, i64)> {
        self.deadlines
            .iter()
            .flat_map(|deadlines| deadlines.order.iter().map(|(at, field)| (field, *at)))
    }

    /// Deletes `field` and its deadline, writing both rows' deletes; returns whether it was
    /// there.
    pub(super) fn remove_field(
        &mut self,
        hex: &str,
        field: &[u8],
        writes: &mut Vec<StateWrite>,
    ) -> bool {
        if self.clear_field_deadline(field).is_some() {
            writes.push(stored::delete_field_deadline(hex, field));
        }
        // `shift_remove` keeps the other fields in their order.
        let Some((_, value)) = self.fields.shift_remove(field) else {
            return false;
        };
        writes.push(stored::delete_field(hex, field));
        self.bytes -= field_size(field, &value);
        true
    }

    /// The fields whose deadline is `now` or earlier.
    fn due_fields(&self, now: i64) -> Vec<Bytes> {
        self.field_deadlines()
            .take_while(|(_, at)| *at <= now)
            .map(|(field, _)| field.clone())
            .collect()
    }
}

impl Inner {
    /// Moves hash `key` in the index of hashes with field deadlines from its earliest
    /// deadline `before` to `after` (`None`: not indexed).
    pub(super) fn reindex_fields(&mut self, key: &[u8], before: Option<i64>, after: Option<i64>) {
        if before == after {
            return;
        }
        let key = Bytes::copy_from_slice(key);
        if let Some(before) = before {
            self.field_deadlines.remove(&(before, key.clone()));
        }
        if let Some(after) = after {
            self.field_deadlines.insert((after, key));
        }
    }

    /// Whether any hash has a field whose deadline is `now` or earlier.
    pub(super) fn fields_due(&self, now: i64) -> bool {
        self.field_deadlines
            .first()
            .is_some_and(|(due, _)| *due <= now)
    }
}

impl Keyspace {
    /// Gives `fields` of hash `key` the deadline `deadline` (Unix ms) where `condition`
    /// allows (HEXPIRE, HPEXPIRE, HEXPIREAT, HPEXPIREAT); a deadline already past deletes
    /// the field instead, and the key with its last field, as Redis does.
    pub fn hash_expire(
        &self,
        key: &Bytes,
        fields: &[Bytes],
        deadline: i64,
        condition: ExpireCondition,
    ) -> Result<Durable<Vec<FieldExpire>>> {
        let now = now_ms();
        self.each_field(
            key,
            fields,
            FieldExpire::Missing,
            |hash, hex, field, writes| {
                if !condition.allows(hash.field_deadline(field), Some(deadline)) {
                    FieldExpire::NotMet
                } else if deadline <= now {
                    hash.remove_field(hex, field, writes);
                    FieldExpire::Deleted
                } else {
                    hash.set_field_deadline(field, deadline);
                    writes.push(stored::put_field_deadline(hex, field, deadline));
                    FieldExpire::Set
                }
            },
        )
    }

    /// Clears the deadlines of `fields` of hash `key` (HPERSIST).
    pub fn hash_persist(
        &self,
        key: &Bytes,
        fields: &[Bytes],
    ) -> Result<Durable<Vec<FieldPersist>>> {
        self.each_field(
            key,
            fields,
            FieldPersist::Missing,
            |hash, hex, field, writes| {
                if hash.clear_field_deadline(field).is_some() {
                    writes.push(stored::delete_field_deadline(hex, field));
                    FieldPersist::Persisted
                } else {
                    FieldPersist::NoDeadline
                }
            },
        )
    }

    /// `change` applied to each of `fields` present in hash `key`, in one change; `missing`
    /// for a field (or the key) not there.
    fn each_field<T: Copy>(
        &self,
        key: &Bytes,
        fields: &[Bytes],
        missing: T,
        mut change: impl FnMut(&mut Hash, &str, &Bytes, &mut Vec<StateWrite>) -> T,
    ) -> Result<Durable<Vec<T>>> {
        let mut inner = self.lock();
        if self.hash(&mut inner, key, now_ms())?.is_none() {
            return Ok(Durable::ready(vec![missing; fields.len()]));
        }
        let mut writes = Vec::new();
        let edit = |hash: &mut Hash, hex: &str, writes: &mut Vec<StateWrite>| -> Vec<T> {
            let mut outcome = |field: &Bytes| match hash.fields.contains_key(field) {
                true => change(hash, hex, field, writes),
                false => missing,
            };
            fields.iter().map(&mut outcome).collect()
        };
        let outcomes = self.edit(&mut inner, key, &mut writes, edit);
        Ok(self.durable(outcomes, writes))
    }

    /// The deadlines of `fields` of hash `key` (HTTL, HPTTL, HEXPIRETIME, HPEXPIRETIME).
    pub fn hash_field_deadlines(&self, key: &[u8], fields: &[Bytes]) -> Result<Vec<FieldDeadline>> {
        let mut inner = self.lock();
        let Some(hash) = self.hash(&mut inner, key, now_ms())? else {
            return Ok(vec![FieldDeadline::Missing; fields.len()]);
        };
        Ok(fields
            .iter()
            .map(|field| match hash.fields.contains_key(field) {
                false => FieldDeadline::Missing,
                true => hash
                    .field_deadline(field)
                    .map_or(FieldDeadline::Forever, FieldDeadline::At),
            })
            .collect())
    }

    /// Deletes the fields of hash `key` whose deadline is `now` or earlier, and the key with
    /// its last field; tells the listeners. Returns how many fields went.
    pub(super) fn expire_fields(&self, inner: &mut Inner, key: &[u8], now: i64) -> usize {
        let due = match inner.collection_mut::<Hash>(key) {
            Some(hash) => hash.due_fields(now),
            None => return 0,
        };
        if due.is_empty() {
            return 0;
        }
        let mut writes = Vec::new();
        self.edit(inner, key, &mut writes, |hash: &mut Hash, hex, writes| {
            for field in &due {
                hash.remove_field(hex, field, writes);
            }
        });
        let emptied = inner.entries.get(key).is_none();
        self.writer.queue_detached(writes);
        self.expired_fields
            .fetch_add(due.len() as u64, std::sync::atomic::Ordering::Relaxed);
        self.tell_expired(|| Expiration::Fields {
            key: Bytes::copy_from_slice(key),
            fields: due.len(),
            emptied,
        });
        due.len()
    }

    /// Deletes due fields of up to `budget` fields' worth of hashes, earliest first (the
    /// sweep); returns how many fields went.
    pub(super) fn sweep_fields(&self, inner: &mut Inner, now: i64, budget: usize) -> usize {
        let mut swept = 0;
        while swept < budget {
            let Some((due, key)) = inner.field_deadlines.first().cloned() else {
                break;
            };
            if due > now {
                break;
            }
            let expired = self.expire_fields(inner, &key, now);
            if expired == 0 {
                // Indexed by a deadline its hash no longer has: mend the index.
                let earliest = inner
                    .collection_mut::<Hash>(&key)
                    .and_then(|hash| hash.earliest_field_deadline());
                inner.field_deadlines.remove(&(due, key.clone()));
                if let Some(earliest) = earliest {
                    inner.field_deadlines.insert((earliest, key));
                }
                swept += 1;
            }
            swept += expired;
        }
        swept
    }
}

#[cfg(test)]
#[path = "field_expiry_tests.rs"]
mod tests;
