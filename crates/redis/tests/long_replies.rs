//! Replies that answer "all of it" are whole or refused, never cut short (a short reply reads
//! as the end to a client that asked for everything). XRANGE and XREVRANGE answer a whole
//! range, as Redis does, however many entries it holds; past the door's reply budget
//! (`RedisConfig::range_reply_bytes_max`) the range is refused with an error that says to
//! page. KEYS looks at every key, in steps, and answers every match.

#[allow(dead_code)]
mod support;

use omnibus_redis::RedisConfig;
use redis::aio::MultiplexedConnection;
use redis::streams::StreamRangeReply;
use redis::AsyncCommands;
use support::Broker;

/// Appends `count` entries to `key` in pipelines, returning their IDs in order.
async fn fill(con: &mut MultiplexedConnection, key: &str, count: usize) -> Vec<String> {
    let mut ids = Vec::with_capacity(count);
    let mut next = 0;
    while next < count {
        let mut pipeline = redis::pipe();
        let end = (next + 5_000).min(count);
        for index in next..end {
            pipeline.cmd("XADD").arg(key).arg("*").arg("n").arg(index);
        }
        let answered: Vec<String> = pipeline.query_async(con).await.unwrap();
        ids.extend(answered);
        next = end;
    }
    ids
}

fn ids(reply: &StreamRangeReply) -> Vec<String> {
    reply.ids.iter().map(|entry| entry.id.clone()).collect()
}

/// More entries than one XREAD answers (100,000): XRANGE without COUNT gives every one, and
/// XREVRANGE honours a COUNT above 100,000. (Two long reads only: each takes seconds in a
/// debug build.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xrange_without_count_answers_every_entry_of_a_long_stream() {
    const ENTRIES: usize = 100_100;
    let broker = Broker::start().await;
    let mut con = broker.connect().await;
    // A reply of 100,000 entries takes longer than the client's default wait in a debug build.
    con.set_response_timeout(std::time::Duration::from_secs(120));
    let added = fill(&mut con, "long", ENTRIES).await;

    let all: StreamRangeReply = con.xrange_all("long").await.unwrap();
    assert_eq!(all.ids.len(), ENTRIES);
    assert_eq!(ids(&all), added);
    assert_eq!(all.ids[ENTRIES - 1].get::<usize>("n"), Some(ENTRIES - 1));

    let newest: StreamRangeReply = con
        .xrevrange_count("long", "+", "-", 100_050)
        .await
        .unwrap();
    let mut expected = added[50..].to_vec();
    expected.reverse();
    assert_eq!(ids(&newest), expected);

    // An exclusive start in the middle, with a COUNT.
    let next: StreamRangeReply = con
        .xrange_count("long", format!("({}", added[9_999]), "+", 10)
        .await
        .unwrap();
    assert_eq!(ids(&next), added[10_000..10_010]);
    broker.stop().await;
}

/// Past the reply budget: an error naming the way out (COUNT), not a part of the range; the
/// connection stays usable and a paged read gets everything.
#[tokio::test]
async fn a_range_past_the_reply_budget_is_refused_and_pages_read_it_all() {
    let dir = tempfile::tempdir().unwrap();
    let config = RedisConfig {
        range_reply_bytes_max: 64 * 1024,
        ..RedisConfig::default()
    };
    let broker = Broker::start_in(dir.path(), config).await;
    let mut con = broker.connect().await;
    let added = fill(&mut con, "big", 3_000).await;

    for command in ["XRANGE", "XREVRANGE"] {
        let (from, to) = if command == "XRANGE" {
            ("-", "+")
        } else {
            ("+", "-")
        };
        let refused: redis::RedisResult<redis::Value> = redis::cmd(command)
            .arg("big")
            .arg(from)
            .arg(to)
            .query_async(&mut con)
            .await;
        let error = refused.unwrap_err();
        assert_eq!(error.code(), Some("ERR"), "{command}: {error:?}");
        let detail = error.detail().unwrap_or_default();
        assert!(
            detail.contains("65536 bytes") && detail.contains("COUNT"),
            "{command}: {detail}"
        );
    }

    // XINFO STREAM FULL COUNT 0 asks for every entry too: the same budget, the same error.
    let refused: redis::RedisResult<redis::Value> = redis::cmd("XINFO")
        .arg("STREAM")
        .arg("big")
        .arg("FULL")
        .arg("COUNT")
        .arg(0)
        .query_async(&mut con)
        .await;
    assert!(
        refused
            .unwrap_err()
            .detail()
            .unwrap_or_default()
            .contains("COUNT"),
        "XINFO STREAM FULL COUNT 0 past the budget"
    );
    let some: redis::RedisResult<redis::Value> = redis::cmd("XINFO")
        .arg("STREAM")
        .arg("big")
        .arg("FULL")
        .arg("COUNT")
        .arg(100)
        .query_async(&mut con)
        .await;
    assert!(some.is_ok(), "{some:?}");

    // Paging with COUNT, each page from after the last ID read, reads every entry.
    let mut paged = Vec::new();
    let mut from = "-".to_string();
    loop {
        let page: StreamRangeReply = con.xrange_count("big", &from, "+", 500).await.unwrap();
        paged.extend(ids(&page));
        if page.ids.len() < 500 {
            break;
        }
        from = format!("({}", paged.last().unwrap());
    }
    assert_eq!(paged, added);
    let length: usize = con.xlen("big").await.unwrap();
    assert_eq!(length, 3_000);
    broker.stop().await;
}

/// KEYS over more keys than one step of its walk (65,536): every match, each once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_answers_every_match_of_a_keyspace_larger_than_a_step() {
    let broker = Broker::start().await;
    let mut con = broker.connect().await;
    for chunk in 0..14 {
        let mut mset = redis::cmd("MSET");
        for index in chunk * 5_000..(chunk + 1) * 5_000 {
            let prefix = if index % 2 == 0 { "even" } else { "odd" };
            mset.arg(format!("{prefix}:{index}")).arg(index);
        }
        let () = mset.query_async(&mut con).await.unwrap();
    }
    let mut found: Vec<String> = con.keys("even:*").await.unwrap();
    found.sort();
    let mut expected: Vec<String> = (0..70_000)
        .filter(|index| index % 2 == 0)
        .map(|index| format!("even:{index}"))
        .collect();
    expected.sort();
    assert_eq!(found, expected);
    let all: Vec<String> = con.keys("*").await.unwrap();
    assert_eq!(all.len(), 70_000);
    broker.stop().await;
}
