//! Stream keys among the key commands, through the `redis` crate: DEL/UNLINK delete a stream
//! (after the XADDs queued before them in a pipeline), KEYS/SCAN/DBSIZE list stream keys
//! beside string keys, TTL of a stream without a deadline is -1; and XREAD's `+`
//! (Redis 7.4: the last entry).

#[allow(dead_code)]
mod support;

use std::time::Duration;

use futures_util::StreamExt;

use redis::streams::{StreamReadOptions, StreamReadReply};
use redis::{cmd, AsyncCommands, RedisResult};
use support::{xadd, Broker};

fn read_ids(reply: Option<StreamReadReply>) -> Vec<(String, String)> {
    reply
        .into_iter()
        .flat_map(|reply| reply.keys)
        .flat_map(|key| {
            let name = key.key.clone();
            key.ids
                .into_iter()
                .map(move |entry| (name.clone(), entry.id))
        })
        .collect()
}

#[tokio::test]
async fn del_of_a_stream_key_deletes_the_stream_with_its_groups() {
    let broker = Broker::start().await;
    let mut con = broker.connect().await;
    xadd(&mut con, "orders", "1-0").await;
    xadd(&mut con, "orders", "2-0").await;
    let _: () = con.xgroup_create("orders", "workers", "0").await.unwrap();
    let _: () = con.set("plain", "x").await.unwrap();

    // One string key, one stream key, one missing key.
    let deleted: i64 = cmd("DEL")
        .arg("plain")
        .arg("orders")
        .arg("missing")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(deleted, 2);
    assert!(
        broker.engine.stream_info("orders").is_err(),
        "the stream is gone"
    );
    let exists: i64 = con.exists("orders").await.unwrap();
    assert_eq!(exists, 0);
    let kind: String = cmd("TYPE")
        .arg("orders")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(kind, "none");
    let again: i64 = cmd("UNLINK")
        .arg("orders")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(again, 0);

    // Made again by XADD, it starts afresh: the old group went with it, low IDs are allowed.
    assert_eq!(xadd(&mut con, "orders", "1-0").await, "1-0");
    let length: usize = con.xlen("orders").await.unwrap();
    assert_eq!(length, 1);
    let options = StreamReadOptions::default().group("workers", "alice");
    let read: RedisResult<Option<StreamReadReply>> =
        con.xread_options(&["orders"], &[">"], &options).await;
    assert_eq!(read.unwrap_err().code(), Some("NOGROUP"));
    broker.stop().await;
}

#[tokio::test]
async fn del_in_a_pipeline_comes_after_the_xadds_before_it() {
    let broker = Broker::start().await;
    let mut con = broker.connect().await;
    let mut pipeline = redis::pipe();
    for id in ["1-0", "2-0", "3-0"] {
        pipeline.cmd("XADD").arg("s").arg(id).arg("f").arg("v");
    }
    pipeline.cmd("DEL").arg("s");
    pipeline
        .cmd("XADD")
        .arg("s")
        .arg("1-0")
        .arg("f")
        .arg("again");
    pipeline.cmd("XLEN").arg("s");
    let (a, b, c, deleted, again, length): (String, String, String, i64, String, i64) =
        pipeline.query_async(&mut con).await.unwrap();
    assert_eq!((a.as_str(), b.as_str(), c.as_str()), ("1-0", "2-0", "3-0"));
    assert_eq!(deleted, 1);
    assert_eq!(again, "1-0");
    assert_eq!(length, 1, "only the XADD after the DEL is left");
    broker.stop().await;
}

#[tokio::test]
async fn keys_scan_and_dbsize_list_stream_keys_beside_string_keys() {
    let broker = Broker::start().await;
    let mut con = broker.connect().await;
    let _: () = con.set("a", "1").await.unwrap();
    let _: () = con.set("b", "2").await.unwrap();
    xadd(&mut con, "s1", "1-0").await;
    xadd(&mut con, "s2", "1-0").await;

    let size: i64 = cmd("DBSIZE").query_async(&mut con).await.unwrap();
    assert_eq!(size, 4);
    let mut all: Vec<String> = cmd("KEYS").arg("*").query_async(&mut con).await.unwrap();
    all.sort();
    assert_eq!(all, ["a", "b", "s1", "s2"]);
    let streams: Vec<String> = cmd("KEYS").arg("s?").query_async(&mut con).await.unwrap();
    assert_eq!(streams, ["s1", "s2"]);

    // A full SCAN one key at a time sees every key once, the keyspace's then the streams.
    let mut scanned = Vec::new();
    let mut cursor = 0u64;
    let mut calls = 0;
    loop {
        let (next, batch): (u64, Vec<String>) = cmd("SCAN")
            .arg(cursor)
            .arg("COUNT")
            .arg(1)
            .query_async(&mut con)
            .await
            .unwrap();
        scanned.extend(batch);
        cursor = next;
        calls += 1;
        assert!(calls < 20, "the scan ends");
        if cursor == 0 {
            break;
        }
    }
    // In no particular order within each kind (SCAN promises none).
    let (mut strings, mut streams) = (scanned[..2].to_vec(), scanned[2..].to_vec());
    strings.sort();
    streams.sort();
    assert_eq!(
        (strings, streams),
        (
            vec!["a".to_string(), "b".into()],
            vec!["s1".to_string(), "s2".into()]
        )
    );
    let by_type = |kind: &'static str| {
        let mut con = con.clone();
        async move {
            let found: Vec<RedisResult<String>> = con
                .scan_options::<String>(redis::ScanOptions::default().with_type(kind))
                .await
                .unwrap()
                .collect()
                .await;
            let mut found: Vec<String> = found.into_iter().map(Result::unwrap).collect();
            found.sort();
            found
        }
    };
    assert_eq!(by_type("stream").await, ["s1", "s2"]);
    assert_eq!(by_type("string").await, ["a", "b"]);
    assert!(by_type("hash").await.is_empty());
    let matched: Vec<RedisResult<String>> = con
        .scan_match::<_, String>("[b-s]*")
        .await
        .unwrap()
        .collect()
        .await;
    let mut matched: Vec<String> = matched.into_iter().map(Result::unwrap).collect();
    matched.sort();
    assert_eq!(matched, ["b", "s1", "s2"]);
    broker.stop().await;
}

#[tokio::test]
async fn a_stream_key_has_no_deadline_until_one_is_given() {
    let broker = Broker::start().await;
    let mut con = broker.connect().await;
    xadd(&mut con, "s", "1-0").await;
    let ttl: i64 = cmd("TTL").arg("s").query_async(&mut con).await.unwrap();
    assert_eq!(ttl, -1);
    let pttl: i64 = cmd("PTTL").arg("s").query_async(&mut con).await.unwrap();
    assert_eq!(pttl, -1);
    let missing: i64 = cmd("TTL").arg("none").query_async(&mut con).await.unwrap();
    assert_eq!(missing, -2);
    let persisted: i64 = cmd("PERSIST").arg("s").query_async(&mut con).await.unwrap();
    assert_eq!(persisted, 0);
    // Deadlines themselves: tests/stream_expiry.rs.
    broker.stop().await;
}

#[tokio::test]
async fn xread_plus_answers_the_last_entry_of_each_stream() {
    let broker = Broker::start().await;
    let mut con = broker.connect().await;
    for id in ["1-0", "2-0", "3-0"] {
        xadd(&mut con, "a", id).await;
    }
    xadd(&mut con, "b", "7-0").await;
    // The last entry alone, COUNT or not.
    let options = StreamReadOptions::default().count(10);
    let read: Option<StreamReadReply> = con
        .xread_options(&["a", "b"], &["+", "+"], &options)
        .await
        .unwrap();
    assert_eq!(
        read_ids(read),
        [
            ("a".to_string(), "3-0".to_string()),
            ("b".to_string(), "7-0".to_string())
        ]
    );
    // An entry XDEL removed is not the last one.
    let _: i64 = con.xdel("a", &["3-0"]).await.unwrap();
    let read: Option<StreamReadReply> = con.xread(&["a"], &["+"]).await.unwrap();
    assert_eq!(read_ids(read), [("a".to_string(), "2-0".to_string())]);
    // A stream with no entry: nothing, and BLOCK waits for the next entry.
    let read: Option<StreamReadReply> = con.xread(&["empty"], &["+"]).await.unwrap();
    assert!(read_ids(read).is_empty());
    let mut reader = broker.connect().await;
    let blocked = tokio::spawn(async move {
        let options = StreamReadOptions::default().block(5_000);
        let read: Option<StreamReadReply> = reader
            .xread_options(&["empty"], &["+"], &options)
            .await
            .unwrap();
        read_ids(read)
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    xadd(&mut con, "empty", "5-0").await;
    let woken = tokio::time::timeout(Duration::from_secs(5), blocked)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(woken, [("empty".to_string(), "5-0".to_string())]);
    broker.stop().await;
}

/// Redis keys are spelled with colons by convention; a stream key such as `events:user:42`
/// is a stream of that name, read, grouped and listed like any other.
#[tokio::test]
async fn stream_keys_spelled_with_colons_are_streams() {
    let broker = Broker::start().await;
    let mut con = broker.connect().await;
    let key = "events:user:42";
    xadd(&mut con, key, "1-0").await;
    xadd(&mut con, key, "2-0").await;
    let all: redis::streams::StreamRangeReply = con.xrange_all(key).await.unwrap();
    let all: Vec<&str> = all.ids.iter().map(|entry| entry.id.as_str()).collect();
    assert_eq!(all, ["1-0", "2-0"]);
    let _: () = con.xgroup_create(key, "workers", "0").await.unwrap();
    let options = StreamReadOptions::default()
        .group("workers", "w1")
        .count(10);
    let read: StreamReadReply = con.xread_options(&[key], &[">"], &options).await.unwrap();
    assert_eq!(read.keys[0].key, key);
    assert_eq!(read.keys[0].ids.len(), 2);
    let kind: String = cmd("TYPE").arg(key).query_async(&mut con).await.unwrap();
    assert_eq!(kind, "stream");
    let keys: Vec<String> = con.keys("events:*").await.unwrap();
    assert_eq!(keys, [key]);
    assert!(
        broker.engine.stream_info(key).is_ok(),
        "the engine's stream"
    );
    broker.stop().await;
}

/// Redis keys are free text, and cluster-ready applications put hash tags in them
/// (`{bull}:jobs:events`): such a key is a stream of that very name, kept in a folder whose
/// name escapes the bytes a file name should not hold, and found again after a restart.
/// Only what no stream name may hold is refused (a control character; bytes that are not
/// UTF-8).
#[tokio::test]
async fn stream_keys_in_any_spelling_are_streams_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let keys = [
        "{bull}:jobs:events",
        "s1{t}",
        "tenant/42/events",
        "with space",
        "100%",
        "événements",
    ];
    let broker = Broker::start_in(dir.path(), Default::default()).await;
    let mut con = broker.connect().await;
    for key in keys {
        xadd(&mut con, key, "1-0").await;
        xadd(&mut con, key, "2-0").await;
        let _: () = con.xgroup_create(key, "workers", "0").await.unwrap();
    }
    let refused = support::try_xadd(&mut con, "bad\nkey", "*")
        .await
        .unwrap_err();
    assert!(
        refused.to_string().contains("control character"),
        "{refused}"
    );
    let binary: RedisResult<String> = cmd("XADD")
        .arg(&b"\xff\xfe"[..])
        .arg("*")
        .arg("f")
        .arg("v")
        .query_async(&mut con)
        .await;
    assert!(binary.unwrap_err().to_string().contains("not UTF-8"));
    let folders: Vec<String> = std::fs::read_dir(dir.path().join("streams"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(
        folders.contains(&"%7Bbull%7D:jobs:events".to_string()),
        "{folders:?}"
    );
    assert!(
        folders.contains(&"tenant%2F42%2Fevents".to_string()),
        "{folders:?}"
    );
    broker.stop().await;

    let broker = Broker::start_in(dir.path(), Default::default()).await;
    let mut con = broker.connect().await;
    let mut listed: Vec<String> = con.keys("*").await.unwrap();
    listed.sort();
    let mut expected: Vec<String> = keys.iter().map(|key| key.to_string()).collect();
    expected.sort();
    assert_eq!(
        listed, expected,
        "every stream kept its folder across the restart"
    );
    for key in keys {
        let all: redis::streams::StreamRangeReply = con.xrange_all(key).await.unwrap();
        let ids: Vec<&str> = all.ids.iter().map(|entry| entry.id.as_str()).collect();
        assert_eq!(ids, ["1-0", "2-0"], "{key}");
        let options = StreamReadOptions::default().group("workers", "w").count(10);
        let read: StreamReadReply = con.xread_options(&[key], &[">"], &options).await.unwrap();
        assert_eq!(read.keys[0].key, key);
        assert_eq!(read.keys[0].ids.len(), 2, "{key}: the group kept its place");
    }
    broker.stop().await;
}

/// FLUSHALL and FLUSHDB (when configured on) delete stream keys too, as in Redis, with the
/// XADDs pipelined before them; the streams are gone after a restart as well.
#[tokio::test]
async fn flushall_deletes_stream_keys_too() {
    let dir = tempfile::tempdir().unwrap();
    let config = omnibus_redis::RedisConfig {
        flushall_enabled: true,
        ..Default::default()
    };
    let broker = Broker::start_in(dir.path(), config.clone()).await;
    let mut con = broker.connect().await;
    xadd(&mut con, "events", "1-0").await;
    let _: () = con.xgroup_create("events", "g", "0").await.unwrap();
    let _: () = con.set("plain", "x").await.unwrap();
    let (_, flushed, count, kind): (String, String, i64, String) = redis::pipe()
        .cmd("XADD")
        .arg("queued{t}")
        .arg("*")
        .arg("f")
        .arg("v")
        .cmd("FLUSHALL")
        .cmd("DBSIZE")
        .cmd("TYPE")
        .arg("events")
        .query_async(&mut con)
        .await
        .unwrap();
    let left: Vec<String> = con.keys("*").await.unwrap();
    assert_eq!(
        (flushed.as_str(), count, kind.as_str()),
        ("OK", 0, "none"),
        "{left:?}"
    );
    assert!(broker.engine.stream_names().is_empty());
    // A stream made after the flush starts afresh: no entries, no groups.
    xadd(&mut con, "events", "5-0").await;
    let groups: redis::Value = cmd("XINFO")
        .arg("GROUPS")
        .arg("events")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(groups, redis::Value::Array(Vec::new()));
    let flushed: String = cmd("FLUSHDB").query_async(&mut con).await.unwrap();
    assert_eq!(flushed, "OK");
    broker.stop().await;
    let broker = Broker::start_in(dir.path(), config).await;
    let mut con = broker.connect().await;
    let count: i64 = cmd("DBSIZE").query_async(&mut con).await.unwrap();
    assert_eq!(count, 0, "nothing came back at the restart");
    broker.stop().await;
}

/// The delete-by-pattern loop: SCAN pages, each page's keys deleted before the next is
/// asked for. Every key and every stream goes, none skipped.
#[tokio::test]
async fn deleting_each_page_of_a_scan_deletes_every_key_and_stream() {
    let broker = Broker::start().await;
    let mut con = broker.connect().await;
    let mut pipe = redis::pipe();
    for i in 0..500 {
        pipe.cmd("SET").arg(format!("job:{i}")).arg(i).ignore();
    }
    let () = pipe.query_async(&mut con).await.unwrap();
    for i in 0..25 {
        xadd(&mut con, &format!("job:stream:{i}"), "*").await;
    }
    let mut cursor = 0u64;
    let mut deleted = 0;
    loop {
        let (next, page): (u64, Vec<String>) = cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg("job:*")
            .arg("COUNT")
            .arg(20)
            .query_async(&mut con)
            .await
            .unwrap();
        if !page.is_empty() {
            let count: usize = cmd("DEL").arg(&page).query_async(&mut con).await.unwrap();
            deleted += count;
        }
        if next == 0 {
            break;
        }
        cursor = next;
    }
    assert_eq!(deleted, 525);
    let left: usize = cmd("DBSIZE").query_async(&mut con).await.unwrap();
    assert_eq!(left, 0);
    broker.stop().await;
}
