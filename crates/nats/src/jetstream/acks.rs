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

use bytes::Bytes;
use omnibus_engine::EngineError;
use serde_json::Value;

use super::send;
use crate::handlers::{push_capture, Connection};

/// The prefix of every acknowledgement subject.
pub(crate) const ACK_PREFIX: &str = "$JS.ACK.";

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
    let tokens: Vec<&str> = subject.split('.').collect();
    let [_, _, stream, consumer, delivered, stream_sequence, ..] = tokens[..] else {
        return;
    };
    if tokens.len() != 9 {
        return;
    }
    let (Ok(attempt), Ok(sequence)) = (delivered.parse::<u32>(), stream_sequence.parse::<u64>())
    else {
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
