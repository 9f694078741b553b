//! Turning an engine delivery into AMQP content, and giving deliveries back.
//!
//! A message published here carries its properties in `amqp.properties` (see
//! `codec/properties.rs`) and its exchange and routing key in `omnibus.exchange` and
//! `omnibus.routing_key`; basic.deliver and basic.get-ok name those (Celery's retries publish
//! back using them). `redelivered` is set from the second attempt on.
//!
//! A dead letter (it has `omnibus.dlq.*` headers from the engine) gets RabbitMQ's `x-death`
//! header: an array of tables, newest first, one per (queue, reason) with `count` (a signed
//! 64-bit `l`), `reason` (`rejected`, `expired`, `maxlen`, `delivery_limit`), `queue`,
//! `time`, `exchange` and `routing-keys`; and `x-first-death-reason`, `-queue` and
//! `-exchange`, set once.

use std::sync::Arc;

use amq_protocol::protocol::basic::AMQPProperties;
use amq_protocol::types::{AMQPValue, FieldArray, FieldTable, LongString, ShortString};
use omnibus_engine::exchanges::{
    DEAD_LETTER_EXCHANGE_HEADER, DEAD_LETTER_ROUTING_KEY_HEADER, EXCHANGE_HEADER,
    ROUTING_KEY_HEADER,
};
use omnibus_engine::Engine;
use omnibus_types::Record;

use super::Unacked;
use crate::codec::properties::{self, PROPERTIES_HEADER};
use crate::names;

/// What a delivery needs on the wire.
pub(crate) struct Rendered {
    pub exchange: String,
    pub routing_key: String,
    pub properties: AMQPProperties,
}

fn header<'a>(record: &'a Record, name: &str) -> Option<&'a [u8]> {
    record
        .headers
        .iter()
        .rev()
        .find(|h| h.name == name)
        .map(|h| h.value.as_ref())
}

fn header_text(record: &Record, name: &str) -> Option<String> {
    header(record, name).map(|v| String::from_utf8_lossy(v).into_owned())
}

pub(crate) fn render(record: &Record) -> Rendered {
    let mut properties = header(record, PROPERTIES_HEADER)
        .and_then(properties::decode)
        .unwrap_or_else(|| foreign_properties(record));
    if let Some(reason) = header_text(record, "omnibus.dlq.reason") {
        properties = with_death(properties, record, &reason);
    }
    Rendered {
        exchange: header_text(record, EXCHANGE_HEADER).unwrap_or_default(),
        routing_key: header_text(record, ROUTING_KEY_HEADER)
            .unwrap_or_else(|| record.subject.clone()),
        properties,
    }
}

/// What a delivery of a message published here writes as it was stored
/// (`codec/deliver.rs`): the property bytes, once they decode, and the exchange and
/// routing key as text. `None` for anything else (a dead letter gains `x-death`, a record
/// from another door has no stored properties): [`render`] builds those.
pub(crate) struct Stored<'a> {
    pub properties: &'a [u8],
    pub exchange: &'a str,
    pub routing_key: &'a str,
}

pub(crate) fn stored(record: &Record) -> Option<Stored<'_>> {
    if header(record, "omnibus.dlq.reason").is_some() {
        return None;
    }
    let properties = header(record, PROPERTIES_HEADER)?;
    // Checked, not used: a client must get properties it can parse.
    properties::decode(properties)?;
    let exchange = std::str::from_utf8(header(record, EXCHANGE_HEADER).unwrap_or_default()).ok()?;
    let routing_key = match header(record, ROUTING_KEY_HEADER) {
        Some(key) => std::str::from_utf8(key).ok()?,
        None => record.subject.as_str(),
    };
    Some(Stored {
        properties,
        exchange,
        routing_key,
    })
}

/// A record from another door: its headers (not the broker's own) as a string table.
fn foreign_properties(record: &Record) -> AMQPProperties {
    let mut table = FieldTable::default();
    for h in &record.headers {
        if h.name.starts_with("omnibus.") || h.name.starts_with("amqp.") {
            continue;
        }
        if let Ok(name) = ShortString::try_new(h.name.clone()) {
            table.insert(
                name,
                AMQPValue::LongString(LongString::from(h.value.to_vec())),
            );
        }
    }
    let properties =
        AMQPProperties::default().with_timestamp(record.timestamp_ms.max(0) as u64 / 1000);
    if table.inner().is_empty() {
        properties
    } else {
        properties.with_headers(table)
    }
}

/// The engine's reason text as RabbitMQ's `x-death` reason.
fn death_reason(reason: &str) -> &'static str {
    if reason.contains("expired") || reason.contains("TTL") || reason.contains("ttl") {
        "expired"
    } else if reason.contains("queue full") {
        "maxlen"
    } else if reason.contains("max deliveries") {
        "delivery_limit"
    } else {
        "rejected"
    }
}

fn with_death(properties: AMQPProperties, record: &Record, reason: &str) -> AMQPProperties {
    let reason = death_reason(reason);
    let queue = header_text(record, "omnibus.dlq.source")
        .map(|q| names::from_engine(&q))
        .unwrap_or_default();
    let exchange = header_text(record, DEAD_LETTER_EXCHANGE_HEADER).unwrap_or_default();
    let routing_key = header_text(record, DEAD_LETTER_ROUTING_KEY_HEADER).unwrap_or_default();
    let mut headers = properties.headers().clone().unwrap_or_default();
    let mut deaths: Vec<AMQPValue> = match headers.inner().get("x-death") {
        Some(AMQPValue::FieldArray(array)) => array.as_slice().to_vec(),
        _ => Vec::new(),
    };
    let text = |v: &str| AMQPValue::LongString(LongString::from(v));
    let same = |table: &FieldTable| {
        table.inner().get("queue") == Some(&text(&queue))
            && table.inner().get("reason") == Some(&text(reason))
    };
    let previous = deaths
        .iter()
        .position(|d| matches!(d, AMQPValue::FieldTable(t) if same(t)));
    let count = previous
        .and_then(|index| match &deaths[index] {
            AMQPValue::FieldTable(t) => match t.inner().get("count") {
                Some(AMQPValue::LongLongInt(n)) => Some(*n),
                _ => None,
            },
            _ => None,
        })
        .unwrap_or(0)
        + 1;
    if let Some(index) = previous {
        deaths.remove(index);
    }
    let mut death = FieldTable::default();
    death.insert("count".into(), AMQPValue::LongLongInt(count));
    death.insert("reason".into(), text(reason));
    death.insert("queue".into(), text(&queue));
    death.insert(
        "time".into(),
        AMQPValue::Timestamp(record.timestamp_ms.max(0) as u64 / 1000),
    );
    death.insert("exchange".into(), text(&exchange));
    let mut keys = FieldArray::default();
    keys.push(text(&routing_key));
    death.insert("routing-keys".into(), AMQPValue::FieldArray(keys));
    deaths.insert(0, AMQPValue::FieldTable(death));
    let mut array = FieldArray::default();
    for d in deaths {
        array.push(d);
    }
    headers.insert("x-death".into(), AMQPValue::FieldArray(array));
    for (name, value) in [
        ("x-first-death-reason", reason.to_string()),
        ("x-first-death-queue", queue.clone()),
        ("x-first-death-exchange", exchange.clone()),
    ] {
        if !headers.contains_key(name) {
            headers.insert(name.into(), text(&value));
        }
    }
    properties.with_headers(headers)
}

/// Gives deliveries back to their queues at once, flagged `redelivered` when they come again.
pub(crate) async fn requeue_all(engine: &Arc<Engine>, deliveries: Vec<Unacked>) {
    if deliveries.is_empty() {
        return;
    }
    let requeues = deliveries.iter().map(|d| {
        engine.nack(
            &d.queue,
            d.offset,
            d.attempt,
            Some(0),
            "requeued: the AMQP channel closed",
        )
    });
    for outcome in futures_util::future::join_all(requeues).await {
        if let Err(error) = outcome {
            tracing::debug!("requeueing a delivery failed (its lease may have ended): {error}");
        }
    }
}
