//! NATS JetStream, with file storage.
//!
//! - publish: `--in-flight` publishes per producer waiting for their PubAck (the stream has
//!   stored the message; whether it was fsynced is the server's `sync_interval`, by default
//!   every 2 minutes, so record it with `--durability`).
//! - consume: a stream pre-filled with `--messages` (not timed), then `--producers` clients
//!   fetching batches of 100 from one durable pull consumer, acknowledging each message and
//!   waiting for the server to confirm the batch's last ack (which it handles after the
//!   batch's others, as they arrive on the same connection).
//! - latency: publish with ack at `--rate`; a pull consumer's message stream receives.
//! - jobs: a work-queue stream (a message is removed once acknowledged) and one durable pull
//!   consumer shared by the workers, each on its own connection: `one` = fetch 1 and a
//!   confirmed ack (double ack); `batched` = fetch 100, plain acks and a confirmed ack for the
//!   last.
//! - request-reply: see the `nats` driver (core NATS).

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer, stream, Context as JetStream};
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::task::JoinSet;

use super::{drain, join_histograms, keep_working, measurement, not_supported, Context};
use crate::error::{BenchError, Result};
use crate::load::{self, Budget, Measurement};
use crate::settings::Workload;

/// Messages published at once, awaiting their acks together, when filling a stream.
const FILL_WINDOW: usize = 1_000;
/// How long a pull request waits on the server, so a worker notices soon that the run is
/// over.
const FETCH_EXPIRES: Duration = Duration::from_millis(50);
const CONSUMER: &str = "bench";

pub async fn connect(context: &Context) -> Result<async_nats::Client> {
    async_nats::connect(context.settings.address())
        .await
        .map_err(BenchError::nats)
}

pub async fn run(context: &Context) -> Result<Measurement> {
    match context.settings.workload {
        Workload::KeyValue => Err(not_supported(
            context,
            "a Redis strings workload (use --system redis)",
        )),
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
        Workload::RequestReply => Err(not_supported(
            context,
            "request-reply is a core NATS feature; run it with --system nats",
        )),
    }
}

/// Creates a file-storage stream capturing the subject of the same name.
async fn create_stream(
    client: &async_nats::Client,
    name: &str,
    retention: stream::RetentionPolicy,
) -> Result<JetStream> {
    let jetstream = jetstream::new(client.clone());
    jetstream
        .create_stream(stream::Config {
            name: name.to_string(),
            subjects: vec![name.to_string()],
            storage: stream::StorageType::File,
            retention,
            ..Default::default()
        })
        .await
        .map_err(BenchError::nats)?;
    Ok(jetstream)
}

async fn publish(context: &Context) -> Result<Measurement> {
    let settings = &context.settings;
    let name = context.name("publish");
    let setup = connect(context).await?;
    create_stream(&setup, &name, stream::RetentionPolicy::Limits).await?;
    let payload = Bytes::from(load::payload(settings.size));
    let mut clients = Vec::new();
    for _ in 0..settings.producers {
        clients.push(jetstream::new(connect(context).await?));
    }
    let budget = context.budget(settings.messages);
    let started = Instant::now();
    let mut producers = JoinSet::new();
    for jetstream in clients {
        let (budget, name, payload) = (budget.clone(), name.clone(), payload.clone());
        let window = settings.in_flight;
        producers.spawn(async move {
            load::run_window(&budget, window, 1, |_| {
                let (jetstream, name, payload) = (jetstream.clone(), name.clone(), payload.clone());
                async move { publish_acknowledged(&jetstream, name, payload).await }
            })
            .await
        });
    }
    let latencies = join_histograms(producers).await?;
    let mut result = measurement(&budget, started.elapsed(), None);
    result.latency = Some(latencies);
    Ok(result)
}

async fn publish_acknowledged(
    jetstream: &JetStream,
    subject: String,
    payload: Bytes,
) -> Result<()> {
    jetstream
        .publish(subject, payload)
        .await
        .map_err(BenchError::nats)?
        .await
        .map_err(BenchError::nats)?;
    Ok(())
}

/// Publishes `count` messages, [`FILL_WINDOW`] acks awaited at a time.
async fn fill(jetstream: &JetStream, name: &str, count: u64, size: usize) -> Result<()> {
    let budget = Budget::new(count, Duration::from_secs(3_600));
    let payload = Bytes::from(load::payload(size));
    load::run_window(&budget, FILL_WINDOW, 1, |_| {
        publish_acknowledged(jetstream, name.to_string(), payload.clone())
    })
    .await?;
    Ok(())
}

async fn create_consumer(jetstream: &JetStream, name: &str) -> Result<()> {
    let stream = jetstream.get_stream(name).await.map_err(BenchError::nats)?;
    stream
        .create_consumer(consumer::pull::Config {
            durable_name: Some(CONSUMER.to_string()),
            ack_policy: consumer::AckPolicy::Explicit,
            max_ack_pending: 100_000,
            ..Default::default()
        })
        .await
        .map_err(BenchError::nats)?;
    Ok(())
}

/// Workers' handles on the shared durable consumer, each through its own connection.
async fn worker_consumers(
    context: &Context,
    name: &str,
    count: usize,
) -> Result<Vec<consumer::Consumer<consumer::pull::Config>>> {
    let mut consumers = Vec::new();
    for _ in 0..count {
        let jetstream = jetstream::new(connect(context).await?);
        let consumer = jetstream
            .get_consumer_from_stream(CONSUMER, name)
            .await
            .map_err(BenchError::nats)?;
        consumers.push(consumer);
    }
    Ok(consumers)
}

/// Fetches up to `batch` messages, acknowledges them, and waits for the server to confirm
/// the last ack; returns how many there were.
async fn fetch_and_acknowledge(
    consumer: &consumer::Consumer<consumer::pull::Config>,
    batch: usize,
) -> Result<u64> {
    let mut messages = consumer
        .fetch()
        .max_messages(batch)
        .expires(FETCH_EXPIRES)
        .messages()
        .await
        .map_err(BenchError::nats)?;
    let mut held = Vec::new();
    while let Some(message) = messages.next().await {
        held.push(message.map_err(BenchError::nats)?);
    }
    let Some(last) = held.pop() else {
        return Ok(0);
    };
    for message in &held {
        message.ack().await.map_err(BenchError::nats)?;
    }
    last.double_ack().await.map_err(BenchError::nats)?;
    Ok(held.len() as u64 + 1)
}

async fn consume(context: &Context) -> Result<Measurement> {
    let settings = &context.settings;
    let name = context.name("consume");
    let setup = connect(context).await?;
    let jetstream = create_stream(&setup, &name, stream::RetentionPolicy::Limits).await?;
    fill(&jetstream, &name, settings.messages, settings.size).await?;
    create_consumer(&jetstream, &name).await?;
    let consumers = worker_consumers(context, &name, settings.producers).await?;
    let budget = context.budget(settings.messages);
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for consumer in consumers {
        let budget = budget.clone();
        tasks.spawn(async move {
            while keep_working(&budget) {
                let count = fetch_and_acknowledge(&consumer, 100).await?;
                budget.finish(count);
            }
            Ok::<_, BenchError>(())
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined.map_err(|error| BenchError::Incomplete(error.to_string()))??;
    }
    Ok(measurement(&budget, started.elapsed(), None))
}

async fn latency(context: &Context) -> Result<Measurement> {
    let settings = &context.settings;
    let name = context.name("latency");
    let setup = connect(context).await?;
    let jetstream = create_stream(&setup, &name, stream::RetentionPolicy::Limits).await?;
    create_consumer(&jetstream, &name).await?;
    let consumer = worker_consumers(context, &name, 1).await?.remove(0);
    let mut messages = consumer.messages().await.map_err(BenchError::nats)?;
    let size = settings.size;
    super::latency_run(
        context,
        move |stamp| {
            let (jetstream, name) = (jetstream.clone(), name.clone());
            let payload = Bytes::from(load::stamped_payload(size, stamp));
            async move { publish_acknowledged(&jetstream, name, payload).await }
        },
        move |mut receiver: super::Receiver| async move {
            while receiver.waiting() {
                let next = tokio::time::timeout(receiver.poll_interval(), messages.next()).await;
                let Ok(Some(message)) = next else { continue };
                let message = message.map_err(BenchError::nats)?;
                receiver.received(&message.payload)?;
                message.ack().await.map_err(BenchError::nats)?;
            }
            Ok(receiver)
        },
    )
    .await
}

async fn jobs(context: &Context) -> Result<Measurement> {
    let settings = &context.settings;
    let name = context.name("jobs");
    let setup = connect(context).await?;
    let jetstream = create_stream(&setup, &name, stream::RetentionPolicy::WorkQueue).await?;
    fill(&jetstream, &name, settings.jobs, settings.size).await?;
    create_consumer(&jetstream, &name).await?;
    let workers = worker_consumers(context, &name, settings.workers).await?;
    let batch = settings.mode.batch();
    drain(
        context,
        settings.jobs,
        workers,
        move |consumer, budget: Arc<Budget>| async move {
            let mut last_finished = None;
            while keep_working(&budget) {
                let count = fetch_and_acknowledge(&consumer, batch).await?;
                if count > 0 {
                    budget.finish(count);
                    last_finished = Some(Instant::now());
                }
            }
            Ok(last_finished)
        },
    )
    .await
}
