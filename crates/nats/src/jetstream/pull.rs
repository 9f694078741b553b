//! `$JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>`: a pull request.
//!
//! Protocol (nats-server's `consumer.go`, `processNextMsgRequest`): the body is empty (one
//! message), a number (a batch), or `{"batch","expires","no_wait","max_bytes",
//! "idle_heartbeat"}` (durations in ns). Messages go to the request's reply subject with their
//! own subject and the reply `$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer
//! seq>.<timestamp ns>.<pending>`; a request ends when its batch is full, or with a status
//! message on the reply subject: `404 No Messages` (no_wait and nothing there),
//! `408 Request Timeout` with `Nats-Pending-Messages` and `Nats-Pending-Bytes` (expired),
//! `409 Message Size Exceeds MaxBytes`, `409 Consumer Deleted`; `100 Idle Heartbeat` while
//! waiting, when asked for.
//!
//! Our choices: a request runs as a task of its own that hands its messages to the
//! connection that made it (through a bounded channel, so a client that stops reading stops
//! the task leasing more), and is written on that connection's subscription matching the reply
//! subject — the way clients pull (they subscribe the inbox on the same connection). A request
//! to a consumer that does not exist gets the no-responders status, as from nats-server (the
//! consumer is what would answer). A connection may have `PULLS_PER_CONNECTION_MAX` requests
//! waiting; one more gets `409 Exceeded MaxWaiting`. A request without `expires` waits at most
//! `REQUEST_WAIT_MAX`.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use omnibus_engine::consumers::ConsumerDelivery;
use omnibus_engine::router::LiveMessage;
use omnibus_engine::{Engine, EngineError};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::handlers::Connection;

/// Pull requests one connection may have waiting at once.
pub(crate) const PULLS_PER_CONNECTION_MAX: usize = 1024;
/// Messages one request may ask for.
pub(crate) const BATCH_MAX: usize = 10_000;
/// The longest a request waits for its batch.
pub(crate) const REQUEST_WAIT_MAX: Duration = Duration::from_secs(3600);
/// Deliveries on their way from pull tasks to one connection.
pub(crate) const PULL_OUTPUT_CAPACITY: usize = 256;

/// What a pull task hands its connection: a message or a status, for the subscription
/// matching `inbox`.
#[derive(Debug)]
pub(crate) enum PullOutput {
    Message { inbox: String, message: LiveMessage },
    Status { inbox: String, block: Bytes },
}

#[derive(Debug, Clone, PartialEq)]
struct PullRequest {
    batch: usize,
    expires: Option<Duration>,
    no_wait: bool,
    max_bytes: usize,
    idle_heartbeat: Option<Duration>,
}

fn parse(payload: &Bytes) -> PullRequest {
    let mut request = PullRequest {
        batch: 1,
        expires: None,
        no_wait: false,
        max_bytes: 0,
        idle_heartbeat: None,
    };
    let text = String::from_utf8_lossy(payload);
    let text = text.trim();
    if let Ok(batch) = text.parse::<usize>() {
        request.batch = batch;
    } else if let Ok(Value::Object(json)) = serde_json::from_str::<Value>(text) {
        let number = |field: &str| json.get(field).and_then(Value::as_u64).filter(|n| *n > 0);
        request.batch = number("batch").unwrap_or(1) as usize;
        request.expires = number("expires").map(Duration::from_nanos);
        request.no_wait = json
            .get("no_wait")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        request.max_bytes = number("max_bytes").unwrap_or(0) as usize;
        request.idle_heartbeat = number("idle_heartbeat").map(Duration::from_nanos);
    }
    request.batch = request.batch.clamp(1, BATCH_MAX);
    request
}

fn status(code: u16, text: &str, pending: Option<(usize, usize)>) -> Bytes {
    let mut block = format!("NATS/1.0 {code} {text}\r\n");
    if let Some((messages, bytes)) = pending {
        block.push_str(&format!(
            "Nats-Pending-Messages: {messages}\r\nNats-Pending-Bytes: {bytes}\r\n"
        ));
    }
    block.push_str("\r\n");
    Bytes::from(block)
}

/// Starts a pull request of `connection` for `stream`/`consumer`, answered on `inbox`.
pub(crate) fn start(
    connection: &mut Connection,
    stream: &str,
    consumer: &str,
    inbox: String,
    payload: &Bytes,
) {
    let engine = connection.shared.engine.clone();
    let reply = |block: Bytes| PullOutput::Status {
        inbox: inbox.clone(),
        block,
    };
    if engine.consumer_info(stream, consumer).is_err() {
        connection.write_pull(reply(Bytes::from_static(b"NATS/1.0 503\r\n\r\n")));
        return;
    }
    let active = connection.pulls_active.clone();
    if active.fetch_add(1, Ordering::AcqRel) >= PULLS_PER_CONNECTION_MAX {
        active.fetch_sub(1, Ordering::AcqRel);
        connection.write_pull(reply(status(409, "Exceeded MaxWaiting", None)));
        return;
    }
    let request = parse(payload);
    connection.shared.jetstream.touch(stream, consumer);
    let output = connection.pulls_tx.clone();
    let waiting = connection.shared.jetstream.waiting_guard(stream, consumer);
    let (stream, consumer) = (stream.to_string(), consumer.to_string());
    tokio::spawn(async move {
        run(&engine, &stream, &consumer, inbox, request, &output).await;
        drop(waiting);
        active.fetch_sub(1, Ordering::AcqRel);
    });
}

async fn run(
    engine: &Arc<Engine>,
    stream: &str,
    consumer: &str,
    inbox: String,
    request: PullRequest,
    output: &mpsc::Sender<PullOutput>,
) {
    let deadline = Instant::now()
        + request
            .expires
            .unwrap_or(REQUEST_WAIT_MAX)
            .min(REQUEST_WAIT_MAX);
    let mut remaining = request.batch;
    let mut bytes_left = request.max_bytes;
    let mut delivered_any = false;
    let send_status = |block: Bytes| {
        output.send(PullOutput::Status {
            inbox: inbox.clone(),
            block,
        })
    };
    loop {
        let deliveries = match engine
            .consumer_next(stream, consumer, remaining, bytes_left)
            .await
        {
            Ok(deliveries) => deliveries,
            Err(EngineError::ConsumerNotFound { .. } | EngineError::StreamNotFound(_)) => {
                let _ = send_status(status(409, "Consumer Deleted", None)).await;
                return;
            }
            Err(error) => {
                tracing::warn!(stream, consumer, "a JetStream pull failed: {error}");
                let _ = send_status(status(503, "Unavailable", None)).await;
                return;
            }
        };
        for delivery in deliveries {
            let size = delivery.record.value.as_ref().map_or(0, |v| v.len());
            let message = to_message(stream, consumer, delivery);
            let sent = output.send(PullOutput::Message {
                inbox: inbox.clone(),
                message,
            });
            if sent.await.is_err() {
                return;
            }
            delivered_any = true;
            remaining -= 1;
            if request.max_bytes > 0 {
                bytes_left = bytes_left.saturating_sub(size.max(1));
            }
        }
        if remaining == 0 {
            return;
        }
        if request.max_bytes > 0 && bytes_left == 0 {
            let _ = send_status(status(409, "Message Size Exceeds MaxBytes", None)).await;
            return;
        }
        if request.no_wait {
            // nats-server: no_wait ends a request with what was there; with nothing, a 404.
            let block = if delivered_any {
                status(408, "Request Timeout", Some((remaining, bytes_left)))
            } else {
                status(404, "No Messages", None)
            };
            let _ = send_status(block).await;
            return;
        }
        let now = Instant::now();
        if now >= deadline {
            let block = status(408, "Request Timeout", Some((remaining, bytes_left)));
            let _ = send_status(block).await;
            return;
        }
        let mut wait = deadline - now;
        if let Some(heartbeat) = request.idle_heartbeat {
            wait = wait.min(heartbeat);
        }
        tokio::select! {
            waited = engine.consumer_wait(stream, consumer, wait) => {
                if waited.is_err() {
                    let _ = send_status(status(409, "Consumer Deleted", None)).await;
                    return;
                }
            }
            () = output.closed() => return,
        }
        if request.idle_heartbeat.is_some_and(|beat| wait == beat)
            && Instant::now() < deadline
            && send_status(status(100, "Idle Heartbeat", None))
                .await
                .is_err()
        {
            return;
        }
    }
}

/// A delivery as the message a JetStream client expects.
pub(crate) fn to_message(stream: &str, consumer: &str, delivery: ConsumerDelivery) -> LiveMessage {
    let record = delivery.record;
    let subject = if record.subject.is_empty() {
        stream.to_string()
    } else {
        record.subject
    };
    let ack = format!(
        "$JS.ACK.{stream}.{consumer}.{}.{}.{}.{}.{}",
        delivery.attempt,
        record.offset + 1,
        delivery.delivery_count,
        record.timestamp_ms.max(0) as u128 * 1_000_000,
        delivery.pending,
    );
    LiveMessage {
        subject,
        reply: Some(ack),
        headers: record.headers,
        payload: record.value.unwrap_or_default(),
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_bodies_are_read_as_clients_send_them() {
        assert_eq!(parse(&Bytes::new()).batch, 1);
        assert_eq!(parse(&Bytes::from_static(b"7")).batch, 7);
        let request = parse(&Bytes::from_static(
            br#"{"batch":5,"expires":2000000000,"no_wait":true,"max_bytes":100}"#,
        ));
        assert_eq!(
            request,
            PullRequest {
                batch: 5,
                expires: Some(Duration::from_secs(2)),
                no_wait: true,
                max_bytes: 100,
                idle_heartbeat: None,
            }
        );
        assert_eq!(
            parse(&Bytes::from_static(br#"{"batch":99999999}"#)).batch,
            BATCH_MAX
        );
        assert_eq!(
            &status(408, "Request Timeout", Some((3, 0)))[..],
            b"NATS/1.0 408 Request Timeout\r\nNats-Pending-Messages: 3\r\nNats-Pending-Bytes: 0\r\n\r\n"
        );
    }
}
