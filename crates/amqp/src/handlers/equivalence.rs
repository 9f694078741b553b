//! Re-declaring a queue that exists must not contradict it: RabbitMQ compares the flags
//! (`durable`, `exclusive`, `auto_delete`) and every argument, sent or left out, and answers
//! a difference with 406 PRECONDITION_FAILED "inequivalent arg '…' for queue '…' in vhost
//! '/': received … but current is …". So do we, with two choices:
//!
//! - the flags are compared with what this door recorded when it created the queue (in
//!   memory); for a queue it did not create in this process (made over HTTP, or durable and
//!   back from a restart) `durable` is read from the engine queue's durability (transient
//!   ones do not survive a start) and `exclusive` taken as false, and `auto_delete` is not
//!   compared (the mark did not survive the restart);
//! - the arguments the engine keeps (`x-message-ttl`, `x-max-length`, `x-max-length-bytes`,
//!   `x-delivery-limit`, `x-overflow`, `x-dead-letter-exchange`, `-routing-key`) are all
//!   compared for a queue the AMQP door made (its lease is the door's); for a queue made
//!   through another door, only those the client sends, so it can still be declared by name;
//! - the arguments only this door keeps (`x-expires`, `x-max-priority`, `x-queue-type`,
//!   `x-single-active-consumer`) are compared with the declaration that created the queue
//!   (in memory, like the flags, and for a durable queue stored with it and brought back at
//!   start, `declared.rs`); `x-queue-type` left out counts as `classic`, as RabbitMQ counts
//!   it.
//!
//! Exchanges (`check_exchange`): RabbitMQ compares `type`, `durable`, `auto_delete`,
//! `internal` and the `alternate-exchange` argument, in that order, with the same wording
//! ("… for exchange '…' in vhost '/' …"). The built-in exchanges are compared on their type
//! only (the engine does not record the flags RabbitMQ gives them).

use std::collections::BTreeMap;

use amq_protocol::protocol::{exchange, queue};
use amq_protocol::types::FieldTable;
use omnibus_engine::exchanges::ExchangeSpec;
use omnibus_engine::queue::{Overflow, QueueDurability};

use super::queue::{queue_spec, LEASE_MS};
use super::Connection;
use crate::codec::properties::{table_as_text, value_as_text};
use crate::error::{reply, AmqpError};

/// Queue arguments the engine does not keep; the door remembers them for re-declarations
/// (and stores them with a durable queue, `declared.rs`).
pub(crate) const DOOR_ARGUMENTS: [&str; 4] = [
    "x-expires",
    "x-max-priority",
    "x-queue-type",
    "x-single-active-consumer",
];

/// What a queue's declaration said of [`DOOR_ARGUMENTS`], as text.
pub(crate) fn door_arguments(arguments: &FieldTable) -> BTreeMap<&'static str, String> {
    DOOR_ARGUMENTS
        .iter()
        .filter_map(|&key| {
            let text = arguments.inner().get(key).and_then(value_as_text)?;
            Some((key, text))
        })
        .collect()
}

/// `x-queue-type` left out is a classic queue.
fn queue_argument(arguments: &BTreeMap<&'static str, String>, key: &str) -> Option<String> {
    arguments
        .get(key)
        .cloned()
        .or_else(|| (key == "x-queue-type").then(|| "classic".to_string()))
}

fn inequivalent(
    argument: &str,
    what: &str,
    name: &str,
    received: String,
    current: String,
    ids: (u16, u16),
) -> AmqpError {
    // RabbitMQ names the type of a value the other side lacks ("received none but current
    // is the value '10' of type 'signedint'"); two values it shows bare.
    let (received, current) = match (received.as_str(), current.as_str()) {
        ("none", other) if other != "none" => (received, typed(&current)),
        (other, "none") if other != "none" => (typed(&received), current),
        _ => (received, current),
    };
    AmqpError::channel(
        reply::PRECONDITION_FAILED,
        format!(
            "PRECONDITION_FAILED - inequivalent arg '{argument}' for {what} '{name}' in vhost '/': received {received} but current is {current}"
        ),
        ids,
    )
}

fn shown(value: Option<String>) -> String {
    value.map_or("none".to_string(), |v| format!("'{v}'"))
}

/// A re-declaration of an existing exchange, compared as RabbitMQ compares it.
pub(crate) fn check_exchange(
    existing: &ExchangeSpec,
    declare: &exchange::Declare,
    ids: (u16, u16),
) -> Result<(), AmqpError> {
    let name = existing.name.as_str();
    let fail = |argument: &str, received: String, current: String| {
        inequivalent(argument, "exchange", name, received, current, ids)
    };
    let kind = declare.kind.as_str();
    if kind != existing.kind.as_str() {
        return Err(fail(
            "type",
            format!("'{kind}'"),
            format!("'{}'", existing.kind.as_str()),
        ));
    }
    if name.is_empty() || name.starts_with("amq.") {
        return Ok(());
    }
    let flags = [
        ("durable", declare.durable, existing.durable),
        ("auto_delete", declare.auto_delete, existing.auto_delete),
        ("internal", declare.internal, existing.internal),
    ];
    for (flag, received, current) in flags {
        if received != current {
            return Err(fail(flag, format!("'{received}'"), format!("'{current}'")));
        }
    }
    let alternate = table_as_text(&declare.arguments).remove("alternate-exchange");
    if alternate != existing.alternate_exchange {
        return Err(fail(
            "alternate-exchange",
            shown(alternate),
            shown(existing.alternate_exchange.clone()),
        ));
    }
    Ok(())
}

/// `'10'` as RabbitMQ shows a lone value: `the value '10' of type 'signedint'`. The type is
/// the one clients send for such a value (the door keeps values, not their wire types).
fn typed(shown: &str) -> String {
    let value = shown.trim_matches('\'');
    let kind = match value {
        "true" | "false" => "bool",
        _ => match value.parse::<i64>() {
            Ok(n) if i32::try_from(n).is_ok() => "signedint",
            Ok(_) => "long",
            Err(_) => "longstr",
        },
    };
    format!("the value '{value}' of type '{kind}'")
}

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
        inequivalent(argument, "queue", amqp_name, received, current, ids)
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
    let current_durable = owner
        .as_ref()
        .map_or(info.config.durability == QueueDurability::Durable, |o| {
            o.durable
        });
    let flags = [
        ("durable", declare.durable, Some(current_durable)),
        ("exclusive", declare.exclusive, Some(current_exclusive)),
        (
            "auto_delete",
            declare.auto_delete,
            owner.as_ref().map(|o| o.auto_delete),
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

    if let Some(owner) = &owner {
        let received_arguments = door_arguments(&declare.arguments);
        for key in DOOR_ARGUMENTS {
            let received = queue_argument(&received_arguments, key);
            let current = queue_argument(&owner.door_arguments, key);
            if received != current {
                // Compared with `classic` for a type left out, shown as RabbitMQ shows it.
                return Err(inequivalent(
                    key,
                    shown(received_arguments.get(key).cloned()),
                    shown(owner.door_arguments.get(key).cloned()),
                ));
            }
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
    let (wanted, route) = queue_spec(queue, &declare.arguments, ids)?;
    let config = &info.config;
    let limit = |max_deliver: u32| (max_deliver != u32::MAX).then(|| max_deliver - 1);
    let overflow_name = |overflow: Overflow| match overflow {
        Overflow::RejectNew => "reject-publish",
        Overflow::DeadLetterNew => "reject-publish-dlx",
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
