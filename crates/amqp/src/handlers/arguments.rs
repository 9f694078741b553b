//! A new queue's declare arguments, checked as RabbitMQ 3.10 checks them: in its order,
//! answered with its words (406 PRECONDITION_FAILED), so a client's misconfiguration reads
//! the same here as there. The texts are RabbitMQ's Erlang terms as it prints them
//! (`{value_negative,-1}`, `"expected integer, got longstr"` with its quotes), read from a
//! RabbitMQ 3.10 answering the same declarations (`scripts/differential/amqp_routing.py`'s
//! companion probes; docs/amqp.md "Errors").
//!
//! The order: the dead-letter exchange's type (RabbitMQ's channel looks at it first), the
//! queue type, the flags a quorum queue refuses, the arguments the queue type does not take,
//! then each argument's value in RabbitMQ's list order. A re-declaration of an existing queue
//! is not checked here but compared with the queue (`equivalence.rs`), as RabbitMQ does.
//!
//! Our choices: `x-delivery-limit` is taken on classic queues too (the engine bounds any
//! queue's deliveries; RabbitMQ 3.10 takes it on quorum queues only), and a negative limit
//! means no limit, as RabbitMQ 4 reads it. `x-queue-type: stream` is refused (`queue.rs`).

use amq_protocol::types::{AMQPValue, FieldTable};

use crate::codec::properties::{integer, string as text, type_name};
use crate::error::{reply, AmqpError};

/// The longest TTL or expiry RabbitMQ takes: ten years in milliseconds.
const EXPIRY_MS_MAX: i64 = 315_360_000_000;
/// The highest `x-max-priority` RabbitMQ takes.
const MAX_PRIORITY_MAX: i64 = 255;

/// The arguments a classic queue takes, among those RabbitMQ knows.
const CLASSIC: &[&str] = &[
    "x-expires",
    "x-message-ttl",
    "x-dead-letter-exchange",
    "x-dead-letter-routing-key",
    "x-max-length",
    "x-max-length-bytes",
    "x-max-priority",
    "x-overflow",
    "x-queue-mode",
    "x-single-active-consumer",
    "x-queue-type",
    "x-queue-master-locator",
    // Ours (module comment).
    "x-delivery-limit",
];
/// The arguments a quorum queue takes.
const QUORUM: &[&str] = &[
    "x-dead-letter-exchange",
    "x-dead-letter-routing-key",
    "x-dead-letter-strategy",
    "x-expires",
    "x-max-length",
    "x-max-length-bytes",
    "x-max-in-memory-length",
    "x-max-in-memory-bytes",
    "x-overflow",
    "x-single-active-consumer",
    "x-queue-type",
    "x-quorum-initial-group-size",
    "x-delivery-limit",
    "x-message-ttl",
    "x-queue-leader-locator",
];
/// The arguments only a stream queue takes (refused here with the stream type itself).
const STREAM: &[&str] = &[
    "x-max-age",
    "x-stream-max-segment-size-bytes",
    "x-initial-cluster-size",
];

/// The flags of the queue being declared.
pub(crate) struct Flags {
    pub durable: bool,
    pub exclusive: bool,
    pub auto_delete: bool,
}

/// Checks a new queue's arguments; the first failure is the channel exception.
pub(crate) fn check(
    arguments: &FieldTable,
    amqp_name: &str,
    flags: &Flags,
    ids: (u16, u16),
) -> Result<(), AmqpError> {
    let table = arguments.inner();
    let refuse = |text: String| {
        AmqpError::channel(
            reply::PRECONDITION_FAILED,
            format!("PRECONDITION_FAILED - {text}"),
            ids,
        )
    };
    let invalid = |key: &str, error: String| {
        refuse(format!(
            "invalid arg '{key}' for queue '{amqp_name}' in vhost '/': {error}"
        ))
    };
    if let Some(value) = table.get("x-dead-letter-exchange") {
        if text(value).is_none() {
            return Err(refuse(format!(
                "invalid type '{}' for arg 'x-dead-letter-exchange' in queue '{amqp_name}' in vhost '/'",
                type_name(value)
            )));
        }
    }
    let kind = match table.get("x-queue-type") {
        None => "classic".to_string(),
        Some(value) => match text(value) {
            Some(kind) if ["classic", "quorum", "stream"].contains(&kind.as_str()) => kind,
            Some(other) => {
                return Err(invalid(
                    "x-queue-type",
                    format!("\"unsupported queue type '{other}'\""),
                ))
            }
            None => return Err(invalid("x-queue-type", unacceptable(value))),
        },
    };
    if kind == "quorum" {
        for (refused, property) in [
            (flags.auto_delete, "auto-delete"),
            (flags.exclusive, "exclusive-owner"),
            (!flags.durable, "non-durable"),
        ] {
            if refused {
                return Err(refuse(format!(
                    "invalid property '{property}' for queue '{amqp_name}' in vhost '/'"
                )));
            }
        }
    }
    let taken = match kind.as_str() {
        "quorum" => QUORUM,
        "classic" => CLASSIC,
        // Refused as a whole by `queue.rs`, with what to use instead.
        _ => return Ok(()),
    };
    for key in table.keys() {
        let key = key.as_str();
        let known = CLASSIC.contains(&key) || QUORUM.contains(&key) || STREAM.contains(&key);
        if known && !taken.contains(&key) {
            return Err(refuse(format!(
                "invalid arg '{key}' for queue '{amqp_name}' in vhost '/' of queue type rabbit_{kind}_queue"
            )));
        }
    }
    for (key, check) in VALUE_CHECKS {
        if let Some(value) = table.get(*key) {
            if let Err(error) = check(value, arguments) {
                return Err(invalid(key, error));
            }
        }
    }
    Ok(())
}

type ValueCheck = fn(&AMQPValue, &FieldTable) -> Result<(), String>;

/// RabbitMQ's `declare_args()`, in its order.
const VALUE_CHECKS: &[(&str, ValueCheck)] = &[
    ("x-expires", expires),
    ("x-message-ttl", message_ttl),
    ("x-dead-letter-routing-key", dead_letter_routing_key),
    ("x-max-length", non_negative),
    ("x-max-length-bytes", non_negative),
    ("x-max-in-memory-length", non_negative),
    ("x-max-in-memory-bytes", non_negative),
    ("x-max-priority", max_priority),
    ("x-overflow", overflow),
    ("x-queue-mode", queue_mode),
    ("x-single-active-consumer", single_active_consumer),
    ("x-delivery-limit", delivery_limit),
];

fn whole(value: &AMQPValue) -> Result<i64, String> {
    match value {
        // RabbitMQ's integer types; a timestamp is not among them.
        AMQPValue::Timestamp(_) => Err(format!("\"expected integer, got {}\"", type_name(value))),
        _ => {
            integer(value).ok_or_else(|| format!("\"expected integer, got {}\"", type_name(value)))
        }
    }
}

fn expiry(n: i64) -> Result<(), String> {
    if n < 0 {
        Err(format!("{{value_negative,{n}}}"))
    } else if n > EXPIRY_MS_MAX {
        Err(format!("{{value_too_large,{n}}}"))
    } else {
        Ok(())
    }
}

fn expires(value: &AMQPValue, _: &FieldTable) -> Result<(), String> {
    match whole(value)? {
        0 => Err("{value_zero,0}".into()),
        n => expiry(n),
    }
}

fn message_ttl(value: &AMQPValue, _: &FieldTable) -> Result<(), String> {
    expiry(whole(value)?)
}

fn non_negative(value: &AMQPValue, _: &FieldTable) -> Result<(), String> {
    match whole(value)? {
        n if n < 0 => Err(format!("{{value_negative,{n}}}")),
        _ => Ok(()),
    }
}

fn max_priority(value: &AMQPValue, _: &FieldTable) -> Result<(), String> {
    match whole(value)? {
        n if n < 0 => Err(format!("{{value_negative,{n}}}")),
        n if n > MAX_PRIORITY_MAX => Err(format!("{{max_value_exceeded,{n}}}")),
        _ => Ok(()),
    }
}

fn dead_letter_routing_key(value: &AMQPValue, arguments: &FieldTable) -> Result<(), String> {
    text(value).ok_or_else(|| unacceptable(value))?;
    if arguments.inner().contains_key("x-dead-letter-exchange") {
        Ok(())
    } else {
        Err("routing_key_but_no_dlx_defined".into())
    }
}

fn overflow(value: &AMQPValue, _: &FieldTable) -> Result<(), String> {
    match text(value).ok_or_else(|| unacceptable(value))?.as_str() {
        "drop-head" | "reject-publish" | "reject-publish-dlx" => Ok(()),
        _ => Err("invalid_overflow".into()),
    }
}

fn queue_mode(value: &AMQPValue, _: &FieldTable) -> Result<(), String> {
    match text(value).ok_or_else(|| unacceptable(value))?.as_str() {
        "default" | "lazy" => Ok(()),
        other => Err(format!("\"unsupported queue mode '{other}'\"")),
    }
}

fn single_active_consumer(value: &AMQPValue, _: &FieldTable) -> Result<(), String> {
    match value {
        AMQPValue::Boolean(_) => Ok(()),
        other => Err(unacceptable(other)),
    }
}

fn delivery_limit(value: &AMQPValue, _: &FieldTable) -> Result<(), String> {
    whole(value).map(|_| ()).map_err(|_| unacceptable(value))
}

fn unacceptable(value: &AMQPValue) -> String {
    format!("{{unacceptable_type,{}}}", type_name(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn declare(pairs: &[(&str, AMQPValue)], durable: bool) -> Option<String> {
        let mut table = FieldTable::default();
        for (key, value) in pairs {
            table.insert((*key).into(), value.clone());
        }
        let flags = Flags {
            durable,
            exclusive: false,
            auto_delete: false,
        };
        check(&table, "q", &flags, (50, 10))
            .err()
            .map(|error| error.to_string())
    }

    fn long(text: &str) -> AMQPValue {
        AMQPValue::LongString(text.into())
    }

    #[test]
    fn values_are_refused_in_rabbitmqs_words() {
        let cases: Vec<(Vec<(&str, AMQPValue)>, &str)> = vec![
            (vec![("x-message-ttl", AMQPValue::LongInt(-1))], "invalid arg 'x-message-ttl' for queue 'q' in vhost '/': {value_negative,-1}"),
            (vec![("x-message-ttl", long("x"))], "invalid arg 'x-message-ttl' for queue 'q' in vhost '/': \"expected integer, got longstr\""),
            (vec![("x-message-ttl", AMQPValue::LongLongInt(1 << 40))], "{value_too_large,1099511627776}"),
            (vec![("x-expires", AMQPValue::LongInt(0))], "invalid arg 'x-expires' for queue 'q' in vhost '/': {value_zero,0}"),
            (vec![("x-max-priority", AMQPValue::LongInt(256))], "{max_value_exceeded,256}"),
            (vec![("x-max-priority", AMQPValue::Boolean(true))], "\"expected integer, got bool\""),
            (vec![("x-overflow", AMQPValue::LongInt(1))], "invalid arg 'x-overflow' for queue 'q' in vhost '/': {unacceptable_type,signedint}"),
            (vec![("x-overflow", long("lazy"))], ": invalid_overflow"),
            (vec![("x-dead-letter-exchange", AMQPValue::LongInt(1))], "invalid type 'signedint' for arg 'x-dead-letter-exchange' in queue 'q' in vhost '/'"),
            (vec![("x-dead-letter-routing-key", long("k"))], "routing_key_but_no_dlx_defined"),
            (vec![("x-queue-type", long("x"))], "\"unsupported queue type 'x'\""),
            (vec![("x-queue-mode", long("x"))], "\"unsupported queue mode 'x'\""),
            (vec![("x-single-active-consumer", long("x"))], "{unacceptable_type,longstr}"),
            (vec![("x-max-age", long("1D"))], "invalid arg 'x-max-age' for queue 'q' in vhost '/' of queue type rabbit_classic_queue"),
            (vec![("x-queue-type", long("quorum")), ("x-max-priority", AMQPValue::LongInt(5))], "of queue type rabbit_quorum_queue"),
            // RabbitMQ's order: the expiry before the length, the DLX type before everything.
            (vec![("x-max-length", AMQPValue::LongInt(-1)), ("x-expires", AMQPValue::LongInt(0))], "'x-expires'"),
            (vec![("x-expires", AMQPValue::LongInt(0)), ("x-dead-letter-exchange", AMQPValue::LongInt(1))], "invalid type 'signedint'"),
        ];
        for (pairs, expected) in cases {
            let refused = declare(&pairs, true).unwrap_or_default();
            assert!(refused.contains(expected), "{pairs:?}: {refused}");
        }
    }

    #[test]
    fn good_values_and_unknown_arguments_pass() {
        assert_eq!(
            declare(&[("x-max-priority", AMQPValue::LongInt(255))], true),
            None
        );
        assert_eq!(
            declare(
                &[("x-message-ttl", AMQPValue::LongLongInt(EXPIRY_MS_MAX))],
                true
            ),
            None
        );
        assert_eq!(declare(&[("x-unknown", long("whatever"))], true), None);
        assert_eq!(
            declare(&[("x-delivery-limit", AMQPValue::LongInt(-1))], true),
            None
        );
        assert_eq!(
            declare(
                &[
                    ("x-queue-type", long("quorum")),
                    ("x-delivery-limit", AMQPValue::LongInt(3))
                ],
                true
            ),
            None
        );
    }

    #[test]
    fn a_quorum_queue_refuses_auto_delete_then_exclusive_then_non_durable() {
        let refused = declare(&[("x-queue-type", long("quorum"))], false).unwrap_or_default();
        assert!(
            refused.contains("invalid property 'non-durable' for queue 'q' in vhost '/'"),
            "{refused}"
        );
        let mut table = FieldTable::default();
        table.insert("x-queue-type".into(), long("quorum"));
        let flags = Flags {
            durable: false,
            exclusive: true,
            auto_delete: true,
        };
        let refused = check(&table, "q", &flags, (50, 10))
            .unwrap_err()
            .to_string();
        assert!(refused.contains("'auto-delete'"), "{refused}");
    }
}
