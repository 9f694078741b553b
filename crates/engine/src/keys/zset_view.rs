//! A read-only look at one sorted set under the keyspace lock, for a caller that walks it by
//! score in ways the range queries of `zsets.rs` do not name: a geospatial search reads a
//! member's score and then up to nine score intervals, and the answer must come from one
//! state of the set (and, for GEOSEARCHSTORE, be stored before any other change).

use bytes::Bytes;

use super::entry::{Score, SortedSet};
use super::{Durable, Keyspace, Scored};
use crate::engine::now_ms;
use crate::error::Result;

/// One sorted set, seen under the keyspace lock.
#[derive(Clone, Copy)]
pub struct ZSetView<'a> {
    set: &'a SortedSet,
}

impl<'a> ZSetView<'a> {
    /// The score of `member`, `None` when it is not in the set.
    pub fn score(&self, member: &[u8]) -> Option<f64> {
        self.set.scores.get(member).copied()
    }

    pub fn len(&self) -> usize {
        self.set.scores.len()
    }

    pub fn is_empty(&self) -> bool {
        self.set.scores.is_empty()
    }

    /// The members scoring at least `min`, lowest score first (members of one score in byte
    /// order); the caller stops the walk where its interval ends.
    pub fn from_score(&self, min: f64) -> impl Iterator<Item = (f64, &'a Bytes)> + 'a {
        self.set
            .order
            .range((Score::new(min), Bytes::new())..)
            .map(|(score, member)| (score.0, member))
    }
}

impl Keyspace {
    /// What `look` finds in the sorted set under `key` (`None` when there is none), under the
    /// keyspace lock; another kind of key is refused.
    pub fn zset_look<R>(
        &self,
        key: &[u8],
        look: impl FnOnce(Option<ZSetView<'_>>) -> R,
    ) -> Result<R> {
        let mut inner = self.lock();
        let set = self.zset_of(&mut inner, key, now_ms())?;
        Ok(look(set.map(|set| ZSetView { set })))
    }

    /// The members `pick` chooses from the sorted set under `source` (`None` when there is
    /// none), stored in `destination` in place of what it held (no members: the key is
    /// deleted), all under one hold of the lock; returns how many were stored. When `pick`
    /// refuses, nothing changes and its refusal is returned.
    pub fn zset_store_picked<E>(
        &self,
        destination: &Bytes,
        source: &[u8],
        pick: impl FnOnce(Option<ZSetView<'_>>) -> std::result::Result<Vec<Scored>, E>,
    ) -> Result<std::result::Result<Durable<usize>, E>> {
        let mut inner = self.lock();
        let set = self.zset_of(&mut inner, source, now_ms())?;
        let members = match pick(set.map(|set| ZSetView { set })) {
            Ok(members) => members,
            Err(refusal) => return Ok(Err(refusal)),
        };
        self.zset_store(&mut inner, destination, members).map(Ok)
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use crate::keys::{SetOptions, ZAddOptions};

    fn b(text: &str) -> Bytes {
        Bytes::copy_from_slice(text.as_bytes())
    }

    #[tokio::test]
    async fn a_look_walks_from_a_score_and_a_store_replaces_the_destination() {
        let dir = tempfile::tempdir().unwrap();
        let (_state, keys) = crate::keys::tests::reopen(dir.path()).await;
        let pairs = vec![(3.0, b("c")), (1.0, b("a")), (2.0, b("b")), (2.0, b("bb"))];
        keys.zset_add(&b("z"), pairs, ZAddOptions::default())
            .unwrap()
            .wait()
            .await
            .unwrap();
        let walked = keys
            .zset_look(b"z", |set| {
                let set = set.expect("the set exists");
                assert_eq!(set.score(b"b"), Some(2.0));
                assert_eq!(set.score(b"x"), None);
                assert_eq!(set.len(), 4);
                set.from_score(2.0)
                    .map(|(score, member)| (score, member.clone()))
                    .collect::<Vec<_>>()
            })
            .unwrap();
        assert_eq!(walked, vec![(2.0, b("b")), (2.0, b("bb")), (3.0, b("c"))]);
        assert!(keys.zset_look(b"missing", |set| set.is_none()).unwrap());

        let stored = keys
            .zset_store_picked(&b("dest"), b"z", |set| {
                Ok::<_, ()>(
                    set.unwrap()
                        .from_score(3.0)
                        .map(|(s, m)| (m.clone(), s * 10.0))
                        .collect(),
                )
            })
            .unwrap()
            .unwrap();
        assert_eq!(stored.wait().await.unwrap(), 1);
        assert_eq!(
            keys.zset_scores(b"dest", &[b("c")]).unwrap(),
            vec![Some(30.0)]
        );

        // A refusal changes nothing; an empty pick deletes the destination.
        let refused = keys.zset_store_picked(&b("dest"), b"z", |_| Err::<Vec<_>, _>("no"));
        assert!(matches!(refused, Ok(Err("no"))));
        assert_eq!(keys.zset_len(b"dest").unwrap(), 1);
        let emptied = keys
            .zset_store_picked(&b("dest"), b"missing", |set| {
                assert!(set.is_none());
                Ok::<_, ()>(Vec::new())
            })
            .unwrap()
            .unwrap();
        assert_eq!(emptied.wait().await.unwrap(), 0);
        assert_eq!(keys.zset_len(b"dest").unwrap(), 0);

        keys.set(b("text"), b("v"), SetOptions::default())
            .unwrap()
            .wait()
            .await
            .unwrap();
        assert!(keys.zset_look(b"text", |_| ()).is_err());
    }
}
