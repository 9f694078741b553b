//! Redis lists under `kill -9`: redis-crate clients push (pipelined RPUSHes), pop (LPOP with
//! a count) and move (LMOVE into a second list) while the broker is killed at random moments
//! and restarted on the same data. Checks, over all cycles:
//! - every element whose push was acknowledged is still in a list, or was taken by a pop or
//!   move (a pop whose reply never came may have taken some: at most what it asked for);
//! - no element whose pop was acknowledged comes back, and none is in two places;
//! - each producer's elements keep their order in the queue.
//!
//! `OMNIBUS_REDIS_CRASH_CYCLES` sets the number of cycles (default 3); `OMNIBUS_CRASH_SEED`
//! replays the kill timing. The last line printed is the summary:
//! `crash summary: crash_redis_lists [kill -9] cycles=<n> acknowledged=<n> lost=0`.

mod support;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use support::{crash, Broker};

const CYCLES_DEFAULT: usize = 3;
const PRODUCERS: usize = 2;
const PIPELINE: usize = 20;
const POP_COUNT: usize = 7;
const KILL_AFTER_MS: std::ops::Range<u64> = 200..700;
const QUEUE: &str = "queue";
const DONE: &str = "done";

#[derive(Default)]
struct Ledger {
    pushed: Vec<String>,
    popped: Vec<String>,
    moved: Vec<String>,
    /// Elements that pops without a reply may have taken.
    unanswered_pops: usize,
}

fn text(value: &redis::Value) -> String {
    match value {
        redis::Value::BulkString(bytes) => String::from_utf8(bytes.clone()).unwrap(),
        other => panic!("not an element: {other:?}"),
    }
}

async fn produce(
    mut con: redis::aio::MultiplexedConnection,
    cycle: usize,
    producer: usize,
    ledger: Arc<Mutex<Ledger>>,
) {
    for round in 0.. {
        let mut pipe = redis::pipe();
        let mut values = Vec::new();
        for number in 0..PIPELINE {
            // Zero-padded, so that a producer's elements sort in the order they were pushed.
            let value = format!("c{cycle}:p{producer}:{round:08}:{number:02}");
            pipe.cmd("RPUSH").arg(QUEUE).arg(&value);
            values.push(value);
        }
        let Some(replies) = crash::send::<Vec<redis::Value>>(&mut con, &pipe).await else {
            return;
        };
        let mut ledger = ledger.lock().unwrap();
        for (value, reply) in values.into_iter().zip(&replies) {
            if matches!(reply, redis::Value::Int(_)) {
                ledger.pushed.push(value);
            }
        }
    }
}

async fn consume(mut con: redis::aio::MultiplexedConnection, ledger: Arc<Mutex<Ledger>>) {
    for round in 0u64.. {
        let mut pipe = redis::pipe();
        pipe.cmd("LPOP").arg(QUEUE).arg(POP_COUNT);
        pipe.cmd("LMOVE")
            .arg(QUEUE)
            .arg(DONE)
            .arg("LEFT")
            .arg("RIGHT");
        ledger.lock().unwrap().unanswered_pops += POP_COUNT;
        let Some(replies) = crash::send::<Vec<redis::Value>>(&mut con, &pipe).await else {
            return;
        };
        {
            let mut ledger = ledger.lock().unwrap();
            ledger.unanswered_pops -= POP_COUNT;
            if let redis::Value::Array(items) = &replies[0] {
                ledger.popped.extend(items.iter().map(text));
            }
            if let value @ redis::Value::BulkString(_) = &replies[1] {
                ledger.moved.push(text(value));
            }
        }
        if round % 4 == 3 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

/// The whole list, read in pages (one reply of everything could outlast the client's
/// response timeout after many cycles).
async fn read_list(con: &mut redis::aio::MultiplexedConnection, key: &str) -> Vec<String> {
    const PAGE: usize = 5_000;
    let mut all = Vec::new();
    loop {
        let page: Vec<String> = redis::cmd("LRANGE")
            .arg(key)
            .arg(all.len())
            .arg(all.len() + PAGE - 1)
            .query_async(con)
            .await
            .unwrap();
        let done = page.len() < PAGE;
        all.extend(page);
        if done {
            return all;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_list_changes_survive_kill_9() {
    let cycles = crash::cycles("OMNIBUS_REDIS_CRASH_CYCLES", CYCLES_DEFAULT);
    let mut random = crash::seeded("crash_redis_lists");
    let directory = tempfile::tempdir().unwrap();
    let data_dir = directory.path().join("data");
    let log = directory.path().join("broker.log");
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    for cycle in 0..cycles {
        let mut broker = Broker::start(&data_dir, log.clone()).await;
        let mut tasks = Vec::new();
        for producer in 0..PRODUCERS {
            let con = crash::redis(&broker).await;
            tasks.push(tokio::spawn(produce(con, cycle, producer, ledger.clone())));
        }
        let con = crash::redis(&broker).await;
        tasks.push(tokio::spawn(consume(con, ledger.clone())));
        crash::kill_9_after(&mut random, KILL_AFTER_MS, &mut broker, tasks).await;
    }
    let broker = Broker::start(&data_dir, log.clone()).await;
    let mut con = crash::redis(&broker).await;
    let queue = read_list(&mut con, QUEUE).await;
    let done = read_list(&mut con, DONE).await;
    let ledger = ledger.lock().unwrap();
    assert!(!ledger.pushed.is_empty(), "no push was acknowledged");
    assert!(!ledger.popped.is_empty(), "no pop was acknowledged");

    // Where each element is now, and that it is in one place only.
    let mut places: HashMap<&str, &str> = HashMap::new();
    let mut twice = Vec::new();
    for (place, elements) in [
        ("queue", &queue),
        ("done", &done),
        ("popped", &ledger.popped),
    ] {
        for element in elements.iter() {
            if let Some(other) = places.insert(element.as_str(), place) {
                twice.push(format!("{element} in {other} and {place}"));
            }
        }
    }
    let moved: HashSet<&str> = ledger.moved.iter().map(String::as_str).collect();
    let missing_moves: Vec<&&str> = moved
        .iter()
        .filter(|element| places.get(**element) != Some(&"done"))
        .collect();
    let lost: Vec<&String> = ledger
        .pushed
        .iter()
        .filter(|element| !places.contains_key(element.as_str()))
        .collect();
    // Each producer's elements keep their order in the queue.
    let mut last: HashMap<String, &str> = HashMap::new();
    let mut reordered = Vec::new();
    for element in &queue {
        let (source, _) = element.rsplit_once(':').unwrap();
        let (source, _) = source.rsplit_once(':').unwrap();
        if let Some(before) = last.insert(source.to_string(), element) {
            if before > element.as_str() {
                reordered.push(format!("{before} before {element}"));
            }
        }
    }
    println!(
        "crash summary: crash_redis_lists [kill -9] cycles={cycles} acknowledged={} lost={}",
        ledger.pushed.len(),
        lost.len().saturating_sub(ledger.unanswered_pops)
    );
    assert!(twice.is_empty(), "elements in two places: {twice:?}");
    assert!(
        missing_moves.is_empty(),
        "acknowledged moves not in {DONE}: {missing_moves:?}"
    );
    assert!(
        lost.len() <= ledger.unanswered_pops,
        "{} acknowledged pushes lost, more than the {} elements unanswered pops could take: {:?}",
        lost.len(),
        ledger.unanswered_pops,
        &lost[..lost.len().min(10)]
    );
    assert!(reordered.is_empty(), "reordered: {reordered:?}");
}
