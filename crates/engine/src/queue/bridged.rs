//! Writes into a queue's stream from the stream APIs become enqueues.
//!
//! A queue keeps its messages in a stream of its own name. A Kafka producer writing to that
//! topic, or a NATS or Redis pub/sub publisher on that subject, would otherwise append
//! records the queue does not track (never delivered, holding its ack floor back). Instead
//! each record is enqueued into the queue — as AMQP's default exchange routes a publish to
//! the queue of that name — so a message produced through Kafka or published through NATS is
//! consumed by the queue's AMQP consumers, HTTP workers and jobs.
//!
//! What carries over: the record's key, value and headers. Headers starting with `omnibus.`
//! are dropped: they are the broker's own (delay, TTL, priority, dead-letter history), which
//! a producer must not set; `omnibus.routing_key` is the queue's name, as for an AMQP publish
//! to the default exchange. Refused: a Kafka transactional batch (the queue would deliver its
//! records before the transaction commits) and any partition but 0.

use bytes::{Bytes, BytesMut};
use omnibus_storage::batch::{decode_batches, BatchHeader};
use omnibus_types::{limits, Header};

use super::EnqueueMessage;
use crate::engine::Engine;
use crate::error::{EngineError, Result};
use crate::exchanges::ROUTING_KEY_HEADER;
use crate::model::RecordPosition;
use crate::router::LiveMessage;
use crate::streams::raw_append::RawAppend;

/// Kafka's "transactional" attribute bit of a record batch.
const TRANSACTIONAL_BIT: i16 = 0x10;

/// The producer's headers less the broker's own, and the routing key of a publish to the
/// default exchange (the queue's name), so an AMQP consumer sees the message as RabbitMQ
/// would show one published to the queue by name.
fn foreign_headers(headers: Vec<Header>, queue: &str) -> Vec<Header> {
    let mut headers: Vec<Header> = headers
        .into_iter()
        .filter(|h| !h.name.starts_with("omnibus."))
        .collect();
    headers.push(Header {
        name: ROUTING_KEY_HEADER.into(),
        value: Bytes::copy_from_slice(queue.as_bytes()),
    });
    headers
}

fn live_message(queue: &str, message: &LiveMessage) -> EnqueueMessage {
    EnqueueMessage {
        value: Some(message.payload.clone()),
        headers: foreign_headers(message.headers.clone(), queue),
        ..Default::default()
    }
}

impl Engine {
    /// Enqueues the records of a raw (Kafka) batch into `queue`; answers their offsets in the
    /// queue's log.
    pub(crate) async fn enqueue_raw_batch(
        &self,
        queue: &str,
        partition: u32,
        batch: &BytesMut,
    ) -> Result<RawAppend> {
        if partition != 0 {
            return Err(EngineError::PartitionNotFound {
                stream: queue.to_string(),
                partition,
                partitions: 1,
            });
        }
        let header = BatchHeader::parse(batch)?;
        if header.attributes & TRANSACTIONAL_BIT != 0 {
            return Err(EngineError::InvalidConfig(format!(
                "a transactional produce into queue {queue:?} is not supported: its records \
                 would be delivered before the transaction commits"
            )));
        }
        let records = decode_batches(Bytes::copy_from_slice(batch), 0)?;
        let messages: Vec<EnqueueMessage> = records
            .into_iter()
            .map(|record| EnqueueMessage {
                key: record.key,
                value: record.value,
                headers: foreign_headers(record.headers, queue),
                ..Default::default()
            })
            .collect();
        if messages.is_empty() {
            return Err(EngineError::BadRequest("an empty batch".into()));
        }
        let mut offsets = Vec::with_capacity(messages.len());
        let mut messages = messages.into_iter().peekable();
        while messages.peek().is_some() {
            let chunk: Vec<EnqueueMessage> = messages
                .by_ref()
                .take(limits::PUBLISH_RECORDS_MAX)
                .collect();
            offsets.extend(self.enqueue(queue, chunk).await?);
        }
        let log = self.queue(queue)?.log.clone();
        Ok(RawAppend {
            first_offset: offsets[0],
            last_offset: offsets[offsets.len() - 1],
            log_start_offset: log.log_start_offset(),
        })
    }

    /// Enqueues a live (NATS, Redis pub/sub) publish on a queue's name into the queue.
    pub(crate) async fn enqueue_live(
        &self,
        queue: &str,
        message: &LiveMessage,
    ) -> Result<RecordPosition> {
        let enqueued = self
            .enqueue(queue, vec![live_message(queue, message)])
            .await?;
        Ok(RecordPosition {
            partition: 0,
            offset: enqueued[0],
        })
    }

    /// [`Engine::enqueue_live`] for several publishes, as one enqueue: each answer is its
    /// position, or the enqueue's refusal.
    pub(crate) async fn enqueue_live_all(
        &self,
        queue: &str,
        messages: &[std::sync::Arc<LiveMessage>],
    ) -> Vec<Result<RecordPosition>> {
        let batch = messages.iter().map(|m| live_message(queue, m)).collect();
        match self.enqueue(queue, batch).await {
            Ok(offsets) => offsets
                .into_iter()
                .map(|offset| {
                    Ok(RecordPosition {
                        partition: 0,
                        offset,
                    })
                })
                .collect(),
            Err(error) => messages
                .iter()
                .map(|_| Err(crate::router::copy_error(&error)))
                .collect(),
        }
    }
}
