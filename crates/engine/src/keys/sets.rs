//! Set keys: unordered collections of distinct members, with Redis's semantics (SADD, SREM,
//! SPOP, SMOVE, SINTER/SUNION/SDIFF and their STORE forms, SSCAN…). A set exists while it has
//! members: the change that takes its last one deletes the key. Each change is made in
//! memory under the keyspace lock and queued to the writer; a member added or removed writes
//! one row.

use bytes::Bytes;
use omnibus_storage::StateWrite;
use rand::seq::index::sample;
use rand::Rng;

use super::entry::{member_size, owned, wrong_kind, Entry, Inner, KeyKind, Set, Value};
use super::{glob_match, stored, writer, Durable, Keyspace};
use crate::engine::now_ms;
use crate::error::Result;

/// How SINTER, SUNION and SDIFF combine their sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetOperation {
    Intersection,
    Union,
    /// The first set without the members of the others.
    Difference,
}

impl Keyspace {
    /// Adds `members` to set `key` (created if missing); returns how many were new (SADD).
    pub fn set_add(&self, key: &Bytes, members: Vec<Bytes>) -> Result<Durable<usize>> {
        let mut inner = self.lock();
        let (added, writes) = self.set_add_locked(&mut inner, key, members)?;
        Ok(self.durable(added, writes))
    }

    fn set_add_locked(
        &self,
        inner: &mut Inner,
        key: &Bytes,
        members: Vec<Bytes>,
    ) -> Result<(usize, Vec<StateWrite>)> {
        let old = match self.live(inner, key, now_ms()) {
            None => None,
            Some(entry) if entry.kind() == KeyKind::Set => Some(entry.size()),
            Some(_) => return Err(wrong_kind()),
        };
        let added: u64 = members.iter().map(|member| member_size(member)).sum();
        inner.check_room(key, old, old.unwrap_or(0) + added)?;
        let mut writes = Vec::with_capacity(members.len() + 1);
        if old.is_none() {
            writes.push(stored::put_meta(stored::SETS_TABLE, key, None));
            inner.insert(key.clone(), Entry::empty(KeyKind::Set));
        }
        let added = self.edit(inner, key, &mut writes, |set: &mut Set, hex, writes| {
            let mut added = 0;
            for member in members {
                if set.members.contains(&member) {
                    continue;
                }
                writes.push(stored::put_member(hex, &member));
                set.bytes += member_size(&member);
                set.longest = set.longest.max(member.len());
                set.members.insert(owned(member));
                added += 1;
            }
            added
        });
        Ok((added, writes))
    }

    /// Removes `members` from set `key`; returns how many were there (SREM).
    pub fn set_remove(&self, key: &Bytes, members: &[Bytes]) -> Result<Durable<usize>> {
        let mut inner = self.lock();
        if self.set_of(&mut inner, key, now_ms())?.is_none() {
            return Ok(Durable::ready(0));
        }
        let mut writes = Vec::new();
        let removed = self.edit(
            &mut inner,
            key,
            &mut writes,
            |set: &mut Set, hex, writes| {
                let mut removed = 0;
                for member in members {
                    if set.members.swap_remove(member) {
                        writes.push(stored::delete_member(hex, member));
                        set.bytes -= member_size(member);
                        removed += 1;
                    }
                }
                removed
            },
        );
        Ok(self.durable(removed, writes))
    }

    /// Every member of set `key` (SMEMBERS); empty when missing.
    pub fn set_members(&self, key: &[u8]) -> Result<Vec<Bytes>> {
        let mut inner = self.lock();
        Ok(self
            .set_of(&mut inner, key, now_ms())?
            .map(|set| set.members.iter().cloned().collect())
            .unwrap_or_default())
    }

    /// Whether each of `members` is in set `key` (SISMEMBER, SMISMEMBER).
    pub fn set_contains(&self, key: &[u8], members: &[Bytes]) -> Result<Vec<bool>> {
        let mut inner = self.lock();
        let set = self.set_of(&mut inner, key, now_ms())?;
        Ok(members
            .iter()
            .map(|member| set.is_some_and(|set| set.members.contains(member)))
            .collect())
    }

    /// How many members set `key` has (SCARD); 0 when missing.
    pub fn set_len(&self, key: &[u8]) -> Result<usize> {
        let mut inner = self.lock();
        Ok(self
            .set_of(&mut inner, key, now_ms())?
            .map_or(0, |set| set.members.len()))
    }

    /// Removes and returns up to `count` members chosen at random (SPOP).
    pub fn set_pop(&self, key: &Bytes, count: usize) -> Result<Durable<Vec<Bytes>>> {
        let mut inner = self.lock();
        if self.set_of(&mut inner, key, now_ms())?.is_none() || count == 0 {
            return Ok(Durable::ready(Vec::new()));
        }
        let mut writes = Vec::new();
        let popped = self.edit(
            &mut inner,
            key,
            &mut writes,
            |set: &mut Set, hex, writes| {
                let mut random = rand::rng();
                let mut popped = Vec::with_capacity(count.min(set.members.len()));
                while popped.len() < count && !set.members.is_empty() {
                    let at = random.random_range(0..set.members.len());
                    let member = set
                        .members
                        .swap_remove_index(at)
                        .expect("an index in range");
                    writes.push(stored::delete_member(hex, &member));
                    set.bytes -= member_size(&member);
                    popped.push(member);
                }
                popped
            },
        );
        Ok(Durable::new(popped, self.writer.queue(writes)))
    }

    /// Members chosen at random without removing them (SRANDMEMBER): with a positive
    /// `count`, up to that many distinct members; with a negative one, exactly `-count`
    /// members, possibly repeated.
    pub fn set_random(&self, key: &[u8], count: i64) -> Result<Vec<Bytes>> {
        let mut inner = self.lock();
        let Some(set) = self.set_of(&mut inner, key, now_ms())? else {
            return Ok(Vec::new());
        };
        Ok(pick(set.members.len(), count)
            .into_iter()
            .map(|at| set.members[at].clone())
            .collect())
    }

    /// Moves `member` from set `source` to set `destination` (SMOVE); false when `source`
    /// does not hold it. Both keys must be sets (or missing), even when nothing moves.
    pub fn set_move(
        &self,
        source: &Bytes,
        destination: &Bytes,
        member: &Bytes,
    ) -> Result<Durable<bool>> {
        let mut inner = self.lock();
        let now = now_ms();
        // As Redis: a missing source answers false before the destination's kind is looked at.
        let Some(set) = self.set_of(&mut inner, source, now)? else {
            return Ok(Durable::ready(false));
        };
        let holds = set.members.contains(member);
        self.set_of(&mut inner, destination, now)?;
        if !holds {
            return Ok(Durable::ready(false));
        }
        if source == destination {
            return Ok(Durable::ready(true));
        }
        let mut writes = Vec::new();
        self.edit(
            &mut inner,
            source,
            &mut writes,
            |set: &mut Set, hex, writes| {
                set.members.swap_remove(member);
                set.bytes -= member_size(member);
                writes.push(stored::delete_member(hex, member));
            },
        );
        let (_, added) = self.set_add_locked(&mut inner, destination, vec![member.clone()])?;
        writes.extend(added);
        Ok(Durable::new(true, self.writer.queue(writes)))
    }

    /// The sets under `keys` combined by `operation` (SINTER, SUNION, SDIFF); a missing key
    /// is an empty set.
    pub fn set_combine(&self, operation: SetOperation, keys: &[Bytes]) -> Result<Vec<Bytes>> {
        let mut inner = self.lock();
        self.set_combine_locked(&mut inner, operation, keys)
    }

    /// Stores the sets under `keys` combined by `operation` in `destination`, replacing
    /// whatever it held (SINTERSTORE, SUNIONSTORE, SDIFFSTORE; an empty result deletes it);
    /// returns the stored set's size.
    pub fn set_combine_store(
        &self,
        operation: SetOperation,
        destination: &Bytes,
        keys: &[Bytes],
    ) -> Result<Durable<usize>> {
        let mut inner = self.lock();
        let members = self.set_combine_locked(&mut inner, operation, keys)?;
        let count = members.len();
        let mut set = Set::default();
        for member in members {
            set.bytes += member_size(&member);
            set.longest = set.longest.max(member.len());
            set.members.insert(member);
        }
        let entry = (count > 0).then(|| Entry {
            value: Value::Set(Box::new(set)),
            deadline: None,
            version: 0,
        });
        Ok(match self.store_locked(&mut inner, destination, entry)? {
            Some(waiter) => Durable::new(count, waiter),
            None => Durable::ready(count),
        })
    }

    fn set_combine_locked(
        &self,
        inner: &mut Inner,
        operation: SetOperation,
        keys: &[Bytes],
    ) -> Result<Vec<Bytes>> {
        let now = now_ms();
        // Every key is checked for its kind first, as Redis refuses a wrong one wherever it is.
        let mut sets = Vec::with_capacity(keys.len());
        for key in keys {
            sets.push(self.set_of(inner, key, now)?.is_some());
        }
        let get = |inner: &Inner, key: &Bytes| match inner.entries.get(key) {
            Some(Entry {
                value: Value::Set(set),
                ..
            }) => Some(set.members.clone()),
            _ => None,
        };
        let Some(first) = keys.first() else {
            return Ok(Vec::new());
        };
        let mut result = get(inner, first).unwrap_or_default();
        for key in &keys[1..] {
            let other = get(inner, key);
            match operation {
                SetOperation::Intersection => match other {
                    Some(other) => result.retain(|member| other.contains(member)),
                    None => result.clear(),
                },
                SetOperation::Union => result.extend(other.unwrap_or_default()),
                SetOperation::Difference => {
                    if let Some(other) = other {
                        result.retain(|member| !other.contains(member));
                    }
                }
            }
        }
        Ok(result.into_iter().collect())
    }

    /// Up to `count` members of set `key` from `cursor` matching `pattern` (SSCAN), and the
    /// next cursor (0: done). A set Redis would hold compact (`layout.rs`) is answered whole.
    pub fn set_scan(
        &self,
        key: &[u8],
        cursor: u64,
        pattern: Option<&[u8]>,
        count: usize,
    ) -> Result<(u64, Vec<Bytes>)> {
        let mut inner = self.lock();
        let Some(set) = self.set_of(&mut inner, key, now_ms())? else {
            return Ok((0, Vec::new()));
        };
        let len = set.members.len();
        let matching = |range: std::ops::Range<usize>| -> Vec<Bytes> {
            set.members
                .get_range(range)
                .into_iter()
                .flat_map(|members| members.iter())
                .filter(|member| pattern.is_none_or(|pattern| glob_match(pattern, member)))
                .cloned()
                .collect()
        };
        if set.layout.is_compact() {
            return Ok((0, matching(0..len)));
        }
        // Pages go from the end down; the cursor is where the next page ends (0: from the
        // end). A removal moves the set's last member into the hole, and the last member is
        // either already returned or below the cursor itself, so a member present for the
        // whole scan is never moved past it (it may come twice, as Redis allows).
        let end = if cursor == 0 {
            len
        } else {
            (cursor as usize).min(len)
        };
        let start = end.saturating_sub(count.max(1));
        Ok((start as u64, matching(start..end)))
    }

    /// Puts `entry` under `key`, replacing whatever it held, or deletes `key` when `entry`
    /// is `None` (a STORE command's empty result); `None` when nothing was written.
    pub(super) fn store_locked(
        &self,
        inner: &mut Inner,
        key: &Bytes,
        entry: Option<Entry>,
    ) -> Result<Option<writer::Waiter>> {
        let now = now_ms();
        let old = self.live(inner, key, now).map(Entry::size);
        match entry {
            Some(entry) => {
                inner.check_room(key, old, entry.size())?;
                let waiter = self.replace(inner, key.clone(), entry);
                // A sorted set stored where clients wait in BZPOPMIN serves them.
                self.serve_waiting(inner, key);
                Ok(Some(waiter))
            }
            None => match inner.remove(key) {
                Some(old) => Ok(Some(self.writer.queue(stored::delete_entry(key, &old)))),
                None => Ok(None),
            },
        }
    }

    /// The set under `key`, `None` when missing; another kind is refused.
    fn set_of<'a>(&self, inner: &'a mut Inner, key: &[u8], now: i64) -> Result<Option<&'a Set>> {
        match self.live(inner, key, now) {
            None => Ok(None),
            Some(Entry {
                value: Value::Set(set),
                ..
            }) => Ok(Some(set)),
            Some(_) => Err(wrong_kind()),
        }
    }
}

/// Positions picked at random among `len` as SRANDMEMBER and ZRANDMEMBER pick them: a
/// positive `count` gives up to that many distinct positions, a negative one exactly
/// `-count` positions that may repeat.
pub(super) fn pick(len: usize, count: i64) -> Vec<usize> {
    let mut random = rand::rng();
    if len == 0 || count == 0 {
        return Vec::new();
    }
    if count < 0 {
        return (0..count.unsigned_abs())
            .map(|_| random.random_range(0..len))
            .collect();
    }
    let count = (count as u64).min(len as u64) as usize;
    sample(&mut random, len, count).into_vec()
}
