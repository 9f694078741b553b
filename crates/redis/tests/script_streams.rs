//! Stream commands and PUBLISH inside Lua scripts, as job-queue libraries use them (BullMQ's
//! scripts XADD to an events stream and XTRIM it): the replies a client would get outside a
//! script, the script's own entries read back inside it, blocking reads that do not block,
//! and scripts that append while other clients run commands on every door thread — they
//! neither stall (a script waits for its stream's writer, which may run on a thread whose
//! clients wait for the script) nor let another client's command in between.

#[allow(dead_code)]
mod support;

use std::time::Duration;

use omnibus_redis::RedisConfig;
use redis::{cmd, Value};
use support::Broker;

/// Entries as XRANGE answers them: ID and flat fields.
type Entries = Vec<(String, Vec<String>)>;

async fn eval<T: redis::FromRedisValue>(
    con: &mut redis::aio::MultiplexedConnection,
    script: &str,
    keys: &[&str],
    arguments: &[&str],
) -> T {
    cmd("EVAL")
        .arg(script)
        .arg(keys.len())
        .arg(keys)
        .arg(arguments)
        .query_async(con)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_commands_inside_a_script_answer_as_they_do_outside() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start_in(dir.path(), RedisConfig::default()).await;
    let mut con = broker.connect().await;

    // XADD answers the ID, and the script reads its own entries back at once.
    let (first, second, length, range): (String, String, i64, Entries) = eval(
        &mut con,
        "local a = redis.call('XADD', KEYS[1], '1-1', 'job', 'a')
         local b = redis.call('XADD', KEYS[1], '*', 'job', 'b')
         return {a, b, redis.call('XLEN', KEYS[1]), redis.call('XRANGE', KEYS[1], '-', '+')}",
        &["events"],
        &[],
    )
    .await;
    assert_eq!(first, "1-1");
    assert!(second.ends_with("-0") && second != first, "{second}");
    assert_eq!(length, 2);
    assert_eq!(
        range,
        [
            (first.clone(), vec!["job".to_string(), "a".to_string()]),
            (second.clone(), vec!["job".to_string(), "b".to_string()]),
        ]
    );
    // Outside the script, the same two entries.
    let outside: i64 = cmd("XLEN")
        .arg("events")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(outside, 2);

    // A command's refusal is raised as outside a script, and pcall hands it over.
    let refused: String = eval(
        &mut con,
        "return redis.pcall('XADD', KEYS[1], '1-0', 'f', 'v').err",
        &["events"],
        &[],
    )
    .await;
    assert_eq!(
        refused,
        "ERR The ID specified in XADD is equal or smaller than the target stream top item"
    );

    // XREVRANGE, XDEL, XTRIM (exact), XREAD with BLOCK answering at once inside a script.
    let started = std::time::Instant::now();
    let (newest, deleted, trimmed, read): (Entries, i64, i64, Value) = eval(
        &mut con,
        "local newest = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
         local deleted = redis.call('XDEL', KEYS[1], ARGV[1])
         local trimmed = redis.call('XTRIM', KEYS[1], 'MAXLEN', '=', 0)
         local read = redis.call('XREAD', 'BLOCK', 5000, 'STREAMS', KEYS[1], '$')
         return {newest, deleted, trimmed, read}",
        &["events"],
        &[&first],
    )
    .await;
    assert_eq!(newest[0].0, second);
    assert_eq!((deleted, trimmed), (1, 1));
    // XREAD's nil is `false` in Lua, and a nil again in the script's reply.
    assert_eq!(read, Value::Nil);
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "XREAD BLOCK blocked inside a script"
    );

    // A group read and its acknowledgement.
    let (delivered, acked, pending): (Vec<(String, Entries)>, i64, i64) = eval(
        &mut con,
        "redis.call('XGROUP', 'CREATE', KEYS[1], 'workers', '0', 'MKSTREAM')
         local id = redis.call('XADD', KEYS[1], '*', 'job', 'c')
         local delivered = redis.call('XREADGROUP', 'GROUP', 'workers', 'w1', 'COUNT', 10, 'STREAMS', KEYS[1], '>')
         local acked = redis.call('XACK', KEYS[1], 'workers', id)
         local pending = redis.call('XPENDING', KEYS[1], 'workers')[1]
         return {delivered, acked, pending}",
        &["jobs"],
        &[],
    )
    .await;
    assert_eq!(delivered[0].0, "jobs");
    assert_eq!(delivered[0].1[0].1, ["job", "c"]);
    assert_eq!((acked, pending), (1, 0));

    // DEL of a stream key, and PUBLISH (nobody listening).
    let (removed, receivers, exists): (i64, i64, i64) = eval(
        &mut con,
        "return {redis.call('DEL', KEYS[1]), redis.call('PUBLISH', 'news', 'x'), redis.call('EXISTS', KEYS[1])}",
        &["jobs"],
        &[],
    )
    .await;
    assert_eq!((removed, receivers, exists), (1, 0, 0));

    // EVAL_RO refuses an XADD as every write.
    let refused = cmd("EVAL_RO")
        .arg("return redis.call('XADD', KEYS[1], '*', 'a', 'b')")
        .arg(1)
        .arg("events")
        .query_async::<Value>(&mut con)
        .await
        .unwrap_err();
    assert!(refused
        .to_string()
        .contains("not allowed from read-only scripts"));
    broker.stop().await;
}

/// Each run takes the next number and appends it: if another client's command could run
/// between the two, or another script's, the numbers in the stream would not rise.
const NUMBER_AND_APPEND: &str = r#"
local number = redis.call('INCR', KEYS[1])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', '100000', '*', 'n', number)
return number
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripts_appending_on_every_door_thread_neither_stall_nor_interleave() {
    const THREADS: usize = 4;
    const CLIENTS: usize = 8;
    const RUNS: usize = 150;
    let dir = tempfile::tempdir().unwrap();
    let config = RedisConfig {
        io_threads: THREADS,
        ..RedisConfig::default()
    };
    let broker = Broker::start_in(dir.path(), config).await;
    let mut clients = Vec::new();
    for client in 0..CLIENTS {
        let mut con = broker.connect().await;
        clients.push(tokio::spawn(async move {
            for run in 0..RUNS {
                if client % 2 == 0 {
                    let _: i64 =
                        eval(&mut con, NUMBER_AND_APPEND, &["number", "numbers"], &[]).await;
                } else {
                    // Plain commands on the same keys and stream, from clients on the other
                    // threads: each waits for the gate while a script holds the keyspace.
                    let _: i64 = cmd("INCR")
                        .arg("other")
                        .query_async(&mut con)
                        .await
                        .unwrap();
                    let _: String = cmd("XADD")
                        .arg("numbers")
                        .arg("*")
                        .arg("plain")
                        .arg(run)
                        .query_async(&mut con)
                        .await
                        .unwrap();
                    let _: Value = cmd("BLPOP")
                        .arg("nothing")
                        .arg("0.01")
                        .query_async(&mut con)
                        .await
                        .unwrap();
                }
            }
        }));
    }
    let all = async {
        for client in clients {
            client.await.unwrap();
        }
    };
    tokio::time::timeout(Duration::from_secs(120), all)
        .await
        .expect("scripts and commands stalled");
    let mut con = broker.connect().await;
    let entries: Entries = cmd("XRANGE")
        .arg("numbers")
        .arg("-")
        .arg("+")
        .query_async(&mut con)
        .await
        .unwrap();
    // IDs rise in the log's order, whichever path gave them out (a script on its own
    // thread when nothing was queued ahead of it, or the stream's writer).
    let ids: Vec<(u64, u64)> = entries
        .iter()
        .map(|(id, _)| {
            let (ms, seq) = id.split_once('-').unwrap();
            (ms.parse().unwrap(), seq.parse().unwrap())
        })
        .collect();
    assert!(
        ids.windows(2).all(|pair| pair[0] < pair[1]),
        "IDs out of order in the log"
    );
    let numbers: Vec<u64> = entries
        .iter()
        .filter(|(_, fields)| fields[0] == "n")
        .map(|(_, fields)| fields[1].parse().unwrap())
        .collect();
    let scripts = CLIENTS / 2 * RUNS;
    assert_eq!(numbers.len(), scripts);
    assert_eq!(
        numbers,
        (1..=scripts as u64).collect::<Vec<_>>(),
        "the scripts' numbers do not rise in the stream: runs interleaved"
    );
    assert_eq!(entries.len(), CLIENTS * RUNS);
    broker.stop().await;
}
