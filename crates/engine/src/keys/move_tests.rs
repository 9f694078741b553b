//! RENAME, RENAMENX and COPY (`moves.rs`).

use bytes::Bytes;

use super::tests::reopen;
use super::*;

fn b(text: &str) -> Bytes {
    Bytes::copy_from_slice(text.as_bytes())
}

/// One key of each kind, `{name}.string` … `{name}.zset`; the string expires in an hour.
async fn fill(keys: &Keyspace, name: &str) {
    let expiry = SetOptions {
        expiry: SetExpiry::At(now_ms() + 3_600_000),
        ..SetOptions::default()
    };
    let key = |kind: &str| b(&format!("{name}.{kind}"));
    keys.set(key("string"), b("text"), expiry)
        .unwrap()
        .wait()
        .await
        .unwrap();
    keys.push(&key("list"), vec![b("a"), b("b")], End::Right, false)
        .unwrap()
        .wait()
        .await
        .unwrap();
    keys.hash_set(&key("hash"), vec![(b("f"), b("v"))], false)
        .unwrap()
        .wait()
        .await
        .unwrap();
    keys.set_add(&key("set"), vec![b("m1"), b("m2")])
        .unwrap()
        .wait()
        .await
        .unwrap();
    keys.zset_add(&key("zset"), vec![(1.5, b("z"))], ZAddOptions::default())
        .unwrap()
        .wait()
        .await
        .unwrap();
}

/// What every `{name}.*` key holds, as text, for comparing.
fn contents(keys: &Keyspace, name: &str) -> Vec<String> {
    let key = |kind: &str| format!("{name}.{kind}");
    vec![
        format!("{:?}", keys.get(key("string").as_bytes())),
        format!("{:?}", keys.range(key("list").as_bytes(), 0, -1).unwrap()),
        format!("{:?}", keys.hash_all(key("hash").as_bytes()).unwrap()),
        format!("{:?}", {
            let mut members = keys.set_members(key("set").as_bytes()).unwrap();
            members.sort();
            members
        }),
        format!(
            "{:?}",
            keys.zset_scores(key("zset").as_bytes(), &[b("z")]).unwrap()
        ),
    ]
}

const KINDS: [&str; 5] = ["string", "list", "hash", "set", "zset"];

#[tokio::test]
async fn rename_moves_every_kind_with_its_deadline_and_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let before;
    {
        let (_state, keys) = reopen(dir.path()).await;
        fill(&keys, "src").await;
        // The destinations hold other kinds: RENAME replaces them.
        for kind in KINDS {
            keys.set(b(&format!("dst.{kind}")), b("old"), SetOptions::default())
                .unwrap()
                .wait()
                .await
                .unwrap();
        }
        before = contents(&keys, "src");
        for kind in KINDS {
            let (from, to) = (b(&format!("src.{kind}")), b(&format!("dst.{kind}")));
            let renamed = keys
                .rename(&from, &to, false)
                .unwrap()
                .wait()
                .await
                .unwrap();
            assert_eq!(renamed, Renamed::Done, "{kind}");
            assert_eq!(keys.kind(&from), None, "{kind} still at its old name");
        }
        assert_eq!(contents(&keys, "dst"), before);
        assert!(matches!(
            keys.time_to_live(b"dst.string"),
            TimeToLive::Milliseconds(ms) if ms > 3_000_000
        ));
    }
    let (_state, keys) = reopen(dir.path()).await;
    assert_eq!(contents(&keys, "dst"), before);
    for kind in KINDS {
        assert_eq!(keys.kind(format!("src.{kind}").as_bytes()), None);
    }
}

#[tokio::test]
async fn renamenx_and_the_edge_cases() {
    let dir = tempfile::tempdir().unwrap();
    let (_state, keys) = reopen(dir.path()).await;
    fill(&keys, "a").await;
    fill(&keys, "b").await;
    let (from, to) = (b("a.list"), b("b.hash"));
    let refused = keys.rename(&from, &to, true).unwrap().wait().await.unwrap();
    assert_eq!(refused, Renamed::DestinationExists);
    assert_eq!(keys.kind(b"b.hash"), Some(KeyKind::Hash));
    let missing = keys
        .rename(&b("none"), &to, false)
        .unwrap()
        .wait()
        .await
        .unwrap();
    assert_eq!(missing, Renamed::Missing);
    let same = keys
        .rename(&from, &from, false)
        .unwrap()
        .wait()
        .await
        .unwrap();
    assert_eq!(same, Renamed::Done);
    assert_eq!(keys.list_len(b"a.list").unwrap(), 2);
    let same_nx = keys
        .rename(&from, &from, true)
        .unwrap()
        .wait()
        .await
        .unwrap();
    assert_eq!(same_nx, Renamed::DestinationExists);
    let moved = keys
        .rename(&from, &b("fresh"), true)
        .unwrap()
        .wait()
        .await
        .unwrap();
    assert_eq!(moved, Renamed::Done);
    assert_eq!(keys.list_len(b"fresh").unwrap(), 2);
}

#[tokio::test]
async fn copy_is_independent_keeps_the_deadline_and_replaces_only_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (_state, keys) = reopen(dir.path()).await;
        fill(&keys, "src").await;
        for kind in KINDS {
            let (from, to) = (b(&format!("src.{kind}")), b(&format!("dst.{kind}")));
            let copied = keys.copy(&from, &to, false).unwrap().wait().await.unwrap();
            assert_eq!(copied, Copied::Done, "{kind}");
        }
        assert_eq!(contents(&keys, "dst"), contents(&keys, "src"));
        assert!(matches!(
            keys.time_to_live(b"dst.string"),
            TimeToLive::Milliseconds(ms) if ms > 3_000_000
        ));
        // Changing the copy leaves the source.
        keys.set_add(&b("dst.set"), vec![b("m3")])
            .unwrap()
            .wait()
            .await
            .unwrap();
        assert_eq!(keys.set_len(b"src.set").unwrap(), 2);
        let refused = keys
            .copy(&b("src.list"), &b("dst.set"), false)
            .unwrap()
            .wait()
            .await
            .unwrap();
        assert_eq!(refused, Copied::DestinationExists);
        let replaced = keys
            .copy(&b("src.list"), &b("dst.set"), true)
            .unwrap()
            .wait()
            .await
            .unwrap();
        assert_eq!(replaced, Copied::Done);
        assert_eq!(keys.kind(b"dst.set"), Some(KeyKind::List));
        let missing = keys
            .copy(&b("none"), &b("x"), true)
            .unwrap()
            .wait()
            .await
            .unwrap();
        assert_eq!(missing, Copied::Missing);
    }
    let (_state, keys) = reopen(dir.path()).await;
    assert_eq!(keys.range(b"dst.set", 0, -1).unwrap(), vec![b("a"), b("b")]);
    assert_eq!(keys.set_len(b"src.set").unwrap(), 2);
    assert_eq!(keys.hash_all(b"dst.hash").unwrap(), vec![(b("f"), b("v"))]);
}

#[tokio::test]
async fn a_list_renamed_onto_a_blocked_key_serves_its_client() {
    let dir = tempfile::tempdir().unwrap();
    let (_state, keys) = reopen(dir.path()).await;
    let request = ListRequest::Pop {
        end: End::Left,
        count: 1,
    };
    let blocked = match keys.take_or_block(vec![b("jobs")], request).unwrap() {
        Taken::Blocked(blocked) => blocked,
        Taken::Now(_) => panic!("nothing to take yet"),
    };
    keys.push(&b("staging"), vec![b("job-1")], End::Right, false)
        .unwrap()
        .wait()
        .await
        .unwrap();
    keys.rename(&b("staging"), &b("jobs"), false)
        .unwrap()
        .wait()
        .await
        .unwrap();
    let served = blocked
        .wait(Some(std::time::Duration::from_secs(5)))
        .await
        .unwrap()
        .expect("served");
    assert_eq!(served.into_popped(), (b("jobs"), vec![b("job-1")]));
}
