//! Leases without waiting for the disk, and attempt counts that stay honest across crashes
//! (`leases.rs`).

use super::*;

fn frontier_of(writes: &[StateWrite], priority: usize) -> Option<u64> {
    writes.iter().find_map(|write| match write {
        StateWrite::PutMax { key, value, .. } if *key == keys::frontier("q", priority) => {
            Some(u64::from_be_bytes(value[..8].try_into().unwrap()))
        }
        _ => None,
    })
}

#[test]
fn first_deliveries_wait_only_when_they_overtake_the_durable_frontier() {
    let policy = Policy {
        max_unacked_per_worker: 10_000,
        ..policy()
    };
    let ahead = leases::FRONTIER_AHEAD;
    let mut core = QueueCore::new("q", policy);
    core.register(0, 4 * ahead, 0, None, 0);
    let first = core.lease("w", 1, 0);
    assert!(first.wait, "nothing is counted yet on a new queue");
    assert_eq!(frontier_of(&first.writes, 0), Some(1 + ahead));
    assert_eq!(keys_of(&first.writes).len(), 1, "only the frontier");
    core.frontiers_durable(&first.frontiers);
    // Behind the frontier: nothing to write, nothing to wait for; the ack writes no D key.
    let second = core.lease("w", 10, 0);
    assert!(!second.wait && second.writes.is_empty());
    assert_eq!(
        keys_of(&core.ack(3, 1).unwrap()),
        vec![format!("put A{:020}", 3)]
    );
    // Within half of it: raised ahead, lazily (the grants do not wait). Offsets 11 on.
    let near = core.lease("w", (ahead / 2 + 2) as usize, 0);
    assert_eq!(offsets(&near.grants).last(), Some(&(ahead / 2 + 12)));
    let raised = frontier_of(&near.writes, 0).expect("raised ahead");
    // Raised when offset ahead/2 + 1 came within half of the frontier (1 + ahead), to
    // `ahead` past the next offset.
    assert_eq!(raised, ahead / 2 + 2 + ahead);
    assert!(!near.wait, "the grants are behind the durable frontier");
    // Overtaking a frontier that is not durable yet waits.
    let over = core.lease("w", ahead as usize, 0);
    assert!(over.wait);
    core.frontiers_durable(&near.frontiers);
    core.frontiers_durable(&over.frontiers);
}

#[test]
fn a_retry_is_counted_by_its_failure_so_its_redelivery_writes_nothing() {
    let mut core = QueueCore::new("q", policy());
    core.register(0, 1, 0, None, 0);
    let first = core.lease("w", 1, 0);
    core.frontiers_durable(&first.frontiers);
    let (writes, dead) = core.nack(0, 1, Some(0), "boom", 0).unwrap();
    assert!(dead.is_empty());
    let stored = writes.iter().find_map(|write| match write {
        StateWrite::PutMax { key, value, .. } if *key == keys::delivery("q", 0) => {
            Some(keys::decode_delivery(value))
        }
        _ => None,
    });
    assert_eq!(
        stored,
        Some((2, "boom".into())),
        "the next delivery is counted"
    );
    let pending = core.take_prepay_pending();
    assert_eq!(pending, vec![(0, 2)]);
    // Before the nack's commit is durable, a redelivery writes its own record and waits.
    let raced = core.lease("w", 1, 0);
    assert_eq!(raced.grants[0].attempt, 2);
    assert!(raced.wait);
    assert_eq!(keys_of(&raced.writes), vec![format!("put D{:020}", 0)]);
    // Once it is durable, the next retry's redelivery is free.
    core.nack(0, 2, Some(0), "boom", 0).unwrap();
    let pending = core.take_prepay_pending();
    core.prepaid_durable(&pending);
    let free = core.lease("w", 1, 0);
    assert_eq!(free.grants[0].attempt, 3);
    assert!(!free.wait && free.writes.is_empty());
}

#[test]
fn recovery_counts_every_delivery_that_may_have_happened() {
    let mut core = QueueCore::new("q", policy());
    // Frontier 10 at priority 0; offset 3 failed once (its record counts its retry: 2).
    core.recover(0, [], [(3, 2, "boom".to_string())], [], &NoTimers, 20);
    core.recover_frontiers(&[(0, 10)]);
    let leased = core.lease("w", 20, 0);
    let attempts: Vec<(u64, u32)> = leased
        .grants
        .iter()
        .map(|g| (g.offset, g.attempt))
        .collect();
    let expected: Vec<(u64, u32)> = (0..20)
        .map(|offset| match offset {
            3 => (3, 3),
            o if o < 10 => (o, 2),
            o => (o, 1),
        })
        .collect();
    assert_eq!(attempts, expected);
    assert!(
        leased.wait,
        "recovered attempts are recorded before they are handed out"
    );
}

#[test]
fn a_message_whose_deliveries_ran_out_before_a_restart_is_dead_lettered_not_delivered() {
    let mut core = QueueCore::new("q", policy());
    core.recover(0, [], [(1, 3, "boom".to_string())], [], &NoTimers, 4);
    let leased = core.lease("w", 3, 0);
    assert_eq!(
        offsets(&leased.grants),
        vec![0, 2, 3],
        "it does not use up room"
    );
    assert_eq!(leased.exhausted.len(), 1);
    assert_eq!(leased.exhausted[0].offset, 1);
    assert_eq!(leased.exhausted[0].attempts, 3);
    assert_eq!(leased.exhausted[0].last_error, "boom");
    assert!(leased.wait);
    assert_eq!(core.position(1), Position::Finished);
}

/// Rebuilds a core from a simulated store, as `Queue::open` does.
fn recover_from(store: &std::collections::BTreeMap<String, Vec<u8>>, end: u64) -> QueueCore {
    let number = |text: &str| text.parse::<u64>().unwrap();
    let u64_of = |value: &[u8]| u64::from_be_bytes(value[..8].try_into().unwrap());
    let floor = store.get("F").map_or(0, |v| u64_of(v));
    let mut attempts = Vec::new();
    let mut frontiers = Vec::new();
    for (key, value) in store {
        match key.split_at(1) {
            ("D", offset) => {
                let (count, error) = keys::decode_delivery(value);
                attempts.push((number(offset), count, error));
            }
            ("L", priority) => frontiers.push((number(priority) as usize, u64_of(value))),
            _ => {}
        }
    }
    let mut core = QueueCore::new("q", policy());
    core.recover(floor, stored_runs(store), attempts, [], &NoTimers, end);
    core.recover_frontiers(&frontiers);
    core
}

/// A poison message (its worker dies every time, so its lease expires) with the broker
/// killed after each delivery, losing every write that was not waited for: it still reaches
/// the dead-letter stream within `max_deliver` deliveries.
#[test]
fn a_poison_message_is_dead_lettered_even_when_every_lazy_write_is_lost() {
    for crash_before_expiry in [true, false] {
        let mut store = std::collections::BTreeMap::new();
        let mut core = QueueCore::new("q", policy());
        core.register(0, 1, 0, None, 0);
        let mut deliveries = 0;
        let mut dead = Vec::new();
        for _ in 0..10 {
            let leased = core.lease("w", 1, 0);
            if leased.wait {
                apply_to(&mut store, &leased.writes);
                core.frontiers_durable(&leased.frontiers);
            }
            dead.extend(leased.exhausted);
            if !dead.is_empty() {
                break;
            }
            deliveries += leased.grants.len();
            if !crash_before_expiry {
                // The lease expires (the timer task commits and waits), then the crash.
                let (writes, expired) = core.tick(10_000, &NoTimers);
                apply_to(&mut store, &writes);
                dead.extend(expired);
                if !dead.is_empty() {
                    break;
                }
            }
            core = recover_from(&store, 1);
        }
        assert_eq!(dead.len(), 1, "crash before expiry: {crash_before_expiry}");
        assert!(
            deliveries <= policy().max_deliver as usize,
            "{deliveries} deliveries (crash before expiry: {crash_before_expiry})"
        );
    }
}
