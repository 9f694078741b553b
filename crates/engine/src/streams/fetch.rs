//! Fetching: by offset with long-poll, raw batches for front doors that serve stored bytes,
//! and resolving earliest / latest / timestamp to an offset.

use std::time::Duration;

use bytes::Bytes;
use omnibus_storage::batch::{decode_batches, BatchHeader};
use omnibus_types::limits;

use crate::engine::Engine;
use crate::error::Result;
use crate::model::{FetchRequest, FetchResult, OffsetSpec, RawFetchResult};
use crate::streams::registry::off_the_runtime;

impl Engine {
    /// Records from `offset` on, waiting up to `wait_ms` when there are none yet.
    pub async fn fetch(&self, request: FetchRequest) -> Result<FetchResult> {
        let max_records = request.max_records.max(1);
        let raw = self
            .fetch_raw(
                &request.stream,
                request.partition,
                request.offset,
                request.max_bytes.max(1),
                request.wait_ms,
            )
            .await?;
        let stream_name = request.stream.clone();
        let mut next_offset = request.offset;
        let end_of_batches = last_offset_after(&raw.batches);
        let mut records = decode_batches(raw.batches, request.offset)?;
        records.truncate(max_records);
        for record in &mut records {
            if record.subject.is_empty() {
                record.subject = stream_name.clone();
            }
        }
        match records.last() {
            Some(last) => next_offset = last.offset + 1,
            // Only control batches: skip past them.
            None => next_offset = next_offset.max(end_of_batches.unwrap_or(next_offset)),
        }
        Ok(FetchResult {
            records,
            next_offset,
            high_watermark: raw.high_watermark,
            log_start_offset: raw.log_start_offset,
        })
    }

    /// Stored batches from the one containing `offset`, up to about `max_bytes` (always at
    /// least one whole batch when any exists), waiting up to `wait_ms`.
    pub async fn fetch_raw(
        &self,
        stream: &str,
        partition: u32,
        offset: u64,
        max_bytes: usize,
        wait_ms: u64,
    ) -> Result<RawFetchResult> {
        let log = self.stream(stream)?.partition(partition)?.clone();
        let wait = Duration::from_millis(wait_ms.min(limits::FETCH_WAIT_MS_MAX));
        if offset == log.high_watermark() && !wait.is_zero() {
            let mut progress = log.watch();
            let _ =
                tokio::time::timeout(wait, progress.wait_for(|p| p.has_news_after(offset))).await;
        }
        let read = tokio::task::spawn_blocking(move || log.read(offset, max_bytes))
            .await
            .map_err(|e| crate::EngineError::Internal(e.to_string()))??;
        Ok(RawFetchResult {
            next_offset: read.next_offset,
            batches: read.bytes,
            high_watermark: read.high_watermark,
            log_start_offset: read.log_start_offset,
        })
    }

    /// The first record with the partition's largest timestamp, as `(offset, timestamp)`;
    /// `None` when the partition has no readable records. It scans a segment's batches, so on
    /// a blocking thread.
    pub async fn max_timestamp_offset(
        &self,
        stream: &str,
        partition: u32,
    ) -> Result<Option<(u64, i64)>> {
        let log = self.stream(stream)?.partition(partition)?.clone();
        tokio::task::spawn_blocking(move || log.max_timestamp_offset())
            .await
            .map_err(|e| crate::EngineError::Internal(e.to_string()))?
            .map_err(Into::into)
    }

    /// Resolves earliest / latest / by-timestamp to an offset. For a timestamp past every
    /// record, returns the high watermark. A timestamp lookup reads segment files, off the
    /// async runtime.
    pub async fn resolve_offset(
        &self,
        stream: &str,
        partition: u32,
        spec: OffsetSpec,
    ) -> Result<u64> {
        let log = self.stream(stream)?.partition(partition)?.clone();
        Ok(match spec {
            OffsetSpec::Earliest => log.log_start_offset(),
            OffsetSpec::Latest => log.high_watermark(),
            OffsetSpec::Timestamp(timestamp) => {
                off_the_runtime(move || Ok(log.offset_for_timestamp(timestamp)?)).await?
            }
        })
    }

    /// A partition's log start and high watermark (from memory; no disk read).
    pub fn partition_bounds(&self, stream: &str, partition: u32) -> Result<(u64, u64)> {
        let log = self.stream(stream)?.partition(partition)?.clone();
        Ok((log.log_start_offset(), log.high_watermark()))
    }

    /// One past the last offset given out in a partition, appends not yet acknowledged
    /// included (see [`Engine::enqueue_publish`]).
    pub fn partition_next_offset(&self, stream: &str, partition: u32) -> Result<u64> {
        Ok(self.stream(stream)?.partition(partition)?.next_offset())
    }
}

/// One past the last offset of the last whole batch in `bytes`.
fn last_offset_after(bytes: &Bytes) -> Option<u64> {
    let mut position = 0;
    let mut last = None;
    while position < bytes.len() {
        let header = BatchHeader::parse(&bytes[position..]).ok()?;
        last = Some(header.last_offset() + 1);
        position += header.total_bytes();
    }
    last
}
