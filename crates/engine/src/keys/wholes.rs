//! Whole values in and out of the keyspace, for the commands that move a key as one piece
//! (the Redis door's DUMP and RESTORE): a key's value and deadline read at once, and a value
//! put in place of a key in one change. Protocol-neutral: the door turns them into its own
//! serialization.

use bytes::Bytes;

use super::entry::{field_size, member_size, Entry, Hash, List, Set, SortedSet, Value};
use super::{Durable, Keyspace};
use crate::engine::now_ms;
use crate::error::Result;

/// A key's whole value.
#[derive(Debug, Clone, PartialEq)]
pub enum Whole {
    String(Bytes),
    /// Elements from head to tail.
    List(Vec<Bytes>),
    /// Fields in insertion order.
    Hash(Vec<(Bytes, Bytes)>),
    /// A hash with at least one field deadline: fields in insertion order, each with its
    /// deadline (Unix ms) if it has one (`field_expiry.rs`).
    ExpiringHash(Vec<(Bytes, Bytes, Option<i64>)>),
    Set(Vec<Bytes>),
    /// Members by (score, member).
    SortedSet(Vec<(Bytes, f64)>),
}

impl Whole {
    fn into_value(self) -> Option<Value> {
        Some(match self {
            Whole::String(bytes) => Value::String(bytes),
            Whole::List(items) if !items.is_empty() => {
                let mut list = List::new();
                for item in items {
                    list.count_in(&item);
                    list.items.push_back(item);
                }
                Value::List(Box::new(list))
            }
            Whole::Hash(fields) if !fields.is_empty() => {
                let fields = fields
                    .into_iter()
                    .map(|(field, value)| (field, value, None));
                Value::Hash(Box::new(hash_of(fields)))
            }
            Whole::ExpiringHash(fields) if !fields.is_empty() => {
                Value::Hash(Box::new(hash_of(fields.into_iter())))
            }
            Whole::Set(members) if !members.is_empty() => {
                let mut set = Set::default();
                for member in members {
                    let size = member_size(&member);
                    set.longest = set.longest.max(member.len());
                    if set.members.insert(member) {
                        set.bytes += size;
                    }
                }
                Value::Set(Box::new(set))
            }
            Whole::SortedSet(members) if !members.is_empty() => {
                let mut set = SortedSet::default();
                for (member, score) in members {
                    set.put(member, score);
                }
                Value::SortedSet(Box::new(set))
            }
            // An empty collection is no key.
            _ => return None,
        })
    }
}

/// A hash of `fields` in order, each with its deadline if it has one; a field given twice
/// keeps its first place and its last value and deadline.
fn hash_of(fields: impl Iterator<Item = (Bytes, Bytes, Option<i64>)>) -> Hash {
    let mut hash = Hash::default();
    for (field, value, deadline) in fields {
        hash.bytes += field_size(&field, &value);
        hash.longest = hash.longest.max(field.len()).max(value.len());
        match hash.fields.get_mut(&field) {
            Some((_, old)) => {
                hash.bytes -= field_size(&field, old);
                *old = value;
            }
            None => {
                let place = hash.next;
                hash.next += 1;
                hash.fields.insert(field.clone(), (place, value));
            }
        }
        hash.clear_field_deadline(&field);
        if let Some(deadline) = deadline {
            hash.set_field_deadline(&field, deadline);
        }
    }
    hash
}

impl Keyspace {
    /// The value under `key` and its deadline (Unix ms), `None` when missing.
    pub fn whole(&self, key: &[u8]) -> Option<(Whole, Option<i64>)> {
        let mut inner = self.lock();
        let entry = self.live(&mut inner, key, now_ms())?;
        let whole = match &entry.value {
            Value::String(bytes) => Whole::String(bytes.clone()),
            Value::List(list) => Whole::List(list.items.iter().cloned().collect()),
            Value::Hash(hash) if hash.deadlines.is_some() => Whole::ExpiringHash(
                hash.fields
                    .iter()
                    .map(|(field, (_, value))| {
                        (field.clone(), value.clone(), hash.field_deadline(field))
                    })
                    .collect(),
            ),
            Value::Hash(hash) => Whole::Hash(
                hash.fields
                    .iter()
                    .map(|(field, (_, value))| (field.clone(), value.clone()))
                    .collect(),
            ),
            Value::Set(set) => Whole::Set(set.members.iter().cloned().collect()),
            Value::SortedSet(set) => {
                Whole::SortedSet(set.order.iter().map(|(s, m)| (m.clone(), s.0)).collect())
            }
        };
        Some((whole, entry.deadline))
    }

    /// Puts `value` under `key` with `deadline` (Unix ms) in one change, replacing what the
    /// key held when `replace`; `Ok(None)` when the key exists and `replace` is not set (or
    /// the value is an empty collection: nothing to hold). A deadline already past deletes
    /// the key instead, as Redis's RESTORE does.
    pub fn put_whole(
        &self,
        key: &Bytes,
        value: Whole,
        deadline: Option<i64>,
        replace: bool,
    ) -> Result<Option<Durable<()>>> {
        let mut inner = self.lock();
        let now = now_ms();
        if !replace && self.live(&mut inner, key, now).is_some() {
            return Ok(None);
        }
        let Some(value) = value.into_value() else {
            return Ok(None);
        };
        let entry = deadline.filter(|at| *at <= now).map_or(
            Some(Entry {
                value,
                deadline,
                version: 0,
            }),
            |_| None,
        );
        Ok(Some(match self.store_locked(&mut inner, key, entry)? {
            Some(waiter) => Durable::new((), waiter),
            None => Durable::ready(()),
        }))
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::Whole;
    use crate::engine::now_ms;
    use crate::keys::tests::reopen;

    fn b(text: &str) -> Bytes {
        Bytes::copy_from_slice(text.as_bytes())
    }

    #[tokio::test]
    async fn whole_values_go_in_and_out_and_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let values = vec![
            (b("s"), Whole::String(b("text"))),
            (b("l"), Whole::List(vec![b("a"), b("b"), b("a")])),
            (
                b("h"),
                Whole::Hash(vec![(b("f"), b("1")), (b("g"), b("2"))]),
            ),
            (b("set"), Whole::Set(vec![b("x"), b("y")])),
            (b("z"), Whole::SortedSet(vec![(b("m"), 1.5), (b("n"), 2.0)])),
            (
                b("fields with deadlines"),
                Whole::ExpiringHash(vec![
                    (b("f"), b("1"), Some(now_ms() + 90_000)),
                    (b("g"), b("2"), None),
                ]),
            ),
        ];
        let later = now_ms() + 60_000;
        {
            let (_state, keys) = reopen(dir.path()).await;
            for (key, value) in &values {
                let put = keys
                    .put_whole(key, value.clone(), Some(later), false)
                    .unwrap();
                put.expect("a new key").wait().await.unwrap();
            }
            // Not replaced unless asked; replaced when asked (the deadline too).
            assert!(keys
                .put_whole(&b("s"), Whole::String(b("no")), None, false)
                .unwrap()
                .is_none());
            keys.put_whole(&b("s"), Whole::List(vec![b("now a list")]), None, true)
                .unwrap()
                .unwrap()
                .wait()
                .await
                .unwrap();
            // A deadline already past deletes.
            keys.put_whole(&b("l"), Whole::String(b("x")), Some(now_ms() - 1), true)
                .unwrap()
                .unwrap()
                .wait()
                .await
                .unwrap();
            assert!(keys.whole(b"l").is_none());
        }
        let (_state, keys) = reopen(dir.path()).await;
        assert_eq!(
            keys.whole(b"s"),
            Some((Whole::List(vec![b("now a list")]), None))
        );
        for (key, value) in &values[2..] {
            assert_eq!(keys.whole(key), Some((value.clone(), Some(later))));
        }
    }
}
