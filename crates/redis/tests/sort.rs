//! SORT through the `redis` crate as an application uses it: a list of ids sorted by a score
//! kept in other keys, their names fetched from hashes in the same call, the result STOREd
//! and kept across a restart; SORT inside MULTI and inside a script; a store that replaces a
//! key while another client writes meanwhile. Every answer and error beside redis-server is
//! checked by `tests/clients/test_redis_differential.py` (the `sort-…` cases).

#[allow(dead_code)]
mod support;

use omnibus_redis::RedisConfig;
use redis::{cmd, Value};
use support::Broker;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_sorted_by_scores_in_other_keys_with_names_fetched_and_stored() {
    let dir = tempfile::tempdir().unwrap();
    {
        let broker = Broker::start_in(dir.path(), RedisConfig::default()).await;
        let mut con = broker.connect().await;
        for id in 1..=200 {
            let _: () = cmd("SET")
                .arg(format!("score:{id}"))
                .arg((id * 37) % 101)
                .query_async(&mut con)
                .await
                .unwrap();
            let _: i64 = cmd("HSET")
                .arg(format!("player:{id}"))
                .arg("name")
                .arg(format!("p{id}"))
                .query_async(&mut con)
                .await
                .unwrap();
            let _: i64 = cmd("RPUSH")
                .arg("players")
                .arg(id)
                .query_async(&mut con)
                .await
                .unwrap();
        }
        let expected = by_score();
        let top: Vec<String> = cmd("SORT")
            .arg("players")
            .arg("BY")
            .arg("score:*")
            .arg("DESC")
            .arg("LIMIT")
            .arg(0)
            .arg(5)
            .arg("GET")
            .arg("#")
            .arg("GET")
            .arg("player:*->name")
            .query_async(&mut con)
            .await
            .unwrap();
        let want: Vec<String> = expected[..5]
            .iter()
            .flat_map(|id| [id.to_string(), format!("p{id}")])
            .collect();
        assert_eq!(top, want);

        let stored: i64 = cmd("SORT")
            .arg("players")
            .arg("BY")
            .arg("score:*")
            .arg("DESC")
            .arg("STORE")
            .arg("ranking")
            .query_async(&mut con)
            .await
            .unwrap();
        assert_eq!(stored, 200);

        // Inside MULTI and inside a script, SORT sees the writes before it.
        let _: () = cmd("MULTI").query_async(&mut con).await.unwrap();
        let _: Value = cmd("SET")
            .arg("score:1")
            .arg(1000)
            .query_async(&mut con)
            .await
            .unwrap();
        let _: Value = cmd("SORT")
            .arg("players")
            .arg("BY")
            .arg("score:*")
            .arg("DESC")
            .arg("LIMIT")
            .arg(0)
            .arg(1)
            .query_async(&mut con)
            .await
            .unwrap();
        let exec: (String, Vec<String>) = cmd("EXEC").query_async(&mut con).await.unwrap();
        assert_eq!(exec.1, vec!["1"]);
        let script: Vec<String> = cmd("EVAL")
            .arg("redis.call('SET', 'score:2', 2000) return redis.call('SORT', KEYS[1], 'BY', 'score:*', 'DESC', 'LIMIT', 0, 2)")
            .arg(1)
            .arg("players")
            .query_async(&mut con)
            .await
            .unwrap();
        assert_eq!(script, vec!["2", "1"]);
        broker.stop().await;
    }
    let broker = Broker::start_in(dir.path(), RedisConfig::default()).await;
    let mut con = broker.connect().await;
    let ranking: Vec<u32> = cmd("LRANGE")
        .arg("ranking")
        .arg(0)
        .arg(-1)
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(ranking, by_score(), "the ranking stored before the MULTI");
    broker.stop().await;
}

/// The ids by score descending, ties by the ids' bytes descending (computed here).
fn by_score() -> Vec<u32> {
    let mut expected: Vec<u32> = (1..=200).collect();
    expected.sort_by(|a, b| {
        let (sa, sb) = ((a * 37) % 101, (b * 37) % 101);
        sb.cmp(&sa).then_with(|| b.to_string().cmp(&a.to_string()))
    });
    expected
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_sort_replaces_its_destination_while_others_write() {
    let broker = Broker::start().await;
    let mut con = broker.connect().await;
    let mut other = broker.connect().await;
    let _: i64 = cmd("RPUSH")
        .arg("src")
        .arg(&[3, 1, 2])
        .query_async(&mut con)
        .await
        .unwrap();
    let _: () = cmd("SET")
        .arg("dest")
        .arg("a string")
        .arg("EX")
        .arg(100)
        .query_async(&mut con)
        .await
        .unwrap();
    // Another client keeps pushing to the source while SORT runs; every SORT sees a whole
    // list (its length, sorted) and the destination is always a list of that length.
    let writer = tokio::spawn(async move {
        for n in 4..404 {
            let _: i64 = cmd("RPUSH")
                .arg("src")
                .arg(n)
                .query_async(&mut other)
                .await
                .unwrap();
        }
    });
    for _ in 0..50 {
        let stored: i64 = cmd("SORT")
            .arg("src")
            .arg("STORE")
            .arg("dest")
            .query_async(&mut con)
            .await
            .unwrap();
        let list: Vec<i64> = cmd("LRANGE")
            .arg("dest")
            .arg(0)
            .arg(-1)
            .query_async(&mut con)
            .await
            .unwrap();
        assert_eq!(
            list,
            (1..=stored).collect::<Vec<_>>(),
            "a whole list, sorted"
        );
    }
    writer.await.unwrap();
    let ttl: i64 = cmd("TTL").arg("dest").query_async(&mut con).await.unwrap();
    assert_eq!(
        ttl, -1,
        "the stored list replaced the string and its deadline"
    );
    broker.stop().await;
}
