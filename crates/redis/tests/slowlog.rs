//! SLOWLOG through the `redis` crate: with a threshold of 0 every command is kept, newest
//! first, with its arguments (cut and redacted as Redis cuts them), the client's address and
//! name; a transaction's commands are kept one by one and EXEC is not; RESET, LEN, the
//! length bound, a threshold that logs nothing, and CONFIG GET showing both settings.
//! `tests/clients/test_redis_py.py` reads an entry through redis-py's `slowlog_get`.

#[allow(dead_code)]
mod support;

use omnibus_redis::RedisConfig;
use redis::{cmd, Value};
use support::Broker;

type Entry = (i64, i64, i64, Vec<String>, String, String);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_is_kept_newest_first_within_the_bound() {
    let dir = tempfile::tempdir().unwrap();
    let config = RedisConfig {
        slowlog_slower_than_us: 0,
        slowlog_max_len: 5,
        ..RedisConfig::default()
    };
    let broker = Broker::start_in(dir.path(), config).await;
    let mut con = broker.connect().await;
    let () = cmd("CLIENT")
        .arg("SETNAME")
        .arg("reporter")
        .query_async(&mut con)
        .await
        .unwrap();
    let () = cmd("SLOWLOG")
        .arg("RESET")
        .query_async(&mut con)
        .await
        .unwrap();
    let () = cmd("SET")
        .arg("k")
        .arg("x".repeat(200))
        .query_async(&mut con)
        .await
        .unwrap();
    let _: Value = cmd("AUTH")
        .arg("secret")
        .query_async(&mut con)
        .await
        .unwrap_or(Value::Nil);
    let entries: Vec<Entry> = cmd("SLOWLOG")
        .arg("GET")
        .query_async(&mut con)
        .await
        .unwrap();
    // Newest first: AUTH (redacted), SET (its value cut at 128 bytes), SLOWLOG RESET.
    let commands: Vec<&Vec<String>> = entries.iter().map(|e| &e.3).collect();
    assert_eq!(commands[0], &vec!["AUTH".to_string(), "(redacted)".into()]);
    assert_eq!(commands[1][..2], ["SET".to_string(), "k".into()]);
    assert_eq!(
        commands[1][2],
        format!("{}... (72 more bytes)", "x".repeat(128))
    );
    assert_eq!(commands[2], &vec!["SLOWLOG".to_string(), "RESET".into()]);
    let (id, when, _micros, _, address, name) = &entries[0];
    assert!(*id > entries[1].0);
    assert!(*when > 1_700_000_000);
    assert!(address.starts_with("127.0.0.1:"));
    assert_eq!(name, "reporter");

    // A transaction's commands, each; not EXEC.
    let () = cmd("MULTI").query_async(&mut con).await.unwrap();
    let _: Value = cmd("INCR").arg("n").query_async(&mut con).await.unwrap();
    let _: Value = cmd("GET").arg("n").query_async(&mut con).await.unwrap();
    let _: Value = cmd("EXEC").query_async(&mut con).await.unwrap();
    let newest: Vec<Entry> = cmd("SLOWLOG")
        .arg("GET")
        .arg(2)
        .query_async(&mut con)
        .await
        .unwrap();
    let names: Vec<&str> = newest.iter().map(|e| e.3[0].as_str()).collect();
    assert_eq!(names, vec!["GET", "INCR"]);

    // At most five kept; LEN and RESET.
    for n in 0..10 {
        let _: i64 = cmd("INCR")
            .arg(format!("c{n}"))
            .query_async(&mut con)
            .await
            .unwrap();
    }
    let len: i64 = cmd("SLOWLOG")
        .arg("LEN")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(len, 5);
    let all: Vec<Entry> = cmd("SLOWLOG")
        .arg("GET")
        .arg(-1)
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(all.len(), 5);
    let refused = cmd("SLOWLOG")
        .arg("GET")
        .arg(-2)
        .query_async::<Value>(&mut con)
        .await;
    assert!(refused
        .unwrap_err()
        .to_string()
        .contains("count should be greater than or equal to -1"));
    let config: Vec<String> = cmd("CONFIG")
        .arg("GET")
        .arg("slowlog*")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(
        config,
        vec!["slowlog-log-slower-than", "0", "slowlog-max-len", "5"]
    );
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_negative_threshold_keeps_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let config = RedisConfig {
        slowlog_slower_than_us: -1,
        ..RedisConfig::default()
    };
    let broker = Broker::start_in(dir.path(), config).await;
    let mut con = broker.connect().await;
    for n in 0..20 {
        let () = cmd("SET")
            .arg(n)
            .arg(n)
            .query_async(&mut con)
            .await
            .unwrap();
    }
    let len: i64 = cmd("SLOWLOG")
        .arg("LEN")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(len, 0);
    broker.stop().await;
}
