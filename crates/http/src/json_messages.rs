//! Queue message JSON to and from the engine's types.
//!
//! In: the record fields of `json` (`key`/`key_base64`, `value`/`value_base64`, `headers`) plus
//! `priority` (0–9), `delay_ms`, `ttl_ms` and `message_id` (a producer's id: the same id again
//! within the queue's dedup window is not stored twice). Header names starting with `omnibus.` are the
//! broker's own (schedule, priority, dead-letter reasons) and are refused. Out: a delivery
//! renders like a fetched record, with `id` (its offset), `attempt`, `lease_deadline_ms` and
//! `priority`, and without the broker's scheduling headers.

use omnibus_engine::queue::{
    Backoff, Delivery, EnqueueMessage, QueueSpec, DELAY_MS_MAX, DUE_HEADER, EXPIRES_HEADER,
    PRIORITY_HEADER,
};
use omnibus_types::limits::PUBLISH_RECORDS_MAX;
use omnibus_types::Header;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::bounded::{Bounded, HeadersInput};
use crate::error::ApiError;
use crate::json::{ContentOutput, RecordInput};

/// Header names with this prefix belong to the broker.
pub const RESERVED_HEADER_PREFIX: &str = "omnibus.";
/// Highest priority level; higher is delivered first.
pub const PRIORITY_MAX: u8 = 9;
/// Longest delay, TTL, backoff or uniqueness window a client may ask for (one year).
pub const DURATION_MS_MAX: u64 = DELAY_MS_MAX;
/// Longest producer message id (the dedup key), in bytes.
pub const MESSAGE_ID_BYTES_MAX: usize = 256;
/// Longest worker name, in bytes.
pub const WORKER_BYTES_MAX: usize = 256;
/// Longest error or reason text a worker may report, in bytes.
pub const ERROR_BYTES_MAX: usize = 64 * 1024;

/// One message as a client sends it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageInput {
    key: Option<String>,
    key_base64: Option<String>,
    value: Option<Box<RawValue>>,
    value_base64: Option<String>,
    headers: Option<HeadersInput>,
    priority: Option<u8>,
    delay_ms: Option<u64>,
    ttl_ms: Option<u64>,
    message_id: Option<String>,
}

/// An enqueue body: one message object, or `{"messages":[…]}`. The fields are repeated rather
/// than flattened for the reasons given on `json::PublishBody`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnqueueBody {
    messages: Option<Bounded<MessageInput, PUBLISH_RECORDS_MAX>>,
    key: Option<String>,
    key_base64: Option<String>,
    value: Option<Box<RawValue>>,
    value_base64: Option<String>,
    headers: Option<HeadersInput>,
    priority: Option<u8>,
    delay_ms: Option<u64>,
    ttl_ms: Option<u64>,
    message_id: Option<String>,
}

impl EnqueueBody {
    /// The messages of the body, in order, converted and checked.
    pub fn into_messages(self) -> Result<Vec<EnqueueMessage>, ApiError> {
        let single = MessageInput {
            key: self.key,
            key_base64: self.key_base64,
            value: self.value,
            value_base64: self.value_base64,
            headers: self.headers,
            priority: self.priority,
            delay_ms: self.delay_ms,
            ttl_ms: self.ttl_ms,
            message_id: self.message_id,
        };
        let Some(messages) = self.messages else {
            return Ok(vec![single.into_enqueue_message("message")?]);
        };
        let has_message_fields = single.key.is_some()
            || single.key_base64.is_some()
            || single.value.is_some()
            || single.value_base64.is_some()
            || single.headers.is_some()
            || single.priority.is_some()
            || single.delay_ms.is_some()
            || single.ttl_ms.is_some()
            || single.message_id.is_some();
        if has_message_fields {
            return Err(ApiError::bad_request(
                "a body with \"messages\" may not also carry message fields; put them in each message",
            ));
        }
        messages
            .into_items("messages")?
            .into_iter()
            .enumerate()
            .map(|(index, input)| input.into_enqueue_message(&format!("messages[{index}]")))
            .collect()
    }
}

impl MessageInput {
    fn into_enqueue_message(self, name: &str) -> Result<EnqueueMessage, ApiError> {
        let record = RecordInput {
            key: self.key,
            key_base64: self.key_base64,
            value: self.value,
            value_base64: self.value_base64,
            headers: self.headers,
            ..RecordInput::default()
        }
        .into_publish_record(name)?;
        check_user_headers(name, &record.headers)?;
        let priority = self.priority.unwrap_or(0);
        check_priority(name, priority)?;
        check_duration(name, "delay_ms", self.delay_ms)?;
        check_duration(name, "ttl_ms", self.ttl_ms)?;
        if let Some(id) = &self.message_id {
            if id.is_empty() || id.len() > MESSAGE_ID_BYTES_MAX {
                return Err(ApiError::bad_request(format!(
                    "{name}: message_id must be 1 to {MESSAGE_ID_BYTES_MAX} bytes"
                )));
            }
        }
        Ok(EnqueueMessage {
            key: record.key,
            value: record.value,
            headers: record.headers,
            priority,
            delay_ms: self.delay_ms,
            ttl_ms: self.ttl_ms,
            id: self.message_id,
        })
    }
}

fn check_user_headers(name: &str, headers: &[Header]) -> Result<(), ApiError> {
    match headers
        .iter()
        .find(|header| header.name.starts_with(RESERVED_HEADER_PREFIX))
    {
        Some(header) => Err(ApiError::bad_request(format!(
            "{name}: header {:?} is reserved (names starting with {RESERVED_HEADER_PREFIX:?} belong to the broker)",
            header.name
        ))),
        None => Ok(()),
    }
}

pub fn check_priority(name: &str, priority: u8) -> Result<(), ApiError> {
    if priority > PRIORITY_MAX {
        return Err(ApiError::bad_request(format!(
            "{name}: priority {priority} is outside 0..={PRIORITY_MAX}"
        )));
    }
    Ok(())
}

/// Refuses a duration over [`DURATION_MS_MAX`] (negative ones do not parse as `u64`).
pub fn check_duration(name: &str, field: &str, duration_ms: Option<u64>) -> Result<(), ApiError> {
    match duration_ms {
        Some(duration_ms) if duration_ms > DURATION_MS_MAX => Err(ApiError::bad_request(format!(
            "{name}: {field} of {duration_ms} ms exceeds the limit of {DURATION_MS_MAX} ms"
        ))),
        _ => Ok(()),
    }
}

/// Refuses a backoff whose delays are over [`DURATION_MS_MAX`] or that shrinks.
pub fn check_backoff(name: &str, backoff: Option<&Backoff>) -> Result<(), ApiError> {
    match backoff {
        None => Ok(()),
        Some(Backoff::Fixed { delay_ms }) => {
            check_duration(name, "backoff.delay_ms", Some(*delay_ms))
        }
        Some(Backoff::Exponential {
            initial_ms,
            max_ms,
            multiplier,
        }) => {
            check_duration(name, "backoff.initial_ms", Some(*initial_ms))?;
            check_duration(name, "backoff.max_ms", Some(*max_ms))?;
            if !multiplier.is_finite() || *multiplier < 1.0 {
                return Err(ApiError::bad_request(format!(
                    "{name}: backoff.multiplier {multiplier} must be at least 1"
                )));
            }
            Ok(())
        }
    }
}

/// Checks the parts of a queue spec the engine takes as given (it clamps the others).
pub fn check_queue_spec(spec: &QueueSpec) -> Result<(), ApiError> {
    check_duration("queue", "ttl_ms", spec.ttl_ms)?;
    check_duration("queue", "dedup_window_ms", spec.dedup_window_ms)?;
    check_backoff("queue", spec.backoff.as_ref())
}

/// A worker names itself on receive and fetch: non-empty, at most [`WORKER_BYTES_MAX`].
pub fn check_worker(worker: &str) -> Result<(), ApiError> {
    if worker.is_empty() || worker.len() > WORKER_BYTES_MAX {
        return Err(ApiError::bad_request(format!(
            "worker must be 1 to {WORKER_BYTES_MAX} bytes; it is {}",
            worker.len()
        )));
    }
    Ok(())
}

/// Refuses error or reason text over [`ERROR_BYTES_MAX`]: it is stored with the message.
pub fn check_error_text(field: &str, text: &str) -> Result<(), ApiError> {
    if text.len() > ERROR_BYTES_MAX {
        return Err(ApiError::message_too_large(format!(
            "{field} is {} bytes; the limit is {ERROR_BYTES_MAX}",
            text.len()
        )));
    }
    Ok(())
}

fn is_scheduling_header(name: &str) -> bool {
    name == DUE_HEADER || name == PRIORITY_HEADER || name == EXPIRES_HEADER
}

/// One delivered message as the API renders it.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct DeliveryOutput<'a> {
    /// The message's offset in its queue; pass it back to ack, nack, extend or term.
    pub id: u64,
    pub attempt: u32,
    pub lease_deadline_ms: i64,
    pub timestamp_ms: i64,
    pub priority: u8,
    #[serde(flatten)]
    pub content: ContentOutput<'a>,
}

impl<'a> DeliveryOutput<'a> {
    pub fn new(delivery: &'a Delivery) -> Self {
        let record = &delivery.record;
        let priority = record
            .headers
            .iter()
            .find(|header| header.name == PRIORITY_HEADER)
            .and_then(|header| std::str::from_utf8(&header.value).ok())
            .and_then(|text| text.parse().ok())
            .unwrap_or(0);
        DeliveryOutput {
            id: delivery.offset,
            attempt: delivery.attempt,
            lease_deadline_ms: delivery.lease_deadline_ms,
            timestamp_ms: record.timestamp_ms,
            priority,
            content: ContentOutput::new(record, is_scheduling_header),
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use omnibus_types::Record;

    use super::*;

    fn messages(body: &str) -> Result<Vec<EnqueueMessage>, ApiError> {
        serde_json::from_str::<EnqueueBody>(body)
            .expect("body parses")
            .into_messages()
    }

    #[test]
    fn one_message_converts_with_its_schedule() {
        let converted =
            messages(r#"{"key":"k","value":{"a":1},"priority":7,"delay_ms":50,"ttl_ms":9}"#)
                .unwrap();
        assert_eq!(
            converted,
            vec![EnqueueMessage {
                key: Some(Bytes::from("k")),
                value: Some(Bytes::from(r#"{"a":1}"#)),
                headers: Vec::new(),
                priority: 7,
                delay_ms: Some(50),
                ttl_ms: Some(9),
                id: None,
            }]
        );
    }

    #[test]
    fn a_batch_keeps_its_order_and_names_the_bad_message() {
        let converted = messages(r#"{"messages":[{"value":"a"},{"value":"b"}]}"#).unwrap();
        let values: Vec<_> = converted.into_iter().map(|m| m.value.unwrap()).collect();
        assert_eq!(values, vec![Bytes::from("a"), Bytes::from("b")]);

        let error = messages(r#"{"messages":[{},{"priority":10}]}"#).unwrap_err();
        assert_eq!(error.code(), "bad_request");
        assert!(
            error.to_string().starts_with("messages[1]: priority 10"),
            "{error}"
        );

        let error = messages(r#"{"messages":[],"value":"x"}"#).unwrap_err();
        assert_eq!(error.code(), "bad_request");
    }

    #[test]
    fn absurd_schedules_and_reserved_headers_are_bad_requests() {
        let too_long = format!(r#"{{"delay_ms":{}}}"#, DURATION_MS_MAX + 1);
        assert_eq!(messages(&too_long).unwrap_err().code(), "bad_request");
        let too_long = format!(r#"{{"ttl_ms":{}}}"#, u64::MAX);
        assert_eq!(messages(&too_long).unwrap_err().code(), "bad_request");
        assert!(serde_json::from_str::<EnqueueBody>(r#"{"delay_ms":-1}"#).is_err());
        let error = messages(r#"{"headers":{"omnibus.due_ms":"0"}}"#).unwrap_err();
        assert!(error.to_string().contains("reserved"), "{error}");
    }

    #[test]
    fn backoff_must_not_shrink_or_wait_absurdly() {
        let fine = Backoff::Exponential {
            initial_ms: 10,
            max_ms: 1_000,
            multiplier: 2.0,
        };
        assert!(check_backoff("job", Some(&fine)).is_ok());
        let shrinking = Backoff::Exponential {
            initial_ms: 10,
            max_ms: 1_000,
            multiplier: 0.5,
        };
        assert_eq!(
            check_backoff("job", Some(&shrinking)).unwrap_err().code(),
            "bad_request"
        );
        let absurd = Backoff::Fixed { delay_ms: u64::MAX };
        assert!(check_backoff("job", Some(&absurd)).is_err());
    }

    #[test]
    fn a_delivery_hides_scheduling_headers_and_reports_its_priority() {
        let header = |name: &str, value: &str| Header {
            name: name.into(),
            value: Bytes::from(value.to_owned()),
        };
        let delivery = Delivery {
            incarnation: 1,
            offset: 4,
            attempt: 2,
            lease_deadline_ms: 99,
            record: Record {
                offset: 4,
                timestamp_ms: 5,
                subject: String::new(),
                key: None,
                value: Some(Bytes::from_static(b"v")),
                headers: vec![
                    header("trace", "t1"),
                    header(PRIORITY_HEADER, "3"),
                    header(DUE_HEADER, "1"),
                ],
            },
        };
        let rendered = serde_json::to_value(DeliveryOutput::new(&delivery)).unwrap();
        assert_eq!(
            rendered,
            serde_json::json!({
                "id": 4, "attempt": 2, "lease_deadline_ms": 99, "timestamp_ms": 5,
                "priority": 3, "value": "v", "headers": {"trace": "t1"},
            })
        );
    }
}
