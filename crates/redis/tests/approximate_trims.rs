//! `XADD … MAXLEN ~ n` through the `redis` crate, alone and in scripts: trimmed without waiting for the XADDs
//! queued before it (`streams/writer.rs`, `Trimming::Approximately`), the stream keeps at
//! least its newest `n` entries and, once the writer is idle, at most `n` + the slack of 100;
//! the new start, saved lazily, is where a restart after a clean stop finds it.

#[allow(dead_code)]
mod support;

use std::time::{Duration, Instant};

use omnibus_redis::RedisConfig;
use redis::aio::MultiplexedConnection;
use redis::streams::StreamRangeReply;
use redis::{cmd, AsyncCommands};
use support::Broker;

/// XADDs `count` entries to `stream` in one pipeline, each with `MAXLEN ~ length` and its
/// number in field `n`; answers their IDs.
async fn burst(
    con: &mut MultiplexedConnection,
    stream: &str,
    length: u64,
    from: u64,
    count: u64,
) -> Vec<String> {
    let mut pipe = redis::pipe();
    for n in from..from + count {
        pipe.cmd("XADD")
            .arg(stream)
            .arg("MAXLEN")
            .arg("~")
            .arg(length)
            .arg("*")
            .arg("n")
            .arg(n);
    }
    pipe.query_async(con).await.unwrap()
}

/// The stream's length once it is at most `at_most` (waiting up to 10 s for the writer's
/// idle trim), with the number in its first entry.
async fn settled(con: &mut MultiplexedConnection, stream: &str, at_most: u64) -> (u64, u64) {
    let started = Instant::now();
    loop {
        let length: u64 = con.xlen(stream).await.unwrap();
        if length <= at_most {
            let first: StreamRangeReply = cmd("XRANGE")
                .arg(stream)
                .arg("-")
                .arg("+")
                .arg("COUNT")
                .arg(1)
                .query_async(con)
                .await
                .unwrap();
            let n: u64 = first.ids[0].get("n").unwrap();
            return (length, n);
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{stream} still holds {length} entries, more than {at_most}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approximate_trims_keep_the_newest_entries_within_the_slack_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start_in(dir.path(), RedisConfig::default()).await;
    let mut con = broker.connect().await;

    // One burst far past the slack: every XADD answered, and the newest 50 to 150 kept.
    let ids = burst(&mut con, "events", 50, 0, 1_000).await;
    assert_eq!(ids.len(), 1_000);
    let (length, first) = settled(&mut con, "events", 150).await;
    assert!(length >= 50, "{length}");
    assert_eq!(first, 1_000 - length, "the newest entries, in order");

    // Steady pipelines: never fewer than asked, and back within the slack when idle.
    for round in 0..10 {
        burst(&mut con, "steady", 300, round * 100, 100).await;
        let length: u64 = con.xlen("steady").await.unwrap();
        assert!(
            length >= 300.min((round + 1) * 100),
            "{length} after round {round}"
        );
    }
    let (length, first) = settled(&mut con, "steady", 400).await;
    assert_eq!(first, 1_000 - length);

    // From scripts, whose XADDs get their IDs without the writer: trimmed the same way.
    let mut pipe = redis::pipe();
    for n in 0..1_000u64 {
        pipe.cmd("EVAL")
            .arg("return redis.call('XADD', KEYS[1], 'MAXLEN', '~', '50', '*', 'n', ARGV[1])")
            .arg(1)
            .arg("scripted")
            .arg(n);
    }
    let ids: Vec<String> = pipe.query_async(&mut con).await.unwrap();
    assert_eq!(ids.len(), 1_000);
    let (scripted, first_scripted) = settled(&mut con, "scripted", 150).await;
    assert!(scripted >= 50, "{scripted}");
    assert_eq!(first_scripted, 1_000 - scripted);

    // A clean stop saves the moved starts.
    drop(con);
    broker.stop().await;
    let broker = Broker::start_in(dir.path(), RedisConfig::default()).await;
    let mut con = broker.connect().await;
    assert_eq!(settled(&mut con, "steady", 400).await, (length, first));
    let (events, _) = settled(&mut con, "events", 150).await;
    assert!(events >= 50);
    broker.stop().await;
}
