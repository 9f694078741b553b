//! Push consumers: a consumer with a `deliver_subject` is driven by the broker, which sends
//! its records to that subject as they become available.
//!
//! Protocol (nats-server's `consumer.go`): each record is a message on the deliver subject that
//! keeps its own subject, with the same `$JS.ACK.…` reply as a pulled one; a `deliver_group`
//! means the deliver subject's queue-group subscribers share the records; delivery happens
//! only while someone subscribes the deliver subject. An ephemeral consumer nobody subscribes
//! to is deleted after its `inactive_threshold` (5 s by default).
//!
//! Our choices: one task per push consumer leases records (`Engine::consumer_next`) and
//! routes them through the engine's live router to the deliver subject's subscribers
//! (`LiveRouter::publish_to`), whatever connection they are on; queue groups are the
//! router's. The broker holds a consumer back on its own: the task sends only while every
//! subscriber's mailbox holds less than `PENDING_MESSAGES_MAX` messages and
//! `PENDING_BYTES_MAX` bytes, so a slow reader is never cut off as a slow consumer by its own
//! consumer. `idle_heartbeat` is honoured: a `100 Idle Heartbeat` status with
//! `Nats-Last-Consumer` and `Nats-Last-Stream` goes to the deliver subject whenever nothing was
//! sent for that long (ordered consumers check those sequences for gaps).
//!
//! Flow control (`flow_control: true`), as nats-server does it: after every
//! [`FLOW_CONTROL_MESSAGES`] messages or [`FLOW_CONTROL_BYTES`] payload bytes the task sends a
//! `NATS/1.0 100 FlowControl Request` status whose reply subject is
//! `$JS.FC.<stream>.<consumer>.<n>`; the client answers by publishing an empty message to it
//! (async-nats and nats-py do so by themselves). The task goes on for one more such window,
//! then stalls until the request is answered; while stalled, heartbeats carry
//! `Nats-Consumer-Stalled: <that reply subject>` so a client that missed the request can
//! answer it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use omnibus_engine::router::{LiveMessage, LiveStatus};
use omnibus_engine::{Engine, EngineError};
use omnibus_types::Header;
use serde_json::Value;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::pull::{ack_prefix, to_message_with};

/// Records leased per round.
const BATCH: usize = 256;
/// A subscriber's mailbox above either bound holds the consumer back.
pub(crate) const PENDING_MESSAGES_MAX: usize = 1024;
pub(crate) const PENDING_BYTES_MAX: usize = 8 * 1024 * 1024;
/// How often a consumer without interest (or held back) looks again.
const IDLE_POLL: Duration = Duration::from_millis(25);
/// The longest wait for records before looking at the interest again.
const WAIT_MAX: Duration = Duration::from_secs(1);
/// nats-server's default `inactive_threshold` of an ephemeral consumer.
const INACTIVE_DEFAULT: Duration = Duration::from_secs(5);
/// The subjects flow-control requests are answered on: `$JS.FC.<stream>.<consumer>.<n>`.
pub(crate) const FLOW_CONTROL_PREFIX: &str = "$JS.FC.";
/// Messages sent between two flow-control requests (a window); the task stalls when a whole
/// window was sent after a request still unanswered.
pub(crate) const FLOW_CONTROL_MESSAGES: usize = 512;
/// Payload bytes of a window, whichever comes first.
pub(crate) const FLOW_CONTROL_BYTES: usize = 1024 * 1024;

/// The answers to one push consumer's flow-control requests, shared between its task and
/// the connections that receive the answers.
#[derive(Debug, Default)]
pub(crate) struct FlowControl {
    /// The highest request number answered.
    answered: AtomicU64,
    changed: Notify,
}

impl FlowControl {
    /// Request `number` was answered (so were the ones before it).
    pub(crate) fn answer(&self, number: u64) {
        self.answered.fetch_max(number, Ordering::AcqRel);
        self.changed.notify_waiters();
    }
}

/// Where a flow-controlled task is between requests.
struct FlowWindow {
    answers: Arc<FlowControl>,
    /// The last request number sent (0: none yet).
    requested: u64,
    /// Sent since the last request.
    messages: usize,
    bytes: usize,
}

impl FlowWindow {
    fn unanswered(&self) -> bool {
        self.answers.answered.load(Ordering::Acquire) < self.requested
    }

    fn window_full(&self) -> bool {
        self.messages >= FLOW_CONTROL_MESSAGES || self.bytes >= FLOW_CONTROL_BYTES
    }

    fn reply(&self, stream: &str, consumer: &str) -> String {
        format!(
            "{FLOW_CONTROL_PREFIX}{stream}.{consumer}.{}",
            self.requested
        )
    }
}

/// What a push consumer's task needs from its config.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PushSettings {
    pub(crate) deliver_subject: String,
    /// `idle_heartbeat`: a `100 Idle Heartbeat` status this often while nothing is sent.
    pub(crate) heartbeat: Option<Duration>,
    /// Deleted after this long without interest (ephemeral consumers only).
    pub(crate) inactive: Option<Duration>,
    /// `flow_control`: send flow-control requests and stall until they are answered.
    pub(crate) flow_control: bool,
}

impl PushSettings {
    /// From a consumer config; `None` for a pull consumer.
    pub(crate) fn of(config: &Value) -> Option<PushSettings> {
        let deliver_subject = config
            .get("deliver_subject")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())?
            .to_string();
        let durable = config
            .get("durable_name")
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty());
        let inactive = (!durable).then(|| {
            config
                .get("inactive_threshold")
                .and_then(Value::as_u64)
                .filter(|ns| *ns > 0)
                .map_or(INACTIVE_DEFAULT, Duration::from_nanos)
        });
        let heartbeat = config
            .get("idle_heartbeat")
            .and_then(Value::as_u64)
            .filter(|ns| *ns > 0)
            .map(Duration::from_nanos);
        let flow_control = config
            .get("flow_control")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        Some(PushSettings {
            deliver_subject,
            heartbeat,
            inactive,
            flow_control,
        })
    }
}

/// Drives one push consumer until it is deleted (or, ephemeral, left without interest).
pub(crate) async fn run(
    engine: Arc<Engine>,
    stream: String,
    consumer: String,
    settings: PushSettings,
    flow: Option<Arc<FlowControl>>,
) {
    let mut flow = flow.map(|answers| FlowWindow {
        answers,
        requested: 0,
        messages: 0,
        bytes: 0,
    });
    let router = engine.live_router().clone();
    let deliver = settings.deliver_subject.clone();
    let mut unwanted_since: Option<Instant> = None;
    let mut last_sent = Instant::now();
    // The last consumer and stream sequences sent, which a heartbeat names (an ordered
    // consumer checks them for gaps).
    let mut last_sequences = (0u64, 0u64);
    loop {
        if let Some(beat) = settings.heartbeat {
            if last_sent.elapsed() >= beat && router.interest(&deliver).subscriptions > 0 {
                let stalled = flow
                    .as_ref()
                    .filter(|window| window.unanswered() && window.window_full())
                    .map(|window| window.reply(&stream, &consumer));
                router.publish_to(
                    &deliver,
                    Arc::new(heartbeat(&deliver, last_sequences, stalled)),
                    None,
                );
                last_sent = Instant::now();
            }
        }
        let interest = router.interest(&deliver);
        if interest.subscriptions == 0 {
            let since = *unwanted_since.get_or_insert_with(Instant::now);
            if settings
                .inactive
                .is_some_and(|limit| since.elapsed() >= limit)
            {
                if let Err(error) = engine.delete_consumer(&stream, &consumer).await {
                    tracing::debug!(stream, consumer, "inactive consumer not deleted: {error}");
                }
                return;
            }
            tokio::time::sleep(IDLE_POLL).await;
            continue;
        }
        unwanted_since = None;
        if interest.pending_messages_max >= PENDING_MESSAGES_MAX
            || interest.pending_bytes_max >= PENDING_BYTES_MAX
        {
            tokio::time::sleep(IDLE_POLL).await;
            continue;
        }
        if let Some(window) = flow.as_mut() {
            if window.unanswered() && window.window_full() {
                // Stalled until the client answers (or a heartbeat is due).
                let answered = window.answers.changed.notified();
                tokio::pin!(answered);
                answered.as_mut().enable();
                if window.unanswered() {
                    let wait = settings.heartbeat.map_or(WAIT_MAX, |b| b.min(WAIT_MAX));
                    let _ = tokio::time::timeout(wait, answered).await;
                }
                continue;
            }
            if !window.unanswered() && window.window_full() {
                window.requested += 1;
                (window.messages, window.bytes) = (0, 0);
                let reply = window.reply(&stream, &consumer);
                router.publish_to(&deliver, Arc::new(flow_request(&deliver, reply)), None);
            }
        }
        match engine.consumer_next(&stream, &consumer, BATCH, 0).await {
            Ok(deliveries) if deliveries.is_empty() => {
                let wait = settings
                    .heartbeat
                    .map_or(WAIT_MAX, |beat| beat.min(WAIT_MAX));
                let waited = engine.consumer_wait(&stream, &consumer, wait).await;
                if waited.is_err() {
                    return;
                }
            }
            Ok(deliveries) => {
                let prefix = ack_prefix(&stream, &consumer);
                for delivery in deliveries {
                    last_sequences = (delivery.delivery_count, delivery.record.offset + 1);
                    if let Some(window) = flow.as_mut() {
                        window.messages += 1;
                        window.bytes += delivery.record.value.as_ref().map_or(0, |v| v.len());
                    }
                    let message = to_message_with(&prefix, &stream, delivery);
                    router.publish_to(&deliver, Arc::new(message), None);
                }
                last_sent = Instant::now();
            }
            Err(EngineError::ConsumerNotFound { .. } | EngineError::StreamNotFound(_)) => return,
            Err(error) => {
                tracing::warn!(
                    stream,
                    consumer,
                    "a JetStream push consumer failed: {error}"
                );
                tokio::time::sleep(WAIT_MAX).await;
            }
        }
    }
}

/// nats-server's idle heartbeat: a status message naming the last sequences sent, and the
/// unanswered flow-control request while the consumer is stalled on it.
fn heartbeat(
    deliver: &str,
    (consumer_sequence, stream_sequence): (u64, u64),
    stalled: Option<String>,
) -> LiveMessage {
    let header = |name: &str, value: String| Header {
        name: name.to_string(),
        value: value.into(),
    };
    let mut headers = vec![
        header("Nats-Last-Consumer", consumer_sequence.to_string()),
        header("Nats-Last-Stream", stream_sequence.to_string()),
    ];
    if let Some(reply) = stalled {
        headers.push(header("Nats-Consumer-Stalled", reply));
    }
    LiveMessage {
        subject: deliver.to_string(),
        reply: None,
        headers,
        payload: bytes::Bytes::new(),
        status: Some(LiveStatus {
            code: 100,
            text: "Idle Heartbeat".to_string(),
        }),
        appended: false,
    }
}

/// nats-server's flow-control request: a status message the client answers on `reply`.
fn flow_request(deliver: &str, reply: String) -> LiveMessage {
    LiveMessage {
        subject: deliver.to_string(),
        reply: Some(reply),
        headers: Vec::new(),
        payload: bytes::Bytes::new(),
        status: Some(LiveStatus {
            code: 100,
            text: "FlowControl Request".to_string(),
        }),
        appended: false,
    }
}
