use std::time::Duration;

use bytes::Bytes;

use super::super::tests::reopen;
use super::*;
use crate::keys::{
    Expiration, ExpireCondition, HASH_FIELDS_TABLE, HASH_FIELD_DEADLINES_TABLE, SWEEP_INTERVAL,
};

fn b(text: &str) -> Bytes {
    Bytes::copy_from_slice(text.as_bytes())
}

fn names(fields: &[&str]) -> Vec<Bytes> {
    fields.iter().map(|field| b(field)).collect()
}

async fn hset(keys: &Keyspace, key: &str, items: &[(&str, &str)]) {
    let pairs = items.iter().map(|(f, v)| (b(f), b(v))).collect();
    keys.hash_set(&b(key), pairs, false)
        .unwrap()
        .wait()
        .await
        .unwrap();
}

async fn expire(
    keys: &Keyspace,
    key: &str,
    fields: &[&str],
    at: i64,
    condition: ExpireCondition,
) -> Vec<FieldExpire> {
    keys.hash_expire(&b(key), &names(fields), at, condition)
        .unwrap()
        .wait()
        .await
        .unwrap()
}

fn deadlines(keys: &Keyspace, key: &str, fields: &[&str]) -> Vec<FieldDeadline> {
    keys.hash_field_deadlines(key.as_bytes(), &names(fields))
        .unwrap()
}

#[tokio::test]
async fn conditions_and_outcomes_are_redis_s() {
    use ExpireCondition::*;
    use FieldExpire::*;
    let dir = tempfile::tempdir().unwrap();
    let (_state, keys) = reopen(dir.path()).await;
    hset(&keys, "h", &[("a", "1"), ("b", "2"), ("c", "3")]).await;
    let later = now_ms() + 100_000;
    // No such key: every field is missing.
    assert_eq!(
        expire(&keys, "nope", &["a"], later, Always).await,
        [Missing]
    );
    // XX and GT need a deadline there; NX and LT take a field without one.
    assert_eq!(
        expire(&keys, "h", &["a", "z"], later, IfSome).await,
        [NotMet, Missing]
    );
    assert_eq!(expire(&keys, "h", &["a"], later, IfLater).await, [NotMet]);
    assert_eq!(expire(&keys, "h", &["a"], later, IfNone).await, [Set]);
    assert_eq!(expire(&keys, "h", &["b"], later, IfEarlier).await, [Set]);
    assert_eq!(expire(&keys, "h", &["a"], later, IfNone).await, [NotMet]);
    assert_eq!(expire(&keys, "h", &["a"], later + 5, IfLater).await, [Set]);
    assert_eq!(
        expire(&keys, "h", &["a"], later + 9, IfEarlier).await,
        [NotMet]
    );
    assert_eq!(
        deadlines(&keys, "h", &["a", "b", "c", "z"]),
        [
            FieldDeadline::At(later + 5),
            FieldDeadline::At(later),
            FieldDeadline::Forever,
            FieldDeadline::Missing
        ]
    );
    // A deadline already past deletes the field; named twice, it is missing the second time.
    assert_eq!(
        expire(&keys, "h", &["c", "c"], 1, Always).await,
        [Deleted, Missing]
    );
    assert_eq!(keys.hash_len(b"h").unwrap(), 2);
    // HPERSIST clears; a field without a deadline has none to clear.
    let persisted = keys
        .hash_persist(&b("h"), &names(&["a", "a", "z"]))
        .unwrap();
    assert_eq!(
        persisted.wait().await.unwrap(),
        [
            FieldPersist::Persisted,
            FieldPersist::NoDeadline,
            FieldPersist::Missing
        ]
    );
    // HSET of a field clears its deadline; HINCRBY keeps it.
    expire(&keys, "h", &["a", "b"], later, Always).await;
    hset(&keys, "h", &[("a", "10")]).await;
    keys.hash_increment(&b("h"), &b("b"), 1)
        .unwrap()
        .wait()
        .await
        .unwrap();
    assert_eq!(
        deadlines(&keys, "h", &["a", "b"]),
        [FieldDeadline::Forever, FieldDeadline::At(later)]
    );
    // The last field deleted by a past deadline takes the key.
    expire(&keys, "h", &["a", "b"], 1, Always).await;
    assert_eq!(keys.kind(b"h"), None);
}

#[tokio::test]
async fn fields_vanish_on_access_and_by_the_sweep_and_listeners_are_told() {
    let dir = tempfile::tempdir().unwrap();
    let (state, keys) = reopen(dir.path()).await;
    let mut expirations = keys.expirations();
    hset(&keys, "read", &[("a", "1"), ("keep", "2")]).await;
    hset(&keys, "swept", &[("a", "1"), ("b", "2")]).await;
    let soon = now_ms() + 400;
    expire(&keys, "read", &["a"], soon, ExpireCondition::Always).await;
    expire(&keys, "swept", &["a", "b"], soon, ExpireCondition::Always).await;
    assert_eq!(keys.hash_get(b"read", &[b("a")]).unwrap(), [Some(b("1"))]);
    let wait = (soon + 20 - now_ms()).max(0) as u64;
    tokio::time::sleep(Duration::from_millis(wait)).await;
    // Read before any sweep could run: gone on access, the other field kept.
    let read = keys.hash_all(b"read").unwrap();
    assert_eq!(read, [(b("keep"), b("2"))]);
    tokio::time::sleep(SWEEP_INTERVAL * 3).await;
    // Every field of "swept" went, so the key went.
    assert_eq!(keys.kind(b"swept"), None);
    assert_eq!(keys.len(), 1);
    let mut told = vec![
        expirations.try_recv().unwrap(),
        expirations.try_recv().unwrap(),
    ];
    told.sort_by_key(|expiration| format!("{expiration:?}"));
    assert_eq!(
        told,
        [
            Expiration::Fields {
                key: b("read"),
                fields: 1,
                emptied: false
            },
            Expiration::Fields {
                key: b("swept"),
                fields: 2,
                emptied: true
            },
        ]
    );
    // Nothing of the expired fields is left on disk.
    drop(keys);
    let rows = state.scan_prefix(HASH_FIELD_DEADLINES_TABLE, "").unwrap();
    assert!(rows.is_empty(), "{rows:?}");
    assert_eq!(state.scan_prefix(HASH_FIELDS_TABLE, "").unwrap().len(), 1);
}

#[tokio::test]
async fn deadlines_survive_a_reopen_renames_and_copies() {
    let dir = tempfile::tempdir().unwrap();
    let later = now_ms() + 100_000;
    {
        let (_state, keys) = reopen(dir.path()).await;
        hset(&keys, "h", &[("a", "1"), ("b", "2"), ("c", "3")]).await;
        expire(&keys, "h", &["a", "c"], later, ExpireCondition::Always).await;
        keys.hash_persist(&b("h"), &names(&["c"]))
            .unwrap()
            .wait()
            .await
            .unwrap();
        let copied = keys.copy(&b("h"), &b("copy"), false).unwrap();
        copied.wait().await.unwrap();
        let renamed = keys.rename(&b("h"), &b("moved"), false).unwrap();
        renamed.wait().await.unwrap();
    }
    let (_state, keys) = reopen(dir.path()).await;
    for key in ["copy", "moved"] {
        assert_eq!(
            deadlines(&keys, key, &["a", "b", "c"]),
            [
                FieldDeadline::At(later),
                FieldDeadline::Forever,
                FieldDeadline::Forever
            ],
            "{key}"
        );
    }
    assert_eq!(deadlines(&keys, "h", &["a"]), [FieldDeadline::Missing]);
    // The index came back with them: a field given a near deadline is swept.
    expire(
        &keys,
        "moved",
        &["b"],
        now_ms() + 50,
        ExpireCondition::Always,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(60) + SWEEP_INTERVAL * 3).await;
    assert_eq!(keys.hash_len(b"moved").unwrap(), 2);
}

#[tokio::test]
async fn a_deleted_hash_takes_its_deadlines_and_the_index_follows_every_change() {
    let dir = tempfile::tempdir().unwrap();
    let (state, keys) = reopen(dir.path()).await;
    hset(&keys, "h", &[("a", "1"), ("b", "2")]).await;
    let later = now_ms() + 100_000;
    expire(&keys, "h", &["a"], later + 10, ExpireCondition::Always).await;
    expire(&keys, "h", &["b"], later, ExpireCondition::Always).await;
    let index = |keys: &Keyspace| keys.lock().field_deadlines.clone();
    assert_eq!(
        index(&keys).into_iter().collect::<Vec<_>>(),
        [(later, b("h"))]
    );
    keys.hash_delete(&b("h"), &[b("b")])
        .unwrap()
        .wait()
        .await
        .unwrap();
    assert_eq!(
        index(&keys).into_iter().collect::<Vec<_>>(),
        [(later + 10, b("h"))]
    );
    keys.delete(&[b("h")]).unwrap().wait().await.unwrap();
    assert!(index(&keys).is_empty());
    assert!(state
        .scan_prefix(HASH_FIELD_DEADLINES_TABLE, "")
        .unwrap()
        .is_empty());
}
