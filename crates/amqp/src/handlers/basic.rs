//! The basic class: qos, publish (method, content header, body frames), get, ack, nack,
//! reject, recover; consume and cancel are in `consume.rs`.
//!
//! Publishing: the method, the content header and the body frames are assembled here; the
//! whole message is routed and enqueued in `publish.rs` (batched, confirms after the fsync,
//! basic.return 312 NO_ROUTE before the confirm of an unroutable mandatory message). A
//! publish to a missing exchange is 404 on the channel. Content frames out of order (a
//! header without a publish, a body longer than announced) are connection exceptions (505
//! UNEXPECTED_FRAME, 501 FRAME_ERROR); a body over `message_bytes_max` is 406 on the
//! channel, before any of it is buffered.
//!
//! Settling: delivery tags are per channel; acking an unknown one is 406 PRECONDITION_FAILED
//! on that channel only. `multiple` settles every tag up to the one given (0: all).
//! A nack or reject with requeue puts the message back at once (it comes again with
//! `redelivered`); without requeue it is dead-lettered — through the queue's dead-letter
//! exchange when it has one.

use std::collections::BTreeMap;
use std::sync::Arc;

use amq_protocol::frame::AMQPContentHeader;
use amq_protocol::protocol::basic::{self, AMQPMethod};
use amq_protocol::protocol::AMQPClass;
use bytes::BytesMut;

use super::consume;
use super::delivery::render;
use super::queue::{check_exclusive, existing_queue};
use super::tx::{HeldSettlement, Outcome};
use super::{Channel, Connection, Outbound, PendingContent, Unacked};
use crate::codec::encode_content;
use crate::error::{reply, AmqpError};

pub(crate) async fn handle(
    connection: &mut Connection,
    channel: u16,
    method: AMQPMethod,
    ids: (u16, u16),
) -> Result<(), AmqpError> {
    match method {
        AMQPMethod::Qos(qos) => {
            // A non-zero prefetch_size never gets here: `codec::decode` refuses it.
            if let Some(state) = connection.channels.get_mut(&channel) {
                if qos.global {
                    state.flow.set_channel_prefetch(qos.prefetch_count);
                } else {
                    state.consumer_prefetch = qos.prefetch_count;
                }
            }
            connection.send(
                channel,
                AMQPClass::Basic(AMQPMethod::QosOk(basic::QosOk {})),
            );
            Ok(())
        }
        AMQPMethod::Publish(publish) => {
            if let Some(state) = connection.channels.get_mut(&channel) {
                state.pending = Some(PendingContent {
                    publish,
                    header: None,
                    body: BytesMut::new(),
                    whole: None,
                    encoded_properties: None,
                });
            }
            Ok(())
        }
        AMQPMethod::Consume(request) => consume::consume(connection, channel, request, ids).await,
        AMQPMethod::Cancel(request) => consume::cancel(connection, channel, request).await,
        AMQPMethod::Get(get) => basic_get(connection, channel, get, ids).await,
        AMQPMethod::Ack(ack) => {
            let outcome = Outcome::Ack;
            let Some(settled) = settle(
                connection,
                channel,
                ack.delivery_tag,
                ack.multiple,
                outcome,
                ids,
            )?
            else {
                return Ok(());
            };
            ack_all(connection, &settled).await;
            Ok(())
        }
        AMQPMethod::Nack(nack) => {
            let outcome = failed_outcome(nack.requeue);
            let Some(settled) = settle(
                connection,
                channel,
                nack.delivery_tag,
                nack.multiple,
                outcome,
                ids,
            )?
            else {
                return Ok(());
            };
            settle_failed(connection, settled, nack.requeue).await;
            Ok(())
        }
        AMQPMethod::Reject(reject) => {
            let outcome = failed_outcome(reject.requeue);
            let Some(settled) = settle(
                connection,
                channel,
                reject.delivery_tag,
                false,
                outcome,
                ids,
            )?
            else {
                return Ok(());
            };
            settle_failed(connection, settled, reject.requeue).await;
            Ok(())
        }
        AMQPMethod::Recover(basic::Recover { requeue: false })
        | AMQPMethod::RecoverAsync(basic::RecoverAsync { requeue: false }) => {
            // Redelivery to the same consumer only: RabbitMQ 3.10 does not implement it and
            // closes the connection with these words; so do we.
            Err(AmqpError::connection(
                reply::NOT_IMPLEMENTED,
                "NOT_IMPLEMENTED - requeue=false",
                ids,
            ))
        }
        AMQPMethod::Recover(_) | AMQPMethod::RecoverAsync(_) => {
            // Requeued for any consumer, as RabbitMQ does. Not held by a transaction:
            // recover acts at once (as in RabbitMQ).
            let Some(state) = connection.channels.get_mut(&channel) else {
                return Ok(());
            };
            let settled: Vec<Unacked> = take_settled(&mut state.unacked, 0, true, ids)?
                .into_iter()
                .map(|(_, delivery)| delivery)
                .collect();
            give_credit(state, &settled);
            settle_failed(connection, settled, true).await;
            if matches!(method_kind(&ids), RecoverKind::Sync) {
                connection.send(
                    channel,
                    AMQPClass::Basic(AMQPMethod::RecoverOk(basic::RecoverOk {})),
                );
            }
            Ok(())
        }
        AMQPMethod::QosOk(_)
        | AMQPMethod::ConsumeOk(_)
        | AMQPMethod::CancelOk(_)
        | AMQPMethod::Return(_)
        | AMQPMethod::Deliver(_)
        | AMQPMethod::GetOk(_)
        | AMQPMethod::GetEmpty(_)
        | AMQPMethod::RecoverOk(_) => Err(AmqpError::connection(
            reply::COMMAND_INVALID,
            "a server-only basic method from the client",
            ids,
        )),
    }
}

enum RecoverKind {
    Sync,
    Async,
}

/// basic.recover is method 110; recover-async 100.
fn method_kind(ids: &(u16, u16)) -> RecoverKind {
    if ids.1 == 100 {
        RecoverKind::Async
    } else {
        RecoverKind::Sync
    }
}

fn failed_outcome(requeue: bool) -> Outcome {
    if requeue {
        Outcome::Requeue
    } else {
        Outcome::DeadLetter
    }
}

/// A settlement: the deliveries it covers leave the channel's unacknowledged ones. On a
/// transactional channel they are held until commit (`tx.rs`) and `None` is answered;
/// otherwise their prefetch credit goes back and they are answered, to be applied now.
fn settle(
    connection: &mut Connection,
    channel: u16,
    tag: u64,
    multiple: bool,
    outcome: Outcome,
    ids: (u16, u16),
) -> Result<Option<Vec<Unacked>>, AmqpError> {
    let Some(state) = connection.channels.get_mut(&channel) else {
        return Ok(None);
    };
    let settled = take_settled(&mut state.unacked, tag, multiple, ids)?;
    if let Some(held) = state.tx.as_mut() {
        held.settlements.push(HeldSettlement {
            deliveries: settled,
            outcome,
        });
        return Ok(None);
    }
    let settled: Vec<Unacked> = settled.into_iter().map(|(_, delivery)| delivery).collect();
    // The waiting consumers are woken once the frames read together are handled
    // (`wake_consumers`): one wake-up for a run of acks, not one each, so a consumer leases
    // the messages they free in one receive.
    for (consumer, count) in credit_per_consumer(&settled) {
        state.flow.give_back_quietly(consumer, count);
    }
    if !connection
        .credit_returned
        .iter()
        .any(|flow| Arc::ptr_eq(flow, &state.flow))
    {
        connection.credit_returned.push(state.flow.clone());
    }
    Ok(Some(settled))
}

/// Removes the settled deliveries (with their tags) from `unacked`.
fn take_settled(
    unacked: &mut BTreeMap<u64, Unacked>,
    tag: u64,
    multiple: bool,
    ids: (u16, u16),
) -> Result<Vec<(u64, Unacked)>, AmqpError> {
    Ok(if multiple && tag == 0 {
        std::mem::take(unacked).into_iter().collect()
    } else if !unacked.contains_key(&tag) {
        return Err(AmqpError::channel(
            reply::PRECONDITION_FAILED,
            format!("PRECONDITION_FAILED - unknown delivery tag {tag}"),
            ids,
        ));
    } else if multiple {
        let above = unacked.split_off(&(tag + 1));
        std::mem::replace(unacked, above).into_iter().collect()
    } else {
        unacked.remove_entry(&tag).into_iter().collect()
    })
}

/// Gives settled deliveries' prefetch credit back to their consumers.
pub(super) fn give_credit(state: &Channel, settled: &[Unacked]) {
    for (consumer, count) in credit_per_consumer(settled) {
        state.flow.give_back(consumer, count);
    }
}

fn credit_per_consumer(settled: &[Unacked]) -> BTreeMap<&str, u32> {
    let mut credit: BTreeMap<&str, u32> = BTreeMap::new();
    for delivery in settled {
        if let Some(consumer) = &delivery.consumer_tag {
            *credit.entry(consumer.as_str()).or_default() += 1;
        }
    }
    credit
}

pub(super) async fn ack_all(connection: &Connection, settled: &[Unacked]) {
    let engine = connection.engine().clone();
    let acks = settled
        .iter()
        .filter(|d| d.current(&engine))
        .map(|d| engine.ack(&d.queue, d.offset, d.attempt));
    for outcome in futures_util::future::join_all(acks).await {
        if let Err(error) = outcome {
            tracing::debug!("an AMQP ack failed (its lease may have ended): {error}");
        }
    }
}

pub(super) async fn settle_failed(connection: &Connection, settled: Vec<Unacked>, requeue: bool) {
    let engine = connection.engine().clone();
    if requeue {
        let requeues = settled.iter().filter(|d| d.current(&engine)).map(|d| {
            engine.nack(
                &d.queue,
                d.offset,
                d.attempt,
                Some(0),
                "requeued by the client",
            )
        });
        for outcome in futures_util::future::join_all(requeues).await {
            if let Err(error) = outcome {
                tracing::debug!("an AMQP requeue failed: {error}");
            }
        }
    } else {
        let rejects = settled
            .iter()
            .filter(|d| d.current(&engine))
            .map(|d| engine.term(&d.queue, d.offset, d.attempt, "rejected by the client"));
        for outcome in futures_util::future::join_all(rejects).await {
            if let Err(error) = outcome {
                tracing::debug!("an AMQP reject failed: {error}");
            }
        }
    }
}

async fn basic_get(
    connection: &mut Connection,
    channel: u16,
    get: basic::Get,
    ids: (u16, u16),
) -> Result<(), AmqpError> {
    let queue = existing_queue(connection, get.queue.as_str(), ids)?;
    check_exclusive(connection, &queue, get.queue.as_str(), ids)?;
    super::expiry::touch(&connection.shared, &queue);
    let Some(worker) = connection.channels.get(&channel).map(|s| s.worker.clone()) else {
        return Ok(());
    };
    let engine = connection.engine().clone();
    let mut got = engine
        .receive(&queue, &worker, 1, 0)
        .await
        .map_err(|error| super::exchange::engine_error(error, ids))?;
    let Some(delivery) = got.pop() else {
        connection.send(
            channel,
            AMQPClass::Basic(AMQPMethod::GetEmpty(basic::GetEmpty {})),
        );
        return Ok(());
    };
    if get.no_ack {
        if let Err(error) = engine.ack(&queue, delivery.offset, delivery.attempt).await {
            tracing::debug!("acking a no-ack basic.get failed: {error}");
        }
    }
    let message_count = engine.queue_info(&queue).map_or(0, |info| info.ready);
    let frame_max = connection.frame_max;
    let Some(state) = connection.channels.get_mut(&channel) else {
        return Ok(());
    };
    let tag = state.next_delivery_tag;
    state.next_delivery_tag += 1;
    if !get.no_ack {
        state.unacked.insert(
            tag,
            Unacked {
                queue,
                incarnation: delivery.incarnation,
                offset: delivery.offset,
                attempt: delivery.attempt,
                consumer_tag: None,
            },
        );
    }
    let message_count = message_count.min(u64::from(u32::MAX)) as u32;
    // A message published here goes out with its property bytes as stored, as basic.deliver
    // sends them (`deliver.rs`): re-encoding would change field types the generated codec
    // reads as others (`L` comes back `l`), so a get would differ from a consume.
    if let Some(stored) = super::delivery::stored(&delivery.record) {
        let method = AMQPClass::Basic(AMQPMethod::GetOk(basic::GetOk {
            delivery_tag: tag,
            redelivered: delivery.attempt > 1,
            exchange: stored.exchange.into(),
            routing_key: stored.routing_key.into(),
            message_count,
        }));
        let body = delivery.record.value.as_deref().unwrap_or_default();
        encode_stored_content(
            &mut connection.out,
            channel,
            method,
            stored.properties,
            body,
            frame_max,
        );
        return Ok(());
    }
    let rendered = render(&delivery.record);
    let method = AMQPClass::Basic(AMQPMethod::GetOk(basic::GetOk {
        delivery_tag: tag,
        redelivered: delivery.attempt > 1,
        exchange: rendered.exchange.as_str().into(),
        routing_key: rendered.routing_key.as_str().into(),
        message_count,
    }));
    let body = delivery.record.value.unwrap_or_default();
    encode_content(
        &mut connection.out,
        channel,
        method,
        rendered.properties,
        &body,
        frame_max,
    );
    Ok(())
}

/// A delivery from a consumer task: numbered and written, or requeued when its consumer or
/// channel is gone.
pub(crate) async fn deliver(connection: &mut Connection, outbound: Outbound) {
    let (channel, consumer_tag) = match outbound {
        Outbound::ConsumerGone {
            channel,
            consumer_tag,
        } => {
            consume::consumer_gone(connection, channel, consumer_tag);
            return;
        }
        Outbound::Reply {
            channel,
            consumer_tag,
            routing_key,
            properties,
            body,
        } => {
            deliver_reply(
                connection,
                channel,
                &consumer_tag,
                &routing_key,
                *properties,
                &body,
            );
            return;
        }
        Outbound::Deliver {
            channel,
            ref consumer_tag,
            ..
        } => (channel, consumer_tag.clone()),
    };
    let Outbound::Deliver {
        queue,
        no_ack,
        delivery,
        ..
    } = outbound
    else {
        return;
    };
    let frame_max = connection.frame_max;
    let live = connection
        .channels
        .get(&channel)
        .is_some_and(|s| !s.closing && s.consumers.contains_key(&consumer_tag));
    if !live {
        if let Some(state) = connection.channels.get(&channel) {
            state.flow.give_back(&consumer_tag, 1);
        }
        if !no_ack {
            let unacked = Unacked {
                queue,
                incarnation: delivery.incarnation,
                offset: delivery.offset,
                attempt: delivery.attempt,
                consumer_tag: None,
            };
            super::requeue_all(connection.engine(), vec![unacked]).await;
        }
        return;
    }
    let Some(state) = connection.channels.get_mut(&channel) else {
        return;
    };
    let tag = state.next_delivery_tag;
    state.next_delivery_tag += 1;
    if !no_ack {
        state.unacked.insert(
            tag,
            Unacked {
                queue,
                incarnation: delivery.incarnation,
                offset: delivery.offset,
                attempt: delivery.attempt,
                consumer_tag: Some(consumer_tag.clone()),
            },
        );
    }
    if let Some(stored) = super::delivery::stored(&delivery.record) {
        let deliver = crate::codec::deliver::Deliver {
            consumer_tag: &consumer_tag,
            delivery_tag: tag,
            redelivered: delivery.attempt > 1,
            exchange: stored.exchange,
            routing_key: stored.routing_key,
        };
        let body = delivery.record.value.as_deref().unwrap_or_default();
        let out = &mut connection.out;
        if crate::codec::deliver::encode_deliver(
            out,
            channel,
            &deliver,
            stored.properties,
            body,
            frame_max,
        ) {
            return;
        }
    }
    let rendered = render(&delivery.record);
    let method = AMQPClass::Basic(AMQPMethod::Deliver(basic::Deliver {
        consumer_tag: consumer_tag.as_str().into(),
        delivery_tag: tag,
        redelivered: delivery.attempt > 1,
        exchange: rendered.exchange.as_str().into(),
        routing_key: rendered.routing_key.as_str().into(),
    }));
    let body = delivery.record.value.clone().unwrap_or_default();
    encode_content(
        &mut connection.out,
        channel,
        method,
        rendered.properties,
        &body,
        frame_max,
    );
}

/// A direct reply-to reply: numbered on its channel, never acknowledged.
fn deliver_reply(
    connection: &mut Connection,
    channel: u16,
    consumer_tag: &str,
    routing_key: &str,
    properties: amq_protocol::protocol::basic::AMQPProperties,
    body: &[u8],
) {
    let frame_max = connection.frame_max;
    let Some(state) = connection.channels.get_mut(&channel) else {
        return;
    };
    if state.closing
        || state
            .reply_to
            .as_ref()
            .is_none_or(|(_, tag)| tag != consumer_tag)
    {
        return;
    }
    let tag = state.next_delivery_tag;
    state.next_delivery_tag += 1;
    let method = AMQPClass::Basic(AMQPMethod::Deliver(basic::Deliver {
        consumer_tag: consumer_tag.into(),
        delivery_tag: tag,
        redelivered: false,
        exchange: "".into(),
        routing_key: routing_key.into(),
    }));
    encode_content(
        &mut connection.out,
        channel,
        method,
        properties,
        body,
        frame_max,
    );
}

/// [`encode_content`] with properties already encoded (flags first), written as they are.
fn encode_stored_content(
    out: &mut BytesMut,
    channel: u16,
    method: AMQPClass,
    properties: &[u8],
    body: &[u8],
    frame_max: u32,
) {
    use bytes::BufMut;

    use crate::codec::{encode_body, encode_method, FRAME_END, FRAME_TYPE_HEADER};

    encode_method(out, channel, method);
    // class, weight, body size, then the properties.
    let size = 2 + 2 + 8 + properties.len();
    out.reserve(crate::codec::FRAME_HEADER_BYTES + size + 1);
    out.put_u8(FRAME_TYPE_HEADER);
    out.put_u16(channel);
    out.put_u32(size as u32);
    out.put_u16(60);
    out.put_u16(0);
    out.put_u64(body.len() as u64);
    out.put_slice(properties);
    out.put_u8(FRAME_END);
    let chunk = (frame_max as usize)
        .saturating_sub(crate::codec::FRAME_HEADER_BYTES + 1)
        .max(1);
    for piece in body.chunks(chunk) {
        encode_body(out, channel, piece);
    }
}

pub(crate) async fn content_header(
    connection: &mut Connection,
    channel: u16,
    header: AMQPContentHeader,
    encoded_properties: Option<bytes::Bytes>,
) -> Result<(), AmqpError> {
    let ids = (60, 40);
    let limit = connection.shared.config.message_bytes_max;
    // What the queue's stream will hold: body, properties and routing fields together. A
    // queue's stream takes the engine's default record limit, so a message above it is
    // refused here, as RabbitMQ refuses one above `max_message_size`, rather than nacked after
    // its body has arrived.
    let record_limit = connection.engine().stream_defaults().message_bytes_max as u64;
    let Some(state) = connection.channels.get_mut(&channel) else {
        return Err(AmqpError::connection(
            reply::CHANNEL_ERROR,
            format!("CHANNEL_ERROR - channel {channel} is not open"),
            ids,
        ));
    };
    if state.closing {
        return Ok(());
    }
    let Some(pending) = state.pending.as_mut() else {
        return Err(AmqpError::connection(
            reply::UNEXPECTED_FRAME,
            "UNEXPECTED_FRAME - a content header without basic.publish",
            ids,
        ));
    };
    if pending.header.is_some() || header.class_id != 60 {
        return Err(AmqpError::connection(
            reply::UNEXPECTED_FRAME,
            "UNEXPECTED_FRAME - a second content header",
            ids,
        ));
    }
    if header.body_size > limit {
        state.pending = None;
        return Err(AmqpError::channel(
            reply::PRECONDITION_FAILED,
            format!(
                "PRECONDITION_FAILED - message size {} is larger than the maximum {limit}",
                header.body_size
            ),
            ids,
        ));
    }
    let properties_len = encoded_properties.as_ref().map_or_else(
        || crate::codec::properties::encode(&header.properties).len(),
        bytes::Bytes::len,
    );
    let stored = super::publish::stored_bytes(&pending.publish, properties_len, header.body_size);
    if stored > record_limit {
        state.pending = None;
        return Err(AmqpError::channel(
            reply::PRECONDITION_FAILED,
            format!(
                "PRECONDITION_FAILED - message size {stored} (body {}, properties and routing \
                 key) is larger than the queue's record limit {record_limit}",
                header.body_size
            ),
            ids,
        ));
    }
    // RabbitMQ refuses a message that claims to come from another user than the one logged
    // in (it is how a consumer can trust `user_id`).
    if let Some(user_id) = header.properties.user_id() {
        if user_id.as_str() != super::connection::GUEST {
            state.pending = None;
            return Err(AmqpError::channel(
                reply::PRECONDITION_FAILED,
                format!(
                    "PRECONDITION_FAILED - user_id property set to '{}' but authenticated user was '{}'",
                    user_id.as_str(),
                    super::connection::GUEST
                ),
                ids,
            ));
        }
    }
    let empty = header.body_size == 0;
    pending.header = Some(header);
    pending.encoded_properties = encoded_properties;
    if empty {
        return super::publish::finish(connection, channel).await;
    }
    Ok(())
}

pub(crate) async fn content_body(
    connection: &mut Connection,
    channel: u16,
    body: bytes::Bytes,
) -> Result<(), AmqpError> {
    let ids = (60, 40);
    let Some(state) = connection.channels.get_mut(&channel) else {
        return Err(AmqpError::connection(
            reply::CHANNEL_ERROR,
            format!("CHANNEL_ERROR - channel {channel} is not open"),
            ids,
        ));
    };
    if state.closing {
        return Ok(());
    }
    let Some(pending) = state.pending.as_mut() else {
        return Err(AmqpError::connection(
            reply::UNEXPECTED_FRAME,
            "UNEXPECTED_FRAME - a body frame without basic.publish",
            ids,
        ));
    };
    let Some(header) = &pending.header else {
        return Err(AmqpError::connection(
            reply::UNEXPECTED_FRAME,
            "UNEXPECTED_FRAME - a body frame before the content header",
            ids,
        ));
    };
    let received = pending.received();
    let total = received as u64 + body.len() as u64;
    if total > header.body_size {
        return Err(AmqpError::connection(
            reply::FRAME_ERROR,
            "FRAME_ERROR - more body than the content header announced",
            ids,
        ));
    }
    if received == 0 && total == header.body_size {
        // The whole body in one frame, the usual case: kept as it arrived.
        pending.whole = Some(body);
    } else {
        if let Some(first) = pending.whole.take() {
            pending.body.extend_from_slice(&first);
        }
        if pending.body.is_empty() {
            pending.body.reserve(header.body_size as usize);
        }
        pending.body.extend_from_slice(&body);
    }
    if total == header.body_size {
        return super::publish::finish(connection, channel).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use amq_protocol::protocol::basic::AMQPProperties;
    use amq_protocol::types::{AMQPValue, FieldTable};

    use super::*;
    use crate::codec::properties;

    fn get_ok() -> AMQPClass {
        AMQPClass::Basic(AMQPMethod::GetOk(basic::GetOk {
            delivery_tag: 9,
            redelivered: true,
            exchange: "amq.topic".into(),
            routing_key: "a.b".into(),
            message_count: 3,
        }))
    }

    #[test]
    fn stored_content_is_what_the_generated_serialiser_writes_for_the_same_properties() {
        let mut headers = FieldTable::default();
        headers.insert("n".into(), AMQPValue::LongLongInt(-5));
        let props = AMQPProperties::default()
            .with_content_type("text/plain".into())
            .with_headers(headers)
            .with_timestamp(1_700_000_000);
        let stored = properties::encode(&props);
        for body in [Vec::new(), vec![1u8; 100], vec![2u8; 10_000]] {
            let mut generic = BytesMut::new();
            encode_content(&mut generic, 3, get_ok(), props.clone(), &body, 4096);
            let mut direct = BytesMut::new();
            encode_stored_content(&mut direct, 3, get_ok(), &stored, &body, 4096);
            assert_eq!(direct, generic);
        }
    }

    #[test]
    fn stored_content_keeps_the_field_types_as_the_client_wrote_them() {
        // Flags (headers only), then a table with one `L` (signed 64-bit) field: the
        // generated codec would write it back as `l`.
        let mut stored = vec![0x20, 0x00, 0, 0, 0, 11, 1, b'n', b'L'];
        stored.extend_from_slice(&(-5i64).to_be_bytes());
        assert!(properties::decode(&stored).is_some());
        let mut direct = BytesMut::new();
        encode_stored_content(&mut direct, 3, get_ok(), &stored, b"x", 4096);
        let found = direct
            .windows(stored.len())
            .any(|window| window == stored.as_slice());
        assert!(found, "the stored property bytes are sent as they are");
    }
}
