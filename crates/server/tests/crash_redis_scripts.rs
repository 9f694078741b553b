//! Scripts and transactions under `kill -9`: all of one or none of it. redis-crate clients
//! send pipelined EVALs, each writing five keys of four kinds (a string, a hash field, a list
//! element, a set member, a counter) and appending to a stream, MULTI/EXEC blocks writing
//! three, and (on connections of their own) scripts that only append, while the broker
//! (its Redis door on two threads) is killed at random moments and restarted on the same
//! data. Checks, over all cycles, that every script and transaction whose answer arrived
//! reads back whole, and that none was kept in part: per writer, the counter, the list's
//! length, the set's and the hash's sizes agree, and every listed id has its string key; and
//! every acknowledged script's stream entry is there (a stream is another store: its entries
//! are fsynced before the script's key changes, so they are checked for loss only), the
//! appending scripts' too.
//!
//! `OMNIBUS_REDIS_CRASH_CYCLES` sets the number of cycles (default 3); `OMNIBUS_CRASH_SEED`
//! replays the kill timing. The last line printed is the summary:
//! `crash summary: crash_redis_scripts [kill -9] cycles=<n> acknowledged=<n> lost=0 torn=0`.

mod support;

use std::sync::{Arc, Mutex};

use support::{crash, Broker};

const CYCLES_DEFAULT: usize = 3;
const WRITERS: usize = 3;
const PIPELINE: usize = 10;
const KILL_AFTER_MS: std::ops::Range<u64> = 200..700;

const SCRIPT: &str = r#"
local id, writer = ARGV[1], ARGV[2]
redis.call('SET', 'k:' .. id, id)
redis.call('HSET', 'h:' .. writer, id, id)
redis.call('RPUSH', 'l:' .. writer, id)
redis.call('SADD', 's:' .. writer, id)
redis.call('XADD', 'x:' .. writer, '*', 'id', id)
return redis.call('INCR', 'n:' .. writer)
"#;

/// A script that only appends: its reply waits for nothing but the entry's fsync.
const APPEND: &str = "return redis.call('XADD', KEYS[1], '*', 'id', ARGV[1])";

/// Ids of every acknowledged script and transaction.
#[derive(Default)]
struct Ledger {
    scripts: Vec<String>,
    transactions: Vec<String>,
    appends: Vec<String>,
}

/// The ids one pipeline of a writer's round carries.
fn round_ids(cycle: usize, writer: usize, round: usize, suffix: &str) -> Vec<String> {
    (0..PIPELINE)
        .map(|number| format!("c{cycle}.w{writer}.{round}.{number}{suffix}"))
        .collect()
}

/// The ids in the `id` field of every entry of stream `key`.
async fn appended_ids(
    con: &mut redis::aio::MultiplexedConnection,
    key: String,
) -> std::collections::HashSet<String> {
    let entries: Vec<(String, Vec<String>)> =
        query(con, redis::cmd("XRANGE").arg(key).arg("-").arg("+")).await;
    entries
        .into_iter()
        .filter_map(|(_, fields)| fields.get(1).cloned())
        .collect()
}

async fn write(
    mut con: redis::aio::MultiplexedConnection,
    cycle: usize,
    writer: usize,
    ledger: Arc<Mutex<Ledger>>,
) {
    for round in 0.. {
        let mut pipe = redis::pipe();
        let ids = round_ids(cycle, writer, round, "");
        for id in &ids {
            pipe.cmd("EVAL").arg(SCRIPT).arg(0).arg(id).arg(writer);
        }
        let transaction = format!("c{cycle}.w{writer}.{round}.t");
        pipe.cmd("MULTI")
            .cmd("SET")
            .arg(format!("t:{transaction}"))
            .arg(&transaction)
            .cmd("ZADD")
            .arg(format!("z:{writer}"))
            .arg(round)
            .arg(&transaction)
            .cmd("INCR")
            .arg(format!("m:{writer}"))
            .cmd("EXEC");
        let Some(replies) = crash::send::<Vec<redis::Value>>(&mut con, &pipe).await else {
            return;
        };
        let mut ledger = ledger.lock().unwrap();
        for (id, reply) in ids.into_iter().zip(&replies) {
            if matches!(reply, redis::Value::Int(_)) {
                ledger.scripts.push(id);
            }
        }
        if matches!(replies.last(), Some(redis::Value::Array(answers)) if answers.len() == 3) {
            ledger.transactions.push(transaction);
        }
    }
}

/// Pipelines of appending scripts alone on their connection, so that nothing else's fsync
/// holds their replies back.
async fn append(
    mut con: redis::aio::MultiplexedConnection,
    cycle: usize,
    writer: usize,
    ledger: Arc<Mutex<Ledger>>,
) {
    for round in 0.. {
        let mut pipe = redis::pipe();
        let ids = round_ids(cycle, writer, round, ".a");
        for id in &ids {
            pipe.cmd("EVAL")
                .arg(APPEND)
                .arg(1)
                .arg(format!("y:{writer}"))
                .arg(id);
        }
        let Some(replies) = crash::send::<Vec<redis::Value>>(&mut con, &pipe).await else {
            return;
        };
        let mut ledger = ledger.lock().unwrap();
        for (id, reply) in ids.into_iter().zip(&replies) {
            if matches!(reply, redis::Value::BulkString(_)) {
                ledger.appends.push(id);
            }
        }
    }
}

async fn query<T: redis::FromRedisValue>(
    con: &mut redis::aio::MultiplexedConnection,
    command: &mut redis::Cmd,
) -> T {
    command.query_async(con).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripts_and_transactions_survive_kill_9_whole_or_not_at_all() {
    let cycles = crash::cycles("OMNIBUS_REDIS_CRASH_CYCLES", CYCLES_DEFAULT);
    let mut random = crash::seeded("crash_redis_scripts");
    let directory = tempfile::tempdir().unwrap();
    let data_dir = directory.path().join("data");
    let log = directory.path().join("broker.log");
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let threads = ["--redis-io-threads", "2"];
    for cycle in 0..cycles {
        let mut broker = Broker::start_with_args(&data_dir, log.clone(), &threads).await;
        let mut tasks = Vec::new();
        for writer in 0..WRITERS {
            let con = crash::redis(&broker).await;
            tasks.push(tokio::spawn(write(con, cycle, writer, ledger.clone())));
            let con = crash::redis(&broker).await;
            tasks.push(tokio::spawn(append(con, cycle, writer, ledger.clone())));
        }
        crash::kill_9_after(&mut random, KILL_AFTER_MS, &mut broker, tasks).await;
    }
    let broker = Broker::start_with_args(&data_dir, log.clone(), &threads).await;
    let mut con = crash::redis(&broker).await;
    let (scripts, transactions, appends) = {
        let ledger = ledger.lock().unwrap();
        (
            ledger.scripts.clone(),
            ledger.transactions.clone(),
            ledger.appends.clone(),
        )
    };
    assert!(!scripts.is_empty(), "no script was acknowledged");
    assert!(!transactions.is_empty(), "no transaction was acknowledged");
    let mut lost = Vec::new();
    let mut torn = Vec::new();
    for writer in 0..WRITERS {
        let listed: Vec<String> = query(
            &mut con,
            redis::cmd("LRANGE")
                .arg(format!("l:{writer}"))
                .arg(0)
                .arg(-1),
        )
        .await;
        let counter: Option<usize> =
            query(&mut con, redis::cmd("GET").arg(format!("n:{writer}"))).await;
        let members: usize = query(&mut con, redis::cmd("SCARD").arg(format!("s:{writer}"))).await;
        let fields: usize = query(&mut con, redis::cmd("HLEN").arg(format!("h:{writer}"))).await;
        let sizes = (listed.len(), counter.unwrap_or(0), members, fields);
        if sizes != (listed.len(), listed.len(), listed.len(), listed.len()) {
            torn.push(format!(
                "writer {writer}: list, counter, set, hash = {sizes:?}"
            ));
        }
        for chunk in listed.chunks(500) {
            let keys: Vec<String> = chunk.iter().map(|id| format!("k:{id}")).collect();
            let values: Vec<Option<String>> = query(&mut con, redis::cmd("MGET").arg(&keys)).await;
            for (id, value) in chunk.iter().zip(values) {
                if value.as_deref() != Some(id.as_str()) {
                    torn.push(format!("script {id} listed without its string key"));
                }
            }
        }
        let zcard: usize = query(&mut con, redis::cmd("ZCARD").arg(format!("z:{writer}"))).await;
        let runs: Option<usize> =
            query(&mut con, redis::cmd("GET").arg(format!("m:{writer}"))).await;
        if zcard != runs.unwrap_or(0) {
            torn.push(format!(
                "writer {writer}: {zcard} sorted-set members, counter {runs:?}"
            ));
        }
        let listed: std::collections::HashSet<String> = listed.into_iter().collect();
        let mut appended = appended_ids(&mut con, format!("x:{writer}")).await;
        appended.extend(appended_ids(&mut con, format!("y:{writer}")).await);
        for id in appends
            .iter()
            .filter(|id| id.contains(&format!(".w{writer}.")))
        {
            if !appended.contains(id) {
                lost.push(format!("append {id}"));
            }
        }
        for id in scripts
            .iter()
            .filter(|id| id.contains(&format!(".w{writer}.")))
        {
            if !listed.contains(id) {
                lost.push(format!("script {id}"));
            }
            if !appended.contains(id) {
                lost.push(format!("script {id}'s stream entry"));
            }
        }
    }
    for chunk in transactions.chunks(500) {
        let keys: Vec<String> = chunk.iter().map(|id| format!("t:{id}")).collect();
        let values: Vec<Option<String>> = query(&mut con, redis::cmd("MGET").arg(&keys)).await;
        for (id, value) in chunk.iter().zip(values) {
            if value.as_deref() != Some(id.as_str()) {
                lost.push(format!("transaction {id}"));
            }
        }
    }
    println!(
        "crash summary: crash_redis_scripts [kill -9] cycles={cycles} acknowledged={} lost={} torn={}",
        scripts.len() + transactions.len() + appends.len(),
        lost.len(),
        torn.len()
    );
    assert!(
        lost.is_empty(),
        "acknowledged work lost: {:?}",
        &lost[..lost.len().min(10)]
    );
    assert!(
        torn.is_empty(),
        "kept in part: {:?}",
        &torn[..torn.len().min(10)]
    );
}
