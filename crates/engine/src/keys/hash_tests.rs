use bytes::Bytes;

use super::*;
use crate::EngineError;

fn b(text: &str) -> Bytes {
    Bytes::copy_from_slice(text.as_bytes())
}

fn pairs(items: &[(&str, &str)]) -> Vec<(Bytes, Bytes)> {
    items.iter().map(|(f, v)| (b(f), b(v))).collect()
}

/// The keyspace in `dir`, opened once the last one let go of its store.
async fn open(dir: &std::path::Path) -> Arc<Keyspace> {
    super::tests::reopen(dir).await.1
}

async fn set(keys: &Keyspace, key: &str, items: &[(&str, &str)]) -> usize {
    keys.hash_set(&b(key), pairs(items), false)
        .unwrap()
        .wait()
        .await
        .unwrap()
}

#[tokio::test]
async fn fields_keep_the_order_they_were_first_set_in_across_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let expected;
    {
        let keys = open(dir.path()).await;
        assert_eq!(
            set(&keys, "h", &[("c", "1"), ("a", "2"), ("b", "3")]).await,
            3
        );
        // An update keeps its place; a new field goes last; HSETNX leaves a field alone.
        assert_eq!(set(&keys, "h", &[("a", "20"), ("d", "4")]).await, 1);
        let kept = keys.hash_set(&b("h"), pairs(&[("c", "x")]), true).unwrap();
        assert_eq!(kept.wait().await.unwrap(), 0);
        let removed = keys.hash_delete(&b("h"), &[b("c"), b("nope")]).unwrap();
        assert_eq!(removed.wait().await.unwrap(), 1);
        let counted = keys.hash_increment(&b("h"), &b("n"), 5).unwrap();
        assert_eq!(counted.wait().await.unwrap(), Increment::Value(5));
        let counted = keys.hash_increment(&b("h"), &b("a"), -21).unwrap();
        assert_eq!(counted.wait().await.unwrap(), Increment::Value(-1));
        let refused = keys.hash_increment(&b("h"), &b("n"), i64::MAX).unwrap();
        assert_eq!(refused.wait().await.unwrap(), Increment::Overflow);
        set(&keys, "words", &[("w", "not a number")]).await;
        let refused = keys.hash_increment(&b("words"), &b("w"), 1).unwrap();
        assert_eq!(refused.wait().await.unwrap(), Increment::NotAnInteger);
        expected = keys.hash_all(b"h").unwrap();
        assert_eq!(
            expected,
            pairs(&[("a", "-1"), ("b", "3"), ("d", "4"), ("n", "5")])
        );
        assert_eq!(keys.kind(b"h"), Some(KeyKind::Hash));
    }
    let keys = open(dir.path()).await;
    assert_eq!(keys.hash_all(b"h").unwrap(), expected);
    // New fields after a reopen still go last.
    set(&keys, "h", &[("e", "5")]).await;
    let all = keys.hash_all(b"h").unwrap();
    assert_eq!(all.last(), Some(&(b("e"), b("5"))));
    let bytes: usize = keys
        .lock()
        .entries
        .iter()
        .map(|(key, entry)| key.len() + entry.size() as usize)
        .sum();
    assert_eq!(keys.lock().bytes as usize, bytes);
}

#[tokio::test]
async fn the_last_field_deleted_deletes_the_key_and_kinds_refuse_each_other() {
    let dir = tempfile::tempdir().unwrap();
    {
        let keys = open(dir.path()).await;
        set(&keys, "h", &[("f", "v")]).await;
        keys.push(&b("l"), vec![b("x")], End::Left, false)
            .unwrap()
            .wait()
            .await
            .unwrap();
        assert!(matches!(keys.hash_len(b"l"), Err(EngineError::WrongKind)));
        assert!(matches!(keys.list_len(b"h"), Err(EngineError::WrongKind)));
        assert_eq!(keys.get(b"h"), None);
        let refused = keys.hash_set(&b("l"), pairs(&[("f", "v")]), false);
        assert!(matches!(refused, Err(EngineError::WrongKind)));
        let removed = keys.hash_delete(&b("h"), &[b("f")]).unwrap();
        assert_eq!(removed.wait().await.unwrap(), 1);
        assert_eq!(keys.kind(b"h"), None);
        // SET replaces a hash whole.
        set(&keys, "g", &[("f", "v")]).await;
        keys.set(b("g"), b("string"), SetOptions::default())
            .unwrap()
            .wait()
            .await
            .unwrap();
    }
    let keys = open(dir.path()).await;
    assert_eq!(keys.kind(b"h"), None);
    assert_eq!(keys.get(b"g"), Some(b("string")));
    assert_eq!(keys.len(), 2);
}

#[tokio::test]
async fn hscan_answers_a_small_hash_whole_and_a_big_one_in_pages() {
    let dir = tempfile::tempdir().unwrap();
    let keys = open(dir.path()).await;
    set(&keys, "small", &[("a1", "1"), ("b1", "2"), ("a2", "3")]).await;
    let (next, found) = keys.hash_scan(b"small", 0, Some(b"a*"), 1).unwrap();
    assert_eq!((next, found), (0, pairs(&[("a1", "1"), ("a2", "3")])));
    let many: Vec<(Bytes, Bytes)> = (0..500)
        .map(|i| (b(&format!("f{i}")), b(&i.to_string())))
        .collect();
    keys.hash_set(&b("big"), many.clone(), false)
        .unwrap()
        .wait()
        .await
        .unwrap();
    let (mut cursor, mut seen) = (0, Vec::new());
    loop {
        let (next, found) = keys.hash_scan(b"big", cursor, None, 64).unwrap();
        seen.extend(found);
        if next == 0 {
            break;
        }
        cursor = next;
    }
    assert_eq!(seen, many);
}

#[tokio::test]
async fn float_increments_store_the_sum_as_text_and_refuse_what_is_not_a_number() {
    let dir = tempfile::tempdir().unwrap();
    let keys = open(dir.path()).await;
    let added = keys.hash_increment_float(&b("h"), &b("t"), 10.5).unwrap();
    assert_eq!(
        added.wait().await.unwrap(),
        FloatIncrement::Value(b("10.5"))
    );
    let added = keys.hash_increment_float(&b("h"), &b("t"), -0.25).unwrap();
    assert_eq!(
        added.wait().await.unwrap(),
        FloatIncrement::Value(b("10.25"))
    );
    set(&keys, "h", &[("word", "abc")]).await;
    let refused = keys.hash_increment_float(&b("h"), &b("word"), 1.0).unwrap();
    assert_eq!(refused.wait().await.unwrap(), FloatIncrement::NotAFloat);
    let refused = keys
        .hash_increment_float(&b("h"), &b("t"), f64::INFINITY)
        .unwrap();
    assert_eq!(refused.wait().await.unwrap(), FloatIncrement::NotFinite);
    let whole = keys.increment_float(&b("n"), 3.0).unwrap();
    assert_eq!(whole.wait().await.unwrap(), FloatIncrement::Value(b("3")));
    let large = keys.increment_float(&b("n"), 1e20).unwrap();
    assert_eq!(
        large.wait().await.unwrap(),
        FloatIncrement::Value(b("100000000000000000000")),
        "never an exponent"
    );
    assert_eq!(
        keys.hash_get(b"h", &[b("t")]).unwrap(),
        vec![Some(b("10.25"))]
    );
}

#[tokio::test]
async fn hscan_returns_every_field_present_throughout_while_fields_are_deleted() {
    // HSCAN a page, HDEL it, ask for the next: a cursor counting fields skipped half.
    let dir = tempfile::tempdir().unwrap();
    let keys = open(dir.path()).await;
    let fields: Vec<(Bytes, Bytes)> = (0..500).map(|i| (b(&format!("f{i}")), b("v"))).collect();
    keys.hash_set(&b("h"), fields, false)
        .unwrap()
        .wait()
        .await
        .unwrap();
    let (mut cursor, mut seen) = (0, std::collections::HashSet::new());
    loop {
        let (next, page) = keys.hash_scan(b"h", cursor, None, 10).unwrap();
        let names: Vec<Bytes> = page.into_iter().map(|(field, _)| field).collect();
        keys.hash_delete(&b("h"), &names)
            .unwrap()
            .wait()
            .await
            .unwrap();
        seen.extend(names);
        if next == 0 {
            break;
        }
        cursor = next;
    }
    assert_eq!(seen.len(), 500);
    assert_eq!(keys.hash_len(b"h").unwrap(), 0);
}
