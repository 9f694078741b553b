//! Publishing into a stream the JetStream way: a publish to a captured subject that expects
//! an answer (a reply subject) or carries JetStream headers.
//!
//! Protocol (nats-server's `stream.go`, `processJetStreamMsg`): the PubAck
//! `{"stream","seq"}` is sent once the message is stored; a `Nats-Msg-Id` already stored
//! within the duplicate window is not stored again and is answered `{"stream","seq" of the
//! original,"duplicate":true}`; `Nats-Expected-Stream` (10060), `Nats-Expected-Last-Sequence`
//! (10071), `Nats-Expected-Last-Subject-Sequence` (10071) and `Nats-Expected-Last-Msg-Id`
//! (10070) refuse the message when they do not hold.
//!
//! Our choices: "stored" means durable under the stream's fsync policy (fsynced by default,
//! group-committed with everything else in flight), so a PubAck never names a message a crash
//! could take back. The checks and the append are ordered by one lock per stream, held only
//! until the append has its offset (not through the fsync), so many publishes share an fsync.
//! Core publishes without a reply and without JetStream headers skip all this (they are
//! captured as before), so the expected-sequence checks see their sequences but do not order
//! them.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use omnibus_engine::router::{LiveMessage, LivePublish};
use omnibus_engine::{EngineError, RecordPosition};
use omnibus_types::Header;
use serde_json::json;

use super::errors::ApiError;
use super::send;
use super::state::{header, MESSAGE_ID};
use super::streams::now_ms;
use crate::codec::encode::decimal;
use crate::error::NatsError;
use crate::handlers::{push_capture, Connection};

/// Headers that make a publish a JetStream publish even without a reply subject.
const HEADERS: [&str; 5] = [
    MESSAGE_ID,
    "Nats-Expected-Stream",
    "Nats-Expected-Last-Sequence",
    "Nats-Expected-Last-Subject-Sequence",
    "Nats-Expected-Last-Msg-Id",
];

/// Whether a publish must go through [`handle`] rather than plain capture.
pub(crate) fn wanted(message: &LiveMessage) -> bool {
    message.reply.is_some() || has_jetstream_headers(&message.headers)
}

/// Whether `headers` hold one that asks for a JetStream check (dedup, expected values).
pub(crate) fn has_jetstream_headers(headers: &[Header]) -> bool {
    headers
        .iter()
        .any(|h| HEADERS.iter().any(|name| h.name.eq_ignore_ascii_case(name)))
}

/// The PubAck `{"stream":<stream>,"seq":<sequence>}` from its constant start
/// ([`StreamState::pub_ack_prefix`], rendered once per stream).
fn pub_ack(prefix: &[u8], sequence: u64) -> Bytes {
    let mut ack = BytesMut::with_capacity(prefix.len() + PUB_ACK_SUFFIX_BYTES_MAX);
    put_pub_ack(&mut ack, prefix, sequence);
    ack.freeze()
}

/// The longest end of a PubAck after its prefix: a u64's 20 digits and the closing brace.
const PUB_ACK_SUFFIX_BYTES_MAX: usize = 21;

/// Appends the PubAck of `sequence` to `out`.
fn put_pub_ack(out: &mut BytesMut, prefix: &[u8], sequence: u64) {
    let mut digits = [0u8; 20];
    out.extend_from_slice(prefix);
    out.extend_from_slice(decimal(sequence, &mut digits));
    out.extend_from_slice(b"}");
}

const PUB_ACK_ERROR: &str = "io.nats.jetstream.api.v1.pub_ack_response";

/// Stores `message` into `stream` (which captures its subject) and answers with a PubAck.
pub(crate) async fn handle(
    connection: &mut Connection,
    stream: String,
    message: LiveMessage,
) -> Result<(), NatsError> {
    let shared = connection.shared.clone();
    let engine = shared.engine.clone();
    let router = engine.live_router().clone();
    let reply = message.reply.clone();
    let refuse = |error: ApiError| {
        if let Some(reply) = reply.clone() {
            send(
                &router,
                reply,
                error.to_json(PUB_ACK_ERROR).to_string().into(),
            );
        }
    };
    let state = shared.jetstream.stream_state(&stream);
    let mut state = state.lock().await;
    if let Err(error) = state.load(&engine, &stream).await {
        refuse(ApiError::from_engine(&error));
        return Ok(());
    }
    let now = now_ms();
    state.expire(now);
    let headers = &message.headers;
    if header(headers, "Nats-Expected-Stream").is_some_and(|expected| expected != stream) {
        refuse(ApiError::expected_stream_mismatch());
        return Ok(());
    }
    let high_watermark = engine
        .partition_bounds(&stream, 0)
        .map_or(0, |(_, end)| end);
    let last = state.last_sequence(high_watermark);
    if let Some(expected) = header(headers, "Nats-Expected-Last-Sequence") {
        if expected.trim().parse::<u64>().ok() != Some(last) {
            refuse(ApiError::wrong_last_sequence(last));
            return Ok(());
        }
    }
    if let Some(expected) = header(headers, "Nats-Expected-Last-Subject-Sequence") {
        let subject_last = state.last_for_subject(&message.subject);
        if expected.trim().parse::<u64>().ok() != subject_last || subject_last.is_none() {
            refuse(ApiError::wrong_last_sequence(subject_last.unwrap_or(0)));
            return Ok(());
        }
    }
    if let Some(expected) = header(headers, "Nats-Expected-Last-Msg-Id") {
        let last_id = state.last_message_id.clone().unwrap_or_default();
        if expected != last_id {
            refuse(ApiError::wrong_last_msg_id(&last_id));
            return Ok(());
        }
    }
    let message_id = header(headers, MESSAGE_ID).filter(|id| !id.is_empty());
    if let Some(original) = message_id.as_deref().and_then(|id| state.duplicate_of(id)) {
        if let Some(reply) = reply.clone() {
            let ack = json!({"stream": stream, "seq": original, "duplicate": true});
            send(&router, reply, ack.to_string().into());
        }
        connection.acknowledge();
        return Ok(());
    }
    let subject = message.subject.clone();
    let pending = match engine
        .publish_live(message, Some(connection.mailbox.id()))
        .await
    {
        Ok(LivePublish::Captured(pending)) => pending,
        // The stream was deleted between the lookup and the append: the message reached
        // live subscribers only, as a core publish.
        Ok(LivePublish::Delivered(_)) => {
            refuse(ApiError::stream_not_found());
            return Ok(());
        }
        // A queue's stream: the message was enqueued into the queue, durably.
        Ok(LivePublish::Enqueued { position, .. }) => {
            let sequence = position.offset + 1;
            state.stored(&subject, message_id, sequence, now);
            let prefix = state.pub_ack_prefix.clone();
            drop(state);
            if let Some(reply) = reply {
                send(&router, reply, pub_ack(&prefix, sequence));
            }
            connection.acknowledge();
            return Ok(());
        }
        Err(error) => {
            refuse(ApiError::from_engine(&error));
            return Ok(());
        }
    };
    let sequence = pending.position().offset + 1;
    state.stored(&subject, message_id, sequence, now);
    let max_messages = state.max_messages;
    let prefix = state.pub_ack_prefix.clone();
    drop(state);
    let trim_engine = engine.clone();
    let answer_router = router.clone();
    push_capture(
        connection,
        Box::pin(async move {
            match pending.durable().await {
                Ok(_) => {
                    if let Some(max) = max_messages {
                        super::extras::trim(&trim_engine, &stream, max).await;
                    }
                    if let Some(reply) = reply {
                        send(&answer_router, reply, pub_ack(&prefix, sequence));
                    }
                    Ok(())
                }
                Err(error) => {
                    if let Some(reply) = reply {
                        let refusal = ApiError::from_engine(&error).to_json(PUB_ACK_ERROR);
                        send(&answer_router, reply, refusal.to_string().into());
                    }
                    Err(error)
                }
            }
        }),
    )
    .await;
    connection.acknowledge();
    Ok(())
}

/// Stores plain JetStream publishes (each with a reply subject, none with a JetStream
/// header) to subjects `stream` captures, read together on one connection, as one append
/// (`Engine::publish_live_batch`), and answers each with its PubAck once they are durable.
/// Without JetStream headers there is nothing to check but the stream's own limits, so the
/// per-stream lock is held only to give out their sequences in order.
pub(crate) async fn handle_batch(
    connection: &mut Connection,
    stream: String,
    messages: Vec<Arc<LiveMessage>>,
) -> Result<(), NatsError> {
    let shared = connection.shared.clone();
    let engine = shared.engine.clone();
    let router = engine.live_router().clone();
    let refuse = |message: &LiveMessage, error: &ApiError| {
        if let Some(reply) = message.reply.clone() {
            send(
                &router,
                reply,
                error.to_json(PUB_ACK_ERROR).to_string().into(),
            );
        }
    };
    let state = shared.jetstream.stream_state(&stream);
    let mut state = state.lock().await;
    if let Err(error) = state.load(&engine, &stream).await {
        let error = ApiError::from_engine(&error);
        messages.iter().for_each(|message| refuse(message, &error));
        return Ok(());
    }
    let now = now_ms();
    state.expire(now);
    let batch = match engine
        .publish_live_batch(&stream, messages.clone(), Some(connection.mailbox.id()))
        .await
    {
        Ok(batch) => batch,
        Err(error) => {
            let error = ApiError::from_engine(&error);
            messages.iter().for_each(|message| refuse(message, &error));
            return Ok(());
        }
    };
    for (message, outcome) in messages.iter().zip(batch.outcomes()) {
        match outcome {
            Ok(position) => state.stored(&message.subject, None, position.offset + 1, now),
            Err(error) => refuse(message, &ApiError::from_engine(error)),
        }
    }
    let max_messages = state.max_messages;
    let prefix = state.pub_ack_prefix.clone();
    drop(state);
    let answer_router = router.clone();
    push_capture(
        connection,
        Box::pin(async move {
            let done = batch.durable().await;
            if let Some(max) = max_messages {
                if done.iter().any(|(_, outcome)| outcome.is_ok()) {
                    super::extras::trim(&engine, &stream, max).await;
                }
            }
            let (answers, first_error) = pub_acks(&prefix, done);
            answer_router.publish_once_many(answers, None);
            first_error.map_or(Ok(()), Err)
        }),
    )
    .await;
    Ok(())
}

/// The answers to a stored batch, one per message with a reply subject, in order — PubAcks
/// rendered into one buffer (one allocation for the batch, not one each) — and the first
/// failure among them.
fn pub_acks(
    prefix: &[u8],
    done: Vec<(Arc<LiveMessage>, Result<RecordPosition, EngineError>)>,
) -> (Vec<Arc<LiveMessage>>, Option<EngineError>) {
    let mut rendered =
        BytesMut::with_capacity(done.len() * (prefix.len() + PUB_ACK_SUFFIX_BYTES_MAX));
    let mut answers = Vec::with_capacity(done.len());
    let mut first_error = None;
    for (message, outcome) in done {
        let payload = match &outcome {
            Ok(position) => {
                put_pub_ack(&mut rendered, prefix, position.offset + 1);
                rendered.split().freeze()
            }
            Err(error) => ApiError::from_engine(error)
                .to_json(PUB_ACK_ERROR)
                .to_string()
                .into(),
        };
        // The message is usually ours alone by now: its reply subject moves, not copies.
        let reply =
            Arc::try_unwrap(message).map_or_else(|shared| shared.reply.clone(), |own| own.reply);
        if let Some(reply) = reply {
            answers.push(Arc::new(LiveMessage {
                subject: reply,
                reply: None,
                headers: Vec::new(),
                payload,
                status: None,
                appended: false,
            }));
        }
        if let Err(error) = outcome {
            first_error.get_or_insert(error);
        }
    }
    (answers, first_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(reply: Option<&str>) -> Arc<LiveMessage> {
        Arc::new(LiveMessage {
            subject: "orders.created".into(),
            reply: reply.map(str::to_string),
            ..LiveMessage::default()
        })
    }

    fn at(offset: u64) -> Result<RecordPosition, EngineError> {
        Ok(RecordPosition {
            partition: 0,
            offset,
        })
    }

    #[test]
    fn a_stored_batch_is_answered_in_order_on_each_reply_subject() {
        let prefix = br#"{"stream":"ORDERS","seq":"#;
        let kept = stored(Some("_INBOX.a.3"));
        let done = vec![
            (stored(Some("_INBOX.a.1")), at(0)),
            (stored(None), at(1)),
            (stored(Some("_INBOX.a.2")), at(u64::MAX - 1)),
            (
                kept.clone(),
                Err(EngineError::StreamNotFound("ORDERS".into())),
            ),
        ];
        let (answers, first_error) = pub_acks(prefix, done);
        let answers: Vec<(&str, String)> = answers
            .iter()
            .map(|a| {
                (
                    a.subject.as_str(),
                    String::from_utf8_lossy(&a.payload).into(),
                )
            })
            .collect();
        assert_eq!(
            answers[0],
            ("_INBOX.a.1", r#"{"stream":"ORDERS","seq":1}"#.into())
        );
        assert_eq!(
            answers[1],
            (
                "_INBOX.a.2",
                format!(r#"{{"stream":"ORDERS","seq":{}}}"#, u64::MAX)
            ),
            "no reply subject, no answer; the longest sequence fits"
        );
        assert_eq!(
            answers[2].0, "_INBOX.a.3",
            "a shared message's reply is copied"
        );
        let refusal: serde_json::Value = serde_json::from_str(&answers[2].1).unwrap();
        assert_eq!(refusal["error"]["err_code"], 10059);
        assert_eq!(answers.len(), 3);
        assert!(matches!(first_error, Some(EngineError::StreamNotFound(_))));
        assert_eq!(pub_ack(prefix, 42), r#"{"stream":"ORDERS","seq":42}"#);
    }
}
