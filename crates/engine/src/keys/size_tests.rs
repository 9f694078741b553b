//! The keyspace's byte count (what `KEYSPACE_BYTES_MAX` bounds) against a count from
//! scratch, through a seeded run of every command that changes a collection, and after the
//! keyspace is loaded again from the store; and what one small element costs.

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::entry::{field_size, item_size, member_size, scored_size, Inner, Value};
use super::tests::reopen;
use super::*;

fn b(text: &str) -> Bytes {
    Bytes::copy_from_slice(text.as_bytes())
}

/// Every key's bytes and its value's size, counted again from what it holds.
fn counted_from_scratch(inner: &Inner) -> u64 {
    inner
        .entries
        .iter()
        .map(|(key, entry)| {
            key.len() as u64
                + match &entry.value {
                    Value::String(value) => value.len() as u64,
                    Value::List(list) => list.items.iter().map(|item| item_size(item)).sum(),
                    Value::Hash(hash) => hash
                        .fields
                        .iter()
                        .map(|(field, (_, value))| field_size(field, value))
                        .sum(),
                    Value::Set(set) => set.members.iter().map(|member| member_size(member)).sum(),
                    Value::SortedSet(set) => {
                        set.scores.keys().map(|member| scored_size(member)).sum()
                    }
                }
        })
        .sum()
}

fn assert_counted(keys: &Keyspace, after: &str) {
    let inner = keys.lock();
    assert_eq!(
        inner.bytes,
        counted_from_scratch(&inner),
        "the byte count drifted after {after}"
    );
}

/// A value of 0 to 40 bytes from a few shapes, so that members repeat and lists hold
/// duplicates for LREM and LINSERT's pivots.
fn value(random: &mut StdRng) -> Bytes {
    let length = [0, 1, 3, 8, 40][random.random_range(0..5)];
    Bytes::from(vec![b'a' + random.random_range(0..3u8); length])
}

/// One random change to one of a few keys of each kind; its name, for the assertion.
fn change(keys: &Keyspace, random: &mut StdRng) -> &'static str {
    let key = |random: &mut StdRng, kind: &str| b(&format!("{kind}{}", random.random_range(0..3)));
    let end = |random: &mut StdRng| {
        if random.random_bool(0.5) {
            End::Left
        } else {
            End::Right
        }
    };
    match random.random_range(0..22) {
        0 => {
            let values = (0..random.random_range(1..5))
                .map(|_| value(random))
                .collect();
            let _ = keys.push(&key(random, "l"), values, end(random), false);
            "push"
        }
        1 => {
            let _ = keys.pop(&key(random, "l"), end(random), random.random_range(1..4));
            "pop"
        }
        2 => {
            let _ = keys.set_at(&key(random, "l"), random.random_range(-3..3), value(random));
            "set_at"
        }
        3 => {
            let (pivot, new) = (value(random), value(random));
            let _ = keys.insert(&key(random, "l"), random.random_bool(0.5), &pivot, new);
            "insert"
        }
        4 => {
            let matching = value(random);
            let _ = keys.remove_matching(&key(random, "l"), random.random_range(-2..3), &matching);
            "remove_matching"
        }
        5 => {
            let _ = keys.trim(
                &key(random, "l"),
                random.random_range(-4..3),
                random.random_range(-3..4),
            );
            "trim"
        }
        6 => {
            let (source, destination) = (key(random, "l"), key(random, "l"));
            let _ = keys.move_item(&source, &destination, end(random), end(random));
            "move_item"
        }
        7 => {
            let pairs = (0..random.random_range(1..4))
                .map(|_| (value(random), value(random)))
                .collect();
            let _ = keys.hash_set(&key(random, "h"), pairs, random.random_bool(0.2));
            "hash_set"
        }
        8 => {
            let fields = [value(random), value(random)];
            let _ = keys.hash_delete(&key(random, "h"), &fields);
            "hash_delete"
        }
        9 => {
            let _ = keys.hash_increment(
                &key(random, "h"),
                &value(random),
                random.random_range(-100..100),
            );
            "hash_increment"
        }
        10 => {
            let members = (0..random.random_range(1..4))
                .map(|_| value(random))
                .collect();
            let _ = keys.set_add(&key(random, "s"), members);
            "set_add"
        }
        11 => {
            let _ = keys.set_remove(&key(random, "s"), &[value(random)]);
            "set_remove"
        }
        12 => {
            let _ = keys.set_pop(&key(random, "s"), random.random_range(1..3));
            "set_pop"
        }
        13 => {
            let (source, destination) = (key(random, "s"), key(random, "s"));
            let _ = keys.set_move(&source, &destination, &value(random));
            "set_move"
        }
        14 => {
            let operation = [
                SetOperation::Union,
                SetOperation::Intersection,
                SetOperation::Difference,
            ][random.random_range(0..3)];
            let sources = [key(random, "s"), key(random, "s")];
            let _ = keys.set_combine_store(operation, &key(random, "s"), &sources);
            "set_combine_store"
        }
        15 => {
            let pairs = (0..random.random_range(1..4))
                .map(|_| (f64::from(random.random_range(-5..5)), value(random)))
                .collect();
            let _ = keys.zset_add(&key(random, "z"), pairs, ZAddOptions::default());
            "zset_add"
        }
        16 => {
            let _ = keys.zset_remove(&key(random, "z"), &[value(random)]);
            "zset_remove"
        }
        17 => {
            let _ = keys.zset_pop(
                &key(random, "z"),
                random.random_range(1..3),
                random.random_bool(0.5),
            );
            "zset_pop"
        }
        18 => {
            let kind = ["l", "h", "s", "z", "k"][random.random_range(0..5)];
            let (source, destination) = (key(random, kind), key(random, kind));
            let _ = keys.rename(&source, &destination, false);
            "rename"
        }
        19 => {
            let kind = ["l", "h", "s", "z", "k"][random.random_range(0..5)];
            let (source, destination) = (key(random, kind), key(random, kind));
            let _ = keys.copy(&source, &destination, true);
            "copy"
        }
        20 => {
            let _ = keys.set(key(random, "k"), value(random), SetOptions::default());
            "set"
        }
        _ => {
            let kind = ["l", "h", "s", "z", "k"][random.random_range(0..5)];
            let _ = keys.delete(&[key(random, kind)]);
            "delete"
        }
    }
}

#[tokio::test]
async fn the_byte_count_follows_every_change_and_survives_a_reload() {
    let dir = tempfile::tempdir().expect("temp dir");
    {
        let (_state, keys) = reopen(dir.path()).await;
        let mut random = StdRng::seed_from_u64(7);
        for _ in 0..3_000 {
            let name = change(&keys, &mut random);
            assert_counted(&keys, name);
        }
        // Every change durable before the store is read back.
        keys.set(b("last"), b("x"), SetOptions::default())
            .unwrap()
            .wait()
            .await
            .unwrap();
        assert!(keys.lock().bytes > 0);
    }
    let (_state, keys) = reopen(dir.path()).await;
    assert_counted(&keys, "loading the keyspace again");
}

#[tokio::test]
async fn a_small_element_costs_more_than_its_bytes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_state, keys) = reopen(dir.path()).await;
    let members: Vec<Bytes> = (0..1_000u32)
        .map(|n| Bytes::from(n.to_be_bytes().to_vec()))
        .collect();
    keys.set_add(&b("s"), members)
        .unwrap()
        .wait()
        .await
        .unwrap();
    let bytes = keys.lock().bytes;
    // 1,000 members of 4 bytes: their bytes alone are 4,000.
    assert_eq!(bytes, 1 + 1_000 * (4 + entry::SET_MEMBER_OVERHEAD));
    assert!(bytes > 50_000, "{bytes}");
}
