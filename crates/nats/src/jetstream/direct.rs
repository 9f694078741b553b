//! `$JS.API.DIRECT.GET.<stream>[.<subject>]`: one stored message, answered as the message
//! itself rather than JSON.
//!
//! Protocol (nats-server's `stream.go`, `processDirectGet`): the body is `{"seq":n}` or
//! `{"last_by_subj":subject}` (or empty, with the subject in the API subject); the answer
//! carries the stored headers plus `Nats-Stream`, `Nats-Subject`, `Nats-Sequence` and
//! `Nats-Time-Stamp`, and the stored payload; a message that is not there is answered with
//! the status `404 Message Not Found`, a request that cannot be read with `408 Bad Request`.
//!
//! Our choices: streams answer `allow_direct:false`, so clients use MSG.GET unless they ask
//! for a direct get themselves; this serves those who do.

use std::sync::Arc;

use bytes::Bytes;
use omnibus_engine::router::{LiveMessage, LiveStatus};
use omnibus_engine::Engine;
use omnibus_types::Header;
use serde_json::Value;

use super::time;

/// Answers a direct get on `reply`.
pub(crate) async fn get(engine: &Engine, call: &str, reply: String, payload: &Bytes) {
    let answer = match lookup(engine, call, payload).await {
        Ok(Some((stream, record))) => found(&stream, record, &reply),
        Ok(None) => status(&reply, 404, "Message Not Found"),
        Err(()) => status(&reply, 408, "Bad Request"),
    };
    engine.live_router().publish(Arc::new(answer), None);
}

type Found = (String, omnibus_types::Record);

async fn lookup(engine: &Engine, call: &str, payload: &Bytes) -> Result<Option<Found>, ()> {
    // `DIRECT.GET.<stream>` or `DIRECT.GET.<stream>.<subject…>`.
    let rest = call.strip_prefix("DIRECT.GET.").ok_or(())?;
    let (stream, in_subject) = match rest.split_once('.') {
        Some((stream, subject)) => (stream, Some(subject)),
        None => (rest, None),
    };
    if engine.stream_info(stream).is_err() {
        return Ok(None);
    }
    let request: Value = if payload.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(payload).map_err(|_| ())?
    };
    let subject = in_subject.or_else(|| request.get("last_by_subj").and_then(Value::as_str));
    let record = if let Some(subject) = subject {
        super::state::last_for_subject(engine, stream, subject)
            .await
            .map_err(|_| ())?
    } else {
        let sequence = request.get("seq").and_then(Value::as_u64).ok_or(())?;
        if sequence == 0 {
            return Ok(None);
        }
        super::streams::record_at(engine, stream, sequence - 1)
            .await
            .map_err(|_| ())?
    };
    Ok(record.map(|record| (stream.to_string(), record)))
}

fn header(name: &str, value: String) -> Header {
    Header {
        name: name.to_string(),
        value: value.into(),
    }
}

fn found(stream: &str, record: omnibus_types::Record, reply: &str) -> LiveMessage {
    let subject = if record.subject.is_empty() {
        stream.to_string()
    } else {
        record.subject.clone()
    };
    let mut headers = record.headers;
    headers.push(header("Nats-Stream", stream.to_string()));
    headers.push(header("Nats-Subject", subject));
    headers.push(header("Nats-Sequence", (record.offset + 1).to_string()));
    headers.push(header(
        "Nats-Time-Stamp",
        time::rfc3339(record.timestamp_ms),
    ));
    LiveMessage {
        subject: reply.to_string(),
        reply: None,
        headers,
        payload: record.value.unwrap_or_default(),
        status: None,
        appended: false,
    }
}

fn status(reply: &str, code: u16, text: &str) -> LiveMessage {
    LiveMessage {
        subject: reply.to_string(),
        status: Some(LiveStatus {
            code,
            text: text.to_string(),
        }),
        ..LiveMessage::default()
    }
}
