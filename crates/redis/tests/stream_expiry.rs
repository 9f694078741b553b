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

/// A stream read never answers from a stream past its deadline, even while the deletion
/// cannot finish: here every fsync is held, so the sweeper's deletion (a durable state
/// commit) waits and the engine still has the stream. The reads — alone, in MULTI/EXEC, in a
/// script declaring the key, and the group commands — wait for that deletion, as Redis
/// deletes an expired key the moment a command touches it, and answer as for a stream that
/// is not there.
#[tokio::test]
async fn stream_reads_after_the_deadline_wait_for_the_deletion_and_see_no_stream() {
    let (broker, plan) = Broker::start_with_faults().await;
    let config = redis::AsyncConnectionConfig::new().set_response_timeout(None);
    let mut con = redis::Client::open(broker.url())
        .unwrap()
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .unwrap();
    let streams = ["alone", "in-exec", "in-script", "grouped"];
    for stream in streams {
        xadd(&mut con, stream, "1-0").await;
        xadd(&mut con, stream, "2-0").await;
        assert_eq!(integer(&mut con, &["PEXPIRE", stream, "300"]).await, 1);
    }
    let _: () = cmd("XGROUP")
        .arg("CREATE")
        .arg("grouped")
        .arg("g")
        .arg("0")
        .query_async(&mut con)
        .await
        .unwrap();
    let held = plan.hold_syncs_while_held();
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert!(
        broker.engine.stream_info("alone").is_ok(),
        "the deletion waits for the held fsync"
    );
    let mut pipe = redis::pipe();
    pipe.cmd("XRANGE").arg("alone").arg("-").arg("+");
    pipe.cmd("XLEN").arg("alone");
    pipe.cmd("XREAD").arg("STREAMS").arg("alone").arg("0");
    pipe.cmd("MULTI");
    pipe.cmd("XLEN").arg("in-exec");
    pipe.cmd("XRANGE").arg("in-exec").arg("-").arg("+");
    pipe.cmd("EXEC");
    pipe.cmd("EVAL")
        .arg("return redis.call('XLEN', KEYS[1])")
        .arg(1)
        .arg("in-script");
    let mut reader = con.clone();
    let reads =
        tokio::spawn(async move { pipe.query_async::<Vec<redis::Value>>(&mut reader).await });
    let mut info = cmd("XINFO");
    info.arg("GROUPS").arg("grouped");
    let mut group_read = cmd("XREADGROUP");
    group_read
        .arg("GROUP")
        .arg("g")
        .arg("c")
        .arg("STREAMS")
        .arg("grouped")
        .arg(">");
    // Each on a connection of its own, not behind the reads above.
    let mut group_commands = Vec::new();
    for command in [info, group_read] {
        let mut reader = redis::Client::open(broker.url())
            .unwrap()
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .unwrap();
        group_commands.push(tokio::spawn(async move {
            command.query_async::<redis::Value>(&mut reader).await
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !reads.is_finished(),
        "a read answered from a stream past its deadline: {:?}",
        reads.await
    );
    for command in &group_commands {
        assert!(!command.is_finished(), "a group command answered early");
    }
    drop(held);
    let replies = tokio::time::timeout(Duration::from_secs(10), reads)
        .await
        .expect("answered once the deletion is durable")
        .unwrap()
        .unwrap();
    use redis::Value::{Array, Int, Nil, Okay, SimpleString};
    assert_eq!(replies[0], Array(vec![]), "XRANGE");
    assert_eq!(replies[1], Int(0), "XLEN");
    assert_eq!(replies[2], Nil, "XREAD");
    assert!(
        matches!(&replies[3], Okay | SimpleString(_)),
        "MULTI {:?}",
        replies[3]
    );
    assert_eq!(replies[6], Array(vec![Int(0), Array(vec![])]), "EXEC");
    assert_eq!(replies[7], Int(0), "EVAL");
    let mut errors = Vec::new();
    for command in group_commands {
        let answer = tokio::time::timeout(Duration::from_secs(10), command)
            .await
            .expect("answered once the deletion is durable")
            .unwrap();
        errors.push(answer.unwrap_err().to_string());
    }
    assert!(
        errors[0].contains("no such key"),
        "XINFO GROUPS: {}",
        errors[0]
    );
    assert!(errors[1].contains("NOGROUP"), "XREADGROUP: {}", errors[1]);
    for stream in streams {
        assert!(
            broker.engine.stream_info(stream).is_err(),
            "{stream} deleted"
        );
    }
    broker.stop().await;
}
