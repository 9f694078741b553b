//! The string and server commands beyond the list that caches, locks and client
//! libraries use: GETEX, GETSET, GETRANGE, MSETNX, EXPIRETIME/PEXPIRETIME, TOUCH, TIME,
//! ROLE — through the `redis` crate, with Redis's answers.

#[allow(dead_code)] // the helpers other test binaries use
mod support;

use redis::{cmd, AsyncCommands, Value};
use support::Broker;

#[tokio::test]
async fn getex_getset_and_getrange() {
    let broker = Broker::start().await;
    let mut con = broker.connect().await;
    let _: () = con.set("cache", "This is a string").await.unwrap();

    // GETEX with no option is a GET; EX sets a deadline, PERSIST removes it.
    let value: String = cmd("GETEX")
        .arg("cache")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(value, "This is a string");
    let ttl: i64 = con.ttl("cache").await.unwrap();
    assert_eq!(ttl, -1);
    let value: String = cmd("GETEX")
        .arg("cache")
        .arg("EX")
        .arg(100)
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(value, "This is a string");
    let ttl: i64 = con.ttl("cache").await.unwrap();
    assert!((99..=100).contains(&ttl), "{ttl}");
    let _: String = cmd("GETEX")
        .arg("cache")
        .arg("PERSIST")
        .query_async(&mut con)
        .await
        .unwrap();
    let ttl: i64 = con.ttl("cache").await.unwrap();
    assert_eq!(ttl, -1);
    let missing: Option<String> = cmd("GETEX")
        .arg("nothing")
        .arg("PX")
        .arg(10)
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(missing, None);
    let error = cmd("GETEX")
        .arg("cache")
        .arg("EX")
        .query_async::<()>(&mut con)
        .await
        .unwrap_err();
    assert_eq!(error.detail(), Some("syntax error"));
    let error = cmd("GETEX")
        .arg("cache")
        .arg("EX")
        .arg(0)
        .query_async::<()>(&mut con)
        .await
        .unwrap_err();
    assert_eq!(
        error.detail(),
        Some("invalid expire time in 'getex' command")
    );

    let range: String = con.getrange("cache", -6, -1).await.unwrap();
    assert_eq!(range, "string");
    let range: String = con.getrange("cache", 0, 3).await.unwrap();
    assert_eq!(range, "This");
    let range: String = con.getrange("nothing", 0, -1).await.unwrap();
    assert_eq!(range, "");

    // GETSET answers the old value and clears the deadline, as SET does.
    let _: () = con.set_ex("counter", "1", 100).await.unwrap();
    let old: Option<String> = con.getset("counter", "0").await.unwrap();
    assert_eq!(old.as_deref(), Some("1"));
    let ttl: i64 = con.ttl("counter").await.unwrap();
    assert_eq!(ttl, -1);
    let old: Option<String> = con.getset("fresh", "v").await.unwrap();
    assert_eq!(old, None);
    broker.stop().await;
}

#[tokio::test]
async fn msetnx_expiretime_touch_time_and_role() {
    let broker = Broker::start().await;
    let mut con = broker.connect().await;
    let written: i64 = cmd("MSETNX")
        .arg("a")
        .arg("1")
        .arg("b")
        .arg("2")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(written, 1);
    let written: i64 = cmd("MSETNX")
        .arg("c")
        .arg("3")
        .arg("a")
        .arg("x")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(written, 0, "'a' exists, so nothing is set");
    let values: Vec<Option<String>> = con.mget(&["a", "c"]).await.unwrap();
    assert_eq!(values, [Some("1".to_string()), None]);
    // A stream key exists too.
    let _: String = con.xadd("log", "*", &[("f", "v")]).await.unwrap();
    let written: i64 = cmd("MSETNX")
        .arg("d")
        .arg("4")
        .arg("log")
        .arg("x")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(written, 0);

    let at = 4_102_444_800i64; // 2100-01-01
    let _: () = cmd("EXPIREAT")
        .arg("a")
        .arg(at)
        .query_async(&mut con)
        .await
        .unwrap();
    let seconds: i64 = cmd("EXPIRETIME")
        .arg("a")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(seconds, at);
    let millis: i64 = cmd("PEXPIRETIME")
        .arg("a")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(millis, at * 1000);
    for (key, answer) in [("b", -1), ("log", -1), ("nothing", -2)] {
        let seconds: i64 = cmd("EXPIRETIME")
            .arg(key)
            .query_async(&mut con)
            .await
            .unwrap();
        assert_eq!(seconds, answer, "{key}");
    }

    let touched: i64 = cmd("TOUCH")
        .arg("a")
        .arg("log")
        .arg("nothing")
        .arg("a")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(touched, 3);

    let time: Vec<String> = cmd("TIME").query_async(&mut con).await.unwrap();
    let seconds: u64 = time[0].parse().unwrap();
    let micros: u32 = time[1].parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(seconds.abs_diff(now) <= 5 && micros < 1_000_000);

    let role: Value = cmd("ROLE").query_async(&mut con).await.unwrap();
    assert_eq!(
        role,
        Value::Array(vec![
            Value::BulkString(b"master".to_vec()),
            Value::Int(0),
            Value::Array(Vec::new()),
        ])
    );
    broker.stop().await;
}

/// WAITAOF answers at once that this connection's writes are fsynced locally (they were
/// before their replies); with replicas asked for, WAIT and WAITAOF answer what there is when
/// the timeout passes, as a Redis without replicas does.
#[tokio::test]
async fn wait_and_waitaof_report_the_local_fsync_and_no_replicas() {
    let broker = Broker::start().await;
    let mut con = broker.connect().await;
    let _: () = con.set("k", "v").await.unwrap();
    let copies: Vec<i64> = cmd("WAITAOF")
        .arg(1)
        .arg(0)
        .arg(0)
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(copies, [1, 0]);
    let replicas: i64 = cmd("WAIT")
        .arg(0)
        .arg(0)
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(replicas, 0);
    let started = std::time::Instant::now();
    let replicas: i64 = cmd("WAIT")
        .arg(1)
        .arg(100)
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(replicas, 0);
    assert!(started.elapsed() >= std::time::Duration::from_millis(95));
    let copies: Vec<i64> = cmd("WAITAOF")
        .arg(1)
        .arg(1)
        .arg(50)
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(copies, [1, 0]);
    let error = cmd("WAIT")
        .arg(0)
        .arg(-1)
        .query_async::<()>(&mut con)
        .await
        .unwrap_err();
    assert_eq!(error.detail(), Some("timeout is negative"));
    broker.stop().await;
}
