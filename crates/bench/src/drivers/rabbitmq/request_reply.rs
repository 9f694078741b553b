//! Request-reply over AMQP 0-9-1 with direct reply-to, the way RabbitMQ's RPC tutorial and
//! most RPC libraries over it work.
//!
//! - One responder: a connection consuming a non-durable request queue with manual acks; for
//!   each request it publishes the body back to the default exchange with the request's
//!   `reply_to` as routing key and its `correlation_id`, then acks the request.
//! - `--producers` requesters, each on its own connection with one channel that consumes the
//!   pseudo-queue `amq.rabbitmq.reply-to` with `no_ack` (required before publishing with that
//!   `reply_to`); a request is a publish with `reply_to: amq.rabbitmq.reply-to` and a
//!   correlation id of its own; its latency runs until the reply with that id arrives.
//!   Each requester keeps `--in-flight` requests open.
//!
//! Requests and replies are transient (delivery mode 1) and not confirmed: the reply is the
//! acknowledgement. A reply that does not come within [`super::super::GRACE`] fails the run.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::BasicProperties;
use tokio::sync::oneshot;
use tokio::task::JoinSet;

use super::{session, Session};
use crate::drivers::{join_histograms, measurement, Context, GRACE};
use crate::error::{BenchError, Result};
use crate::load::{self, Measurement};

/// The pseudo-queue a requester consumes and names as `reply_to`.
const REPLY_TO: &str = "amq.rabbitmq.reply-to";

/// Requests sent and not answered yet, by correlation id.
type Waiting = Arc<Mutex<HashMap<String, oneshot::Sender<()>>>>;

struct Requester {
    session: Session,
    waiting: Waiting,
    next_id: Arc<AtomicU64>,
}

pub(super) async fn run(context: &Context) -> Result<Measurement> {
    let settings = &context.settings;
    let queue = context.name("rpc");
    let responder = session(context).await?;
    responder
        .channel
        .queue_declare(
            queue.as_str().into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        )
        .await?;
    // Enough prefetch for every open request, so the responder never waits for its own acks.
    let open = (settings.producers * settings.in_flight).min(usize::from(u16::MAX));
    responder
        .channel
        .basic_qos(open as u16, BasicQosOptions::default())
        .await?;
    let requests = responder
        .channel
        .basic_consume(
            queue.as_str().into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let answering = tokio::spawn(answer(responder, requests));
    let mut replies = JoinSet::new();
    let mut requesters = Vec::new();
    for _ in 0..settings.producers {
        let (requester, replies_consumer) = requester(context).await?;
        replies.spawn(route_replies(replies_consumer, requester.waiting.clone()));
        requesters.push(requester);
    }
    let payload = Arc::new(load::payload(settings.size));
    let budget = context.budget(settings.messages);
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for requester in requesters {
        let (budget, queue, payload) = (budget.clone(), queue.clone(), payload.clone());
        let window = settings.in_flight;
        tasks.spawn(async move {
            let requester = Arc::new(requester);
            load::run_window(&budget, window, 1, |_| {
                let (requester, queue, payload) =
                    (requester.clone(), queue.clone(), payload.clone());
                async move { request(&requester, &queue, &payload).await }
            })
            .await
        });
    }
    let latencies = join_histograms(tasks).await;
    answering.abort();
    replies.abort_all();
    let mut result = measurement(&budget, started.elapsed(), None);
    result.latency = Some(latencies?);
    Ok(result)
}

/// The responder: each request's body goes back to its `reply_to`, then the request is acked.
async fn answer(responder: Session, mut requests: lapin::Consumer) -> Result<()> {
    while let Some(delivery) = requests.next().await {
        let delivery = delivery?;
        if let Some(reply_to) = delivery.properties.reply_to() {
            let mut properties = BasicProperties::default();
            if let Some(id) = delivery.properties.correlation_id() {
                properties = properties.with_correlation_id(id.clone());
            }
            // Not in confirm mode: the confirmation resolves at once (not requested).
            responder
                .channel
                .basic_publish(
                    "".into(),
                    reply_to.clone(),
                    BasicPublishOptions::default(),
                    &delivery.data,
                    properties,
                )
                .await?
                .await?;
        }
        delivery.ack(BasicAckOptions::default()).await?;
    }
    Ok(())
}

/// A requester's connection, its direct reply-to consumer started.
async fn requester(context: &Context) -> Result<(Requester, lapin::Consumer)> {
    let session = session(context).await?;
    let replies = session
        .channel
        .basic_consume(
            REPLY_TO.into(),
            "".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?;
    let requester = Requester {
        session,
        waiting: Arc::default(),
        next_id: Arc::default(),
    };
    Ok((requester, replies))
}

/// Hands each reply to the request waiting for its correlation id.
async fn route_replies(mut replies: lapin::Consumer, waiting: Waiting) -> Result<()> {
    while let Some(delivery) = replies.next().await {
        let delivery = delivery?;
        let Some(id) = delivery.properties.correlation_id() else {
            continue;
        };
        let sender = waiting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id.as_str());
        if let Some(sender) = sender {
            let _ = sender.send(());
        }
    }
    Ok(())
}

/// One request, answered when its reply arrives.
async fn request(requester: &Requester, queue: &str, payload: &[u8]) -> Result<()> {
    let id = requester
        .next_id
        .fetch_add(1, Ordering::Relaxed)
        .to_string();
    let (sender, replied) = oneshot::channel();
    requester
        .waiting
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(id.clone(), sender);
    let properties = BasicProperties::default()
        .with_reply_to(REPLY_TO.into())
        .with_correlation_id(id.as_str().into());
    // Not in confirm mode: the reply is the acknowledgement, the confirmation resolves at once.
    requester
        .session
        .channel
        .basic_publish(
            "".into(),
            queue.into(),
            BasicPublishOptions::default(),
            payload,
            properties,
        )
        .await?
        .await?;
    match tokio::time::timeout(GRACE, replied).await {
        Ok(Ok(())) => Ok(()),
        _ => {
            requester
                .waiting
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&id);
            Err(BenchError::Incomplete(format!(
                "no reply to request {id} within {} s",
                GRACE.as_secs()
            )))
        }
    }
}
