//! `$JS.API.INFO` and `$JS.API.STREAM.*`: streams as JetStream sees them.
//!
//! Protocol (nats-server's `jetstream_api.go`): CREATE/UPDATE take a stream config and answer
//! the stream's info (`config`, `created`, `state{messages,bytes,first_seq,first_ts,last_seq,
//! last_ts,consumer_count}`), INFO answers the same, DELETE and PURGE answer
//! `{"success":true[,"purged":n]}`, NAMES and LIST page (`total`, `offset`, `limit`),
//! MSG.GET answers one stored message with base64 `data` and `hdrs`. Creating a stream that
//! exists with the same config answers its info; with another, error 10058.
//!
//! Our choices: a stream created here is an Omnibus stream with one partition whose
//! `subjects` are the JetStream subjects; `max_age`, `max_bytes` and `max_msg_size` become
//! its retention age, retention bytes and largest record. The config answered is rebuilt from
//! the Omnibus stream, so fields Omnibus does not keep are answered with nats-server's
//! defaults (docs/nats.md lists them).
//! `workqueue` and `interest` retention are kept beside the stream as a door setting
//! (`extras.rs`) and served by its consumers removing what they all acknowledged
//! (`consumers.rs`).

use bytes::{Bytes, BytesMut};
use omnibus_engine::{Engine, EngineError, FetchRequest, StreamConfig, StreamSpec};
use omnibus_types::{patterns_overlap, ErrorCode, Record};
use serde_json::{json, Value};

use super::consumers;
use super::errors::ApiError;
use super::extras::{StreamExtras, DUPLICATE_WINDOW_MS};
use super::{time, ApiResult};
use crate::handlers::Shared;

/// Nanoseconds per millisecond: JetStream durations are nanoseconds, Omnibus's milliseconds.
const NANOS_PER_MS: u64 = 1_000_000;
/// Page sizes of NAMES and LIST, as nats-server's.
const NAMES_PAGE: usize = 1024;
const LIST_PAGE: usize = 256;

/// Routes `call` (the subject after `$JS.API.`); the response type names the answer.
pub(crate) async fn dispatch(
    shared: &Shared,
    call: &str,
    payload: &Bytes,
) -> (&'static str, ApiResult) {
    let engine = &shared.engine;
    let tokens: Vec<&str> = call.split('.').collect();
    match tokens.as_slice() {
        ["INFO"] => (
            "io.nats.jetstream.api.v1.account_info_response",
            Ok(account_info(shared)),
        ),
        ["STREAM", "CREATE", name] => (
            "io.nats.jetstream.api.v1.stream_create_response",
            create(engine, name, payload).await,
        ),
        ["STREAM", "UPDATE", name] => {
            let outcome = update(engine, name, payload).await;
            // The duplicate window may have changed: read again at the next publish.
            shared.jetstream.forget_stream(name);
            ("io.nats.jetstream.api.v1.stream_update_response", outcome)
        }
        ["STREAM", "INFO", name] => (
            "io.nats.jetstream.api.v1.stream_info_response",
            info(engine, name).await,
        ),
        ["STREAM", "DELETE", name] => {
            let outcome = engine.delete_stream(name).await;
            shared.jetstream.forget_stream(name);
            shared.jetstream.stop_push(name, None);
            (
                "io.nats.jetstream.api.v1.stream_delete_response",
                outcome
                    .map(|()| json!({"success": true}))
                    .map_err(|e| ApiError::from_engine(&e)),
            )
        }
        ["STREAM", "PURGE", name] => {
            let outcome = purge(engine, name, payload).await;
            shared.jetstream.forget_stream(name);
            ("io.nats.jetstream.api.v1.stream_purge_response", outcome)
        }
        ["STREAM", "NAMES"] => (
            "io.nats.jetstream.api.v1.stream_names_response",
            names(engine, payload),
        ),
        ["STREAM", "LIST"] => (
            "io.nats.jetstream.api.v1.stream_list_response",
            list(engine, payload).await,
        ),
        ["STREAM", "MSG", "GET", name] => (
            "io.nats.jetstream.api.v1.stream_msg_get_response",
            message_get(engine, name, payload).await,
        ),
        ["CONSUMER", "CREATE", stream] => (
            "io.nats.jetstream.api.v1.consumer_create_response",
            consumers::create(
                engine,
                &shared.jetstream,
                stream,
                None,
                None,
                false,
                payload,
            )
            .await,
        ),
        ["CONSUMER", "CREATE", stream, name] => (
            "io.nats.jetstream.api.v1.consumer_create_response",
            consumers::create(
                engine,
                &shared.jetstream,
                stream,
                Some(name),
                None,
                false,
                payload,
            )
            .await,
        ),
        ["CONSUMER", "CREATE", stream, name, ..] => {
            // The filter is the rest of the subject, dots included.
            let prefix = format!("CONSUMER.CREATE.{stream}.{name}.");
            let filter = call.strip_prefix(&prefix);
            (
                "io.nats.jetstream.api.v1.consumer_create_response",
                consumers::create(
                    engine,
                    &shared.jetstream,
                    stream,
                    Some(name),
                    filter,
                    false,
                    payload,
                )
                .await,
            )
        }
        ["CONSUMER", "DURABLE", "CREATE", stream, name] => (
            "io.nats.jetstream.api.v1.consumer_create_response",
            consumers::create(
                engine,
                &shared.jetstream,
                stream,
                Some(name),
                None,
                true,
                payload,
            )
            .await,
        ),
        ["CONSUMER", "INFO", stream, name] => (
            "io.nats.jetstream.api.v1.consumer_info_response",
            consumers::info(engine, stream, name, shared.jetstream.waiting(stream, name)),
        ),
        ["CONSUMER", "DELETE", stream, name] => (
            "io.nats.jetstream.api.v1.consumer_delete_response",
            consumers::delete(engine, &shared.jetstream, stream, name).await,
        ),
        ["CONSUMER", "NAMES", stream] => (
            "io.nats.jetstream.api.v1.consumer_names_response",
            consumers::names(engine, stream, payload),
        ),
        ["CONSUMER", "LIST", stream] => (
            "io.nats.jetstream.api.v1.consumer_list_response",
            consumers::list(engine, stream, payload),
        ),
        _ => (
            "io.nats.jetstream.api.v1.error_response",
            Err(ApiError::not_served(call)),
        ),
    }
}

fn account_info(shared: &Shared) -> Value {
    use std::sync::atomic::Ordering;
    let streams = shared.engine.list_streams();
    let consumers: usize = streams
        .iter()
        .map(|s| shared.engine.list_consumers(&s.config.name).len())
        .sum();
    let storage: u64 = streams
        .iter()
        .flat_map(|s| s.partition_info.iter())
        .map(|p| p.size_bytes)
        .sum();
    json!({
        "type": "io.nats.jetstream.api.v1.account_info_response",
        "memory": 0,
        "storage": storage,
        "reserved_memory": 0,
        "reserved_storage": 0,
        "streams": streams.len(),
        "consumers": consumers,
        "limits": {
            "max_memory": -1,
            "max_storage": -1,
            "max_streams": -1,
            "max_consumers": -1,
            "max_ack_pending": -1,
            "memory_max_stream_bytes": -1,
            "storage_max_stream_bytes": -1,
            "max_bytes_required": false
        },
        "api": {
            "total": shared.jetstream.api_total.load(Ordering::Relaxed),
            "errors": shared.jetstream.api_errors.load(Ordering::Relaxed)
        }
    })
}

/// The parts of a JetStream stream config Omnibus keeps.
#[derive(Debug, PartialEq)]
struct Requested {
    subjects: Vec<String>,
    retention_ms: Option<u64>,
    retention_bytes: Option<u64>,
    message_bytes_max: Option<usize>,
    /// Kept beside the stream (`extras.rs`).
    extras: StreamExtras,
}

fn parse_config(name: &str, payload: &Bytes) -> Result<Requested, ApiError> {
    let config: Value = if payload.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(payload).map_err(|e| ApiError::invalid_json(&e))?
    };
    if let Some(given) = config.get("name").and_then(Value::as_str) {
        if given != name {
            return Err(ApiError::stream_name_mismatch());
        }
    }
    if name.contains(['.', '*', '>']) {
        return Err(ApiError::invalid_config(
            "invalid stream name: may not contain '.', '*' or '>'",
        ));
    }
    if config.get("discard").and_then(Value::as_str) == Some("new") {
        return Err(ApiError::invalid_config(
            "discard \"new\" is not served yet; \"old\" is",
        ));
    }
    let retention = match config.get("retention").and_then(Value::as_str) {
        None | Some("limits") => "limits",
        Some("workqueue") => "workqueue",
        Some("interest") => "interest",
        Some(other) => {
            return Err(ApiError::invalid_config(format!(
                "retention {other:?} is not known"
            )))
        }
    };
    let mut subjects: Vec<String> = match config.get("subjects") {
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| item.as_str().map(str::to_string))
            .collect::<Option<_>>()
            .ok_or_else(ApiError::bad_request)?,
        _ => Vec::new(),
    };
    if subjects.is_empty() {
        subjects.push(name.to_string());
    }
    let positive = |field: &str| {
        config
            .get(field)
            .and_then(Value::as_i64)
            .filter(|v| *v > 0)
            .map(|v| v as u64)
    };
    Ok(Requested {
        subjects,
        retention_ms: positive("max_age").map(|ns| (ns / NANOS_PER_MS).max(1)),
        retention_bytes: positive("max_bytes"),
        message_bytes_max: positive("max_msg_size").map(|v| v as usize),
        extras: StreamExtras {
            retention: retention.to_string(),
            duplicate_window_ms: positive("duplicate_window")
                .map_or(DUPLICATE_WINDOW_MS, |ns| (ns / NANOS_PER_MS).max(1)),
            max_messages: positive("max_msgs"),
        },
    })
}

fn requested_of(engine: &Engine, config: &StreamConfig) -> Requested {
    Requested {
        subjects: config.subjects.clone(),
        retention_ms: config.retention_ms,
        retention_bytes: config.retention_bytes,
        message_bytes_max: None,
        extras: StreamExtras::of(engine, &config.name),
    }
}

async fn create(engine: &std::sync::Arc<Engine>, name: &str, payload: &Bytes) -> ApiResult {
    let requested = parse_config(name, payload)?;
    let spec = StreamSpec {
        name: name.to_string(),
        partitions: Some(1),
        subjects: requested.subjects.clone(),
        retention_ms: requested.retention_ms,
        retention_bytes: requested.retention_bytes,
        message_bytes_max: requested.message_bytes_max,
        // `max_age` 0 (what every client sends by default) is "no age limit" in JetStream,
        // not the broker's default retention.
        no_time_retention: requested.retention_ms.is_none(),
        ..StreamSpec::default()
    };
    match engine.create_stream(spec).await {
        Ok(_) => {
            requested.extras.store(engine, name).await?;
            let mut answer = info(engine, name).await?;
            answer["did_create"] = json!(true);
            Ok(answer)
        }
        Err(EngineError::StreamExists(_)) => {
            let existing = engine
                .stream_info(name)
                .map_err(|e| ApiError::from_engine(&e))?;
            let mut stored = requested_of(engine, &existing.config);
            // A stream made before `max_age` 0 meant no limit has the broker's default
            // retention for it: the same request still finds it the same.
            if requested.retention_ms.is_none()
                && stored.retention_ms == engine.stream_defaults().retention_ms
            {
                stored.retention_ms = None;
            }
            let same = Requested {
                message_bytes_max: None,
                ..requested
            } == stored;
            if same {
                info(engine, name).await
            } else {
                Err(ApiError::stream_name_in_use())
            }
        }
        Err(error) => Err(ApiError::from_engine(&error)),
    }
}

async fn update(engine: &std::sync::Arc<Engine>, name: &str, payload: &Bytes) -> ApiResult {
    let requested = parse_config(name, payload)?;
    let existing = engine
        .stream_info(name)
        .map_err(|e| ApiError::from_engine(&e))?;
    if requested.extras.retention != StreamExtras::of(engine, name).retention {
        return Err(ApiError::invalid_config(
            "stream configuration update can not change retention policy to/from workqueue",
        ));
    }
    // Subjects added or dropped: checked against the other streams' as at create (10065).
    if requested.subjects != existing.config.subjects {
        engine
            .set_stream_subjects(name, requested.subjects.clone())
            .await
            .map_err(|e| ApiError::from_engine(&e))?;
    }
    requested.extras.store(engine, name).await?;
    let mut settings = existing.config.settings();
    settings.retention_ms = requested.retention_ms;
    settings.retention_bytes = requested.retention_bytes;
    if let Some(max) = requested.message_bytes_max {
        settings.message_bytes_max = max;
    }
    engine
        .alter_stream(name, settings, false)
        .await
        .map_err(|e| ApiError::from_engine(&e))?;
    info(engine, name).await
}

/// A stream's info as nats-server answers STREAM.INFO.
pub(crate) async fn info(engine: &Engine, name: &str) -> ApiResult {
    let stream = engine
        .stream_info(name)
        .map_err(|e| ApiError::from_engine(&e))?;
    let config = &stream.config;
    let messages = stream.records_retained();
    let bytes: u64 = stream.partition_info.iter().map(|p| p.size_bytes).sum();
    let (start, end) = stream
        .partition_info
        .first()
        .map(|p| (p.log_start_offset, p.high_watermark))
        .unwrap_or((0, 0));
    let (first_ts, last_ts) = if start < end {
        let first = record_at(engine, name, start).await?;
        let last = record_at(engine, name, end - 1).await?;
        (
            first.map_or(time::ZERO.to_string(), |r| time::rfc3339(r.timestamp_ms)),
            last.map_or(time::ZERO.to_string(), |r| time::rfc3339(r.timestamp_ms)),
        )
    } else {
        (time::ZERO.to_string(), time::ZERO.to_string())
    };
    // nats-server: an empty stream that never held a message has first_seq 0; once
    // messages were removed, first_seq is one past the last.
    let first_seq = if end == 0 { 0 } else { start + 1 };
    Ok(json!({
        "type": "io.nats.jetstream.api.v1.stream_info_response",
        "config": config_json(config, &StreamExtras::of(engine, name)),
        "created": time::rfc3339(config.created_ms),
        "state": {
            "messages": messages,
            "bytes": bytes,
            "first_seq": first_seq,
            "first_ts": first_ts,
            "last_seq": end,
            "last_ts": last_ts,
            "consumer_count": engine.list_consumers(name).len()
        },
        "ts": time::rfc3339(now_ms())
    }))
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The config nats-server would answer, from what the Omnibus stream keeps; the rest are
/// nats-server's defaults.
fn config_json(config: &StreamConfig, extras: &StreamExtras) -> Value {
    json!({
        "name": config.name,
        "subjects": config.subjects,
        "retention": extras.retention,
        "max_consumers": -1,
        "max_msgs": extras.max_messages.map_or(-1, |max| max as i64),
        "max_bytes": config.retention_bytes.map_or(-1, |b| b as i64),
        "max_age": config.retention_ms.map_or(0, |ms| ms * NANOS_PER_MS),
        "max_msgs_per_subject": -1,
        "max_msg_size": i32::try_from(config.message_bytes_max).unwrap_or(i32::MAX),
        "discard": "old",
        "storage": "file",
        "num_replicas": 1,
        "duplicate_window": extras.duplicate_window_ms * NANOS_PER_MS,
        "compression": "none",
        "allow_direct": false,
        "mirror_direct": false,
        "sealed": false,
        "deny_delete": false,
        "deny_purge": false,
        "allow_rollup_hdrs": false,
        "consumer_limits": {}
    })
}

/// The record at `offset` of partition 0, if it is still there.
pub(crate) async fn record_at(
    engine: &Engine,
    name: &str,
    offset: u64,
) -> Result<Option<Record>, ApiError> {
    let (start, end) = engine
        .partition_bounds(name, 0)
        .map_err(|e| ApiError::from_engine(&e))?;
    if offset < start || offset >= end {
        return Ok(None);
    }
    let fetched = engine
        .fetch(FetchRequest {
            stream: name.to_string(),
            partition: 0,
            offset,
            max_records: 1,
            max_bytes: 1,
            wait_ms: 0,
        })
        .await;
    match fetched {
        Ok(fetched) => Ok(fetched.records.into_iter().find(|r| r.offset == offset)),
        // Removed between the bounds read and the fetch (retention, or an interest or
        // work-queue stream's acked records): it is simply no longer there.
        Err(e) if e.code() == ErrorCode::OffsetOutOfRange => Ok(None),
        Err(e) => Err(ApiError::from_engine(&e)),
    }
}

async fn purge(engine: &Engine, name: &str, payload: &Bytes) -> ApiResult {
    if !payload.is_empty() {
        let request: Value =
            serde_json::from_slice(payload).map_err(|e| ApiError::invalid_json(&e))?;
        if ["filter", "seq", "keep"]
            .iter()
            .any(|field| request.get(field).is_some_and(|v| !v.is_null()))
        {
            return Err(ApiError::invalid_config(
                "purge by filter, sequence or keep is not served yet",
            ));
        }
    }
    let stream = engine
        .stream_info(name)
        .map_err(|e| ApiError::from_engine(&e))?;
    let mut purged = 0;
    for partition in &stream.partition_info {
        engine
            .delete_records(name, partition.partition, None)
            .await
            .map_err(|e| ApiError::from_engine(&e))?;
        purged += partition.high_watermark - partition.log_start_offset;
    }
    Ok(json!({"success": true, "purged": purged}))
}

/// `{"offset":n,"subject":filter}`, both optional.
fn page_request(payload: &Bytes) -> Result<(usize, Option<String>), ApiError> {
    if payload.is_empty() {
        return Ok((0, None));
    }
    let request: Value = serde_json::from_slice(payload).map_err(|e| ApiError::invalid_json(&e))?;
    let offset = request.get("offset").and_then(Value::as_u64).unwrap_or(0) as usize;
    let subject = request
        .get("subject")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    Ok((offset, subject))
}

/// Streams whose subjects overlap `filter` (either matches the other), or all.
fn matching_streams(engine: &Engine, filter: Option<&str>) -> Vec<StreamConfig> {
    let mut streams: Vec<StreamConfig> = engine
        .list_streams()
        .into_iter()
        .map(|info| info.config)
        .filter(|config| {
            filter.is_none_or(|filter| {
                config
                    .subjects
                    .iter()
                    .any(|pattern| patterns_overlap(pattern, filter))
            })
        })
        .collect();
    streams.sort_by(|a, b| a.name.cmp(&b.name));
    streams
}

fn names(engine: &Engine, payload: &Bytes) -> ApiResult {
    let (offset, filter) = page_request(payload)?;
    let streams = matching_streams(engine, filter.as_deref());
    let page: Vec<&str> = streams
        .iter()
        .skip(offset)
        .take(NAMES_PAGE)
        .map(|s| s.name.as_str())
        .collect();
    Ok(json!({
        "type": "io.nats.jetstream.api.v1.stream_names_response",
        "total": streams.len(),
        "offset": offset,
        "limit": NAMES_PAGE,
        "streams": page
    }))
}

async fn list(engine: &Engine, payload: &Bytes) -> ApiResult {
    let (offset, filter) = page_request(payload)?;
    let streams = matching_streams(engine, filter.as_deref());
    let mut infos = Vec::new();
    for stream in streams.iter().skip(offset).take(LIST_PAGE) {
        match info(engine, &stream.name).await {
            Ok(mut value) => {
                if let Some(object) = value.as_object_mut() {
                    object.remove("type");
                }
                infos.push(value);
            }
            // Deleted meanwhile.
            Err(_) => continue,
        }
    }
    Ok(json!({
        "type": "io.nats.jetstream.api.v1.stream_list_response",
        "total": streams.len(),
        "offset": offset,
        "limit": LIST_PAGE,
        "streams": infos,
        "missing": []
    }))
}

/// `{"seq":n}` or `{"last_by_subj":subject}`.
async fn message_get(engine: &Engine, name: &str, payload: &Bytes) -> ApiResult {
    let request: Value = serde_json::from_slice(payload).map_err(|e| ApiError::invalid_json(&e))?;
    let record = if let Some(sequence) = request.get("seq").and_then(Value::as_u64) {
        if sequence == 0 {
            return Err(ApiError::no_message_found());
        }
        engine
            .stream_info(name)
            .map_err(|e| ApiError::from_engine(&e))?;
        record_at(engine, name, sequence - 1).await?
    } else if let Some(subject) = request.get("last_by_subj").and_then(Value::as_str) {
        super::state::last_for_subject(engine, name, subject)
            .await
            .map_err(|e| ApiError::from_engine(&e))?
    } else {
        return Err(ApiError::bad_request());
    };
    let record = record.ok_or_else(ApiError::no_message_found)?;
    Ok(json!({
        "type": "io.nats.jetstream.api.v1.stream_msg_get_response",
        "message": stored_message_json(name, &record)
    }))
}

/// A stored record as MSG.GET answers it: base64 payload and header block.
fn stored_message_json(stream: &str, record: &Record) -> Value {
    use base64::Engine as _;
    let encoder = base64::engine::general_purpose::STANDARD;
    let subject = if record.subject.is_empty() {
        stream
    } else {
        &record.subject
    };
    let mut message = json!({
        "subject": subject,
        "seq": record.offset + 1,
        "data": encoder.encode(record.value.as_deref().unwrap_or_default()),
        "time": time::rfc3339(record.timestamp_ms),
    });
    if !record.headers.is_empty() {
        let mut block = BytesMut::new();
        crate::codec::headers::encode(&record.headers, &mut block);
        message["hdrs"] = json!(encoder.encode(&block));
    }
    message
}
