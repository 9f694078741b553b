//! Bitmaps through the `redis` crate, as an application keeps daily active users: a SETBIT
//! per user id and day, BITCOUNT of a day, BITOP AND of two days for the users who came
//! back, BITPOS for the first user of a day; SETRANGE patching a string in place; BITFIELD
//! counters that saturate. All kept across a restart (each change is fsynced before its reply, as a SET is). Redis's exact
//! answers, edge cases and errors are checked against redis-server itself in
//! `tests/clients/test_redis_differential.py` (the `bits-…` cases).

#[allow(dead_code)]
mod support;

use omnibus_redis::RedisConfig;
use redis::AsyncCommands;
use support::Broker;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daily_active_users_in_bitmaps_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let monday = [3usize, 17, 1_000, 65_535, 200_001];
    let tuesday = [17usize, 42, 65_535, 300_000];
    {
        let broker = Broker::start_in(dir.path(), RedisConfig::default()).await;
        let mut con = broker.connect().await;
        for user in monday {
            let was: bool = con.setbit("active:mon", user, true).await.unwrap();
            assert!(!was);
        }
        let mut pipeline = redis::pipe();
        for user in tuesday {
            pipeline.setbit("active:tue", user, true);
        }
        let _: Vec<bool> = pipeline.query_async(&mut con).await.unwrap();
        // Set twice: the old bit comes back.
        let was: bool = con.setbit("active:tue", 42, true).await.unwrap();
        assert!(was);

        let count: usize = con.bitcount("active:mon").await.unwrap();
        assert_eq!(count, monday.len());
        let length: usize = con
            .bit_and("returning", &["active:mon", "active:tue"])
            .await
            .unwrap();
        // As long as the longer source: 300,000 bits.
        assert_eq!(length, 300_000 / 8 + 1);
        let returning: usize = con.bitcount("returning").await.unwrap();
        assert_eq!(returning, 2);
        let first: i64 = redis::cmd("BITPOS")
            .arg("active:tue")
            .arg(1)
            .query_async(&mut con)
            .await
            .unwrap();
        assert_eq!(first, 17);

        let () = con.set("greeting", "Hello World").await.unwrap();
        let length: usize = con.setrange("greeting", 6, "Redis").await.unwrap();
        assert_eq!(length, 11);
        // Past the end: zero bytes in between.
        let length: usize = con.setrange("padded", 3, "x").await.unwrap();
        assert_eq!(length, 4);
        broker.stop().await;
    }
    let broker = Broker::start_in(dir.path(), RedisConfig::default()).await;
    let mut con = broker.connect().await;
    for user in monday {
        let set: bool = con.getbit("active:mon", user).await.unwrap();
        assert!(set, "user {user}");
    }
    let unset: bool = con.getbit("active:mon", 4).await.unwrap();
    assert!(!unset);
    let returning: usize = con.bitcount("returning").await.unwrap();
    assert_eq!(returning, 2);
    let both: bool = con.getbit("returning", 65_535).await.unwrap();
    assert!(both);
    let greeting: String = con.get("greeting").await.unwrap();
    assert_eq!(greeting, "Hello Redis");
    let padded: Vec<u8> = con.get("padded").await.unwrap();
    assert_eq!(padded, b"\0\0\0x");
    broker.stop().await;
}

/// A bit past the door's bulk bound is refused with Redis's words, and nothing is created.
#[tokio::test]
async fn offsets_past_the_value_bound_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = RedisConfig {
        bulk_bytes_max: 1024,
        ..RedisConfig::default()
    };
    let broker = Broker::start_in(dir.path(), config).await;
    let mut con = broker.connect().await;
    let refused: redis::RedisResult<bool> = con.setbit("big", 1024 * 8, true).await;
    let error = refused.unwrap_err();
    assert_eq!(
        error.detail(),
        Some("bit offset is not an integer or out of range")
    );
    let refused: redis::RedisResult<usize> = con.setrange("big", 1020, "12345").await;
    assert_eq!(
        refused.unwrap_err().detail(),
        Some("string exceeds maximum allowed size (proto-max-bulk-len)")
    );
    let exists: bool = con.exists("big").await.unwrap();
    assert!(!exists);
    // The last bit within the bound is fine.
    let was: bool = con.setbit("big", 1024 * 8 - 1, true).await.unwrap();
    assert!(!was);
    let length: usize = con.strlen("big").await.unwrap();
    assert_eq!(length, 1024);
    broker.stop().await;
}

/// BITFIELD as a bank of small counters (one u16 per minute of an hour, saturating): each
/// INCRBY answers the new count, BITFIELD_RO reads several at once, and the counters are kept
/// across a restart.
#[tokio::test]
async fn bitfield_counters_saturate_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let broker = Broker::start_in(dir.path(), RedisConfig::default()).await;
        let mut con = broker.connect().await;
        for _ in 0..3 {
            let counts: Vec<i64> = redis::cmd("BITFIELD")
                .arg("hits")
                .arg("OVERFLOW")
                .arg("SAT")
                .arg("INCRBY")
                .arg("u16")
                .arg("#7")
                .arg(1)
                .arg("INCRBY")
                .arg("u16")
                .arg("#59")
                .arg(40_000)
                .query_async(&mut con)
                .await
                .unwrap();
            assert_eq!(counts.len(), 2);
        }
        let length: usize = con.strlen("hits").await.unwrap();
        assert_eq!(length, 120);
        // FAIL leaves the field and answers nil.
        let failed: Vec<Option<i64>> = redis::cmd("BITFIELD")
            .arg("hits")
            .arg("OVERFLOW")
            .arg("FAIL")
            .arg("INCRBY")
            .arg("u16")
            .arg("#59")
            .arg(1)
            .query_async(&mut con)
            .await
            .unwrap();
        assert_eq!(failed, vec![None]);
        broker.stop().await;
    }
    let broker = Broker::start_in(dir.path(), RedisConfig::default()).await;
    let mut con = broker.connect().await;
    let counts: Vec<i64> = redis::cmd("BITFIELD_RO")
        .arg("hits")
        .arg("GET")
        .arg("u16")
        .arg("#7")
        .arg("GET")
        .arg("u16")
        .arg("#59")
        .arg("GET")
        .arg("u16")
        .arg("#8")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(counts, vec![3, 65_535, 0]);
    broker.stop().await;
}
