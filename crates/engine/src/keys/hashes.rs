//! Hash keys: fields and values under one key, with Redis's semantics (HSET, HGET, HDEL,
//! HINCRBY, HSCAN…). A hash exists while it has fields: the change that takes its last one
//! deletes the key. Fields keep the order they were first set in, as Redis's small hashes
//! do, so HGETALL answers what redis-server would. Each change is made in memory under the
//! keyspace lock and queued to the writer; a field set or deleted writes one row.

use bytes::Bytes;
use omnibus_storage::StateWrite;

use super::entry::{field_size, owned, wrong_kind, Entry, Hash, Inner, KeyKind, Value};
use super::{glob_match, stored, Durable, FloatIncrement, Increment, Keyspace};
use crate::engine::now_ms;
use crate::error::Result;

impl Keyspace {
    /// Sets each field to its value (HSET); with `only_new`, a field already there is left
    /// as it is (HSETNX). Returns how many fields were new.
    pub fn hash_set(
        &self,
        key: &Bytes,
        pairs: Vec<(Bytes, Bytes)>,
        only_new: bool,
    ) -> Result<Durable<usize>> {
        let mut inner = self.lock();
        let (new, writes) = self.hash_set_locked(&mut inner, key, pairs, only_new, false)?;
        Ok(self.durable(new, writes))
    }

    /// [`Keyspace::hash_set`] under the lock: how many fields were new, and the writes. A
    /// field set again loses its deadline, as Redis's HSET clears it, unless `keep_deadline`
    /// (HINCRBY keeps it).
    fn hash_set_locked(
        &self,
        inner: &mut Inner,
        key: &Bytes,
        pairs: Vec<(Bytes, Bytes)>,
        only_new: bool,
        keep_deadline: bool,
    ) -> Result<(usize, Vec<StateWrite>)> {
        let old = match self.live(inner, key, now_ms()) {
            None => None,
            Some(entry) if entry.kind() == KeyKind::Hash => Some(entry.size()),
            Some(_) => return Err(wrong_kind()),
        };
        // An upper bound of the size after: every pair added whole.
        let added: u64 = pairs
            .iter()
            .map(|(field, value)| field_size(field, value))
            .sum();
        inner.check_room(key, old, old.unwrap_or(0) + added)?;
        let mut writes = Vec::with_capacity(pairs.len() + 1);
        if old.is_none() {
            writes.push(stored::put_meta(stored::HASHES_TABLE, key, None));
            inner.insert(key.clone(), Entry::empty(KeyKind::Hash));
        }
        let new = self.edit(inner, key, &mut writes, |hash: &mut Hash, hex, writes| {
            let mut new = 0;
            for (field, value) in pairs {
                let value = owned(value);
                match hash.fields.get_mut(&field) {
                    Some(_) if only_new => continue,
                    Some((place, current)) => {
                        writes.push(stored::put_field(hex, &field, *place, &value));
                        hash.bytes = hash.bytes - current.len() as u64 + value.len() as u64;
                        hash.longest = hash.longest.max(value.len());
                        *current = value;
                        if !keep_deadline && hash.clear_field_deadline(&field).is_some() {
                            writes.push(stored::delete_field_deadline(hex, &field));
                        }
                    }
                    None => {
                        let place = hash.next;
                        hash.next += 1;
                        writes.push(stored::put_field(hex, &field, place, &value));
                        hash.bytes += field_size(&field, &value);
                        hash.longest = hash.longest.max(field.len()).max(value.len());
                        hash.fields.insert(owned(field), (place, value));
                        new += 1;
                    }
                }
            }
            new
        });
        Ok((new, writes))
    }

    /// The values of `fields` (HGET, HMGET); `None` for a field or key that is missing.
    pub fn hash_get(&self, key: &[u8], fields: &[Bytes]) -> Result<Vec<Option<Bytes>>> {
        let mut inner = self.lock();
        let Some(hash) = self.hash(&mut inner, key, now_ms())? else {
            return Ok(vec![None; fields.len()]);
        };
        Ok(fields
            .iter()
            .map(|field| hash.fields.get(field).map(|(_, value)| value.clone()))
            .collect())
    }

    /// Every field and value, in the hash's order (HGETALL, HKEYS, HVALS).
    pub fn hash_all(&self, key: &[u8]) -> Result<Vec<(Bytes, Bytes)>> {
        let mut inner = self.lock();
        let Some(hash) = self.hash(&mut inner, key, now_ms())? else {
            return Ok(Vec::new());
        };
        Ok(hash
            .fields
            .iter()
            .map(|(field, (_, value))| (field.clone(), value.clone()))
            .collect())
    }

    /// How many fields the hash has (0 when missing).
    pub fn hash_len(&self, key: &[u8]) -> Result<usize> {
        let mut inner = self.lock();
        Ok(self
            .hash(&mut inner, key, now_ms())?
            .map_or(0, |hash| hash.fields.len()))
    }

    /// Deletes `fields` (HDEL); returns how many were there.
    pub fn hash_delete(&self, key: &Bytes, fields: &[Bytes]) -> Result<Durable<usize>> {
        let mut inner = self.lock();
        if self.hash(&mut inner, key, now_ms())?.is_none() {
            return Ok(Durable::ready(0));
        }
        let mut writes = Vec::new();
        let removed = self.edit(
            &mut inner,
            key,
            &mut writes,
            |hash: &mut Hash, hex, writes| {
                fields
                    .iter()
                    .filter(|field| hash.remove_field(hex, field, writes))
                    .count()
            },
        );
        Ok(self.durable(removed, writes))
    }

    /// Adds `delta` to the integer in `field` (missing: 0) (HINCRBY).
    pub fn hash_increment(
        &self,
        key: &Bytes,
        field: &Bytes,
        delta: i64,
    ) -> Result<Durable<Increment>> {
        let mut inner = self.lock();
        let current = self
            .hash(&mut inner, key, now_ms())?
            .and_then(|hash| hash.fields.get(field))
            .map(|(_, value)| super::parse_integer(value));
        let current = match current {
            None => 0,
            Some(Some(current)) => current,
            Some(None) => return Ok(Durable::ready(Increment::NotAnInteger)),
        };
        let Some(value) = current.checked_add(delta) else {
            return Ok(Durable::ready(Increment::Overflow));
        };
        let text = Bytes::from(value.to_string());
        let (_, writes) =
            self.hash_set_locked(&mut inner, key, vec![(field.clone(), text)], false, true)?;
        Ok(Durable::new(
            Increment::Value(value),
            self.writer.queue(writes),
        ))
    }

    /// Adds `delta` to the number in `field` (missing: 0) (HINCRBYFLOAT).
    pub fn hash_increment_float(
        &self,
        key: &Bytes,
        field: &Bytes,
        delta: f64,
    ) -> Result<Durable<FloatIncrement>> {
        let mut inner = self.lock();
        let current = self
            .hash(&mut inner, key, now_ms())?
            .and_then(|hash| hash.fields.get(field))
            .map(|(_, value)| super::parse_float(value));
        let text = match super::float_sum(current.unwrap_or(Some(0.0)), delta) {
            Ok(text) => text,
            Err(refused) => return Ok(Durable::ready(refused)),
        };
        let (_, writes) = self.hash_set_locked(
            &mut inner,
            key,
            vec![(field.clone(), text.clone())],
            false,
            true,
        )?;
        Ok(self.durable(FloatIncrement::Value(text), writes))
    }

    /// Up to `count` fields matching `pattern` in the hash's order from the field placed at
    /// `cursor` on (HSCAN), and the next cursor (0: done): every field present for a whole
    /// scan is returned, whatever is deleted meanwhile. A hash Redis would hold compact
    /// (`layout.rs`) is answered whole at once, as Redis answers it.
    pub fn hash_scan(
        &self,
        key: &[u8],
        cursor: u64,
        pattern: Option<&[u8]>,
        count: usize,
    ) -> Result<(u64, Vec<(Bytes, Bytes)>)> {
        let mut inner = self.lock();
        let Some(hash) = self.hash(&mut inner, key, now_ms())? else {
            return Ok((0, Vec::new()));
        };
        // The cursor is a field's place (its insertion number, which fields keep in order
        // and never change): fields deleted during a scan move no other field past it.
        let (start, count) = if hash.layout.is_compact() {
            (0, usize::MAX)
        } else {
            let start = hash
                .fields
                .as_slice()
                .partition_point(|_, (place, _)| *place < cursor);
            (start, count.max(1))
        };
        let end = start.saturating_add(count).min(hash.fields.len());
        let found = hash
            .fields
            .get_range(start.min(end)..end)
            .into_iter()
            .flat_map(|fields| fields.iter())
            .filter(|(field, _)| pattern.is_none_or(|pattern| glob_match(pattern, field)))
            .map(|(field, (_, value))| (field.clone(), value.clone()))
            .collect();
        let next = hash
            .fields
            .get_index(end)
            .map_or(0, |(_, (place, _))| *place);
        Ok((next, found))
    }

    /// Fields chosen at random with their values (HRANDFIELD), as
    /// [`Keyspace::set_random`] picks members: a positive `count` gives up to that many
    /// distinct fields, a negative one exactly `-count`, possibly repeated.
    pub fn hash_random(&self, key: &[u8], count: i64) -> Result<Vec<(Bytes, Bytes)>> {
        let mut inner = self.lock();
        let Some(hash) = self.hash(&mut inner, key, now_ms())? else {
            return Ok(Vec::new());
        };
        Ok(super::sets::pick(hash.fields.len(), count)
            .into_iter()
            .filter_map(|at| hash.fields.get_index(at))
            .map(|(field, (_, value))| (field.clone(), value.clone()))
            .collect())
    }

    /// The hash under `key`, `None` when missing; another kind is refused.
    pub(super) fn hash<'a>(
        &self,
        inner: &'a mut Inner,
        key: &[u8],
        now: i64,
    ) -> Result<Option<&'a Hash>> {
        match self.live(inner, key, now) {
            None => Ok(None),
            Some(Entry {
                value: Value::Hash(hash),
                ..
            }) => Ok(Some(hash)),
            Some(_) => Err(wrong_kind()),
        }
    }
}
