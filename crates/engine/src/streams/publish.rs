//! Publishing: route to a stream, validate, choose partitions, encode one batch per partition
//! (split to bound batch size), append each partition's batches as one append (so they keep
//! request order and consecutive offsets), all partitions concurrently, and answer after the
//! durable acknowledgement of every record.

use std::sync::Arc;

use bytes::Bytes;
use omnibus_storage::batch::EncodedBatches;
use omnibus_types::{limits, validate_subject, Record};

use omnibus_storage::PendingAppend;

use crate::engine::{now_ms, Engine};
use crate::error::{EngineError, Result};
use crate::model::{PublishRecord, PublishTarget, RecordPosition};
use crate::router::{deliver_stored, LiveRouter, StoredCopy};
use crate::streams::partitioner::partition_for_key;
use crate::streams::Stream;

/// Records are grouped into stored batches of at most about this many bytes, so a huge
/// publish does not become one huge batch that every reader must take whole.
const STORED_BATCH_BYTES_TARGET: usize = 1024 * 1024;

/// A publish whose records have their offsets and their place in every partition, not yet
/// acknowledged: the first phase of [`Engine::publish`]. Publishes enqueued one after another
/// land in that order in each partition, so a caller may enqueue its next records while
/// earlier ones wait for their fsync and let them share a group commit.
pub struct PendingPublish {
    /// One append per partition written to, with the request indexes of its records.
    appends: Vec<(u32, PendingAppend, Vec<usize>)>,
    total: usize,
    /// Copies for live subscribers, handed over once every record is acknowledged.
    live: Option<LiveCopies>,
}

/// A publish's records for live subscribers.
pub(crate) struct LiveCopies {
    pub(crate) router: Arc<LiveRouter>,
    pub(crate) stream: String,
    pub(crate) records: Vec<StoredCopy>,
    /// Written to the stream by its name ([`crate::router::LiveMessage::appended`]).
    pub(crate) appended: bool,
}

impl std::fmt::Debug for PendingPublish {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingPublish")
            .field("total", &self.total)
            .finish_non_exhaustive()
    }
}

impl PendingPublish {
    /// Resolves once every record is acknowledged under the stream's fsync policy (with the
    /// default `always`: after fsync); positions are in the order of the publish's records.
    pub async fn durable(self) -> Result<Vec<RecordPosition>> {
        let mut positions = vec![
            RecordPosition {
                partition: 0,
                offset: 0
            };
            self.total
        ];
        // Partitions flush independently: waiting for them one after another takes as long
        // as the slowest one.
        let mut first_error = None;
        for (partition, append, indexes) in self.appends {
            match append.durable().await {
                Ok(info) => {
                    for (position, index) in indexes.into_iter().enumerate() {
                        positions[index] = RecordPosition {
                            partition,
                            offset: info.first_offset + position as u64,
                        };
                    }
                }
                Err(error) => {
                    first_error.get_or_insert(EngineError::from(error));
                }
            }
        }
        if let Some(error) = first_error {
            return Err(error);
        }
        if let Some(live) = self.live {
            deliver_stored(&live.router, &live.stream, live.records, live.appended);
        }
        Ok(positions)
    }
}

impl Engine {
    /// Appends records and returns once they are acknowledged under the stream's fsync policy
    /// (with the default `always`: after fsync). Positions are in the order of `records`.
    pub async fn publish(
        &self,
        target: PublishTarget,
        records: Vec<PublishRecord>,
    ) -> Result<Vec<RecordPosition>> {
        // `durable` hands the live copies over once every record is acknowledged.
        self.enqueue_publish(target, records).await?.durable().await
    }

    /// The first phase of [`Engine::publish`]: when this returns, the records have their
    /// offsets and are queued for the next group commit of each partition;
    /// [`PendingPublish::durable`] waits for the acknowledgement. Nothing of a publish that
    /// fails validation is appended.
    pub async fn enqueue_publish(
        &self,
        target: PublishTarget,
        records: Vec<PublishRecord>,
    ) -> Result<PendingPublish> {
        self.check_running()?;
        if records.len() > limits::PUBLISH_RECORDS_MAX {
            return Err(EngineError::LimitExceeded(format!(
                "{} records in one publish; the limit is {}",
                records.len(),
                limits::PUBLISH_RECORDS_MAX
            )));
        }
        if records.is_empty() {
            return Ok(PendingPublish {
                appends: Vec::new(),
                total: 0,
                live: None,
            });
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
        let live = self.live_router.is_active().then(|| {
            let copies = per_partition
                .iter()
                .flatten()
                .map(|(_, record)| {
                    (
                        record.subject.clone(),
                        record.headers.clone(),
                        record.value.clone(),
                    )
                })
                .collect();
            LiveCopies {
                router: self.live_router.clone(),
                stream: stream.config.name.clone(),
                records: copies,
                // Published to a subject (HTTP's subject publish), or written by name.
                appended: fixed_subject.is_none(),
            }
        });
        let total: usize = per_partition.iter().map(Vec::len).sum();
        // Every batch is encoded before anything is enqueued, so a record that cannot be
        // encoded appends nothing.
        let mut encoded = Vec::new();
        for (partition, items) in per_partition.into_iter().enumerate() {
            if items.is_empty() {
                continue;
            }
            let mut batches = EncodedBatches::default();
            let mut indexes = Vec::with_capacity(items.len());
            for chunk in split_for_storage(items) {
                let (chunk_indexes, records): (Vec<usize>, Vec<Record>) = chunk.into_iter().unzip();
                batches.push(&records)?;
                indexes.extend(chunk_indexes);
            }
            encoded.push((partition as u32, batches, indexes));
        }
        // One append per partition holding all of that partition's batches: the log gives
        // one append consecutive offsets under one lock, so a request's records keep their
        // order and are not interleaved with another request's, however many batches they
        // fill. Each partition's group commit runs on its own, so partitions still flush
        // concurrently.
        let mut appends = Vec::with_capacity(encoded.len());
        for (partition, batches, indexes) in encoded {
            let log = &stream.partitions[partition as usize];
            appends.push((partition, log.enqueue_encoded(batches).await?, indexes));
        }
        Ok(PendingPublish {
            appends,
            total,
            live,
        })
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

/// Splits one partition's records into runs of about [`STORED_BATCH_BYTES_TARGET`] bytes each
/// (a record larger than that is a run of its own), in order.
pub(crate) fn split_for_storage(items: Vec<(usize, Record)>) -> Vec<Vec<(usize, Record)>> {
    let mut chunks = Vec::new();
    let mut current = Vec::new();
    let mut bytes = 0;
    for item in items {
        let size = stored_size(&item.1);
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

/// About how many bytes a record takes in a stored batch: its fields, their length varints
/// and the record's own framing. Headers count (a Redis entry's fields are headers, so its
/// value may be empty while its headers hold everything).
fn stored_size(record: &Record) -> usize {
    // Length, attributes, timestamp and offset deltas, key, value and header count varints.
    const RECORD_FRAMING_BYTES: usize = 32;
    // Name and value length varints of one header.
    const HEADER_FRAMING_BYTES: usize = 10;
    RECORD_FRAMING_BYTES
        + record.subject.len()
        + record.key.as_ref().map_or(0, Bytes::len)
        + record.value.as_ref().map_or(0, Bytes::len)
        + record
            .headers
            .iter()
            .map(|header| HEADER_FRAMING_BYTES + header.name.len() + header.value.len())
            .sum::<usize>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use omnibus_types::Header;

    fn with_headers(index: usize, header_bytes: usize) -> (usize, Record) {
        let record = Record {
            offset: 0,
            timestamp_ms: 0,
            subject: String::new(),
            key: None,
            value: None,
            headers: vec![Header {
                name: "field".into(),
                value: Bytes::from(vec![b'x'; header_bytes]),
            }],
        };
        (index, record)
    }

    /// A Redis entry keeps its fields in headers and may have no value: its batches must
    /// still stay near the target size instead of one batch per publish.
    #[test]
    fn records_whose_bytes_are_in_headers_are_split_near_the_target_size() {
        let items: Vec<_> = (0..3_000).map(|index| with_headers(index, 1024)).collect();
        let record_bytes = stored_size(&with_headers(0, 1024).1);
        let chunks = split_for_storage(items);
        assert_eq!(
            chunks.len(),
            4,
            "3,000 records of ~1 KiB make four batches of ~1 MiB"
        );
        for chunk in &chunks[..chunks.len() - 1] {
            let bytes: usize = chunk.iter().map(|(_, record)| stored_size(record)).sum();
            assert!(bytes <= STORED_BATCH_BYTES_TARGET, "{bytes} bytes");
            assert!(
                bytes + record_bytes > STORED_BATCH_BYTES_TARGET,
                "{bytes} bytes"
            );
        }
        let order: Vec<usize> = chunks.iter().flatten().map(|(index, _)| *index).collect();
        assert_eq!(order, (0..3_000).collect::<Vec<_>>(), "request order kept");
    }

    #[test]
    fn a_record_larger_than_the_target_is_a_batch_of_its_own() {
        let items = vec![
            with_headers(0, 10),
            with_headers(1, STORED_BATCH_BYTES_TARGET + 1),
            with_headers(2, 10),
        ];
        let sizes: Vec<usize> = split_for_storage(items).iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![1, 1, 1]);
    }
}
