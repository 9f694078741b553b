use bytes::Bytes;

use super::*;
use crate::EngineError;

fn b(text: &str) -> Bytes {
    Bytes::copy_from_slice(text.as_bytes())
}

fn all(items: &[&str]) -> Vec<Bytes> {
    items.iter().map(|item| b(item)).collect()
}

fn sorted(mut members: Vec<Bytes>) -> Vec<Bytes> {
    members.sort();
    members
}

async fn open(dir: &std::path::Path) -> Arc<Keyspace> {
    super::tests::reopen(dir).await.1
}

fn query(range: ZRange, reverse: bool, limit: Option<(usize, i64)>) -> ZQuery {
    ZQuery {
        range,
        reverse,
        limit,
    }
}

fn members(scored: Vec<Scored>) -> Vec<String> {
    scored
        .into_iter()
        .map(|(member, score)| format!("{}={score}", String::from_utf8_lossy(&member)))
        .collect()
}

#[tokio::test]
async fn sets_add_remove_move_and_combine_and_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let keys = open(dir.path()).await;
        let added = keys.set_add(&b("s"), all(&["a", "b", "c", "a"])).unwrap();
        assert_eq!(added.wait().await.unwrap(), 3);
        let removed = keys.set_remove(&b("s"), &all(&["c", "zz"])).unwrap();
        assert_eq!(removed.wait().await.unwrap(), 1);
        keys.set_add(&b("t"), all(&["b", "x"]))
            .unwrap()
            .wait()
            .await
            .unwrap();
        assert_eq!(
            keys.set_contains(b"s", &all(&["a", "c"])).unwrap(),
            vec![true, false]
        );
        assert_eq!(keys.set_len(b"s").unwrap(), 2);
        let union = keys.set_combine(SetOperation::Union, &all(&["s", "t", "none"]));
        assert_eq!(sorted(union.unwrap()), all(&["a", "b", "x"]));
        let inter = keys.set_combine(SetOperation::Intersection, &all(&["s", "t"]));
        assert_eq!(inter.unwrap(), all(&["b"]));
        let diff = keys.set_combine(SetOperation::Difference, &all(&["s", "t"]));
        assert_eq!(diff.unwrap(), all(&["a"]));
        // A missing key in an intersection empties it; the store then deletes the target.
        keys.set(b("target"), b("string"), SetOptions::default())
            .unwrap()
            .wait()
            .await
            .unwrap();
        let stored = keys
            .set_combine_store(
                SetOperation::Intersection,
                &b("target"),
                &all(&["s", "none"]),
            )
            .unwrap();
        assert_eq!(stored.wait().await.unwrap(), 0);
        assert_eq!(keys.kind(b"target"), None);
        let stored = keys
            .set_combine_store(SetOperation::Union, &b("u"), &all(&["s", "t"]))
            .unwrap();
        assert_eq!(stored.wait().await.unwrap(), 3);
        let moved = keys.set_move(&b("t"), &b("m"), &b("x")).unwrap();
        assert!(moved.wait().await.unwrap());
        let moved = keys.set_move(&b("t"), &b("m"), &b("x")).unwrap();
        assert!(!moved.wait().await.unwrap());
        // The last member gone, the set is gone.
        let moved = keys.set_move(&b("t"), &b("m"), &b("b")).unwrap();
        assert!(moved.wait().await.unwrap());
        assert_eq!(keys.kind(b"t"), None);
        assert_eq!(keys.kind(b"m"), Some(KeyKind::Set));
    }
    let keys = open(dir.path()).await;
    assert_eq!(sorted(keys.set_members(b"s").unwrap()), all(&["a", "b"]));
    assert_eq!(
        sorted(keys.set_members(b"u").unwrap()),
        all(&["a", "b", "x"])
    );
    assert_eq!(sorted(keys.set_members(b"m").unwrap()), all(&["b", "x"]));
    assert_eq!(keys.kind(b"t"), None);
    assert_eq!(keys.kind(b"target"), None);
}

#[tokio::test]
async fn popped_and_picked_members_come_from_the_set() {
    let dir = tempfile::tempdir().unwrap();
    let keys = open(dir.path()).await;
    let names: Vec<String> = (0..20).map(|n| format!("m{n}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    keys.set_add(&b("s"), all(&names))
        .unwrap()
        .wait()
        .await
        .unwrap();
    let picked = keys.set_random(b"s", 5).unwrap();
    assert_eq!(picked.len(), 5);
    let mut distinct = picked.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 5, "a positive count picks distinct members");
    assert_eq!(keys.set_random(b"s", -50).unwrap().len(), 50);
    assert_eq!(keys.set_random(b"s", 100).unwrap().len(), 20);
    let popped = keys.set_pop(&b("s"), 15).unwrap().wait().await.unwrap();
    assert_eq!(popped.len(), 15);
    let left = keys.set_members(b"s").unwrap();
    assert_eq!(left.len(), 5);
    assert!(popped.iter().all(|member| !left.contains(member)));
    let rest = keys.set_pop(&b("s"), 10).unwrap().wait().await.unwrap();
    assert_eq!(rest.len(), 5);
    assert_eq!(keys.kind(b"s"), None);
}

#[tokio::test]
async fn a_set_or_sorted_set_refuses_commands_of_other_kinds() {
    let dir = tempfile::tempdir().unwrap();
    let keys = open(dir.path()).await;
    keys.set_add(&b("s"), all(&["a"]))
        .unwrap()
        .wait()
        .await
        .unwrap();
    let pairs = vec![(1.0, b("a"))];
    keys.zset_add(&b("z"), pairs.clone(), ZAddOptions::default())
        .unwrap()
        .wait()
        .await
        .unwrap();
    assert!(matches!(keys.hash_len(b"s"), Err(EngineError::WrongKind)));
    assert!(matches!(keys.set_len(b"z"), Err(EngineError::WrongKind)));
    assert!(matches!(
        keys.zset_add(&b("s"), pairs, ZAddOptions::default()),
        Err(EngineError::WrongKind)
    ));
    // A sorted-set union reads plain sets too, each member scoring 1.
    let union = keys
        .zset_combine(ZOperation::Union, &all(&["s", "z"]), &[], Aggregate::Sum)
        .unwrap();
    assert_eq!(members(union), vec!["a=2"]);
}

#[tokio::test]
async fn sorted_sets_order_by_score_then_member_and_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let keys = open(dir.path()).await;
        let pairs = vec![
            (2.0, b("b")),
            (1.0, b("c")),
            (2.0, b("a")),
            (f64::INFINITY, b("top")),
        ];
        let added = keys
            .zset_add(&b("z"), pairs, ZAddOptions::default())
            .unwrap();
        assert_eq!(added.wait().await.unwrap().added, 4);
        let whole = query(ZRange::Rank(0, -1), false, None);
        assert_eq!(
            members(keys.zset_range(b"z", &whole).unwrap()),
            vec!["c=1", "a=2", "b=2", "top=inf"]
        );
        // GT only raises; XX never adds; INCR answers the new score.
        let options = ZAddOptions {
            update: ScoreUpdate::Higher,
            ..ZAddOptions::default()
        };
        let raised = keys.zset_add(&b("z"), vec![(0.5, b("a")), (3.0, b("b"))], options);
        assert_eq!(raised.unwrap().wait().await.unwrap().updated, 1);
        let options = ZAddOptions {
            condition: SetCondition::IfPresent,
            increment: true,
            ..ZAddOptions::default()
        };
        let incremented = keys
            .zset_add(&b("z"), vec![(-1.5, b("c"))], options)
            .unwrap();
        assert_eq!(incremented.wait().await.unwrap().score, Some(-0.5));
        let missing = keys
            .zset_add(&b("z"), vec![(1.0, b("new"))], options)
            .unwrap();
        assert_eq!(missing.wait().await.unwrap().score, None);
        let nan = keys.zset_add(&b("z"), vec![(f64::NEG_INFINITY, b("top"))], options);
        assert!(matches!(nan, Err(EngineError::BadRequest(_))));
    }
    let keys = open(dir.path()).await;
    let whole = query(ZRange::Rank(0, -1), false, None);
    assert_eq!(
        members(keys.zset_range(b"z", &whole).unwrap()),
        vec!["c=-0.5", "a=2", "b=3", "top=inf"]
    );
    assert_eq!(keys.zset_rank(b"z", b"b", false).unwrap(), Some((2, 3.0)));
    assert_eq!(keys.zset_rank(b"z", b"b", true).unwrap(), Some((1, 3.0)));
    assert_eq!(
        keys.zset_scores(b"z", &all(&["a", "x"])).unwrap(),
        vec![Some(2.0), None]
    );
}

#[tokio::test]
async fn ranges_by_rank_score_and_member_in_both_directions() {
    let dir = tempfile::tempdir().unwrap();
    let keys = open(dir.path()).await;
    let pairs: Vec<(f64, Bytes)> = (1..=6).map(|n| (n as f64, b(&format!("m{n}")))).collect();
    keys.zset_add(&b("z"), pairs, ZAddOptions::default())
        .unwrap()
        .wait()
        .await
        .unwrap();
    let range = |range, reverse, limit| {
        let found = keys
            .zset_range(b"z", &query(range, reverse, limit))
            .unwrap();
        found
            .into_iter()
            .map(|(m, _)| String::from_utf8(m.to_vec()).unwrap())
            .collect::<Vec<_>>()
    };
    use ScoreBound::{Exclusive, Inclusive};
    assert_eq!(range(ZRange::Rank(-2, 100), false, None), ["m5", "m6"]);
    assert_eq!(range(ZRange::Rank(0, 1), true, None), ["m6", "m5"]);
    assert!(range(ZRange::Rank(4, 2), false, None).is_empty());
    let scores = ZRange::Score(Exclusive(2.0), Inclusive(5.0));
    assert_eq!(range(scores.clone(), false, None), ["m3", "m4", "m5"]);
    assert_eq!(range(scores.clone(), true, Some((1, 1))), ["m4"]);
    let everything = ZRange::Score(Inclusive(f64::NEG_INFINITY), Inclusive(f64::INFINITY));
    assert_eq!(range(everything, true, Some((0, 2))), ["m6", "m5"]);
    assert_eq!(keys.zset_count(b"z", scores).unwrap(), 3);
    let lex = ZRange::Lex(LexBound::Exclusive(b("m2")), LexBound::Max);
    assert_eq!(range(lex.clone(), false, Some((0, 2))), ["m3", "m4"]);
    assert_eq!(range(lex, true, None), ["m6", "m5", "m4", "m3"]);
    let removed = keys.zset_remove_range(&b("z"), ZRange::Rank(0, 1)).unwrap();
    assert_eq!(removed.wait().await.unwrap(), 2);
    let popped = keys
        .zset_pop(&b("z"), 2, true)
        .unwrap()
        .wait()
        .await
        .unwrap();
    assert_eq!(members(popped), ["m6=6", "m5=5"]);
    let stored = keys
        .zset_range_store(&b("copy"), b"z", &query(ZRange::Rank(0, -1), false, None))
        .unwrap();
    assert_eq!(stored.wait().await.unwrap(), 2);
    let weighted = keys
        .zset_combine_store(
            ZOperation::Intersection,
            &b("w"),
            &all(&["z", "copy"]),
            &[2.0, 10.0],
            Aggregate::Max,
        )
        .unwrap();
    assert_eq!(weighted.wait().await.unwrap(), 2);
    let whole = query(ZRange::Rank(0, -1), false, None);
    assert_eq!(
        members(keys.zset_range(b"w", &whole).unwrap()),
        ["m3=30", "m4=40"]
    );
}

#[tokio::test]
async fn a_zadd_serves_the_clients_blocked_on_the_key_and_a_member_never_received_goes_back() {
    let dir = tempfile::tempdir().unwrap();
    let (_state, keys) = super::tests::reopen(dir.path()).await;
    let blocked = |keys: &Arc<Keyspace>, highest| match keys
        .take_or_block(
            vec![b("other"), b("z")],
            ListRequest::ZPop { highest, count: 1 },
        )
        .unwrap()
    {
        Taken::Blocked(blocked) => blocked,
        Taken::Now(_) => panic!("nothing to take yet"),
    };
    let first = blocked(&keys, false);
    let second = blocked(&keys, true);
    let scored = vec![(1.0, b("a")), (2.0, b("b")), (3.0, b("c"))];
    keys.zset_add(&b("z"), scored, ZAddOptions::default())
        .unwrap()
        .wait()
        .await
        .unwrap();
    let took = first.wait(None).await.unwrap().unwrap();
    assert_eq!(
        (took.key, took.items, took.scores),
        (b("z"), vec![b("a")], vec![1.0])
    );
    let took = second.wait(None).await.unwrap().unwrap();
    assert_eq!((took.items, took.scores), (vec![b("c")], vec![3.0]));
    // Served but dropped before it read the member: the member goes back with its score.
    keys.zset_pop(&b("z"), 1, false)
        .unwrap()
        .wait()
        .await
        .unwrap();
    let gone = blocked(&keys, false);
    keys.zset_add(&b("z"), vec![(5.0, b("e"))], ZAddOptions::default())
        .unwrap()
        .wait()
        .await
        .unwrap();
    drop(gone);
    assert_eq!(keys.zset_scores(b"z", &[b("e")]).unwrap(), vec![Some(5.0)]);
    // Taken at once when there is something.
    match keys
        .take_or_block(
            vec![b("z")],
            ListRequest::ZPop {
                highest: false,
                count: 5,
            },
        )
        .unwrap()
    {
        Taken::Now(durable) => {
            let took = durable.wait().await.unwrap().unwrap();
            assert_eq!((took.items, took.scores), (vec![b("e")], vec![5.0]));
        }
        Taken::Blocked(_) => panic!("a member was there"),
    }
    // A key of another kind is refused before anything waits.
    keys.set(b("s"), b("v"), SetOptions::default())
        .unwrap()
        .wait()
        .await
        .unwrap();
    assert!(matches!(
        keys.take_or_block(
            vec![b("s")],
            ListRequest::ZPop {
                highest: false,
                count: 1
            }
        ),
        Err(crate::EngineError::WrongKind)
    ));
}

#[tokio::test]
async fn sscan_returns_every_member_present_throughout_while_members_are_removed() {
    // SSCAN a page, SREM it, ask for the next; and SREMs of members not yet returned, which
    // move the set's last member into their place.
    let dir = tempfile::tempdir().unwrap();
    let keys = open(dir.path()).await;
    let members: Vec<Bytes> = (0..500).map(|i| b(&format!("m{i}"))).collect();
    keys.set_add(&b("s"), members)
        .unwrap()
        .wait()
        .await
        .unwrap();
    let (mut cursor, mut seen, mut removed_early) = (0, std::collections::HashSet::new(), 0);
    loop {
        let (next, page) = keys.set_scan(b"s", cursor, None, 10).unwrap();
        keys.set_remove(&b("s"), &page)
            .unwrap()
            .wait()
            .await
            .unwrap();
        seen.extend(page);
        // One member not returned yet goes too (it may or may not be seen: it left).
        let early = b(&format!("m{}", 499 - removed_early * 7));
        if !seen.contains(&early) {
            keys.set_remove(&b("s"), std::slice::from_ref(&early))
                .unwrap()
                .wait()
                .await
                .unwrap();
            seen.insert(early);
            removed_early += 1;
        }
        if next == 0 {
            break;
        }
        cursor = next;
    }
    assert_eq!(seen.len(), 500, "a member present throughout was skipped");
    assert_eq!(keys.set_len(b"s").unwrap(), 0);
}

#[tokio::test]
async fn zscan_returns_every_member_present_throughout_and_ends_on_equal_scores() {
    let dir = tempfile::tempdir().unwrap();
    let keys = open(dir.path()).await;
    // 400 members over 40 scores (ten share each), negative and positive, and 200 members
    // all scoring 0 in a second set: a page never ends inside a run of one score.
    let scored: Vec<(f64, Bytes)> = (0..400)
        .map(|i| (f64::from(i / 10) - 20.5, b(&format!("m{i}"))))
        .collect();
    keys.zset_add(&b("z"), scored, ZAddOptions::default())
        .unwrap()
        .wait()
        .await
        .unwrap();
    let (mut cursor, mut seen, mut sizes) = (0, std::collections::HashSet::new(), Vec::new());
    loop {
        let (next, page) = keys.zset_scan(b"z", cursor, None, 7).unwrap();
        let members: Vec<Bytes> = page.into_iter().map(|(member, _)| member).collect();
        keys.zset_remove(&b("z"), &members)
            .unwrap()
            .wait()
            .await
            .unwrap();
        sizes.push(members.len());
        seen.extend(members);
        if next == 0 {
            break;
        }
        cursor = next;
    }
    assert_eq!(seen.len(), 400, "a member present throughout was skipped");
    // Seven asked for, ten taken: a page ends with its last score's whole run (the last page,
    // once the set is small, is the rest whole).
    assert!(sizes.iter().all(|size| size % 10 == 0), "{sizes:?}");
    assert!(sizes.len() > 20, "{sizes:?}");
    let flat: Vec<(f64, Bytes)> = (0..200).map(|i| (0.0, b(&format!("f{i}")))).collect();
    keys.zset_add(&b("flat"), flat, ZAddOptions::default())
        .unwrap()
        .wait()
        .await
        .unwrap();
    let (next, page) = keys.zset_scan(b"flat", 0, None, 10).unwrap();
    assert_eq!((next, page.len()), (0, 200));
    // The cursor orders as scores do.
    let cursors: Vec<u64> = [f64::NEG_INFINITY, -1.5, 0.0, 2.0, f64::INFINITY]
        .into_iter()
        .map(super::zsets::score_cursor_for_tests)
        .collect();
    assert!(cursors.windows(2).all(|pair| pair[0] < pair[1]) && cursors[0] != 0);
}
