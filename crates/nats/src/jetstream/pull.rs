//! `$JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>`: a pull request.
//!
//! Protocol (nats-server's `consumer.go`, `processNextMsgRequest`): the body is empty (one
//! message), a number (a batch), or `{"batch","expires","no_wait","max_bytes",
//! "idle_heartbeat"}` (durations in ns). Messages go to the request's reply subject with their
//! own subject and the reply `$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer
//! seq>.<timestamp ns>.<pending>`; a request ends when its batch is full, or with a status
//! message on the reply subject: `404 No Messages` (no_wait, no expires and nothing there),
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
//!
//! A task hands its messages over in chunks (`PULL_CHUNK_MESSAGES` messages or
//! `PULL_CHUNK_BYTES` of payload, whichever comes first), not one by one: each hand-over is a
//! channel send and a wake-up of the connection's task, and a chunk leaves in one socket
//! write rather than one per message. The bound on what waits for a connection is unchanged:
//! `PULL_OUTPUT_CAPACITY` messages (the channel holds that many chunks' worth).

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
/// Messages one hand-over from a pull task to its connection holds at most.
pub(crate) const PULL_CHUNK_MESSAGES: usize = 64;
/// Payload bytes one hand-over holds at most (a single larger message goes alone), so a chunk
/// never takes the connection's write buffer far past its batch.
pub(crate) const PULL_CHUNK_BYTES: usize = 256 * 1024;
/// Hand-overs the channel to a connection holds: `PULL_OUTPUT_CAPACITY` messages in all.
pub(crate) const PULL_CHANNEL_CHUNKS: usize = PULL_OUTPUT_CAPACITY / PULL_CHUNK_MESSAGES;
const _: () = assert!(PULL_CHANNEL_CHUNKS >= 1);

/// What a pull task hands its connection: messages (in order) or a status, for the
/// subscription matching `inbox`.
#[derive(Debug)]
pub(crate) enum PullOutput {
    Messages {
        inbox: String,
        messages: Vec<LiveMessage>,
    },
    Status {
        inbox: String,
        block: Bytes,
    },
}

/// Cuts `messages` into hand-overs of at most [`PULL_CHUNK_MESSAGES`] messages and
/// [`PULL_CHUNK_BYTES`] of payload (a message larger than that alone), in order.
fn chunks(messages: Vec<LiveMessage>) -> Vec<Vec<LiveMessage>> {
    let mut chunks = Vec::new();
    let mut chunk: Vec<LiveMessage> = Vec::new();
    let mut bytes = 0usize;
    for message in messages {
        let size = message.payload.len();
        if !chunk.is_empty()
            && (chunk.len() >= PULL_CHUNK_MESSAGES || bytes + size > PULL_CHUNK_BYTES)
        {
            chunks.push(std::mem::take(&mut chunk));
            bytes = 0;
        }
        bytes += size;
        chunk.push(message);
    }
    if !chunk.is_empty() {
        chunks.push(chunk);
    }
    chunks
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
        let prefix = ack_prefix(stream, consumer);
        let mut messages = Vec::with_capacity(deliveries.len());
        for delivery in deliveries {
            let size = delivery.record.value.as_ref().map_or(0, |v| v.len());
            messages.push(to_message_with(&prefix, stream, delivery));
            remaining -= 1;
            if request.max_bytes > 0 {
                bytes_left = bytes_left.saturating_sub(size.max(1));
            }
        }
        for messages in chunks(messages) {
            let sent = output.send(PullOutput::Messages {
                inbox: inbox.clone(),
                messages,
            });
            if sent.await.is_err() {
                return;
            }
            delivered_any = true;
        }
        if remaining == 0 {
            return;
        }
        if request.max_bytes > 0 && bytes_left == 0 {
            let _ = send_status(status(409, "Message Size Exceeds MaxBytes", None)).await;
            return;
        }
        // nats-server: no_wait ends a request as soon as it delivered something (408 for the
        // rest); with nothing there, at once with a 404 — unless it has an `expires`, then it
        // waits like any request and ends at the first messages (nats-py's fetch sends that).
        if request.no_wait && (delivered_any || request.expires.is_none()) {
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

/// `$JS.ACK.<stream>.<consumer>.`, the start every ack subject of a consumer shares: built
/// once per batch, not once per message.
pub(crate) fn ack_prefix(stream: &str, consumer: &str) -> String {
    format!("$JS.ACK.{stream}.{consumer}.")
}

/// A delivery as the message a JetStream client expects, with the consumer's [`ack_prefix`]
/// given. The ack subject's numbers are written digit by digit: `format!` was a tenth of a
/// pull's broker CPU.
pub(crate) fn to_message_with(
    ack_prefix: &str,
    stream: &str,
    delivery: ConsumerDelivery,
) -> LiveMessage {
    let record = delivery.record;
    let subject = if record.subject.is_empty() {
        stream.to_string()
    } else {
        record.subject
    };
    let mut ack = String::with_capacity(ack_prefix.len() + 5 * 20 + 4);
    ack.push_str(ack_prefix);
    push_decimal(&mut ack, u128::from(delivery.attempt));
    ack.push('.');
    push_decimal(&mut ack, u128::from(record.offset + 1));
    ack.push('.');
    push_decimal(&mut ack, u128::from(delivery.delivery_count));
    ack.push('.');
    push_decimal(&mut ack, record.timestamp_ms.max(0) as u128 * 1_000_000);
    ack.push('.');
    push_decimal(&mut ack, u128::from(delivery.pending));
    LiveMessage {
        subject,
        reply: Some(ack),
        headers: record.headers,
        payload: record.value.unwrap_or_default(),
        status: None,
        appended: false,
    }
}

fn push_decimal(out: &mut String, value: u128) {
    // u128 division is several times slower than u64's; only a timestamp in ns far in the
    // future needs it.
    if let Ok(small) = u64::try_from(value) {
        return push_decimal_u64(out, small);
    }
    out.push_str(&value.to_string());
}

fn push_decimal_u64(out: &mut String, value: u64) {
    let mut digits = [0u8; 20];
    for digit in crate::codec::encode::decimal(value, &mut digits) {
        out.push(char::from(*digit));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(offset: u64, timestamp_ms: i64, subject: &str) -> ConsumerDelivery {
        ConsumerDelivery {
            record: omnibus_types::Record {
                offset,
                timestamp_ms,
                subject: subject.to_string(),
                key: None,
                value: Some(Bytes::from_static(b"payload")),
                headers: Vec::new(),
            },
            attempt: 2,
            delivery_count: 17,
            pending: 40,
        }
    }

    fn to_message(stream: &str, consumer: &str, delivery: ConsumerDelivery) -> LiveMessage {
        to_message_with(&ack_prefix(stream, consumer), stream, delivery)
    }

    #[test]
    fn ack_subjects_carry_the_nine_tokens_nats_server_sends() {
        let message = to_message(
            "orders",
            "worker",
            delivery(41, 1_764_000_000_123, "orders.new"),
        );
        assert_eq!(message.subject, "orders.new");
        assert_eq!(
            message.reply.as_deref(),
            Some("$JS.ACK.orders.worker.2.42.17.1764000000123000000.40")
        );
        assert_eq!(&message.payload[..], b"payload");
        // A record stored without a subject is delivered on the stream's name; a time before
        // the epoch reads as 0; a time whose nanoseconds pass u64 is still written whole.
        let message = to_message("orders", "worker", delivery(0, -5, ""));
        assert_eq!(message.subject, "orders");
        assert_eq!(
            message.reply.as_deref(),
            Some("$JS.ACK.orders.worker.2.1.17.0.40")
        );
        let message = to_message("s", "c", delivery(u64::MAX - 1, i64::MAX, "s"));
        let expected = format!(
            "$JS.ACK.s.c.2.{}.17.{}.40",
            u64::MAX,
            i64::MAX as u128 * 1_000_000
        );
        assert_eq!(message.reply.as_deref(), Some(expected.as_str()));
    }

    fn message_of(size: usize) -> LiveMessage {
        LiveMessage {
            subject: "s".into(),
            reply: None,
            headers: Vec::new(),
            payload: Bytes::from(vec![b'x'; size]),
            status: None,
            appended: false,
        }
    }

    #[test]
    fn hand_overs_are_bounded_by_count_and_bytes_and_keep_the_order() {
        let sizes =
            |chunks: &[Vec<LiveMessage>]| -> Vec<usize> { chunks.iter().map(Vec::len).collect() };
        assert!(chunks(Vec::new()).is_empty());
        let many: Vec<LiveMessage> = (0..150)
            .map(|index| {
                let mut message = message_of(10);
                message.subject = index.to_string();
                message
            })
            .collect();
        let cut = chunks(many);
        assert_eq!(sizes(&cut), vec![64, 64, 22]);
        let order: Vec<String> = cut.iter().flatten().map(|m| m.subject.clone()).collect();
        let expected: Vec<String> = (0..150).map(|index: i32| index.to_string()).collect();
        assert_eq!(order, expected);
        // Bytes: 100 KiB messages, two fit in 256 KiB; one over the bound goes alone.
        let big = vec![
            message_of(100 * 1024),
            message_of(100 * 1024),
            message_of(100 * 1024),
            message_of(300 * 1024),
            message_of(1),
        ];
        assert_eq!(sizes(&chunks(big)), vec![2, 1, 1, 1]);
    }

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
