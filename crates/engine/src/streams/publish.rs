//! Publishing: route to a stream, validate, choose partitions, encode one batch per partition
//! (split to bound batch size), append each partition's batches as one append (so they keep
//! request order and consecutive offsets), all partitions concurrently, and answer after the
//! durable acknowledgement of every record.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use omnibus_storage::batch::encode_batch;
use omnibus_types::{limits, validate_subject, Record};

use crate::engine::{now_ms, Engine};
use crate::error::{EngineError, Result};
use crate::model::{PublishRecord, PublishTarget, RecordPosition};
use crate::streams::partitioner::partition_for_key;
use crate::streams::Stream;

/// Records are grouped into stored batches of at most about this many bytes, so a huge
/// publish does not become one huge batch that every reader must take whole.
const STORED_BATCH_BYTES_TARGET: usize = 1024 * 1024;

impl Engine {
    /// Appends records and returns once they are acknowledged under the stream's fsync policy
    /// (with the default `always`: after fsync). Positions are in the order of `records`.
    pub async fn publish(
        &self,
        target: PublishTarget,
        records: Vec<PublishRecord>,
    ) -> Result<Vec<RecordPosition>> {
        self.check_running()?;
        if records.is_empty() {
            return Ok(Vec::new());
        }
        if records.len() > limits::PUBLISH_RECORDS_MAX {
            return Err(EngineError::LimitExceeded(format!(
                "{} records in one publish; the limit is {}",
                records.len(),
                limits::PUBLISH_RECORDS_MAX
            )));
        }
        let (stream, fixed_subject) = self.route(&target)?;
        self.check_not_a_queue_log(&stream.config.name)?;
        let partitions = stream.config.partitions as usize;
        let now = now_ms();
        // Per partition: (index in the request, record), in request order.
        let mut per_partition: Vec<Vec<(usize, Record)>> = vec![Vec::new(); partitions];
        for (index, record) in records.into_iter().enumerate() {
            let partition = self.choose_partition(&stream, &record)?;
            let stored = to_stored(&stream, fixed_subject.as_deref(), record, now)?;
            per_partition[partition as usize].push((index, stored));
        }
        // Copies for live subscribers, taken only when there are any (the hot path without
        // live subscriptions stays as it was). Delivered once every record is acknowledged.
        let live: Vec<crate::router::StoredCopy> = if self.live_router.is_active() {
            per_partition
                .iter()
                .flatten()
                .map(|(_, record)| {
                    (
                        record.subject.clone(),
                        record.headers.clone(),
                        record.value.clone(),
                    )
                })
                .collect()
        } else {
            Vec::new()
        };
        let total: usize = per_partition.iter().map(Vec::len).sum();
        let mut positions = vec![
            RecordPosition {
                partition: 0,
                offset: 0
            };
            total
        ];
        // One append per partition holding all of that partition's batches: the log gives
        // one append consecutive offsets under one lock, so a request's records keep their
        // order and are not interleaved with another request's, however many batches they
        // fill. Different partitions append concurrently.
        let mut appends = tokio::task::JoinSet::new();
        for (partition, items) in per_partition.into_iter().enumerate() {
            if items.is_empty() {
                continue;
            }
            let mut bytes = BytesMut::new();
            let mut indexes = Vec::with_capacity(items.len());
            for chunk in split_for_storage(items) {
                let (chunk_indexes, records): (Vec<usize>, Vec<Record>) = chunk.into_iter().unzip();
                bytes.extend_from_slice(&encode_batch(&records)?);
                indexes.extend(chunk_indexes);
            }
            let log = stream.partitions[partition].clone();
            appends.spawn(async move {
                let info = log.append(bytes).await?;
                Ok::<_, EngineError>((partition as u32, info.first_offset, indexes))
            });
        }
        let mut first_error = None;
        while let Some(joined) = appends.join_next().await {
            match joined {
                Ok(Ok((partition, first_offset, indexes))) => {
                    for (position, index) in indexes.into_iter().enumerate() {
                        positions[index] = RecordPosition {
                            partition,
                            offset: first_offset + position as u64,
                        };
                    }
                }
                Ok(Err(error)) => {
                    first_error.get_or_insert(error);
                }
                Err(join_error) => {
                    first_error.get_or_insert(EngineError::Internal(join_error.to_string()));
                }
            }
        }
        match first_error {
            Some(error) => Err(error),
            None => {
                self.deliver_stored_live(&stream.config.name, live);
                Ok(positions)
            }
        }
    }

    /// Finds the stream; for a subject target, also the subject every record gets.
    fn route(&self, target: &PublishTarget) -> Result<(Arc<Stream>, Option<String>)> {
        match target {
            PublishTarget::Stream(name) => Ok((self.stream(name)?, None)),
            PublishTarget::Subject(subject) => {
                validate_subject(subject)
                    .map_err(|e| EngineError::InvalidSubject(e.to_string()))?;
                let stream = self.stream_for_subject(subject)?;
                Ok((stream, Some(subject.clone())))
            }
        }
    }

    fn choose_partition(&self, stream: &Stream, record: &PublishRecord) -> Result<u32> {
        let partitions = stream.config.partitions;
        match (record.partition, &record.key) {
            (Some(partition), _) => {
                stream.partition(partition)?;
                Ok(partition)
            }
            (None, Some(key)) => Ok(partition_for_key(key, partitions)),
            (None, None) => Ok(stream.next_round_robin()),
        }
    }
}

/// Validates one record and turns it into the stored form. The subject is stored only when it
/// differs from the stream's name, so a plain publish to a stream adds no header a Kafka
/// consumer would see.
pub(crate) fn to_stored(
    stream: &Stream,
    fixed_subject: Option<&str>,
    record: PublishRecord,
    now: i64,
) -> Result<Record> {
    if record.headers.len() > limits::HEADERS_MAX {
        return Err(EngineError::LimitExceeded(format!(
            "{} headers on one record; the limit is {}",
            record.headers.len(),
            limits::HEADERS_MAX
        )));
    }
    let subject = match (fixed_subject, record.subject) {
        (Some(subject), _) => subject.to_string(),
        (None, Some(subject)) => {
            validate_subject(&subject).map_err(|e| EngineError::InvalidSubject(e.to_string()))?;
            subject
        }
        (None, None) => String::new(),
    };
    let size = record.key.as_ref().map_or(0, Bytes::len)
        + record.value.as_ref().map_or(0, Bytes::len)
        + record
            .headers
            .iter()
            .map(|h| h.name.len() + h.value.len())
            .sum::<usize>();
    if size > stream.config.message_bytes_max {
        return Err(EngineError::MessageTooLarge {
            what: "record",
            bytes: size,
            max: stream.config.message_bytes_max,
        });
    }
    let subject = if subject == stream.config.name {
        String::new()
    } else {
        subject
    };
    Ok(Record {
        offset: 0,
        timestamp_ms: record.timestamp_ms.unwrap_or(now),
        subject,
        key: record.key,
        value: record.value,
        headers: record.headers,
    })
}

pub(crate) fn split_for_storage(items: Vec<(usize, Record)>) -> Vec<Vec<(usize, Record)>> {
    let mut chunks = Vec::new();
    let mut current = Vec::new();
    let mut bytes = 0;
    for item in items {
        let size = 32
            + item.1.subject.len()
            + item.1.key.as_ref().map_or(0, Bytes::len)
            + item.1.value.as_ref().map_or(0, Bytes::len);
        if !current.is_empty() && bytes + size > STORED_BATCH_BYTES_TARGET {
            chunks.push(std::mem::take(&mut current));
            bytes = 0;
        }
        bytes += size;
        current.push(item);
    }
    if !current.is_empty() {
        chunks.push(current);
    }
    chunks
}
