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
//! router's. Flow control is done on the broker side rather than with nats-server's
//! `100 FlowControl Request` messages: the task sends only while every subscriber's mailbox
//! holds less than `PENDING_MESSAGES_MAX` messages and `PENDING_BYTES_MAX` bytes, so a slow
//! reader is never cut off as a slow consumer by its own consumer. `idle_heartbeat` is
//! honoured: a `100 Idle Heartbeat` status with `Nats-Last-Consumer` and `Nats-Last-Stream`
//! goes to the deliver subject whenever nothing was sent for that long (ordered consumers
//! check those sequences for gaps).

use std::sync::Arc;
use std::time::Duration;

use omnibus_engine::router::{LiveMessage, LiveStatus};
use omnibus_engine::{Engine, EngineError};
use omnibus_types::Header;
use serde_json::Value;
use tokio::time::Instant;

use super::pull::to_message;

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

/// What a push consumer's task needs from its config.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PushSettings {
    pub(crate) deliver_subject: String,
    /// `idle_heartbeat`: a `100 Idle Heartbeat` status this often while nothing is sent.
    pub(crate) heartbeat: Option<Duration>,
    /// Deleted after this long without interest (ephemeral consumers only).
    pub(crate) inactive: Option<Duration>,
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
        Some(PushSettings {
            deliver_subject,
            heartbeat,
            inactive,
        })
    }
}

/// Drives one push consumer until it is deleted (or, ephemeral, left without interest).
pub(crate) async fn run(
    engine: Arc<Engine>,
    stream: String,
    consumer: String,
    settings: PushSettings,
) {
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
                router.publish_to(
                    &deliver,
                    Arc::new(heartbeat(&deliver, last_sequences)),
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
                for delivery in deliveries {
                    last_sequences = (delivery.delivery_count, delivery.record.offset + 1);
                    let message = to_message(&stream, &consumer, delivery);
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

/// nats-server's idle heartbeat: a status message naming the last sequences sent.
fn heartbeat(deliver: &str, (consumer_sequence, stream_sequence): (u64, u64)) -> LiveMessage {
    let header = |name: &str, value: u64| Header {
        name: name.to_string(),
        value: value.to_string().into(),
    };
    LiveMessage {
        subject: deliver.to_string(),
        reply: None,
        headers: vec![
            header("Nats-Last-Consumer", consumer_sequence),
            header("Nats-Last-Stream", stream_sequence),
        ],
        payload: bytes::Bytes::new(),
        status: Some(LiveStatus {
            code: 100,
            text: "Idle Heartbeat".to_string(),
        }),
    }
}
