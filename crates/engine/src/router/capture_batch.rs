//! Live publishes appended together: a door that read several publishes to subjects one
//! stream captures (a NATS connection's read buffer full of JetStream publishes) hands them
//! over at once, and the engine stores them as one append per partition — one encoded batch,
//! one place in the group commit — instead of one append per message.
//!
//! Each message is checked on its own (a valid subject the stream captures, the stream's
//! record limits), so one refused message does not refuse the others; the stored ones keep
//! the order they were given in, per partition, with consecutive offsets. Live subscribers
//! get each stored message once the stream acknowledged it, as with
//! [`Engine::publish_live`].

use std::sync::Arc;

use omnibus_storage::batch::EncodedBatches;
use omnibus_storage::PendingAppend;
use omnibus_types::{limits, validate_subject, Record};

use super::{LiveMessage, LiveRouter};
use crate::engine::{now_ms, Engine};
use crate::error::{EngineError, Result};
use crate::model::{PublishRecord, RecordPosition};
use crate::streams::partitioner::partition_for_key;
use crate::streams::{split_for_storage, to_stored};

/// What [`Engine::publish_live_batch`] did with each message, and the appends to wait for.
#[derive(Debug)]
pub struct CapturedBatch {
    /// One per partition that got messages.
    appends: Vec<(u32, PendingAppend)>,
    /// Per message, in the order given: where it was stored, or why it was not.
    outcomes: Vec<Result<RecordPosition>>,
    messages: Vec<Arc<LiveMessage>>,
    router: Arc<LiveRouter>,
    origin: Option<u64>,
}

impl CapturedBatch {
    /// Per message, in the order given: its place (readable once durable) or why it was
    /// refused.
    pub fn outcomes(&self) -> &[Result<RecordPosition>] {
        &self.outcomes
    }

    /// Waits for the stream's acknowledgement of every stored message, delivers them to the
    /// live subscribers (in one routing call), and returns them with their outcome: the
    /// position, or the error of their partition's append. Refused messages are left out.
    pub async fn durable(self) -> Vec<(Arc<LiveMessage>, Result<RecordPosition>)> {
        let mut failed: Vec<(u32, EngineError)> = Vec::new();
        for (partition, append) in self.appends {
            if let Err(error) = append.durable().await {
                failed.push((partition, error.into()));
            }
        }
        let mut done = Vec::with_capacity(self.messages.len());
        for (message, outcome) in self.messages.into_iter().zip(self.outcomes) {
            let Ok(position) = outcome else {
                continue;
            };
            match failed.iter().find(|(p, _)| *p == position.partition) {
                Some((_, error)) => done.push((message, Err(copy_error(error)))),
                None => done.push((message, Ok(position))),
            }
        }
        let stored = done.iter().filter(|(_, outcome)| outcome.is_ok());
        self.router
            .publish_many(stored.map(|(message, _)| message.clone()), self.origin);
        done
    }
}

impl Engine {
    /// Stores `messages`, each to a subject `stream` captures, as one append per partition
    /// (see the module documentation), and returns at once with their places; live
    /// subscribers get them once [`CapturedBatch::durable`] sees them acknowledged. A message
    /// whose subject `stream` does not capture (any more) is refused with
    /// [`EngineError::StreamNotFound`]. `origin` is the publisher's mailbox, as for
    /// [`Engine::publish_live`].
    pub async fn publish_live_batch(
        &self,
        stream: &str,
        messages: Vec<Arc<LiveMessage>>,
        origin: Option<u64>,
    ) -> Result<CapturedBatch> {
        if messages.len() > limits::PUBLISH_RECORDS_MAX {
            return Err(EngineError::LimitExceeded(format!(
                "{} records in one publish; the limit is {}",
                messages.len(),
                limits::PUBLISH_RECORDS_MAX
            )));
        }
        self.check_running()?;
        let target = self.stream(stream)?;
        if let Some(queue) = self.queue_in_stream(&target.config.name, false) {
            // A queue's stream: enqueued into the queue, durably (`queue/bridged.rs`).
            let outcomes = self.enqueue_live_all(&queue, &messages).await;
            return Ok(CapturedBatch {
                appends: Vec::new(),
                outcomes,
                messages,
                router: self.live_router.clone(),
                origin,
            });
        }
        let now = now_ms();
        let partitions = target.config.partitions;
        let mut outcomes: Vec<Result<RecordPosition>> = Vec::with_capacity(messages.len());
        // Per partition: (index among the messages, stored record), in the order given.
        let mut per_partition: Vec<Vec<(usize, Record)>> = Vec::new();
        {
            let streams = self.read_streams();
            for (index, message) in messages.iter().enumerate() {
                let captured = validate_subject(&message.subject)
                    .map_err(|e| EngineError::InvalidSubject(e.to_string()))
                    .and_then(|()| match streams.capturing(&message.subject) {
                        Some(found) if Arc::ptr_eq(found, &target) => Ok(()),
                        _ => Err(EngineError::StreamNotFound(stream.to_string())),
                    });
                let partition = partition_for_key(message.subject.as_bytes(), partitions);
                let record = PublishRecord {
                    subject: None,
                    key: None,
                    value: Some(message.payload.clone()),
                    headers: message.headers.clone(),
                    partition: Some(partition),
                    timestamp_ms: None,
                };
                match captured
                    .and_then(|()| to_stored(&target, Some(&message.subject), record, now))
                {
                    Ok(stored) => {
                        if per_partition.len() <= partition as usize {
                            per_partition.resize_with(partition as usize + 1, Vec::new);
                        }
                        per_partition[partition as usize].push((index, stored));
                        // The offset is filled in once the append has its place.
                        outcomes.push(Ok(RecordPosition {
                            partition,
                            offset: 0,
                        }));
                    }
                    Err(error) => outcomes.push(Err(error)),
                }
            }
        }
        let mut appends = Vec::new();
        for (partition, items) in per_partition.into_iter().enumerate() {
            if items.is_empty() {
                continue;
            }
            let partition = partition as u32;
            let indexes: Vec<usize> = items.iter().map(|(index, _)| *index).collect();
            let enqueued = async {
                let mut batches = EncodedBatches::default();
                for chunk in split_for_storage(items) {
                    let records: Vec<Record> = chunk.into_iter().map(|(_, r)| r).collect();
                    batches.push(&records)?;
                }
                let log = target.partition(partition)?.clone();
                Ok::<_, EngineError>(log.enqueue_encoded(batches).await?)
            }
            .await;
            match enqueued {
                Ok(append) => {
                    let first = append.offsets().first_offset;
                    for (position, index) in indexes.into_iter().enumerate() {
                        outcomes[index] = Ok(RecordPosition {
                            partition,
                            offset: first + position as u64,
                        });
                    }
                    appends.push((partition, append));
                }
                Err(error) => {
                    for index in indexes {
                        outcomes[index] = Err(copy_error(&error));
                    }
                }
            }
        }
        Ok(CapturedBatch {
            appends,
            outcomes,
            messages,
            router: self.live_router.clone(),
            origin,
        })
    }
}

/// One failed append refuses every message in it, each with its own error value.
pub(crate) fn copy_error(error: &EngineError) -> EngineError {
    match error {
        EngineError::StreamNotFound(name) => EngineError::StreamNotFound(name.clone()),
        EngineError::QueueFull(text) => EngineError::QueueFull(text.clone()),
        EngineError::MessageTooLarge { what, bytes, max } => EngineError::MessageTooLarge {
            what,
            bytes: *bytes,
            max: *max,
        },
        other => EngineError::Internal(other.to_string()),
    }
}
