//! Direct reply-to (RabbitMQ's `amq.rabbitmq.reply-to`): request-reply without a reply queue.
//!
//! A requester consumes from the pseudo-queue `amq.rabbitmq.reply-to` with `no_ack` (else
//! 406), then publishes its request with `reply_to: amq.rabbitmq.reply-to` on the same
//! channel; the broker rewrites that to `amq.rabbitmq.reply-to.<token>`. A responder
//! publishes the reply to the default exchange with that routing key, and it goes straight to
//! the requester's consumer — not stored, not acknowledged, dropped if the requester is gone
//! (as RabbitMQ does; a `mandatory` reply to nobody comes back with basic.return).
//!
//! The tokens live in the door (`Shared::replies`), each naming a connection's delivery
//! channel, its AMQP channel and its consumer tag; a channel's token goes with its consumer,
//! its channel or its connection.

use amq_protocol::protocol::basic::AMQPProperties;
use bytes::Bytes;

use super::{Connection, Outbound};

pub(crate) const PSEUDO_QUEUE: &str = "amq.rabbitmq.reply-to";
const PREFIX: &str = "amq.rabbitmq.reply-to.";

/// Where a token's replies go.
#[derive(Clone)]
pub(crate) struct ReplyTarget {
    pub outbound: tokio::sync::mpsc::Sender<Outbound>,
    pub channel: u16,
    pub consumer_tag: String,
}

/// Registers the channel's direct reply-to consumer; answers its token.
pub(crate) fn register(connection: &mut Connection, channel: u16, consumer_tag: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let token = format!("{:x}.{:x}", nanos, NEXT.fetch_add(1, Ordering::Relaxed));
    connection
        .shared
        .replies
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(
            token.clone(),
            ReplyTarget {
                outbound: connection.outbound.clone(),
                channel,
                consumer_tag: consumer_tag.to_string(),
            },
        );
    if let Some(state) = connection.channels.get_mut(&channel) {
        state.reply_to = Some((token.clone(), consumer_tag.to_string()));
    }
    token
}

/// Forgets a token (its consumer, channel or connection is gone).
pub(crate) fn forget(connection: &Connection, token: &str) {
    connection
        .shared
        .replies
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(token);
}

/// `reply_to: amq.rabbitmq.reply-to` rewritten to the channel's token; `None` when the
/// channel has no direct reply-to consumer (the caller answers 406).
pub(crate) fn rewrite(
    connection: &Connection,
    channel: u16,
    properties: AMQPProperties,
) -> Option<AMQPProperties> {
    if properties.reply_to().as_ref().map(|r| r.as_str()) != Some(PSEUDO_QUEUE) {
        return Some(properties);
    }
    let token = connection
        .channels
        .get(&channel)?
        .reply_to
        .as_ref()?
        .0
        .clone();
    Some(properties.with_reply_to(format!("{PREFIX}{token}").into()))
}

/// A reply published to the default exchange with a reply-to routing key: handed to its
/// requester's session. Answers `None` when the key is not a reply-to key at all, and
/// `Some(delivered)` otherwise.
pub(crate) fn deliver(
    connection: &Connection,
    routing_key: &str,
    properties: &AMQPProperties,
    body: &Bytes,
) -> Option<bool> {
    let token = routing_key.strip_prefix(PREFIX)?;
    let target = connection
        .shared
        .replies
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(token)
        .cloned();
    let Some(target) = target else {
        return Some(false);
    };
    // Never waits: a requester that does not read loses replies rather than stalling the
    // responder (replies are not stored).
    let sent = target.outbound.try_send(Outbound::Reply {
        channel: target.channel,
        consumer_tag: target.consumer_tag,
        routing_key: routing_key.to_string(),
        properties: Box::new(properties.clone()),
        body: body.clone(),
    });
    Some(sent.is_ok())
}
