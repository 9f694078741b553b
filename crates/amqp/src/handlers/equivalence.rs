//! Re-declaring a queue that exists must not contradict it: RabbitMQ compares the flags
//! (`durable`, `exclusive`, `auto_delete`) and every argument, sent or left out, and answers
//! a difference with 406 PRECONDITION_FAILED "inequivalent arg '…' for queue '…' in vhost
//! '/': received … but current is …". So do we, with two choices:
//!
//! - the flags are compared with what this door recorded when it created the queue (in
//!   memory); for a queue it did not create in this process (made over HTTP, or durable and
//!   back from a restart) `durable` is taken as true (engine queues are durable, transient
//!   ones do not survive a start) and `exclusive` as false, and `auto_delete` is not compared
//!   (the mark did not survive the restart);
//! - the arguments the engine keeps (`x-message-ttl`, `x-max-length`, `x-max-length-bytes`,
//!   `x-delivery-limit`, `x-overflow`, `x-dead-letter-exchange`, `-routing-key`) are all
//!   compared for a queue the AMQP door made (its lease is the door's); for a queue made
//!   through another door, only those the client sends, so it can still be declared by name.
//!   `x-expires`, `x-single-active-consumer`, `x-max-priority` and `x-queue-type` are not
//!   compared.

use amq_protocol::protocol::queue;
use omnibus_engine::queue::Overflow;

use super::queue::{queue_spec, LEASE_MS};
use super::Connection;
use crate::codec::properties::value_as_text;
use crate::error::{reply, AmqpError};

pub(crate) fn check(
    connection: &Connection,
    queue: &str,
    amqp_name: &str,
    declare: &queue::Declare,
    ids: (u16, u16),
) -> Result<(), AmqpError> {
    let Ok(info) = connection.engine().queue_info(queue) else {
        return Ok(());
    };
    let inequivalent = |argument: &str, received: String, current: String| {
        AmqpError::channel(
            reply::PRECONDITION_FAILED,
            format!(
                "PRECONDITION_FAILED - inequivalent arg '{argument}' for queue '{amqp_name}' in vhost '/': received {received} but current is {current}"
            ),
            ids,
        )
    };
    let owner = connection
        .shared
        .owners
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(queue)
        .cloned()
        .filter(|owner| owner.declared_here);
    let current_exclusive = owner.as_ref().is_some_and(|o| o.exclusive_to.is_some());
    let current_durable = owner.as_ref().is_none_or(|o| o.durable);
    let flags = [
        ("durable", declare.durable, Some(current_durable)),
        ("exclusive", declare.exclusive, Some(current_exclusive)),
        (
            "auto_delete",
            declare.auto_delete,
            owner.map(|o| o.auto_delete),
        ),
    ];
    for (flag, received, current) in flags {
        if let Some(current) = current.filter(|current| *current != received) {
            return Err(inequivalent(
                flag,
                format!("'{received}'"),
                format!("'{current}'"),
            ));
        }
    }

    let table = declare.arguments.inner();
    let every_argument = info.config.lease_ms == LEASE_MS;
    let compared = |key: &str| every_argument || table.contains_key(key);
    let received = |key: &str| {
        table
            .get(key)
            .and_then(value_as_text)
            .map_or("none".to_string(), |text| format!("'{text}'"))
    };
    let shown = |value: Option<String>| value.map_or("none".to_string(), |v| format!("'{v}'"));
    let (wanted, route) = queue_spec(queue, &declare.arguments, ids)?;
    let config = &info.config;
    let limit = |max_deliver: u32| (max_deliver != u32::MAX).then(|| max_deliver - 1);
    let overflow_name = |overflow: Overflow| match overflow {
        Overflow::RejectNew => "reject-publish",
        Overflow::DropOldest | Overflow::DeadLetterOldest => "drop-head",
    };
    let current_route = connection.engine().dead_letter_route(queue);
    let numbers = [
        ("x-message-ttl", wanted.ttl_ms, config.ttl_ms),
        ("x-max-length", wanted.max_length, config.max_length),
        ("x-max-length-bytes", wanted.max_bytes, config.max_bytes),
        (
            "x-delivery-limit",
            wanted.max_deliver.and_then(limit).map(u64::from),
            limit(config.max_deliver).map(u64::from),
        ),
    ];
    for (argument, wanted, current) in numbers {
        if compared(argument) && wanted != current {
            return Err(inequivalent(
                argument,
                received(argument),
                shown(current.map(|v| v.to_string())),
            ));
        }
    }
    let wanted_overflow = wanted.overflow.map(overflow_name);
    if compared("x-overflow") && wanted_overflow != Some(overflow_name(config.overflow)) {
        return Err(inequivalent(
            "x-overflow",
            received("x-overflow"),
            shown(Some(overflow_name(config.overflow).to_string())),
        ));
    }
    let exchange = |r: &Option<omnibus_engine::exchanges::DeadLetterRoute>| {
        r.as_ref().map(|r| r.exchange.clone())
    };
    if compared("x-dead-letter-exchange") && exchange(&route) != exchange(&current_route) {
        return Err(inequivalent(
            "x-dead-letter-exchange",
            received("x-dead-letter-exchange"),
            shown(exchange(&current_route)),
        ));
    }
    let key = |r: &Option<omnibus_engine::exchanges::DeadLetterRoute>| {
        r.as_ref().and_then(|r| r.routing_key.clone())
    };
    if compared("x-dead-letter-routing-key") && key(&route) != key(&current_route) {
        return Err(inequivalent(
            "x-dead-letter-routing-key",
            received("x-dead-letter-routing-key"),
            shown(key(&current_route)),
        ));
    }
    Ok(())
}
