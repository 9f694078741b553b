//! OBJECT, MEMORY and RANDOMKEY through the `redis` crate, as tools use them: `redis-cli
//! --memkeys` sizes every key with MEMORY USAGE, dashboards read MEMORY STATS, and OBJECT
//! ENCODING names a string's form as Redis does (`int`, `embstr`, `raw`; compared with
//! redis-server in the differential test's `objects` case) and a collection's by Redis's
//! rules and the tuning parameters CONFIG SET changes.

#[allow(dead_code)]
mod support;

use redis::AsyncCommands;
use support::Broker;

#[tokio::test]
async fn keys_are_described_sized_and_picked_at_random() {
    let broker = Broker::start().await;
    let mut con = broker.connect().await;
    let () = con.set("count", 42).await.unwrap();
    let () = con.set("short", "hello").await.unwrap();
    let () = con.set("long", "x".repeat(1000)).await.unwrap();
    let _: usize = con.rpush("queue", &["a", "b", "c"]).await.unwrap();
    let _: String = con.xadd("events", "*", &[("f", "v")]).await.unwrap();

    let encoding = |key: &'static str| redis::cmd("OBJECT").arg("ENCODING").arg(key).clone();
    for (key, expected) in [
        ("count", Some("int")),
        ("short", Some("embstr")),
        ("long", Some("raw")),
        ("queue", Some("listpack")),
        ("events", Some("stream")),
        ("missing", None),
    ] {
        let found: Option<String> = encoding(key).query_async(&mut con).await.unwrap();
        assert_eq!(found.as_deref(), expected, "{key}");
    }

    // MEMORY USAGE grows with the value, counts a stream's log, and is nil for no key.
    let usage = |key: &'static str| redis::cmd("MEMORY").arg("USAGE").arg(key).clone();
    let short: i64 = usage("short").query_async(&mut con).await.unwrap();
    let long: i64 = usage("long").query_async(&mut con).await.unwrap();
    assert_eq!(
        long - short,
        1000 - 5 + 4 - 5,
        "the value's and the name's bytes"
    );
    let events: i64 = usage("events").query_async(&mut con).await.unwrap();
    assert!(events > 0);
    let missing: Option<i64> = usage("missing").query_async(&mut con).await.unwrap();
    assert_eq!(missing, None);
    let refused: redis::RedisResult<i64> = redis::cmd("MEMORY")
        .arg("USAGE")
        .arg("short")
        .arg("SAMPLES")
        .arg(-1)
        .query_async(&mut con)
        .await;
    assert_eq!(refused.unwrap_err().detail(), Some("syntax error"));

    let stats: std::collections::HashMap<String, i64> = redis::cmd("MEMORY")
        .arg("STATS")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(stats["keys.count"], 5);
    assert!(stats["total.allocated"] > 0 && stats["peak.allocated"] >= stats["total.allocated"]);
    assert!(stats["dataset.bytes"] >= 1000);

    // Every key, the stream among them, comes up at random.
    let mut seen = std::collections::HashSet::new();
    for _ in 0..400 {
        let key: String = redis::cmd("RANDOMKEY").query_async(&mut con).await.unwrap();
        seen.insert(key);
    }
    assert_eq!(seen.len(), 5, "{seen:?}");
    let _: usize = con
        .del(&["count", "short", "long", "queue", "events"])
        .await
        .unwrap();
    let none: Option<String> = redis::cmd("RANDOMKEY").query_async(&mut con).await.unwrap();
    assert_eq!(none, None);
    broker.stop().await;
}

/// CONFIG SET of the compact encodings' parameters (under either name) moves what OBJECT
/// ENCODING answers and how HSCAN pages, as in redis-server; wrong values are refused in
/// its words.
#[tokio::test]
async fn encodings_follow_the_tuning_parameters() {
    let broker = Broker::start().await;
    let mut con = broker.connect().await;
    let config = |words: &[&str]| {
        let mut command = redis::cmd("CONFIG");
        command.arg(words);
        command
    };
    let encoding = |key: &'static str| redis::cmd("OBJECT").arg("ENCODING").arg(key).clone();

    let found: Vec<String> = config(&["GET", "hash-max-*-entries"])
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(
        found,
        [
            "hash-max-listpack-entries",
            "512",
            "hash-max-ziplist-entries",
            "512"
        ]
    );
    let () = config(&[
        "SET",
        "hash-max-ziplist-entries",
        "2",
        "zset-max-listpack-value",
        "1kb",
    ])
    .query_async(&mut con)
    .await
    .unwrap();
    let found: Vec<String> = config(&[
        "GET",
        "hash-max-listpack-entries",
        "zset-max-listpack-value",
    ])
    .query_async(&mut con)
    .await
    .unwrap();
    assert_eq!(
        found,
        [
            "hash-max-listpack-entries",
            "2",
            "zset-max-listpack-value",
            "1024"
        ]
    );

    let () = con
        .hset_multiple("h", &[("a", "1"), ("b", "2")])
        .await
        .unwrap();
    let found: String = encoding("h").query_async(&mut con).await.unwrap();
    assert_eq!(found, "listpack");
    // A listpack is scanned whole at once; past two fields the hash is a hashtable.
    let (cursor, _): (u64, Vec<String>) = redis::cmd("HSCAN")
        .arg("h")
        .arg(0)
        .arg("COUNT")
        .arg(1)
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(cursor, 0);
    let () = con.hset("h", "c", "3").await.unwrap();
    let found: String = encoding("h").query_async(&mut con).await.unwrap();
    assert_eq!(found, "hashtable");

    let () = config(&["SET", "list-max-listpack-size", "2"])
        .query_async(&mut con)
        .await
        .unwrap();
    let _: usize = con.rpush("l", &["a", "b", "c"]).await.unwrap();
    let found: String = encoding("l").query_async(&mut con).await.unwrap();
    assert_eq!(found, "quicklist");
    let _: Vec<String> = con.rpop("l", std::num::NonZeroUsize::new(2)).await.unwrap();
    let found: String = encoding("l").query_async(&mut con).await.unwrap();
    assert_eq!(found, "listpack");

    let _: usize = con.sadd("s", &[1, 2, 3]).await.unwrap();
    let found: String = encoding("s").query_async(&mut con).await.unwrap();
    assert_eq!(found, "intset");

    for (name, value, why) in [
        (
            "set-max-intset-entries",
            "-1",
            "argument must be between 0 and 9223372036854775807 inclusive",
        ),
        (
            "hash-max-listpack-value",
            "lots",
            "argument must be a memory value",
        ),
        (
            "list-compress-depth",
            "x",
            "argument couldn't be parsed into an integer",
        ),
    ] {
        let refused: redis::RedisResult<()> =
            config(&["SET", name, value]).query_async(&mut con).await;
        let expected = format!("CONFIG SET failed (possibly related to argument '{name}') - {why}");
        assert_eq!(refused.unwrap_err().detail(), Some(expected.as_str()));
    }
    broker.stop().await;
}
