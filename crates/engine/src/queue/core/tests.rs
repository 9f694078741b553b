use super::*;

struct NoTimers;
impl TimerSource for NoTimers {
    fn load_after(&self, _: Option<(i64, u64)>, _: usize) -> Vec<(i64, u64)> {
        Vec::new()
    }
}

/// A stored timer list, as the state store would hold it.
struct StoredTimers(Vec<(i64, u64)>);
impl TimerSource for StoredTimers {
    fn load_after(&self, after: Option<(i64, u64)>, limit: usize) -> Vec<(i64, u64)> {
        let mut all = self.0.clone();
        all.sort_unstable();
        all.into_iter()
            .filter(|t| after.is_none_or(|a| *t > a))
            .take(limit)
            .collect()
    }
}

fn policy() -> Policy {
    Policy {
        lease_ms: 1_000,
        max_deliver: 3,
        backoff: Backoff::Fixed { delay_ms: 100 },
        jitter: 0.0,
        max_unacked_per_worker: 100,
        mode: ConsumerMode::Shared,
    }
}

fn offsets(grants: &[Grant]) -> Vec<u64> {
    grants.iter().map(|g| g.offset).collect()
}

#[test]
fn delivers_in_order_and_acks_advance_the_floor() {
    let mut core = QueueCore::new("q", policy());
    core.register(0, 5, 0, None, 0);
    let (grants, writes) = core.deliver("w", 3, 0);
    assert_eq!(offsets(&grants), vec![0, 1, 2]);
    assert!(grants
        .iter()
        .all(|g| g.attempt == 1 && g.deadline_ms == 1_000));
    assert_eq!(
        writes.len(),
        1,
        "one durable run record for three consecutive first deliveries"
    );
    core.ack(1, 1).unwrap();
    assert_eq!(core.floor(), 0, "offset 0 is still out");
    core.ack(0, 1).unwrap();
    assert_eq!(core.floor(), 2, "floor jumps over the finished run");
    let error = core.ack(0, 1).unwrap_err();
    assert!(
        matches!(error, EngineError::UnknownDelivery(_)),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "offset 0 is not delivered to anyone (already settled, or never delivered)"
    );
}

#[test]
fn higher_priority_first_fifo_within_a_level() {
    let mut core = QueueCore::new("q", policy());
    core.register(0, 2, 0, None, 0);
    core.register(2, 4, 9, None, 0);
    core.register(4, 6, 5, None, 0);
    let (grants, _) = core.deliver("w", 10, 0);
    assert_eq!(offsets(&grants), vec![2, 3, 4, 5, 0, 1]);
}

#[test]
fn prefetch_bounds_what_one_worker_holds() {
    let mut core = QueueCore::new(
        "q",
        Policy {
            max_unacked_per_worker: 2,
            ..policy()
        },
    );
    core.register(0, 10, 0, None, 0);
    assert_eq!(core.deliver("a", 10, 0).0.len(), 2);
    assert_eq!(core.deliver("a", 10, 0).0.len(), 0, "a is full");
    assert_eq!(core.deliver("b", 10, 0).0.len(), 2, "b has its own room");
    core.ack(0, 1).unwrap();
    assert_eq!(core.deliver("a", 10, 0).0.len(), 1);
}

#[test]
fn expired_lease_redelivers_with_the_next_attempt_and_stale_acks_fail() {
    let mut core = QueueCore::new(
        "q",
        Policy {
            backoff: Backoff::Fixed { delay_ms: 0 },
            ..policy()
        },
    );
    core.register(0, 1, 0, None, 0);
    let (first, _) = core.deliver("slow", 1, 0);
    assert_eq!(first[0].attempt, 1);
    core.tick(1_000, &NoTimers);
    let (second, _) = core.deliver("fast", 1, 1_000);
    assert_eq!(second[0].attempt, 2);
    let error = core.ack(0, 1).unwrap_err();
    assert!(matches!(error, EngineError::StaleAttempt(_)), "{error:?}");
    assert_eq!(
        error.to_string(),
        "attempt 1 of offset 0 is stale: the current delivery is attempt 2"
    );
    core.ack(0, 2).unwrap();
    assert_eq!(core.floor(), 1);
}

#[test]
fn extend_keeps_the_lease_alive() {
    let mut core = QueueCore::new("q", policy());
    core.register(0, 1, 0, None, 0);
    core.deliver("w", 1, 0);
    assert_eq!(core.extend(0, 1, 5_000, 900).unwrap(), 5_900);
    core.tick(2_000, &NoTimers);
    assert_eq!(core.counts().leased, 1, "not expired at the old deadline");
    core.ack(0, 1).unwrap();
}

#[test]
fn nack_retries_after_backoff_then_dead_letters_at_max_deliver() {
    let mut core = QueueCore::new("q", policy());
    core.register(0, 1, 0, None, 0);
    let mut now = 0;
    for attempt in 1..=3 {
        let (grants, _) = core.deliver("w", 1, now);
        assert_eq!(grants.len(), 1, "attempt {attempt} delivered");
        assert_eq!(grants[0].attempt, attempt);
        let (_, dead) = core
            .nack(0, attempt, None, &format!("boom {attempt}"), now)
            .unwrap();
        if attempt < 3 {
            assert!(dead.is_empty());
            assert!(
                core.deliver("w", 1, now + 50).0.is_empty(),
                "backoff not over"
            );
            now += 100;
            core.tick(now, &NoTimers);
        } else {
            assert_eq!(dead.len(), 1);
            assert_eq!(dead[0].attempts, 3);
            assert_eq!(dead[0].last_error, "boom 3");
        }
    }
    assert_eq!(
        core.floor(),
        0,
        "not finished until its dead letter is appended"
    );
    core.finish_parked(&[0]);
    assert_eq!(core.floor(), 1, "dead-lettered counts as finished");
}

#[test]
fn term_dead_letters_at_once() {
    let mut core = QueueCore::new("q", policy());
    core.register(0, 1, 0, None, 0);
    core.deliver("w", 1, 0);
    let (_, letter) = core.term(0, 1, "bad input").unwrap();
    assert!(letter.reason.contains("terminated"));
    assert_eq!(letter.last_error, "bad input");
    assert_eq!(core.position(0), Position::Finished, "out of delivery");
    core.finish_parked(&[0]);
    assert_eq!(core.floor(), 1);
}

/// The ack floor never passes a message whose dead letter is still being appended: another
/// ack's commit would otherwise record it finished, and a crash before the append would lose
/// it from both the queue and the dead letters.
#[test]
fn the_floor_waits_for_a_dead_letter_to_be_appended() {
    let mut core = QueueCore::new("q", policy());
    core.register(0, 3, 0, None, 0);
    core.deliver("w", 3, 0);
    let (writes, _) = core.term(0, 1, "bad").unwrap();
    assert!(
        keys_of(&writes).iter().all(|w| !w.starts_with("put F")),
        "{writes:?}"
    );
    let acks: Vec<String> = [1, 2]
        .into_iter()
        .flat_map(|offset| keys_of(&core.ack(offset, 1).unwrap()))
        .collect();
    assert!(!acks.iter().any(|w| w.starts_with("put F")), "{acks:?}");
    assert_eq!(core.floor(), 0);
    let finished = keys_of(&core.finish_parked(&[0]));
    assert!(finished.contains(&"put F".to_string()), "{finished:?}");
    assert_eq!(core.floor(), 3);
    assert!(core.finish_parked(&[0]).is_empty(), "only once");
}

#[test]
fn delayed_messages_wait_until_due() {
    let mut core = QueueCore::new("q", policy());
    core.register(0, 1, 0, Some(5_000), 0);
    core.register(1, 2, 0, None, 0);
    assert_eq!(offsets(&core.deliver("w", 10, 0).0), vec![1]);
    core.tick(4_999, &NoTimers);
    assert!(core.deliver("w", 10, 4_999).0.is_empty());
    core.tick(5_000, &NoTimers);
    assert_eq!(offsets(&core.deliver("w", 10, 5_000).0), vec![0]);
}

#[test]
fn timers_beyond_the_window_load_in_order() {
    let total = TIMER_WINDOW as u64 * 3 + 7;
    let stored: Vec<(i64, u64)> = (0..total).map(|o| (1_000 + o as i64, o)).collect();
    let source = StoredTimers(stored);
    let mut core = QueueCore::new(
        "q",
        Policy {
            max_unacked_per_worker: usize::MAX,
            ..policy()
        },
    );
    core.recover(0, [], [], [], &source, total);
    assert_eq!(core.counts().ready, 0, "every offset is waiting");
    assert_eq!(core.counts().delayed, total);
    assert!(
        core.timers.len() <= TIMER_WINDOW,
        "only a window is in memory"
    );
    core.tick(1_000 + total as i64, &source);
    let (grants, _) = core.deliver("w", usize::MAX, 1_000 + total as i64);
    assert_eq!(offsets(&grants), (0..total).collect::<Vec<_>>());
}

#[test]
fn purge_finishes_timers_beyond_the_window_too() {
    let total = TIMER_WINDOW as u64 * 2 + 3;
    let source = StoredTimers((0..total).map(|o| (1_000 + o as i64, o)).collect());
    let mut core = QueueCore::new("q", policy());
    core.recover(0, [], [], [], &source, total + 2);
    assert_eq!(
        (core.counts().ready, core.counts().delayed),
        (2, total),
        "two ready, the rest delayed"
    );
    core.purge(&source);
    assert_eq!((core.counts().ready, core.counts().delayed), (0, 0));
    assert_eq!(core.floor(), total + 2, "every message is finished");
    core.tick(1_000 + total as i64, &source);
    assert!(
        core.deliver("w", 10, 0).0.is_empty(),
        "no timer brings one back"
    );
}

#[test]
fn recovery_rebuilds_ready_finished_attempts_and_priorities() {
    let mut core = QueueCore::new("q", policy());
    let timers = StoredTimers(vec![(9_000, 7)]);
    core.recover(
        2,
        [(4, 6)],
        [(3, 2, "earlier failure".to_string())],
        [(6, 7, 9)],
        &timers,
        10,
    );
    assert_eq!(core.counts().ready, 5, "2,3,6,8,9 (7 is waiting)");
    let (grants, _) = core.deliver("w", 10, 0);
    assert_eq!(offsets(&grants), vec![6, 2, 3, 8, 9], "priority 9 first");
    let three = grants.iter().find(|g| g.offset == 3).unwrap();
    assert_eq!(three.attempt, 3, "attempts survive");
}

#[test]
fn ten_million_waiting_messages_take_one_range() {
    let mut core = QueueCore::new("q", policy());
    for batch in 0..10_000u64 {
        core.register(batch * 1_000, (batch + 1) * 1_000, 0, None, 0);
    }
    assert_eq!(core.counts().ready, 10_000_000);
    assert_eq!(core.ready_range_count(), 1);
}

#[test]
fn adding_many_timers_keeps_the_window_bounded_and_fires_all_in_order() {
    let total = TIMER_WINDOW as u64 * 3;
    let mut core = QueueCore::new(
        "q",
        Policy {
            max_unacked_per_worker: usize::MAX,
            lease_ms: 1 << 40,
            ..policy()
        },
    );
    // Descending due times: every new timer is earlier than those before it.
    let mut stored = Vec::new();
    for offset in 0..total {
        let due = 10_000 + (total - offset) as i64;
        core.register(offset, offset + 1, 0, Some(due), 0);
        stored.push((due, offset));
    }
    assert!(
        core.timers.len() <= TIMER_WINDOW,
        "{} timers in memory",
        core.timers.len()
    );
    assert_eq!(core.counts().delayed, total);
    let source = StoredTimers(stored);
    let mut fired = Vec::new();
    for now in (10_000..=10_000 + total as i64).step_by(97) {
        core.tick(now, &source);
        fired.extend(offsets(&core.deliver("w", usize::MAX, now).0));
    }
    core.tick(20_000 + total as i64, &source);
    fired.extend(offsets(
        &core.deliver("w", usize::MAX, 20_000 + total as i64).0,
    ));
    assert_eq!(fired.len() as u64, total, "every timer fired once");
    let unique: std::collections::BTreeSet<u64> = fired.iter().copied().collect();
    assert_eq!(unique.len() as u64, total);
}

#[test]
fn key_shared_gives_each_key_to_one_worker_at_a_time() {
    let mut core = QueueCore::new(
        "q",
        Policy {
            mode: ConsumerMode::KeyShared,
            ..policy()
        },
    );
    // Keys: A B A B C (offsets 0..5); C is free for anyone.
    core.register(0, 5, 0, None, 0);
    core.set_keys(0, &[Some(1), Some(2), Some(1), Some(2), None]);
    let (first, _) = core.deliver("w1", 1, 0);
    assert_eq!(offsets(&first), vec![0], "w1 takes key A");
    let (second, _) = core.deliver("w2", 10, 0);
    assert_eq!(
        offsets(&second),
        vec![1, 3, 4],
        "w2 takes key B and the keyless one, not A"
    );
    let (more, _) = core.deliver("w1", 10, 0);
    assert_eq!(offsets(&more), vec![2], "the rest of key A stays with w1");
    core.ack(0, 1).unwrap();
    core.ack(2, 1).unwrap();
    core.register(5, 6, 0, None, 0);
    core.set_keys(5, &[Some(1)]);
    let (released, _) = core.deliver("w2", 10, 0);
    assert_eq!(
        offsets(&released),
        vec![5],
        "key A is free again once w1 holds none of it"
    );
}

#[test]
fn exclusive_mode_has_one_active_worker_until_it_goes_quiet() {
    let mut core = QueueCore::new(
        "q",
        Policy {
            mode: ConsumerMode::Exclusive,
            ..policy()
        },
    );
    core.register(0, 4, 0, None, 0);
    assert_eq!(core.deliver("w1", 1, 0).0.len(), 1);
    assert!(core.deliver("w2", 1, 10).0.is_empty(), "w1 is active");
    core.ack(0, 1).unwrap();
    assert!(core.deliver("w2", 1, 500).0.is_empty(), "w1 asked recently");
    assert_eq!(
        core.deliver("w2", 1, 2_000).0.len(),
        1,
        "w1 went quiet: w2 takes over"
    );
    assert!(core.deliver("w1", 1, 2_001).0.is_empty());
}

#[test]
fn a_paused_queue_delivers_nothing_until_resumed() {
    let mut core = QueueCore::new("q", policy());
    core.register(0, 2, 0, None, 0);
    core.set_paused(true);
    assert!(core.deliver("w", 10, 0).0.is_empty());
    core.set_paused(false);
    assert_eq!(core.deliver("w", 10, 0).0.len(), 2);
}

fn keys_of(writes: &[StateWrite]) -> Vec<String> {
    writes
        .iter()
        .map(|write| match write {
            StateWrite::Put { key, .. } | StateWrite::PutMax { key, .. } => {
                format!("put {}", keys::suffix("q", key).unwrap())
            }
            StateWrite::Delete { key, .. } => format!("delete {}", keys::suffix("q", key).unwrap()),
            other => format!("{other:?}"),
        })
        .collect()
}

#[test]
fn at_most_once_queues_record_first_deliveries_as_runs_that_acks_leave_alone() {
    // max_deliver 1 cannot overcount never-delivered messages: exact runs, not a frontier.
    let mut core = QueueCore::new(
        "q",
        Policy {
            max_deliver: 1,
            ..policy()
        },
    );
    core.register(0, 4, 0, None, 0);
    core.register(4, 6, 9, None, 0);
    let leased = core.lease("w", 6, 0);
    assert_eq!(offsets(&leased.grants), vec![4, 5, 0, 1, 2, 3]);
    assert!(leased.wait, "handed out only once the runs are durable");
    assert_eq!(
        keys_of(&leased.writes),
        vec![format!("put G{:020}", 6)],
        "one run for the consecutive offsets, whatever order they were picked in"
    );
    let ack = core.ack(2, 1).unwrap();
    assert_eq!(
        keys_of(&ack),
        vec![format!("put A{:020}", 2)],
        "no D key to delete"
    );
    let mut floor_writes = Vec::new();
    for offset in [0, 1, 3, 4] {
        floor_writes.extend(keys_of(&core.ack(offset, 1).unwrap()));
    }
    assert!(
        !floor_writes.iter().any(|w| w.starts_with("delete G")),
        "offset 5 is still out: the run stays"
    );
    let last = keys_of(&core.ack(5, 1).unwrap());
    assert_eq!(core.floor(), 6);
    assert!(last.contains(&format!("delete G{:020}", 6)), "{last:?}");
}

#[test]
fn recovered_runs_give_unfinished_offsets_one_attempt_unless_a_d_key_says_otherwise() {
    let mut core = QueueCore::new("q", policy());
    // Run [0, 6) delivered; 1 and 4 finished; 2 failed twice (its D key); floor 0.
    core.recover(
        0,
        [(1, 2), (4, 5)],
        [(2, 2, "boom".to_string())],
        [],
        &NoTimers,
        8,
    );
    core.recover_runs([(0, 6)]);
    let (grants, writes) = core.deliver("w", 10, 0);
    let attempts: Vec<(u64, u32)> = grants.iter().map(|g| (g.offset, g.attempt)).collect();
    assert_eq!(
        attempts,
        vec![(0, 2), (2, 3), (3, 2), (5, 2), (6, 1), (7, 1)],
        "redelivered offsets count the lost attempt; 6 and 7 were never delivered"
    );
    assert_eq!(
        keys_of(&writes)
            .iter()
            .filter(|w| w.starts_with("put D"))
            .count(),
        4,
        "a second attempt is recorded in its own D key"
    );
    let ack = keys_of(&core.ack(3, 2).unwrap());
    assert!(
        ack.contains(&format!("delete D{:020}", 3)),
        "the ack deletes the D key of a redelivered run offset: {ack:?}"
    );
}

/// Applies writes to a map the way the state store would (keys without the queue prefix).
fn apply_to(store: &mut std::collections::BTreeMap<String, Vec<u8>>, writes: &[StateWrite]) {
    for write in writes {
        match write {
            StateWrite::Put { key, value, .. } => {
                store.insert(keys::suffix("q", key).unwrap().to_string(), value.clone());
            }
            StateWrite::PutMax { key, value, .. } => {
                let key = keys::suffix("q", key).unwrap().to_string();
                if store.get(&key).is_none_or(|stored| value > stored) {
                    store.insert(key, value.clone());
                }
            }
            StateWrite::Delete { key, .. } => {
                store.remove(keys::suffix("q", key).unwrap());
            }
            StateWrite::DeleteRange { start, end, .. } => {
                let (start, end) = (
                    keys::suffix("q", start).unwrap(),
                    keys::suffix("q", end).unwrap(),
                );
                store.retain(|key, _| !(key.as_str() >= start && key.as_str() < end));
            }
            StateWrite::DeletePrefix { .. } => unreachable!("not written by acks"),
        }
    }
}

/// The finished runs a store holds, as recovery reads them.
fn stored_runs(store: &std::collections::BTreeMap<String, Vec<u8>>) -> Vec<(u64, u64)> {
    store
        .iter()
        .filter_map(|(key, value)| {
            let start: u64 = key.strip_prefix('A')?.parse().ok()?;
            Some((start, u64::from_be_bytes(value[..8].try_into().ok()?)))
        })
        .collect()
}

#[test]
fn finished_offsets_above_the_floor_are_stored_one_key_per_run() {
    let mut core = QueueCore::new("q", policy());
    core.register(0, 12, 0, None, 0);
    core.deliver("w", 12, 0);
    let mut store = std::collections::BTreeMap::new();
    let mut ack = |offset| {
        let writes = core.ack(offset, 1).unwrap();
        apply_to(&mut store, &writes);
        (
            stored_runs(&store),
            core.unfinished_after(None, 100),
            store.get("F").cloned(),
        )
    };
    assert_eq!(ack(5).0, vec![(5, 6)]);
    assert_eq!(ack(6).0, vec![(5, 7)], "a consecutive ack extends the run");
    assert_eq!(ack(9).0, vec![(5, 7), (9, 10)]);
    assert_eq!(ack(4).0, vec![(4, 7), (9, 10)], "a run can grow downwards");
    assert_eq!(
        ack(8).0,
        vec![(4, 7), (8, 10)],
        "the run that began after it is rewritten under the new start"
    );
    assert_eq!(ack(7).0, vec![(4, 10)], "two runs join");
    let (runs, unfinished, _) = ack(1);
    assert_eq!(runs, vec![(1, 2), (4, 10)]);
    assert_eq!(unfinished, vec![0, 2, 3, 10, 11]);

    // Recovery from those keys gives the same finished offsets.
    let mut recovered = QueueCore::new("q", policy());
    recovered.recover(0, runs, [], [], &NoTimers, 12);
    assert_eq!(recovered.unfinished_after(None, 100), unfinished);

    // The floor passes every run below it; their keys go.
    ack(0);
    ack(2);
    let (runs, unfinished, floor) = ack(3);
    assert_eq!(runs, Vec::<(u64, u64)>::new());
    assert_eq!(unfinished, vec![10, 11]);
    assert_eq!(floor, Some(10u64.to_be_bytes().to_vec()));
}

#[test]
fn purging_many_ready_messages_writes_one_run() {
    let mut core = QueueCore::new("q", policy());
    core.register(0, 10_000, 0, None, 0);
    core.deliver("w", 1, 0); // offset 0 stays out, so the floor cannot move
    let writes = core.purge(&NoTimers);
    let mut store = std::collections::BTreeMap::new();
    apply_to(&mut store, &writes);
    assert_eq!(stored_runs(&store), vec![(1, 10_000)]);
}

/// Found by the crash campaign (crash_jobs, 2 of 8 runs of 100 kills): a queue's commits are
/// not ordered among themselves, so an older ack's commit could reach the state store after
/// a newer one's. With plain puts the older floor and run ends then overwrote the newer ones,
/// and after a crash in that window jobs whose completion had been acknowledged ran again.
#[test]
fn acks_committed_in_the_other_order_still_recover_every_finished_offset() {
    let mut core = QueueCore::new("q", policy());
    core.register(0, 8, 0, None, 0);
    core.deliver("w", 8, 0);
    // Changes in this order; each one's writes are computed from the memory before it.
    let in_order: Vec<Vec<StateWrite>> = [1u64, 0, 2, 5, 6, 4]
        .iter()
        .map(|offset| core.ack(*offset, 1).unwrap())
        .collect();
    let finished_in_memory = core.unfinished_after(None, 100);
    assert_eq!(finished_in_memory, vec![3, 7]);
    // Every order in which the six commits could reach the store.
    let mut orders = vec![(0..in_order.len()).collect::<Vec<usize>>()];
    orders.push((0..in_order.len()).rev().collect());
    orders.push(vec![1, 0, 2, 4, 3, 5]);
    orders.push(vec![2, 5, 0, 1, 4, 3]);
    for order in orders {
        let mut store = std::collections::BTreeMap::new();
        for index in &order {
            apply_to(&mut store, &in_order[*index]);
        }
        let floor = store.get("F").map_or(0, |value| {
            u64::from_be_bytes(value[..8].try_into().unwrap())
        });
        let mut recovered = QueueCore::new("q", policy());
        recovered.recover(floor, stored_runs(&store), [], [], &NoTimers, 8);
        assert_eq!(
            recovered.unfinished_after(None, 100),
            finished_in_memory,
            "commits applied in the order {order:?} lost a finished offset"
        );
    }
}

#[path = "lease_tests.rs"]
mod lease_tests;

/// What `writes` leave in a table that held nothing: key → value, as the state store applies
/// them (put-max keeps the larger value).
fn applied(writes: &[StateWrite]) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut table = std::collections::BTreeMap::new();
    for write in writes {
        match write {
            StateWrite::Put { key, value, .. } => {
                table.insert(key.clone(), value.clone());
            }
            StateWrite::PutMax { key, value, .. } => {
                let slot = table.entry(key.clone()).or_insert_with(Vec::new);
                if *value > *slot {
                    *slot = value.clone();
                }
            }
            StateWrite::Delete { key, .. } => {
                table.remove(key);
            }
            StateWrite::DeleteRange { start, end, .. } => {
                table.retain(|key, _| key < start || key >= end);
            }
            StateWrite::DeletePrefix { prefix, .. } => {
                table.retain(|key, _| !key.starts_with(prefix.as_str()));
            }
        }
    }
    table
}

#[test]
fn acking_many_at_once_ends_as_acking_one_by_one_with_one_floor_write() {
    let grants_of = |core: &mut QueueCore| {
        core.register(0, 10, 0, None, 0);
        let (grants, _) = core.deliver("w", 8, 0);
        grants
            .iter()
            .map(|grant| (grant.offset, grant.attempt))
            .collect::<Vec<_>>()
    };
    // Out of order, with a run above the floor, a stale attempt and an offset never leased.
    let order = [
        (3, 1),
        (0, 1),
        (1, 1),
        (5, 1),
        (2, 7),
        (2, 1),
        (6, 1),
        (9, 1),
    ];
    let mut one_by_one = QueueCore::new("q", policy());
    let mut at_once = QueueCore::new("q", policy());
    assert_eq!(grants_of(&mut one_by_one), grants_of(&mut at_once));
    let mut single_writes = Vec::new();
    for (offset, attempt) in order {
        single_writes.extend(one_by_one.ack(offset, attempt).unwrap_or_default());
    }
    let batch_writes = at_once.ack_many(&order);
    assert_eq!(at_once.floor(), 4, "0..=3 acked; 4 is still out");
    assert_eq!(at_once.floor(), one_by_one.floor());
    assert_eq!(
        format!("{:?}", at_once.counts()),
        format!("{:?}", one_by_one.counts())
    );
    let floor_writes = keys_of(&batch_writes)
        .into_iter()
        .filter(|key| key == "put F")
        .count();
    assert_eq!(floor_writes, 1, "{:?}", keys_of(&batch_writes));
    // The stored floor and the runs at or above it are the same either way.
    let at_or_above_floor = |writes: &[StateWrite]| {
        let floor = keys::acked("q", 4);
        applied(writes)
            .into_iter()
            .filter(|(key, _)| *key >= floor || key.ends_with('F'))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        at_or_above_floor(&batch_writes),
        at_or_above_floor(&single_writes)
    );
    // What is left is leased as before: 4 and 7 only, then acked the same way.
    assert!(!at_once.ack_many(&[(4, 1), (7, 1)]).is_empty());
    assert_eq!(at_once.floor(), 8);
}

#[test]
fn counts_from_a_log_start_leave_out_what_is_gone_and_the_floor_from_it_skips_finished_runs() {
    let mut core = QueueCore::new("q", policy());
    core.register(0, 6, 0, None, 0);
    let (grants, _) = core.deliver("w", 3, 0);
    assert_eq!(offsets(&grants), vec![0, 1, 2]);
    // 0 nacked at once (waiting to be delivered again), 1 delivered again later, 2 leased.
    core.nack(0, 1, Some(0), "no", 0).unwrap();
    core.nack(1, 1, Some(0), "no", 0).unwrap();
    let (again, _) = core.deliver("w", 1, 0);
    assert_eq!(offsets(&again), vec![0]);
    let (counts, redelivered, awaiting) = core.counts_from(0);
    assert_eq!(
        (counts.ready, counts.leased),
        (4, 2),
        "1, 3, 4, 5 ready; 0, 2 leased"
    );
    assert_eq!(
        (redelivered, awaiting),
        (1, 1),
        "0 went out twice; 1 waits to go again"
    );
    // Everything below 2 gone from the log: neither counted nor holding the floor.
    let (counts, redelivered, awaiting) = core.counts_from(2);
    assert_eq!((counts.ready, counts.leased), (3, 1));
    assert_eq!((redelivered, awaiting), (0, 0));
    assert_eq!(core.floor(), 0);
    assert_eq!(core.floor_from(2), 2, "2 is still leased");
    core.ack(2, 1).unwrap();
    assert_eq!(core.floor_from(2), 3);
    assert_eq!(core.floor_from(1), 1);
}
