//! Redis keys under `kill -9`: redis-crate clients send pipelined SETs (some with a TTL),
//! HSETs of the same pairs into a hash per writer, SADDs of the keys into a set and ZADDs of
//! them into a sorted set per writer (scored by their place), a SETBIT and a SETRANGE per
//! pipeline into a bitmap and a string per writer, and INCRs while the broker is killed at
//! random moments and restarted on the same data. Checks, over all cycles, that every SET,
//! HSET, SADD, ZADD, SETBIT and SETRANGE whose answer arrived reads back with its value,
//! member, score, bit or bytes — an answer means fsynced — and that a counter is never below
//! the last value an INCR answered.
//!
//! `OMNIBUS_REDIS_CRASH_CYCLES` sets the number of cycles (default 3); `OMNIBUS_CRASH_SEED`
//! replays the kill timing. The last line printed is the summary:
//! `crash summary: crash_redis [kill -9] cycles=<n> acknowledged=<n> lost=0`.

mod support;

use std::sync::{Arc, Mutex};

use support::{crash, Broker};

const CYCLES_DEFAULT: usize = 3;
const WRITERS: usize = 3;
const PIPELINE: usize = 20;
const KILL_AFTER_MS: std::ops::Range<u64> = 200..700;

/// Every acknowledged (key, value), and the highest counter value answered.
#[derive(Default)]
struct Ledger {
    sets: Vec<(String, String)>,
    /// (hash, field, value) of every acknowledged HSET.
    fields: Vec<(String, String, String)>,
    /// (set, member) of every acknowledged SADD.
    members: Vec<(String, String)>,
    /// (sorted set, member, score) of every acknowledged ZADD.
    scored: Vec<(String, String, i64)>,
    /// (bitmap, offset) of every acknowledged SETBIT to 1.
    bits: Vec<(String, usize)>,
    /// (string, offset, bytes) of every acknowledged SETRANGE.
    patches: Vec<(String, usize, String)>,
    counter: i64,
}

/// Writes until the broker goes away, recording what was acknowledged.
async fn write(
    mut con: redis::aio::MultiplexedConnection,
    cycle: usize,
    writer: usize,
    ledger: Arc<Mutex<Ledger>>,
) {
    for round in 0.. {
        let mut pipe = redis::pipe();
        let mut pairs = Vec::new();
        for number in 0..PIPELINE {
            let key = format!("c{cycle}:w{writer}:{round}:{number}");
            let value = format!("v{round}-{number}");
            if number % 2 == 0 {
                pipe.cmd("SET").arg(&key).arg(&value);
            } else {
                pipe.cmd("SET").arg(&key).arg(&value).arg("EX").arg(3600);
            }
            pairs.push((key, value));
        }
        let hash = format!("h{cycle}:w{writer}");
        for (key, value) in &pairs {
            pipe.cmd("HSET").arg(&hash).arg(key).arg(value);
        }
        let (set, zset) = (format!("s{cycle}:w{writer}"), format!("z{cycle}:w{writer}"));
        for (key, _) in &pairs {
            pipe.cmd("SADD").arg(&set).arg(key);
        }
        let score = |number: usize| (round * PIPELINE + number) as i64;
        for (number, (key, _)) in pairs.iter().enumerate() {
            pipe.cmd("ZADD").arg(&zset).arg(score(number)).arg(key);
        }
        let (bitmap, text) = (format!("b{cycle}:w{writer}"), format!("t{cycle}:w{writer}"));
        let patch = format!("r{round:07}");
        pipe.cmd("SETBIT").arg(&bitmap).arg(round).arg(1);
        pipe.cmd("SETRANGE").arg(&text).arg(round * 8).arg(&patch);
        pipe.cmd("INCR").arg("counter");
        let Some(replies) = crash::send::<Vec<redis::Value>>(&mut con, &pipe).await else {
            return;
        };
        let mut ledger = ledger.lock().unwrap();
        let field_replies = &replies[PIPELINE..2 * PIPELINE];
        for ((key, value), reply) in pairs.iter().zip(field_replies) {
            if matches!(reply, redis::Value::Int(_)) {
                ledger
                    .fields
                    .push((hash.clone(), key.clone(), value.clone()));
            }
        }
        let member_replies = &replies[2 * PIPELINE..3 * PIPELINE];
        for ((key, _), reply) in pairs.iter().zip(member_replies) {
            if matches!(reply, redis::Value::Int(_)) {
                ledger.members.push((set.clone(), key.clone()));
            }
        }
        let scored_replies = &replies[3 * PIPELINE..4 * PIPELINE];
        for (number, ((key, _), reply)) in pairs.iter().zip(scored_replies).enumerate() {
            if matches!(reply, redis::Value::Int(_)) {
                ledger
                    .scored
                    .push((zset.clone(), key.clone(), score(number)));
            }
        }
        for ((key, value), reply) in pairs.into_iter().zip(&replies) {
            if matches!(reply, redis::Value::Okay) {
                ledger.sets.push((key, value));
            }
        }
        if matches!(replies[4 * PIPELINE], redis::Value::Int(_)) {
            ledger.bits.push((bitmap, round));
        }
        if matches!(replies[4 * PIPELINE + 1], redis::Value::Int(_)) {
            ledger.patches.push((text, round * 8, patch));
        }
        if let Some(redis::Value::Int(counter)) = replies.last() {
            ledger.counter = ledger.counter.max(*counter);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_redis_writes_survive_kill_9() {
    let cycles = crash::cycles("OMNIBUS_REDIS_CRASH_CYCLES", CYCLES_DEFAULT);
    let mut random = crash::seeded("crash_redis");
    let directory = tempfile::tempdir().unwrap();
    let data_dir = directory.path().join("data");
    let log = directory.path().join("broker.log");
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    for cycle in 0..cycles {
        let mut broker = Broker::start(&data_dir, log.clone()).await;
        let mut tasks = Vec::new();
        for writer in 0..WRITERS {
            let con = crash::redis(&broker).await;
            tasks.push(tokio::spawn(write(con, cycle, writer, ledger.clone())));
        }
        crash::kill_9_after(&mut random, KILL_AFTER_MS, &mut broker, tasks).await;
    }
    let broker = Broker::start(&data_dir, log.clone()).await;
    let mut con = crash::redis(&broker).await;
    let (sets, fields, members, scored, counter) = {
        let ledger = ledger.lock().unwrap();
        (
            ledger.sets.clone(),
            ledger.fields.clone(),
            ledger.members.clone(),
            ledger.scored.clone(),
            ledger.counter,
        )
    };
    let (bits, patches) = {
        let ledger = ledger.lock().unwrap();
        (ledger.bits.clone(), ledger.patches.clone())
    };
    assert!(!sets.is_empty(), "no SET was acknowledged");
    let mut lost = Vec::new();
    for chunk in sets.chunks(500) {
        let keys: Vec<&str> = chunk.iter().map(|(key, _)| key.as_str()).collect();
        let values: Vec<Option<String>> = redis::cmd("MGET")
            .arg(&keys)
            .query_async(&mut con)
            .await
            .unwrap();
        for ((key, value), stored) in chunk.iter().zip(values) {
            if stored.as_deref() != Some(value.as_str()) {
                lost.push(format!("{key}: {value} expected, found {stored:?}"));
            }
        }
    }
    assert!(!fields.is_empty(), "no HSET was acknowledged");
    let mut hashes: std::collections::HashMap<&str, std::collections::HashMap<String, String>> =
        std::collections::HashMap::new();
    for (hash, field, value) in &fields {
        if !hashes.contains_key(hash.as_str()) {
            let all = redis::cmd("HGETALL")
                .arg(hash)
                .query_async(&mut con)
                .await
                .unwrap();
            hashes.insert(hash, all);
        }
        let stored = hashes[hash.as_str()].get(field);
        if stored != Some(value) {
            lost.push(format!(
                "{hash} {field}: {value} expected, found {stored:?}"
            ));
        }
    }
    assert!(!members.is_empty(), "no SADD was acknowledged");
    let mut stored_sets = std::collections::HashMap::new();
    for (set, member) in &members {
        if !stored_sets.contains_key(set) {
            let all: std::collections::HashSet<String> = redis::cmd("SMEMBERS")
                .arg(set)
                .query_async(&mut con)
                .await
                .unwrap();
            stored_sets.insert(set.clone(), all);
        }
        if !stored_sets[set].contains(member) {
            lost.push(format!("{set} lost member {member}"));
        }
    }
    assert!(!scored.is_empty(), "no ZADD was acknowledged");
    let mut stored_zsets = std::collections::HashMap::new();
    for (zset, member, score) in &scored {
        if !stored_zsets.contains_key(zset) {
            let all: Vec<(String, i64)> = redis::cmd("ZRANGE")
                .arg(zset)
                .arg(0)
                .arg(-1)
                .arg("WITHSCORES")
                .query_async(&mut con)
                .await
                .unwrap();
            let all: std::collections::HashMap<String, i64> = all.into_iter().collect();
            stored_zsets.insert(zset.clone(), all);
        }
        let stored = stored_zsets[zset].get(member);
        if stored != Some(score) {
            lost.push(format!(
                "{zset} {member}: {score} expected, found {stored:?}"
            ));
        }
    }
    assert!(!bits.is_empty(), "no SETBIT was acknowledged");
    for (bitmap, offset) in &bits {
        let bit: i64 = redis::cmd("GETBIT")
            .arg(bitmap)
            .arg(offset)
            .query_async(&mut con)
            .await
            .unwrap();
        if bit != 1 {
            lost.push(format!("{bitmap} lost bit {offset}"));
        }
    }
    for (text, offset, patch) in &patches {
        let stored: String = redis::cmd("GETRANGE")
            .arg(text)
            .arg(offset)
            .arg(offset + patch.len() - 1)
            .query_async(&mut con)
            .await
            .unwrap();
        if &stored != patch {
            lost.push(format!(
                "{text} at {offset}: {patch} expected, found {stored:?}"
            ));
        }
    }
    let stored: i64 = redis::cmd("GET")
        .arg("counter")
        .query_async::<Option<i64>>(&mut con)
        .await
        .unwrap()
        .unwrap_or(0);
    println!(
        "crash summary: crash_redis [kill -9] cycles={cycles} acknowledged={} lost={}",
        sets.len(),
        lost.len()
    );
    assert!(
        lost.is_empty(),
        "acknowledged writes lost: {:?}",
        &lost[..lost.len().min(10)]
    );
    assert!(
        stored >= counter,
        "the counter went back from {counter} to {stored}"
    );
}
