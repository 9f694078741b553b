use std::time::Duration;

use bytes::Bytes;

use super::*;
use crate::EngineError;

fn b(text: &str) -> Bytes {
    Bytes::copy_from_slice(text.as_bytes())
}

async fn open(dir: &std::path::Path) -> (Arc<StateStore>, Arc<Keyspace>) {
    let state = Arc::new(StateStore::open(&dir.join("state.redb")).expect("open state"));
    let keyspace = Keyspace::open(state.clone()).expect("open keyspace");
    (state, keyspace)
}

/// Opens the store again once the last keyspace's writer task has let go of it (it does when
/// it sees the keyspace gone): tried until it opens, for at most 10 s.
pub(super) async fn reopen(dir: &std::path::Path) -> (Arc<StateStore>, Arc<Keyspace>) {
    let path = dir.join("state.redb");
    let started = std::time::Instant::now();
    let state = loop {
        match StateStore::open(&path) {
            Ok(state) => break Arc::new(state),
            Err(error) if started.elapsed() > Duration::from_secs(10) => panic!("{error}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    };
    let keyspace = Keyspace::open(state.clone()).expect("open keyspace");
    (state, keyspace)
}

#[tokio::test]
async fn set_get_conditions_and_durability_across_reopen() {
    let dir = tempfile::tempdir().expect("temp dir");
    {
        let (_state, keys) = open(dir.path()).await;
        let outcome = keys
            .set(b("a"), b("1"), SetOptions::default())
            .unwrap()
            .wait()
            .await
            .unwrap();
        assert!(outcome.written);
        let nx = SetOptions {
            condition: SetCondition::IfAbsent,
            ..SetOptions::default()
        };
        let refused = keys.set(b("a"), b("2"), nx).unwrap().wait().await.unwrap();
        assert_eq!((refused.written, refused.old), (false, Some(b("1"))));
        let xx = SetOptions {
            condition: SetCondition::IfPresent,
            ..SetOptions::default()
        };
        assert!(
            !keys
                .set(b("missing"), b("x"), xx)
                .unwrap()
                .wait()
                .await
                .unwrap()
                .written
        );
        assert_eq!(
            keys.increment(&b("n"), 5).unwrap().wait().await.unwrap(),
            Increment::Value(5)
        );
        assert_eq!(
            keys.increment(&b("a"), i64::MAX)
                .unwrap()
                .wait()
                .await
                .unwrap(),
            Increment::Overflow
        );
        assert_eq!(keys.append(&b("a"), b"x").unwrap().wait().await.unwrap(), 2);
        assert_eq!(
            keys.increment(&b("a"), 1).unwrap().wait().await.unwrap(),
            Increment::NotAnInteger
        );
        assert_eq!(
            keys.delete(&[b("n"), b("n"), b("zz")])
                .unwrap()
                .wait()
                .await
                .unwrap(),
            1
        );
        let later = now_ms() + 60_000;
        let expiring = SetOptions {
            expiry: SetExpiry::At(later),
            ..SetOptions::default()
        };
        keys.set(Bytes::from_static(b"binary\0\xff"), b("v"), expiring)
            .unwrap()
            .wait()
            .await
            .unwrap();
    }
    // Reopened from the state store alone: what was acknowledged is there.
    let (_state, keys) = reopen(dir.path()).await;
    assert_eq!(keys.get(b"a"), Some(b("1x")));
    assert_eq!(keys.get(b"n"), None);
    assert!(matches!(
        keys.time_to_live(b"binary\0\xff"),
        TimeToLive::Milliseconds(ms) if ms > 50_000
    ));
    assert_eq!(keys.time_to_live(b"a"), TimeToLive::Forever);
    assert_eq!(keys.time_to_live(b"nothing"), TimeToLive::Missing);
}

#[tokio::test]
async fn expired_keys_vanish_on_read_by_the_sweep_and_from_disk() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (state, keys) = open(dir.path()).await;
    let mut expirations = keys.expirations();
    // Far enough ahead that three fsynced sets finish first on a loaded machine.
    let expires_at = now_ms() + 1_000;
    let soon = SetOptions {
        expiry: SetExpiry::At(expires_at),
        ..SetOptions::default()
    };
    keys.set(b("read"), b("1"), soon)
        .unwrap()
        .wait()
        .await
        .unwrap();
    keys.set(b("swept"), b("1"), soon)
        .unwrap()
        .wait()
        .await
        .unwrap();
    keys.set(b("kept"), b("1"), SetOptions::default())
        .unwrap()
        .wait()
        .await
        .unwrap();
    assert_eq!(keys.len(), 3);
    let until_expired = (expires_at + 30 - now_ms()).max(0) as u64;
    tokio::time::sleep(Duration::from_millis(until_expired)).await;
    assert_eq!(keys.get(b"read"), None);
    // The sweep runs every 100 ms and deletes the other without anyone reading it.
    tokio::time::sleep(SWEEP_INTERVAL * 3).await;
    assert_eq!(keys.len(), 1);
    assert_eq!(state.scan_prefix(KEYS_TABLE, "").unwrap().len(), 1);
    // Each deletion was told once, in order: the read's, then the sweep's.
    assert_eq!(expirations.try_recv().unwrap(), Expiration::Key(b("read")));
    assert_eq!(expirations.try_recv().unwrap(), Expiration::Key(b("swept")));
    assert!(expirations.try_recv().is_err());
}

#[tokio::test]
async fn a_key_rewritten_with_the_deadline_it_had_still_expires() {
    // What a rate limiter does: INCR a counter that has a TTL, many times within it.
    let dir = tempfile::tempdir().expect("temp dir");
    let (_state, keys) = open(dir.path()).await;
    let expires_at = now_ms() + 300;
    let options = SetOptions {
        expiry: SetExpiry::At(expires_at),
        ..SetOptions::default()
    };
    keys.set(b("limiter"), b("1"), options)
        .unwrap()
        .wait()
        .await
        .unwrap();
    keys.set(b("cached"), b("1"), options)
        .unwrap()
        .wait()
        .await
        .unwrap();
    for _ in 0..3 {
        keys.increment(&b("limiter"), 1)
            .unwrap()
            .wait()
            .await
            .unwrap();
    }
    let keep = SetOptions {
        expiry: SetExpiry::Keep,
        ..SetOptions::default()
    };
    keys.set(b("cached"), b("2"), keep)
        .unwrap()
        .wait()
        .await
        .unwrap();
    assert_eq!(keys.get(b"limiter"), Some(b("4")));
    let until_expired = (expires_at + 30 - now_ms()).max(0) as u64;
    tokio::time::sleep(Duration::from_millis(until_expired)).await;
    assert_eq!(keys.get(b"limiter"), None, "INCR kept the TTL; it expired");
    assert_eq!(
        keys.get(b"cached"),
        None,
        "SET KEEPTTL kept the TTL; it expired"
    );
}

#[tokio::test]
async fn expire_conditions_follow_redis() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_state, keys) = open(dir.path()).await;
    let key = b("k");
    keys.set(key.clone(), b("v"), SetOptions::default())
        .unwrap()
        .wait()
        .await
        .unwrap();
    let t = now_ms() + 100_000;
    assert!(!keys
        .expire(&key, Some(t), ExpireCondition::IfSome)
        .unwrap()
        .wait()
        .await
        .unwrap());
    assert!(!keys
        .expire(&key, Some(t), ExpireCondition::IfLater)
        .unwrap()
        .wait()
        .await
        .unwrap());
    assert!(keys
        .expire(&key, Some(t), ExpireCondition::IfNone)
        .unwrap()
        .wait()
        .await
        .unwrap());
    assert!(!keys
        .expire(&key, Some(t - 1), ExpireCondition::IfLater)
        .unwrap()
        .wait()
        .await
        .unwrap());
    assert!(keys
        .expire(&key, Some(t + 1), ExpireCondition::IfLater)
        .unwrap()
        .wait()
        .await
        .unwrap());
    assert!(keys
        .expire(&key, Some(t - 5), ExpireCondition::IfEarlier)
        .unwrap()
        .wait()
        .await
        .unwrap());
    // PERSIST, then PERSIST again changes nothing.
    assert!(keys
        .expire(&key, None, ExpireCondition::Always)
        .unwrap()
        .wait()
        .await
        .unwrap());
    assert!(!keys
        .expire(&key, None, ExpireCondition::Always)
        .unwrap()
        .wait()
        .await
        .unwrap());
    // A deadline in the past deletes.
    assert!(keys
        .expire(&key, Some(1), ExpireCondition::Always)
        .unwrap()
        .wait()
        .await
        .unwrap());
    assert_eq!(keys.get(b"k"), None);
}

#[tokio::test]
async fn scan_walks_every_key_with_a_cursor_and_a_pattern() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_state, keys) = open(dir.path()).await;
    let pairs = (0..25)
        .map(|i| (b(&format!("user:{i}")), b("x")))
        .chain([(b("other"), b("y"))])
        .collect();
    keys.set_many(pairs).unwrap().wait().await.unwrap();
    let mut cursor = 0;
    let mut found = Vec::new();
    loop {
        let (next, batch) = keys.scan(cursor, Some(b"user:*"), None, 10);
        found.extend(batch);
        if next == 0 {
            break;
        }
        cursor = next;
    }
    assert_eq!(found.len(), 25);
    keys.clear().unwrap().wait().await.unwrap();
    assert!(keys.is_empty());
}

#[tokio::test]
async fn a_scan_returns_every_key_present_throughout_while_keys_come_and_go() {
    // The delete-by-pattern loop: each page's keys deleted before the next page is asked
    // for, and new keys added meanwhile. A cursor that counted keys skipped half of them.
    let dir = tempfile::tempdir().expect("temp dir");
    let (_state, keys) = open(dir.path()).await;
    let pairs = (0..1000)
        .map(|i| (b(&format!("job:{i}")), b("x")))
        .collect();
    keys.set_many(pairs).unwrap().wait().await.unwrap();
    let (mut cursor, mut seen, mut added) = (0, std::collections::HashSet::new(), 0);
    loop {
        let (next, batch) = keys.scan(cursor, Some(b"job:*"), None, 10);
        keys.delete(&batch).unwrap().wait().await.unwrap();
        seen.extend(batch);
        keys.set(
            b(&format!("job:new:{added}")),
            b("y"),
            SetOptions::default(),
        )
        .unwrap()
        .wait()
        .await
        .unwrap();
        added += 1;
        if next == 0 {
            break;
        }
        cursor = next;
    }
    for i in 0..1000 {
        assert!(
            seen.contains(&b(&format!("job:{i}"))),
            "job:{i} never returned"
        );
    }
    assert_eq!(
        keys.len(),
        added - seen.iter().filter(|k| k.starts_with(b"job:new:")).count()
    );
}

#[tokio::test]
async fn mset_is_all_or_nothing_and_msetnx_writes_only_when_no_key_exists() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_state, keys) = open(dir.path()).await;
    keys.set(b("kept"), b("old"), SetOptions::default())
        .unwrap()
        .wait()
        .await
        .unwrap();
    // A value past the keyspace's bound (zeroed pages the test never touches) refuses the
    // whole MSET: the pairs before it are not left behind in memory.
    let huge = Bytes::from(vec![0u8; KEYSPACE_BYTES_MAX as usize + 1]);
    let refused = keys.set_many(vec![
        (b("kept"), b("new")),
        (b("first"), b("1")),
        (b("huge"), huge),
    ]);
    assert!(matches!(refused, Err(EngineError::LimitExceeded(_))));
    assert_eq!(keys.get(b"kept"), Some(b("old")));
    assert_eq!(keys.get(b"first"), None);
    assert_eq!(keys.len(), 1);

    let written = keys
        .set_many_if_absent(vec![(b("a"), b("1")), (b("b"), b("2"))])
        .unwrap()
        .wait()
        .await
        .unwrap();
    assert!(written);
    let written = keys
        .set_many_if_absent(vec![(b("c"), b("3")), (b("a"), b("other"))])
        .unwrap()
        .wait()
        .await
        .unwrap();
    assert!(!written, "'a' exists");
    assert_eq!(keys.get(b"a"), Some(b("1")));
    assert_eq!(keys.get(b"c"), None);
}

#[tokio::test]
async fn getex_changes_the_deadline_and_answers_the_value_durably() {
    let dir = tempfile::tempdir().expect("temp dir");
    {
        let (_state, keys) = open(dir.path()).await;
        keys.set(b("k"), b("v"), SetOptions::default())
            .unwrap()
            .wait()
            .await
            .unwrap();
        assert_eq!(keys.deadline(b"k"), Some(None));
        assert_eq!(keys.deadline(b"missing"), None);
        let far = now_ms() + 3_600_000;
        let value = keys
            .get_and_expire(&b("k"), Some(Some(far)))
            .unwrap()
            .wait()
            .await
            .unwrap();
        assert_eq!(value, Some(b("v")));
        assert_eq!(keys.deadline(b"k"), Some(Some(far)));
        // No change asked: a plain GET.
        let value = keys.get_and_expire(&b("k"), None).unwrap().wait().await;
        assert_eq!(value.unwrap(), Some(b("v")));
        assert_eq!(keys.deadline(b"k"), Some(Some(far)));
    }
    // The deadline was committed before the reply: it survives a reopen.
    let (_state, keys) = reopen(dir.path()).await;
    assert!(keys.deadline(b"k").unwrap().is_some());
    let value = keys
        .get_and_expire(&b("k"), Some(None))
        .unwrap()
        .wait()
        .await;
    assert_eq!(value.unwrap(), Some(b("v")));
    assert_eq!(keys.deadline(b"k"), Some(None), "PERSIST");
    // A deadline already past deletes the key, and still answers its value.
    let value = keys
        .get_and_expire(&b("k"), Some(Some(1)))
        .unwrap()
        .wait()
        .await;
    assert_eq!(value.unwrap(), Some(b("v")));
    assert_eq!(keys.get(b"k"), None);
    let value = keys
        .get_and_expire(&b("k"), Some(None))
        .unwrap()
        .wait()
        .await;
    assert_eq!(value.unwrap(), None);
}
