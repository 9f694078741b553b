//! Stream commands inside MULTI/EXEC run as Redis runs them: each to its end before the next,
//! so a read in a transaction sees the writes queued before it and none after, and no other
//! client's stream command — on this door thread or another — lands in between.

#[allow(dead_code)]
mod support;

use redis::{cmd, Value};
use support::Broker;

/// Door threads for these tests, and clients spread over them.
const THREADS: usize = 4;
const CLIENTS: usize = 8;

fn ids(entries: &Value) -> Vec<String> {
    let Value::Array(entries) = entries else {
        panic!("not entries: {entries:?}");
    };
    entries
        .iter()
        .map(|entry| match entry {
            Value::Array(pair) => redis::from_redis_value(pair[0].clone()).unwrap(),
            other => panic!("not an entry: {other:?}"),
        })
        .collect()
}

fn integer(value: &Value) -> i64 {
    redis::from_redis_value(value.clone()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transactions_stream_reads_see_the_writes_before_them_and_none_after() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start_in(dir.path(), support::threaded(THREADS)).await;
    let mut con = broker.connect().await;
    let replies: Vec<Value> = redis::pipe()
        .atomic()
        .cmd("XADD")
        .arg("s")
        .arg("1-1")
        .arg("a")
        .arg("1")
        .cmd("XLEN")
        .arg("s")
        .cmd("XRANGE")
        .arg("s")
        .arg("-")
        .arg("+")
        .cmd("XADD")
        .arg("s")
        .arg("1-2")
        .arg("b")
        .arg("2")
        .cmd("XGROUP")
        .arg("CREATE")
        .arg("s")
        .arg("g")
        .arg("0")
        .cmd("XREADGROUP")
        .arg("GROUP")
        .arg("g")
        .arg("c")
        .arg("STREAMS")
        .arg("s")
        .arg(">")
        .cmd("XACK")
        .arg("s")
        .arg("g")
        .arg("1-1")
        .cmd("XPENDING")
        .arg("s")
        .arg("g")
        .cmd("XADD")
        .arg("s")
        .arg("1-3")
        .arg("c")
        .arg("3")
        .cmd("EVAL")
        .arg("return redis.call('XLEN', KEYS[1])")
        .arg(1)
        .arg("s")
        .cmd("XREVRANGE")
        .arg("s")
        .arg("+")
        .arg("-")
        .arg("COUNT")
        .arg(1)
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(replies.len(), 11);
    assert_eq!(integer(&replies[1]), 1, "XLEN after the first XADD");
    assert_eq!(ids(&replies[2]), ["1-1"], "XRANGE after the first XADD");
    // XREADGROUP: [[stream, entries]] — the two entries added before it, not the third.
    let Value::Array(streams) = &replies[5] else {
        panic!("{:?}", replies[5]);
    };
    let Value::Array(stream) = &streams[0] else {
        panic!("{streams:?}");
    };
    assert_eq!(ids(&stream[1]), ["1-1", "1-2"]);
    assert_eq!(integer(&replies[6]), 1, "XACK of an entry the group read");
    let Value::Array(summary) = &replies[7] else {
        panic!("{:?}", replies[7]);
    };
    assert_eq!(
        integer(&summary[0]),
        1,
        "one entry left pending after the XACK"
    );
    assert_eq!(
        integer(&replies[9]),
        3,
        "a script in the transaction sees its XADDs"
    );
    assert_eq!(ids(&replies[10]), ["1-3"]);
    // Durable and in the log afterwards, in order.
    let entries: Value = cmd("XRANGE")
        .arg("s")
        .arg("-")
        .arg("+")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(ids(&entries), ["1-1", "1-2", "1-3"]);
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_stream_command_lands_inside_a_transaction_from_another_door_thread() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start_in(dir.path(), support::threaded(THREADS)).await;
    const ROUNDS: usize = 40;
    let mut clients = Vec::new();
    for client in 0..CLIENTS {
        let mut con = broker.connect().await;
        clients.push(tokio::spawn(async move {
            for round in 0..ROUNDS {
                if client % 2 == 1 {
                    // Plain XADDs to the same stream, from clients on the other threads.
                    let _: String = cmd("XADD")
                        .arg("shared")
                        .arg("*")
                        .arg("plain")
                        .arg(round)
                        .query_async(&mut con)
                        .await
                        .unwrap();
                    continue;
                }
                // A group made at the stream's end, then one entry: the group must read
                // exactly that entry, and the newest entry must be it until the next XADD.
                let group = format!("g-{client}-{round}");
                let replies: Vec<Value> = redis::pipe()
                    .atomic()
                    .cmd("XGROUP")
                    .arg("CREATE")
                    .arg("shared")
                    .arg(&group)
                    .arg("$")
                    .arg("MKSTREAM")
                    .cmd("XADD")
                    .arg("shared")
                    .arg("*")
                    .arg("first")
                    .arg(client)
                    .cmd("XREVRANGE")
                    .arg("shared")
                    .arg("+")
                    .arg("-")
                    .arg("COUNT")
                    .arg(1)
                    .cmd("XREADGROUP")
                    .arg("GROUP")
                    .arg(&group)
                    .arg("c")
                    .arg("STREAMS")
                    .arg("shared")
                    .arg(">")
                    .cmd("XADD")
                    .arg("shared")
                    .arg("*")
                    .arg("second")
                    .arg(client)
                    .cmd("XRANGE")
                    .arg("shared")
                    .arg("-")
                    .arg("+")
                    .arg("COUNT")
                    .arg(0)
                    .query_async(&mut con)
                    .await
                    .unwrap();
                let first: String = redis::from_redis_value(replies[1].clone()).unwrap();
                assert_eq!(
                    ids(&replies[2]),
                    std::slice::from_ref(&first),
                    "the newest entry"
                );
                let Value::Array(streams) = &replies[3] else {
                    panic!("{:?}", replies[3]);
                };
                let Value::Array(stream) = &streams[0] else {
                    panic!("{streams:?}");
                };
                assert_eq!(ids(&stream[1]), [first], "what the new group read");
            }
        }));
    }
    for client in clients {
        client.await.unwrap();
    }
    // Each transaction's two entries are next to each other in the log.
    let mut con = broker.connect().await;
    let entries: Vec<(String, Vec<String>)> = cmd("XRANGE")
        .arg("shared")
        .arg("-")
        .arg("+")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(entries.len(), CLIENTS * ROUNDS * 3 / 2);
    for (at, (_, fields)) in entries.iter().enumerate() {
        if fields[0] == "first" {
            let (_, next) = &entries[at + 1];
            assert_eq!(
                next[0], "second",
                "another client's entry inside a transaction"
            );
            assert_eq!(next[1], fields[1]);
        }
    }
    broker.stop().await;
}
