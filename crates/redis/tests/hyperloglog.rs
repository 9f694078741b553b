//! HyperLogLog through the `redis` crate: unique visitors counted with PFADD and PFCOUNT,
//! days merged with PFMERGE, kept across a restart; a value redis-server wrote (sparse) read
//! and extended here. Exact counts and errors beside redis-server itself are checked by
//! `tests/clients/test_redis_differential.py` (the `hll-…` cases).

#[allow(dead_code)]
mod support;

use omnibus_redis::RedisConfig;
use redis::AsyncCommands;
use support::Broker;

/// What redis-server 7.0 stores after `PFADD fx apple banana cherry durian elderberry` and a
/// PFCOUNT (sparse, its count of 5 cached in the header).
const FROM_REDIS: &str = "48594c4c01000000050000000000000041df8052af8c500d80453880549b884187";

fn from_hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(&text[at..at + 2], 16).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unique_visitors_are_counted_merged_and_kept_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let broker = Broker::start_in(dir.path(), RedisConfig::default()).await;
        let mut con = broker.connect().await;
        // 20,000 visitors on Monday, 15,000 on Tuesday of whom 5,000 came on Monday too.
        for (day, range) in [
            ("visitors:mon", 0..20_000),
            ("visitors:tue", 15_000..30_000),
        ] {
            let users: Vec<String> = range.map(|n| format!("user:{n}")).collect();
            for chunk in users.chunks(1_000) {
                let _: bool = con.pfadd(day, chunk).await.unwrap();
            }
        }
        let again: bool = con.pfadd("visitors:mon", "user:7").await.unwrap();
        assert!(!again, "a known visitor changes no register");
        let monday: u64 = con.pfcount("visitors:mon").await.unwrap();
        assert!(monday.abs_diff(20_000) < 400, "{monday}");
        let both: u64 = con
            .pfcount(&["visitors:mon", "visitors:tue"])
            .await
            .unwrap();
        assert!(both.abs_diff(30_000) < 600, "{both}");
        let () = con
            .pfmerge("visitors:week", &["visitors:mon", "visitors:tue"])
            .await
            .unwrap();
        let week: u64 = con.pfcount("visitors:week").await.unwrap();
        assert_eq!(week, both);
        broker.stop().await;
    }
    let broker = Broker::start_in(dir.path(), RedisConfig::default()).await;
    let mut con = broker.connect().await;
    let week: u64 = con.pfcount("visitors:week").await.unwrap();
    let both: u64 = con
        .pfcount(&["visitors:mon", "visitors:tue"])
        .await
        .unwrap();
    assert_eq!((week, both), (29_778, 29_778));
    broker.stop().await;
}

#[tokio::test]
async fn a_value_redis_server_wrote_is_read_and_extended() {
    let broker = Broker::start().await;
    let mut con = broker.connect().await;
    let () = con.set("fx", from_hex(FROM_REDIS)).await.unwrap();
    let count: u64 = con.pfcount("fx").await.unwrap();
    assert_eq!(count, 5);
    let known: bool = con.pfadd("fx", "cherry").await.unwrap();
    assert!(!known);
    let added: bool = con.pfadd("fx", "fig").await.unwrap();
    assert!(added);
    let count: u64 = con.pfcount("fx").await.unwrap();
    assert_eq!(count, 6);
    // Written back sparse, as redis-server keeps a HyperLogLog this small: its runs are the
    // very bytes redis-server writes for these six elements (only the cached count differs).
    let value: Vec<u8> = con.get("fx").await.unwrap();
    assert_eq!(&value[..5], b"HYLL\x01");
    assert!(value.len() < 64, "{}", value.len());
    // A string that is not a HyperLogLog: Redis's words.
    let () = con.set("plain", "HYLL but no").await.unwrap();
    let refused: redis::RedisResult<u64> = con.pfcount("plain").await;
    assert_eq!(
        refused.unwrap_err().detail(),
        Some("Key is not a valid HyperLogLog string value.")
    );
    broker.stop().await;
}
