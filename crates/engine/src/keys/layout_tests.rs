//! The forms Redis would hold collections in (`layout.rs`), through the keyspace's commands:
//! what OBJECT ENCODING answers and HSCAN and kin follow.

use bytes::Bytes;

use super::tests::reopen;
use super::*;

fn b(text: &str) -> Bytes {
    Bytes::copy_from_slice(text.as_bytes())
}

fn all(texts: &[&str]) -> Vec<Bytes> {
    texts.iter().map(|text| b(text)).collect()
}

fn encoding(keys: &Keyspace, key: &str) -> &'static str {
    keys.object(key.as_bytes()).expect("the key").encoding
}

#[tokio::test]
async fn collections_convert_one_way_as_redis_converts_them() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_state, keys) = reopen(dir.path()).await;
    let long = "x".repeat(65);

    // A hash: a listpack until a value passes 64 bytes, a hashtable after it is gone.
    keys.hash_set(&b("h"), vec![(b("f"), b("v"))], false)
        .unwrap()
        .wait()
        .await
        .unwrap();
    assert_eq!(encoding(&keys, "h"), "listpack");
    keys.hash_set(&b("h"), vec![(b("g"), b(&long))], false)
        .unwrap()
        .wait()
        .await
        .unwrap();
    assert_eq!(encoding(&keys, "h"), "hashtable");
    keys.hash_delete(&b("h"), &all(&["g"]))
        .unwrap()
        .wait()
        .await
        .unwrap();
    assert_eq!(encoding(&keys, "h"), "hashtable");

    // A set: integers, then a listpack with a word, then a hashtable past 128 members.
    keys.set_add(&b("s"), all(&["1", "2", "-3"]))
        .unwrap()
        .wait()
        .await
        .unwrap();
    assert_eq!(encoding(&keys, "s"), "intset");
    keys.set_add(&b("s"), all(&["a"]))
        .unwrap()
        .wait()
        .await
        .unwrap();
    assert_eq!(encoding(&keys, "s"), "listpack");
    keys.set_remove(&b("s"), &all(&["a"]))
        .unwrap()
        .wait()
        .await
        .unwrap();
    assert_eq!(encoding(&keys, "s"), "listpack", "never back to an intset");
    let many: Vec<Bytes> = (0..130).map(|n| b(&format!("m{n}"))).collect();
    keys.set_add(&b("s"), many).unwrap().wait().await.unwrap();
    assert_eq!(encoding(&keys, "s"), "hashtable");
    // "01" is not an integer to Redis.
    keys.set_add(&b("t"), all(&["01"]))
        .unwrap()
        .wait()
        .await
        .unwrap();
    assert_eq!(encoding(&keys, "t"), "listpack");

    // A sorted set with a long member is a skiplist; none when the limit is 0.
    let options = ZAddOptions::default();
    keys.zset_add(&b("z"), vec![(1.0, b("a"))], options)
        .unwrap()
        .wait()
        .await
        .unwrap();
    assert_eq!(encoding(&keys, "z"), "listpack");
    keys.zset_add(&b("z"), vec![(2.0, b(&long))], options)
        .unwrap()
        .wait()
        .await
        .unwrap();
    assert_eq!(encoding(&keys, "z"), "skiplist");
    keys.update_layout_limits(|limits| limits.zset_entries = 0);
    keys.zset_add(&b("y"), vec![(1.0, b("a"))], options)
        .unwrap()
        .wait()
        .await
        .unwrap();
    assert_eq!(encoding(&keys, "y"), "skiplist");

    // A list of three a node: a quicklist at four, a listpack again at one; LSET of a full
    // listpack converts it, as Redis checks it as an addition.
    keys.update_layout_limits(|limits| limits.list_size = 3);
    keys.push(&b("l"), all(&["a", "b", "c"]), End::Right, false)
        .unwrap()
        .wait()
        .await
        .unwrap();
    assert_eq!(encoding(&keys, "l"), "listpack");
    keys.set_at(&b("l"), 0, b("z"))
        .unwrap()
        .wait()
        .await
        .unwrap();
    assert_eq!(encoding(&keys, "l"), "quicklist");
    keys.pop(&b("l"), End::Right, 2)
        .unwrap()
        .wait()
        .await
        .unwrap();
    assert_eq!(encoding(&keys, "l"), "listpack");
    keys.push(&b("l"), all(&["b", "c", "d"]), End::Right, false)
        .unwrap()
        .wait()
        .await
        .unwrap();
    assert_eq!(encoding(&keys, "l"), "quicklist");

    // A restart reads each collection back in its most compact form, at the defaults (as
    // redis-server loading its file): the hash and the set fit again.
    keys.hash_delete(&b("h"), &all(&["f"]))
        .unwrap()
        .wait()
        .await
        .unwrap();
    keys.hash_set(&b("h"), vec![(b("f"), b("v"))], false)
        .unwrap()
        .wait()
        .await
        .unwrap();
    drop(keys);
    drop(_state);
    let (_state, keys) = reopen(dir.path()).await;
    assert_eq!(encoding(&keys, "h"), "listpack");
    assert_eq!(encoding(&keys, "z"), "skiplist");
    assert_eq!(encoding(&keys, "y"), "listpack");
    assert_eq!(encoding(&keys, "l"), "listpack");
    assert_eq!(keys.layout_limits(), LayoutLimits::default());
}

#[tokio::test]
async fn scans_answer_a_compact_collection_whole() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_state, keys) = reopen(dir.path()).await;
    // 300 fields: a listpack at Redis's default of 512, so HSCAN answers all at once.
    let pairs: Vec<_> = (0..300).map(|n| (b(&format!("f{n}")), b("v"))).collect();
    keys.hash_set(&b("h"), pairs, false)
        .unwrap()
        .wait()
        .await
        .unwrap();
    let (cursor, fields) = keys.hash_scan(b"h", 0, None, 10).unwrap();
    assert_eq!((cursor, fields.len()), (0, 300));
    // Once a hashtable, pages of about COUNT.
    keys.hash_set(&b("h"), vec![(b("big"), b(&"x".repeat(100)))], false)
        .unwrap()
        .wait()
        .await
        .unwrap();
    let (cursor, fields) = keys.hash_scan(b"h", 0, None, 10).unwrap();
    assert_ne!(cursor, 0);
    assert!(fields.len() < 301, "{}", fields.len());

    // A set of 200 integers is an intset (up to 512): whole.
    let members: Vec<Bytes> = (0..200).map(|n| b(&n.to_string())).collect();
    keys.set_add(&b("s"), members)
        .unwrap()
        .wait()
        .await
        .unwrap();
    assert_eq!(encoding(&keys, "s"), "intset");
    let (cursor, members) = keys.set_scan(b"s", 0, None, 10).unwrap();
    assert_eq!((cursor, members.len()), (0, 200));
}

#[tokio::test]
async fn a_lists_listpack_bytes_follow_every_change() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_state, keys) = reopen(dir.path()).await;
    let (l, m) = (b("l"), b("m"));
    // Elements of every listpack size class: small and large integers, short, 64+ and
    // 4096+ byte strings.
    let long = "y".repeat(70);
    let longer = "z".repeat(5000);
    let elements = ["1", "-5000", "70000", "9000000000", "word", &long, &longer];
    for round in 0..40usize {
        let element = b(elements[round % elements.len()]);
        let _ = keys
            .push(&l, vec![element.clone(), b("1")], End::Left, false)
            .unwrap();
        match round % 6 {
            0 => drop(keys.pop(&l, End::Right, 1).unwrap()),
            1 => drop(keys.set_at(&l, 0, b(elements[(round + 3) % 7])).unwrap()),
            2 => drop(keys.insert(&l, true, b"1", b("word")).unwrap()),
            3 => drop(keys.remove_matching(&l, 2, b"1").unwrap()),
            4 => drop(keys.move_item(&l, &m, End::Left, End::Right).unwrap()),
            _ => drop(keys.trim(&l, 0, 9).unwrap()),
        }
    }
    let mut inner = keys.lock();
    for key in [&l, &m] {
        let list = inner
            .collection_mut::<super::entry::List>(key)
            .expect("a list");
        let counted: u64 = list
            .items
            .iter()
            .map(|item| super::layout::listpack_entry_bytes(item))
            .sum();
        assert_eq!(list.packed, counted, "{key:?}");
    }
}
