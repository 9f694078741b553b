//! Keyspace notifications for expired keys through the `redis` crate: CONFIG SET
//! notify-keyspace-events Ex and KEx, a subscriber on `__keyevent@0__:expired` and a pattern
//! on `__keyspace@0__:*` told of keys that expire by the sweep and on a read, nothing when
//! the classes are off, the classes refused that are not served, and the classes set in
//! the configuration at start.

#[allow(dead_code)]
mod support;

use std::time::Duration;

use futures_util::StreamExt;
use omnibus_redis::RedisConfig;
use redis::{cmd, Value};
use support::Broker;

async fn set_classes(con: &mut redis::aio::MultiplexedConnection, classes: &str) {
    let () = cmd("CONFIG")
        .arg("SET")
        .arg("notify-keyspace-events")
        .arg(classes)
        .query_async(con)
        .await
        .unwrap();
}

/// CONFIG GET notify-keyspace-events: the classes on, as the door spells them.
async fn classes(con: &mut redis::aio::MultiplexedConnection) -> String {
    let config: Vec<String> = cmd("CONFIG")
        .arg("GET")
        .arg("notify-keyspace-events")
        .query_async(con)
        .await
        .unwrap();
    assert_eq!(config[0], "notify-keyspace-events");
    config[1].clone()
}

async fn next(
    messages: &mut (impl futures_util::Stream<Item = redis::Msg> + Unpin),
) -> (String, String) {
    let message = tokio::time::timeout(Duration::from_secs(5), messages.next())
        .await
        .expect("a notification within 5 s")
        .expect("the subscription is open");
    (
        message.get_channel_name().to_string(),
        message.get_payload().unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_keys_are_published_for_the_classes_turned_on() {
    let broker = Broker::start().await;
    let mut con = broker.connect().await;
    assert_eq!(classes(&mut con).await, "");
    let client = redis::Client::open(broker.url()).unwrap();
    let mut subscriber = client.get_async_pubsub().await.unwrap();
    subscriber
        .subscribe("__keyevent@0__:expired")
        .await
        .unwrap();
    subscriber.psubscribe("__keyspace@0__:*").await.unwrap();
    let mut messages = subscriber.on_message();

    // Off: a key expires (deleted here by a read) and nobody is told; the pause lets the
    // publisher see the expiration while the classes are still off.
    let () = cmd("SET")
        .arg("quiet")
        .arg("1")
        .arg("PX")
        .arg(20)
        .query_async(&mut con)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(40)).await;
    let gone: i64 = cmd("EXISTS")
        .arg("quiet")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(gone, 0);
    tokio::time::sleep(Duration::from_millis(300)).await;
    set_classes(&mut con, "Ex").await;
    assert_eq!(classes(&mut con).await, "xE");

    // Expired by the sweep (nobody reads it), then on a read.
    let () = cmd("SET")
        .arg("session:1")
        .arg("v")
        .arg("PX")
        .arg(50)
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(
        next(&mut messages).await,
        ("__keyevent@0__:expired".into(), "session:1".into())
    );
    let _: i64 = cmd("HSET")
        .arg("cart:7")
        .arg("item")
        .arg("1")
        .query_async(&mut con)
        .await
        .unwrap();
    let _: i64 = cmd("PEXPIRE")
        .arg("cart:7")
        .arg(30)
        .query_async(&mut con)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(40)).await;
    let _: Value = cmd("HGET")
        .arg("cart:7")
        .arg("item")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(
        next(&mut messages).await,
        ("__keyevent@0__:expired".into(), "cart:7".into())
    );

    // K as well: the key's own channel, with the event's name.
    set_classes(&mut con, "KEx").await;
    let () = cmd("SET")
        .arg("lock:a")
        .arg("t")
        .arg("PX")
        .arg(30)
        .query_async(&mut con)
        .await
        .unwrap();
    let mut both = vec![next(&mut messages).await, next(&mut messages).await];
    both.sort();
    assert_eq!(
        both,
        vec![
            ("__keyevent@0__:expired".to_string(), "lock:a".to_string()),
            ("__keyspace@0__:lock:a".to_string(), "expired".to_string()),
        ]
    );

    // A class string that is not one is refused, and leaves the setting as it was.
    let invalid = cmd("CONFIG")
        .arg("SET")
        .arg("notify-keyspace-events")
        .arg("Eq")
        .query_async::<Value>(&mut con)
        .await;
    assert!(invalid
        .unwrap_err()
        .to_string()
        .contains("Invalid event class character"));
    assert_eq!(classes(&mut con).await, "xKE");
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn classes_set_at_start_apply_from_the_first_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = RedisConfig {
        notify_keyspace_events: "Ex".into(),
        ..RedisConfig::default()
    };
    let broker = Broker::start_in(dir.path(), config).await;
    let client = redis::Client::open(broker.url()).unwrap();
    let mut subscriber = client.get_async_pubsub().await.unwrap();
    subscriber
        .subscribe("__keyevent@0__:expired")
        .await
        .unwrap();
    let mut messages = subscriber.on_message();
    let mut con = broker.connect().await;
    let () = cmd("SET")
        .arg("token")
        .arg("t")
        .arg("PX")
        .arg(20)
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(
        next(&mut messages).await,
        ("__keyevent@0__:expired".into(), "token".into())
    );
    broker.stop().await;
}

/// Every pair the subscriber gets until the marker published after the commands.
async fn until_marker(
    messages: &mut (impl futures_util::Stream<Item = redis::Msg> + Unpin),
) -> Vec<(String, String)> {
    let mut seen = Vec::new();
    loop {
        let (channel, payload) = next(messages).await;
        if channel == "marker" {
            return seen;
        }
        seen.push((channel, payload));
    }
}

/// Publishes a marker, then checks that the events before it are `events`, in order.
async fn expect(
    con: &mut redis::aio::MultiplexedConnection,
    messages: &mut (impl futures_util::Stream<Item = redis::Msg> + Unpin),
    events: &[(&str, &str)],
) {
    let _: i64 = cmd("PUBLISH")
        .arg("marker")
        .arg("-")
        .query_async(con)
        .await
        .unwrap();
    let expected: Vec<(String, String)> = events
        .iter()
        .map(|(channel, payload)| (channel.to_string(), payload.to_string()))
        .collect();
    assert_eq!(until_marker(messages).await, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_are_published_from_commands_transactions_scripts_and_served_pops() {
    let broker = Broker::start().await;
    let mut con = broker.connect().await;
    let mut other = broker.connect().await;
    set_classes(&mut con, "Egl$n").await;
    let client = redis::Client::open(broker.url()).unwrap();
    let mut subscriber = client.get_async_pubsub().await.unwrap();
    subscriber.psubscribe("__keyevent@0__:*").await.unwrap();
    subscriber.subscribe("marker").await.unwrap();
    let mut messages = subscriber.on_message();

    // A plain command, then a transaction: each command's events in order, at EXEC.
    let () = cmd("SET")
        .arg("session:1")
        .arg("v")
        .arg("EX")
        .arg(60)
        .query_async(&mut con)
        .await
        .unwrap();
    let () = redis::pipe()
        .atomic()
        .cmd("DEL")
        .arg("session:1")
        .arg("nothing")
        .ignore()
        .cmd("RPUSH")
        .arg("jobs")
        .arg("a")
        .ignore()
        .query_async(&mut con)
        .await
        .unwrap();
    expect(
        &mut con,
        &mut messages,
        &[
            ("__keyevent@0__:new", "session:1"),
            ("__keyevent@0__:set", "session:1"),
            ("__keyevent@0__:expire", "session:1"),
            ("__keyevent@0__:del", "session:1"),
            ("__keyevent@0__:new", "jobs"),
            ("__keyevent@0__:rpush", "jobs"),
        ],
    )
    .await;

    // A script's writes, as its redis.call runs them.
    let () = cmd("EVAL")
        .arg("redis.call('LPOP', KEYS[1]); redis.call('INCRBY', KEYS[2], 2)")
        .arg(2)
        .arg("jobs")
        .arg("count")
        .query_async(&mut con)
        .await
        .unwrap();
    expect(
        &mut con,
        &mut messages,
        &[
            ("__keyevent@0__:lpop", "jobs"),
            ("__keyevent@0__:del", "jobs"),
            ("__keyevent@0__:new", "count"),
            ("__keyevent@0__:incrby", "count"),
        ],
    )
    .await;

    // A BLPOP that waits is reported when served: the push, then its pop and the del.
    let waiter = tokio::spawn(async move {
        cmd("BLPOP")
            .arg("queue")
            .arg(5)
            .query_async::<Vec<String>>(&mut other)
            .await
            .unwrap()
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let _: i64 = cmd("RPUSH")
        .arg("queue")
        .arg("job-1")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(waiter.await.unwrap(), vec!["queue", "job-1"]);
    expect(
        &mut con,
        &mut messages,
        &[
            ("__keyevent@0__:new", "queue"),
            ("__keyevent@0__:rpush", "queue"),
            ("__keyevent@0__:lpop", "queue"),
            ("__keyevent@0__:del", "queue"),
        ],
    )
    .await;
}

/// [`expect`] for `__keyevent@0__:<event>` messages, each `(event, key)`.
async fn expect_keyevents(
    con: &mut redis::aio::MultiplexedConnection,
    messages: &mut (impl futures_util::Stream<Item = redis::Msg> + Unpin),
    events: &[(&str, &str)],
) {
    let channels: Vec<String> = events
        .iter()
        .map(|(event, _)| format!("__keyevent@0__:{event}"))
        .collect();
    let events: Vec<(&str, &str)> = channels
        .iter()
        .zip(events)
        .map(|(channel, (_, key))| (channel.as_str(), *key))
        .collect();
    expect(con, messages, &events).await;
}

/// Runs one command and ignores its answer.
async fn run(con: &mut redis::aio::MultiplexedConnection, words: &[&str]) {
    let mut command = cmd(words[0]);
    for word in &words[1..] {
        command.arg(*word);
    }
    command.query_async::<Value>(con).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_changes_are_published_by_writers_group_commands_and_deadlines() {
    let broker = Broker::start().await;
    let mut con = broker.connect().await;
    // `A` holds `t` (streams) and `x`; the tutorials' KEA is accepted and read back as Redis
    // spells it.
    set_classes(&mut con, "KEA").await;
    assert_eq!(classes(&mut con).await, "AKE");
    // `A` does not hold `n`.
    set_classes(&mut con, "EAn").await;
    let client = redis::Client::open(broker.url()).unwrap();
    let mut subscriber = client.get_async_pubsub().await.unwrap();
    subscriber.psubscribe("__keyevent@0__:*").await.unwrap();
    subscriber.subscribe("marker").await.unwrap();
    let mut messages = subscriber.on_message();

    // The XADD that makes the stream sends `new` first; a pipeline's XADDs share a group
    // commit and each sends its own, the one that trims `xtrim` after its `xadd`.
    run(&mut con, &["XADD", "orders", "1-1", "f", "v"]).await;
    let () = redis::pipe()
        .cmd("XADD")
        .arg(&["orders", "MAXLEN", "2", "2-1", "f", "v"])
        .ignore()
        .cmd("XADD")
        .arg(&["orders", "MAXLEN", "2", "3-1", "f", "v"])
        .ignore()
        .query_async(&mut con)
        .await
        .unwrap();
    expect_keyevents(
        &mut con,
        &mut messages,
        &[
            ("new", "orders"),
            ("xadd", "orders"),
            ("xadd", "orders"),
            ("xadd", "orders"),
            ("xtrim", "orders"),
        ],
    )
    .await;

    // A script's XADD (given its ID by the script), then the writer's other changes.
    run(
        &mut con,
        &[
            "EVAL",
            "return redis.call('XADD', KEYS[1], '*', 'f', 'v')",
            "1",
            "orders",
        ],
    )
    .await;
    run(&mut con, &["XDEL", "orders", "2-1", "99-1"]).await;
    run(&mut con, &["XDEL", "orders", "99-1"]).await;
    run(&mut con, &["XTRIM", "orders", "MAXLEN", "1"]).await;
    run(&mut con, &["XSETID", "orders", "9999999999999-1"]).await;
    expect_keyevents(
        &mut con,
        &mut messages,
        &[
            ("xadd", "orders"),
            ("xdel", "orders"),
            ("xtrim", "orders"),
            ("xsetid", "orders"),
        ],
    )
    .await;

    // The group commands: made, set, a consumer made by its first read and deleted.
    run(&mut con, &["XGROUP", "CREATE", "orders", "billing", "0"]).await;
    run(&mut con, &["XGROUP", "SETID", "orders", "billing", "0"]).await;
    run(
        &mut con,
        &[
            "XREADGROUP",
            "GROUP",
            "billing",
            "w1",
            "STREAMS",
            "orders",
            ">",
        ],
    )
    .await;
    run(
        &mut con,
        &["XGROUP", "DELCONSUMER", "orders", "billing", "w1"],
    )
    .await;
    run(
        &mut con,
        &["XGROUP", "DELCONSUMER", "orders", "billing", "w1"],
    )
    .await;
    run(
        &mut con,
        &["XGROUP", "CREATE", "fresh", "g", "$", "MKSTREAM"],
    )
    .await;
    run(&mut con, &["XGROUP", "DESTROY", "fresh", "g"]).await;
    expect_keyevents(
        &mut con,
        &mut messages,
        &[
            ("xgroup-create", "orders"),
            ("xgroup-setid", "orders"),
            ("xgroup-createconsumer", "orders"),
            ("xgroup-delconsumer", "orders"),
            ("new", "fresh"),
            ("xgroup-create", "fresh"),
            ("xgroup-destroy", "fresh"),
        ],
    )
    .await;

    // The stream key as a key: a deadline set and taken away, a DEL beside a string key,
    // and a deadline that passes (the sweep deletes the stream).
    run(&mut con, &["EXPIRE", "orders", "100"]).await;
    run(&mut con, &["PERSIST", "orders"]).await;
    run(&mut con, &["SET", "plain", "v"]).await;
    run(&mut con, &["DEL", "orders", "plain"]).await;
    run(&mut con, &["PEXPIRE", "fresh", "50"]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    expect_keyevents(
        &mut con,
        &mut messages,
        &[
            ("expire", "orders"),
            ("persist", "orders"),
            ("new", "plain"),
            ("set", "plain"),
            ("del", "orders"),
            ("del", "plain"),
            ("expire", "fresh"),
            ("expired", "fresh"),
        ],
    )
    .await;
    broker.stop().await;
}
