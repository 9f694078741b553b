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
use omnibus_engine::exchanges::{EXCHANGE_HEADER, ROUTING_KEY_HEADER};
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
    if header(record, "omnibus.dlq.reason").is_some() {
        properties = with_death(properties, record);
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

/// One or more dead-letterings at one place, from the engine's history
/// (`omnibus_engine::queue::deaths`).
#[derive(Clone)]
struct Death {
    reason: &'static str,
    queue: String,
    exchange: String,
    routing_key: String,
    time_s: u64,
    count: i64,
}

/// Every dead-lettering of `record`, oldest first.
fn deaths(record: &Record) -> Vec<Death> {
    omnibus_engine::queue::deaths::deaths(&record.headers)
        .iter()
        .map(|death| death_of(death, record))
        .collect()
}

fn death_of(death: &omnibus_engine::queue::deaths::Death, record: &Record) -> Death {
    let text =
        |value: Option<&[u8]>| String::from_utf8_lossy(value.unwrap_or_default()).into_owned();
    Death {
        reason: death_reason(&text(death.field("reason"))),
        queue: names::from_engine(&text(death.field("source"))),
        exchange: text(death.field("exchange")),
        routing_key: text(death.field("routing_key")),
        time_s: text(death.field("time_ms"))
            .parse::<u64>()
            // Dead letters written before `time_ms` was kept: the record's own time.
            .unwrap_or(record.timestamp_ms.max(0) as u64)
            / 1000,
        count: i64::try_from(death.count).unwrap_or(i64::MAX),
    }
}

/// RabbitMQ's dead-letter headers: `x-death` holds one table per (queue, reason), newest
/// first, whose `count` rises each time the message dies there again (the entry keeps its
/// first time, exchange and routing keys); `x-first-death-*` name the first. The
/// `expiration` property is removed (the message must not expire again where it is routed),
/// kept as the first entry's `original-expiration`.
fn with_death(properties: AMQPProperties, record: &Record) -> AMQPProperties {
    let mut headers = properties.headers().clone().unwrap_or_default();
    // As RabbitMQ: `x-first-death-*` come with the first `x-death`, never added to a message
    // that arrived with one.
    let arrived_dead = headers.contains_key("x-death");
    let mut entries: Vec<AMQPValue> = match headers.inner().get("x-death") {
        Some(AMQPValue::FieldArray(array)) => array.as_slice().to_vec(),
        _ => Vec::new(),
    };
    let text = |v: &str| AMQPValue::LongString(LongString::from(v));
    let all = deaths(record);
    // Kept apart by the engine: merging entries may have moved the first one.
    let first = omnibus_engine::queue::deaths::first_death(&record.headers)
        .map(|first| death_of(&first, record))
        .or_else(|| all.first().cloned());
    for death in &all {
        let same = |entry: &AMQPValue| {
            matches!(entry, AMQPValue::FieldTable(t)
                if t.inner().get("queue") == Some(&text(&death.queue))
                    && t.inner().get("reason") == Some(&text(death.reason)))
        };
        let entry = match entries.iter().position(same) {
            Some(index) => {
                let AMQPValue::FieldTable(mut table) = entries.remove(index) else {
                    unreachable!("matched a table")
                };
                // Whatever integer type the publisher gave it (pika sends a signed 32-bit).
                let count = table
                    .inner()
                    .get("count")
                    .and_then(properties::integer)
                    .unwrap_or(0);
                table.insert(
                    "count".into(),
                    AMQPValue::LongLongInt(count.saturating_add(death.count)),
                );
                table
            }
            None => {
                let mut table = FieldTable::default();
                table.insert("count".into(), AMQPValue::LongLongInt(death.count));
                table.insert("reason".into(), text(death.reason));
                table.insert("queue".into(), text(&death.queue));
                table.insert("time".into(), AMQPValue::Timestamp(death.time_s));
                table.insert("exchange".into(), text(&death.exchange));
                let mut keys = FieldArray::default();
                keys.push(text(&death.routing_key));
                table.insert("routing-keys".into(), AMQPValue::FieldArray(keys));
                let is_first = first.as_ref().is_some_and(|first| {
                    first.queue == death.queue && first.reason == death.reason
                });
                if let (true, Some(original)) = (is_first, properties.expiration()) {
                    table.insert("original-expiration".into(), text(original.as_str()));
                }
                table
            }
        };
        entries.insert(0, AMQPValue::FieldTable(entry));
    }
    let mut array = FieldArray::default();
    for entry in entries {
        array.push(entry);
    }
    headers.insert("x-death".into(), AMQPValue::FieldArray(array));
    if let Some(first) = first.filter(|_| !arrived_dead) {
        for (name, value) in [
            ("x-first-death-reason", first.reason),
            ("x-first-death-queue", first.queue.as_str()),
            ("x-first-death-exchange", first.exchange.as_str()),
        ] {
            if !headers.contains_key(name) {
                headers.insert(name.into(), text(value));
            }
        }
    }
    let mut properties = properties.with_headers(headers);
    if properties.expiration().is_some() {
        properties = without_expiration(properties);
    }
    properties
}

/// `properties` without `expiration` (the generated struct has setters only).
fn without_expiration(properties: AMQPProperties) -> AMQPProperties {
    let mut out = AMQPProperties::default();
    macro_rules! copy {
        ($($get:ident => $set:ident),* $(,)?) => {
            $(if let Some(value) = properties.$get().clone() {
                out = out.$set(value);
            })*
        };
    }
    copy!(
        content_type => with_content_type,
        content_encoding => with_content_encoding,
        headers => with_headers,
        delivery_mode => with_delivery_mode,
        priority => with_priority,
        correlation_id => with_correlation_id,
        reply_to => with_reply_to,
        message_id => with_message_id,
        timestamp => with_timestamp,
        kind => with_type,
        user_id => with_user_id,
        app_id => with_app_id,
        cluster_id => with_cluster_id,
    );
    out
}

/// Gives deliveries back to their queues at once, flagged `redelivered` when they come again.
pub(crate) async fn requeue_all(engine: &Arc<Engine>, deliveries: Vec<Unacked>) {
    if deliveries.is_empty() {
        return;
    }
    let requeues = deliveries.iter().filter(|d| d.current(engine)).map(|d| {
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

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use omnibus_types::Header;

    use super::*;

    fn record(headers: &[(&str, &str)]) -> Record {
        Record {
            offset: 0,
            timestamp_ms: 9_000_000,
            subject: String::new(),
            key: None,
            value: None,
            headers: headers
                .iter()
                .map(|(name, value)| Header {
                    name: (*name).to_string(),
                    value: Bytes::copy_from_slice(value.as_bytes()),
                })
                .collect(),
        }
    }

    #[test]
    fn x_death_has_one_entry_per_queue_and_reason_newest_first_with_counts() {
        use omnibus_engine::queue::deaths::record_death;
        let mut headers = vec![omnibus_types::Header {
            name: EXCHANGE_HEADER.into(),
            value: Bytes::from_static(b"entry"),
        }];
        let mut die = |queue: &str, reason: &str, time_ms: &str, exchange: &str, key: &str| {
            record_death(
                &mut headers,
                vec![
                    ("reason", Bytes::from(reason.to_string())),
                    ("source", Bytes::from(queue.to_string())),
                    ("time_ms", Bytes::from(time_ms.to_string())),
                    ("exchange", Bytes::from(exchange.to_string())),
                    ("routing_key", Bytes::from(key.to_string())),
                ],
            )
        };
        die(
            "work",
            "terminated: rejected by the client",
            "1000",
            "entry",
            "job",
        );
        die("retry", "message expired (TTL)", "2000", "", "retry");
        die(
            "work",
            "terminated: rejected by the client",
            "3000",
            "",
            "work",
        );
        die("retry", "message expired (TTL)", "4000", "", "retry");
        let record = record(&[]);
        let record = Record { headers, ..record };
        let properties = with_death(
            AMQPProperties::default().with_expiration("60000".into()),
            &record,
        );
        assert_eq!(properties.expiration(), &None, "removed");
        let headers = properties.headers().clone().unwrap();
        let Some(AMQPValue::FieldArray(entries)) = headers.inner().get("x-death") else {
            panic!("no x-death: {headers:?}")
        };
        let summary: Vec<String> = entries
            .as_slice()
            .iter()
            .map(|entry| {
                let AMQPValue::FieldTable(t) = entry else {
                    panic!()
                };
                let get = |name: &str| match t.inner().get(name).unwrap() {
                    AMQPValue::LongString(text) => text.to_string(),
                    other => format!("{other:?}"),
                };
                format!(
                    "{} {} {} {} {}",
                    get("queue"),
                    get("reason"),
                    get("count"),
                    get("exchange"),
                    get("time")
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                "retry expired LongLongInt(2)  Timestamp(2)",
                "work rejected LongLongInt(2) entry Timestamp(1)",
            ]
        );
        let AMQPValue::FieldTable(oldest) = &entries.as_slice()[1] else {
            panic!()
        };
        assert_eq!(
            oldest.inner().get("original-expiration"),
            Some(&AMQPValue::LongString("60000".into()))
        );
        assert_eq!(
            headers.inner().get("x-first-death-queue"),
            Some(&AMQPValue::LongString("work".into()))
        );
    }
}
