//! Redis 7 functions through the `redis` crate: a library loaded once and called with FCALL
//! from connections on both of the door's threads, replaced and seen by all of them, a
//! `no-writes` function refused a write and callable with FCALL_RO, FCALL inside MULTI, and
//! the libraries kept across a restart (FUNCTION LOAD answers once the library is durable).
//! Error words and FUNCTION LIST beside redis-server: the differential test's `functions`
//! case; kill -9: `tests/clients/test_redis_scripting.py`.

#[allow(dead_code)]
mod support;

use redis::{cmd, Value};
use support::{threaded, Broker};

const COUNTER_V1: &str = "#!lua name=counters
redis.register_function('bump', function(keys, args)
  return redis.call('INCRBY', keys[1], args[1])
end)
redis.register_function{function_name='peek', flags={'no-writes'},
  callback=function(keys) return redis.call('GET', keys[1]) end}
redis.register_function{function_name='sneaky', flags={'no-writes'},
  callback=function(keys) return redis.call('SET', keys[1], 'x') end}";

const COUNTER_V2: &str = "#!lua name=counters
redis.register_function('bump', function(keys, args)
  return redis.call('INCRBY', keys[1], 2 * tonumber(args[1]))
end)";

async fn fcall(
    con: &mut redis::aio::MultiplexedConnection,
    name: &str,
    key: &str,
    arg: i64,
) -> redis::RedisResult<Value> {
    cmd("FCALL")
        .arg(name)
        .arg(1)
        .arg(key)
        .arg(arg)
        .query_async(con)
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_library_is_called_everywhere_replaced_and_kept_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let broker = Broker::start_in(dir.path(), threaded(2)).await;
        let mut connections = Vec::new();
        for _ in 0..4 {
            connections.push(broker.connect().await);
        }
        let name: String = cmd("FUNCTION")
            .arg("LOAD")
            .arg(COUNTER_V1)
            .query_async(&mut connections[0])
            .await
            .unwrap();
        assert_eq!(name, "counters");
        // Every connection (two door threads) calls it.
        for (at, con) in connections.iter_mut().enumerate() {
            let value = fcall(con, "bump", "hits", 10).await.unwrap();
            assert_eq!(value, Value::Int(10 * (at as i64 + 1)));
        }
        let peek: String = cmd("FCALL_RO")
            .arg("peek")
            .arg(1)
            .arg("hits")
            .query_async(&mut connections[1])
            .await
            .unwrap();
        assert_eq!(peek, "40");
        let refused = cmd("FCALL_RO")
            .arg("bump")
            .arg(1)
            .arg("hits")
            .arg(1)
            .query_async::<Value>(&mut connections[1])
            .await;
        assert!(refused.unwrap_err().to_string().contains("write flag"));
        let sneaky = cmd("FCALL")
            .arg("sneaky")
            .arg(1)
            .arg("hits")
            .query_async::<Value>(&mut connections[2])
            .await;
        assert!(sneaky
            .unwrap_err()
            .to_string()
            .contains("Write commands are not allowed"));

        // REPLACE: every thread runs the new code from its next call.
        let exists = cmd("FUNCTION")
            .arg("LOAD")
            .arg(COUNTER_V2)
            .query_async::<Value>(&mut connections[0])
            .await;
        assert!(exists.unwrap_err().to_string().contains("already exists"));
        let _: String = cmd("FUNCTION")
            .arg("LOAD")
            .arg("REPLACE")
            .arg(COUNTER_V2)
            .query_async(&mut connections[0])
            .await
            .unwrap();
        for con in connections.iter_mut() {
            let before: i64 = cmd("GET").arg("hits").query_async(con).await.unwrap();
            let after = fcall(con, "bump", "hits", 1).await.unwrap();
            assert_eq!(after, Value::Int(before + 2));
        }
        let gone = cmd("FCALL")
            .arg("peek")
            .arg(1)
            .arg("hits")
            .query_async::<Value>(&mut connections[3])
            .await;
        assert!(gone.unwrap_err().to_string().contains("Function not found"));

        // Inside MULTI.
        let con = &mut connections[0];
        let () = cmd("MULTI").query_async(con).await.unwrap();
        let _: Value = cmd("FCALL")
            .arg("bump")
            .arg(1)
            .arg("tx")
            .arg(5)
            .query_async(con)
            .await
            .unwrap();
        let _: Value = cmd("FCALL")
            .arg("bump")
            .arg(1)
            .arg("tx")
            .arg(5)
            .query_async(con)
            .await
            .unwrap();
        let results: Vec<i64> = cmd("EXEC").query_async(con).await.unwrap();
        assert_eq!(results, vec![10, 20]);
        broker.stop().await;
    }
    let broker = Broker::start_in(dir.path(), threaded(2)).await;
    let mut con = broker.connect().await;
    let value = fcall(&mut con, "bump", "after", 3).await.unwrap();
    assert_eq!(value, Value::Int(6), "the replaced library came back");
    let listed: Vec<Value> = cmd("FUNCTION")
        .arg("LIST")
        .arg("WITHCODE")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    let () = cmd("FUNCTION")
        .arg("DELETE")
        .arg("counters")
        .query_async(&mut con)
        .await
        .unwrap();
    broker.stop().await;
    let broker = Broker::start_in(dir.path(), threaded(2)).await;
    let mut con = broker.connect().await;
    let listed: Vec<Value> = cmd("FUNCTION")
        .arg("LIST")
        .query_async(&mut con)
        .await
        .unwrap();
    assert!(listed.is_empty(), "a deleted library stays deleted");
    broker.stop().await;
}
