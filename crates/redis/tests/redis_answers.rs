//! Answers that differed from redis-server 7's when the same commands were sent to both side
//! by side (a differential run, 2026-12-05), now the same: each case is a command sequence
//! and what Redis answers to its last command.

#[allow(dead_code)] // the helpers other test binaries use
mod support;

use redis::aio::MultiplexedConnection;
use redis::{cmd, Value};
use support::Broker;

/// The last command's answer: its value, or `error: <code> <detail>`.
async fn last_answer(con: &mut MultiplexedConnection, commands: &[&[&str]]) -> String {
    let mut answer = String::new();
    for words in commands {
        let mut command = cmd(words[0]);
        for word in &words[1..] {
            command.arg(*word);
        }
        answer = match command.query_async::<Value>(con).await {
            Ok(value) => format!("{value:?}"),
            Err(error) => format!(
                "error: {} {}",
                error.code().unwrap_or(""),
                error.detail().unwrap_or("")
            ),
        };
    }
    answer
}

#[tokio::test]
async fn commands_answer_as_redis_server_does() {
    let broker = Broker::start().await;
    let mut con = broker.connect().await;
    let not_integer = "error: ERR value is not an integer or out of range";
    let cases: &[(&[&[&str]], &str)] = &[
        // `-0` is not an integer to Redis, as a value or as an argument.
        (&[&["INCRBY", "x", "-0"]], not_integer),
        (&[&["SET", "n", "-0"], &["INCR", "n"]], not_integer),
        (&[&["EXPIRE", "n", "010"]], not_integer),
        // A key that is a stream is present: "only if absent" sets nothing.
        (&[&["XADD", "st", "1-1", "f", "v"], &["SETNX", "st", "x"]], "int(0)"),
        (&[&["SET", "st", "x", "NX"]], "nil"),
        (
            &[&["SET", "st", "x", "NX", "GET"]],
            "error: WRONGTYPE Operation against a key holding the wrong kind of value",
        ),
        (
            &[&["XADD", "st", "MAXLEN", "1", "MINID", "1", "2-1", "a", "1"]],
            "error: ERR syntax error, MAXLEN and MINID options at the same time are not compatible",
        ),
        (
            &[
                &["XADD", "top", "18446744073709551615-18446744073709551615", "f", "v"],
                &["XADD", "top", "18446744073709551615-*", "f", "v"],
            ],
            "error: ERR The stream has exhausted the last possible ID, unable to add more items",
        ),
        (
            &[&["XSETID", "st", "5-0", "MAXDELETEDID", "9-0"]],
            "error: ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id",
        ),
        // COUNT 0 on a stream that exists is a null array; on a missing one, empty.
        (&[&["XRANGE", "st", "-", "+", "COUNT", "0"]], "nil"),
        (&[&["XREVRANGE", "st", "+", "-", "COUNT", "-1"]], "nil"),
        (&[&["XRANGE", "nothing", "-", "+", "COUNT", "0"]], "array([])"),
        (
            &[&["XREAD", "STREAMS", "st", ">"]],
            "error: ERR The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option.",
        ),
        (
            &[
                &["XGROUP", "CREATE", "st", "g", "0"],
                &["XREADGROUP", "GROUP", "g", "c", "STREAMS", "st", "$"],
            ],
            "error: ERR The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just return an empty result set.",
        ),
        (
            &[&["XCLAIM", "st", "g", "c", "soon", "1-1"]],
            "error: ERR Invalid min-idle-time argument for XCLAIM",
        ),
        (
            &[&["XAUTOCLAIM", "st", "nog", "c", "0", "0-0"]],
            "error: NOGROUP No such key 'st' or consumer group 'nog'",
        ),
        (
            &[&["AUTH", "someone", "secret"]],
            "error: WRONGPASS invalid username-password pair or user is disabled.",
        ),
        // The default user takes any password, as on a redis-server without one; in HELLO
        // too, where another user is refused.
        (&[&["AUTH", "default", "secret"]], "ok"),
        (
            &[&["MEMORY", "DOCTOR", "x"]],
            "error: ERR wrong number of arguments for 'memory|doctor' command",
        ),
        (
            &[&["SCRIPT", "FLUSH", "BAD"]],
            "error: ERR SCRIPT FLUSH only support SYNC|ASYNC option",
        ),
        (&[&["CLIENT", "NO-EVICT", "maybe"]], "error: ERR syntax error"),
        (
            &[&["CLIENT", "NO-TOUCH", "on", "x"]],
            "error: ERR wrong number of arguments for 'client|no-touch' command",
        ),
        (
            &[&["HELLO", "2", "AUTH", "someone", "secret"]],
            "error: WRONGPASS invalid username-password pair or user is disabled.",
        ),
        (&[&["CLIENT", "NO-EVICT", "on"]], "ok"),
        (
            &[&["XCLAIM", "st", "g", "c", "0", "1-1", "IDLE", "soon"]],
            "error: ERR Invalid IDLE option argument for XCLAIM",
        ),
        (
            &[&["XGROUP", "CREATE", "st", "g2", "0", "ENTRIESREAD", "-5"]],
            "error: ERR value for ENTRIESREAD must be positive or -1",
        ),
        (
            &[&["XGROUP", "CREATE", "st", "g2", "0", "SOMETHING"]],
            "error: ERR unknown subcommand or wrong number of arguments for 'CREATE'. Try XGROUP HELP.",
        ),
        // EXPIRETIME rounds to the nearest second, as TTL does.
        (
            &[
                &["SET", "k", "v", "PXAT", "99999999999999"],
                &["EXPIRETIME", "k"],
            ],
            "int(100000000000)",
        ),
    ];
    for (commands, expected) in cases {
        let answer = last_answer(&mut con, commands).await;
        assert_eq!(&answer, expected, "{commands:?}");
    }
    broker.stop().await;
}

#[tokio::test]
async fn a_scan_whose_count_covers_every_key_ends_in_one_call() {
    let broker = Broker::start().await;
    let mut con = broker.connect().await;
    let _: () = redis::AsyncCommands::set(&mut con, "job:1", "a")
        .await
        .unwrap();
    let _: String = redis::AsyncCommands::xadd(&mut con, "job:events", "*", &[("f", "v")])
        .await
        .unwrap();
    let (cursor, mut keys): (String, Vec<String>) = cmd("SCAN")
        .arg("0")
        .arg("MATCH")
        .arg("job:*")
        .arg("COUNT")
        .arg(1000)
        .query_async(&mut con)
        .await
        .unwrap();
    keys.sort();
    assert_eq!(cursor, "0");
    assert_eq!(keys, ["job:1", "job:events"]);
    broker.stop().await;
}

#[tokio::test]
async fn pubsub_numsub_is_a_flat_array_in_resp3_too() {
    let broker = Broker::start().await;
    let mut con = broker.connect().await;
    let answer = last_answer(
        &mut con,
        &[&["HELLO", "3"], &["PUBSUB", "NUMSUB", "orders", "users"]],
    )
    .await;
    assert_eq!(
        answer,
        format!(
            "{:?}",
            Value::Array(vec![
                Value::BulkString(b"orders".to_vec()),
                Value::Int(0),
                Value::BulkString(b"users".to_vec()),
                Value::Int(0),
            ])
        )
    );
    broker.stop().await;
}

#[tokio::test]
async fn a_negative_retrycount_leaves_the_delivery_count_alone() {
    let broker = Broker::start().await;
    let mut con = broker.connect().await;
    let answer = last_answer(
        &mut con,
        &[
            &["XADD", "s", "1-1", "a", "1"],
            &["XGROUP", "CREATE", "s", "g", "0"],
            &["XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", ">"],
            &[
                "XCLAIM",
                "s",
                "g",
                "d",
                "0",
                "1-1",
                "RETRYCOUNT",
                "-1",
                "JUSTID",
            ],
            &["XPENDING", "s", "g", "-", "+", "10"],
        ],
    )
    .await;
    // [id, consumer, idle, deliveries]: still the one delivery of the XREADGROUP.
    assert!(answer.ends_with("int(1)])])"), "{answer}");
    assert!(answer.contains("\"d\""), "{answer}");
    broker.stop().await;
}

/// Answers that differed from redis-server 7.4's own test suite (`tests/unit/expire.tcl`,
/// `tests/unit/type/stream.tcl`, run against the door on 2026-12-07), now as it expects.
#[tokio::test]
async fn answers_redis_servers_own_tests_expect() {
    let broker = Broker::start().await;
    let mut con = broker.connect().await;
    let cases: &[(&[&[&str]], &str)] = &[
        // XX goes with GT or LT: both must hold.
        (
            &[&["SET", "t", "v", "EX", "100"], &["EXPIRE", "t", "50", "XX", "LT"]],
            "int(1)",
        ),
        (&[&["TTL", "t"]], "int(50)"),
        (&[&["EXPIRE", "t", "80", "LT", "XX"]], "int(0)"),
        (&[&["EXPIRE", "t", "80", "XX", "GT"]], "int(1)"),
        (
            &[&["SET", "plain", "v"], &["EXPIRE", "plain", "50", "XX", "LT"]],
            "int(0)",
        ),
        (&[&["EXPIRE", "plain", "50", "GT", "XX"]], "int(0)"),
        (&[&["TTL", "plain"]], "int(-1)"),
        (
            &[&["EXPIRE", "t", "50", "XX", "LT", "GT"]],
            "error: ERR GT and LT options at the same time are not compatible",
        ),
        (
            &[&["EXPIRE", "t", "50", "XX", "NX"]],
            "error: ERR NX and XX, GT or LT options at the same time are not compatible",
        ),
        // A refused XADD makes no stream.
        (
            &[&["XADD", "other", "0-0", "k", "v"]],
            "error: ERR The ID specified in XADD must be greater than 0-0",
        ),
        (&[&["EXISTS", "other"]], "int(0)"),
        (
            &[&["XADD", "other", "1-1", "redis-value-at", "v"]],
            "error: ERR the field name 'redis-value-at' is reserved by Omnibus",
        ),
        (&[&["EXISTS", "other"]], "int(0)"),
        // ENTRIESADDED may not be below the length; the ID not below the largest deleted.
        (
            &[
                &["XADD", "x", "1-0", "a", "b"],
                &["XSETID", "x", "1-0", "ENTRIESADDED", "0", "MAXDELETEDID", "0-0"],
            ],
            "error: ERR The entries_added specified in XSETID is smaller than the target stream length",
        ),
        (
            &[
                &["XADD", "x", "2-0", "a", "b"],
                &["XDEL", "x", "2-0"],
                &["XSETID", "x", "1-5"],
            ],
            "error: ERR The ID specified in XSETID is smaller than current max_deleted_entry_id",
        ),
        (&[&["XSETID", "x", "3-0", "ENTRIESADDED", "1"]], "ok"),
        // XGROUP SETID and CREATE read `-` as the smallest ID: every entry is new again.
        (
            &[
                &["XGROUP", "CREATE", "x", "g1", "$"],
                &["XADD", "x", "4-0", "a", "b"],
                &["XGROUP", "SETID", "x", "g1", "-"],
                &["XREADGROUP", "GROUP", "g1", "c", "COUNT", "10", "STREAMS", "x", ">"],
                &["XPENDING", "x", "g1"],
            ],
            "array([int(2), bulk-string('\"1-0\"'), bulk-string('\"4-0\"'), array([array([bulk-string('\"c\"'), bulk-string('\"2\"')])])])",
        ),
        // BITPOS reads its unit word before its end.
        (
            &[&["BITPOS", "s", "0", "1", "hello", "hello2"]],
            "error: ERR syntax error",
        ),
        // A container's HELP takes no argument.
        (
            &[&["XGROUP", "HELP", "xxx"]],
            "error: ERR wrong number of arguments for 'xgroup|help' command",
        ),
        (
            &[&["XINFO", "help", "xxx"]],
            "error: ERR wrong number of arguments for 'xinfo|help' command",
        ),
        (
            &[&["OBJECT", "HELP", "x"]],
            "error: ERR wrong number of arguments for 'object|help' command",
        ),
        (
            &[&["CLIENT", "HELP", "x"]],
            "error: ERR wrong number of arguments for 'client|help' command",
        ),
        (
            &[&["PUBSUB", "HELP", "x"]],
            "error: ERR wrong number of arguments for 'pubsub|help' command",
        ),
        // Redis 7.2+: the rank it cannot negate, ZINTERCARD's count worded as ZUNION's, and
        // a timeout beyond the millisecond clock (read as strtold reads it, hex included).
        (
            &[&["RPUSH", "l", "c"], &["LPOS", "l", "c", "RANK", "-9223372036854775808"]],
            "error: ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
        ),
        (
            &[&["ZINTERCARD", "0", "k"]],
            "error: ERR at least 1 input key is needed for 'zintercard' command",
        ),
        (
            &[&["BLPOP", "empty", "0x7FFFFFFFFFFFFF"]],
            "error: ERR timeout is out of range",
        ),
        // SORT's keys: the last STORE counts.
        (
            &[&["COMMAND", "GETKEYS", "SORT", "abc", "STORE", "invalid", "STORE", "def"]],
            "array([bulk-string('\"abc\"'), bulk-string('\"def\"')])",
        ),
        // Keys named after a container's subcommand, and a script's declared keys.
        (
            &[&["COMMAND", "GETKEYS", "MEMORY", "USAGE", "key"]],
            "array([bulk-string('\"key\"')])",
        ),
        (
            &[&["COMMAND", "GETKEYS", "XGROUP", "CREATE", "key", "g", "$"]],
            "array([bulk-string('\"key\"')])",
        ),
        (
            &[&["COMMAND", "GETKEYS", "EVAL", "return 1", "1", "key"]],
            "array([bulk-string('\"key\"')])",
        ),
        (&[&["COMMAND", "GETKEYS", "EVAL", "return 1", "0"]], "array([])"),
        (
            &[&["COMMAND", "LIST", "FILTERBY", "ACLCAT", "hyperloglog"]],
            "array([bulk-string('\"pfadd\"'), bulk-string('\"pfcount\"'), bulk-string('\"pfmerge\"')])",
        ),
        (&[&["COMMAND", "LIST", "bad"]], "error: ERR syntax error"),
        // The tracking table's bound is Redis's parameter.
        (
            &[
                &["CONFIG", "SET", "tracking-table-max-keys", "5"],
                &["CONFIG", "GET", "tracking-table-max-keys"],
            ],
            "array([bulk-string('\"tracking-table-max-keys\"'), bulk-string('\"5\"')])",
        ),
        (
            &[&["CONFIG", "SET", "tracking-table-max-keys", "1000000"]],
            "ok",
        ),
        // SAVE and SHUTDOWN are refused inside MULTI, which then fails.
        (
            &[&["MULTI"], &["SAVE"]],
            "error: ERR Command not allowed inside a transaction",
        ),
        (
            &[&["EXEC"]],
            "error: EXECABORT Transaction discarded because of previous errors.",
        ),
    ];
    for (commands, expected) in cases {
        assert_eq!(
            last_answer(&mut con, commands).await,
            *expected,
            "{commands:?}"
        );
    }
    broker.stop().await;
}

/// A blocked XREAD with an explicit ID on a stream missing when it began is woken only by an
/// entry above that ID (redis-server's "XREAD streamID edge (blocking)").
#[tokio::test]
async fn a_blocked_xread_passes_over_entries_at_or_below_its_id() {
    let broker = Broker::start().await;
    let mut con = broker.connect().await;
    let mut reader = broker.connect().await;
    let read = tokio::spawn(async move {
        cmd("XREAD")
            .arg("BLOCK")
            .arg(0)
            .arg("STREAMS")
            .arg("x")
            .arg("1-18446744073709551615")
            .query_async::<redis::streams::StreamReadReply>(&mut reader)
            .await
            .unwrap()
    });
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    for id in ["1-1", "1-18446744073709551615", "2-1"] {
        let _: String = cmd("XADD")
            .arg("x")
            .arg(id)
            .arg("f")
            .arg("v")
            .query_async(&mut con)
            .await
            .unwrap();
    }
    let answer = read.await.unwrap();
    let ids: Vec<&str> = answer.keys[0]
        .ids
        .iter()
        .map(|entry| entry.id.as_str())
        .collect();
    assert_eq!(ids, ["2-1"]);
    broker.stop().await;
}

/// Every container command answers HELP, its first line naming it (redis-server's
/// "Coverage: HELP commands").
#[tokio::test]
async fn containers_answer_help() {
    let broker = Broker::start().await;
    let mut con = broker.connect().await;
    for name in [
        "OBJECT", "MEMORY", "PUBSUB", "SLOWLOG", "CLIENT", "COMMAND", "CONFIG", "FUNCTION",
        "MODULE",
    ] {
        let lines: Vec<String> = cmd(name).arg("HELP").query_async(&mut con).await.unwrap();
        assert!(
            lines[0].starts_with(&format!("{name} <subcommand> ")),
            "{name}: {lines:?}"
        );
    }
    broker.stop().await;
}
