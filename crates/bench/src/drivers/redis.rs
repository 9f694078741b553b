//! Redis Streams.
//!
//! - publish: `XADD` on a connection per producer, `--in-flight` commands pipelined: on the
//!   harness's own client (`redis/appender.rs`, `--client lean`, the default) or on the redis
//!   crate's multiplexed connection (`--client library`). Redis acknowledges once the entry is in memory and in the AOF buffer; how
//!   often the AOF is fsynced is the server's `appendfsync` (the harness script sets
//!   `everysec`), so record it with `--durability`.
//! - consume: a stream pre-filled with `--messages` entries, then `--producers` consumers in
//!   one consumer group: `XREADGROUP COUNT 1000` (issue 14's workload) and one `XACK` with
//!   the ids read.
//! - latency: `XADD` at `--rate`; a reader blocks in `XREAD` on the stream.
//! - jobs: the jobs are stream entries read by a consumer group, each worker on its own
//!   connection: `one` = `XREADGROUP COUNT 1` + `XACK`; `batched` = `XREADGROUP COUNT 100` +
//!   one `XACK` with every id; `one-pipelined` = `one` on `--worker-prefetch` connections per
//!   worker (one consumer), each with its own read in flight.
//! - key-value: strings, `--producers` connections each with `--in-flight` commands in flight,
//!   alternating `SET k v` and `GET k` over 1,000 keys per producer (every GET must find its
//!   value); each command counts as one message.
//! - request-reply: not supported (Redis has no request-reply; emulating it with lists would be
//!   measuring the emulation).

use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redis::streams::{StreamReadOptions, StreamReadReply};
use redis::{AsyncCommands, AsyncConnectionConfig, Client};
use tokio::task::JoinSet;

use super::{
    drain, join_histograms, keep_working, measurement, not_supported, timed_producers, Context,
};
use crate::error::{BenchError, Result};
use crate::load::{self, Budget, Measurement};
use crate::settings::{JobMode, Workload};

mod appender;

/// The field each entry's payload is stored under.
const FIELD: &str = "p";
/// Entries pipelined at once when filling a stream before the clock starts.
const FILL_BATCH: u64 = 1_000;
/// How long a blocking read waits, so a reader notices soon that the run is over.
const BLOCK_MS: usize = 50;
const GROUP: &str = "bench";
/// Entries one consume-workload XREADGROUP asks for (issue 14 measures COUNT 1000).
const CONSUME_COUNT: usize = 1_000;

async fn connect(context: &Context) -> Result<MultiplexedConnection> {
    let client = Client::open(format!("redis://{}/", context.settings.address()))?;
    // The default 500 ms would fail a command queued behind a long pipeline on a busy host.
    let config = AsyncConnectionConfig::new().set_response_timeout(Some(Duration::from_secs(30)));
    Ok(client
        .get_multiplexed_async_connection_with_config(&config)
        .await?)
}

pub async fn run(context: &Context) -> Result<Measurement> {
    match context.settings.workload {
        Workload::FanOut | Workload::Routing => Err(not_supported(
            context,
            "a core NATS routing workload (use --system nats)",
        )),
        Workload::Publish => publish(context).await,
        Workload::Consume => consume(context).await,
        Workload::Latency => latency(context).await,
        Workload::Jobs => jobs(context).await,
        Workload::Enqueue => Err(not_supported(
            context,
            "job enqueue is Omnibus HTTP's; the publish workload is this system's enqueue",
        )),
        Workload::RequestReply => Err(not_supported(context, "Redis has no request-reply")),
        Workload::KeyValue => key_value(context).await,
    }
}

/// Keys each key-value producer cycles through.
const KEY_VALUE_KEYS: u64 = 1_000;

async fn key_value(context: &Context) -> Result<Measurement> {
    let settings = &context.settings;
    let prefix = context.name("strings");
    let payload = Arc::new(load::payload(settings.size));
    let mut connections = Vec::new();
    for index in 0..settings.producers {
        let mut connection = connect(context).await?;
        // Every key holds the payload before the clock starts: the commands of a window are
        // sent in the order their futures are first polled, which need not be the order they
        // were made in, so a GET may overtake the first SET of its key.
        let mut pipeline = redis::pipe();
        for key in 0..KEY_VALUE_KEYS {
            pipeline
                .set(format!("{prefix}-{index}-{key}"), &payload[..])
                .ignore();
        }
        let _: () = pipeline.query_async(&mut connection).await?;
        connections.push(connection);
    }
    let budget = context.budget(settings.messages);
    let started = Instant::now();
    let mut producers = JoinSet::new();
    for (index, connection) in connections.into_iter().enumerate() {
        let (budget, payload) = (budget.clone(), payload.clone());
        let prefix = format!("{prefix}-{index}");
        let window = settings.in_flight;
        producers.spawn(async move {
            // Every key was set to the payload first, and only the payload is ever SET.
            let mut sent = 0u64;
            load::run_window(&budget, window, 1, |_| {
                let (mut connection, payload) = (connection.clone(), payload.clone());
                let key = format!("{prefix}-{}", (sent / 2) % KEY_VALUE_KEYS);
                let set = sent.is_multiple_of(2);
                sent += 1;
                async move {
                    if set {
                        let _: () = connection.set(&key, &payload[..]).await?;
                    } else {
                        let value: Option<Vec<u8>> = connection.get(&key).await?;
                        if value.as_deref() != Some(&payload[..]) {
                            return Err(BenchError::Incomplete(format!(
                                "GET {key} did not answer the value SET before it"
                            )));
                        }
                    }
                    Ok(())
                }
            })
            .await
        });
    }
    let latencies = join_histograms(producers).await?;
    let mut result = measurement(&budget, started.elapsed(), None);
    result.latency = Some(latencies);
    Ok(result)
}

async fn publish(context: &Context) -> Result<Measurement> {
    match context.settings.client {
        crate::settings::Client::Lean => publish_lean(context).await,
        crate::settings::Client::Library => publish_library(context).await,
    }
}

/// The publish workload on the harness's own pipelining client: one connection per producer,
/// each with `--in-flight` XADDs awaiting their reply.
async fn publish_lean(context: &Context) -> Result<Measurement> {
    let settings = &context.settings;
    let key = Arc::new(context.name("publish"));
    let address = settings.address();
    let mut appenders = Vec::new();
    for _ in 0..settings.producers {
        appenders.push(appender::Appender::connect(&address).await?);
    }
    let payload = Arc::new(load::payload(settings.size));
    let window = settings.in_flight;
    timed_producers(context, appenders, |mut appender, budget| {
        let (key, payload) = (key.clone(), payload.clone());
        async move {
            appender
                .append_window(&budget, window, &key, FIELD, &payload)
                .await
        }
    })
    .await
}

async fn publish_library(context: &Context) -> Result<Measurement> {
    let settings = &context.settings;
    let key = context.name("publish");
    let payload = Arc::new(load::payload(settings.size));
    let mut connections = Vec::new();
    for _ in 0..settings.producers {
        connections.push(connect(context).await?);
    }
    let window = settings.in_flight;
    timed_producers(context, connections, |connection, budget| {
        let (key, payload) = (key.clone(), payload.clone());
        async move {
            load::run_window(&budget, window, 1, |_| {
                let (mut connection, key, payload) =
                    (connection.clone(), key.clone(), payload.clone());
                async move {
                    let _: String = connection.xadd(&key, "*", &[(FIELD, &payload[..])]).await?;
                    Ok(())
                }
            })
            .await
        }
    })
    .await
}

/// Appends `count` entries in pipelines of [`FILL_BATCH`] and creates the consumer group at
/// the start of the stream.
async fn fill(
    connection: &mut MultiplexedConnection,
    key: &str,
    count: u64,
    size: usize,
) -> Result<()> {
    let _: () = connection.xgroup_create_mkstream(key, GROUP, "0").await?;
    let payload = load::payload(size);
    let mut left = count;
    while left > 0 {
        let batch = left.min(FILL_BATCH);
        let mut pipeline = redis::pipe();
        for _ in 0..batch {
            pipeline.xadd(key, "*", &[(FIELD, &payload[..])]).ignore();
        }
        let _: () = pipeline.query_async(connection).await?;
        left -= batch;
    }
    Ok(())
}

/// Reads up to `count` new entries for `consumer` and acknowledges them with one `XACK`;
/// returns how many there were.
async fn read_and_acknowledge(
    connection: &mut MultiplexedConnection,
    key: &str,
    consumer: &str,
    count: usize,
) -> Result<u64> {
    let options = StreamReadOptions::default()
        .group(GROUP, consumer)
        .count(count)
        .block(BLOCK_MS);
    let reply: Option<StreamReadReply> = connection.xread_options(&[key], &[">"], &options).await?;
    let ids: Vec<String> = reply
        .into_iter()
        .flat_map(|reply| reply.keys)
        .flat_map(|stream| stream.ids)
        .map(|entry| entry.id)
        .collect();
    if ids.is_empty() {
        return Ok(0);
    }
    let acknowledged: u64 = connection.xack(key, GROUP, &ids).await?;
    if acknowledged != ids.len() as u64 {
        return Err(BenchError::Incomplete(format!(
            "XACK acknowledged {acknowledged} of {} entries",
            ids.len()
        )));
    }
    Ok(acknowledged)
}

async fn consume(context: &Context) -> Result<Measurement> {
    let settings = &context.settings;
    let key = context.name("consume");
    fill(
        &mut connect(context).await?,
        &key,
        settings.messages,
        settings.size,
    )
    .await?;
    let mut connections = Vec::new();
    for _ in 0..settings.producers {
        connections.push(connect(context).await?);
    }
    let budget = context.budget(settings.messages);
    let started = Instant::now();
    let mut consumers = JoinSet::new();
    for (index, mut connection) in connections.into_iter().enumerate() {
        let (budget, key) = (budget.clone(), key.clone());
        consumers.spawn(async move {
            let consumer = format!("consumer-{index}");
            while keep_working(&budget) {
                let count =
                    read_and_acknowledge(&mut connection, &key, &consumer, CONSUME_COUNT).await?;
                budget.finish(count);
            }
            Ok::<_, BenchError>(())
        });
    }
    while let Some(joined) = consumers.join_next().await {
        joined.map_err(|error| BenchError::Incomplete(error.to_string()))??;
    }
    Ok(measurement(&budget, started.elapsed(), None))
}

async fn latency(context: &Context) -> Result<Measurement> {
    let settings = &context.settings;
    let key = context.name("latency");
    let sender = connect(context).await?;
    let mut reader = connect(context).await?;
    let size = settings.size;
    let send_key = key.clone();
    super::latency_run(
        context,
        move |stamp| {
            let (mut sender, key) = (sender.clone(), send_key.clone());
            async move {
                let payload = load::stamped_payload(size, stamp);
                let _: String = sender.xadd(&key, "*", &[(FIELD, payload)]).await?;
                Ok(())
            }
        },
        move |mut receiver: super::Receiver| async move {
            // "0-0": the stream is new, so every entry it will ever hold is this run's.
            let mut last_id = "0-0".to_string();
            while receiver.waiting() {
                let options = StreamReadOptions::default().count(1_000).block(BLOCK_MS);
                let reply: Option<StreamReadReply> =
                    reader.xread_options(&[&key], &[&last_id], &options).await?;
                for entry in reply.into_iter().flat_map(|r| r.keys).flat_map(|s| s.ids) {
                    let payload: Vec<u8> = entry.get(FIELD).unwrap_or_default();
                    receiver.received(&payload)?;
                    last_id = entry.id;
                }
            }
            Ok(receiver)
        },
    )
    .await
}

async fn jobs(context: &Context) -> Result<Measurement> {
    let settings = &context.settings;
    let key = context.name("jobs");
    fill(
        &mut connect(context).await?,
        &key,
        settings.jobs,
        settings.size,
    )
    .await?;
    // A pipelined worker (one consumer) has a connection per job it holds, each reading and
    // acknowledging one entry at a time: the same shape as Omnibus's lanes.
    let lanes = if settings.mode == JobMode::OnePipelined {
        usize::from(settings.worker_prefetch)
    } else {
        1
    };
    let mut workers = Vec::new();
    for index in 0..settings.workers {
        let mut connections = Vec::with_capacity(lanes);
        for _ in 0..lanes {
            connections.push(connect(context).await?);
        }
        workers.push((connections, format!("worker-{index}")));
    }
    let batch = settings.mode.batch();
    drain(
        context,
        settings.jobs,
        workers,
        |(connections, worker), budget: Arc<Budget>| {
            let key = key.clone();
            async move {
                let lanes = connections.into_iter().map(|mut connection| {
                    let (key, worker, budget) = (key.clone(), worker.clone(), budget.clone());
                    async move {
                        let mut last_finished = None;
                        while keep_working(&budget) {
                            let count =
                                read_and_acknowledge(&mut connection, &key, &worker, batch).await?;
                            if count > 0 {
                                budget.finish(count);
                                last_finished = Some(Instant::now());
                            }
                        }
                        Ok::<_, BenchError>(last_finished)
                    }
                });
                let mut last_finished = None;
                for finished in futures_util::future::join_all(lanes).await {
                    last_finished = last_finished.max(finished?);
                }
                Ok(last_finished)
            }
        },
    )
    .await
}
