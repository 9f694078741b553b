//! The owned-pending mode (Redis consumer groups) through the engine API, on real files.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::*;
use crate::{EngineConfig, PublishRecord, PublishTarget, StreamSpec};

async fn engine_with_records(dir: &std::path::Path, count: usize) -> Arc<Engine> {
    let engine = Engine::open(EngineConfig::new(dir)).await.unwrap();
    if engine.partition_bounds("S", 0).is_err() {
        engine
            .create_stream_blocking(StreamSpec {
                name: "S".into(),
                partitions: Some(1),
                ..Default::default()
            })
            .unwrap();
    }
    let records = (0..count)
        .map(|index| PublishRecord {
            value: Some(Bytes::from(format!("m{index}"))),
            ..Default::default()
        })
        .collect();
    engine
        .publish(PublishTarget::Stream("S".into()), records)
        .await
        .unwrap();
    engine
}

fn group(name: &str) -> ConsumerSpec {
    ConsumerSpec {
        stream: "S".into(),
        name: name.into(),
        filter_subjects: Vec::new(),
        start: ConsumerStart::Earliest,
        ack: AckMode::Explicit,
        // Would expire at once if leases mattered: owned deliveries never come back by
        // themselves.
        ack_wait_ms: 1,
        max_deliver: None,
        backoff_ms: Vec::new(),
        max_ack_pending: ACK_PENDING_MAX,
        door_settings: BTreeMap::new(),
        remove_acked: false,
        owned_pending: true,
    }
}

fn offsets(records: &[omnibus_types::Record]) -> Vec<u64> {
    records.iter().map(|record| record.offset).collect()
}

#[tokio::test]
async fn owners_split_the_records_and_keep_them_pending_until_acked() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine_with_records(dir.path(), 6).await;
    engine.create_consumer(group("g")).await.unwrap();
    let first = engine.owned_next("S", "g", "alice", 2, true).await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let second = engine.owned_next("S", "g", "bob", 10, true).await.unwrap();
    assert_eq!(offsets(&first), vec![0, 1]);
    assert_eq!(
        offsets(&second),
        vec![2, 3, 4, 5],
        "nothing of alice's comes back"
    );
    assert!(engine
        .owned_next("S", "g", "bob", 10, true)
        .await
        .unwrap()
        .is_empty());
    let alice = engine
        .owned_pending(
            "S",
            "g",
            PendingQuery {
                owner: Some("alice"),
                ..PendingQuery::all()
            },
        )
        .unwrap();
    assert_eq!(
        alice.iter().map(|e| e.offset).collect::<Vec<_>>(),
        vec![0, 1]
    );
    assert_eq!(alice[0].deliveries, 1);
    assert_eq!(engine.owned_ack("S", "g", &[0, 3, 99]).await.unwrap(), 2);
    assert_eq!(engine.owned_pending_count("S", "g").unwrap(), 4);
    let owners = engine.owned_owners("S", "g").unwrap();
    let counts: Vec<(String, u64)> = owners.iter().map(|o| (o.name.clone(), o.pending)).collect();
    assert_eq!(counts, vec![("alice".into(), 1), ("bob".into(), 3)]);
    // Without `pending` (NOACK) a delivery is settled as it is handed out.
    engine
        .publish(
            PublishTarget::Stream("S".into()),
            vec![PublishRecord::default()],
        )
        .await
        .unwrap();
    assert_eq!(
        offsets(&engine.owned_next("S", "g", "bob", 10, false).await.unwrap()),
        vec![6]
    );
    assert_eq!(engine.owned_pending_count("S", "g").unwrap(), 4);
}

#[tokio::test]
async fn claims_move_idle_entries_and_force_creates_them() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine_with_records(dir.path(), 3).await;
    engine.create_consumer(group("g")).await.unwrap();
    engine
        .owned_next("S", "g", "crashed", 2, true)
        .await
        .unwrap();
    let busy = ClaimOptions {
        min_idle_ms: 60_000,
        ..ClaimOptions::default()
    };
    assert!(engine
        .owned_claim("S", "g", "rescuer", &[0, 1], busy)
        .await
        .unwrap()
        .is_empty());
    tokio::time::sleep(Duration::from_millis(20)).await;
    let idle = ClaimOptions {
        min_idle_ms: 10,
        ..ClaimOptions::default()
    };
    let claimed = engine
        .owned_claim("S", "g", "rescuer", &[1, 0], idle)
        .await
        .unwrap();
    assert_eq!(
        claimed
            .iter()
            .map(|e| (e.offset, e.deliveries))
            .collect::<Vec<_>>(),
        vec![(1, 2), (0, 2)]
    );
    assert!(claimed.iter().all(|e| e.owner == "rescuer"));
    // Offset 2 was never delivered: only FORCE makes it pending.
    assert!(engine
        .owned_claim("S", "g", "rescuer", &[2], idle)
        .await
        .unwrap()
        .is_empty());
    let forced = ClaimOptions {
        force: true,
        ..idle
    };
    assert_eq!(
        engine
            .owned_claim("S", "g", "rescuer", &[2], forced)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        engine
            .owned_delete_owner("S", "g", "rescuer")
            .await
            .unwrap(),
        Some(3)
    );
    assert_eq!(
        engine.owned_delete_owner("S", "g", "nobody").await.unwrap(),
        None
    );
    assert_eq!(engine.owned_pending_count("S", "g").unwrap(), 0);
}

#[tokio::test]
async fn pending_entries_owners_and_the_position_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let engine = engine_with_records(dir.path(), 5).await;
        engine.create_consumer(group("g")).await.unwrap();
        engine.owned_next("S", "g", "a", 3, true).await.unwrap();
        engine.owned_ack("S", "g", &[1]).await.unwrap();
        engine.owned_create_owner("S", "g", "idle").await.unwrap();
        engine.shutdown().await.unwrap();
    }
    let engine = engine_with_records(dir.path(), 0).await;
    let pending = engine.owned_pending("S", "g", PendingQuery::all()).unwrap();
    assert_eq!(
        pending
            .iter()
            .map(|e| (e.offset, e.owner.as_str()))
            .collect::<Vec<_>>(),
        vec![(0, "a"), (2, "a")]
    );
    let names: Vec<String> = engine
        .owned_owners("S", "g")
        .unwrap()
        .into_iter()
        .map(|o| o.name)
        .collect();
    assert_eq!(names, vec!["a", "idle"]);
    // The next new delivery is after what was delivered, not a redelivery.
    assert_eq!(
        offsets(&engine.owned_next("S", "g", "b", 10, true).await.unwrap()),
        vec![3, 4]
    );
    // Moving the position back delivers again from there; pending entries stay.
    engine.owned_set_position("S", "g", 1).await.unwrap();
    assert_eq!(
        offsets(&engine.owned_next("S", "g", "b", 1, true).await.unwrap()),
        vec![1]
    );
    assert_eq!(engine.owned_pending_count("S", "g").unwrap(), 5);
}

#[tokio::test]
async fn delivering_leaves_no_unsized_offsets_behind_in_the_state_machine() {
    // Regression: every delivery left its offset among those whose size the state machine
    // waited to be told, and neither mode of consumer ever told it: a map that grew with
    // every record a consumer delivered, for as long as the broker ran.
    let dir = tempfile::tempdir().unwrap();
    let engine = engine_with_records(dir.path(), 50).await;
    engine.create_consumer(group("g")).await.unwrap();
    let mut plain = group("plain");
    plain.owned_pending = false;
    plain.ack_wait_ms = 60_000;
    engine.create_consumer(plain).await.unwrap();
    let owned = engine
        .owned_next("S", "g", "alice", 30, true)
        .await
        .unwrap();
    let unowned = engine.owned_next("S", "g", "bob", 30, false).await.unwrap();
    assert_eq!(owned.len() + unowned.len(), 50);
    let delivered = engine.consumer_next("S", "plain", 50, 0).await.unwrap();
    assert_eq!(delivered.len(), 50);
    let unsized_of = |name: &str| {
        engine
            .consumer("S", name)
            .unwrap()
            .lock()
            .core
            .unsized_count()
    };
    assert_eq!(unsized_of("g"), 0);
    assert_eq!(unsized_of("plain"), 0);
    engine.shutdown().await.unwrap();
}

/// The keys a consumer's pending entries take in the state store, by their tag letter.
fn stored_tags(engine: &Engine, name: &str) -> Vec<char> {
    let prefix = format!("S\u{1f}{name}\u{1f}");
    engine
        .state
        .scan_prefix(OWNED_TABLE, &prefix)
        .unwrap()
        .into_iter()
        .map(|(key, _)| {
            let rest = &key[prefix.len()..];
            if rest.starts_with('r') && rest.contains('x') {
                'x'
            } else {
                rest.chars().next().unwrap()
            }
        })
        .collect()
}

fn listing(engine: &Engine) -> Vec<(u64, String, u64)> {
    engine
        .owned_pending("S", "g", PendingQuery::all())
        .unwrap()
        .into_iter()
        .map(|e| (e.offset, e.owner, e.deliveries))
        .collect()
}

#[tokio::test]
async fn a_read_is_stored_as_one_run_that_acks_claims_and_restarts_keep_exact() {
    let dir = tempfile::tempdir().unwrap();
    let before = {
        let engine = engine_with_records(dir.path(), 110).await;
        engine.create_consumer(group("g")).await.unwrap();
        let read = engine
            .owned_next("S", "g", "alice", 100, true)
            .await
            .unwrap();
        assert_eq!(read.len(), 100);
        assert_eq!(
            stored_tags(&engine, "g"),
            vec!['c', 'r'],
            "one key for 100 entries"
        );
        // Three taken by bob, ten acknowledged: they leave the run.
        let taken = engine
            .owned_claim("S", "g", "bob", &[5, 6, 7], ClaimOptions::default())
            .await
            .unwrap();
        assert_eq!(taken.len(), 3);
        let acked: Vec<u64> = (10..20).collect();
        assert_eq!(engine.owned_ack("S", "g", &acked).await.unwrap(), 10);
        // A lone delivery keeps its own key; deleting its owner removes it.
        assert_eq!(
            engine
                .owned_next("S", "g", "carol", 1, true)
                .await
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            engine.owned_delete_owner("S", "g", "carol").await.unwrap(),
            Some(1)
        );
        let listed = listing(&engine);
        assert_eq!(listed.len(), 87 + 3);
        assert_eq!(listed[5], (5, "bob".to_string(), 2));
        engine.shutdown().await.unwrap();
        listed
    };
    let engine = engine_with_records(dir.path(), 0).await;
    assert_eq!(listing(&engine), before, "the same entries after a restart");
    // Acknowledging the rest leaves no run, tombstone or entry key behind.
    let rest: Vec<u64> = before.iter().map(|(offset, _, _)| *offset).collect();
    assert_eq!(engine.owned_ack("S", "g", &rest).await.unwrap(), 90);
    assert_eq!(stored_tags(&engine, "g"), vec!['c', 'c']);
    assert_eq!(
        offsets(&engine.owned_next("S", "g", "bob", 100, true).await.unwrap()),
        (101..110).collect::<Vec<_>>()
    );
    engine.shutdown().await.unwrap();
}

/// A group whose leases outlast a test's pauses, as the Redis door's do.
fn long_leases(name: &str) -> ConsumerSpec {
    ConsumerSpec {
        ack_wait_ms: 3_600_000,
        ..group(name)
    }
}

/// Copies a data folder as it is on disk now: what a crash at this moment leaves behind
/// (every commit the test waited for is fsynced; nothing is writing while it copies).
fn crash_image(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            crash_image(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[tokio::test]
async fn a_read_settled_later_never_makes_an_earlier_reads_entries_durable_out_of_order() {
    // Read A leases 0..10 and read B 10..20. B settles first (its entries pending above the
    // floor), then A settles, which completes the range below B's and moves the floor to 20.
    // If A's commit could be durable before B's, a crash between them would leave 10..20
    // neither pending nor to be delivered: skipped for the group.
    let dir = tempfile::tempdir().unwrap();
    let engine = engine_with_records(dir.path(), 20).await;
    engine.create_consumer(long_leases("g")).await.unwrap();
    let a_settling = super::ordered::pauses::set("race-a", "before settling");
    let b_committing = super::ordered::pauses::set("race-b", "before committing");
    let a = tokio::spawn({
        let engine = engine.clone();
        async move { engine.owned_next("S", "g", "race-a", 10, true).await }
    });
    a_settling.reached.notified().await;
    let b = tokio::spawn({
        let engine = engine.clone();
        async move { engine.owned_next("S", "g", "race-b", 10, true).await }
    });
    b_committing.reached.notified().await;
    a_settling.release.notify_one();
    assert_eq!(
        offsets(&a.await.unwrap().unwrap()),
        (0..10).collect::<Vec<_>>()
    );
    // A was answered, so everything A's commit relies on is durable: crash now.
    let image = tempfile::tempdir().unwrap();
    crash_image(dir.path(), image.path());
    b_committing.release.notify_one();
    assert_eq!(
        offsets(&b.await.unwrap().unwrap()),
        (10..20).collect::<Vec<_>>()
    );

    let engine = engine_with_records(image.path(), 0).await;
    let pending: Vec<(u64, String)> = engine
        .owned_pending("S", "g", PendingQuery::all())
        .unwrap()
        .into_iter()
        .map(|entry| (entry.offset, entry.owner))
        .collect();
    let expected: Vec<(u64, String)> = (0..20)
        .map(|offset| {
            (
                offset,
                if offset < 10 { "race-a" } else { "race-b" }.to_string(),
            )
        })
        .collect();
    assert_eq!(
        pending, expected,
        "every delivered entry is pending with its reader"
    );
    assert!(engine
        .owned_next("S", "g", "c", 100, true)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn a_lease_that_expired_during_a_read_is_handed_out_once() {
    // Leases of 1 ms: the records read A leased are leased again by read B while A reads
    // them. Only the holder of the lease hands a record out.
    let dir = tempfile::tempdir().unwrap();
    let engine = engine_with_records(dir.path(), 20).await;
    engine.create_consumer(group("g")).await.unwrap();
    let a_settling = super::ordered::pauses::set("slow-a", "before settling");
    let a = tokio::spawn({
        let engine = engine.clone();
        async move { engine.owned_next("S", "g", "slow-a", 10, true).await }
    });
    a_settling.reached.notified().await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let b = engine
        .owned_next("S", "g", "fast-b", 10, true)
        .await
        .unwrap();
    a_settling.release.notify_one();
    let a = a.await.unwrap().unwrap();
    let (a, b) = (offsets(&a), offsets(&b));
    assert!(
        a.iter().all(|offset| !b.contains(offset)),
        "{a:?} and {b:?}"
    );
    let mut all: Vec<u64> = a.iter().chain(&b).copied().collect();
    all.sort_unstable();
    assert_eq!(all, (0..20).collect::<Vec<_>>());
    assert_eq!(engine.owned_pending_count("S", "g").unwrap(), 20);
}

#[tokio::test]
async fn a_position_move_racing_a_read_is_durable_in_the_order_it_was_made() {
    // A read settles (its floor moves past 0..5), then XGROUP SETID moves the position back
    // to 0 before the read's commit is sent. The move came second in memory, so it must come
    // second on disk too: after a restart the group reads from 0 again.
    let dir = tempfile::tempdir().unwrap();
    {
        let engine = engine_with_records(dir.path(), 10).await;
        engine.create_consumer(long_leases("g")).await.unwrap();
        let committing = super::ordered::pauses::set("setid-a", "before committing");
        let read = tokio::spawn({
            let engine = engine.clone();
            async move { engine.owned_next("S", "g", "setid-a", 5, true).await }
        });
        committing.reached.notified().await;
        engine.owned_set_position("S", "g", 0).await.unwrap();
        committing.release.notify_one();
        assert_eq!(
            offsets(&read.await.unwrap().unwrap()),
            (0..5).collect::<Vec<_>>()
        );
        engine.shutdown().await.unwrap();
    }
    let engine = engine_with_records(dir.path(), 0).await;
    assert_eq!(engine.owned_pending_count("S", "g").unwrap(), 5);
    assert_eq!(
        offsets(&engine.owned_next("S", "g", "b", 100, true).await.unwrap()),
        (0..10).collect::<Vec<_>>(),
        "the move back to 0 is what the restart finds"
    );
}
