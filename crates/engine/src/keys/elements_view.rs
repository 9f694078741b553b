//! A read-only look at every element of a list, set or sorted set under the keyspace lock,
//! for a caller that reads them all and keeps few: SORT parses and orders a whole key to
//! answer `LIMIT 0 10`, and copying each element out (an atomic count on each, and a freed
//! copy of each afterwards) cost more than the sort.

use bytes::Bytes;

use super::entry::{wrong_kind, KeyKind, Value};
use super::Keyspace;
use crate::engine::now_ms;
use crate::error::Result;

/// The elements of one list, set or sorted set, borrowed under the keyspace lock.
pub struct ElementsView<'a> {
    /// The key's kind: a list or sorted set has an order of its own, a set has none.
    pub kind: KeyKind,
    /// In the key's order: a list's from its head, a sorted set's by score (then bytes), a
    /// set's as it iterates (no promised order).
    pub elements: Vec<&'a Bytes>,
}

impl Keyspace {
    /// What `look` makes of the elements of the list, set or sorted set under `key` (`None`
    /// when missing), under the keyspace lock; another kind of key is refused. `look` must
    /// not call the keyspace (its lock is held).
    pub fn elements_look<R>(
        &self,
        key: &[u8],
        look: impl FnOnce(Option<ElementsView<'_>>) -> R,
    ) -> Result<R> {
        let mut inner = self.lock();
        let Some(entry) = self.live(&mut inner, key, now_ms()) else {
            return Ok(look(None));
        };
        let view = match &entry.value {
            Value::List(list) => ElementsView {
                kind: KeyKind::List,
                elements: list.items.iter().collect(),
            },
            Value::Set(set) => ElementsView {
                kind: KeyKind::Set,
                elements: set.members.iter().collect(),
            },
            Value::SortedSet(set) => ElementsView {
                kind: KeyKind::SortedSet,
                elements: set.order.iter().map(|(_, member)| member).collect(),
            },
            _ => return Err(wrong_kind()),
        };
        Ok(look(Some(view)))
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use crate::keys::{End, KeyKind, SetOptions, ZAddOptions};

    fn b(text: &str) -> Bytes {
        Bytes::copy_from_slice(text.as_bytes())
    }

    #[tokio::test]
    async fn each_collection_is_seen_in_its_own_order_and_other_kinds_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (_state, keys) = crate::keys::tests::reopen(dir.path()).await;
        let list = vec![b("b"), b("a"), b("c")];
        let pushed = keys.push(&b("l"), list, End::Right, false).unwrap();
        pushed.wait().await.unwrap();
        let pairs = vec![(2.0, b("x")), (1.0, b("y"))];
        let added = keys.zset_add(&b("z"), pairs, ZAddOptions::default());
        added.unwrap().wait().await.unwrap();
        let added = keys.set_add(&b("s"), vec![b("m")]).unwrap();
        added.wait().await.unwrap();
        let set = keys.set(b("str"), b("v"), SetOptions::default()).unwrap();
        set.wait().await.unwrap();
        let seen = |key: &str| {
            keys.elements_look(key.as_bytes(), |view| {
                view.map(|v| (v.kind, v.elements.into_iter().cloned().collect::<Vec<_>>()))
            })
        };
        let list = Some((KeyKind::List, vec![b("b"), b("a"), b("c")]));
        assert_eq!(seen("l").unwrap(), list);
        let zset = Some((KeyKind::SortedSet, vec![b("y"), b("x")]));
        assert_eq!(seen("z").unwrap(), zset);
        assert_eq!(seen("s").unwrap(), Some((KeyKind::Set, vec![b("m")])));
        assert_eq!(seen("none").unwrap(), None);
        assert!(seen("str").is_err());
    }
}
