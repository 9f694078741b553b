//! INFO and CONFIG through the `redis` crate: the fields dashboards, exporters and client
//! libraries read, with Omnibus's real values.

#[allow(dead_code)] // the helpers other test binaries use
mod support;

use std::collections::HashMap;
use std::time::Duration;

use redis::streams::StreamReadOptions;
use redis::{cmd, AsyncCommands, Value};
use support::Broker;

/// INFO's `field:value` lines as a map (section headers and blank lines left out).
fn fields(info: &str) -> HashMap<String, String> {
    info.lines()
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.to_string(), value.trim().to_string()))
        .collect()
}

/// This process's user CPU time in clock ticks (`/proc/self/stat` field 14).
fn user_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let rest = &stat[stat.rfind(')').unwrap() + 1..];
    rest.split_whitespace().nth(11).unwrap().parse().unwrap()
}

async fn info(
    con: &mut redis::aio::MultiplexedConnection,
    section: &str,
) -> HashMap<String, String> {
    let text: String = cmd("INFO").arg(section).query_async(con).await.unwrap();
    fields(&text)
}

#[tokio::test]
async fn info_reports_the_process_the_door_and_the_keyspace() {
    let broker = Broker::start().await;
    let mut con = broker.connect().await;
    let _: () = con.set("plain", "v").await.unwrap();
    let _: () = con.set_ex("lease", "v", 100).await.unwrap();
    let _: String = con.xadd("events:a", "*", &[("f", "v")]).await.unwrap();

    // The CPU fields count in ticks of 10 ms: spend one first, so "more than nothing" holds.
    let spent = std::time::Instant::now();
    while user_ticks() == 0 && spent.elapsed() < Duration::from_secs(10) {
        std::hint::black_box((0..10_000u64).sum::<u64>());
    }
    let all = info(&mut con, "everything").await;
    for name in [
        "redis_version",
        "run_id",
        "connected_clients",
        "used_memory",
        "used_memory_human",
        "maxmemory_policy",
        "aof_enabled",
        "total_commands_processed",
        "role",
        "used_cpu_user",
    ] {
        assert!(all.contains_key(name), "INFO has no {name}");
    }
    assert_eq!(all["run_id"].len(), 40);
    assert!(all["run_id"].bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(all["role"], "master");
    assert_eq!(all["maxmemory_policy"], "noeviction");
    let used: u64 = all["used_memory"].parse().unwrap();
    assert!(used > 1024 * 1024, "the broker's resident memory: {used}");
    assert!(all["used_cpu_user"].parse::<f64>().unwrap() > 0.0);
    // Two string keys (one with a TTL) and one stream key.
    assert_eq!(all["db0"], "keys=3,expires=1,avg_ttl=0,subexpiry=0");

    // Commands are counted as they are served.
    let before: u64 = info(&mut con, "stats").await["total_commands_processed"]
        .parse()
        .unwrap();
    for _ in 0..5 {
        let _: Option<String> = con.get("plain").await.unwrap();
    }
    let after: u64 = info(&mut con, "stats").await["total_commands_processed"]
        .parse()
        .unwrap();
    assert!(after >= before + 6, "{before} then {after}");

    // One section asked for is the only one answered.
    let text: String = cmd("INFO")
        .arg("replication")
        .query_async(&mut con)
        .await
        .unwrap();
    assert!(text.starts_with("# Replication\r\n"), "{text}");
    assert!(!text.contains("# Server"));
    broker.stop().await;
}

#[tokio::test]
async fn info_counts_a_connection_waiting_in_a_block_read() {
    let broker = Broker::start().await;
    let mut con = broker.connect().await;
    let mut reader = broker.connect().await;
    let blocked = tokio::spawn(async move {
        let options = StreamReadOptions::default().block(0);
        let _: Value = reader
            .xread_options(&["waited"], &["$"], &options)
            .await
            .unwrap();
    });
    let mut seen = String::new();
    for _ in 0..100 {
        seen = info(&mut con, "clients").await["blocked_clients"].clone();
        if seen == "1" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(seen, "1", "the BLOCK read is counted");
    let _: String = con.xadd("waited", "*", &[("f", "v")]).await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), blocked)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(info(&mut con, "clients").await["blocked_clients"], "0");
    broker.stop().await;
}

#[tokio::test]
async fn config_get_answers_what_omnibus_does_and_config_set_is_refused() {
    let broker = Broker::start().await;
    let mut con = broker.connect().await;
    let policy: HashMap<String, String> = cmd("CONFIG")
        .arg("GET")
        .arg("maxmemory-policy")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(policy["maxmemory-policy"], "noeviction");
    // Patterns, several of them, and names without regard to case.
    let durability: HashMap<String, String> = cmd("CONFIG")
        .arg("GET")
        .arg("APPEND*")
        .arg("databases")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(durability["appendonly"], "yes");
    assert_eq!(durability["appendfsync"], "always");
    assert_eq!(durability["databases"], "1");
    assert_eq!(durability.len(), 3);
    let none: HashMap<String, String> = cmd("CONFIG")
        .arg("GET")
        .arg("no-such-parameter")
        .query_async(&mut con)
        .await
        .unwrap();
    assert!(none.is_empty());

    let refused = cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg("100mb")
        .query_async::<()>(&mut con)
        .await
        .unwrap_err();
    assert!(
        refused.detail().unwrap()
            == "CONFIG SET failed (possibly related to argument 'maxmemory') - not supported by \
                Omnibus: set in the broker's configuration file or flags",
        "{refused}"
    );
    let arity = cmd("CONFIG")
        .arg("GET")
        .query_async::<()>(&mut con)
        .await
        .unwrap_err();
    assert_eq!(
        arity.detail(),
        Some("wrong number of arguments for 'config|get' command")
    );
    let unknown = cmd("CONFIG")
        .arg("FROB")
        .query_async::<()>(&mut con)
        .await
        .unwrap_err();
    assert_eq!(
        unknown.detail(),
        Some("unknown subcommand 'FROB'. Try CONFIG HELP.")
    );
    broker.stop().await;
}
