//! Redis streams through the `redis` crate: XADD's IDs and options, XRANGE/XREVRANGE, XREAD
//! (BLOCK woken by another connection's XADD), trimming, XSETID, WRONGTYPE, pipelines, and
//! the same stream read and written by the engine as other doors do.

#[allow(dead_code)]
mod support;

use std::time::Duration;

use bytes::Bytes;
use omnibus_engine::{FetchRequest, PublishRecord, PublishTarget};
use omnibus_redis::RedisConfig;
use redis::streams::{StreamRangeReply, StreamReadOptions, StreamReadReply};
use redis::{cmd, AsyncCommands, RedisResult};
use support::{try_xadd as xadd, Broker};

fn ids(reply: &StreamRangeReply) -> Vec<String> {
    reply.ids.iter().map(|entry| entry.id.clone()).collect()
}

fn error_text(result: RedisResult<impl std::fmt::Debug>) -> String {
    let error = result.unwrap_err();
    format!(
        "{} {}",
        error.code().unwrap_or(""),
        error.detail().unwrap_or("")
    )
}

#[tokio::test]
async fn xadd_ids_grow_strictly_and_xrange_reads_by_id() {
    let broker = Broker::start().await;
    let mut con = broker.connect().await;
    assert_eq!(xadd(&mut con, "s", "1-1").await.unwrap(), "1-1");
    assert_eq!(xadd(&mut con, "s", "1-*").await.unwrap(), "1-2");
    assert_eq!(xadd(&mut con, "s", "5").await.unwrap(), "5-0");
    assert_eq!(xadd(&mut con, "s", "5-*").await.unwrap(), "5-1");
    let auto = xadd(&mut con, "s", "*").await.unwrap();
    let (ms, seq) = auto.split_once('-').unwrap();
    assert!(ms.parse::<u64>().unwrap() > 1_000_000_000_000, "{auto}");
    assert_eq!(seq, "0");
    // Redis's exact words for an ID not above the top, 0-0, and an unreadable ID.
    assert_eq!(
        error_text(xadd(&mut con, "s", "5-1").await),
        "ERR The ID specified in XADD is equal or smaller than the target stream top item"
    );
    assert_eq!(
        error_text(xadd(&mut con, "t", "0-0").await),
        "ERR The ID specified in XADD must be greater than 0-0"
    );
    assert_eq!(
        error_text(xadd(&mut con, "s", "1-x").await),
        "ERR Invalid stream ID specified as stream command argument"
    );
    let length: usize = con.xlen("s").await.unwrap();
    assert_eq!(length, 5);

    let all: StreamRangeReply = con.xrange_all("s").await.unwrap();
    assert_eq!(ids(&all)[..4], ["1-1", "1-2", "5-0", "5-1"]);
    assert_eq!(all.ids[0].get::<String>("f").as_deref(), Some("1-1"));
    let some: StreamRangeReply = con.xrange("s", "(1-1", "5").await.unwrap();
    assert_eq!(ids(&some), ["1-2", "5-0", "5-1"]);
    let counted: StreamRangeReply = con.xrange_count("s", "1-2", "+", 2).await.unwrap();
    assert_eq!(ids(&counted), ["1-2", "5-0"]);
    let reversed: StreamRangeReply = con.xrevrange_count("s", "(5-1", "-", 2).await.unwrap();
    assert_eq!(ids(&reversed), ["5-0", "1-2"]);
    let nothing: StreamRangeReply = con.xrange("missing", "-", "+").await.unwrap();
    assert!(nothing.ids.is_empty());
    broker.stop().await;
}

/// XREAD BLOCK 0 waits, and another connection's XADD wakes it with the new entry: on a
/// stream that exists (`$`), and on one nobody created yet (workers started before the
/// producers), which the XADD creates (the engine ends the wait when the stream appears:
/// `a_wait_on_a_missing_stream_ends_when_the_stream_is_created`).
#[tokio::test]
async fn xread_block_is_woken_by_an_xadd_from_another_connection() {
    let broker = Broker::start().await;
    let mut writer = broker.connect().await;
    xadd(&mut writer, "events", "1-0").await.unwrap();
    for (key, from, added) in [("events", "$", "2-0"), ("not-yet", "0-0", "5-1")] {
        let mut reader = broker.connect().await;
        let blocked = tokio::spawn(async move {
            let options = StreamReadOptions::default().block(0);
            let reply: StreamReadReply = reader
                .xread_options(&[key], &[from], &options)
                .await
                .unwrap();
            reply
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!blocked.is_finished(), "BLOCK 0 must wait ({key})");
        xadd(&mut writer, key, added).await.unwrap();
        let reply = tokio::time::timeout(Duration::from_secs(5), blocked)
            .await
            .unwrap_or_else(|_| panic!("the XADD to {key} wakes the reader"))
            .unwrap();
        assert_eq!(reply.keys.len(), 1);
        assert_eq!(
            ids(&StreamRangeReply {
                ids: reply.keys[0].ids.clone()
            }),
            [added]
        );
    }
    broker.stop().await;
}

#[tokio::test]
async fn xread_reads_many_streams_after_their_ids_and_times_out_with_nil() {
    let broker = Broker::start().await;
    let mut con = broker.connect().await;
    for id in ["1-0", "2-0", "3-0"] {
        xadd(&mut con, "a", id).await.unwrap();
    }
    xadd(&mut con, "b", "7-0").await.unwrap();
    let options = StreamReadOptions::default().count(1);
    let reply: StreamReadReply = con
        .xread_options(&["a", "b"], &["1-0", "0"], &options)
        .await
        .unwrap();
    let found: Vec<(String, Vec<String>)> = reply
        .keys
        .iter()
        .map(|key| {
            (
                key.key.clone(),
                key.ids.iter().map(|e| e.id.clone()).collect(),
            )
        })
        .collect();
    assert_eq!(
        found,
        vec![
            ("a".into(), vec!["2-0".into()]),
            ("b".into(), vec!["7-0".into()])
        ]
    );
    let started = std::time::Instant::now();
    let options = StreamReadOptions::default().block(150);
    let timed_out: Option<StreamReadReply> = con
        .xread_options(&["a", "nope"], &["$", "$"], &options)
        .await
        .unwrap();
    assert!(timed_out.is_none());
    assert!(started.elapsed() >= Duration::from_millis(140));
    assert_eq!(
        error_text(
            cmd("XREAD")
                .arg("STREAMS")
                .arg("a")
                .arg("b")
                .arg("0")
                .query_async::<redis::Value>(&mut con)
                .await
        ),
        "ERR Unbalanced 'xread' list of streams: for each stream key an ID or '$' must be specified."
    );
    broker.stop().await;
}

#[tokio::test]
async fn trimming_by_length_and_id_keeps_ids_growing() {
    let broker = Broker::start().await;
    let mut con = broker.connect().await;
    for ms in 1..=10 {
        xadd(&mut con, "s", &format!("{ms}-0")).await.unwrap();
    }
    let removed: usize = cmd("XTRIM")
        .arg("s")
        .arg("MAXLEN")
        .arg("=")
        .arg(7)
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(removed, 3);
    let removed: usize = cmd("XTRIM")
        .arg("s")
        .arg("MINID")
        .arg("~")
        .arg("6")
        .arg("LIMIT")
        .arg(1)
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(removed, 1, "LIMIT caps what ~ removes");
    assert_eq!(
        error_text(
            cmd("XTRIM")
                .arg("s")
                .arg("MAXLEN")
                .arg(1)
                .arg("LIMIT")
                .arg(1)
                .query_async::<usize>(&mut con)
                .await
        ),
        "ERR syntax error, LIMIT cannot be used without the special ~ option"
    );
    // XADD with MAXLEN trims as it appends.
    let id: String = cmd("XADD")
        .arg("s")
        .arg("MAXLEN")
        .arg(2)
        .arg("11-0")
        .arg("f")
        .arg("v")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(id, "11-0");
    let left: StreamRangeReply = con.xrange_all("s").await.unwrap();
    assert_eq!(ids(&left), ["10-0", "11-0"]);
    // Emptied, the stream still refuses IDs at or below its last one, after a restart too.
    let _: usize = cmd("XTRIM")
        .arg("s")
        .arg("MAXLEN")
        .arg(0)
        .query_async(&mut con)
        .await
        .unwrap();
    let length: usize = con.xlen("s").await.unwrap();
    assert_eq!(length, 0);
    assert!(xadd(&mut con, "s", "11-0").await.is_err());
    let ok: String = cmd("XSETID")
        .arg("s")
        .arg("20-0")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(ok, "OK");
    assert!(xadd(&mut con, "s", "20-0").await.is_err());
    assert_eq!(xadd(&mut con, "s", "20-*").await.unwrap(), "20-1");
    // NOMKSTREAM on a missing stream: nil, and no stream.
    let none: Option<String> = cmd("XADD")
        .arg("ghost")
        .arg("NOMKSTREAM")
        .arg("*")
        .arg("f")
        .arg("v")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(none, None);
    let kind: String = cmd("TYPE")
        .arg("ghost")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(kind, "none");
    broker.stop().await;
}

#[tokio::test]
async fn a_stream_and_a_string_refuse_each_others_commands() {
    let broker = Broker::start().await;
    let mut con = broker.connect().await;
    let _: () = con.set("text", "x").await.unwrap();
    let wrongtype = "WRONGTYPE Operation against a key holding the wrong kind of value";
    assert_eq!(error_text(xadd(&mut con, "text", "*").await), wrongtype);
    xadd(&mut con, "log", "1-0").await.unwrap();
    assert_eq!(
        error_text(con.get::<_, Option<String>>("log").await),
        wrongtype
    );
    assert_eq!(error_text(con.incr::<_, _, i64>("log", 1).await), wrongtype);
    let kind: String = cmd("TYPE").arg("log").query_async(&mut con).await.unwrap();
    assert_eq!(kind, "stream");
    // A key that cannot be an Omnibus stream name (a control character) is refused, not
    // renamed.
    let refused = error_text(xadd(&mut con, "orders\teu", "*").await);
    assert!(
        refused.starts_with("ERR stream key 'orders\teu' is not a valid Omnibus stream name"),
        "{refused}"
    );
    broker.stop().await;
}

#[tokio::test]
async fn a_pipeline_of_xadds_gets_increasing_ids_and_shares_appends() {
    let broker = Broker::start().await;
    let mut con = broker.connect().await;
    let mut pipeline = redis::pipe();
    for index in 0..1_000 {
        pipeline.cmd("XADD").arg("p").arg("*").arg("n").arg(index);
    }
    pipeline.cmd("XLEN").arg("p");
    let mut replies: Vec<redis::Value> = pipeline.query_async(&mut con).await.unwrap();
    let length: usize = redis::from_redis_value(replies.pop().unwrap()).unwrap();
    assert_eq!(
        length, 1_000,
        "XLEN after the XADDs of its pipeline sees them"
    );
    let ids: Vec<String> = replies
        .into_iter()
        .map(|value| redis::from_redis_value(value).unwrap())
        .collect();
    let parsed: Vec<(u64, u64)> = ids
        .iter()
        .map(|id| {
            let (ms, seq) = id.split_once('-').unwrap();
            (ms.parse().unwrap(), seq.parse().unwrap())
        })
        .collect();
    assert!(parsed.windows(2).all(|pair| pair[0] < pair[1]));
    // A transaction of XADDs (redis-py's default pipeline) answers each ID.
    let (first, second): (String, String) = redis::pipe()
        .atomic()
        .cmd("XADD")
        .arg("p")
        .arg("*")
        .arg("n")
        .arg("a")
        .cmd("XADD")
        .arg("p")
        .arg("*")
        .arg("n")
        .arg("b")
        .query_async(&mut con)
        .await
        .unwrap();
    assert!(
        first < second || first.len() < second.len(),
        "{first} {second}"
    );
    broker.stop().await;
}

#[tokio::test]
async fn entries_are_records_for_other_doors_and_back() {
    let broker = Broker::start().await;
    let mut con = broker.connect().await;
    let id: String = cmd("XADD")
        .arg("mixed")
        .arg("7-3")
        .arg("value")
        .arg("payload")
        .arg("kind")
        .arg("order")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(id, "7-3");
    // What another door fetches: the value, the fields as headers, the ID's time.
    let fetched = broker
        .engine
        .fetch(FetchRequest {
            stream: "mixed".into(),
            partition: 0,
            offset: 0,
            max_records: 10,
            max_bytes: 1 << 20,
            wait_ms: 0,
        })
        .await
        .unwrap();
    let record = &fetched.records[0];
    assert_eq!(record.value.as_deref(), Some(&b"payload"[..]));
    assert_eq!(record.timestamp_ms, 7);
    assert!(record
        .headers
        .iter()
        .any(|h| h.name == "kind" && h.value.as_ref() == b"order"));
    // What another door publishes reads as `<timestamp>-<offset>` with its value and key.
    broker
        .engine
        .publish(
            PublishTarget::Stream("mixed".into()),
            vec![PublishRecord {
                key: Some(Bytes::from("k1")),
                value: Some(Bytes::from("from-http")),
                timestamp_ms: Some(9),
                ..PublishRecord::default()
            }],
        )
        .await
        .unwrap();
    let all: StreamRangeReply = con.xrange_all("mixed").await.unwrap();
    assert_eq!(ids(&all), ["7-3", "9-1"]);
    assert_eq!(
        all.ids[1].get::<String>("value").as_deref(),
        Some("from-http")
    );
    assert_eq!(all.ids[1].get::<String>("key").as_deref(), Some("k1"));
    // The next automatic ID in that millisecond is above the foreign one.
    assert_eq!(xadd(&mut con, "mixed", "9-*").await.unwrap(), "9-2");
    broker.stop().await;
}

#[tokio::test]
async fn streams_and_their_last_ids_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start_in(dir.path(), RedisConfig::default()).await;
    let mut con = broker.connect().await;
    for id in ["1-0", "2-0", "3-0"] {
        xadd(&mut con, "kept", id).await.unwrap();
    }
    let _: usize = cmd("XTRIM")
        .arg("kept")
        .arg("MAXLEN")
        .arg(0)
        .query_async(&mut con)
        .await
        .unwrap();
    xadd(&mut con, "other", "4-0").await.unwrap();
    drop(con);
    broker.stop().await;
    tokio::time::sleep(Duration::from_millis(50)).await;

    let broker = Broker::start_in(dir.path(), RedisConfig::default()).await;
    let mut con = broker.connect().await;
    assert!(
        xadd(&mut con, "kept", "3-0").await.is_err(),
        "the last ID outlives its entry"
    );
    assert_eq!(xadd(&mut con, "kept", "3-*").await.unwrap(), "3-1");
    let other: StreamRangeReply = con.xrange_all("other").await.unwrap();
    assert_eq!(ids(&other), ["4-0"]);
    broker.stop().await;
}

#[tokio::test]
async fn a_reader_blocked_forever_does_not_hold_up_a_shutdown() {
    let broker = Broker::start().await;
    let mut reader = broker.connect().await;
    let _blocked = tokio::spawn(async move {
        let options = StreamReadOptions::default().block(0);
        let _: RedisResult<Option<StreamReadReply>> =
            reader.xread_options(&["quiet"], &["$"], &options).await;
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    tokio::time::timeout(Duration::from_secs(5), broker.stop())
        .await
        .expect("the broker stops with a reader blocked");
}

#[tokio::test]
async fn a_transaction_answers_stream_commands_and_publish_in_order() {
    let broker = Broker::start().await;
    let mut con = broker.connect().await;
    let (id, length, reached): (String, usize, usize) = redis::pipe()
        .atomic()
        .cmd("XADD")
        .arg("tx")
        .arg("1-0")
        .arg("f")
        .arg("v")
        .cmd("XLEN")
        .arg("tx")
        .cmd("PUBLISH")
        .arg("nobody.listens")
        .arg("x")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!((id.as_str(), length, reached), ("1-0", 1, 0));
    broker.stop().await;
}

#[tokio::test]
async fn xdel_hides_entries_from_every_read_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start_in(dir.path(), RedisConfig::default()).await;
    let mut con = broker.connect().await;
    for ms in 1..=5 {
        xadd(&mut con, "d", &format!("{ms}-0")).await.unwrap();
    }
    let deleted: usize = con.xdel("d", &["2-0", "4-0", "9-0"]).await.unwrap();
    assert_eq!(deleted, 2, "only IDs in the stream count");
    let again: usize = con.xdel("d", &["2-0"]).await.unwrap();
    assert_eq!(again, 0);
    let length: usize = con.xlen("d").await.unwrap();
    assert_eq!(length, 3);
    let all: StreamRangeReply = con.xrange_all("d").await.unwrap();
    assert_eq!(ids(&all), ["1-0", "3-0", "5-0"]);
    let reversed: StreamRangeReply = con.xrevrange_all("d").await.unwrap();
    assert_eq!(ids(&reversed), ["5-0", "3-0", "1-0"]);
    // A group never delivers a deleted entry, nor keeps it pending.
    let _: () = con.xgroup_create("d", "g", "0").await.unwrap();
    let options = StreamReadOptions::default().group("g", "c");
    let read: StreamReadReply = con.xread_options(&["d"], &[">"], &options).await.unwrap();
    let delivered: Vec<String> = read.keys[0].ids.iter().map(|e| e.id.clone()).collect();
    assert_eq!(delivered, ["1-0", "3-0", "5-0"]);
    let pending: redis::streams::StreamPendingReply = con.xpending("d", "g").await.unwrap();
    assert_eq!(pending.count(), 3);
    // Trimming past deleted entries counts only the live ones it removed.
    let removed: usize = cmd("XTRIM")
        .arg("d")
        .arg("MINID")
        .arg("3")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(removed, 1);
    drop(con);
    broker.stop().await;
    tokio::time::sleep(Duration::from_millis(50)).await;

    let broker = Broker::start_in(dir.path(), RedisConfig::default()).await;
    let mut con = broker.connect().await;
    let all: StreamRangeReply = con.xrange_all("d").await.unwrap();
    assert_eq!(ids(&all), ["3-0", "5-0"]);
    let length: usize = con.xlen("d").await.unwrap();
    assert_eq!(length, 2);
    broker.stop().await;
}

/// An entry's record carries its ID's time, which a client may set to any time (here 1970):
/// maintenance passes (every 20 ms here) must not expire it by age, as Redis never does.
#[tokio::test]
async fn entries_with_old_ids_are_not_expired_by_time_retention() {
    let dir = tempfile::tempdir().unwrap();
    let mut engine_config = omnibus_engine::EngineConfig::new(dir.path());
    engine_config.maintenance_interval_ms = 20;
    let broker = Broker::start_with(engine_config, RedisConfig::default()).await;
    let mut con = broker.connect().await;
    xadd(&mut con, "old", "1-0").await.unwrap();
    let _: () = cmd("XGROUP")
        .arg("CREATE")
        .arg("made-by-group")
        .arg("g")
        .arg("$")
        .arg("MKSTREAM")
        .query_async(&mut con)
        .await
        .unwrap();
    xadd(&mut con, "made-by-group", "2-0").await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let old: StreamRangeReply = con.xrange_all("old").await.unwrap();
    assert_eq!(ids(&old), ["1-0"]);
    let grouped: StreamRangeReply = con.xrange_all("made-by-group").await.unwrap();
    assert_eq!(ids(&grouped), ["2-0"]);
    broker.stop().await;
}

/// EXISTS counts a stream key as it counts a string key (each argument, repeats included).
#[tokio::test]
async fn exists_counts_stream_keys() {
    let broker = Broker::start().await;
    let mut con = broker.connect().await;
    xadd(&mut con, "present", "1-0").await.unwrap();
    let _: () = cmd("SET")
        .arg("text")
        .arg("v")
        .query_async(&mut con)
        .await
        .unwrap();
    let count: i64 = cmd("EXISTS")
        .arg("present")
        .arg("text")
        .arg("missing")
        .arg("present")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(count, 3);
    broker.stop().await;
}

/// A pipeline of XADDs far larger than the connection's budget, with XLENs among them: the
/// session reads on while XADDs wait for their fsync, stops at the budget and at each XLEN
/// (a read), and goes on as replies are written. Every command is answered, in order, and
/// each XLEN counts exactly the XADDs before it.
#[tokio::test]
async fn a_pipeline_larger_than_the_connection_budget_is_answered_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let config = RedisConfig {
        pending_reply_bytes_max: 64 * 1024,
        ..RedisConfig::default()
    };
    let broker = Broker::start_in(dir.path(), config).await;
    let mut con = broker.connect().await;
    let payload = vec![b'x'; 1024];
    let mut pipeline = redis::pipe();
    for round in 0..2 {
        for index in 0..500 {
            pipeline
                .cmd("XADD")
                .arg("window")
                .arg("*")
                .arg("n")
                .arg(round * 500 + index)
                .arg("p")
                .arg(&payload[..]);
        }
        pipeline.cmd("XLEN").arg("window");
    }
    let replies: Vec<redis::Value> = pipeline.query_async(&mut con).await.unwrap();
    assert_eq!(replies.len(), 1002);
    assert_eq!(replies[500], redis::Value::Int(500));
    assert_eq!(replies[1001], redis::Value::Int(1000));
    let answered: Vec<String> = replies
        .iter()
        .enumerate()
        .filter(|(index, _)| *index != 500 && *index != 1001)
        .map(|(_, reply)| redis::from_redis_value_ref(reply).unwrap())
        .collect();
    let stored: StreamRangeReply = con.xrange_all("window").await.unwrap();
    assert_eq!(ids(&stored), answered);
    let order: Vec<u32> = stored
        .ids
        .iter()
        .map(|entry| entry.get("n").unwrap())
        .collect();
    assert_eq!(order, (0..1000).collect::<Vec<u32>>());
    broker.stop().await;
}

/// The stream's writer enqueues a batch and goes on to the next while the first waits for
/// its fsync. Four connections with 100 XADDs each in flight (some trimming, which waits
/// for every batch before it): every reply's ID is its own entry's, IDs grow in log order,
/// and nothing is lost or doubled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xadds_queued_during_fsyncs_keep_their_ids_in_log_order() {
    let broker = Broker::start().await;
    let mut connections = tokio::task::JoinSet::new();
    for connection in 0..4 {
        let con = broker.connect().await;
        connections.spawn(async move {
            let mut sends = tokio::task::JoinSet::new();
            for index in 0..100 {
                let mut con = con.clone();
                sends.spawn(async move {
                    let value = format!("{connection}-{index}");
                    let mut command = cmd("XADD");
                    command.arg("flood");
                    if index % 25 == 0 {
                        command.arg("MAXLEN").arg(100_000);
                    }
                    let id: String = command
                        .arg("*")
                        .arg("n")
                        .arg(&value)
                        .query_async(&mut con)
                        .await
                        .unwrap();
                    (id, value)
                });
            }
            let mut answered = Vec::new();
            while let Some(sent) = sends.join_next().await {
                answered.push(sent.unwrap());
            }
            answered
        });
    }
    let mut answered = std::collections::HashMap::new();
    while let Some(joined) = connections.join_next().await {
        for (id, value) in joined.unwrap() {
            assert!(answered.insert(id, value).is_none(), "an ID answered twice");
        }
    }
    let mut con = broker.connect().await;
    let stored: StreamRangeReply = con.xrange_all("flood").await.unwrap();
    assert_eq!(stored.ids.len(), 400);
    let parsed: Vec<(u64, u64)> = stored
        .ids
        .iter()
        .map(|entry| {
            let (ms, seq) = entry.id.split_once('-').unwrap();
            (ms.parse().unwrap(), seq.parse().unwrap())
        })
        .collect();
    assert!(parsed.windows(2).all(|pair| pair[0] < pair[1]));
    for entry in &stored.ids {
        let value: String = entry.get("n").unwrap();
        assert_eq!(answered.get(&entry.id), Some(&value), "entry {}", entry.id);
    }
    broker.stop().await;
}

/// The door serves alike on the broker's runtime (0 threads of its own), on one thread of its
/// own (the default on small machines) and on several: pipelined XADDs from many connections
/// get strictly growing IDs, every one is read back in order, and an XREAD BLOCK on one thread
/// is woken by an XADD sent on another.
#[tokio::test]
async fn the_door_serves_alike_on_the_shared_runtime_and_on_threads_of_its_own() {
    for io_threads in [0, 1, 3] {
        let dir = tempfile::tempdir().unwrap();
        let config = RedisConfig {
            io_threads,
            ..RedisConfig::default()
        };
        let broker = Broker::start_in(dir.path(), config).await;
        let mut waiter = broker.connect().await;
        let blocked = tokio::spawn(async move {
            let options = StreamReadOptions::default().block(10_000).count(1);
            let reply: StreamReadReply = waiter
                .xread_options(&["woken"], &["$"], &options)
                .await
                .unwrap();
            reply.keys[0].ids[0].id.clone()
        });
        let mut writers = Vec::new();
        for connection in 0..5 {
            let mut con = broker.connect().await;
            writers.push(tokio::spawn(async move {
                let mut pipe = redis::pipe();
                for n in 0..200 {
                    pipe.cmd("XADD")
                        .arg("many")
                        .arg("*")
                        .arg("c")
                        .arg(connection)
                        .arg("n")
                        .arg(n);
                }
                let ids: Vec<String> = pipe.query_async(&mut con).await.unwrap();
                ids
            }));
        }
        let mut all = Vec::new();
        for writer in writers {
            let ids = writer.await.unwrap();
            assert_eq!(ids.len(), 200, "{io_threads} threads");
            all.extend(ids);
        }
        let mut con = broker.connect().await;
        let read: StreamRangeReply = con.xrange_all("many").await.unwrap();
        let read = ids(&read);
        assert_eq!(read.len(), 1_000, "{io_threads} threads");
        let mut sorted = all.clone();
        sorted.sort_by_key(|id| {
            let (ms, seq) = id.split_once('-').unwrap();
            (ms.parse::<u64>().unwrap(), seq.parse::<u64>().unwrap())
        });
        assert_eq!(read, sorted, "{io_threads} threads: read back in ID order");
        // The reader may not have blocked yet: retry the XADD until it wakes.
        let mut added = Vec::new();
        while !blocked.is_finished() {
            added.push(xadd(&mut con, "woken", "*").await.unwrap());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let seen = blocked.await.unwrap();
        assert!(
            added.contains(&seen),
            "{io_threads} threads: {seen} {added:?}"
        );
        broker.stop().await;
    }
}
