//! Publishing: a whole message (method, header, body) is routed at once and joins the
//! connection's *publish batch*; the batch is enqueued before any other frame is handled and
//! whenever the read buffer holds no further whole frame. So a client that publishes many
//! messages without waiting (a confirm window) gets one enqueue per target queue for all of
//! them — one group commit — while everything stays in the order it was sent: within a
//! queue, messages are enqueued in publish order; confirms (and basic.return before its
//! confirm) go out in publish order, consecutive acks of a channel as one basic.ack with
//! `multiple`.
//!
//! An enqueue of several messages that the engine refuses (a full queue refuses a whole
//! batch) is retried one message at a time, so each message gets its own answer, as it
//! would have alone.

use std::collections::HashMap;

use amq_protocol::protocol::basic::{self, AMQPMethod, AMQPProperties};
use amq_protocol::protocol::AMQPClass;
use bytes::Bytes;
use omnibus_engine::exchanges::{EXCHANGE_HEADER, ROUTING_KEY_HEADER};
use omnibus_engine::queue::EnqueueMessage;
use omnibus_engine::{Engine, EngineError};
use omnibus_types::Header;

use super::{Connection, PendingContent};
use crate::codec::encode_content;
use crate::codec::properties::{self, table_as_text, PROPERTIES_HEADER};
use crate::error::{reply, AmqpError};
use crate::names;

/// A batch is enqueued once it holds this many messages or bytes, whatever comes next.
const BATCH_MESSAGES_MAX: usize = 1024;
const BATCH_BYTES_MAX: usize = 16 * 1024 * 1024;

/// A routed message waiting for its batch to be enqueued.
pub(crate) struct ReadyPublish {
    channel: u16,
    /// Its confirm number, on a channel in confirm mode.
    sequence: Option<u64>,
    exchange: String,
    routing_key: String,
    mandatory: bool,
    properties: AMQPProperties,
    /// `properties` as the client encoded them, unless the broker rewrote them.
    encoded_properties: Option<Bytes>,
    body: Bytes,
    targets: Vec<String>,
    /// The message's `expiration`, checked when it was routed.
    ttl_ms: Option<u64>,
}

/// The connection's batch of routed publishes.
#[derive(Default)]
pub(crate) struct PublishBatch {
    publishes: Vec<ReadyPublish>,
    bytes: usize,
}

impl PublishBatch {
    pub fn is_empty(&self) -> bool {
        self.publishes.is_empty()
    }
}

/// The whole message is here: route it and add it to the batch.
pub(crate) async fn finish(connection: &mut Connection, channel: u16) -> Result<(), AmqpError> {
    let ids = (60, 40);
    let Some(state) = connection.channels.get_mut(&channel) else {
        return Ok(());
    };
    let Some(mut pending) = state.pending.take() else {
        return Ok(());
    };
    let body = pending.take_body();
    let PendingContent {
        publish,
        header: Some(header),
        encoded_properties,
        ..
    } = pending
    else {
        return Ok(());
    };
    connection.published = true;
    let mandatory = publish.mandatory;
    let exchange = String::from(publish.exchange);
    let routing_key = String::from(publish.routing_key);
    // A direct reply-to request's reply_to is rewritten: its stored properties are too.
    let encoded_properties = encoded_properties.filter(|_| {
        header.properties.reply_to().as_ref().map(|r| r.as_str())
            != Some(super::reply_to::PSEUDO_QUEUE)
    });
    let Some(properties) = super::reply_to::rewrite(connection, channel, header.properties) else {
        flush(connection).await;
        return Err(AmqpError::channel(
            reply::PRECONDITION_FAILED,
            "PRECONDITION_FAILED - fast reply consumer does not exist",
            ids,
        ));
    };
    let routed = route(
        connection.engine(),
        &exchange,
        &routing_key,
        &properties,
        ids,
    );
    let ttl_ms = match properties.expiration() {
        None => Ok(None),
        Some(text) => text.as_str().parse::<u64>().map(Some).map_err(|_| {
            AmqpError::channel(
                reply::PRECONDITION_FAILED,
                format!(
                    "PRECONDITION_FAILED - invalid expiration '{}'",
                    text.as_str()
                ),
                ids,
            )
        }),
    };
    let (targets, ttl_ms) = match (routed, ttl_ms) {
        (Ok(targets), Ok(ttl_ms)) => (targets, ttl_ms),
        (Err(error), _) | (_, Err(error)) => {
            // What came before it is answered first, as it would have been alone.
            flush(connection).await;
            return Err(error);
        }
    };
    let Some(state) = connection.channels.get_mut(&channel) else {
        return Ok(());
    };
    let sequence = state.confirm.then(|| {
        let sequence = state.next_publish_sequence;
        state.next_publish_sequence += 1;
        sequence
    });
    // A reply to a direct reply-to requester goes to it at once, not through a queue.
    let replied = if exchange.is_empty() {
        super::reply_to::deliver(connection, &routing_key, &properties, &body)
    } else {
        None
    };
    let ready = ReadyPublish {
        channel,
        sequence,
        exchange,
        routing_key,
        // A reply that reached its requester is routed; one to nobody is unroutable.
        mandatory: mandatory && replied != Some(true),
        properties,
        encoded_properties,
        body,
        targets,
        ttl_ms,
    };
    if let Some(held) = connection
        .channels
        .get_mut(&channel)
        .and_then(|state| state.tx.as_mut())
    {
        return held.hold(ready, ids);
    }
    connection.publishes.bytes += ready.body.len();
    connection.publishes.publishes.push(ready);
    if connection.publishes.publishes.len() >= BATCH_MESSAGES_MAX
        || connection.publishes.bytes >= BATCH_BYTES_MAX
    {
        flush(connection).await;
    }
    Ok(())
}

impl ReadyPublish {
    pub fn body_len(&self) -> usize {
        self.body.len()
    }

    /// The engine message stored for it: the body, and the properties, exchange and routing
    /// key as headers (built when enqueued, once per target queue at most). `routing_key` is
    /// this message's routing key as bytes, which the caller may share among the messages of
    /// a batch that have the same one.
    ///
    /// The default exchange (`""`) is not written: delivery and dead-lettering read a
    /// missing `omnibus.exchange` as `""` (`delivery.rs`), and most publishes go through it,
    /// so each saves a header's allocation, encoding and stored bytes.
    /// The message as a queue's stream keeps it: the body, its properties and the routing
    /// fields as headers (what the engine weighs against its record limit).
    fn message(&self, routing_key: Bytes) -> EnqueueMessage {
        let mut headers = Vec::with_capacity(3);
        headers.push(Header {
            name: PROPERTIES_HEADER.into(),
            value: self
                .encoded_properties
                .clone()
                .unwrap_or_else(|| Bytes::from(properties::encode(&self.properties))),
        });
        if !self.exchange.is_empty() {
            headers.push(Header {
                name: EXCHANGE_HEADER.into(),
                value: Bytes::copy_from_slice(self.exchange.as_bytes()),
            });
        }
        headers.push(Header {
            name: ROUTING_KEY_HEADER.into(),
            value: routing_key,
        });
        EnqueueMessage {
            key: None,
            value: Some(self.body.clone()),
            headers,
            // The engine's levels are 0–9, as RabbitMQ advises for x-max-priority.
            priority: self.properties.priority().unwrap_or(0).min(9),
            ttl_ms: self.ttl_ms,
            ..Default::default()
        }
    }
}

/// The bytes the engine will weigh for a publish (see [`ReadyPublish::message`]) once its
/// body of `body_size` arrives, known from basic.publish and the content header alone.
pub(crate) fn stored_bytes(publish: &basic::Publish, properties_len: usize, body_size: u64) -> u64 {
    let exchange = publish.exchange.as_str();
    let exchange_len = if exchange.is_empty() {
        0
    } else {
        EXCHANGE_HEADER.len() + exchange.len()
    };
    let fields = PROPERTIES_HEADER.len()
        + properties_len
        + exchange_len
        + ROUTING_KEY_HEADER.len()
        + publish.routing_key.as_str().len();
    body_size.saturating_add(fields as u64)
}

/// Enqueues a committed transaction's publishes (`tx.rs`) as one batch, after whatever was
/// waiting already.
pub(crate) async fn enqueue_held(connection: &mut Connection, held: Vec<ReadyPublish>) {
    flush(connection).await;
    connection.publishes.bytes = held.iter().map(ReadyPublish::body_len).sum();
    connection.publishes.publishes = held;
    flush(connection).await;
}

/// The engine queues a message goes to; the default exchange names the queue.
fn route(
    engine: &Engine,
    exchange: &str,
    routing_key: &str,
    properties: &AMQPProperties,
    ids: (u16, u16),
) -> Result<Vec<String>, AmqpError> {
    if exchange.is_empty() {
        // A lookup of the queue, nothing more: `queue_info` would gather its statistics
        // (locks, a copy of its configuration) for every message published. The default
        // exchange is never internal, so its specification is not looked up either.
        return Ok(names::to_engine(routing_key)
            .filter(|queue| engine.ready_signal(queue).is_ok())
            .into_iter()
            .collect());
    }
    if engine.exchange(exchange).is_some_and(|spec| spec.internal) {
        return Err(AmqpError::channel(
            reply::ACCESS_REFUSED,
            format!(
                "ACCESS_REFUSED - cannot publish to internal exchange '{exchange}' in vhost '/'"
            ),
            ids,
        ));
    }
    let headers = properties
        .headers()
        .as_ref()
        .map(table_as_text)
        .unwrap_or_default();
    match engine.route_exchange(exchange, routing_key, &headers) {
        Ok(targets) => Ok(targets),
        Err(EngineError::ExchangeNotFound(_)) => Err(super::exchange::not_found(exchange, ids)),
        Err(error) => Err(super::exchange::engine_error(error, ids)),
    }
}

/// Enqueues the batch (one enqueue per target queue, all at once), then writes the returns
/// and confirms in publish order.
pub(crate) async fn flush(connection: &mut Connection) {
    if connection.publishes.is_empty() {
        return;
    }
    // The next batch starts with room for as many as this one held: a `ReadyPublish` is a few
    // hundred bytes, and growing from empty moved every batch's messages about eight times.
    let capacity = connection.publishes.publishes.len();
    let batch = std::mem::replace(
        &mut connection.publishes,
        PublishBatch {
            publishes: Vec::with_capacity(capacity),
            bytes: 0,
        },
    )
    .publishes;
    // Each message is built once and moved to its (last) queue; only a message routed to
    // several queues is copied.
    let mut per_queue: HashMap<&str, QueueShare> = HashMap::new();
    let mut routing_keys = SharedRoutingKey::default();
    for (index, publish) in batch.iter().enumerate() {
        let Some((last, others)) = publish.targets.split_last() else {
            continue;
        };
        let message = publish.message(routing_keys.bytes(&publish.routing_key));
        // A queue's share holds at most the messages from here on.
        let room = batch.len() - index;
        for target in others {
            per_queue
                .entry(target.as_str())
                .or_insert_with(|| QueueShare::with_capacity(room))
                .push(index, message.clone());
        }
        per_queue
            .entry(last.as_str())
            .or_insert_with(|| QueueShare::with_capacity(room))
            .push(index, message);
    }
    let caps = priority_caps(&connection.shared, per_queue.keys().copied());
    let engine = connection.engine().clone();
    let enqueues = per_queue.into_iter().map(|(queue, mut share)| {
        let cap = caps.get(queue).copied();
        if let Some(cap) = cap {
            for message in &mut share.messages {
                message.priority = message.priority.min(cap);
            }
        }
        enqueue_in_order(&engine, queue, (share, cap), &batch)
    });
    let mut accepted = vec![true; batch.len()];
    for refused in futures_util::future::join_all(enqueues).await {
        for index in refused {
            accepted[index] = false;
        }
    }
    let frame_max = connection.frame_max;
    // Consecutive acks of one channel become one basic.ack with `multiple`.
    let mut acks: HashMap<u16, u64> = HashMap::new();
    for (publish, accepted) in batch.into_iter().zip(accepted) {
        if publish.targets.is_empty() && publish.mandatory {
            let method = AMQPClass::Basic(AMQPMethod::Return(basic::Return {
                reply_code: reply::NO_ROUTE,
                reply_text: "NO_ROUTE".into(),
                exchange: publish.exchange.as_str().into(),
                routing_key: publish.routing_key.as_str().into(),
            }));
            if let Some(last) = acks.remove(&publish.channel) {
                send_ack(connection, publish.channel, last);
            }
            encode_content(
                &mut connection.out,
                publish.channel,
                method,
                publish.properties,
                &publish.body,
                frame_max,
            );
        }
        let Some(sequence) = publish.sequence else {
            continue;
        };
        if accepted {
            acks.insert(publish.channel, sequence);
        } else {
            if let Some(last) = acks.remove(&publish.channel) {
                send_ack(connection, publish.channel, last);
            }
            if let Some(state) = connection.channels.get_mut(&publish.channel) {
                state.first_unconfirmed = sequence + 1;
            }
            connection.send(
                publish.channel,
                AMQPClass::Basic(AMQPMethod::Nack(basic::Nack {
                    delivery_tag: sequence,
                    multiple: false,
                    requeue: false,
                })),
            );
        }
    }
    let mut last_acks: Vec<(u16, u64)> = acks.into_iter().collect();
    last_acks.sort_unstable();
    for (channel, last) in last_acks {
        send_ack(connection, channel, last);
    }
}

/// Acks every confirm of the channel up to `last`: the ones before it were answered already
/// (in order), so `multiple` covers exactly the run that ends here.
fn send_ack(connection: &mut Connection, channel: u16, last: u64) {
    let first_unanswered = connection
        .channels
        .get(&channel)
        .map_or(last, |state| state.first_unconfirmed);
    if let Some(state) = connection.channels.get_mut(&channel) {
        state.first_unconfirmed = last + 1;
    }
    connection.send(
        channel,
        AMQPClass::Basic(AMQPMethod::Ack(basic::Ack {
            delivery_tag: last,
            multiple: last > first_unanswered,
        })),
    );
}

/// The routing key of the messages of a batch as bytes, made once for a run of messages
/// with the same key (a publisher's batch usually has one) and shared by them.
#[derive(Default)]
struct SharedRoutingKey {
    last: Option<Bytes>,
}

impl SharedRoutingKey {
    fn bytes(&mut self, routing_key: &str) -> Bytes {
        match &self.last {
            Some(last) if last.as_ref() == routing_key.as_bytes() => last.clone(),
            _ => {
                let bytes = Bytes::copy_from_slice(routing_key.as_bytes());
                self.last = Some(bytes.clone());
                bytes
            }
        }
    }
}

/// The messages of a batch that go to one queue, in publish order, with their indexes.
#[derive(Default)]
struct QueueShare {
    indexes: Vec<usize>,
    messages: Vec<EnqueueMessage>,
}

impl QueueShare {
    fn with_capacity(capacity: usize) -> QueueShare {
        QueueShare {
            indexes: Vec::with_capacity(capacity),
            messages: Vec::with_capacity(capacity),
        }
    }

    fn push(&mut self, index: usize, message: EnqueueMessage) {
        self.indexes.push(index);
        self.messages.push(message);
    }
}

/// The highest message priority each of `queues` keeps, for those this door declared: as in
/// RabbitMQ, a priority above the queue's `x-max-priority` counts as that maximum, and a
/// queue declared without one ignores priorities (first in, first out). Queues made through
/// another door keep the engine's levels (0–9).
fn priority_caps<'a>(
    shared: &super::Shared,
    queues: impl Iterator<Item = &'a str>,
) -> HashMap<&'a str, u8> {
    let owners = shared.owners.lock().unwrap_or_else(|p| p.into_inner());
    queues
        .filter_map(|queue| {
            let owner = owners.get(queue).filter(|owner| owner.declared_here)?;
            let cap = owner
                .door_arguments
                .get("x-max-priority")
                .and_then(|text| text.parse::<u64>().ok())
                .map_or(0, |max| max.min(u64::from(u8::MAX)) as u8);
            Some((queue, cap))
        })
        .collect()
}

/// Enqueues a queue's share of `batch`, in order, its priorities capped at `cap`; answers
/// the indexes the queue refused. A refused batch is retried one message at a time.
async fn enqueue_in_order(
    engine: &Engine,
    queue: &str,
    (share, cap): (QueueShare, Option<u8>),
    batch: &[ReadyPublish],
) -> Vec<usize> {
    let QueueShare { indexes, messages } = share;
    match engine.enqueue(queue, messages).await {
        Ok(_) => Vec::new(),
        Err(error) if indexes.len() == 1 => {
            log_refusal(queue, &error);
            indexes
        }
        Err(_) => {
            let mut refused = Vec::new();
            for index in indexes {
                let publish = &batch[index];
                let routing_key = Bytes::copy_from_slice(publish.routing_key.as_bytes());
                let mut message = publish.message(routing_key);
                if let Some(cap) = cap {
                    message.priority = message.priority.min(cap);
                }
                if let Err(error) = engine.enqueue(queue, vec![message]).await {
                    log_refusal(queue, &error);
                    refused.push(index);
                }
            }
            refused
        }
    }
}

fn log_refusal(queue: &str, error: &EngineError) {
    if !matches!(error, EngineError::QueueFull(_)) {
        tracing::warn!(queue, "an AMQP publish was not enqueued: {error}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready(exchange: &str, routing_key: &str) -> ReadyPublish {
        ReadyPublish {
            channel: 1,
            sequence: Some(1),
            exchange: exchange.to_string(),
            routing_key: routing_key.to_string(),
            mandatory: false,
            properties: AMQPProperties::default().with_delivery_mode(2),
            encoded_properties: None,
            body: Bytes::from_static(b"payload"),
            targets: vec!["orders".to_string()],
            ttl_ms: None,
        }
    }

    fn header<'a>(message: &'a EnqueueMessage, name: &str) -> Option<&'a [u8]> {
        message
            .headers
            .iter()
            .find(|h| h.name == name)
            .map(|h| h.value.as_ref())
    }

    #[test]
    fn a_publish_to_the_default_exchange_is_stored_without_an_exchange_header() {
        let message = ready("", "orders").message(Bytes::from_static(b"orders"));
        assert_eq!(header(&message, EXCHANGE_HEADER), None);
        assert_eq!(header(&message, ROUTING_KEY_HEADER), Some(&b"orders"[..]));
        let stored = header(&message, PROPERTIES_HEADER).expect("properties are stored");
        let properties = properties::decode(stored).expect("they decode");
        assert_eq!(properties.delivery_mode(), &Some(2));
        assert_eq!(message.value.as_deref(), Some(&b"payload"[..]));
    }

    #[test]
    fn a_publish_to_a_named_exchange_keeps_its_exchange_header() {
        let message =
            ready("events", "order.created").message(Bytes::from_static(b"order.created"));
        assert_eq!(header(&message, EXCHANGE_HEADER), Some(&b"events"[..]));
        assert_eq!(
            header(&message, ROUTING_KEY_HEADER),
            Some(&b"order.created"[..])
        );
    }

    #[test]
    fn routing_keys_are_shared_by_a_run_of_equal_keys_and_made_again_for_another() {
        let mut keys = SharedRoutingKey::default();
        let first = keys.bytes("orders");
        let second = keys.bytes("orders");
        assert_eq!(first, second);
        // The same allocation, not a copy.
        assert_eq!(first.as_ptr(), second.as_ptr());
        let other = keys.bytes("invoices");
        assert_eq!(other.as_ref(), b"invoices");
        let again = keys.bytes("orders");
        assert_eq!(again.as_ref(), b"orders");
        assert_ne!(again.as_ptr(), first.as_ptr());
    }
}
