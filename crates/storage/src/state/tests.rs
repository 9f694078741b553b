//! The state store's own tests: durability across reopen, group commits, dropping
//! overwritten writes, and a failed group commit.

use super::*;
use redb::ReadableDatabase;

#[test]
fn writes_survive_reopen_and_prefix_scans_are_exact() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.redb");
    {
        let store = StateStore::open(&path).unwrap();
        store.put("t", "a/1", b"one").unwrap();
        store.put("t", "a/2", b"two").unwrap();
        store.put("t", "b/1", b"three").unwrap();
        store.put("t", "a", b"exact").unwrap();
    }
    let store = StateStore::open(&path).unwrap();
    assert_eq!(store.get("t", "a/2").unwrap().as_deref(), Some(&b"two"[..]));
    assert_eq!(store.get("missing", "x").unwrap(), None);
    let keys: Vec<String> = store
        .scan_prefix("t", "a/")
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(keys, vec!["a/1", "a/2"]);
    store
        .write(&[StateWrite::DeletePrefix {
            table: "t",
            prefix: "a/".into(),
        }])
        .unwrap();
    assert!(store.scan_prefix("t", "a/").unwrap().is_empty());
    assert_eq!(store.get("t", "a").unwrap().as_deref(), Some(&b"exact"[..]));
    assert_eq!(store.scan_prefix("empty", "").unwrap(), vec![]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_group_commits_are_all_durable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.redb");
    {
        let store = Arc::new(StateStore::open(&path).unwrap());
        let mut tasks = Vec::new();
        for writer in 0..32 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..50 {
                    store
                        .commit(vec![StateWrite::Put {
                            table: "t",
                            key: format!("{writer:02}/{i:03}"),
                            value: vec![writer as u8],
                        }])
                        .await
                        .unwrap();
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
    }
    // The committer thread lets go of the database once the store is dropped.
    let mut reopened = None;
    for _ in 0..100 {
        match StateStore::open(&path) {
            Ok(store) => {
                reopened = Some(store);
                break;
            }
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(10)),
        }
    }
    let store = reopened.expect("reopen");
    assert_eq!(store.scan_prefix("t", "").unwrap().len(), 32 * 50);
}

fn table_contents(store: &StateStore) -> Vec<(String, Vec<u8>)> {
    store.scan_prefix("t", "").unwrap()
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
    /// Dropping overwritten point writes never changes what a transaction leaves behind,
    /// whatever ranges and deletes come between them.
    #[test]
    fn dropping_overwritten_writes_keeps_the_outcome(
        ops in proptest::collection::vec((0u8..6, 0u8..6, 0u8..6, proptest::num::u8::ANY), 1..40),
        seeded in proptest::collection::vec(proptest::option::of(proptest::num::u8::ANY), 6)
    ) {
        let writes: Vec<StateWrite> = ops
            .iter()
            .map(|(kind, a, b, value)| {
                let key = format!("k{a}");
                match kind {
                    0 | 1 => StateWrite::Put { table: "t", key, value: vec![*value] },
                    2 => StateWrite::Delete { table: "t", key },
                    3 | 4 => StateWrite::PutMax { table: "t", key, value: vec![*value] },
                    _ => StateWrite::DeleteRange {
                        table: "t",
                        start: format!("k{}", a.min(b)),
                        end: format!("k{}", a.max(b)),
                    },
                }
            })
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let all = StateStore::open(&dir.path().join("all.redb")).unwrap();
        let fewer = StateStore::open(&dir.path().join("fewer.redb")).unwrap();
        // Put-max writes compare with what is stored before the transaction too.
        let seed: Vec<StateWrite> = seeded
            .iter()
            .enumerate()
            .filter_map(|(index, value)| {
                value.map(|value| StateWrite::Put { table: "t", key: format!("k{index}"), value: vec![value] })
            })
            .collect();
        all.write(&seed).unwrap();
        fewer.write(&seed).unwrap();
        all.write(&writes).unwrap();
        let kept = without_overwritten(writes.clone());
        proptest::prop_assert!(kept.len() <= writes.len());
        fewer.write(&kept).unwrap();
        proptest::prop_assert_eq!(table_contents(&all), table_contents(&fewer));
    }
}

/// Every row of `table` in a bare database.
fn rows(database: &redb::Database, table: &'static str) -> Vec<(String, Vec<u8>)> {
    use redb::ReadableTable;
    let transaction = database.begin_read().unwrap();
    let Ok(open) = transaction.open_table(definition(table)) else {
        return Vec::new();
    };
    open.iter()
        .unwrap()
        .map(|row| {
            let (key, value) = row.unwrap();
            (key.value().to_string(), value.value().to_vec())
        })
        .collect()
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
    /// Sorting the point writes between range deletes (a checkpoint's and a replay's) never
    /// changes what a transaction leaves behind, in any table.
    #[test]
    fn writes_in_key_order_leave_what_they_leave_in_their_own_order(
        ops in proptest::collection::vec(
            (0u8..7, proptest::bool::ANY, 0u8..6, 0u8..6, proptest::num::u8::ANY),
            1..40,
        ),
    ) {
        let writes: Vec<StateWrite> = ops
            .iter()
            .map(|(kind, other, a, b, value)| {
                let table = if *other { "u" } else { "t" };
                let key = format!("k{a}");
                match kind {
                    0 | 1 => StateWrite::Put { table, key, value: vec![*value] },
                    2 => StateWrite::Delete { table, key },
                    3 | 4 => StateWrite::PutMax { table, key, value: vec![*value] },
                    5 => StateWrite::DeletePrefix { table, prefix: format!("k{a}") },
                    _ => StateWrite::DeleteRange {
                        table,
                        start: format!("k{}", a.min(b)),
                        end: format!("k{}", a.max(b)),
                    },
                }
            })
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let as_given = open_database(&dir.path().join("given.redb")).unwrap();
        let sorted = open_database(&dir.path().join("sorted.redb")).unwrap();
        let ordered = commit::in_key_order(writes.clone());
        proptest::prop_assert_eq!(ordered.len(), writes.len());
        commit::stage(&as_given, &writes, redb::Durability::None).unwrap().commit().unwrap();
        commit::stage(&sorted, &ordered, redb::Durability::None).unwrap().commit().unwrap();
        for table in ["t", "u"] {
            proptest::prop_assert_eq!(rows(&as_given, table), rows(&sorted, table));
        }
    }
}

#[test]
fn point_writes_are_sorted_only_between_range_deletes() {
    let put = |key: &str, value: u8| StateWrite::Put {
        table: "t",
        key: key.to_string(),
        value: vec![value],
    };
    let cut = StateWrite::DeletePrefix {
        table: "t",
        prefix: "m".into(),
    };
    let writes = vec![
        put("z", 1),
        put("b", 2),
        put("z", 3),
        cut.clone(),
        put("c", 4),
        put("a", 5),
    ];
    assert_eq!(
        commit::in_key_order(writes),
        vec![
            put("b", 2),
            put("z", 1),
            put("z", 3),
            cut,
            put("a", 5),
            put("c", 4)
        ]
    );
}

#[tokio::test]
async fn stats_count_commits_and_the_writes_applied() {
    let dir = tempfile::tempdir().unwrap();
    let store = StateStore::open(&dir.path().join("state.redb")).unwrap();
    let put = |key: &str, value: u8| StateWrite::Put {
        table: "t",
        key: key.to_string(),
        value: vec![value],
    };
    store.write(&[put("a", 1)]).unwrap();
    // The second put of `b` replaces the first in the same transaction: one write.
    store
        .commit(vec![put("b", 1), put("b", 2), put("c", 1)])
        .await
        .unwrap();
    assert_eq!(
        store.stats(),
        StateStats {
            commits: 2,
            writes: 3
        }
    );
    assert_eq!(store.get("t", "b").unwrap(), Some(vec![2]));
}

#[test]
fn a_failed_group_commit_fails_every_waiter_and_stores_none_of_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.redb");
    let db = Database::builder().create(&path).unwrap();
    // A multimap table of that name makes any write to it fail inside the transaction.
    let setup = db.begin_write().unwrap();
    setup
        .open_multimap_table(redb::MultimapTableDefinition::<&str, &str>::new("broken"))
        .unwrap();
    setup.commit().unwrap();
    let (sender, receiver) = mpsc::channel(COMMIT_QUEUE_MAX);
    let mut answers = Vec::new();
    for writer in 0..5 {
        let table = if writer == 3 { "broken" } else { "t" };
        let (done, answer) = oneshot::channel();
        let writes = vec![StateWrite::Put {
            table,
            key: format!("w{writer}"),
            value: vec![writer],
        }];
        sender.try_send((writes, done)).unwrap();
        answers.push(answer);
    }
    drop(sender);
    // Everything queued before the committer looks is one group.
    let journal = Journal::open(&journal::path_beside(&path), None).unwrap();
    let shared = Arc::new(Shared::new(&path, db, journal, Box::new(open_database)));
    run_committer(shared.clone(), receiver);
    for mut answer in answers {
        let outcome = answer.try_recv().expect("answered");
        assert!(outcome.is_err(), "every waiter of the failed group is told");
    }
    let db = shared.db.read().unwrap();
    let read = db.as_ref().unwrap().begin_read().unwrap();
    assert!(
        read.open_table(definition("t")).is_err(),
        "nothing of the group was committed"
    );
}

#[test]
fn put_max_keeps_the_larger_value_whatever_order_its_writes_arrive_in() {
    let dir = tempfile::tempdir().unwrap();
    let store = StateStore::open(&dir.path().join("state.redb")).unwrap();
    let floor = |value: u64| StateWrite::PutMax {
        table: "t",
        key: "floor".into(),
        value: value.to_be_bytes().to_vec(),
    };
    // The newer commit (floor 300) reaches the store before the older one (floor 2).
    store.write(&[floor(300)]).unwrap();
    store.write(&[floor(2)]).unwrap();
    assert_eq!(
        store.get("t", "floor").unwrap(),
        Some(300u64.to_be_bytes().to_vec())
    );
    // In one group commit too: the smaller one after it changes nothing.
    let kept = without_overwritten(vec![floor(7), floor(500), floor(9)]);
    assert_eq!(kept, vec![floor(500)]);
    store.write(&kept).unwrap();
    assert_eq!(
        store.get("t", "floor").unwrap(),
        Some(500u64.to_be_bytes().to_vec())
    );
}

#[test]
fn finds_keys_from_the_end_and_lists_keys_without_values() {
    let dir = tempfile::tempdir().unwrap();
    let store = StateStore::open(&dir.path().join("state.redb")).unwrap();
    assert_eq!(
        store.key_from_end("t", "a", "z", 0).unwrap(),
        None,
        "no table yet"
    );
    let writes: Vec<StateWrite> = ["a/1", "a/2", "a/3", "b/1"]
        .iter()
        .map(|key| StateWrite::Put {
            table: "t",
            key: key.to_string(),
            value: vec![7; 100],
        })
        .collect();
    store.write(&writes).unwrap();
    let key_from_end = |back| store.key_from_end("t", "a/", "a/\u{7f}", back).unwrap();
    assert_eq!(key_from_end(0).as_deref(), Some("a/3"));
    assert_eq!(key_from_end(2).as_deref(), Some("a/1"));
    assert_eq!(key_from_end(3), None);
    assert_eq!(
        store.scan_keys("t", "a/", "a/\u{7f}", 2).unwrap(),
        vec!["a/1".to_string(), "a/2".to_string()]
    );
    assert_eq!(store.scan_keys("t", "b/", "c", 10).unwrap(), vec!["b/1"]);
}

#[tokio::test]
async fn a_closed_store_lets_go_of_its_file_and_refuses_what_comes_after() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.redb");
    let store = Arc::new(StateStore::open(&path).unwrap());
    store
        .commit(vec![StateWrite::Put {
            table: "t",
            key: "k".into(),
            value: b"v".to_vec(),
        }])
        .await
        .unwrap();
    let closing = store.clone();
    tokio::task::spawn_blocking(move || closing.close())
        .await
        .unwrap();
    // Something still holds the store, yet the file opens again at once.
    let reopened = StateStore::open(&path).unwrap();
    assert_eq!(reopened.get("t", "k").unwrap(), Some(b"v".to_vec()));
    assert!(matches!(store.get("t", "k"), Err(StorageError::Closed)));
    assert!(matches!(
        store.put("t", "x", b"y"),
        Err(StorageError::Closed)
    ));
    let late = store
        .commit(vec![StateWrite::Delete {
            table: "t",
            key: "k".into(),
        }])
        .await;
    assert!(matches!(late, Err(StorageError::Closed)));
}

/// What a `kill -9` leaves: the files as they are while the store is open, its redb at the
/// last checkpoint (or anything up to its unflushed commits) and the journal's records.
pub(super) fn copy_as_crashed(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for name in ["state.redb", "state.journal", "state.journal.b"] {
        std::fs::copy(from.join(name), to.join(name)).unwrap();
    }
}

/// Waits until the running checkpoint of a sealed journal side, if any, has ended and its
/// outcome is taken in.
fn settle_checkpoint(store: &StateStore) {
    let mut journal = store.shared.journal.lock().unwrap();
    store.shared.settle_checkpoint_locked(&mut journal);
}

#[test]
fn commits_go_on_while_a_sealed_side_is_checkpointed_and_a_crash_at_any_point_keeps_them() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live");
    std::fs::create_dir_all(&live).unwrap();
    let store = StateStore::open(&live.join("state.redb")).unwrap();
    store.write_behind(&["behind"]);
    let mut crashes = 0;
    for round in 0..6u8 {
        for index in 0..40u8 {
            store
                .write(&[
                    StateWrite::Put {
                        table: "t",
                        key: format!("r{round}-{index:02}"),
                        value: vec![round, index],
                    },
                    StateWrite::Put {
                        table: "behind",
                        key: format!("r{round}-{index:02}"),
                        value: vec![index, round],
                    },
                ])
                .unwrap();
            if index == 20 {
                // A crash while the records go to one side and, maybe, the other side's
                // checkpoint runs: every acknowledged write comes back.
                let crashed = dir.path().join(format!("crash-{round}"));
                {
                    // Copied between redb's transactions, as a kill -9 finds the page cache
                    // (a copy taken during one would mix its pages with older ones): before
                    // the checkpoint's commit or after it, whichever comes first.
                    let _still = store.shared.db.write().unwrap();
                    copy_as_crashed(&live, &crashed);
                }
                crashes += 1;
                let reopened = StateStore::open(&crashed.join("state.redb")).unwrap();
                reopened.write_behind(&["behind"]);
                for earlier in 0..=round {
                    let last = if earlier == round { 20 } else { 39 };
                    for index in 0..=last {
                        let key = format!("r{earlier}-{index:02}");
                        assert_eq!(reopened.get("t", &key).unwrap(), Some(vec![earlier, index]));
                        assert_eq!(
                            reopened.get("behind", &key).unwrap(),
                            Some(vec![index, earlier]),
                            "{key} after crash {round}"
                        );
                    }
                }
            }
        }
        // Seal the active side as an interval would, and let its checkpoint run (or not)
        // while the next round's commits go on.
        store.shared.journal.lock().unwrap().since_long_ago();
        store.shared.checkpoint_if_due();
        if round % 2 == 1 {
            settle_checkpoint(&store);
        }
    }
    assert_eq!(crashes, 6);
    settle_checkpoint(&store);
    // Both sides took records by now, and the last checkpoint freed the sealed one.
    assert!(
        std::fs::metadata(live.join("state.journal.b"))
            .unwrap()
            .len()
            > 0
    );
    assert_eq!(store.scan_prefix("behind", "").unwrap().len(), 240);
}

#[test]
fn a_failed_checkpoint_of_a_sealed_side_keeps_its_writes_for_the_next_one() {
    use crate::io::FaultPlan;
    let dir = tempfile::tempdir().unwrap();
    let plan = FaultPlan::new();
    let path = dir.path().join("state.redb");
    let store = StateStore::open_with_faults(&path, plan.clone()).unwrap();
    store.write_behind(&["behind"]);
    for index in 0..10u8 {
        store.put("behind", &format!("a{index}"), &[index]).unwrap();
    }
    // The sealed side's checkpoint fails (its redb commit cannot sync): the store reopens,
    // applying the journal again...
    plan.fail_sync(1);
    store.shared.journal.lock().unwrap().since_long_ago();
    store.shared.checkpoint_if_due();
    settle_checkpoint(&store);
    assert!(store.failure().is_some());
    // ... and writes go on.
    for index in 0..10u8 {
        store.put("behind", &format!("b{index}"), &[index]).unwrap();
    }
    // The next checkpoint covers both sides; after a crash nothing is missing.
    store.shared.journal.lock().unwrap().since_long_ago();
    store.shared.checkpoint_if_due();
    settle_checkpoint(&store);
    assert!(!store.shared.journal.lock().unwrap().has_records());
    let crashed = dir.path().join("crashed");
    copy_as_crashed(dir.path(), &crashed);
    drop(store);
    let reopened = StateStore::open(&crashed.join("state.redb")).unwrap();
    assert_eq!(reopened.scan_prefix("behind", "").unwrap().len(), 20);
}

#[test]
fn acknowledged_writes_survive_a_crash_between_checkpoints_and_the_journal_goes_on_after_them() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live");
    std::fs::create_dir_all(&live).unwrap();
    let store = StateStore::open(&live.join("state.redb")).unwrap();
    store.put("t", "before", b"checkpointed").unwrap();
    // A checkpoint of the first write, as the interval would give it.
    store
        .shared
        .checkpoint_locked(&mut store.shared.journal.lock().unwrap(), false)
        .unwrap();
    for index in 0..50 {
        store
            .put("t", &format!("k{index:02}"), &[index as u8; 100])
            .unwrap();
    }
    store
        .write(&[StateWrite::DeletePrefix {
            table: "t",
            prefix: "k4".into(),
        }])
        .unwrap();

    let first = dir.path().join("first-crash");
    copy_as_crashed(&live, &first);
    drop(store);
    let reopened = StateStore::open(&first.join("state.redb")).unwrap();
    let keys = |store: &StateStore| -> Vec<String> {
        store
            .scan_prefix("t", "")
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect()
    };
    assert_eq!(keys(&reopened).len(), 1 + 40, "{:?}", keys(&reopened));
    assert_eq!(reopened.get("t", "k07").unwrap(), Some(vec![7u8; 100]));
    assert_eq!(reopened.get("t", "k45").unwrap(), None);

    // Written after the replay, before any checkpoint: it goes after the replayed records,
    // and a second crash keeps both.
    reopened.put("t", "after", b"the first crash").unwrap();
    let second = dir.path().join("second-crash");
    copy_as_crashed(&first, &second);
    drop(reopened);
    let again = StateStore::open(&second.join("state.redb")).unwrap();
    assert_eq!(keys(&again).len(), 1 + 40 + 1);
    assert_eq!(
        again.get("t", "after").unwrap().as_deref(),
        Some(&b"the first crash"[..])
    );
    assert_eq!(
        again.get("t", "before").unwrap().as_deref(),
        Some(&b"checkpointed"[..])
    );
}

#[test]
fn checkpoints_are_sized_to_the_database_when_a_side_starts_and_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.redb");
    let store = StateStore::open(&path).unwrap();
    let small = store.shared.journal.lock().unwrap().checkpoint_bytes();
    assert_eq!(small, journal::CHECKPOINT_BYTES);
    // 48 MiB of rows make the database big enough for a larger share.
    let row = vec![1u8; 1024 * 1024];
    for index in 0..48 {
        store.put("t", &format!("row{index:02}"), &row).unwrap();
        if index % 8 == 7 {
            store.shared.journal.lock().unwrap().since_long_ago();
            store.shared.checkpoint_if_due();
            settle_checkpoint(&store);
        }
    }
    store.put("t", "last", b"x").unwrap();
    store.shared.journal.lock().unwrap().since_long_ago();
    store.shared.checkpoint_if_due();
    settle_checkpoint(&store);
    let database = std::fs::metadata(&path).unwrap().len();
    assert!(database >= 48 * 1024 * 1024, "{database}");
    let sized = store.shared.journal.lock().unwrap().checkpoint_bytes();
    assert_eq!(sized, journal::checkpoint_bytes_for(database));
    assert!(sized > small);
    drop(store);
    let reopened = StateStore::open(&path).unwrap();
    let at_open = reopened.shared.journal.lock().unwrap().checkpoint_bytes();
    assert_eq!(
        at_open,
        journal::checkpoint_bytes_for(std::fs::metadata(&path).unwrap().len())
    );
    assert!(at_open > small);
}
