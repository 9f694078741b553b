//! Raw appends: record batches a producer encoded (Kafka's produce path) appended as sent —
//! the log assigns offsets by rewriting each batch's base offset, never re-encoding — and the
//! multi-partition wait a Kafka fetch long-polls with.
//!
//! Batches are checked here for what readers of the stored bytes rely on beyond the CRC the
//! log checks: a record count that matches the batch's offset span and is plausible for its
//! size (a decoder reserves room for that many records), no control or transactional batches
//! (the engine has no transactions), and the stream's size limit.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use omnibus_storage::batch::{decode_batches, BatchHeader, HEADER_BYTES};
use omnibus_storage::{AppendInfo, PartitionLog, PendingAppend};
use omnibus_types::limits;

use super::publish::LiveCopies;
use crate::engine::Engine;
use crate::error::{EngineError, Result};
use crate::router::deliver_stored;

/// The smallest possible record: length, attributes, timestamp delta, offset delta, key
/// length, value length and header count, one byte each.
const RECORD_BYTES_MIN: usize = 7;
/// Most records one compressed batch may claim (their size is unknown until decompressed).
pub const RAW_BATCH_RECORDS_MAX: usize = 1_000_000;
/// Batch framing allowed on top of the stream's `message_bytes_max`: Kafka's
/// `max.message.bytes` bounds whole batches, ours bounds one record, so a batch holding one
/// maximal record must still fit.
const BATCH_OVERHEAD_BYTES: usize = 1024;

/// Where an appended batch landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawAppend {
    pub first_offset: u64,
    pub last_offset: u64,
    pub log_start_offset: u64,
}

/// A raw append with its offsets assigned, not yet acknowledged.
pub struct PendingRawAppend {
    log: Arc<PartitionLog>,
    wait: RawWait,
    /// The batch's records for live subscribers, decoded only when there were any.
    live: Option<LiveCopies>,
}

#[derive(Debug)]
enum RawWait {
    /// Appended by this call.
    Pending(PendingAppend),
    /// Written earlier (a retried batch): wait for those offsets.
    Earlier(AppendInfo),
}

impl std::fmt::Debug for PendingRawAppend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingRawAppend")
            .field("wait", &self.wait)
            .finish_non_exhaustive()
    }
}

impl PendingRawAppend {
    /// An earlier append of `log`, to be answered once it is durable.
    pub(crate) fn earlier(log: Arc<PartitionLog>, offsets: RawAppend) -> PendingRawAppend {
        // A retried batch reached live subscribers when it was first acknowledged.
        PendingRawAppend {
            log,
            wait: RawWait::Earlier(AppendInfo {
                first_offset: offsets.first_offset,
                last_offset: offsets.last_offset,
            }),
            live: None,
        }
    }

    /// The offsets the batch was given.
    pub fn offsets(&self) -> RawAppend {
        let info = match &self.wait {
            RawWait::Pending(pending) => pending.offsets(),
            RawWait::Earlier(info) => *info,
        };
        raw_append(&self.log, info)
    }

    /// Resolves once the batch is acknowledged under the stream's fsync policy.
    pub async fn durable(self) -> Result<RawAppend> {
        let info = match self.wait {
            RawWait::Pending(pending) => pending.durable().await?,
            RawWait::Earlier(info) => self.log.wait_durable(info).await?,
        };
        if let Some(live) = self.live {
            deliver_stored(&live.router, &live.stream, live.records, live.appended);
        }
        Ok(raw_append(&self.log, info))
    }
}

/// Where an append of `log` landed, with the log's current start.
fn raw_append(log: &PartitionLog, info: AppendInfo) -> RawAppend {
    RawAppend {
        first_offset: info.first_offset,
        last_offset: info.last_offset,
        log_start_offset: log.log_start_offset(),
    }
}

/// The fixed header of one producer batch, as the engine checked it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawBatchInfo {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub record_count: i32,
    pub total_bytes: usize,
}

impl RawBatchInfo {
    /// The sequence number of the batch's last record (sequences wrap at `i32::MAX`).
    pub fn last_sequence(&self) -> i32 {
        let last = self.base_sequence as i64 + self.record_count as i64 - 1;
        (last % (i32::MAX as i64 + 1)) as i32
    }

    pub fn is_idempotent(&self) -> bool {
        self.producer_id >= 0
    }
}

/// Checks one producer batch (exactly one, as Kafka requires of Produce v3+) and returns its
/// header. The CRC is checked by the log when appending.
pub fn inspect_raw_batch(bytes: &[u8], message_bytes_max: usize) -> Result<RawBatchInfo> {
    let invalid =
        |reason: String| EngineError::BadRequest(format!("invalid record batch: {reason}"));
    let header = BatchHeader::parse(bytes)?;
    let total_bytes = header.total_bytes();
    if total_bytes != bytes.len() {
        return Err(invalid(format!(
            "expected exactly one batch of {total_bytes} bytes, got {} bytes",
            bytes.len()
        )));
    }
    let limit = message_bytes_max.saturating_add(BATCH_OVERHEAD_BYTES);
    if total_bytes > limit {
        return Err(EngineError::MessageTooLarge {
            what: "record batch",
            bytes: total_bytes,
            max: limit,
        });
    }
    if header.is_control() || header.attributes & (1 << 4) != 0 {
        return Err(invalid(
            "transactional and control batches are not supported".into(),
        ));
    }
    let count = header.record_count as i64;
    if count < 1 || count != header.last_offset_delta as i64 + 1 {
        return Err(invalid(format!(
            "record count {count} does not match last offset delta {}",
            header.last_offset_delta
        )));
    }
    let records_bytes = total_bytes - HEADER_BYTES;
    let plausible = if header.compression() == 0 {
        records_bytes / RECORD_BYTES_MIN
    } else {
        RAW_BATCH_RECORDS_MAX
    };
    if count as usize > plausible {
        return Err(invalid(format!(
            "{count} records cannot fit in {records_bytes} bytes"
        )));
    }
    Ok(RawBatchInfo {
        producer_id: header.producer_id,
        producer_epoch: header.producer_epoch,
        base_sequence: header.base_sequence,
        record_count: header.record_count,
        total_bytes,
    })
}

impl Engine {
    /// Appends one producer batch to a partition as sent and resolves once it is
    /// acknowledged under the stream's fsync policy. Does no idempotence check; see
    /// [`crate::producers::ProducerRegistry::append`].
    pub async fn append_raw(
        &self,
        stream: &str,
        partition: u32,
        batch: BytesMut,
    ) -> Result<RawAppend> {
        self.enqueue_raw(stream, partition, batch)
            .await?
            .durable()
            .await
    }

    /// The first phase of [`Engine::append_raw`]: the batch has its offsets and its place in
    /// the partition when this returns; [`PendingRawAppend::durable`] waits for the
    /// acknowledgement. Batches enqueued one after another land in that order.
    pub async fn enqueue_raw(
        &self,
        stream: &str,
        partition: u32,
        batch: BytesMut,
    ) -> Result<PendingRawAppend> {
        self.check_running()?;
        if let Some(queue) = self.queue_in_stream(stream, false) {
            // A produce into a queue's own stream: its records are enqueued (`queue/bridged.rs`).
            let stream = self.stream(stream)?;
            inspect_raw_batch(&batch, stream.config.message_bytes_max)?;
            let offsets = self.enqueue_raw_batch(&queue, partition, &batch).await?;
            return Ok(PendingRawAppend::earlier(
                self.queue(&queue)?.log.clone(),
                offsets,
            ));
        }
        let stream = self.stream(stream)?;
        inspect_raw_batch(&batch, stream.config.message_bytes_max)?;
        let log = stream.partition(partition)?.clone();
        let live = self.live_copies(&stream.config.name, &batch);
        let pending = log.enqueue(batch).await?;
        Ok(PendingRawAppend {
            log,
            wait: RawWait::Pending(pending),
            live,
        })
    }

    /// The batch's records for live subscribers, when there are any subscribers: decoding
    /// costs nothing on the produce path of a broker without live subscriptions.
    fn live_copies(&self, stream: &str, batch: &BytesMut) -> Option<LiveCopies> {
        if !self.live_router.is_active() {
            return None;
        }
        let records = match decode_batches(Bytes::copy_from_slice(batch), 0) {
            Ok(records) => records,
            Err(error) => {
                tracing::warn!(
                    stream,
                    "a produced batch could not be decoded for live subscribers: {error}"
                );
                return None;
            }
        };
        Some(LiveCopies {
            router: self.live_router.clone(),
            stream: stream.to_string(),
            records: records
                .into_iter()
                .map(|record| (record.subject, record.headers, record.value))
                .collect(),
            // A produce writes to the stream by its name.
            appended: true,
        })
    }

    /// The largest batch a stream accepts through [`Engine::append_raw`].
    pub fn raw_batch_bytes_max(&self, stream: &str) -> Result<usize> {
        Ok(self
            .stream(stream)?
            .config
            .message_bytes_max
            .saturating_add(BATCH_OVERHEAD_BYTES))
    }

    /// Waits until any of `positions` (stream, partition, offset) has records at or after
    /// its offset, a partition fails, or `wait_ms` passes (at most
    /// [`limits::FETCH_WAIT_MS_MAX`]). A stream that does not exist yet ends the wait when
    /// any stream is created (the caller looks again); unknown partitions are ignored.
    pub async fn wait_for_records(&self, positions: &[(String, u32, u64)], wait_ms: u64) {
        let wait = Duration::from_millis(wait_ms.min(limits::FETCH_WAIT_MS_MAX));
        if wait.is_zero() || positions.is_empty() {
            return;
        }
        // Watched before the streams are looked up, so one created in between is seen.
        let mut created = Some(self.read_streams().watch_created());
        let mut waits = tokio::task::JoinSet::new();
        for (stream, partition, offset) in positions {
            let Ok(stream) = self.stream(stream) else {
                if let Some(mut created) = created.take() {
                    waits.spawn(async move {
                        let _ = created.changed().await;
                    });
                }
                continue;
            };
            let Ok(log) = stream.partition(*partition) else {
                continue;
            };
            let log: Arc<_> = log.clone();
            let offset = *offset;
            waits.spawn(async move {
                let mut progress = log.watch();
                let _ = progress.wait_for(|p| p.has_news_after(offset)).await;
            });
        }
        if waits.is_empty() {
            return;
        }
        // The first partition with news ends the wait; dropping the set cancels the others.
        let _ = tokio::time::timeout(wait, waits.join_next()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(count: i32, delta: i32, attributes: i16, records_bytes: usize) -> Vec<u8> {
        let mut bytes = vec![0u8; HEADER_BYTES + records_bytes];
        let length = (bytes.len() - 12) as i32;
        bytes[8..12].copy_from_slice(&length.to_be_bytes());
        bytes[16] = 2;
        bytes[21..23].copy_from_slice(&attributes.to_be_bytes());
        bytes[23..27].copy_from_slice(&delta.to_be_bytes());
        bytes[43..51].copy_from_slice(&7i64.to_be_bytes());
        bytes[53..57].copy_from_slice(&(i32::MAX - 1).to_be_bytes());
        bytes[57..61].copy_from_slice(&count.to_be_bytes());
        bytes
    }

    #[test]
    fn a_plausible_batch_is_accepted_and_its_sequences_wrap() {
        let info = inspect_raw_batch(&batch(3, 2, 0, 21), 1 << 20).unwrap();
        assert_eq!(info.producer_id, 7);
        assert_eq!(info.record_count, 3);
        assert_eq!(info.last_sequence(), 0, "MAX-1, MAX, then 0");
    }

    #[test]
    fn implausible_batches_are_refused() {
        // A record count the bytes cannot hold (a decoder would reserve room for it).
        assert!(inspect_raw_batch(&batch(1000, 999, 0, 21), 1 << 20).is_err());
        // A count that disagrees with the offset span.
        assert!(inspect_raw_batch(&batch(3, 5, 0, 21), 1 << 20).is_err());
        assert!(inspect_raw_batch(&batch(0, -1, 0, 21), 1 << 20).is_err());
        // Transactional and control batches.
        assert!(inspect_raw_batch(&batch(1, 0, 1 << 4, 21), 1 << 20).is_err());
        assert!(inspect_raw_batch(&batch(1, 0, 1 << 5, 21), 1 << 20).is_err());
        // Two batches where one is expected.
        let mut two = batch(1, 0, 0, 7);
        two.extend(batch(1, 0, 0, 7));
        assert!(inspect_raw_batch(&two, 1 << 20).is_err());
        // Too large for the stream.
        assert!(matches!(
            inspect_raw_batch(&batch(1, 0, 0, 5000), 1000),
            Err(EngineError::MessageTooLarge { .. })
        ));
        // A compressed batch may hold many records in few bytes, within a ceiling.
        assert!(inspect_raw_batch(&batch(5000, 4999, 4, 100), 1 << 20).is_ok());
    }
}
