//! Acknowledgements: a publish to `$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.
//! <consumer seq>.<timestamp>.<pending>` (the reply subject of a delivered message).
//!
//! Protocol (nats-server's `consumer.go`, `processAck`): the body says what: empty or `+ACK`
//! (done), `-NAK` with an optional `{"delay":ns}` (redeliver, after the delay), `+WPI` (in
//! progress: the ack wait starts again), `+TERM [reason]` (never redeliver), `+NXT [request]`
//! (done, and deliver the next to the ack's reply subject). An ack with a reply subject (a
//! "double ack", `AckSync`) is answered with an empty message once it is settled. Acks of
//! unknown or already settled deliveries are ignored.
//!
//! Our choices: an ack with a reply subject (double ack, `AckSync`), a nak and a term are
//! answered only once the engine has committed them (fsynced): a double-acked message is
//! never delivered again, even after a kill -9. A plain ack (and `+NXT`'s ack), which nobody
//! waits for, is committed lazily with the consumer's next batch, within 5 ms plus one group
//! commit (`Engine::consumer_ack_lazily`): a crash before that delivers the message again,
//! which JetStream's at-least-once contract allows — as nats-server, which does not fsync
//! acks at all. Acks are pipelined with the connection's other durable work (they share its
//! in-flight bound). The 12-token form with domain and account hash is not produced by us,
//! so it is not read.
//!
//! Plain acks (no reply subject, no headers, an empty or `+ACK` body) that one read of a
//! connection brings one after another for the same consumer are settled together
//! ([`AckBatch`], up to `ACK_BATCH_MAX`): one engine call, one consumer lock and one lazy
//! commit for the batch (`Engine::consumer_ack_many_lazily`). Any other operation hands the
//! batch over first, and so does the end of the read, so acks keep their order with
//! everything else the connection does.

use bytes::Bytes;
use omnibus_engine::EngineError;
use serde_json::Value;

use super::send;
use crate::codec::PublishOp;
use crate::handlers::{push_capture, Connection};

/// The prefix of every acknowledgement subject.
pub(crate) const ACK_PREFIX: &str = "$JS.ACK.";

/// Plain acks one batch holds at most; the next one hands it over.
pub(crate) const ACK_BATCH_MAX: usize = 256;

/// Plain acks of one consumer, read one after another and not yet handed to the engine.
#[derive(Default)]
pub(crate) struct AckBatch {
    stream: String,
    consumer: String,
    /// (offset, attempt) of each ack, in order.
    acks: Vec<(u64, u32)>,
}

/// The stream, consumer, delivery attempt and stream sequence an ack subject names
/// (`$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<ts>.<pending>`);
/// `None` for any other shape.
fn parse_subject(subject: &str) -> Option<(&str, &str, u32, u64)> {
    let rest = subject.strip_prefix(ACK_PREFIX)?;
    let mut tokens = rest.split('.');
    let stream = tokens.next()?;
    let consumer = tokens.next()?;
    let attempt = tokens.next()?.parse::<u32>().ok()?;
    let sequence = tokens.next()?.parse::<u64>().ok()?;
    // Three more tokens (consumer sequence, timestamp, pending), and no other.
    if tokens.by_ref().take(3).count() != 3 || tokens.next().is_some() {
        return None;
    }
    Some((stream, consumer, attempt, sequence))
}

/// Takes `publish` into the connection's ack batch when it is a plain ack (true); the caller
/// handles anything else itself.
pub(crate) async fn batch(connection: &mut Connection, publish: &PublishOp) -> bool {
    if publish.reply.is_some()
        || publish.headers.is_some()
        || connection.options.verbose()
        || kind_of(&publish.payload) != Some(AckKind::Ack)
        || omnibus_types::validate_subject(&publish.subject).is_err()
    {
        return false;
    }
    let Some((stream, consumer, attempt, sequence)) = parse_subject(&publish.subject) else {
        return false;
    };
    let batch = &connection.acks;
    if !batch.acks.is_empty() && (batch.stream != stream || batch.consumer != consumer) {
        flush(connection).await;
    }
    let batch = &mut connection.acks;
    if batch.acks.is_empty() {
        batch.stream.clear();
        batch.stream.push_str(stream);
        batch.consumer.clear();
        batch.consumer.push_str(consumer);
    }
    batch.acks.push((sequence.saturating_sub(1), attempt));
    if batch.acks.len() >= ACK_BATCH_MAX {
        flush(connection).await;
    }
    true
}

/// Hands the connection's batched plain acks to the engine, pipelined with its other
/// durable work as a single ack is.
/// Whether acks wait in the batch.
pub(crate) fn waiting(connection: &Connection) -> bool {
    !connection.acks.acks.is_empty()
}

pub(crate) async fn flush(connection: &mut Connection) {
    if connection.acks.acks.is_empty() {
        return;
    }
    let acks = std::mem::take(&mut connection.acks.acks);
    let stream = connection.acks.stream.clone();
    let consumer = connection.acks.consumer.clone();
    connection.shared.jetstream.touch(&stream, &consumer);
    let engine = connection.shared.engine.clone();
    let settle = async move {
        let acked = engine
            .consumer_ack_many_lazily(&stream, &consumer, &acks)
            .await;
        ignore_unknown(acked)
    };
    push_capture(connection, Box::pin(settle)).await;
}

#[derive(Debug, PartialEq)]
enum AckKind {
    Ack,
    Nak { delay_ms: Option<u64> },
    Progress,
    Term { reason: String },
    Next { request: Bytes },
}

fn kind_of(payload: &Bytes) -> Option<AckKind> {
    let text = String::from_utf8_lossy(payload);
    let text = text.trim();
    let (verb, rest) = text.split_once(' ').unwrap_or((text, ""));
    let rest = rest.trim();
    Some(match verb {
        "" | "+ACK" => AckKind::Ack,
        "-NAK" => {
            let delay_ms = serde_json::from_str::<Value>(rest)
                .ok()
                .and_then(|v| v.get("delay").and_then(Value::as_u64))
                .map(|ns| ns / 1_000_000);
            AckKind::Nak { delay_ms }
        }
        "+WPI" => AckKind::Progress,
        "+TERM" => AckKind::Term {
            reason: rest.to_string(),
        },
        "+NXT" => AckKind::Next {
            request: Bytes::copy_from_slice(rest.as_bytes()),
        },
        _ => return None,
    })
}

/// Settles the acknowledgement `subject` names, as its body says.
pub(crate) async fn handle(
    connection: &mut Connection,
    subject: &str,
    reply: Option<String>,
    payload: &Bytes,
) {
    let Some((stream, consumer, attempt, sequence)) = parse_subject(subject) else {
        return;
    };
    let Some(kind) = kind_of(payload) else {
        return;
    };
    let offset = sequence.saturating_sub(1);
    connection.shared.jetstream.touch(stream, consumer);
    let engine = connection.shared.engine.clone();
    let (stream, consumer) = (stream.to_string(), consumer.to_string());
    if let AckKind::Next { request } = kind {
        let acked = engine
            .consumer_ack_lazily(&stream, &consumer, offset, attempt)
            .await;
        if let Err(error) = ignore_unknown(acked) {
            tracing::warn!(stream, consumer, "a JetStream +NXT ack failed: {error}");
        }
        if let Some(inbox) = reply {
            super::pull::start(connection, &stream, &consumer, inbox, &request);
        }
        return;
    }
    let router = engine.live_router().clone();
    let settle = async move {
        let outcome = match kind {
            // Someone waits for the answer: only once durable.
            AckKind::Ack if reply.is_some() => {
                engine
                    .consumer_ack(&stream, &consumer, offset, attempt)
                    .await
            }
            AckKind::Ack => {
                engine
                    .consumer_ack_lazily(&stream, &consumer, offset, attempt)
                    .await
            }
            AckKind::Nak { delay_ms } => {
                engine
                    .consumer_nack(&stream, &consumer, offset, attempt, delay_ms)
                    .await
            }
            AckKind::Progress => {
                engine
                    .consumer_progress(&stream, &consumer, offset, attempt)
                    .await
            }
            AckKind::Term { reason } => {
                engine
                    .consumer_term(&stream, &consumer, offset, attempt, &reason)
                    .await
            }
            AckKind::Next { .. } => Ok(()),
        };
        let settled = ignore_unknown(outcome);
        if settled.is_ok() {
            if let Some(reply) = reply {
                send(&router, reply, Bytes::new());
            }
        }
        settled
    };
    push_capture(connection, Box::pin(settle)).await;
}

/// Acks of deliveries that are settled already, unknown or of a deleted consumer are
/// ignored, as nats-server ignores them.
fn ignore_unknown(outcome: Result<(), EngineError>) -> Result<(), EngineError> {
    match outcome {
        Err(
            EngineError::UnknownDelivery(_)
            | EngineError::StaleAttempt(_)
            | EngineError::ConsumerNotFound { .. }
            | EngineError::StreamNotFound(_),
        ) => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ack_subjects_are_read_in_their_nine_token_form_only() {
        assert_eq!(
            parse_subject("$JS.ACK.orders.worker.2.42.17.1764000000123000000.40"),
            Some(("orders", "worker", 2, 42))
        );
        for subject in [
            "$JS.ACK.orders.worker.2.42.17.1764000000123000000",
            "$JS.ACK.orders.worker.2.42.17.1764000000123000000.40.extra",
            "$JS.ACK.orders.worker.x.42.17.1.40",
            "$JS.ACK.orders.worker.2.-1.17.1.40",
            "$JS.ACK.domain.hash.orders.worker.2.42.17.1.40.token",
            "$JS.API.orders.worker.2.42.17.1.40",
        ] {
            assert_eq!(parse_subject(subject), None, "{subject}");
        }
    }

    #[test]
    fn ack_bodies_are_read_as_clients_send_them() {
        let kind = |body: &'static str| kind_of(&Bytes::from_static(body.as_bytes()));
        assert_eq!(kind(""), Some(AckKind::Ack));
        assert_eq!(kind("+ACK"), Some(AckKind::Ack));
        assert_eq!(kind("-NAK"), Some(AckKind::Nak { delay_ms: None }));
        assert_eq!(
            kind(r#"-NAK {"delay":2000000000}"#),
            Some(AckKind::Nak {
                delay_ms: Some(2000)
            })
        );
        assert_eq!(kind("+WPI"), Some(AckKind::Progress));
        assert_eq!(
            kind("+TERM bad input"),
            Some(AckKind::Term {
                reason: "bad input".into()
            })
        );
        assert_eq!(kind("something else"), None);
    }
}
