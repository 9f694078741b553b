//! The `redis` crate against the Redis door: keys with TTL, pipelines, MULTI/EXEC, the
//! connection commands, and what survives a restart.

#[allow(dead_code)]
mod support;

use std::time::Duration;

use omnibus_redis::RedisConfig;
use redis::{cmd, RedisResult, Value};
use support::Broker;

#[tokio::test]
async fn set_get_and_the_options_of_set() {
    let broker = Broker::start().await;
    let mut con = broker.connect().await;
    let ok: String = cmd("SET")
        .arg("k")
        .arg("v1")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(ok, "OK");
    let value: Option<String> = cmd("GET").arg("k").query_async(&mut con).await.unwrap();
    assert_eq!(value.as_deref(), Some("v1"));
    // NX refuses an existing key (nil); XX refuses a missing one.
    let refused: Option<String> = cmd("SET")
        .arg("k")
        .arg("x")
        .arg("NX")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(refused, None);
    let refused: Option<String> = cmd("SET")
        .arg("nope")
        .arg("x")
        .arg("XX")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(refused, None);
    // GET returns the old value.
    let old: Option<String> = cmd("SET")
        .arg("k")
        .arg("v2")
        .arg("GET")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(old.as_deref(), Some("v1"));
    // A lock: SET NX PX, held until it expires.
    let locked: Option<String> = cmd("SET")
        .arg("lock")
        .arg("token")
        .arg("NX")
        .arg("PX")
        .arg(30_000)
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(locked.as_deref(), Some("OK"));
    let again: Option<String> = cmd("SET")
        .arg("lock")
        .arg("other")
        .arg("NX")
        .arg("PX")
        .arg(30_000)
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(again, None);
    let pttl: i64 = cmd("PTTL").arg("lock").query_async(&mut con).await.unwrap();
    assert!((29_000..=30_000).contains(&pttl), "{pttl}");
    // KEEPTTL keeps it; a plain SET clears it.
    let _: () = cmd("SET")
        .arg("lock")
        .arg("t2")
        .arg("KEEPTTL")
        .query_async(&mut con)
        .await
        .unwrap();
    let ttl: i64 = cmd("TTL").arg("lock").query_async(&mut con).await.unwrap();
    assert_eq!(ttl, 30);
    let _: () = cmd("SET")
        .arg("lock")
        .arg("t3")
        .query_async(&mut con)
        .await
        .unwrap();
    let ttl: i64 = cmd("TTL").arg("lock").query_async(&mut con).await.unwrap();
    assert_eq!(ttl, -1);
    let missing: i64 = cmd("TTL")
        .arg("missing")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(missing, -2);
    // Bad options: Redis's words.
    let error = cmd("SET")
        .arg("k")
        .arg("v")
        .arg("EX")
        .arg(0)
        .query_async::<()>(&mut con)
        .await
        .unwrap_err();
    assert_eq!(error.detail(), Some("invalid expire time in 'set' command"));
    let error = cmd("SET")
        .arg("k")
        .arg("v")
        .arg("NX")
        .arg("XX")
        .query_async::<()>(&mut con)
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some("ERR"));
    assert_eq!(error.detail(), Some("syntax error"));
    broker.stop().await;
}

#[tokio::test]
async fn expiry_is_observed_by_get_exists_and_ttl() {
    let broker = Broker::start().await;
    let mut con = broker.connect().await;
    // The idempotency pattern: SETEX, then EXISTS while it lives.
    let _: () = cmd("SETEX")
        .arg("idempotency:42")
        .arg(86_400)
        .arg("result")
        .query_async(&mut con)
        .await
        .unwrap();
    let exists: i64 = cmd("EXISTS")
        .arg("idempotency:42")
        .arg("idempotency:43")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(exists, 1);
    let _: () = cmd("PSETEX")
        .arg("short")
        .arg(60)
        .arg("x")
        .query_async(&mut con)
        .await
        .unwrap();
    let _: () = cmd("SET")
        .arg("later")
        .arg("x")
        .query_async(&mut con)
        .await
        .unwrap();
    let set: i64 = cmd("PEXPIRE")
        .arg("later")
        .arg(60)
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(set, 1);
    let not_gt: i64 = cmd("PEXPIRE")
        .arg("later")
        .arg(10)
        .arg("GT")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(not_gt, 0);
    tokio::time::sleep(Duration::from_millis(120)).await;
    let gone: Option<String> = cmd("GET").arg("short").query_async(&mut con).await.unwrap();
    assert_eq!(gone, None);
    let exists: i64 = cmd("EXISTS")
        .arg("later")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(exists, 0);
    let ttl: i64 = cmd("TTL")
        .arg("idempotency:42")
        .query_async(&mut con)
        .await
        .unwrap();
    assert!(ttl > 86_000);
    let persisted: i64 = cmd("PERSIST")
        .arg("idempotency:42")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(persisted, 1);
    let ttl: i64 = cmd("TTL")
        .arg("idempotency:42")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(ttl, -1);
    broker.stop().await;
}

#[tokio::test]
async fn counters_append_mget_mset_del_and_scan() {
    let broker = Broker::start().await;
    let mut con = broker.connect().await;
    let n: i64 = cmd("INCR").arg("n").query_async(&mut con).await.unwrap();
    assert_eq!(n, 1);
    let n: i64 = cmd("INCRBY")
        .arg("n")
        .arg(41)
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(n, 42);
    let n: i64 = cmd("DECRBY")
        .arg("n")
        .arg(2)
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(n, 40);
    let n: i64 = cmd("DECR").arg("n").query_async(&mut con).await.unwrap();
    assert_eq!(n, 39);
    let _: () = cmd("SET")
        .arg("s")
        .arg("abc")
        .query_async(&mut con)
        .await
        .unwrap();
    let error = cmd("INCR")
        .arg("s")
        .query_async::<i64>(&mut con)
        .await
        .unwrap_err();
    assert_eq!(
        error.detail(),
        Some("value is not an integer or out of range")
    );
    let length: i64 = cmd("APPEND")
        .arg("s")
        .arg("de")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(length, 5);
    let length: i64 = cmd("STRLEN").arg("s").query_async(&mut con).await.unwrap();
    assert_eq!(length, 5);
    let _: () = cmd("MSET")
        .arg("a")
        .arg("1")
        .arg("b")
        .arg("2")
        .query_async(&mut con)
        .await
        .unwrap();
    let values: Vec<Option<String>> = cmd("MGET")
        .arg("a")
        .arg("b")
        .arg("c")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(values, vec![Some("1".into()), Some("2".into()), None]);
    let kind: String = cmd("TYPE").arg("a").query_async(&mut con).await.unwrap();
    assert_eq!(kind, "string");
    let kind: String = cmd("TYPE").arg("c").query_async(&mut con).await.unwrap();
    assert_eq!(kind, "none");
    let size: i64 = cmd("DBSIZE").query_async(&mut con).await.unwrap();
    assert_eq!(size, 4);
    let mut keys: Vec<String> = cmd("KEYS").arg("[ab]").query_async(&mut con).await.unwrap();
    keys.sort();
    assert_eq!(keys, vec!["a", "b"]);
    let mut scanned: Vec<String> = Vec::new();
    let mut cursor = 0u64;
    loop {
        let (next, batch): (u64, Vec<String>) = cmd("SCAN")
            .arg(cursor)
            .arg("COUNT")
            .arg(1)
            .query_async(&mut con)
            .await
            .unwrap();
        scanned.extend(batch);
        if next == 0 {
            break;
        }
        cursor = next;
    }
    scanned.sort();
    assert_eq!(scanned, vec!["a", "b", "n", "s"]);
    let taken: Option<String> = cmd("GETDEL").arg("a").query_async(&mut con).await.unwrap();
    assert_eq!(taken.as_deref(), Some("1"));
    let deleted: i64 = cmd("DEL")
        .arg("a")
        .arg("b")
        .arg("n")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(deleted, 2);
    let deleted: i64 = cmd("UNLINK").arg("s").query_async(&mut con).await.unwrap();
    assert_eq!(deleted, 1);
    // FLUSHALL is off unless configured.
    let error = cmd("FLUSHALL")
        .query_async::<()>(&mut con)
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some("ERR"));
    broker.stop().await;
}

#[tokio::test]
async fn pipelines_and_transactions() {
    let broker = Broker::start().await;
    let mut con = broker.connect().await;
    // A thousand pipelined SETs, answered in order (and sharing group commits).
    let mut pipe = redis::pipe();
    for i in 0..1000 {
        pipe.cmd("SET").arg(format!("p{i}")).arg(i).ignore();
    }
    pipe.cmd("GET").arg("p999");
    let (last,): (String,) = pipe.query_async(&mut con).await.unwrap();
    assert_eq!(last, "999");
    // MULTI/EXEC through an atomic pipeline.
    let (a, b): (i64, i64) = redis::pipe()
        .atomic()
        .cmd("INCR")
        .arg("counter")
        .cmd("INCRBY")
        .arg("counter")
        .arg(10)
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!((a, b), (1, 11));
    // A queued command that cannot run aborts the whole transaction.
    let outcome: RedisResult<Value> = redis::pipe()
        .atomic()
        .cmd("SET")
        .arg("never")
        .arg("1")
        .cmd("NOSUCHCOMMAND")
        .arg("x")
        .query_async(&mut con)
        .await;
    let error = outcome.unwrap_err();
    assert_eq!(error.code(), Some("EXECABORT"), "{error:?}");
    let never: Option<String> = cmd("GET").arg("never").query_async(&mut con).await.unwrap();
    assert_eq!(never, None);
    // A runtime error inside EXEC fails only its own command.
    let _: () = cmd("SET")
        .arg("text")
        .arg("abc")
        .query_async(&mut con)
        .await
        .unwrap();
    let replies: Vec<Value> = redis::pipe()
        .atomic()
        .cmd("INCR")
        .arg("text")
        .cmd("SET")
        .arg("after")
        .arg("1")
        .query_async::<Vec<Value>>(&mut con)
        .await
        .unwrap_or_default();
    let after: Option<String> = cmd("GET").arg("after").query_async(&mut con).await.unwrap();
    assert_eq!(after.as_deref(), Some("1"), "{replies:?}");
    broker.stop().await;
}

#[tokio::test]
async fn connection_commands_and_resp3() {
    let broker = Broker::start().await;
    let mut con = broker.connect().await;
    let pong: String = cmd("PING").query_async(&mut con).await.unwrap();
    assert_eq!(pong, "PONG");
    let echo: String = cmd("ECHO").arg("hi").query_async(&mut con).await.unwrap();
    assert_eq!(echo, "hi");
    let _: () = cmd("SELECT").arg(0).query_async(&mut con).await.unwrap();
    let error = cmd("SELECT")
        .arg(1)
        .query_async::<()>(&mut con)
        .await
        .unwrap_err();
    assert_eq!(error.detail(), Some("DB index is out of range"));
    let _: () = cmd("CLIENT")
        .arg("SETNAME")
        .arg("worker-1")
        .query_async(&mut con)
        .await
        .unwrap();
    let name: String = cmd("CLIENT")
        .arg("GETNAME")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(name, "worker-1");
    let id: i64 = cmd("CLIENT").arg("ID").query_async(&mut con).await.unwrap();
    assert!(id > 0);
    let info: String = cmd("INFO")
        .arg("server")
        .query_async(&mut con)
        .await
        .unwrap();
    assert!(info.contains("redis_version:7.4.0"), "{info}");
    let error = cmd("GET").query_async::<()>(&mut con).await.unwrap_err();
    assert_eq!(
        error.detail(),
        Some("wrong number of arguments for 'get' command")
    );
    let error = cmd("FOO")
        .arg("a")
        .arg("b")
        .query_async::<()>(&mut con)
        .await
        .unwrap_err();
    assert_eq!(
        error.detail(),
        Some("unknown command 'FOO', with args beginning with: 'a' 'b' ")
    );

    // A RESP3 connection: HELLO 3 answers with a map.
    let client = redis::Client::open(format!("{}?protocol=resp3", broker.url())).unwrap();
    let mut resp3 = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = cmd("SET")
        .arg("r3")
        .arg("v")
        .query_async(&mut resp3)
        .await
        .unwrap();
    let hello: Value = cmd("HELLO").arg(3).query_async(&mut resp3).await.unwrap();
    assert!(matches!(hello, Value::Map(_)), "{hello:?}");
    let missing: Value = cmd("GET")
        .arg("nothing")
        .query_async(&mut resp3)
        .await
        .unwrap();
    assert_eq!(missing, Value::Nil);
    broker.stop().await;
}

#[tokio::test]
async fn acknowledged_writes_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start_in(dir.path(), RedisConfig::default()).await;
    let mut con = broker.connect().await;
    let _: () = cmd("SET")
        .arg("plain")
        .arg("1")
        .query_async(&mut con)
        .await
        .unwrap();
    let _: () = cmd("SETEX")
        .arg("ttl")
        .arg(100)
        .arg("2")
        .query_async(&mut con)
        .await
        .unwrap();
    let _: () = cmd("PSETEX")
        .arg("expired")
        .arg(1)
        .arg("3")
        .query_async(&mut con)
        .await
        .unwrap();
    let _: i64 = cmd("INCRBY")
        .arg("n")
        .arg(7)
        .query_async(&mut con)
        .await
        .unwrap();
    drop(con);
    broker.stop().await;
    tokio::time::sleep(Duration::from_millis(50)).await;

    let broker = Broker::start_in(dir.path(), RedisConfig::default()).await;
    let mut con = broker.connect().await;
    let values: Vec<Option<String>> = cmd("MGET")
        .arg("plain")
        .arg("ttl")
        .arg("expired")
        .arg("n")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(
        values,
        vec![Some("1".into()), Some("2".into()), None, Some("7".into())]
    );
    let ttl: i64 = cmd("TTL").arg("ttl").query_async(&mut con).await.unwrap();
    assert!((95..=100).contains(&ttl), "{ttl}");
    broker.stop().await;
}

#[tokio::test]
async fn watch_aborts_exec_when_a_watched_key_or_stream_changed() {
    let broker = Broker::start().await;
    let mut watcher = broker.connect().await;
    let mut other = broker.connect().await;
    let _: () = cmd("SET")
        .arg("w")
        .arg("1")
        .query_async(&mut watcher)
        .await
        .unwrap();
    // Unchanged: EXEC runs.
    let _: () = cmd("WATCH")
        .arg("w")
        .query_async(&mut watcher)
        .await
        .unwrap();
    let ran: Option<(String,)> = redis::pipe()
        .atomic()
        .cmd("SET")
        .arg("w")
        .arg("2")
        .query_async(&mut watcher)
        .await
        .unwrap();
    assert_eq!(ran, Some(("OK".to_string(),)));
    // Changed by another connection: EXEC answers nil and runs nothing.
    let _: () = cmd("WATCH")
        .arg("w")
        .query_async(&mut watcher)
        .await
        .unwrap();
    let _: () = cmd("SET")
        .arg("w")
        .arg("3")
        .query_async(&mut other)
        .await
        .unwrap();
    let aborted: Option<(String,)> = redis::pipe()
        .atomic()
        .cmd("SET")
        .arg("w")
        .arg("4")
        .query_async(&mut watcher)
        .await
        .unwrap();
    assert_eq!(aborted, None);
    let value: String = cmd("GET").arg("w").query_async(&mut watcher).await.unwrap();
    assert_eq!(value, "3");
    // A stream grown by an XADD counts as changed; UNWATCH forgets.
    let _: String = cmd("XADD")
        .arg("ws")
        .arg("*")
        .arg("f")
        .arg("v")
        .query_async(&mut other)
        .await
        .unwrap();
    let _: () = cmd("WATCH")
        .arg("ws")
        .query_async(&mut watcher)
        .await
        .unwrap();
    let _: String = cmd("XADD")
        .arg("ws")
        .arg("*")
        .arg("f")
        .arg("v")
        .query_async(&mut other)
        .await
        .unwrap();
    let aborted: Option<(usize,)> = redis::pipe()
        .atomic()
        .cmd("XLEN")
        .arg("ws")
        .query_async(&mut watcher)
        .await
        .unwrap();
    assert_eq!(aborted, None);
    let _: () = cmd("WATCH")
        .arg("w")
        .query_async(&mut watcher)
        .await
        .unwrap();
    let _: () = cmd("UNWATCH").query_async(&mut watcher).await.unwrap();
    let _: () = cmd("SET")
        .arg("w")
        .arg("5")
        .query_async(&mut other)
        .await
        .unwrap();
    let ran: Option<(usize,)> = redis::pipe()
        .atomic()
        .cmd("XLEN")
        .arg("ws")
        .query_async(&mut watcher)
        .await
        .unwrap();
    assert_eq!(ran, Some((2,)));
    broker.stop().await;
}
