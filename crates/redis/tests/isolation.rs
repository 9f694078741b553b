//! Scripts and transactions run alone, as in Redis, even with the door on several threads:
//! clients on other door threads never see half of one, nor run a command inside one. Each
//! test widens the window a missing isolation would show through (a busy loop in a script,
//! reads inside a transaction) so that without it the test fails on every run.

#[allow(dead_code)]
mod support;

use redis::{cmd, Script};
use support::Broker;

/// Door threads for these tests, and clients spread over them.
const THREADS: usize = 4;
const CLIENTS: usize = 8;

/// A read-modify-write with a pause in the middle: two runs interleaved would lose an
/// increment.
const SLOW_INCREMENT: &str = r#"
local value = tonumber(redis.call('GET', KEYS[1]) or '0')
local spin = 0
for i = 1, 20000 do spin = spin + i end
redis.call('SET', KEYS[1], tostring(value + 1))
return value + 1
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_command_runs_inside_a_script_on_another_door_thread() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start_in(dir.path(), support::threaded(THREADS)).await;
    const RUNS: usize = 100;
    let mut clients = Vec::new();
    for client in 0..CLIENTS {
        let mut con = broker.connect().await;
        clients.push(tokio::spawn(async move {
            let script = Script::new(SLOW_INCREMENT);
            for _ in 0..RUNS {
                // Half the clients run the script, half a plain INCR: neither may land
                // inside a run of the script.
                let _: i64 = if client % 2 == 0 {
                    script.key("counter").invoke_async(&mut con).await.unwrap()
                } else {
                    cmd("INCR")
                        .arg("counter")
                        .query_async(&mut con)
                        .await
                        .unwrap()
                };
            }
        }));
    }
    for client in clients {
        client.await.unwrap();
    }
    let mut con = broker.connect().await;
    let counter: i64 = cmd("GET")
        .arg("counter")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(
        counter,
        (CLIENTS * RUNS) as i64,
        "increments were lost: a command ran inside a script"
    );
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_is_seen_whole_from_other_door_threads() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start_in(dir.path(), support::threaded(THREADS)).await;
    const ROUNDS: usize = 200;
    let mut writers = Vec::new();
    for _ in 0..CLIENTS / 2 {
        let mut con = broker.connect().await;
        writers.push(tokio::spawn(async move {
            for _ in 0..ROUNDS {
                // INCR x … INCR y with reads between them: a reader that got in between
                // would see x ahead of y.
                let mut pipe = redis::pipe();
                pipe.atomic().cmd("INCR").arg("x").ignore();
                for _ in 0..200 {
                    pipe.cmd("GET").arg("pad").ignore();
                }
                pipe.cmd("INCR").arg("y").ignore();
                let () = pipe.query_async(&mut con).await.unwrap();
            }
        }));
    }
    let mut readers = Vec::new();
    for _ in 0..CLIENTS / 2 {
        let mut con = broker.connect().await;
        readers.push(tokio::spawn(async move {
            let mut torn = 0;
            for _ in 0..ROUNDS * 2 {
                let (x, y): (Option<i64>, Option<i64>) = cmd("MGET")
                    .arg("x")
                    .arg("y")
                    .query_async(&mut con)
                    .await
                    .unwrap();
                torn += usize::from(x != y);
            }
            torn
        }));
    }
    for writer in writers {
        writer.await.unwrap();
    }
    let mut torn = 0;
    for reader in readers {
        torn += reader.await.unwrap();
    }
    assert_eq!(torn, 0, "reads saw a transaction half done");
    let mut con = broker.connect().await;
    let (x, y): (i64, i64) = cmd("MGET")
        .arg("x")
        .arg("y")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(
        (x, y),
        ((ROUNDS * CLIENTS / 2) as i64, (ROUNDS * CLIENTS / 2) as i64)
    );
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_then_exec_is_a_check_and_set_across_door_threads() {
    // The optimistic-locking loop redis-py documents: WATCH, read, MULTI/SET/EXEC, again on
    // nil. Every increment must land exactly once.
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start_in(dir.path(), support::threaded(THREADS)).await;
    const RUNS: usize = 50;
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let mut con = broker.connect().await;
        clients.push(tokio::spawn(async move {
            let mut done = 0;
            while done < RUNS {
                let () = cmd("WATCH")
                    .arg("balance")
                    .query_async(&mut con)
                    .await
                    .unwrap();
                let value: Option<i64> = cmd("GET")
                    .arg("balance")
                    .query_async(&mut con)
                    .await
                    .unwrap();
                let outcome: Option<()> = redis::pipe()
                    .atomic()
                    .cmd("SET")
                    .arg("balance")
                    .arg(value.unwrap_or(0) + 1)
                    .ignore()
                    .query_async(&mut con)
                    .await
                    .unwrap();
                done += usize::from(outcome.is_some());
            }
        }));
    }
    for client in clients {
        client.await.unwrap();
    }
    let mut con = broker.connect().await;
    let balance: i64 = cmd("GET")
        .arg("balance")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(balance, (CLIENTS * RUNS) as i64);
    broker.stop().await;
}

/// Waits until the broker counts `count` clients blocked.
async fn until_blocked(con: &mut redis::aio::MultiplexedConnection, count: usize) {
    for _ in 0..250 {
        let info: String = cmd("INFO").arg("clients").query_async(con).await.unwrap();
        if info.contains(&format!("blocked_clients:{count}\r\n")) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("never {count} blocked clients");
}

/// A client blocked on a key is served from what a transaction or a script leaves, once
/// it ends, as redis-server serves it: `LPUSH k a; DEL k; LPUSH k b` gives it `b`, and a
/// transaction that leaves the key a string serves nobody.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_client_is_served_what_a_transaction_or_a_script_leaves() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start_in(dir.path(), support::threaded(2)).await;
    let mut con = broker.connect().await;
    let blpop = |con: redis::aio::MultiplexedConnection, key: &'static str| {
        let mut con = con;
        tokio::spawn(async move {
            let got: Option<(String, String)> = cmd("BLPOP")
                .arg(key)
                .arg(5)
                .query_async(&mut con)
                .await
                .unwrap();
            got
        })
    };

    let waiting = blpop(broker.connect().await, "l");
    until_blocked(&mut con, 1).await;
    let _: () = redis::pipe()
        .atomic()
        .cmd("LPUSH")
        .arg("l")
        .arg("a")
        .ignore()
        .cmd("DEL")
        .arg("l")
        .ignore()
        .cmd("LPUSH")
        .arg("l")
        .arg("b")
        .ignore()
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(waiting.await.unwrap(), Some(("l".into(), "b".into())));

    let waiting = blpop(broker.connect().await, "l");
    until_blocked(&mut con, 1).await;
    let _: () = Script::new(
        "redis.call('LPUSH', KEYS[1], 'a'); redis.call('DEL', KEYS[1]); \
         redis.call('SET', KEYS[1], 'text')",
    )
    .key("l")
    .invoke_async(&mut con)
    .await
    .unwrap();
    let blocked: String = cmd("INFO")
        .arg("clients")
        .query_async(&mut con)
        .await
        .unwrap();
    assert!(blocked.contains("blocked_clients:1\r\n"), "{blocked}");
    let _: () = cmd("DEL").arg("l").query_async(&mut con).await.unwrap();
    let _: () = cmd("RPUSH")
        .arg("l")
        .arg("c")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(waiting.await.unwrap(), Some(("l".into(), "c".into())));
    broker.stop().await;
}
