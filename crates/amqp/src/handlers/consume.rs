//! basic.consume and basic.cancel.
//!
//! The spec and RabbitMQ: the client may choose the consumer tag (kombu uses `None1`,
//! `None2`… and `nowait` for all but the last); an empty tag gets a server-made
//! `amq.ctag-…`; a tag in use on the channel is 530 NOT_ALLOWED (a connection exception); a
//! missing queue is 404. basic.consume-ok is written before the first delivery, since the
//! consumer's task can only hand its deliveries to the session after this handler returns.
//! When a queue is deleted under a consumer, the client gets basic.cancel
//! (`consumer_cancel_notify`). An auto-delete queue is deleted when its last consumer goes.

use std::sync::Arc;

use amq_protocol::protocol::basic::{self, AMQPMethod};
use amq_protocol::protocol::AMQPClass;

use super::consumer::{ConsumerTask, Stop};
use super::queue::{check_exclusive, count_consumer, delete_queue_everywhere, existing_queue};
use super::{reply_to, Connection, ConsumerHandle};
use crate::error::{reply, AmqpError};

/// How long a channel's release waits for a consumer task to end; a task stuck handing a
/// delivery to a full session is left to finish on its own (what it hands over after its
/// channel is gone is requeued).
const STOP_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

pub(crate) async fn consume(
    connection: &mut Connection,
    channel: u16,
    consume: basic::Consume,
    ids: (u16, u16),
) -> Result<(), AmqpError> {
    if consume.queue.as_str() == reply_to::PSEUDO_QUEUE {
        return consume_replies(connection, channel, consume, ids);
    }
    let queue = existing_queue(connection, consume.queue.as_str(), ids)?;
    check_exclusive(connection, &queue, consume.queue.as_str(), ids)?;
    check_exclusive_use(
        connection,
        &queue,
        consume.queue.as_str(),
        consume.exclusive,
        ids,
    )?;
    let engine = connection.engine().clone();
    let outbound = connection.outbound.clone();
    let connection_id = connection.id;
    let consumers_max = connection.shared.config.consumers_per_channel_max;
    let Some(state) = connection.channels.get_mut(&channel) else {
        return Ok(());
    };
    let tag = if consume.consumer_tag.as_str().is_empty() {
        let number = state.next_consumer_number;
        state.next_consumer_number += 1;
        format!("amq.ctag-{connection_id}-{channel}-{number}")
    } else {
        consume.consumer_tag.as_str().to_string()
    };
    if state.consumers.len() >= consumers_max {
        return Err(AmqpError::connection(
            reply::NOT_ALLOWED,
            format!("NOT_ALLOWED - reached maximum ({consumers_max}) of consumers per channel"),
            ids,
        ));
    }
    if state.consumers.contains_key(&tag) {
        return Err(AmqpError::connection(
            reply::NOT_ALLOWED,
            format!("NOT_ALLOWED - attempt to reuse consumer tag '{tag}'"),
            ids,
        ));
    }
    let stop = Arc::new(Stop::default());
    let turn = connection
        .shared
        .owners
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&queue)
        .and_then(|owner| owner.single_active.as_ref())
        .map(|single_active| single_active.join());
    // The queue checked above: the consumer ends when it is deleted, even if a namesake
    // is declared at once (RabbitMQ cancels the consumers of a deleted queue).
    let removal = engine
        .queue_removal(&queue)
        .map_err(|error| super::exchange::engine_error(error, ids))?;
    state.flow.add_consumer(&tag, state.consumer_prefetch);
    let task = ConsumerTask {
        engine,
        queue: queue.clone(),
        removal,
        worker: format!("amqp-{connection_id}-{channel}-{tag}"),
        channel,
        consumer_tag: tag.clone(),
        no_ack: consume.no_ack,
        flow: state.flow.clone(),
        stop: stop.clone(),
        outbound,
        rotations: connection.shared.rotations.clone(),
        turn,
    };
    let flow = state.flow.clone();
    count_consumer(&connection.shared, &queue, true);
    if consume.exclusive {
        set_exclusive_use(connection, &queue, true);
    }
    if !consume.nowait {
        connection.send(
            channel,
            AMQPClass::Basic(AMQPMethod::ConsumeOk(basic::ConsumeOk {
                consumer_tag: tag.as_str().into(),
            })),
        );
    }
    // Spawned after consume-ok is in the write buffer: its deliveries come after it.
    let task = task.spawn();
    if let Some(state) = connection.channels.get_mut(&channel) {
        state.consumers.insert(
            tag.clone(),
            ConsumerHandle {
                queue,
                tag,
                stop,
                flow,
                task,
                exclusive: consume.exclusive,
            },
        );
    }
    Ok(())
}

/// basic.consume of `amq.rabbitmq.reply-to`: no queue and no task, a token for the channel.
fn consume_replies(
    connection: &mut Connection,
    channel: u16,
    consume: basic::Consume,
    ids: (u16, u16),
) -> Result<(), AmqpError> {
    if !consume.no_ack {
        return Err(AmqpError::channel(
            reply::PRECONDITION_FAILED,
            "PRECONDITION_FAILED - reply consumer cannot acknowledge",
            ids,
        ));
    }
    let Some(state) = connection.channels.get(&channel) else {
        return Ok(());
    };
    if state.reply_to.is_some() {
        return Err(AmqpError::channel(
            reply::PRECONDITION_FAILED,
            "PRECONDITION_FAILED - reply consumer already set",
            ids,
        ));
    }
    let tag = if consume.consumer_tag.as_str().is_empty() {
        format!("amq.ctag-{}-{channel}-reply", connection.id)
    } else {
        consume.consumer_tag.as_str().to_string()
    };
    reply_to::register(connection, channel, &tag);
    if !consume.nowait {
        connection.send(
            channel,
            AMQPClass::Basic(AMQPMethod::ConsumeOk(basic::ConsumeOk {
                consumer_tag: tag.as_str().into(),
            })),
        );
    }
    Ok(())
}

pub(crate) async fn cancel(
    connection: &mut Connection,
    channel: u16,
    cancel: basic::Cancel,
) -> Result<(), AmqpError> {
    let tag = cancel.consumer_tag.as_str().to_string();
    let reply_token =
        connection
            .channels
            .get_mut(&channel)
            .and_then(|state| match &state.reply_to {
                Some((_, consumer)) if *consumer == tag => state.reply_to.take(),
                _ => None,
            });
    if let Some((token, _)) = reply_token {
        reply_to::forget(connection, &token);
    }
    let handle = connection
        .channels
        .get_mut(&channel)
        .and_then(|state| state.consumers.remove(&tag));
    if let Some(handle) = handle {
        stop_consumer(connection, handle, false).await;
    }
    // Cancelling an unknown tag is not an error (the spec).
    if !cancel.nowait {
        connection.send(
            channel,
            AMQPClass::Basic(AMQPMethod::CancelOk(basic::CancelOk {
                consumer_tag: tag.as_str().into(),
            })),
        );
    }
    Ok(())
}

/// Stops a consumer's task and counts it out of its queue; the queue goes if it was
/// auto-delete and this was its last consumer. With `wait`, returns once the task has
/// ended (within `STOP_WAIT`: an idle consumer stops at once, one handing over to a full
/// session may not), so that what the caller requeues
/// next cannot be leased by it again.
pub(crate) async fn stop_consumer(connection: &mut Connection, handle: ConsumerHandle, wait: bool) {
    handle.stop.stop();
    handle.flow.remove_consumer(&handle.tag);
    if handle.exclusive {
        set_exclusive_use(connection, &handle.queue, false);
    }
    if wait {
        let _ = tokio::time::timeout(STOP_WAIT, handle.task).await;
    }
    if count_consumer(&connection.shared, &handle.queue, false) {
        delete_queue_everywhere(&connection.shared, &handle.queue).await;
        connection.exclusive_queues.retain(|q| *q != handle.queue);
    }
}

/// 403 ACCESS_REFUSED when another consumer holds the queue for exclusive use, or when one
/// asks for exclusive use of a queue that has consumers (RabbitMQ).
fn check_exclusive_use(
    connection: &Connection,
    queue: &str,
    amqp_name: &str,
    exclusive: bool,
    ids: (u16, u16),
) -> Result<(), AmqpError> {
    let owners = connection
        .shared
        .owners
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let owner = owners.get(queue);
    let held = owner.is_some_and(|o| o.exclusive_consumer);
    let busy = owner.is_some_and(|o| o.consumers > 0);
    if held || (exclusive && busy) {
        return Err(AmqpError::channel(
            reply::ACCESS_REFUSED,
            format!("ACCESS_REFUSED - queue '{amqp_name}' in vhost '/' in exclusive use"),
            ids,
        ));
    }
    Ok(())
}

fn set_exclusive_use(connection: &Connection, queue: &str, exclusive: bool) {
    let mut owners = connection
        .shared
        .owners
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    owners
        .entry(queue.to_string())
        .or_default()
        .exclusive_consumer = exclusive;
}

/// The queue is gone: the client is told its consumer was cancelled.
pub(crate) fn consumer_gone(connection: &mut Connection, channel: u16, tag: String) {
    let Some(state) = connection.channels.get_mut(&channel) else {
        return;
    };
    if state.consumers.remove(&tag).is_none() {
        return;
    }
    state.flow.remove_consumer(&tag);
    connection.send(
        channel,
        AMQPClass::Basic(AMQPMethod::Cancel(basic::Cancel {
            consumer_tag: tag.as_str().into(),
            nowait: true,
        })),
    );
}
