//! Redis consumer groups through the `redis` crate: two consumers splitting work, pending
//! entries staying with their consumer (no redelivery), XACK, XPENDING, a crashed consumer's
//! entries taken over with XAUTOCLAIM and XCLAIM, history reads, BLOCK woken by XADD, XINFO,
//! Redis's error words, and pending entries surviving a restart.

#[allow(dead_code)]
mod support;

use std::time::Duration;

use omnibus_redis::RedisConfig;
use redis::aio::MultiplexedConnection;
use redis::streams::{
    StreamAutoClaimOptions, StreamAutoClaimReply, StreamClaimOptions, StreamClaimReply,
    StreamInfoConsumersReply, StreamInfoGroupsReply, StreamInfoStreamReply,
    StreamPendingCountReply, StreamPendingReply, StreamReadOptions, StreamReadReply,
};
use redis::{cmd, AsyncCommands, RedisResult};
use support::Broker;

async fn add(con: &mut MultiplexedConnection, count: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for index in 0..count {
        let id: String = con.xadd("jobs", "*", &[("n", index)]).await.unwrap();
        ids.push(id);
    }
    ids
}

async fn read_group(
    con: &mut MultiplexedConnection,
    consumer: &str,
    count: usize,
    id: &str,
) -> Vec<String> {
    let options = StreamReadOptions::default()
        .group("workers", consumer)
        .count(count);
    let reply: Option<StreamReadReply> =
        con.xread_options(&["jobs"], &[id], &options).await.unwrap();
    reply.map_or_else(Vec::new, |reply| {
        reply.keys[0]
            .ids
            .iter()
            .map(|entry| entry.id.clone())
            .collect()
    })
}

fn error_text<T: std::fmt::Debug>(result: RedisResult<T>) -> String {
    let error = result.unwrap_err();
    format!(
        "{} {}",
        error.code().unwrap_or(""),
        error.detail().unwrap_or("")
    )
}

#[tokio::test]
async fn two_consumers_split_the_work_and_entries_stay_pending_until_acked() {
    let broker = Broker::start().await;
    let mut con = broker.connect().await;
    let _: () = con
        .xgroup_create_mkstream("jobs", "workers", "0")
        .await
        .unwrap();
    let ids = add(&mut con, 10).await;
    let first = read_group(&mut con, "alice", 4, ">").await;
    let second = read_group(&mut con, "bob", 100, ">").await;
    assert_eq!(first, ids[..4]);
    assert_eq!(second, ids[4..]);
    assert!(
        read_group(&mut con, "bob", 100, ">").await.is_empty(),
        "nothing is redelivered"
    );
    let acked: usize = con
        .xack("jobs", "workers", &[&ids[0], &ids[5], &ids[6]])
        .await
        .unwrap();
    assert_eq!(acked, 3);
    let again: usize = con.xack("jobs", "workers", &[&ids[0]]).await.unwrap();
    assert_eq!(again, 0, "an acknowledged entry is pending no more");
    let summary: StreamPendingReply = con.xpending("jobs", "workers").await.unwrap();
    let StreamPendingReply::Data(data) = summary else {
        panic!("pending entries expected");
    };
    assert_eq!(data.count, 7);
    assert_eq!(
        (data.start_id.as_str(), data.end_id.as_str()),
        (ids[1].as_str(), ids[9].as_str())
    );
    let per_consumer: Vec<(String, usize)> = data
        .consumers
        .iter()
        .map(|consumer| (consumer.name.clone(), consumer.pending))
        .collect();
    assert_eq!(per_consumer, vec![("alice".into(), 3), ("bob".into(), 4)]);
    // History: a consumer's own pending entries, from an ID on.
    assert_eq!(read_group(&mut con, "alice", 10, "0").await, ids[1..4]);
    assert_eq!(read_group(&mut con, "alice", 10, &ids[2]).await, ids[3..4]);
    // Each history read counted a delivery, as in Redis.
    let detail: StreamPendingCountReply = con
        .xpending_consumer_count("jobs", "workers", "-", "+", 10, "alice")
        .await
        .unwrap();
    let counts: Vec<usize> = detail.ids.iter().map(|e| e.times_delivered).collect();
    assert_eq!(counts, vec![2, 2, 3]);
    broker.stop().await;
}

#[tokio::test]
async fn a_crashed_consumers_entries_are_taken_over_with_xautoclaim_and_xclaim() {
    let broker = Broker::start().await;
    let mut con = broker.connect().await;
    let _: () = con
        .xgroup_create_mkstream("jobs", "workers", "$")
        .await
        .unwrap();
    let ids = add(&mut con, 4).await;
    assert_eq!(read_group(&mut con, "crashed", 3, ">").await, ids[..3]);
    // Too fresh to take.
    let options = || StreamAutoClaimOptions::default().count(10);
    let none: StreamAutoClaimReply = con
        .xautoclaim_options("jobs", "workers", "rescuer", 60_000, "0-0", options())
        .await
        .unwrap();
    assert!(none.claimed.is_empty());
    tokio::time::sleep(Duration::from_millis(30)).await;
    let taken: StreamAutoClaimReply = con
        .xautoclaim_options("jobs", "workers", "rescuer", 20, "0-0", options())
        .await
        .unwrap();
    let claimed: Vec<String> = taken.claimed.iter().map(|e| e.id.clone()).collect();
    assert_eq!(claimed, ids[..3]);
    assert_eq!(taken.next_stream_id, "0-0");
    let detail: StreamPendingCountReply = con
        .xpending_consumer_count("jobs", "workers", "-", "+", 10, "rescuer")
        .await
        .unwrap();
    let counts: Vec<(String, usize)> = detail
        .ids
        .iter()
        .map(|entry| (entry.id.clone(), entry.times_delivered))
        .collect();
    assert_eq!(
        counts,
        vec![
            (ids[0].clone(), 2),
            (ids[1].clone(), 2),
            (ids[2].clone(), 2)
        ]
    );
    // XCLAIM back one entry with JUSTID (delivery count unchanged) and FORCE one never read.
    let just: Vec<String> = con
        .xclaim_options(
            "jobs",
            "workers",
            "alice",
            0,
            &[&ids[0]],
            StreamClaimOptions::default().with_justid(),
        )
        .await
        .unwrap();
    assert_eq!(just, vec![ids[0].clone()]);
    let forced: StreamClaimReply = con
        .xclaim_options(
            "jobs",
            "workers",
            "alice",
            0,
            &[&ids[3]],
            StreamClaimOptions::default().with_force(),
        )
        .await
        .unwrap();
    assert_eq!(forced.ids.len(), 1);
    let consumers: StreamInfoConsumersReply = con.xinfo_consumers("jobs", "workers").await.unwrap();
    let pending: Vec<(String, usize)> = consumers
        .consumers
        .iter()
        .map(|c| (c.name.clone(), c.pending))
        .collect();
    assert_eq!(
        pending,
        vec![
            ("alice".into(), 2),
            ("crashed".into(), 0),
            ("rescuer".into(), 2)
        ]
    );
    broker.stop().await;
}

#[tokio::test]
async fn xreadgroup_block_is_woken_by_an_xadd_and_noack_leaves_nothing_pending() {
    let broker = Broker::start().await;
    let mut reader = broker.connect().await;
    let mut writer = broker.connect().await;
    let _: () = writer
        .xgroup_create_mkstream("jobs", "workers", "$")
        .await
        .unwrap();
    let blocked = tokio::spawn(async move {
        let options = StreamReadOptions::default()
            .group("workers", "sleeper")
            .block(0)
            .noack();
        let reply: StreamReadReply = reader
            .xread_options(&["jobs"], &[">"], &options)
            .await
            .unwrap();
        reply.keys[0].ids.len()
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!blocked.is_finished());
    add(&mut writer, 1).await;
    let got = tokio::time::timeout(Duration::from_secs(5), blocked)
        .await
        .expect("the XADD wakes the group reader")
        .unwrap();
    assert_eq!(got, 1);
    let summary: StreamPendingReply = writer.xpending("jobs", "workers").await.unwrap();
    assert_eq!(summary.count(), 0, "NOACK: nothing pending");
    broker.stop().await;
}

/// INFO's `blocked_clients`.
async fn blocked_clients(con: &mut MultiplexedConnection) -> usize {
    let info: String = cmd("INFO").arg("clients").query_async(con).await.unwrap();
    info.lines()
        .find_map(|line| line.strip_prefix("blocked_clients:"))
        .and_then(|count| count.trim().parse().ok())
        .unwrap()
}

/// As redis-server serves the clients blocked on a key: each XADD goes to the group reader
/// that has waited longest, and the others stay blocked (`streams/turns.rs`).
#[tokio::test]
async fn blocked_group_readers_are_served_in_the_order_they_blocked() {
    let broker = Broker::start().await;
    let mut writer = broker.connect().await;
    let _: () = writer
        .xgroup_create_mkstream("jobs", "workers", "$")
        .await
        .unwrap();
    for _round in 0..4 {
        let mut readers = Vec::new();
        for name in ["first", "second", "third"] {
            let mut reader = broker.connect().await;
            let before = blocked_clients(&mut writer).await;
            readers.push(tokio::spawn(async move {
                let options = StreamReadOptions::default()
                    .group("workers", name)
                    .count(1)
                    .block(0);
                let reply: StreamReadReply = reader
                    .xread_options(&["jobs"], &[">"], &options)
                    .await
                    .unwrap();
                reply.keys[0].ids[0].id.clone()
            }));
            let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
            while blocked_clients(&mut writer).await <= before {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "{name} never blocked"
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        for reader in readers {
            let added = add(&mut writer, 1).await;
            let served = tokio::time::timeout(Duration::from_secs(5), reader)
                .await
                .expect("the XADD went to the reader that waited longest")
                .unwrap();
            assert_eq!(served, added[0]);
        }
    }
    broker.stop().await;
}

#[tokio::test]
async fn group_errors_use_redis_words() {
    let broker = Broker::start().await;
    let mut con = broker.connect().await;
    let missing = con.xgroup_create::<_, _, _, ()>("nothing", "g", "$").await;
    assert!(error_text(missing).starts_with("ERR The XGROUP subcommand requires the key to exist"));
    let _: () = con
        .xgroup_create_mkstream("jobs", "workers", "$")
        .await
        .unwrap();
    assert_eq!(
        error_text(
            con.xgroup_create_mkstream::<_, _, _, ()>("jobs", "workers", "$")
                .await
        ),
        "BUSYGROUP Consumer Group name already exists"
    );
    let options = StreamReadOptions::default().group("ghosts", "c");
    assert_eq!(
        error_text(
            con.xread_options::<_, _, Option<StreamReadReply>>(&["jobs"], &[">"], &options)
                .await
        ),
        "NOGROUP No such key 'jobs' or consumer group 'ghosts' in XREADGROUP with GROUP option"
    );
    assert_eq!(
        error_text(
            con.xpending::<_, _, StreamPendingReply>("jobs", "ghosts")
                .await
        ),
        "NOGROUP No such key 'jobs' or consumer group 'ghosts'"
    );
    let created: bool = cmd("XGROUP")
        .arg("CREATECONSUMER")
        .arg("jobs")
        .arg("workers")
        .arg("idle")
        .query_async(&mut con)
        .await
        .unwrap();
    assert!(created);
    let destroyed: usize = con.xgroup_destroy("jobs", "workers").await.unwrap();
    assert_eq!(destroyed, 1);
    // A group that is not there is not destroyed, without an error (Redis answers 0).
    let again: usize = con.xgroup_destroy("jobs", "workers").await.unwrap();
    assert_eq!(again, 0);
    let groups: StreamInfoGroupsReply = con.xinfo_groups("jobs").await.unwrap();
    assert!(groups.groups.is_empty());
    broker.stop().await;
}

#[tokio::test]
async fn xinfo_describes_the_stream_and_its_groups() {
    let broker = Broker::start().await;
    let mut con = broker.connect().await;
    let ids = add(&mut con, 3).await;
    let _: () = con.xgroup_create("jobs", "workers", "0").await.unwrap();
    read_group(&mut con, "alice", 2, ">").await;
    let info: StreamInfoStreamReply = con.xinfo_stream("jobs").await.unwrap();
    assert_eq!(info.length, 3);
    assert_eq!(info.groups, 1);
    assert_eq!(info.last_generated_id, ids[2]);
    assert_eq!(info.first_entry.id, ids[0]);
    assert_eq!(info.last_entry.id, ids[2]);
    let groups: StreamInfoGroupsReply = con.xinfo_groups("jobs").await.unwrap();
    let group = &groups.groups[0];
    assert_eq!(
        (
            group.name.as_str(),
            group.consumers,
            group.pending,
            group.last_delivered_id.as_str()
        ),
        ("workers", 1, 2, ids[1].as_str())
    );
    // SETID back to the start: the entries come again as new.
    let _: () = con.xgroup_setid("jobs", "workers", "0").await.unwrap();
    assert_eq!(read_group(&mut con, "bob", 10, ">").await, ids);
    broker.stop().await;
}

#[tokio::test]
async fn pending_entries_and_positions_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start_in(dir.path(), RedisConfig::default()).await;
    let mut con = broker.connect().await;
    let _: () = con
        .xgroup_create_mkstream("jobs", "workers", "$")
        .await
        .unwrap();
    let ids = add(&mut con, 5).await;
    read_group(&mut con, "alice", 3, ">").await;
    let _: usize = con.xack("jobs", "workers", &[&ids[1]]).await.unwrap();
    drop(con);
    broker.stop().await;
    tokio::time::sleep(Duration::from_millis(50)).await;

    let broker = Broker::start_in(dir.path(), RedisConfig::default()).await;
    let mut con = broker.connect().await;
    assert_eq!(
        read_group(&mut con, "alice", 10, "0").await,
        vec![ids[0].clone(), ids[2].clone()]
    );
    assert_eq!(read_group(&mut con, "bob", 10, ">").await, ids[3..]);
    broker.stop().await;
}

/// As in Redis, a blocked XREADGROUP whose group goes — XGROUP DESTROY, or DEL of the stream
/// key — is answered at once with NOGROUP, not left waiting for entries that cannot come.
#[tokio::test]
async fn a_blocked_xreadgroup_ends_with_nogroup_when_its_group_or_stream_goes() {
    let broker = Broker::start().await;
    let mut con = broker.connect().await;
    let nogroup =
        "NOGROUP No such key 'jobs' or consumer group 'workers' in XREADGROUP with GROUP option";
    for removal in ["XGROUP DESTROY", "DEL"] {
        let _: () = con
            .xgroup_create_mkstream("jobs", "workers", "$")
            .await
            .unwrap();
        let mut reader = broker.connect().await;
        let blocked = tokio::spawn(async move {
            let options = StreamReadOptions::default().group("workers", "w1").block(0);
            let reply: RedisResult<Option<StreamReadReply>> =
                reader.xread_options(&["jobs"], &[">"], &options).await;
            error_text(reply)
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!blocked.is_finished(), "BLOCK 0 waits");
        if removal == "DEL" {
            let _: i64 = con.del("jobs").await.unwrap();
        } else {
            let _: i64 = con.xgroup_destroy("jobs", "workers").await.unwrap();
        }
        let answer = tokio::time::timeout(Duration::from_secs(5), blocked)
            .await
            .unwrap_or_else(|_| panic!("{removal} left the reader blocked"))
            .unwrap();
        assert_eq!(answer, nogroup, "after {removal}");
    }
    broker.stop().await;
}

/// A worker killed while it waits in `XREADGROUP … BLOCK 0 >` must not be handed the next
/// entry: Redis unblocks a client that disconnects, so the entry goes to the next reader
/// instead of waiting in a dead consumer's pending list until someone claims it.
#[tokio::test]
async fn a_blocked_reader_that_disconnects_is_not_handed_the_next_entry() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let broker = Broker::start().await;
    let mut con = broker.connect().await;
    let _: () = con
        .xgroup_create_mkstream("jobs", "workers", "$")
        .await
        .unwrap();
    let address = broker.address;
    let mut gone = tokio::net::TcpStream::connect(address).await.unwrap();
    gone.write_all(
        b"*9\r\n$10\r\nXREADGROUP\r\n$5\r\nGROUP\r\n$7\r\nworkers\r\n$4\r\ndead\r\n\
          $5\r\nBLOCK\r\n$1\r\n0\r\n$7\r\nSTREAMS\r\n$4\r\njobs\r\n$1\r\n>\r\n\
          *1\r\n$4\r\nPING\r\n",
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut nothing = [0u8; 16];
    let early = tokio::time::timeout(Duration::from_millis(50), gone.read(&mut nothing)).await;
    assert!(early.is_err(), "BLOCK 0 waits, and the PING behind it too");
    drop(gone);
    tokio::time::sleep(Duration::from_millis(200)).await;

    let ids = add(&mut con, 1).await;
    let pending: StreamPendingReply = con.xpending("jobs", "workers").await.unwrap();
    assert_eq!(pending.count(), 0, "nothing went to the reader that left");
    assert_eq!(read_group(&mut con, "alive", 10, ">").await, ids);
    broker.stop().await;
}

#[tokio::test]
async fn pipelined_xacks_share_commits_and_see_the_reads_before_them() {
    let broker = Broker::start().await;
    let mut con = broker.connect().await;
    let ids = add(&mut con, 200).await;
    let () = cmd("XGROUP")
        .arg("CREATE")
        .arg("jobs")
        .arg("workers")
        .arg("0")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(read_group(&mut con, "alice", 200, ">").await.len(), 200);
    // One XACK per entry in one pipeline, as a consumer acking each job sends them.
    let commits = broker.engine.state_stats().commits;
    let mut pipe = redis::pipe();
    for id in &ids {
        pipe.cmd("XACK").arg("jobs").arg("workers").arg(id);
    }
    let acked: Vec<i64> = pipe.query_async(&mut con).await.unwrap();
    assert_eq!(acked, vec![1; 200]);
    let spent = broker.engine.state_stats().commits - commits;
    assert!(spent < 50, "200 pipelined XACKs took {spent} state commits");
    let pending: StreamPendingReply = con.xpending("jobs", "workers").await.unwrap();
    assert_eq!(pending.count(), 0);

    // A read and the XACK of what it delivers, in one pipeline: the XACK waits for the read.
    // (Another group read it first, so the door knows its offset and would ack it at once.)
    let () = cmd("XGROUP")
        .arg("CREATE")
        .arg("jobs")
        .arg("audit")
        .arg("$")
        .query_async(&mut con)
        .await
        .unwrap();
    let more = add(&mut con, 1).await;
    let _: StreamReadReply = con
        .xread_options(
            &["jobs"],
            &[">"],
            &StreamReadOptions::default().group("audit", "carol"),
        )
        .await
        .unwrap();
    let (read, acked, left): (StreamReadReply, i64, StreamPendingCountReply) = redis::pipe()
        .cmd("XREADGROUP")
        .arg("GROUP")
        .arg("workers")
        .arg("bob")
        .arg("STREAMS")
        .arg("jobs")
        .arg(">")
        .cmd("XACK")
        .arg("jobs")
        .arg("workers")
        .arg(&more[0])
        .cmd("XPENDING")
        .arg("jobs")
        .arg("workers")
        .arg("-")
        .arg("+")
        .arg(10)
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(read.keys[0].ids[0].id, more[0]);
    assert_eq!(acked, 1);
    assert!(left.ids.is_empty());

    // A DEL before it in the pipeline goes first: nothing is left to ack.
    let last = add(&mut con, 1).await;
    read_group(&mut con, "bob", 1, ">").await;
    let (deleted, acked): (i64, i64) = redis::pipe()
        .cmd("DEL")
        .arg("jobs")
        .cmd("XACK")
        .arg("jobs")
        .arg("workers")
        .arg(&last[0])
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!((deleted, acked), (1, 0));
    broker.stop().await;
}
