//! Any Kafka-protocol broker (Omnibus's Kafka port included) through librdkafka.
//!
//! - publish: a topic with one partition per producer; each producer is a librdkafka
//!   producer with `acks=all` and `--in-flight` sends awaiting their delivery report
//!   (librdkafka batches them by itself, `linger.ms` 5 by default). A warm-up message
//!   fetches the metadata and opens the connections before the clock starts.
//! - consume: a topic with one partition per consumer, pre-filled with `--messages` (not
//!   timed), then `--producers` consumers, each assigned its partition (no group join, so no
//!   rebalance), committing the group's offsets every 1,000 messages and at the end. The
//!   clock starts before the consumers are created (librdkafka prefetches as soon as a
//!   partition is assigned) and stops at the last commit.
//! - latency: `linger.ms=0`, after a warm-up message; a consumer assigned partition 0 after
//!   the warm-up message receives.
//! - jobs and request-reply: not supported (Kafka has no per-message acknowledgement and no
//!   request-reply).

use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use tokio::task::JoinSet;

use super::{join_histograms, keep_working, measurement, not_supported, Context, GRACE};
use crate::error::{BenchError, Result};
use crate::load::{self, Budget, Measurement};
use crate::settings::Workload;

/// Sends awaiting their delivery reports at once when filling a topic.
const FILL_WINDOW: usize = 10_000;
/// Consumed messages between two offset commits.
const COMMIT_EVERY: u64 = 1_000;

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
        Workload::Jobs | Workload::Enqueue => Err(not_supported(
            context,
            "Kafka has no per-message acknowledgement to finish a job with",
        )),
        Workload::RequestReply => Err(not_supported(context, "Kafka has no request-reply")),
    }
}

fn client(context: &Context) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", context.settings.address());
    config
}

fn producer(context: &Context, linger_ms: Option<u32>) -> Result<FutureProducer> {
    let mut config = client(context);
    config.set("acks", "all");
    // A send that is not delivered by the end of the run fails instead of waiting 5 minutes.
    let timeout = context.settings.duration() + GRACE;
    config.set("message.timeout.ms", timeout.as_millis().to_string());
    if let Some(linger_ms) = linger_ms {
        config.set("linger.ms", linger_ms.to_string());
    }
    Ok(config.create()?)
}

async fn create_topic(context: &Context, topic: &str, partitions: usize) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> = client(context).create()?;
    let partitions = i32::try_from(partitions)
        .map_err(|_| BenchError::Settings("too many partitions".into()))?;
    let created = admin
        .create_topics(
            &[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        )
        .await?;
    for outcome in created {
        match outcome {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => {
                return Err(BenchError::Broker {
                    system: "kafka",
                    status: code.to_string(),
                    body: format!("cannot create topic {topic}"),
                })
            }
        }
    }
    Ok(())
}

/// Sends one message and waits for its delivery report.
async fn send(
    producer: &FutureProducer,
    topic: &str,
    payload: &[u8],
    partition: Option<i32>,
) -> Result<()> {
    let mut record = FutureRecord::<(), [u8]>::to(topic).payload(payload);
    record.partition = partition;
    let delivery = producer
        .send_result(record)
        .map_err(|(error, _)| error)?
        .await
        .map_err(|_| BenchError::Incomplete("the producer went away".into()))?;
    delivery.map_err(|(error, _): (KafkaError, _)| BenchError::Kafka(error))?;
    Ok(())
}

async fn publish(context: &Context) -> Result<Measurement> {
    let settings = &context.settings;
    let topic = context.name("publish");
    create_topic(context, &topic, settings.producers).await?;
    let payload = Arc::new(load::payload(settings.size));
    let mut producers = Vec::new();
    for partition in 0..settings.producers {
        let producer = producer(context, None)?;
        send(&producer, &topic, b"warm-up", Some(partition as i32)).await?;
        producers.push((producer, partition as i32));
    }
    let budget = context.budget(settings.messages);
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for (producer, partition) in producers {
        let (budget, topic, payload) = (budget.clone(), topic.clone(), payload.clone());
        let window = settings.in_flight;
        tasks.spawn(async move {
            load::run_window(&budget, window, 1, |_| {
                let (producer, topic, payload) = (producer.clone(), topic.clone(), payload.clone());
                async move { send(&producer, &topic, &payload, Some(partition)).await }
            })
            .await
        });
    }
    let latencies = join_histograms(tasks).await?;
    let mut result = measurement(&budget, started.elapsed(), None);
    result.latency = Some(latencies);
    Ok(result)
}

fn consumer(context: &Context, group: &str) -> Result<StreamConsumer> {
    Ok(client(context)
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()?)
}

async fn consume(context: &Context) -> Result<Measurement> {
    let settings = &context.settings;
    let topic = context.name("consume");
    create_topic(context, &topic, settings.producers).await?;
    let producer = producer(context, None)?;
    let payload = load::payload(settings.size);
    let fill = Budget::new(settings.messages, Duration::from_secs(3_600));
    load::run_window(&fill, FILL_WINDOW, 1, |_| {
        send(&producer, &topic, &payload, None)
    })
    .await?;
    let group = context.name("group");
    let budget = context.budget(settings.messages);
    // The clock starts before the consumers exist: librdkafka fetches in the background from
    // the moment a partition is assigned, well before the application sees a first message.
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for index in 0..settings.producers {
        let consumer = consumer(context, &group)?;
        // Each consumer is assigned its own partition instead of subscribing: members
        // joining one by one would trigger rebalances, and records read before one would be
        // read (and counted) twice.
        let mut assignment = TopicPartitionList::new();
        assignment.add_partition_offset(&topic, index as i32, Offset::Beginning)?;
        consumer.assign(&assignment)?;
        let budget = budget.clone();
        tasks.spawn(async move { consume_until_done(consumer, budget).await });
    }
    let mut last_finished = started;
    while let Some(joined) = tasks.join_next().await {
        let finished = joined.map_err(|error| BenchError::Incomplete(error.to_string()))??;
        if let Some(finished) = finished {
            last_finished = last_finished.max(finished);
        }
    }
    let elapsed = last_finished - started;
    Ok(measurement(&budget, elapsed, None))
}

/// Receives and commits until the budget is consumed; returns when this consumer committed
/// its last message, if it received any.
async fn consume_until_done(
    consumer: StreamConsumer,
    budget: Arc<Budget>,
) -> Result<Option<Instant>> {
    let mut received_any = false;
    let mut uncommitted = 0u64;
    while keep_working(&budget) {
        let Ok(message) = tokio::time::timeout(Duration::from_millis(50), consumer.recv()).await
        else {
            continue;
        };
        let message = message?;
        received_any = true;
        uncommitted += 1;
        budget.finish(1);
        if uncommitted >= COMMIT_EVERY {
            consumer.commit_message(&message, CommitMode::Async)?;
            uncommitted = 0;
        }
    }
    if !received_any {
        return Ok(None);
    }
    // A synchronous commit blocks its thread until the broker answers: on a runtime worker it
    // would also hold the tasks queued on that worker — a broker in the same process (the
    // tests) among them — so the commit never got its answer. `block_in_place` hands them
    // to another worker first.
    tokio::task::block_in_place(|| consumer.commit_consumer_state(CommitMode::Sync))?;
    Ok(Some(Instant::now()))
}

async fn latency(context: &Context) -> Result<Measurement> {
    let settings = &context.settings;
    let topic = context.name("latency");
    create_topic(context, &topic, 1).await?;
    let producer = producer(context, Some(0))?;
    // Offset 0 is the warm-up message; the consumer starts after it.
    send(&producer, &topic, b"warm-up", Some(0)).await?;
    let consumer = consumer(context, &context.name("group"))?;
    let mut assignment = TopicPartitionList::new();
    assignment.add_partition_offset(&topic, 0, Offset::Offset(1))?;
    consumer.assign(&assignment)?;
    let size = settings.size;
    super::latency_run(
        context,
        move |stamp| {
            let (producer, topic) = (producer.clone(), topic.clone());
            async move {
                let payload = load::stamped_payload(size, stamp);
                send(&producer, &topic, &payload, Some(0)).await
            }
        },
        move |mut receiver: super::Receiver| async move {
            while receiver.waiting() {
                let next = tokio::time::timeout(receiver.poll_interval(), consumer.recv()).await;
                let Ok(message) = next else { continue };
                let message = message?;
                receiver.received(message.payload().unwrap_or_default())?;
            }
            Ok(receiver)
        },
    )
    .await
}
