//! The `redis` crate's `Script` against the door's Lua: EVALSHA answered NOSCRIPT, the
//! script loaded and run again (what `Script::invoke_async` does), KEYS and ARGV, a script's
//! writes read back after a restart, errors of a command inside a script, the sandbox (no
//! `os`, `io`, modules), and the bound on how long one runs, which a script cannot catch.

#[allow(dead_code)]
mod support;

use std::time::Duration;

use omnibus_redis::RedisConfig;
use redis::{cmd, Script};
use support::Broker;

/// Moves up to ARGV[1] elements from one list to another and counts them in a hash: the
/// kind of small atomic unit job-queue libraries write in Lua.
const MOVE_AND_COUNT: &str = r#"
local moved = 0
for _ = 1, tonumber(ARGV[1]) do
    local item = redis.call('RPOP', KEYS[1])
    if not item then break end
    redis.call('LPUSH', KEYS[2], item)
    moved = moved + 1
end
redis.call('HINCRBY', KEYS[3], 'moved', moved)
return moved
"#;

#[tokio::test]
async fn a_script_loaded_on_noscript_runs_and_its_writes_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start_in(dir.path(), RedisConfig::default()).await;
    let mut con = broker.connect().await;
    let _: i64 = cmd("RPUSH")
        .arg("waiting")
        .arg(&["a", "b", "c", "d", "e"])
        .query_async(&mut con)
        .await
        .unwrap();
    let script = Script::new(MOVE_AND_COUNT);
    let exists: Vec<i64> = cmd("SCRIPT")
        .arg("EXISTS")
        .arg(script.get_hash())
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(
        exists,
        vec![0],
        "not loaded yet: the first EVALSHA meets NOSCRIPT"
    );
    let moved: i64 = script
        .key("waiting")
        .key("active")
        .key("stats")
        .arg(3)
        .invoke_async(&mut con)
        .await
        .unwrap();
    assert_eq!(moved, 3);
    let moved: i64 = script
        .key("waiting")
        .key("active")
        .key("stats")
        .arg(10)
        .invoke_async(&mut con)
        .await
        .unwrap();
    assert_eq!(moved, 2);
    drop(con);
    broker.stop().await;
    tokio::time::sleep(Duration::from_millis(50)).await;

    let broker = Broker::start_in(dir.path(), RedisConfig::default()).await;
    let mut con = broker.connect().await;
    let active: Vec<String> = cmd("LRANGE")
        .arg("active")
        .arg(0)
        .arg(-1)
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(active, ["a", "b", "c", "d", "e"]);
    let waiting: i64 = cmd("LLEN")
        .arg("waiting")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(waiting, 0);
    let counted: i64 = cmd("HGET")
        .arg("stats")
        .arg("moved")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(counted, 5);
    broker.stop().await;
}

#[tokio::test]
async fn errors_inside_scripts_and_the_bound_on_a_run() {
    let broker = Broker::start().await;
    let mut con = broker.connect().await;
    let _: () = cmd("SET")
        .arg("s")
        .arg("x")
        .query_async(&mut con)
        .await
        .unwrap();
    // redis.call raises a command's error; redis.pcall hands it to the script.
    let raised = cmd("EVAL")
        .arg("return redis.call('LPUSH', KEYS[1], 'a')")
        .arg(1)
        .arg("s")
        .query_async::<redis::Value>(&mut con)
        .await
        .unwrap_err();
    assert_eq!(raised.code(), Some("WRONGTYPE"));
    let caught: String = cmd("EVAL")
        .arg("local r = redis.pcall('LPUSH', KEYS[1], 'a') return r.err")
        .arg(1)
        .arg("s")
        .query_async(&mut con)
        .await
        .unwrap();
    assert!(caught.starts_with("WRONGTYPE"), "{caught}");
    // Stream commands run inside a script too: the script gets the new entry's ID at once
    // and reads its own entries back.
    let (id, length): (String, i64) = cmd("EVAL")
        .arg("local id = redis.call('XADD', KEYS[1], '*', 'a', '1') return {id, redis.call('XLEN', KEYS[1])}")
        .arg(1)
        .arg("events")
        .query_async(&mut con)
        .await
        .unwrap();
    assert!(id.ends_with("-0"), "{id}");
    assert_eq!(length, 1);
    // Transactions and subscriptions still make no sense inside one.
    let refused = cmd("EVAL")
        .arg("return redis.call('SUBSCRIBE', 'news')")
        .arg(0)
        .query_async::<redis::Value>(&mut con)
        .await
        .unwrap_err();
    assert!(
        refused.to_string().contains("not allowed from script"),
        "{refused}"
    );
    // A script reaches no files, processes or modules of the machine.
    let reachable: Vec<String> = cmd("EVAL")
        .arg("local g = function(name) return type(rawget(_G, name)) end \
              return {g('os'), g('io'), g('require'), g('dofile'), g('loadfile'), g('debug'), g('string')}")
        .arg(0)
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(
        reachable,
        ["nil", "nil", "nil", "nil", "nil", "nil", "table"]
    );
    // A script that never ends is stopped, and the connection goes on (a client that waits
    // longer than the redis crate's default response timeout).
    let config =
        redis::AsyncConnectionConfig::new().set_response_timeout(Some(Duration::from_secs(30)));
    let mut con = redis::Client::open(broker.url())
        .unwrap()
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .unwrap();
    let started = std::time::Instant::now();
    // One that catches its own stop with pcall is stopped all the same.
    let stopped = cmd("EVAL")
        .arg("while true do pcall(function() while true do end end) end")
        .arg(0)
        .query_async::<redis::Value>(&mut con)
        .await
        .unwrap_err();
    assert!(stopped.to_string().contains("ran longer than"), "{stopped}");
    assert!(started.elapsed() < Duration::from_secs(20));
    let pong: String = cmd("PING").query_async(&mut con).await.unwrap();
    assert_eq!(pong, "PONG");
    broker.stop().await;
}

#[tokio::test]
async fn what_a_script_sets_stays_in_its_run() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start_in(dir.path(), RedisConfig::default()).await;
    let mut con = broker.connect().await;
    let eval = |body: &str| {
        let mut command = cmd("EVAL");
        command.arg(body).arg(0);
        command
    };
    let refusal = |body: &'static str| {
        let command = eval(body);
        let mut con = con.clone();
        async move {
            command
                .query_async::<redis::Value>(&mut con)
                .await
                .unwrap_err()
                .to_string()
        }
    };
    // Redis 7's globals protection: a script sets no global, and reading one nobody
    // defined is an error, not nil.
    let refused = refusal("leaked = 1 return 1").await;
    assert!(
        refused.contains("user_script:1: Attempt to modify a readonly table"),
        "{refused}"
    );
    let refused = refusal("return leaked").await;
    assert!(
        refused.contains("Script attempted to access nonexistent global variable 'leaked'"),
        "{refused}"
    );
    // The libraries' tables are read-only: no run replaces `redis.call`, `string.format`
    // or `cjson.encode` for the runs after it.
    for body in [
        "redis.call = function() return 'mine' end return 1",
        "redis.pcall = nil return 1",
        "string.format = nil return 1",
        "cjson.encode = nil return 1",
        "table.x = 1 return 1",
        "setmetatable(_G, nil) return 1",
    ] {
        let refused = refusal(body).await;
        assert!(
            refused.contains("readonly table") || refused.contains("protected metatable"),
            "{body}: {refused}"
        );
    }
    let answers: Vec<String> = eval(
        "local t = {} t.own = string.format('%d', 7) \
         return {redis.call('PING'), redis.pcall('ECHO', 'e'), t.own, cjson.encode({1})}",
    )
    .query_async(&mut con)
    .await
    .unwrap();
    assert_eq!(answers, ["PONG", "e", "7", "[1]"]);
    broker.stop().await;
}

/// The Lua state's memory bound holds for the script itself (the broker lifts it only while
/// it sets a run up): a script allocating past it is stopped with an error, and the door
/// goes on, its next scripts with their KEYS and ARGV.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_script_past_the_memory_bound_is_stopped_and_the_next_runs() {
    let broker = Broker::start().await;
    let mut con = broker.connect().await;
    con.set_response_timeout(Duration::from_secs(30));
    let hungry: redis::RedisResult<String> = cmd("EVAL")
        .arg("local parts = {} for i = 1, 1000 do parts[i] = string.rep('x', 1048576) .. i end return 'kept'")
        .arg(0)
        .query_async(&mut con)
        .await;
    let error = hungry.unwrap_err();
    assert!(error.to_string().contains("out of memory"), "{error}");
    let echoed: Vec<String> = cmd("EVAL")
        .arg("return {KEYS[1], ARGV[1], ARGV[2]}")
        .arg(1)
        .arg("k")
        .arg("a")
        .arg("b")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(echoed, ["k", "a", "b"]);
    broker.stop().await;
}
