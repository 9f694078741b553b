//! String values changed or combined whole under the keyspace's lock: SETRANGE, SETBIT and
//! PFADD (a string changed where it is, its deadline kept), BITOP and PFMERGE (strings
//! combined into another key). The door decides what the bytes become; this file makes the change one step, so no
//! other client's command lands between the read and the write.
//!
//! A string is stored whole (`stored.rs`), so each such change writes the whole value again:
//! a SETBIT on a 1 MiB bitmap journals 1 MiB (docs/redis.md, "Limits").

use bytes::Bytes;

use super::entry::{wrong_kind, Entry};
use super::{Durable, Keyspace, SetExpiry};
use crate::engine::now_ms;
use crate::error::Result;

impl Keyspace {
    /// Changes string `key` (missing or expired: `None`) to what `change` makes of its value,
    /// keeping its deadline. `change` gives the new value (`None` leaves the key as it is)
    /// and the command's answer; a key of another kind is refused before it is called.
    pub fn change_string<T>(
        &self,
        key: &Bytes,
        change: impl FnOnce(Option<&[u8]>) -> (Option<Vec<u8>>, T),
    ) -> Result<Durable<T>> {
        let mut inner = self.lock();
        let old = self.live(&mut inner, key, now_ms());
        let current = match old.map(|e| e.as_string().ok_or_else(wrong_kind)) {
            None => None,
            Some(value) => Some(value?),
        };
        let (value, answer) = change(current.map(|value| value.as_ref()));
        let Some(value) = value else {
            return Ok(Durable::ready(answer));
        };
        let (deadline, size) = (old.and_then(|e| e.deadline), old.map(Entry::size));
        let entry = Entry::string(Bytes::from(value), deadline);
        inner.check_room(key, size, entry.size())?;
        let waiter = self.replace(&mut inner, key.clone(), entry);
        Ok(Durable::new(answer, waiter))
    }

    /// Stores in `destination` what `combine` makes of the strings under `sources` (each
    /// missing one `None`), replacing whatever it held; an empty result deletes it (BITOP),
    /// and `None` leaves everything as it is (a source it refuses). The destination keeps
    /// its deadline when `deadline` is `Keep` (PFMERGE changes it where it is), else loses
    /// it (BITOP stores a new value). Every source is checked for its kind first. Returns the
    /// stored value's length.
    pub fn combine_strings(
        &self,
        destination: &Bytes,
        sources: &[Bytes],
        deadline: SetExpiry,
        combine: impl FnOnce(&[Option<Bytes>]) -> Option<Vec<u8>>,
    ) -> Result<Durable<Option<usize>>> {
        let mut inner = self.lock();
        let now = now_ms();
        let deadline = match deadline {
            SetExpiry::Keep => self
                .live(&mut inner, destination, now)
                .and_then(|e| e.deadline),
            SetExpiry::At(at) => Some(at),
            SetExpiry::Clear => None,
        };
        let mut values = Vec::with_capacity(sources.len());
        for source in sources {
            let value = match self.live(&mut inner, source, now) {
                None => None,
                Some(entry) => Some(entry.as_string().ok_or_else(wrong_kind)?.clone()),
            };
            values.push(value);
        }
        let Some(result) = combine(&values) else {
            return Ok(Durable::ready(None));
        };
        let length = result.len();
        let entry = (length > 0).then(|| Entry::string(Bytes::from(result), deadline));
        Ok(match self.store_locked(&mut inner, destination, entry)? {
            Some(waiter) => Durable::new(Some(length), waiter),
            None => Durable::ready(Some(length)),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::Bytes;
    use omnibus_storage::StateStore;

    use crate::keys::{End, Keyspace, SetCondition, SetExpiry, SetOptions, TimeToLive};
    use crate::EngineError;

    fn open() -> (tempfile::TempDir, Arc<Keyspace>) {
        let dir = tempfile::tempdir().expect("temp dir");
        let state = Arc::new(StateStore::open(&dir.path().join("state.redb")).expect("open"));
        (dir, Keyspace::open(state).expect("open keyspace"))
    }

    #[tokio::test]
    async fn a_changed_string_keeps_its_deadline_and_none_leaves_it() {
        let (_dir, keys) = open();
        let key = Bytes::from_static(b"k");
        keys.set(
            key.clone(),
            Bytes::from_static(b"abc"),
            SetOptions {
                condition: SetCondition::Always,
                expiry: SetExpiry::At(crate::engine::now_ms() + 60_000),
            },
        )
        .unwrap()
        .wait()
        .await
        .unwrap();
        let seen = keys
            .change_string(&key, |old| {
                let mut value = old.unwrap().to_vec();
                value.push(b'd');
                (Some(value), old.map(<[u8]>::len))
            })
            .unwrap()
            .wait()
            .await
            .unwrap();
        assert_eq!(seen, Some(3));
        assert_eq!(keys.get(b"k").as_deref(), Some(&b"abcd"[..]));
        assert!(matches!(
            keys.time_to_live(b"k"),
            TimeToLive::Milliseconds(ms) if ms > 50_000
        ));
        // Left as it is: a missing key stays missing.
        let missing = Bytes::from_static(b"missing");
        let answer = keys.change_string(&missing, |old| (None, old.is_none()));
        assert!(answer.unwrap().wait().await.unwrap());
        assert_eq!(keys.exists(&[missing]), 0);
    }

    #[tokio::test]
    async fn combined_strings_replace_the_destination_and_empty_deletes_it() {
        let (_dir, keys) = open();
        let (a, b, to) = (
            Bytes::from_static(b"a"),
            Bytes::from_static(b"b"),
            Bytes::from_static(b"to"),
        );
        keys.set_many(vec![
            (a.clone(), Bytes::from_static(b"xy")),
            (to.clone(), Bytes::from_static(b"old")),
        ])
        .unwrap()
        .wait()
        .await
        .unwrap();
        let sources = [a.clone(), b.clone()];
        let length = keys
            .combine_strings(&to, &sources, SetExpiry::Clear, |values| {
                assert_eq!(values[0].as_deref(), Some(&b"xy"[..]));
                assert!(values[1].is_none());
                Some(b"xyz".to_vec())
            })
            .unwrap()
            .wait()
            .await
            .unwrap();
        assert_eq!(length, Some(3));
        assert_eq!(keys.get(b"to").as_deref(), Some(&b"xyz"[..]));
        // Refused by the caller: nothing changes.
        let refused = keys.combine_strings(&to, &sources, SetExpiry::Clear, |_| None);
        assert_eq!(refused.unwrap().wait().await.unwrap(), None);
        assert_eq!(keys.get(b"to").as_deref(), Some(&b"xyz"[..]));
        let empty = keys.combine_strings(&to, &sources, SetExpiry::Clear, |_| Some(Vec::new()));
        assert_eq!(empty.unwrap().wait().await.unwrap(), Some(0));
        assert_eq!(keys.exists(std::slice::from_ref(&to)), 0);
        // Kept where asked: the destination's deadline stays (and is cleared otherwise).
        let later = crate::engine::now_ms() + 60_000;
        let stored = |deadline| {
            keys.combine_strings(&to, &sources, deadline, |_| Some(b"kept".to_vec()))
                .unwrap()
                .wait()
        };
        stored(SetExpiry::Clear).await.unwrap();
        keys.expire(&to, Some(later), crate::keys::ExpireCondition::Always)
            .unwrap()
            .wait()
            .await
            .unwrap();
        stored(SetExpiry::Keep).await.unwrap();
        assert!(matches!(
            keys.time_to_live(b"to"),
            TimeToLive::Milliseconds(_)
        ));
        stored(SetExpiry::Clear).await.unwrap();
        assert!(matches!(keys.time_to_live(b"to"), TimeToLive::Forever));
        keys.delete(std::slice::from_ref(&to))
            .unwrap()
            .wait()
            .await
            .unwrap();
        // A source of another kind refuses the whole command.
        keys.push(&b, vec![Bytes::from_static(b"x")], End::Left, false)
            .unwrap()
            .wait()
            .await
            .unwrap();
        let refused =
            keys.combine_strings(&to, &sources, SetExpiry::Clear, |_| Some(b"never".to_vec()));
        assert!(matches!(refused, Err(EngineError::WrongKind)));
        assert_eq!(keys.exists(&[to]), 0);
    }
}
