//! Enqueueing messages that are new to the queue: check and build every record first (with
//! the broker's scheduling headers), then make room under the queue's limits, then append the
//! batch and register it — so a bad message never costs the queue its oldest ones.

use std::sync::Arc;

use bytes::Bytes;
use omnibus_storage::batch::EncodedBatches;
use omnibus_storage::StateWrite;
use omnibus_types::{limits, Header, Record};

use super::overflow::{message_bytes, Incoming};
use super::runtime::{self, Queue, DUE_HEADER, EXPIRES_HEADER, PRIORITY_HEADER};
use super::{ConsumerMode, EnqueueMessage, DELAY_MS_MAX};
use crate::engine::{now_ms, Engine};
use crate::error::{EngineError, Result};

/// Records ready to append, with how each is scheduled and what they weigh.
struct PreparedBatch {
    records: Vec<Record>,
    /// `(priority, due_ms)` of each record.
    plans: Vec<(u8, Option<i64>)>,
    incoming: Incoming,
    /// The earliest `omnibus.expires_ms` among the records, for the head sweep (`expiry.rs`).
    earliest_expiry: Option<i64>,
}

impl Engine {
    /// Checks, makes room for, appends and registers `messages`; returns their offsets.
    pub(super) async fn enqueue_fresh(
        &self,
        queue: &Arc<Queue>,
        messages: Vec<EnqueueMessage>,
    ) -> Result<Vec<u64>> {
        self.enqueue_fresh_with(queue, messages, |_| Vec::new())
            .await
    }

    /// As [`Engine::enqueue_fresh`], committing `extra(offsets)` in the same state-store
    /// transaction as the registration of the new messages (a job's record with its
    /// message: one commit, and never one without the other).
    pub(crate) async fn enqueue_fresh_with(
        &self,
        queue: &Arc<Queue>,
        messages: Vec<EnqueueMessage>,
        extra: impl FnOnce(&[u64]) -> Vec<StateWrite>,
    ) -> Result<Vec<u64>> {
        // Before the log append: a failed queue would not register what it appended.
        queue.check_healthy()?;
        let batch = self.prepare_batch(queue, messages)?;
        if let Err(refusal) = queue.make_room(batch.incoming).await {
            let refused = matches!(
                refusal,
                EngineError::QueueFull(_)
                    | EngineError::LimitExceeded(_)
                    | EngineError::MessageTooLarge { .. }
            );
            if refused && queue.config.overflow == super::Overflow::DeadLetterNew {
                if let Err(error) = queue.dead_letter_refused(batch.records, &refusal).await {
                    tracing::warn!(queue = %queue.config.name, "dead-lettering refused messages failed: {error}");
                }
            }
            return Err(refusal);
        }
        append_batch(queue, batch, extra).await
    }

    fn prepare_batch(&self, queue: &Queue, messages: Vec<EnqueueMessage>) -> Result<PreparedBatch> {
        if messages.len() > limits::PUBLISH_RECORDS_MAX {
            return Err(EngineError::LimitExceeded(format!(
                "{} messages in one enqueue; the limit is {}",
                messages.len(),
                limits::PUBLISH_RECORDS_MAX
            )));
        }
        let now = now_ms();
        let max_bytes = self.stream(&queue.config.name)?.config.message_bytes_max;
        let mut batch = PreparedBatch {
            records: Vec::with_capacity(messages.len()),
            plans: Vec::with_capacity(messages.len()),
            incoming: Incoming::default(),
            earliest_expiry: None,
        };
        for message in messages {
            if message.priority > 9 {
                return Err(EngineError::BadRequest(format!(
                    "priority {} is outside 0..=9",
                    message.priority
                )));
            }
            if message.delay_ms.is_some_and(|d| d > DELAY_MS_MAX) {
                return Err(EngineError::BadRequest(format!(
                    "delay of {} ms exceeds the limit of {DELAY_MS_MAX} ms",
                    message.delay_ms.unwrap_or_default()
                )));
            }
            let size = message.key.as_ref().map_or(0, Bytes::len)
                + message.value.as_ref().map_or(0, Bytes::len)
                + message
                    .headers
                    .iter()
                    .map(|h| h.name.len() + h.value.len())
                    .sum::<usize>();
            if size > max_bytes {
                return Err(EngineError::MessageTooLarge {
                    what: "message",
                    bytes: size,
                    max: max_bytes,
                });
            }
            if message.ttl_ms.is_some_and(|t| t > DELAY_MS_MAX) {
                return Err(EngineError::BadRequest(format!(
                    "ttl of {} ms exceeds the limit of {DELAY_MS_MAX} ms",
                    message.ttl_ms.unwrap_or_default()
                )));
            }
            let due = message.delay_ms.filter(|d| *d > 0).map(|d| now + d as i64);
            let ttl = message.ttl_ms.or(queue.config.ttl_ms);
            let mut headers = message.headers;
            if let Some(due) = due {
                headers.push(Header {
                    name: DUE_HEADER.into(),
                    value: Bytes::from(due.to_string()),
                });
            }
            if message.priority != 0 {
                headers.push(Header {
                    name: PRIORITY_HEADER.into(),
                    value: Bytes::from(message.priority.to_string()),
                });
            }
            if let Some(ttl) = ttl {
                let expires = now + ttl as i64;
                batch.earliest_expiry =
                    Some(batch.earliest_expiry.map_or(expires, |e| e.min(expires)));
                headers.push(Header {
                    name: EXPIRES_HEADER.into(),
                    value: Bytes::from(expires.to_string()),
                });
            }
            let record = Record {
                offset: 0,
                timestamp_ms: now,
                subject: String::new(),
                key: message.key,
                value: message.value,
                headers,
            };
            batch.incoming.add(message_bytes(&record));
            batch.plans.push((message.priority, due));
            batch.records.push(record);
        }
        Ok(batch)
    }
}

/// Appends a prepared batch to the queue's log and registers runs of equal
/// `(priority, due)` as ranges, in one commit.
async fn append_batch(
    queue: &Arc<Queue>,
    batch: PreparedBatch,
    extra: impl FnOnce(&[u64]) -> Vec<StateWrite>,
) -> Result<Vec<u64>> {
    let PreparedBatch {
        records,
        plans,
        incoming,
        earliest_expiry,
    } = batch;
    let info = queue
        .log
        .append_encoded(EncodedBatches::of(&records)?)
        .await?;
    let mut runs = Vec::new();
    let mut start = 0;
    while start < plans.len() {
        let mut end = start + 1;
        while end < plans.len() && plans[end] == plans[start] {
            end += 1;
        }
        let (priority, due) = plans[start];
        runs.push((
            info.first_offset + start as u64,
            info.first_offset + end as u64,
            priority,
            due,
        ));
        start = end;
    }
    let key_hashes: Vec<Option<u64>> = if queue.config.mode == ConsumerMode::KeyShared {
        records
            .iter()
            .map(|r| r.key.as_deref().map(runtime::key_hash))
            .collect()
    } else {
        Vec::new()
    };
    let offsets: Vec<u64> = (info.first_offset..=info.last_offset).collect();
    // Before the registration wakes a consumer, so its delivery reads no log.
    queue.reader.keep_appended(info.first_offset, records);
    let extra = extra(&offsets);
    queue
        .register(&runs, &key_hashes, incoming.bytes, extra)
        .await?;
    if let Some(expires) = earliest_expiry {
        queue.note_expiry(expires);
    }
    Ok(offsets)
}
