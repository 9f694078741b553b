use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;

use super::*;
use crate::EngineError;

fn b(text: &str) -> Bytes {
    Bytes::copy_from_slice(text.as_bytes())
}

fn all(items: &[&str]) -> Vec<Bytes> {
    items.iter().map(|item| b(item)).collect()
}

/// The keyspace in `dir`, opened once the last one let go of its store.
async fn open(dir: &std::path::Path) -> Arc<Keyspace> {
    super::tests::reopen(dir).await.1
}

async fn push(keys: &Keyspace, key: &str, items: &[&str], end: End) -> usize {
    keys.push(&b(key), all(items), end, false)
        .unwrap()
        .wait()
        .await
        .unwrap()
}

#[tokio::test]
async fn pushes_and_pops_at_both_ends_and_reads_by_index_and_range() {
    let dir = tempfile::tempdir().unwrap();
    let keys = open(dir.path()).await;
    assert_eq!(push(&keys, "l", &["a", "b"], End::Right).await, 2);
    // LPUSH l x y puts y first, as Redis does.
    assert_eq!(push(&keys, "l", &["x", "y"], End::Left).await, 4);
    assert_eq!(keys.range(b"l", 0, -1).unwrap(), all(&["y", "x", "a", "b"]));
    assert_eq!(keys.range(b"l", -2, 100).unwrap(), all(&["a", "b"]));
    assert_eq!(keys.range(b"l", 3, 1).unwrap(), all(&[]));
    assert_eq!(keys.index(b"l", -1).unwrap(), Some(b("b")));
    assert_eq!(keys.index(b"l", 4).unwrap(), None);
    assert_eq!(keys.kind(b"l"), Some(KeyKind::List));
    let popped = keys
        .pop(&b("l"), End::Right, 3)
        .unwrap()
        .wait()
        .await
        .unwrap();
    assert_eq!(popped, Some(all(&["b", "a", "x"])));
    assert_eq!(keys.list_len(b"l").unwrap(), 1);
    // The last pop deletes the key.
    let popped = keys
        .pop(&b("l"), End::Left, 5)
        .unwrap()
        .wait()
        .await
        .unwrap();
    assert_eq!(popped, Some(all(&["y"])));
    assert_eq!(keys.kind(b"l"), None);
    assert_eq!(keys.exists(&[b("l")]), 0);
    assert_eq!(
        keys.pop(&b("l"), End::Left, 1)
            .unwrap()
            .wait()
            .await
            .unwrap(),
        None
    );
    // LPUSHX on a missing key creates nothing.
    let pushed = keys.push(&b("l"), all(&["z"]), End::Left, true).unwrap();
    assert_eq!(pushed.wait().await.unwrap(), 0);
    assert!(keys.is_empty());
}

#[tokio::test]
async fn strings_and_lists_refuse_each_others_commands_and_set_replaces_a_list() {
    let dir = tempfile::tempdir().unwrap();
    {
        let keys = open(dir.path()).await;
        keys.set(b("s"), b("v"), SetOptions::default())
            .unwrap()
            .wait()
            .await
            .unwrap();
        let refused = keys.push(&b("s"), all(&["a"]), End::Left, false);
        assert!(matches!(refused, Err(EngineError::WrongKind)));
        assert!(matches!(
            keys.range(b"s", 0, -1),
            Err(EngineError::WrongKind)
        ));
        push(&keys, "l", &["a", "b", "c"], End::Right).await;
        assert_eq!(keys.get(b"l"), None);
        assert!(matches!(
            keys.increment(&b("l"), 1),
            Err(EngineError::WrongKind)
        ));
        assert!(matches!(
            keys.append(&b("l"), b"x"),
            Err(EngineError::WrongKind)
        ));
        assert!(matches!(keys.take(&b("l")), Err(EngineError::WrongKind)));
        // SET replaces a list whole; its elements leave the store with it.
        keys.set(b("l"), b("now a string"), SetOptions::default())
            .unwrap()
            .wait()
            .await
            .unwrap();
        assert_eq!(keys.kind(b"l"), Some(KeyKind::String));
    }
    let keys = open(dir.path()).await;
    assert_eq!(keys.get(b"l"), Some(b("now a string")));
    assert_eq!(keys.get(b"s"), Some(b("v")));
    assert_eq!(keys.len(), 2);
}

#[tokio::test]
async fn every_kind_of_change_reads_back_the_same_after_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let expected;
    {
        let keys = open(dir.path()).await;
        push(&keys, "l", &["a", "b", "c", "d", "e", "f"], End::Right).await;
        push(&keys, "l", &["0"], End::Left).await;
        let set = keys
            .set_at(&b("l"), -1, b("F"))
            .unwrap()
            .wait()
            .await
            .unwrap();
        assert_eq!(set, ListSet::Done);
        let set = keys
            .set_at(&b("l"), 7, b("x"))
            .unwrap()
            .wait()
            .await
            .unwrap();
        assert_eq!(set, ListSet::OutOfRange);
        // Near the head (rows before it move) and near the tail (rows after it move).
        let length = keys.insert(&b("l"), false, b"a", b("<a")).unwrap();
        assert_eq!(length.wait().await.unwrap(), 8);
        let length = keys.insert(&b("l"), true, b"e", b("e>")).unwrap();
        assert_eq!(length.wait().await.unwrap(), 9);
        let missing = keys.insert(&b("l"), true, b"nope", b("x")).unwrap();
        assert_eq!(missing.wait().await.unwrap(), -1);
        push(&keys, "l", &["b", "c"], End::Right).await;
        let removed = keys.remove_matching(&b("l"), -1, b"b").unwrap();
        assert_eq!(removed.wait().await.unwrap(), 1);
        let removed = keys.remove_matching(&b("l"), 0, b"c").unwrap();
        assert_eq!(removed.wait().await.unwrap(), 2);
        keys.trim(&b("l"), 1, -2).unwrap().wait().await.unwrap();
        let moved = keys
            .move_item(&b("l"), &b("m"), End::Left, End::Right)
            .unwrap();
        assert_eq!(moved.wait().await.unwrap(), Some(b("<a")));
        // A list rotated onto itself.
        let moved = keys
            .move_item(&b("l"), &b("l"), End::Right, End::Left)
            .unwrap();
        assert_eq!(moved.wait().await.unwrap(), Some(b("e>")));
        expected = keys.range(b"l", 0, -1).unwrap();
        assert_eq!(expected, all(&["e>", "a", "b", "d", "e"]));
        assert_eq!(keys.positions(b"l", b"e", 1, 0, 0).unwrap(), vec![4]);
        assert_eq!(keys.positions(b"l", b"e", -1, 1, 0).unwrap(), vec![4]);
        assert_eq!(
            keys.positions(b"l", b"e", 1, 0, 2).unwrap(),
            Vec::<usize>::new()
        );
        let deadline = now_ms() + 60_000;
        let expire = keys
            .expire(&b("m"), Some(deadline), ExpireCondition::Always)
            .unwrap();
        assert!(expire.wait().await.unwrap());
    }
    let keys = open(dir.path()).await;
    assert_eq!(keys.range(b"l", 0, -1).unwrap(), expected);
    assert_eq!(keys.range(b"m", 0, -1).unwrap(), all(&["<a"]));
    assert!(matches!(keys.time_to_live(b"m"), TimeToLive::Milliseconds(ms) if ms > 50_000));
    // What the lists count in memory is what they hold: the keys `l` and `m`, their
    // elements and each element's overhead.
    let items = expected
        .iter()
        .map(|item| entry::item_size(item))
        .sum::<u64>();
    assert_eq!(keys.lock().bytes, 1 + items + 1 + entry::item_size(b"<a"));
}

#[tokio::test]
async fn a_list_past_its_deadline_is_gone_and_leaves_no_rows() {
    let dir = tempfile::tempdir().unwrap();
    {
        let keys = open(dir.path()).await;
        push(&keys, "l", &["a", "b"], End::Right).await;
        let deadline = now_ms() + 50;
        let expire = keys
            .expire(&b("l"), Some(deadline), ExpireCondition::Always)
            .unwrap();
        assert!(expire.wait().await.unwrap());
        tokio::time::sleep(Duration::from_millis(80)).await;
        assert_eq!(keys.list_len(b"l").unwrap(), 0);
        assert_eq!(keys.kind(b"l"), None);
        // A new list under the name starts empty.
        assert_eq!(push(&keys, "l", &["c"], End::Right).await, 1);
    }
    let keys = open(dir.path()).await;
    assert_eq!(keys.range(b"l", 0, -1).unwrap(), all(&["c"]));
}

#[tokio::test]
async fn random_changes_match_a_model_and_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut model: [VecDeque<u32>; 2] = [VecDeque::new(), VecDeque::new()];
    let names = [b("p"), b("q")];
    {
        let keys = open(dir.path()).await;
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move |bound: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % bound
        };
        for step in 0..3000u32 {
            let k = next(2) as usize;
            let key = &names[k];
            let end = if next(2) == 0 { End::Left } else { End::Right };
            match next(7) {
                0 | 1 => {
                    let value = b(&step.to_string());
                    keys.push(key, vec![value], end, false)
                        .unwrap()
                        .wait()
                        .await
                        .unwrap();
                    match end {
                        End::Left => model[k].push_front(step),
                        End::Right => model[k].push_back(step),
                    }
                }
                2 => {
                    let count = next(3) as usize + 1;
                    let popped = keys.pop(key, end, count).unwrap().wait().await.unwrap();
                    let missing = model[k].is_empty();
                    let mut expected = Vec::new();
                    for _ in 0..count {
                        let item = match end {
                            End::Left => model[k].pop_front(),
                            End::Right => model[k].pop_back(),
                        };
                        expected.extend(item.map(|item| b(&item.to_string())));
                    }
                    assert_eq!(popped, (!missing).then_some(expected), "step {step}");
                }
                3 if !model[k].is_empty() => {
                    let i = next(model[k].len() as u64) as usize;
                    let pivot = model[k][i];
                    let after = next(2) == 0;
                    keys.insert(
                        key,
                        after,
                        pivot.to_string().as_bytes(),
                        b(&step.to_string()),
                    )
                    .unwrap()
                    .wait()
                    .await
                    .unwrap();
                    model[k].insert(i + usize::from(after), step);
                }
                4 if !model[k].is_empty() => {
                    let i = next(model[k].len() as u64) as usize;
                    let value = model[k][i];
                    keys.remove_matching(key, 1, value.to_string().as_bytes())
                        .unwrap()
                        .wait()
                        .await
                        .unwrap();
                    model[k].remove(i);
                }
                5 => {
                    let source = k;
                    let destination = next(2) as usize;
                    let to = if next(2) == 0 { End::Left } else { End::Right };
                    let moved = keys
                        .move_item(&names[source], &names[destination], end, to)
                        .unwrap()
                        .wait()
                        .await
                        .unwrap();
                    let item = match end {
                        End::Left => model[source].pop_front(),
                        End::Right => model[source].pop_back(),
                    };
                    assert_eq!(moved, item.map(|i| b(&i.to_string())), "step {step}");
                    if let Some(item) = item {
                        match to {
                            End::Left => model[destination].push_front(item),
                            End::Right => model[destination].push_back(item),
                        }
                    }
                }
                _ => {
                    let length = model[k].len() as i64;
                    let start = next(3) as i64;
                    keys.trim(key, start, -1).unwrap().wait().await.unwrap();
                    model[k].drain(..(start.min(length) as usize));
                }
            }
        }
        for k in 0..2 {
            let expected: Vec<Bytes> = model[k].iter().map(|i| b(&i.to_string())).collect();
            assert_eq!(keys.range(&names[k], 0, -1).unwrap(), expected);
        }
    }
    let keys = open(dir.path()).await;
    for k in 0..2 {
        let expected: Vec<Bytes> = model[k].iter().map(|i| b(&i.to_string())).collect();
        assert_eq!(
            keys.range(&names[k], 0, -1).unwrap(),
            expected,
            "after reopen"
        );
    }
}

fn pop_request(end: End) -> ListRequest {
    ListRequest::Pop { end, count: 1 }
}

fn blocked(taken: Taken) -> Blocked {
    match taken {
        Taken::Blocked(blocked) => blocked,
        Taken::Now(_) => panic!("expected to wait"),
    }
}

#[tokio::test]
async fn blocked_clients_are_served_oldest_first_by_a_push() {
    let dir = tempfile::tempdir().unwrap();
    let keys = open(dir.path()).await;
    let first = blocked(
        keys.take_or_block(vec![b("a"), b("q")], pop_request(End::Left))
            .unwrap(),
    );
    let second = blocked(
        keys.take_or_block(vec![b("q")], pop_request(End::Right))
            .unwrap(),
    );
    assert_eq!(keys.blocked_clients(), 2);
    // One push of two elements serves both, the first blocked first.
    assert_eq!(push(&keys, "q", &["1", "2"], End::Right).await, 2);
    let got = first.wait(None).await.unwrap().map(Took::into_popped);
    assert_eq!(got, Some((b("q"), all(&["1"]))));
    let got = second.wait(None).await.unwrap().map(Took::into_popped);
    assert_eq!(got, Some((b("q"), all(&["2"]))));
    assert_eq!(keys.blocked_clients(), 0);
    assert_eq!(keys.kind(b"q"), None);
    // An element already there is taken at once.
    push(&keys, "q", &["3"], End::Right).await;
    match keys
        .take_or_block(vec![b("q")], pop_request(End::Left))
        .unwrap()
    {
        Taken::Now(durable) => {
            assert_eq!(
                durable.wait().await.unwrap().map(Took::into_popped),
                Some((b("q"), all(&["3"])))
            )
        }
        Taken::Blocked(_) => panic!("expected an element"),
    }
}

#[tokio::test]
async fn a_timeout_or_a_client_gone_takes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let keys = open(dir.path()).await;
    let waiting = blocked(
        keys.take_or_block(vec![b("q")], pop_request(End::Left))
            .unwrap(),
    );
    let started = std::time::Instant::now();
    let timed_out = waiting
        .wait(Some(Duration::from_millis(50)))
        .await
        .unwrap()
        .map(Took::into_popped);
    assert_eq!(timed_out, None);
    assert!(started.elapsed() >= Duration::from_millis(50));
    assert_eq!(keys.blocked_clients(), 0);
    // Served, then dropped before it read what it was served: the element goes back.
    let gone = blocked(
        keys.take_or_block(vec![b("q")], pop_request(End::Left))
            .unwrap(),
    );
    push(&keys, "q", &["kept"], End::Right).await;
    drop(gone);
    assert_eq!(keys.range(b"q", 0, -1).unwrap(), all(&["kept"]));
    // A client whose wait is dropped (its connection gone) leaves the line too.
    let waiting = blocked(
        keys.take_or_block(vec![b("q2")], pop_request(End::Left))
            .unwrap(),
    );
    let task = tokio::spawn(waiting.wait(None));
    tokio::time::sleep(Duration::from_millis(20)).await;
    task.abort();
    let _ = task.await;
    assert_eq!(keys.blocked_clients(), 0);
    push(&keys, "q2", &["stays"], End::Right).await;
    assert_eq!(keys.range(b"q2", 0, -1).unwrap(), all(&["stays"]));
    // Gone before anything came: a later push stays.
    let gone = blocked(
        keys.take_or_block(vec![b("r")], pop_request(End::Left))
            .unwrap(),
    );
    drop(gone);
    push(&keys, "r", &["x"], End::Right).await;
    assert_eq!(keys.range(b"r", 0, -1).unwrap(), all(&["x"]));
}

#[tokio::test]
async fn a_blocked_move_feeds_the_clients_blocked_on_its_destination() {
    let dir = tempfile::tempdir().unwrap();
    let keys = open(dir.path()).await;
    let mover = ListRequest::Move {
        destination: b("processing"),
        from: End::Right,
        to: End::Left,
    };
    let moving = blocked(keys.take_or_block(vec![b("jobs")], mover).unwrap());
    let watching = blocked(
        keys.take_or_block(vec![b("processing")], pop_request(End::Right))
            .unwrap(),
    );
    push(&keys, "jobs", &["job-1"], End::Left).await;
    let moved = moving.wait(None).await.unwrap().map(Took::into_popped);
    assert_eq!(moved, Some((b("jobs"), all(&["job-1"]))));
    let popped = watching.wait(None).await.unwrap().map(Took::into_popped);
    assert_eq!(popped, Some((b("processing"), all(&["job-1"]))));
    assert!(keys.is_empty());
    // A string destination refuses the client once there is something to move, and the
    // element stays where it was.
    keys.set(b("s"), b("v"), SetOptions::default())
        .unwrap()
        .wait()
        .await
        .unwrap();
    let refused = blocked(
        keys.take_or_block(
            vec![b("jobs")],
            ListRequest::Move {
                destination: b("s"),
                from: End::Left,
                to: End::Left,
            },
        )
        .unwrap(),
    );
    push(&keys, "jobs", &["job-2"], End::Left).await;
    assert!(matches!(
        refused.wait(None).await,
        Err(EngineError::WrongKind)
    ));
    assert_eq!(keys.range(b"jobs", 0, -1).unwrap(), all(&["job-2"]));
}

#[tokio::test]
async fn kept_keys_and_values_do_not_hold_the_buffer_they_were_cut_from() {
    let dir = tempfile::tempdir().unwrap();
    let keys = open(dir.path()).await;
    // A door's read buffer, the arguments slices of it.
    let read = Bytes::from((0..16 * 1024).map(|i| (i % 251) as u8).collect::<Vec<u8>>());
    let inside = |kept: &Bytes| read.as_ptr_range().contains(&kept.as_ptr());
    let (key, value) = (read.slice(0..4), read.slice(4..104));
    keys.push(&key, vec![value.clone()], End::Right, false)
        .unwrap()
        .wait()
        .await
        .unwrap();
    keys.set(read.slice(200..204), value.clone(), SetOptions::default())
        .unwrap()
        .wait()
        .await
        .unwrap();
    let field = (read.slice(300..304), read.slice(400..500));
    keys.hash_set(&read.slice(600..604), vec![field], false)
        .unwrap()
        .wait()
        .await
        .unwrap();
    keys.set_add(&read.slice(700..704), vec![read.slice(800..900)])
        .unwrap()
        .wait()
        .await
        .unwrap();
    let scored = vec![(1.0, read.slice(1000..1100))];
    keys.zset_add(&read.slice(900..904), scored, ZAddOptions::default())
        .unwrap()
        .wait()
        .await
        .unwrap();
    let inner = keys.lock();
    for (kept_key, entry) in inner.entries.iter() {
        assert!(!inside(kept_key), "a key holds the read buffer");
        match &entry.value {
            entry::Value::String(kept) => assert!(!inside(kept)),
            entry::Value::List(list) => assert!(list.items.iter().all(|kept| !inside(kept))),
            entry::Value::Hash(hash) => assert!(hash
                .fields
                .iter()
                .all(|(field, (_, value))| !inside(field) && !inside(value))),
            entry::Value::Set(set) => assert!(set.members.iter().all(|kept| !inside(kept))),
            entry::Value::SortedSet(set) => {
                assert!(set.scores.keys().all(|kept| !inside(kept)));
                assert!(set.order.iter().all(|(_, kept)| !inside(kept)));
            }
        }
    }
    assert_eq!(inner.entries.len(), 5);
}
