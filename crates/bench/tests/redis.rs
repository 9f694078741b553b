//! The redis driver against Omnibus's Redis door, started in this process on 127.0.0.1
//! port 0: both publish clients (the harness's lean one and the redis crate) reach it over
//! TCP as they would redis-server (scripts/bench-peers.sh runs the same driver against
//! redis-server as `redis` and against the door as `omnibus-redis`).

mod support;

use indicatif::ProgressBar;
use omnibus_bench::drivers::{self, Context};
use omnibus_bench::record::RunRecord;
use omnibus_bench::settings::{Client, Settings, System, Workload};
use omnibus_redis::RedisConfig;
use support::InProcessDoor;

/// Entries in the stream `key`, on a connection of its own.
async fn stream_length(address: &str, key: &str) -> u64 {
    use redis::AsyncCommands;
    let client = redis::Client::open(format!("redis://{address}/")).expect("a redis URL");
    let mut connection = client
        .get_multiplexed_async_connection()
        .await
        .expect("connects");
    connection.xlen(key).await.expect("XLEN answers")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_publish_clients_append_every_answered_entry() {
    let door = InProcessDoor::start(|listener, engine, shutdown| {
        omnibus_redis::serve(listener, engine, RedisConfig::default(), shutdown)
    })
    .await;
    for (client, size, messages) in [
        (Client::Lean, 100, 3_000),
        (Client::Library, 100, 3_000),
        // Payloads larger than one socket read: a reply still answers each whole command.
        (Client::Lean, 200_000, 30),
    ] {
        let mut settings = Settings::new(System::Redis, Workload::Publish);
        settings.address = Some(door.address.clone());
        settings.label = Some("omnibus-redis".to_string());
        settings.producers = 3;
        settings.in_flight = 32;
        settings.messages = messages;
        settings.size = size;
        settings.client = client;
        settings.prefix = format!("bench-{}-{size}", client.name());
        // An upper bound only: a loaded 2-core machine can take seconds.
        settings.duration = 20.0;
        let context = Context::new(settings.clone(), ProgressBar::hidden());
        let measurement = drivers::run(&context)
            .await
            .expect("the publish run succeeds");
        assert_eq!(measurement.operations, messages, "{measurement:?}");
        assert_eq!(
            measurement
                .latency
                .as_ref()
                .map(|latencies| latencies.len()),
            Some(messages),
            "one latency per answered XADD"
        );
        let described = match client {
            Client::Lean => "lean client",
            Client::Library => "redis crate client",
        };
        assert_eq!(
            RunRecord::new(&settings, 1, &measurement).label(),
            format!("publish ({described})")
        );
        assert_eq!(
            stream_length(&door.address, &context.name("publish")).await,
            messages,
            "{} client: every answered XADD is in the stream",
            client.name()
        );
    }
}
