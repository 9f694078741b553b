//! List keys: pushes and pops at either end, reads by index and range, and the changes in
//! the middle (LSET, LINSERT, LREM, LTRIM), with Redis's semantics. A list exists while it
//! has elements: the change that takes its last one deletes the key. Each change is made in
//! memory under the keyspace lock and queued to the writer, as a string's is; a push or a
//! pop writes one row per element, a change in the middle rewrites the rows on the shorter
//! side of it (`stored.rs` keeps an element's position, not its index).

use bytes::Bytes;
use omnibus_storage::StateWrite;

use super::entry::{item_size, owned, wrong_kind, Collection, Entry, Inner, KeyKind, List, Value};
use super::{stored, writer, Durable, Keyspace};
use crate::engine::now_ms;
use crate::error::Result;

/// A key and the elements popped from it.
pub type Popped = (Bytes, Vec<Bytes>);

/// An end of a list: Redis's LEFT (the head, index 0) and RIGHT (the tail).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Left,
    Right,
}

/// What LSET did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListSet {
    Done,
    NoSuchKey,
    OutOfRange,
}

impl Keyspace {
    /// Pushes `values` one by one at `end` of list `key` (created unless `only_existing`:
    /// then a missing key stays missing and 0 is answered); returns the list's length
    /// after the push. Clients blocked on the key are served after it, oldest first.
    pub fn push(
        &self,
        key: &Bytes,
        values: Vec<Bytes>,
        end: End,
        only_existing: bool,
    ) -> Result<Durable<usize>> {
        let mut inner = self.lock();
        let now = now_ms();
        let old = match self.live(&mut inner, key, now) {
            None => None,
            Some(entry) if entry.kind() == KeyKind::List => Some(entry.size()),
            Some(_) => return Err(wrong_kind()),
        };
        if old.is_none() && only_existing {
            return Ok(Durable::ready(0));
        }
        let added: u64 = values.iter().map(|value| item_size(value)).sum();
        inner.check_room(key, old, old.unwrap_or(0) + added)?;
        let mut writes = Vec::with_capacity(values.len() + 1);
        if old.is_none() {
            writes.push(stored::put_list_deadline(key, None));
            inner.insert(key.clone(), Entry::empty(KeyKind::List));
        }
        let length = self.edit(
            &mut inner,
            key,
            &mut writes,
            |list: &mut List, hex, writes| {
                for value in values {
                    push_one(list, hex, end, value, writes);
                }
                list.len()
            },
        );
        let waiter = self.writer.queue(writes);
        self.serve(&mut inner, key.clone());
        Ok(Durable::new(length, waiter))
    }

    /// Pops up to `count` elements from `end` of `key`; `None` when the key is missing.
    pub fn pop(&self, key: &Bytes, end: End, count: usize) -> Result<Durable<Option<Vec<Bytes>>>> {
        let mut inner = self.lock();
        let now = now_ms();
        if self.list(&mut inner, key, now)?.is_none() {
            return Ok(Durable::ready(None));
        }
        if count == 0 {
            return Ok(Durable::ready(Some(Vec::new())));
        }
        let mut writes = Vec::new();
        let items = self.edit(
            &mut inner,
            key,
            &mut writes,
            |list: &mut List, hex, writes| pop_many(list, hex, end, count, writes),
        );
        Ok(Durable::new(Some(items), self.writer.queue(writes)))
    }

    /// Pops up to `count` elements from `end` of the first of `keys` that has any (LMPOP,
    /// and BLPOP's first look); a string met before it is refused.
    pub fn pop_first(
        &self,
        keys: &[Bytes],
        end: End,
        count: usize,
    ) -> Result<Durable<Option<Popped>>> {
        let mut inner = self.lock();
        self.pop_first_locked(&mut inner, keys, end, count)
    }

    pub(super) fn pop_first_locked(
        &self,
        inner: &mut Inner,
        keys: &[Bytes],
        end: End,
        count: usize,
    ) -> Result<Durable<Option<Popped>>> {
        let now = now_ms();
        for key in keys {
            if self.list(inner, key, now)?.is_none() {
                continue;
            }
            let mut writes = Vec::new();
            let items = self.edit(inner, key, &mut writes, |list: &mut List, hex, writes| {
                pop_many(list, hex, end, count.max(1), writes)
            });
            let waiter = self.writer.queue(writes);
            return Ok(Durable::new(Some((key.clone(), items)), waiter));
        }
        Ok(Durable::ready(None))
    }

    /// The length of list `key` (0 when missing).
    pub fn list_len(&self, key: &[u8]) -> Result<usize> {
        let mut inner = self.lock();
        Ok(self.list(&mut inner, key, now_ms())?.map_or(0, List::len))
    }

    /// The elements from `start` to `stop`, both included, counted from the end when
    /// negative (LRANGE).
    pub fn range(&self, key: &[u8], start: i64, stop: i64) -> Result<Vec<Bytes>> {
        let mut inner = self.lock();
        let Some(list) = self.list(&mut inner, key, now_ms())? else {
            return Ok(Vec::new());
        };
        Ok(match span(list.len(), start, stop) {
            Some((first, last)) => list.items.range(first..=last).cloned().collect(),
            None => Vec::new(),
        })
    }

    /// The element at `index` (negative: from the end).
    pub fn index(&self, key: &[u8], index: i64) -> Result<Option<Bytes>> {
        let mut inner = self.lock();
        let Some(list) = self.list(&mut inner, key, now_ms())? else {
            return Ok(None);
        };
        Ok(resolve(list.len(), index).map(|i| list.items[i].clone()))
    }

    /// Replaces the element at `index` (LSET).
    pub fn set_at(&self, key: &Bytes, index: i64, value: Bytes) -> Result<Durable<ListSet>> {
        let mut inner = self.lock();
        let Some(list) = self.list(&mut inner, key, now_ms())? else {
            return Ok(Durable::ready(ListSet::NoSuchKey));
        };
        let Some(i) = resolve(list.len(), index) else {
            return Ok(Durable::ready(ListSet::OutOfRange));
        };
        let size = list.bytes;
        let new_size = size - list.items[i].len() as u64 + value.len() as u64;
        inner.check_room(key, Some(size), new_size)?;
        let value = owned(value);
        let mut writes = Vec::new();
        let fill = inner.layout_limits.list_size;
        self.edit(
            &mut inner,
            key,
            &mut writes,
            |list: &mut List, hex, writes| {
                super::layout::before_replacing(list, &value, fill);
                writes.push(stored::put_item(hex, list.position(i), &value));
                list.count_in(&value);
                let old = std::mem::replace(&mut list.items[i], value);
                list.count_out(&old);
            },
        );
        Ok(Durable::new(ListSet::Done, self.writer.queue(writes)))
    }

    /// Inserts `value` before or after the first element equal to `pivot` (LINSERT):
    /// the new length, -1 when the pivot is not there, 0 when the key is missing.
    pub fn insert(
        &self,
        key: &Bytes,
        after: bool,
        pivot: &[u8],
        value: Bytes,
    ) -> Result<Durable<i64>> {
        let mut inner = self.lock();
        let Some(list) = self.list(&mut inner, key, now_ms())? else {
            return Ok(Durable::ready(0));
        };
        let Some(found) = list.items.iter().position(|item| item.as_ref() == pivot) else {
            return Ok(Durable::ready(-1));
        };
        let size = list.bytes;
        inner.check_room(key, Some(size), size + item_size(&value))?;
        let at = found + usize::from(after);
        let mut writes = Vec::new();
        let value = owned(value);
        let length = self.edit(
            &mut inner,
            key,
            &mut writes,
            |list: &mut List, hex, writes| {
                list.count_in(&value);
                // The rows on the shorter side of the new element move by one.
                if at <= list.len() / 2 {
                    list.head = list.head.wrapping_sub(1);
                    list.items.insert(at, value);
                    rewrite(list, hex, 0..=at, writes);
                } else {
                    list.items.insert(at, value);
                    rewrite(list, hex, at..=list.len() - 1, writes);
                }
                list.len()
            },
        );
        Ok(Durable::new(length as i64, self.writer.queue(writes)))
    }

    /// Removes elements equal to `value` (LREM): the first `count` from the head when
    /// positive, from the tail when negative, all when 0; returns how many.
    pub fn remove_matching(&self, key: &Bytes, count: i64, value: &[u8]) -> Result<Durable<usize>> {
        let mut inner = self.lock();
        let Some(list) = self.list(&mut inner, key, now_ms())? else {
            return Ok(Durable::ready(0));
        };
        let limit = if count == 0 {
            usize::MAX
        } else {
            count.unsigned_abs().min(usize::MAX as u64) as usize
        };
        let mut doomed: Vec<usize> = Vec::new();
        let matches = |i: &usize| list.items[*i].as_ref() == value;
        if count >= 0 {
            doomed.extend((0..list.len()).filter(matches).take(limit));
        } else {
            doomed.extend((0..list.len()).rev().filter(matches).take(limit));
            doomed.reverse();
        }
        if doomed.is_empty() {
            return Ok(Durable::ready(0));
        }
        let removed = doomed.len();
        let mut writes = Vec::new();
        self.edit(
            &mut inner,
            key,
            &mut writes,
            |list: &mut List, hex, writes| {
                let old_length = list.len();
                let first = doomed[0];
                let mut next = doomed.iter().peekable();
                let mut index = 0;
                list.items.retain(|_| {
                    let keep = next.peek().is_none_or(|doomed| **doomed != index);
                    if !keep {
                        next.next();
                    }
                    index += 1;
                    keep
                });
                list.recount();
                // The head stays; what followed the first removed element moves up.
                if first < list.len() {
                    rewrite(list, hex, first..=list.len() - 1, writes);
                }
                for i in list.len()..old_length {
                    writes.push(stored::delete_item(hex, list.position(i)));
                }
            },
        );
        Ok(Durable::new(removed, self.writer.queue(writes)))
    }

    /// Keeps only the elements from `start` to `stop` (LTRIM, indexes as LRANGE's).
    pub fn trim(&self, key: &Bytes, start: i64, stop: i64) -> Result<Durable<()>> {
        let mut inner = self.lock();
        let Some(list) = self.list(&mut inner, key, now_ms())? else {
            return Ok(Durable::ready(()));
        };
        let length = list.len();
        let (drop_left, drop_right) = match span(length, start, stop) {
            Some((first, last)) => (first, length - 1 - last),
            None => (length, 0),
        };
        if drop_left + drop_right == 0 {
            return Ok(Durable::ready(()));
        }
        let mut writes = Vec::new();
        self.edit(
            &mut inner,
            key,
            &mut writes,
            |list: &mut List, hex, writes| {
                pop_many(list, hex, End::Left, drop_left, writes);
                pop_many(list, hex, End::Right, drop_right, writes);
            },
        );
        Ok(Durable::new((), self.writer.queue(writes)))
    }

    /// Indexes of elements equal to `element` (LPOS): from the `rank`-th match (negative:
    /// counting from the tail), at most `count` of them (0: all), looking at no more than
    /// `max_length` elements (0: all).
    pub fn positions(
        &self,
        key: &[u8],
        element: &[u8],
        rank: i64,
        count: usize,
        max_length: usize,
    ) -> Result<Vec<usize>> {
        let mut inner = self.lock();
        let Some(list) = self.list(&mut inner, key, now_ms())? else {
            return Ok(Vec::new());
        };
        let length = list.len();
        let looked = if max_length == 0 {
            length
        } else {
            max_length.min(length)
        };
        let indexes: Box<dyn Iterator<Item = usize>> = if rank > 0 {
            Box::new(0..looked)
        } else {
            Box::new((length - looked..length).rev())
        };
        let skip = (rank.unsigned_abs() - 1).min(usize::MAX as u64) as usize;
        let wanted = if count == 0 { usize::MAX } else { count };
        Ok(indexes
            .filter(|i| list.items[*i].as_ref() == element)
            .skip(skip)
            .take(wanted)
            .collect())
    }

    /// Pops from `from` of `source` and pushes at `to` of `destination` (LMOVE), in one
    /// change; `None` when the source is missing. A destination holding a string is
    /// refused, and nothing moves.
    pub fn move_item(
        &self,
        source: &Bytes,
        destination: &Bytes,
        from: End,
        to: End,
    ) -> Result<Durable<Option<Bytes>>> {
        let mut inner = self.lock();
        match self.move_locked(&mut inner, source, destination, from, to)? {
            Some((element, waiter)) => {
                self.serve(&mut inner, destination.clone());
                Ok(Durable::new(Some(element), waiter))
            }
            None => Ok(Durable::ready(None)),
        }
    }

    /// LMOVE under the lock, without serving the destination's blocked clients.
    pub(super) fn move_locked(
        &self,
        inner: &mut Inner,
        source: &Bytes,
        destination: &Bytes,
        from: End,
        to: End,
    ) -> Result<Option<(Bytes, writer::Waiter)>> {
        let now = now_ms();
        let Some(list) = self.list(inner, source, now)? else {
            return Ok(None);
        };
        let element = match from {
            End::Left => list.items.front(),
            End::Right => list.items.back(),
        }
        .expect("a list has elements")
        .clone();
        let mut writes = Vec::new();
        if source == destination {
            self.edit(
                inner,
                source,
                &mut writes,
                |list: &mut List, hex, writes| {
                    pop_many(list, hex, from, 1, writes);
                    push_one(list, hex, to, element.clone(), writes);
                },
            );
            return Ok(Some((element, self.writer.queue(writes))));
        }
        let old = self.list(inner, destination, now)?.map(|list| list.bytes);
        inner.check_room(destination, old, old.unwrap_or(0) + item_size(&element))?;
        self.edit(
            inner,
            source,
            &mut writes,
            |list: &mut List, hex, writes| {
                pop_many(list, hex, from, 1, writes);
            },
        );
        if old.is_none() {
            writes.push(stored::put_list_deadline(destination, None));
            inner.insert(destination.clone(), Entry::empty(KeyKind::List));
        }
        self.edit(
            inner,
            destination,
            &mut writes,
            |list: &mut List, hex, writes| {
                push_one(list, hex, to, element.clone(), writes);
            },
        );
        Ok(Some((element, self.writer.queue(writes))))
    }

    /// The list under `key`, `None` when missing; a string is refused.
    fn list<'a>(&self, inner: &'a mut Inner, key: &[u8], now: i64) -> Result<Option<&'a List>> {
        match self.live(inner, key, now) {
            None => Ok(None),
            Some(Entry {
                value: Value::List(list),
                ..
            }) => Ok(Some(list)),
            Some(_) => Err(wrong_kind()),
        }
    }

    /// Runs `change` on the list or hash under `key` (which must be one) with the hex of its
    /// key for rows, keeps the byte count right, and deletes the key if it emptied it.
    pub(super) fn edit<C: Collection, T>(
        &self,
        inner: &mut Inner,
        key: &[u8],
        writes: &mut Vec<StateWrite>,
        change: impl FnOnce(&mut C, &str, &mut Vec<StateWrite>) -> T,
    ) -> T {
        let hex = stored::encode_key(key);
        let written = writes.len();
        let collection = inner.collection_mut::<C>(key).expect("a key of that kind");
        let (before, earliest_before) = (collection.bytes(), collection.earliest_deadline());
        let outcome = change(collection, &hex, writes);
        let (after, empty) = (collection.bytes(), collection.is_empty());
        let earliest_after = collection.earliest_deadline();
        inner.resize(before, after);
        inner.reindex_fields(key, earliest_before, earliest_after);
        // A change that wrote nothing (HSETNX of a field there, HDEL of one missing) changed
        // nothing: WATCH must not see it.
        if writes.len() > written {
            inner.touch(key);
        }
        if empty {
            let old = inner.remove(key).expect("the key just changed");
            writes.extend(stored::delete_entry(key, &old));
        }
        outcome
    }
}

/// Pushes `value` at `end`, writing its row.
pub(super) fn push_one(
    list: &mut List,
    hex: &str,
    end: End,
    value: Bytes,
    writes: &mut Vec<StateWrite>,
) {
    let value = owned(value);
    list.count_in(&value);
    match end {
        End::Left => {
            list.head = list.head.wrapping_sub(1);
            writes.push(stored::put_item(hex, list.head, &value));
            list.items.push_front(value);
        }
        End::Right => {
            writes.push(stored::put_item(hex, list.position(list.len()), &value));
            list.items.push_back(value);
        }
    }
}

/// Pops up to `count` elements from `end`, in the order they come off, deleting their rows.
pub(super) fn pop_many(
    list: &mut List,
    hex: &str,
    end: End,
    count: usize,
    writes: &mut Vec<StateWrite>,
) -> Vec<Bytes> {
    let count = count.min(list.len());
    let mut items = Vec::with_capacity(count);
    for _ in 0..count {
        let item = match end {
            End::Left => {
                writes.push(stored::delete_item(hex, list.head));
                list.head = list.head.wrapping_add(1);
                list.items.pop_front()
            }
            End::Right => {
                writes.push(stored::delete_item(hex, list.position(list.len() - 1)));
                list.items.pop_back()
            }
        };
        let item = item.expect("counted");
        list.count_out(&item);
        items.push(item);
    }
    items
}

/// Writes the rows of the elements at `indexes` where they are now.
fn rewrite(
    list: &List,
    hex: &str,
    indexes: std::ops::RangeInclusive<usize>,
    writes: &mut Vec<StateWrite>,
) {
    for i in indexes {
        writes.push(stored::put_item(hex, list.position(i), &list.items[i]));
    }
}

/// An index counted from the end when negative, if it is inside a list of `length`.
fn resolve(length: usize, index: i64) -> Option<usize> {
    let index = if index < 0 {
        length as i64 + index
    } else {
        index
    };
    (0..length as i64)
        .contains(&index)
        .then_some(index as usize)
}

/// LRANGE's and LTRIM's first and last index, both included, or `None` for nothing.
fn span(length: usize, start: i64, stop: i64) -> Option<(usize, usize)> {
    let length = length as i64;
    let start = if start < 0 {
        (length + start).max(0)
    } else {
        start
    };
    let stop = if stop < 0 { length + stop } else { stop };
    let stop = stop.min(length - 1);
    (start <= stop && start < length).then_some((start as usize, stop as usize))
}
