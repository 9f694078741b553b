//! Consumer groups over entries XDEL removed, answered as redis-server 7 answers (each case
//! was run against it side by side): `>` reads go past them, a consumer's history shows them
//! with nil fields, XCLAIM and XAUTOCLAIM take them off the pending list; and entries trimmed
//! away while pending, which Redis treats the same way; and MAXLEN counting only live entries.

#[allow(dead_code)] // the helpers other test binaries use
mod support;

use redis::aio::MultiplexedConnection;
use redis::{cmd, Value};
use support::Broker;

async fn run(con: &mut MultiplexedConnection, words: &[&str]) -> Value {
    let mut command = cmd(words[0]);
    for word in &words[1..] {
        command.arg(*word);
    }
    command.query_async(con).await.unwrap()
}

fn bulk(text: &str) -> Value {
    Value::BulkString(text.as_bytes().to_vec())
}

/// `[id, [field, value]]`, or `[id, nil]` for a deleted entry.
fn entry(id: &str, value: Option<&str>) -> Value {
    let fields = match value {
        Some(value) => Value::Array(vec![bulk("a"), bulk(value)]),
        None => Value::Nil,
    };
    Value::Array(vec![bulk(id), fields])
}

/// XREADGROUP's answer for one stream: `[[stream, [entry, …]]]`.
fn read_reply(stream: &str, entries: Vec<Value>) -> Value {
    Value::Array(vec![Value::Array(vec![
        bulk(stream),
        Value::Array(entries),
    ])])
}

fn ids(list: &[&str]) -> Value {
    Value::Array(list.iter().map(|id| bulk(id)).collect())
}

/// XPENDING's summary: how many entries are pending.
async fn pending_count(con: &mut MultiplexedConnection, stream: &str) -> i64 {
    match run(con, &["XPENDING", stream, "g"]).await {
        Value::Array(fields) => match fields[0] {
            Value::Int(count) => count,
            ref other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
}

/// The pending IDs XPENDING's extended form lists, in order.
async fn pending_ids(con: &mut MultiplexedConnection, words: &[&str]) -> Vec<Value> {
    let Value::Array(pending) = run(con, words).await else {
        panic!("XPENDING answers an array");
    };
    pending
        .iter()
        .map(|entry| match entry {
            Value::Array(fields) => fields[0].clone(),
            other => panic!("{other:?}"),
        })
        .collect()
}

/// XADDs entries `1-1` … `<count>-1` to `stream`, each with field `a` = its number.
async fn add_entries(con: &mut MultiplexedConnection, stream: &str, count: u32) {
    for n in 1..=count {
        let (id, value) = (format!("{n}-1"), n.to_string());
        run(con, &["XADD", stream, &id, "a", &value]).await;
    }
}

/// `count` entries in `stream`, group `g` made at `0`, and all of them read by consumer `c1`:
/// every entry pending with it.
async fn all_pending_with_c1(con: &mut MultiplexedConnection, stream: &str, count: u32) {
    add_entries(con, stream, count).await;
    run(con, &["XGROUP", "CREATE", stream, "g", "0"]).await;
    run(
        con,
        &["XREADGROUP", "GROUP", "g", "c1", "STREAMS", stream, ">"],
    )
    .await;
}

#[tokio::test]
async fn a_read_of_new_entries_goes_past_deleted_ones() {
    let broker = Broker::start().await;
    let mut con = broker.connect().await;
    add_entries(&mut con, "n", 4).await;
    run(&mut con, &["XGROUP", "CREATE", "n", "g", "0"]).await;
    run(&mut con, &["XDEL", "n", "1-1", "2-1"]).await;
    // COUNT 1 over two deleted entries answers the next one, not nil.
    let read = run(
        &mut con,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "c",
            "COUNT",
            "1",
            "STREAMS",
            "n",
            ">",
        ],
    )
    .await;
    let expected = read_reply("n", vec![entry("3-1", Some("3"))]);
    assert_eq!(read, expected);
    // The deleted ones were never delivered, so only 3-1 is pending.
    assert_eq!(pending_count(&mut con, "n").await, 1);
    // Lag counts the entries still to read (4-1), not the deleted ones.
    run(&mut con, &["XDEL", "n", "4-1"]).await;
    run(&mut con, &["XADD", "n", "5-1", "a", "5"]).await;
    let Value::Array(groups) = run(&mut con, &["XINFO", "GROUPS", "n"]).await else {
        panic!("XINFO GROUPS answers an array");
    };
    let Value::Array(fields) = &groups[0] else {
        panic!("{groups:?}");
    };
    let lag = fields
        .iter()
        .position(|field| *field == bulk("lag"))
        .unwrap();
    assert_eq!(fields[lag + 1], Value::Int(1));
    broker.stop().await;
}

#[tokio::test]
async fn history_claims_and_autoclaim_treat_deleted_entries_as_redis_does() {
    let broker = Broker::start().await;
    let mut con = broker.connect().await;
    all_pending_with_c1(&mut con, "d", 4).await;
    run(&mut con, &["XDEL", "d", "2-1", "3-1"]).await;

    // The consumer's history shows the deleted entries' IDs with nil fields.
    let history = run(
        &mut con,
        &["XREADGROUP", "GROUP", "g", "c1", "STREAMS", "d", "0"],
    )
    .await;
    let expected = read_reply(
        "d",
        vec![
            entry("1-1", Some("1")),
            entry("2-1", None),
            entry("3-1", None),
            entry("4-1", Some("4")),
        ],
    );
    assert_eq!(history, expected);
    // Reading them again did not count a delivery for the deleted ones: 1 against 2.
    let Value::Array(extended) = run(&mut con, &["XPENDING", "d", "g", "-", "+", "10"]).await
    else {
        panic!("XPENDING answers an array");
    };
    let deliveries: Vec<Value> = extended
        .iter()
        .map(|entry| match entry {
            Value::Array(fields) => fields[3].clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        deliveries,
        vec![Value::Int(2), Value::Int(1), Value::Int(1), Value::Int(2)]
    );

    // XCLAIM does not claim a deleted entry: it leaves the pending list.
    let claimed = run(
        &mut con,
        &["XCLAIM", "d", "g", "c2", "0", "2-1", "4-1", "JUSTID"],
    )
    .await;
    assert_eq!(claimed, ids(&["4-1"]));
    assert_eq!(pending_count(&mut con, "d").await, 3);

    // XAUTOCLAIM reports the other one among the deleted, by its real ID, and drops it.
    let autoclaimed = run(&mut con, &["XAUTOCLAIM", "d", "g", "c3", "0", "0-0"]).await;
    let expected = Value::Array(vec![
        bulk("0-0"),
        Value::Array(vec![entry("1-1", Some("1")), entry("4-1", Some("4"))]),
        ids(&["3-1"]),
    ]);
    assert_eq!(autoclaimed, expected);
    assert_eq!(pending_count(&mut con, "d").await, 2);
    broker.stop().await;
}

#[tokio::test]
async fn a_group_that_read_a_stream_trimmed_empty_still_knows_its_last_id() {
    let broker = Broker::start().await;
    let mut con = broker.connect().await;
    for id in ["1-1", "2-1"] {
        run(&mut con, &["XADD", "t", id, "a", "1"]).await;
    }
    run(&mut con, &["XGROUP", "CREATE", "t", "g", "0"]).await;
    run(
        &mut con,
        &["XREADGROUP", "GROUP", "g", "c", "STREAMS", "t", ">"],
    )
    .await;
    run(&mut con, &["XTRIM", "t", "MAXLEN", "0"]).await;
    let Value::Array(groups) = run(&mut con, &["XINFO", "GROUPS", "t"]).await else {
        panic!("XINFO GROUPS answers an array");
    };
    let Value::Array(fields) = &groups[0] else {
        panic!("{groups:?}");
    };
    let position = fields
        .iter()
        .position(|field| *field == bulk("last-delivered-id"))
        .unwrap();
    assert_eq!(fields[position + 1], bulk("2-1"));
    broker.stop().await;
}

#[tokio::test]
async fn maxlen_keeps_that_many_entries_a_reader_sees() {
    let broker = Broker::start().await;
    let mut con = broker.connect().await;
    add_entries(&mut con, "m", 5).await;
    run(&mut con, &["XDEL", "m", "4-1", "5-1"]).await;
    // Two entries kept: 2-1 and 3-1 (the deleted ones are not entries); one removed.
    assert_eq!(
        run(&mut con, &["XTRIM", "m", "MAXLEN", "2"]).await,
        Value::Int(1)
    );
    let kept = run(&mut con, &["XRANGE", "m", "-", "+"]).await;
    assert_eq!(
        kept,
        Value::Array(vec![entry("2-1", Some("2")), entry("3-1", Some("3"))])
    );
    broker.stop().await;
}

#[tokio::test]
async fn entries_trimmed_away_while_pending_keep_their_ids_in_the_pending_list() {
    let broker = Broker::start().await;
    let mut con = broker.connect().await;
    all_pending_with_c1(&mut con, "p", 3).await;
    run(&mut con, &["XTRIM", "p", "MAXLEN", "1"]).await;

    // The pending list still names them by their IDs.
    let listed = pending_ids(&mut con, &["XPENDING", "p", "g", "-", "+", "10"]).await;
    assert_eq!(listed, vec![bulk("1-1"), bulk("2-1"), bulk("3-1")]);
    // A history read shows them with nil fields (and makes its consumer, as any read does).
    let history = run(
        &mut con,
        &["XREADGROUP", "GROUP", "g", "c2", "STREAMS", "p", "0"],
    )
    .await;
    assert_eq!(history, read_reply("p", Vec::new()));
    let history = run(
        &mut con,
        &["XREADGROUP", "GROUP", "g", "c1", "STREAMS", "p", "0"],
    )
    .await;
    let expected = read_reply(
        "p",
        vec![
            entry("1-1", None),
            entry("2-1", None),
            entry("3-1", Some("3")),
        ],
    );
    assert_eq!(history, expected);
    // XCLAIM takes a trimmed one off the list instead of claiming it.
    let claimed = run(
        &mut con,
        &["XCLAIM", "p", "g", "c2", "0", "1-1", "3-1", "JUSTID"],
    )
    .await;
    assert_eq!(claimed, ids(&["3-1"]));
    assert_eq!(pending_count(&mut con, "p").await, 2);
    // XAUTOCLAIM from 0-0 meets the other and reports it deleted, by its ID.
    let autoclaimed = run(
        &mut con,
        &["XAUTOCLAIM", "p", "g", "c2", "0", "0-0", "JUSTID"],
    )
    .await;
    assert_eq!(
        autoclaimed,
        Value::Array(vec![bulk("0-0"), ids(&["3-1"]), ids(&["2-1"])])
    );
    broker.stop().await;
}

/// Scans of the pending list that start at an ID among entries trimmed away while pending
/// (not at `-`/`0-0`) meet them, as in Redis (found by seeded sequences against
/// redis-server: these scans began at the first entry still in the stream).
#[tokio::test]
async fn scans_starting_among_trimmed_pending_entries_meet_them() {
    let broker = Broker::start().await;
    let mut con = broker.connect().await;
    all_pending_with_c1(&mut con, "t", 4).await;
    run(&mut con, &["XTRIM", "t", "MINID", "3-1"]).await;
    run(&mut con, &["XADD", "t", "5-1", "a", "5"]).await;

    let listed = pending_ids(&mut con, &["XPENDING", "t", "g", "2-1", "+", "10"]).await;
    assert_eq!(listed, vec![bulk("2-1"), bulk("3-1"), bulk("4-1")]);
    let listed = pending_ids(&mut con, &["XPENDING", "t", "g", "(1-1", "3-1", "10"]).await;
    assert_eq!(listed, vec![bulk("2-1"), bulk("3-1")]);
    let history = run(
        &mut con,
        &["XREADGROUP", "GROUP", "g", "c1", "STREAMS", "t", "1-1"],
    )
    .await;
    let expected = read_reply(
        "t",
        vec![
            entry("2-1", None),
            entry("3-1", Some("3")),
            entry("4-1", Some("4")),
        ],
    );
    assert_eq!(history, expected);
    // From 2-1, COUNT 1: 2-1 is reported deleted and the scan goes on at 3-1; 1-1 stays.
    let autoclaimed = run(
        &mut con,
        &[
            "XAUTOCLAIM",
            "t",
            "g",
            "c2",
            "0",
            "2-1",
            "COUNT",
            "1",
            "JUSTID",
        ],
    )
    .await;
    assert_eq!(
        autoclaimed,
        Value::Array(vec![bulk("3-1"), ids(&[]), ids(&["2-1"])])
    );
    assert_eq!(pending_count(&mut con, "t").await, 3);
    broker.stop().await;
}

/// A group left behind while its stream was trimmed far past its position: the next `>` read
/// answers the first entry still there, even with COUNT 1 (the gone ones are passed over at
/// once, not a few per read).
#[tokio::test]
async fn a_group_far_behind_a_trimmed_stream_reads_on_from_what_is_left() {
    let broker = Broker::start().await;
    let mut con = broker.connect().await;
    run(&mut con, &["XADD", "far", "1-1", "a", "1"]).await;
    run(&mut con, &["XGROUP", "CREATE", "far", "g", "$"]).await;
    for n in 2..=300 {
        let id = format!("{n}-1");
        run(&mut con, &["XADD", "far", &id, "a", "x"]).await;
    }
    run(&mut con, &["XTRIM", "far", "MAXLEN", "2"]).await;
    let read = run(
        &mut con,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "c",
            "COUNT",
            "1",
            "STREAMS",
            "far",
            ">",
        ],
    )
    .await;
    let expected = read_reply(
        "far",
        vec![Value::Array(vec![
            bulk("299-1"),
            Value::Array(vec![bulk("a"), bulk("x")]),
        ])],
    );
    assert_eq!(read, expected);
    broker.stop().await;
}
