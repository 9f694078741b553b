//! `$JS.API.CONSUMER.{CREATE,DURABLE.CREATE,INFO,DELETE,NAMES,LIST}`: JetStream consumers as
//! engine acked consumers (`omnibus_engine::consumers`).
//!
//! Protocol (nats-server's `jetstream_api.go`, `consumer.go`): CREATE takes
//! `{"stream_name","config":{…},"action"}` on `CONSUMER.CREATE.<stream>` (ephemeral unless the
//! config names it), `CONSUMER.CREATE.<stream>.<name>[.<filter>]` or
//! `CONSUMER.DURABLE.CREATE.<stream>.<durable>`, and answers the consumer's info:
//! `stream_name`, `name`, `created`, `config`, `delivered{consumer_seq,stream_seq}`,
//! `ack_floor{…}`, `num_ack_pending`, `num_redelivered`, `num_waiting`, `num_pending`.
//!
//! Our choices: `deliver_policy` all, last, new, by_start_sequence and by_start_time map onto
//! the engine's start positions; last_per_subject is refused (10052). A consumer with a
//! `deliver_subject` is a push consumer, driven by `push.rs`. The config answered is the one given, with
//! nats-server's defaults filled in, kept beside the engine's spec so a restart answers the
//! same. Ephemeral consumers are named by the server and live until deleted.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use omnibus_engine::consumers::{AckMode, ConsumerInfo, ConsumerSpec, ConsumerStart};
use omnibus_engine::Engine;
use serde_json::{json, Map, Value};

use super::errors::ApiError;
use super::push::PushSettings;
use super::streams::now_ms;
use super::{time, ApiResult};

const NANOS_PER_MS: u64 = 1_000_000;
/// nats-server's defaults.
const ACK_WAIT_MS_DEFAULT: u64 = 30_000;
const MAX_ACK_PENDING_DEFAULT: i64 = 1000;
const MAX_WAITING_DEFAULT: i64 = 512;
/// The door's settings key holding the config as answered.
const CONFIG_SETTING: &str = "nats.config";
const NAMES_PAGE: usize = 1024;
const LIST_PAGE: usize = 256;

pub(crate) async fn create(
    engine: &Arc<Engine>,
    jetstream: &super::JetStream,
    stream: &str,
    subject_name: Option<&str>,
    subject_filter: Option<&str>,
    durable_call: bool,
    payload: &Bytes,
) -> ApiResult {
    let request: Value = serde_json::from_slice(payload).map_err(|e| ApiError::invalid_json(&e))?;
    if let Some(given) = request.get("stream_name").and_then(Value::as_str) {
        if given != stream {
            return Err(ApiError::stream_name_mismatch());
        }
    }
    let mut config = match request.get("config") {
        Some(Value::Object(config)) => config.clone(),
        _ => Map::new(),
    };
    let durable = config
        .get("durable_name")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    let named = config
        .get("name")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    let name = match (subject_name, &durable, &named) {
        (Some(name), _, _) => {
            if durable.as_deref().is_some_and(|d| d != name)
                || named.as_deref().is_some_and(|n| n != name)
            {
                return Err(ApiError::consumer_name_mismatch());
            }
            name.to_string()
        }
        (None, Some(durable), _) => durable.clone(),
        (None, None, Some(named)) => named.clone(),
        (None, None, None) => ephemeral_name(),
    };
    if durable_call || durable.is_some() {
        config.insert("durable_name".into(), json!(name));
    }
    config.insert("name".into(), json!(name));
    if let Some(filter) = subject_filter {
        config.insert("filter_subject".into(), json!(filter));
    }
    if let Some(deliver) = config.get("deliver_subject").and_then(Value::as_str) {
        if !deliver.is_empty() && omnibus_types::validate_subject(deliver).is_err() {
            return Err(ApiError::invalid_config("invalid deliver_subject"));
        }
    }
    let mut spec = spec_of(stream, &name, &mut config)?;
    check_filters(engine, stream, &spec.filter_subjects)?;
    let extras = super::extras::StreamExtras::of(engine, stream);
    if extras.is_work_queue() {
        check_work_queue(engine, &spec)?;
    }
    // Work queue: its one consumer removes what it acked; interest: a record goes once every
    // consumer acked it.
    spec.remove_acked = extras.retention != "limits";
    let info = engine
        .create_consumer(spec)
        .await
        .map_err(|e| ApiError::from_engine(&e))?;
    if let Some(settings) = PushSettings::of(&door_config(&info)) {
        jetstream.start_push(engine, stream, &name, settings);
    }
    Ok(info_json(&info, 0))
}

/// Each filter must be a subset of one of the stream's subjects, or the consumer would wait
/// for records the stream never captures (nats-server's 10093). A stream without subjects
/// (made by another door) takes any filter.
fn check_filters(engine: &Engine, stream: &str, filters: &[String]) -> Result<(), ApiError> {
    let Ok(info) = engine.stream_info(stream) else {
        return Ok(()); // the engine answers "stream not found" at create
    };
    let subjects = &info.config.subjects;
    if subjects.is_empty() {
        return Ok(());
    }
    for filter in filters {
        if !subjects
            .iter()
            .any(|subject| omnibus_types::pattern_is_subset(filter, subject))
        {
            return Err(ApiError::filter_not_subset());
        }
    }
    Ok(())
}

/// A work-queue stream's records belong to one consumer each: it must ack explicitly, start
/// at the beginning, and no other consumer may share its subjects (nats-server's rules).
fn check_work_queue(engine: &Engine, spec: &ConsumerSpec) -> Result<(), ApiError> {
    if spec.ack != AckMode::Explicit {
        return Err(ApiError::workqueue_requires_explicit_ack());
    }
    if spec.start != ConsumerStart::Earliest {
        return Err(ApiError::workqueue_not_deliver_all());
    }
    let others: Vec<ConsumerInfo> = engine
        .list_consumers(&spec.stream)
        .into_iter()
        .filter(|other| other.stored.spec.name != spec.name)
        .collect();
    if others.is_empty() {
        return Ok(());
    }
    if spec.filter_subjects.is_empty() {
        return Err(ApiError::workqueue_multiple_unfiltered());
    }
    let overlaps = others.iter().any(|other| {
        let theirs = &other.stored.spec.filter_subjects;
        theirs.is_empty()
            || theirs.iter().any(|their| {
                spec.filter_subjects
                    .iter()
                    .any(|mine| omnibus_types::patterns_overlap(mine, their))
            })
    });
    if overlaps {
        return Err(ApiError::workqueue_not_unique());
    }
    Ok(())
}

/// The JetStream config kept beside the engine's spec of a consumer.
pub(crate) fn door_config(info: &ConsumerInfo) -> Value {
    info.stored
        .spec
        .door_settings
        .get(CONFIG_SETTING)
        .and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or_else(|| json!({"name": info.stored.spec.name}))
}

/// A name for an ephemeral consumer, unique enough for one broker.
fn ephemeral_name() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_i64(now_ms());
    format!("{:016X}", hasher.finish())
}

/// Turns a consumer config into the engine's spec; fills nats-server's defaults into
/// `config`, which is kept as the door's setting.
fn spec_of(
    stream: &str,
    name: &str,
    config: &mut Map<String, Value>,
) -> Result<ConsumerSpec, ApiError> {
    let text = |config: &Map<String, Value>, field: &str| {
        config
            .get(field)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let number =
        |config: &Map<String, Value>, field: &str| config.get(field).and_then(Value::as_i64);
    let start = match text(config, "deliver_policy").as_str() {
        "" | "all" => ConsumerStart::Earliest,
        "last" => ConsumerStart::LastRecord,
        "new" => ConsumerStart::New,
        "by_start_sequence" => {
            let sequence = number(config, "opt_start_seq")
                .filter(|sequence| *sequence > 0)
                .ok_or_else(ApiError::start_sequence_missing)?;
            ConsumerStart::Offset(sequence as u64 - 1)
        }
        "by_start_time" => {
            let ms = config
                .get("opt_start_time")
                .and_then(Value::as_str)
                .and_then(time::parse_rfc3339)
                .ok_or_else(|| {
                    ApiError::invalid_config("opt_start_time is not an RFC 3339 time")
                })?;
            ConsumerStart::Time(ms)
        }
        other => {
            return Err(ApiError::invalid_config(format!(
                "deliver_policy {other:?} is not served yet"
            )))
        }
    };
    let ack = match text(config, "ack_policy").as_str() {
        "" | "explicit" => AckMode::Explicit,
        "none" => AckMode::None,
        "all" => AckMode::All,
        other => {
            return Err(ApiError::invalid_config(format!(
                "ack_policy {other:?} is not known"
            )))
        }
    };
    let mut filter_subjects: Vec<String> = match config.get("filter_subjects") {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    };
    let filter = text(config, "filter_subject");
    if !filter.is_empty() {
        filter_subjects.push(filter);
    }
    let ack_wait_ms = number(config, "ack_wait")
        .filter(|ns| *ns > 0)
        .map_or(ACK_WAIT_MS_DEFAULT, |ns| (ns as u64 / NANOS_PER_MS).max(1));
    let max_deliver = number(config, "max_deliver")
        .filter(|n| *n > 0)
        .map(|n| n.min(u32::MAX as i64) as u32);
    let backoff_ms: Vec<u64> = match config.get("backoff") {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_u64)
            .map(|ns| (ns / NANOS_PER_MS).max(1))
            .collect(),
        _ => Vec::new(),
    };
    let max_ack_pending = match number(config, "max_ack_pending") {
        None | Some(0) => MAX_ACK_PENDING_DEFAULT,
        Some(n) if n < 0 => omnibus_engine::consumers::ACK_PENDING_MAX as i64,
        Some(n) => n,
    };
    // What nats-server answers when a field was left out.
    let defaults = [
        ("deliver_policy", json!("all")),
        ("ack_policy", json!("explicit")),
        ("ack_wait", json!(ACK_WAIT_MS_DEFAULT * NANOS_PER_MS)),
        ("max_deliver", json!(-1)),
        ("replay_policy", json!("instant")),
        ("max_waiting", json!(MAX_WAITING_DEFAULT)),
        ("max_ack_pending", json!(MAX_ACK_PENDING_DEFAULT)),
        ("num_replicas", json!(0)),
    ];
    for (field, value) in defaults {
        let missing = config
            .get(field)
            .is_none_or(|v| v.is_null() || *v == json!(0) || *v == json!(""));
        if missing {
            config.insert(field.into(), value);
        }
    }
    let mut door_settings = BTreeMap::new();
    door_settings.insert(
        CONFIG_SETTING.to_string(),
        Value::Object(config.clone()).to_string(),
    );
    Ok(ConsumerSpec {
        stream: stream.to_string(),
        name: name.to_string(),
        filter_subjects,
        start,
        ack,
        ack_wait_ms,
        max_deliver,
        backoff_ms,
        max_ack_pending: max_ack_pending.max(1) as usize,
        door_settings,
        remove_acked: false,
        owned_pending: false,
    })
}

/// A consumer's info as nats-server answers CONSUMER.INFO.
pub(crate) fn info_json(info: &ConsumerInfo, waiting: usize) -> Value {
    let stored = &info.stored;
    let config = door_config(info);
    // As nats-server has it: messages removed from the stream are forgotten, and the floor
    // never passes what was delivered.
    let ack_floor = info.ack_floor_in_log.min(info.delivered_end);
    let acked_count = ack_floor
        .saturating_sub(stored.start_offset)
        .min(info.delivered_count);
    json!({
        "type": "io.nats.jetstream.api.v1.consumer_info_response",
        "stream_name": stored.spec.stream,
        "name": stored.spec.name,
        "created": time::rfc3339(stored.created_ms),
        "config": config,
        "delivered": {
            "consumer_seq": info.delivered_count,
            "stream_seq": info.delivered_end,
        },
        "ack_floor": {
            "consumer_seq": acked_count,
            "stream_seq": ack_floor,
        },
        // As nats-server counts them: a message nacked (or whose ack wait ran out) stays
        // ack-pending until it is redelivered and settled; num_pending is what was never
        // delivered.
        "num_ack_pending": info.ack_pending + info.awaiting_redelivery,
        "num_redelivered": info.redelivered,
        "num_waiting": waiting,
        "num_pending": info.pending.saturating_sub(info.awaiting_redelivery),
        "ts": time::rfc3339(now_ms()),
    })
}

pub(crate) fn info(engine: &Engine, stream: &str, name: &str, waiting: usize) -> ApiResult {
    engine
        .stream_info(stream)
        .map_err(|e| ApiError::from_engine(&e))?;
    let info = engine
        .consumer_info(stream, name)
        .map_err(|e| ApiError::from_engine(&e))?;
    Ok(info_json(&info, waiting))
}

pub(crate) async fn delete(
    engine: &Engine,
    jetstream: &super::JetStream,
    stream: &str,
    name: &str,
) -> ApiResult {
    engine
        .stream_info(stream)
        .map_err(|e| ApiError::from_engine(&e))?;
    engine
        .delete_consumer(stream, name)
        .await
        .map_err(|e| ApiError::from_engine(&e))?;
    jetstream.stop_push(stream, Some(name));
    jetstream.forget_activity(stream, name);
    Ok(json!({"type": "io.nats.jetstream.api.v1.consumer_delete_response", "success": true}))
}

fn page_offset(payload: &Bytes) -> usize {
    serde_json::from_slice::<Value>(payload)
        .ok()
        .and_then(|v| v.get("offset").and_then(Value::as_u64))
        .unwrap_or(0) as usize
}

pub(crate) fn names(engine: &Engine, stream: &str, payload: &Bytes) -> ApiResult {
    engine
        .stream_info(stream)
        .map_err(|e| ApiError::from_engine(&e))?;
    let offset = page_offset(payload);
    let all = engine.list_consumers(stream);
    let page: Vec<&str> = all
        .iter()
        .skip(offset)
        .take(NAMES_PAGE)
        .map(|c| c.stored.spec.name.as_str())
        .collect();
    Ok(json!({
        "type": "io.nats.jetstream.api.v1.consumer_names_response",
        "total": all.len(),
        "offset": offset,
        "limit": NAMES_PAGE,
        "consumers": page,
    }))
}

pub(crate) fn list(engine: &Engine, stream: &str, payload: &Bytes) -> ApiResult {
    engine
        .stream_info(stream)
        .map_err(|e| ApiError::from_engine(&e))?;
    let offset = page_offset(payload);
    let all = engine.list_consumers(stream);
    let page: Vec<Value> = all
        .iter()
        .skip(offset)
        .take(LIST_PAGE)
        .map(|info| {
            let mut value = info_json(info, 0);
            if let Some(object) = value.as_object_mut() {
                object.remove("type");
            }
            value
        })
        .collect();
    Ok(json!({
        "type": "io.nats.jetstream.api.v1.consumer_list_response",
        "total": all.len(),
        "offset": offset,
        "limit": LIST_PAGE,
        "consumers": page,
        "missing": [],
    }))
}
