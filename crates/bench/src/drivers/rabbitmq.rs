//! RabbitMQ over AMQP 0-9-1 (lapin): a durable classic queue on the default exchange,
//! persistent messages (delivery mode 2), publisher confirms.
//!
//! - publish: each producer has its own connection and a channel in confirm mode, with
//!   `--in-flight` publishes awaiting their confirm; on the harness's own lean publisher
//!   (`publisher.rs`, `--client lean`, the default) or on lapin (`--client library`). A confirm for a persistent message on a
//!   durable queue comes once the message is written to disk (RabbitMQ batches those fsyncs).
//! - consume: a queue pre-filled with `--messages` (not timed), then `--producers` consumers
//!   with `--prefetch` (100) and manual acks: `--acks multiple` sends one `multiple` ack for
//!   what arrived together (up to the prefetch), `--acks each` one ack per delivery.
//! - latency: confirmed publishes at `--rate`; a consumer with manual acks receives.
//! - jobs: each worker on its own connection: `one` = prefetch 1 and an ack per message;
//!   `batched` = prefetch 100 and one `multiple` ack for what arrived together.
//! - request-reply: direct reply-to (`request_reply.rs`): one responder consumes a queue and
//!   publishes each answer to the request's `reply_to`; `--producers` requesters, each on
//!   its own connection consuming `amq.rabbitmq.reply-to`, keep `--in-flight` requests open.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, Consumer};
use tokio::task::JoinSet;

use super::{drain, keep_working, measurement, not_supported, timed_producers, Context};
use crate::error::{BenchError, Result};
use crate::load::{self, Budget, Measurement};
use crate::settings::{AckMode, Client, Workload};

mod publisher;
mod request_reply;

/// Publishes awaiting their confirms at once when filling a queue.
const FILL_WINDOW: usize = 1_000;
/// Deliveries a batched consumer takes before it acknowledges them.
const BATCH: u16 = 100;
/// How long a consumer waits for a delivery before it looks at the budget again.
const RECEIVE_WAIT: Duration = Duration::from_millis(50);
/// Persistent: the broker writes the message to disk before confirming it.
const DELIVERY_MODE_PERSISTENT: u8 = 2;

/// Keeps the connection open as long as its channel is used.
#[derive(Clone)]
struct Session {
    _connection: Arc<Connection>,
    channel: Channel,
}

async fn session(context: &Context) -> Result<Session> {
    let uri = format!("amqp://guest:guest@{}/%2f", context.settings.address());
    let connection = Connection::connect(&uri, ConnectionProperties::default()).await?;
    let channel = connection.create_channel().await?;
    Ok(Session {
        _connection: Arc::new(connection),
        channel,
    })
}

/// A session whose channel waits for publisher confirms.
async fn confirming_session(context: &Context) -> Result<Session> {
    let session = session(context).await?;
    session
        .channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    Ok(session)
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
        Workload::RequestReply => request_reply::run(context).await,
    }
}

async fn declare(session: &Session, queue: &str) -> Result<()> {
    let options = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    session
        .channel
        .queue_declare(queue.into(), options, FieldTable::default())
        .await?;
    Ok(())
}

/// Publishes one persistent message and waits for its confirm.
async fn publish_confirmed(channel: &Channel, queue: &str, payload: &[u8]) -> Result<()> {
    let properties = BasicProperties::default().with_delivery_mode(DELIVERY_MODE_PERSISTENT);
    let confirmation = channel
        .basic_publish(
            "".into(),
            queue.into(),
            BasicPublishOptions::default(),
            payload,
            properties,
        )
        .await?
        .await?;
    if !confirmation.is_ack() {
        return Err(BenchError::Broker {
            system: "rabbitmq",
            status: "nack".into(),
            body: "the broker refused a publish".into(),
        });
    }
    Ok(())
}

async fn publish(context: &Context) -> Result<Measurement> {
    match context.settings.client {
        Client::Lean => publish_lean(context).await,
        Client::Library => publish_lapin(context).await,
    }
}

/// The publish workload on the harness's own publisher: one connection per producer, each
/// with `--in-flight` unconfirmed publishes.
async fn publish_lean(context: &Context) -> Result<Measurement> {
    let settings = &context.settings;
    let queue = Arc::new(context.name("publish"));
    let address = settings.address();
    let mut publishers = Vec::new();
    for _ in 0..settings.producers {
        publishers.push(publisher::Publisher::connect(&address).await?);
    }
    publishers[0].declare_durable(&queue).await?;
    let payload = Arc::new(load::payload(settings.size));
    let window = settings.in_flight;
    timed_producers(context, publishers, |mut publisher, budget| {
        let (queue, payload) = (queue.clone(), payload.clone());
        async move {
            let latencies = publisher
                .publish_window(&budget, window, &queue, &payload)
                .await?;
            publisher.close().await;
            Ok(latencies)
        }
    })
    .await
}

async fn publish_lapin(context: &Context) -> Result<Measurement> {
    let settings = &context.settings;
    let queue = context.name("publish");
    let mut sessions = Vec::new();
    for _ in 0..settings.producers {
        sessions.push(confirming_session(context).await?);
    }
    declare(&sessions[0], &queue).await?;
    let payload = Arc::new(load::payload(settings.size));
    let window = settings.in_flight;
    timed_producers(context, sessions, |session, budget| {
        let (queue, payload) = (queue.clone(), payload.clone());
        async move {
            load::run_window(&budget, window, 1, |_| {
                let (session, queue, payload) = (session.clone(), queue.clone(), payload.clone());
                async move { publish_confirmed(&session.channel, &queue, &payload).await }
            })
            .await
        }
    })
    .await
}

async fn fill(context: &Context, queue: &str, count: u64) -> Result<()> {
    let session = confirming_session(context).await?;
    declare(&session, queue).await?;
    let payload = load::payload(context.settings.size);
    let budget = Budget::new(count, Duration::from_secs(3_600));
    load::run_window(&budget, FILL_WINDOW, 1, |_| {
        publish_confirmed(&session.channel, queue, &payload)
    })
    .await?;
    Ok(())
}

/// A consumer with manual acks and `prefetch` unacknowledged deliveries at most.
async fn consumer(context: &Context, queue: &str, prefetch: u16) -> Result<(Session, Consumer)> {
    let session = session(context).await?;
    session
        .channel
        .basic_qos(prefetch, BasicQosOptions::default())
        .await?;
    let consumer = session
        .channel
        .basic_consume(
            queue.into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    Ok((session, consumer))
}

/// Takes the deliveries that arrive together (up to `batch`, the first waited for up to
/// [`RECEIVE_WAIT`]) and acknowledges them: one ack each, or one `multiple` ack for all.
async fn receive_and_acknowledge(
    consumer: &mut Consumer,
    batch: u16,
    multiple: bool,
) -> Result<u64> {
    let mut last = None;
    let mut count = 0u64;
    let mut wait = RECEIVE_WAIT;
    while count < u64::from(batch) {
        let Ok(Some(delivery)) = tokio::time::timeout(wait, consumer.next()).await else {
            break;
        };
        let delivery = delivery?;
        if !multiple {
            delivery.ack(BasicAckOptions::default()).await?;
        }
        last = Some(delivery);
        count += 1;
        // After the first, take only what has already arrived.
        wait = Duration::from_millis(1);
    }
    if let (true, Some(delivery)) = (multiple, last) {
        delivery.ack(BasicAckOptions { multiple: true }).await?;
    }
    Ok(count)
}

async fn consume(context: &Context) -> Result<Measurement> {
    let settings = &context.settings;
    let queue = context.name("consume");
    fill(context, &queue, settings.messages).await?;
    let mut consumers = Vec::new();
    for _ in 0..settings.producers {
        consumers.push(consumer(context, &queue, settings.prefetch).await?);
    }
    let (prefetch, multiple) = (settings.prefetch, settings.acks == AckMode::Multiple);
    let budget = context.budget(settings.messages);
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for (session, mut consumer) in consumers {
        let budget = budget.clone();
        tasks.spawn(async move {
            let _session = session;
            while keep_working(&budget) {
                budget.finish(receive_and_acknowledge(&mut consumer, prefetch, multiple).await?);
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
    let queue = context.name("latency");
    let sender = confirming_session(context).await?;
    declare(&sender, &queue).await?;
    let (session, mut consumer) = consumer(context, &queue, BATCH).await?;
    let size = settings.size;
    super::latency_run(
        context,
        move |stamp| {
            let (sender, queue) = (sender.clone(), queue.clone());
            async move {
                let payload = load::stamped_payload(size, stamp);
                publish_confirmed(&sender.channel, &queue, &payload).await
            }
        },
        move |mut receiver: super::Receiver| async move {
            let _session = session;
            while receiver.waiting() {
                let next = tokio::time::timeout(receiver.poll_interval(), consumer.next()).await;
                let Ok(Some(delivery)) = next else { continue };
                let delivery = delivery?;
                receiver.received(&delivery.data)?;
                delivery.ack(BasicAckOptions::default()).await?;
            }
            Ok(receiver)
        },
    )
    .await
}

async fn jobs(context: &Context) -> Result<Measurement> {
    let settings = &context.settings;
    let queue = context.name("jobs");
    fill(context, &queue, settings.jobs).await?;
    let batch = settings.mode.batch() as u16;
    let mut workers = Vec::new();
    for _ in 0..settings.workers {
        workers.push(consumer(context, &queue, batch).await?);
    }
    drain(
        context,
        settings.jobs,
        workers,
        move |(session, mut consumer), budget: Arc<Budget>| async move {
            let _session = session;
            let mut last_finished = None;
            while keep_working(&budget) {
                let count = receive_and_acknowledge(&mut consumer, batch, batch > 1).await?;
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
