//! Which Redis replies wait for the disk, through the redis crate on a real socket, on a disk
//! whose fsyncs (of the stream logs and of the state store) can be held.
//!
//! `kill -9` cannot show this: the page cache survives it, so a reply sent before its fsync
//! would still pass every crash test. Here each write is sent while fsyncs are held and must
//! stay unanswered; released, it is answered and its effect is there. Reads, PUBLISH and
//! PING are answered while fsyncs are held: the broker is not simply stalled.

#[allow(dead_code)]
mod support;

use std::sync::Arc;
use std::time::Duration;

use omnibus_storage::io::FaultPlan;
use redis::aio::MultiplexedConnection;
use redis::{cmd, AsyncConnectionConfig, Cmd, Value};
use support::Broker;

/// How long a write must stay unanswered while fsyncs are held.
const UNANSWERED: Duration = Duration::from_millis(250);
/// How long anything may take once the disk is not held (or for a read that needs no disk).
const WAIT: Duration = Duration::from_secs(10);

/// A connection without the crate's 500 ms response timeout: the held replies are late on
/// purpose.
async fn connect(broker: &Broker) -> MultiplexedConnection {
    let config = AsyncConnectionConfig::new().set_response_timeout(None);
    redis::Client::open(broker.url())
        .unwrap()
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .unwrap()
}

/// Sends `command` on a connection of its own while every fsync is held: it must not be
/// answered until they are released. Its answer.
async fn answered_after_fsync(
    broker: &Broker,
    plan: &Arc<FaultPlan>,
    what: &str,
    command: Cmd,
) -> Value {
    let mut connection = connect(broker).await;
    let held = plan.hold_syncs_while_held();
    let sent = tokio::spawn(async move { command.query_async::<Value>(&mut connection).await });
    tokio::time::sleep(UNANSWERED).await;
    let early = sent.is_finished();
    drop(held);
    let answer = tokio::time::timeout(WAIT, sent)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer after the fsyncs were released"))
        .unwrap();
    assert!(
        !early,
        "{what} was answered while its fsync was held: {answer:?}"
    );
    answer.unwrap_or_else(|error| panic!("{what}: {error}"))
}

/// Sends `command` while every fsync is held: it must be answered anyway.
async fn answered_without_fsync(
    connection: &mut MultiplexedConnection,
    what: &str,
    command: Cmd,
) -> Value {
    tokio::time::timeout(WAIT, command.query_async::<Value>(connection))
        .await
        .unwrap_or_else(|_| panic!("{what} waited for a held fsync"))
        .unwrap_or_else(|error| panic!("{what}: {error}"))
}

fn args(words: &[&str]) -> Cmd {
    let mut command = cmd(words[0]);
    for word in &words[1..] {
        command.arg(*word);
    }
    command
}

fn text(value: &Value) -> String {
    match value {
        Value::BulkString(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        Value::SimpleString(text) => text.clone(),
        Value::Okay => "OK".to_string(),
        Value::Int(n) => n.to_string(),
        other => format!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_key_write_waits_for_its_fsync() {
    let (broker, plan) = Broker::start_with_faults().await;
    let mut setup = connect(&broker).await;
    for words in [
        ["SET", "doomed", "x"].as_slice(),
        &["SET", "aging", "x"],
        &["SET", "mortal", "x"],
    ] {
        args(words).query_async::<Value>(&mut setup).await.unwrap();
    }

    let writes: &[(&str, &[&str], &str)] = &[
        ("SET", &["SET", "idempotency:1", "result"], "OK"),
        (
            "SET NX PX (a lock)",
            &["SET", "lock", "token", "NX", "PX", "30000"],
            "OK",
        ),
        ("SETEX", &["SETEX", "cached", "86400", "v"], "OK"),
        ("INCR", &["INCR", "counter"], "1"),
        ("APPEND", &["APPEND", "counter", "0"], "2"),
        ("DEL", &["DEL", "doomed"], "1"),
        ("EXPIRE", &["EXPIRE", "aging", "100"], "1"),
        ("PERSIST", &["PERSIST", "aging"], "1"),
        ("GETDEL", &["GETDEL", "mortal"], "x"),
        ("LPUSH", &["LPUSH", "list", "a", "b"], "2"),
        ("RPOP", &["RPOP", "list"], "a"),
        ("HSET", &["HSET", "hash", "f", "v"], "1"),
        ("SADD", &["SADD", "set", "m"], "1"),
        ("ZADD", &["ZADD", "zset", "1", "m"], "1"),
    ];
    for (what, words, expected) in writes {
        let answer = answered_after_fsync(&broker, &plan, what, args(words)).await;
        assert_eq!(text(&answer), *expected, "{what}");
    }

    // EXEC: the whole transaction's reply waits for its one commit.
    let mut transaction = redis::pipe();
    transaction
        .atomic()
        .cmd("SET")
        .arg("tx:a")
        .arg("1")
        .cmd("INCR")
        .arg("tx:b");
    let mut connection = connect(&broker).await;
    let held = plan.hold_syncs_while_held();
    let sent = tokio::spawn(async move {
        transaction
            .query_async::<(String, i64)>(&mut connection)
            .await
    });
    tokio::time::sleep(UNANSWERED).await;
    let early = sent.is_finished();
    drop(held);
    let answer = tokio::time::timeout(WAIT, sent).await.unwrap().unwrap();
    assert!(
        !early,
        "EXEC was answered while its fsync was held: {answer:?}"
    );
    assert_eq!(answer.unwrap(), ("OK".to_string(), 1));

    // A script's reply waits for its key changes and for its XADD.
    let script = args(&[
        "EVAL",
        "redis.call('SET', KEYS[1], ARGV[1]); return redis.call('XADD', KEYS[2], '*', 'f', ARGV[1])",
        "2",
        "script:key",
        "script:events",
        "v",
    ]);
    let id = answered_after_fsync(&broker, &plan, "EVAL with SET and XADD", script).await;
    assert!(text(&id).contains('-'), "{id:?}");

    // Reads, PUBLISH and PING need no disk: answered while fsyncs are held. Everything the
    // writes above changed is there (a read sees a change once made; only its reply waits).
    let held = plan.hold_syncs_while_held();
    let reads: &[(&[&str], &str)] = &[
        (&["PING"], "PONG"),
        (&["GET", "idempotency:1"], "result"),
        (&["GET", "counter"], "10"),
        (&["EXISTS", "doomed"], "0"),
        (&["TTL", "aging"], "-1"),
        (&["LLEN", "list"], "1"),
        (&["HGET", "hash", "f"], "v"),
        (&["SISMEMBER", "set", "m"], "1"),
        (&["ZSCORE", "zset", "m"], "1"),
        (&["GET", "tx:a"], "1"),
        (&["GET", "script:key"], "v"),
        (&["XLEN", "script:events"], "1"),
        (&["PUBLISH", "news", "hello"], "0"),
    ];
    for (words, expected) in reads {
        let answer = answered_without_fsync(&mut setup, words[0], args(words)).await;
        assert_eq!(text(&answer), *expected, "{words:?}");
    }
    drop(held);
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_and_group_replies_wait_for_their_fsync() {
    let (broker, plan) = Broker::start_with_faults().await;
    let mut setup = connect(&broker).await;
    args(&["XADD", "orders", "1-1", "n", "1"])
        .query_async::<Value>(&mut setup)
        .await
        .unwrap();

    let id = answered_after_fsync(
        &broker,
        &plan,
        "XADD",
        args(&["XADD", "orders", "*", "n", "2"]),
    )
    .await;
    let second = text(&id);
    let answer = answered_after_fsync(
        &broker,
        &plan,
        "XGROUP CREATE",
        args(&["XGROUP", "CREATE", "orders", "workers", "0"]),
    )
    .await;
    assert_eq!(text(&answer), "OK");
    // A `>` read hands entries out: their pending entries are committed before the reply.
    let read = answered_after_fsync(
        &broker,
        &plan,
        "XREADGROUP >",
        args(&[
            "XREADGROUP",
            "GROUP",
            "workers",
            "alice",
            "COUNT",
            "10",
            "STREAMS",
            "orders",
            ">",
        ]),
    )
    .await;
    assert!(format!("{read:?}").contains(&second), "{read:?}");
    let acked = answered_after_fsync(
        &broker,
        &plan,
        "XACK",
        args(&["XACK", "orders", "workers", "1-1"]),
    )
    .await;
    assert_eq!(text(&acked), "1");
    let claimed = answered_after_fsync(
        &broker,
        &plan,
        "XCLAIM",
        args(&["XCLAIM", "orders", "workers", "bob", "0", &second, "JUSTID"]),
    )
    .await;
    assert!(format!("{claimed:?}").contains(&second), "{claimed:?}");
    let trimmed = answered_after_fsync(
        &broker,
        &plan,
        "XTRIM",
        args(&["XTRIM", "orders", "MAXLEN", "1"]),
    )
    .await;
    assert_eq!(text(&trimmed), "1");
    // A stream key's deadline is a door setting of the stream: committed before the reply.
    let expired = answered_after_fsync(
        &broker,
        &plan,
        "EXPIRE on a stream key",
        args(&["EXPIRE", "orders", "3600"]),
    )
    .await;
    assert_eq!(text(&expired), "1");
    let persisted = answered_after_fsync(
        &broker,
        &plan,
        "PERSIST on a stream key",
        args(&["PERSIST", "orders"]),
    )
    .await;
    assert_eq!(text(&persisted), "1");

    // A script that only appends: its reply waits for its XADD's fsync (no key changes to
    // commit would hold it otherwise).
    let script = args(&[
        "EVAL",
        "return redis.call('XADD', KEYS[1], '*', 'f', ARGV[1])",
        "1",
        "orders",
        "scripted",
    ]);
    let id = answered_after_fsync(&broker, &plan, "EVAL with XADD alone", script).await;
    assert!(text(&id).contains('-'), "{id:?}");

    // Reading a stream and a group's pending entries needs no disk.
    let held = plan.hold_syncs_while_held();
    let range =
        answered_without_fsync(&mut setup, "XRANGE", args(&["XRANGE", "orders", "-", "+"])).await;
    assert!(format!("{range:?}").contains(&second), "{range:?}");
    let pending = answered_without_fsync(
        &mut setup,
        "XPENDING",
        args(&["XPENDING", "orders", "workers"]),
    )
    .await;
    assert!(format!("{pending:?}").contains("bob"), "{pending:?}");
    drop(held);
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyspace_restores_and_renames_in_a_pipeline_run_on_while_fsyncs_wait() {
    // A MIGRATE sends many RESTOREs in a row: each must not wait for the fsync of the one
    // before it (only moves with a stream key do, `stream_moves::settles_first`).
    let (broker, plan) = Broker::start_with_faults().await;
    let mut setup = connect(&broker).await;
    let _: () = args(&["SET", "source", "v"])
        .query_async(&mut setup)
        .await
        .unwrap();
    let payload: Vec<u8> = args(&["DUMP", "source"])
        .query_async(&mut setup)
        .await
        .unwrap();
    let mut connection = connect(&broker).await;
    let held = plan.hold_syncs_while_held();
    let mut pipe = redis::pipe();
    pipe.cmd("RESTORE").arg("r1").arg(0).arg(&payload);
    pipe.cmd("RENAME").arg("r1").arg("r2");
    pipe.cmd("COPY").arg("r2").arg("r3");
    pipe.cmd("RESTORE").arg("r4").arg(0).arg(&payload);
    let sent = tokio::spawn(async move { pipe.query_async::<Value>(&mut connection).await });
    let started = std::time::Instant::now();
    loop {
        let exists =
            answered_without_fsync(&mut setup, "EXISTS", args(&["EXISTS", "r2", "r3", "r4"])).await;
        if text(&exists) == "3" {
            break;
        }
        assert!(
            started.elapsed() < WAIT,
            "the pipeline stopped at a write waiting for its fsync"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!sent.is_finished(), "answered while the fsyncs were held");
    drop(held);
    let answer = tokio::time::timeout(WAIT, sent).await.unwrap().unwrap();
    assert!(answer.is_ok(), "{answer:?}");
    broker.stop().await;
}
