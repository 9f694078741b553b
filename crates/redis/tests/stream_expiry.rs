//! Stream keys with a time to live, through the `redis` crate: EXPIRE and its kin on a stream
//! key give it a deadline (TTL, EXPIRETIME and PERSIST see it), at which the stream goes with
//! its groups; the deadline survives a restart, is not inherited by a stream of the same name
//! made through another door, and a pipelined TTL sees the EXPIRE before it.

#[allow(dead_code)]
mod support;

use std::time::{Duration, Instant};

use omnibus_engine::StreamSpec;
use omnibus_redis::RedisConfig;
use redis::{cmd, RedisResult};
use support::{xadd, Broker};

async fn integer(con: &mut redis::aio::MultiplexedConnection, words: &[&str]) -> i64 {
    let mut command = cmd(words[0]);
    for word in &words[1..] {
        command.arg(*word);
    }
    command.query_async(con).await.unwrap()
}

/// Waits (at most 10 s) until the engine has deleted `stream`: the sweeper did, not only
/// the key commands hiding it.
async fn deleted_by_the_sweeper(broker: &Broker, stream: &str) {
    let started = Instant::now();
    while broker.engine.stream_info(stream).is_ok() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{stream} was not deleted at its deadline"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[tokio::test]
async fn a_stream_key_with_a_ttl_goes_with_its_groups_at_its_deadline() {
    let broker = Broker::start().await;
    let mut con = broker.connect().await;
    xadd(&mut con, "session", "1-0").await;
    let _: () = cmd("XGROUP")
        .arg("CREATE")
        .arg("session")
        .arg("g")
        .arg("0")
        .query_async(&mut con)
        .await
        .unwrap();
    xadd(&mut con, "kept", "1-0").await;
    assert_eq!(integer(&mut con, &["TTL", "session"]).await, -1);
    assert_eq!(integer(&mut con, &["PEXPIRE", "session", "400"]).await, 1);
    let pttl = integer(&mut con, &["PTTL", "session"]).await;
    assert!((1..=400).contains(&pttl), "PTTL {pttl}");
    // An XADD keeps the deadline, as in Redis.
    xadd(&mut con, "session", "2-0").await;
    assert!(integer(&mut con, &["PTTL", "session"]).await > 0);
    assert_eq!(integer(&mut con, &["EXISTS", "session", "kept"]).await, 2);
    let expires_in_info: String = cmd("INFO")
        .arg("keyspace")
        .query_async(&mut con)
        .await
        .unwrap();
    assert!(expires_in_info.contains("expires=1"), "{expires_in_info}");

    deleted_by_the_sweeper(&broker, "session").await;
    assert_eq!(integer(&mut con, &["EXISTS", "session", "kept"]).await, 1);
    assert_eq!(integer(&mut con, &["TTL", "session"]).await, -2);
    assert_eq!(integer(&mut con, &["DBSIZE"]).await, 1);
    let kind: String = cmd("TYPE")
        .arg("session")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(kind, "none");
    // An XADD makes a new stream, without the old one's entries, groups or deadline.
    xadd(&mut con, "session", "1-0").await;
    assert_eq!(integer(&mut con, &["XLEN", "session"]).await, 1);
    assert_eq!(integer(&mut con, &["TTL", "session"]).await, -1);
    let groups: Vec<redis::Value> = cmd("XINFO")
        .arg("GROUPS")
        .arg("session")
        .query_async(&mut con)
        .await
        .unwrap();
    assert!(groups.is_empty(), "{groups:?}");
    // The other stream had no deadline and stays.
    assert_eq!(integer(&mut con, &["XLEN", "kept"]).await, 1);
    broker.stop().await;
}

#[tokio::test]
async fn expire_persist_and_their_conditions_on_a_stream_key() {
    let broker = Broker::start().await;
    let mut con = broker.connect().await;
    xadd(&mut con, "s", "1-0").await;
    assert_eq!(integer(&mut con, &["EXPIRE", "s", "100", "XX"]).await, 0);
    assert_eq!(integer(&mut con, &["EXPIRE", "s", "100", "NX"]).await, 1);
    assert_eq!(integer(&mut con, &["EXPIRE", "s", "200", "NX"]).await, 0);
    assert_eq!(integer(&mut con, &["EXPIRE", "s", "50", "GT"]).await, 0);
    assert_eq!(integer(&mut con, &["EXPIRE", "s", "500", "GT"]).await, 1);
    assert_eq!(integer(&mut con, &["EXPIRE", "s", "1000", "LT"]).await, 0);
    assert_eq!(integer(&mut con, &["TTL", "s"]).await, 500);
    let at = now_ms() / 1000 + 3_600;
    let at_text = at.to_string();
    assert_eq!(integer(&mut con, &["EXPIREAT", "s", &at_text]).await, 1);
    assert_eq!(integer(&mut con, &["EXPIRETIME", "s"]).await, at);
    assert_eq!(integer(&mut con, &["PEXPIRETIME", "s"]).await, at * 1000);
    assert_eq!(integer(&mut con, &["PERSIST", "s"]).await, 1);
    assert_eq!(integer(&mut con, &["PERSIST", "s"]).await, 0);
    assert_eq!(integer(&mut con, &["EXPIRETIME", "s"]).await, -1);
    // A deadline already past deletes the stream at once.
    assert_eq!(integer(&mut con, &["PEXPIRE", "s", "-1"]).await, 1);
    assert!(broker.engine.stream_info("s").is_err());
    assert_eq!(integer(&mut con, &["EXPIRE", "s", "10"]).await, 0);
    assert_eq!(integer(&mut con, &["PERSIST", "s"]).await, 0);
    let bad: RedisResult<i64> = cmd("EXPIRE")
        .arg("s")
        .arg("5")
        .arg("BAD")
        .query_async(&mut con)
        .await;
    assert_eq!(bad.unwrap_err().code(), Some("ERR"));
    broker.stop().await;
}

#[tokio::test]
async fn a_pipelined_ttl_sees_the_expire_of_a_stream_made_by_the_same_pipeline() {
    let broker = Broker::start().await;
    let mut con = broker.connect().await;
    let (_, expired, pttl, persisted, ttl): (String, i64, i64, i64, i64) = redis::pipe()
        .cmd("XADD")
        .arg("piped")
        .arg("*")
        .arg("f")
        .arg("v")
        .cmd("PEXPIRE")
        .arg("piped")
        .arg(60_000)
        .cmd("PTTL")
        .arg("piped")
        .cmd("PERSIST")
        .arg("piped")
        .cmd("TTL")
        .arg("piped")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(expired, 1);
    assert!((59_000..=60_000).contains(&pttl), "PTTL {pttl}");
    assert_eq!((persisted, ttl), (1, -1));
    // And from a script, where the stream's writer answers too.
    let from_script: i64 = cmd("EVAL")
        .arg("return redis.call('EXPIRE', KEYS[1], 30)")
        .arg(1)
        .arg("piped")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(from_script, 1);
    assert_eq!(integer(&mut con, &["TTL", "piped"]).await, 30);
    broker.stop().await;
}

#[tokio::test]
async fn a_stream_deadline_survives_a_restart_and_is_kept_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start_in(dir.path(), RedisConfig::default()).await;
    let mut con = broker.connect().await;
    xadd(&mut con, "later", "1-0").await;
    xadd(&mut con, "soon", "1-0").await;
    let later_at = (now_ms() + 3_600_000).to_string();
    assert_eq!(
        integer(&mut con, &["PEXPIREAT", "later", &later_at]).await,
        1
    );
    // Due while the broker is down, or just after it is back.
    let soon_at = (now_ms() + 300).to_string();
    assert_eq!(integer(&mut con, &["PEXPIREAT", "soon", &soon_at]).await, 1);
    drop(con);
    broker.stop().await;

    let broker = Broker::start_in(dir.path(), RedisConfig::default()).await;
    let mut con = broker.connect().await;
    assert_eq!(
        integer(&mut con, &["PEXPIRETIME", "later"])
            .await
            .to_string(),
        later_at
    );
    deleted_by_the_sweeper(&broker, "soon").await;
    assert_eq!(integer(&mut con, &["EXISTS", "soon", "later"]).await, 1);
    drop(con);
    broker.stop().await;
}

#[tokio::test]
async fn a_stream_made_again_through_another_door_has_no_deadline() {
    let broker = Broker::start().await;
    let mut con = broker.connect().await;
    xadd(&mut con, "reborn", "1-0").await;
    assert_eq!(integer(&mut con, &["PEXPIRE", "reborn", "300"]).await, 1);
    // Deleted and made again over another door (the engine, as HTTP would).
    broker.engine.delete_stream("reborn").await.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    broker
        .engine
        .create_stream(StreamSpec {
            name: "reborn".into(),
            partitions: Some(1),
            ..StreamSpec::default()
        })
        .await
        .unwrap();
    assert_eq!(integer(&mut con, &["TTL", "reborn"]).await, -1);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(broker.engine.stream_info("reborn").is_ok());
    assert_eq!(integer(&mut con, &["EXISTS", "reborn"]).await, 1);
    broker.stop().await;
}

#[tokio::test]
async fn expire_on_a_queues_stream_is_refused() {
    let broker = Broker::start().await;
    broker
        .engine
        .create_queue(omnibus_engine::queue::QueueSpec {
            name: "work".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut con = broker.connect().await;
    assert_eq!(integer(&mut con, &["EXISTS", "work"]).await, 1);
    let refused: RedisResult<i64> = cmd("EXPIRE")
        .arg("work")
        .arg(10)
        .query_async(&mut con)
        .await;
    let error = refused.unwrap_err();
    assert!(error.to_string().contains("queue"), "{error}");
    assert_eq!(integer(&mut con, &["TTL", "work"]).await, -1);
    broker.stop().await;
}
