//! Reads: by offset (whole batches, across segments) and by timestamp.

use std::ops::ControlFlow;

use bytes::{Bytes, BytesMut};

use super::PartitionLog;
use crate::batch::{decode_batches, BatchHeader, HEADER_BYTES};
use crate::error::{Result, StorageError};
use crate::scan::{scan_batches, scan_batches_in_chunks, Chunks};
use crate::segment::Segment;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadResult {
    /// Whole batches, the first one holding the requested offset. Empty at the high watermark.
    pub bytes: Bytes,
    pub high_watermark: u64,
    pub log_start_offset: u64,
    /// The offset after the last batch in `bytes` (the requested offset when there is none):
    /// below the high watermark when `max_bytes` left records out.
    pub next_offset: u64,
}

impl PartitionLog {
    /// Reads whole batches starting with the one that holds `offset`, up to `max_bytes` —
    /// but always at least one whole batch when there is one, so a reader can make progress
    /// past a batch larger than its buffer (Kafka's rule). Never returns records at or beyond
    /// the high watermark.
    pub fn read(&self, offset: u64, max_bytes: usize) -> Result<ReadResult> {
        let high_watermark = self.high_watermark();
        let log_start_offset = self.log_start_offset();
        if offset < log_start_offset || offset > high_watermark {
            return Err(StorageError::OffsetOutOfRange {
                offset,
                log_start: log_start_offset,
                high_watermark,
            });
        }
        let mut out = BytesMut::new();
        let mut cursor = offset;
        for segment in self.segments_snapshot() {
            if cursor >= high_watermark || (!out.is_empty() && out.len() >= max_bytes) {
                break;
            }
            if segment.next_offset() <= cursor || segment.base_offset > cursor {
                continue;
            }
            let budget = max_bytes.saturating_sub(out.len());
            cursor = self.read_segment(&segment, cursor, budget, high_watermark, &mut out)?;
        }
        self.counters
            .read(cursor.saturating_sub(offset), out.len() as u64);
        Ok(ReadResult {
            bytes: out.freeze(),
            high_watermark,
            log_start_offset,
            next_offset: cursor,
        })
    }

    /// Appends to `out` the whole batches of `segment` from the one holding `offset`, within
    /// `budget` bytes (at least one batch if `out` is empty). Returns the next offset to read.
    fn read_segment(
        &self,
        segment: &Segment,
        offset: u64,
        budget: usize,
        high_watermark: u64,
        out: &mut BytesMut,
    ) -> Result<u64> {
        let batch_max = self.config.batch_bytes_max;
        let start = segment.locate(offset, batch_max)?;
        let end = segment.visible_bytes();
        let mut next = offset;
        let first = out.is_empty();
        let chunks = Chunks {
            // What the budget takes plus the next header, so the batch that ends the read is
            // seen from its header without reading it.
            bytes: budget.saturating_add(HEADER_BYTES),
            verify: false,
            batch_bytes_max: batch_max,
        };
        scan_batches_in_chunks(
            segment.file.as_ref(),
            start,
            end,
            chunks,
            |position, header| {
                let taken = (position - start) as usize;
                let fits = taken + header.total_bytes() <= budget || (first && taken == 0);
                if header.base_offset >= high_watermark || !fits {
                    return ControlFlow::Break(());
                }
                ControlFlow::Continue(())
            },
            |_, header, bytes| {
                out.extend_from_slice(bytes);
                next = header.last_offset() + 1;
                ControlFlow::Continue(())
            },
        )?;
        Ok(next)
    }

    /// The first offset whose record has a timestamp at or after `timestamp`, or the high
    /// watermark when every record is older.
    pub fn offset_for_timestamp(&self, timestamp: i64) -> Result<u64> {
        let high_watermark = self.high_watermark();
        let batch_max = self.config.batch_bytes_max;
        for segment in self.segments_snapshot() {
            if segment.max_timestamp() < timestamp || segment.visible_bytes() == 0 {
                continue;
            }
            let start = segment.locate_time(timestamp);
            let mut found: Option<u64> = None;
            let mut error = None;
            scan_batches(
                segment.file.as_ref(),
                start,
                segment.visible_bytes(),
                false,
                batch_max,
                |_, header: &BatchHeader, bytes| {
                    if header.base_offset >= high_watermark {
                        return ControlFlow::Break(());
                    }
                    if header.max_timestamp < timestamp {
                        return ControlFlow::Continue(());
                    }
                    match decode_batches(Bytes::copy_from_slice(bytes), 0) {
                        Ok(records) => {
                            found = records
                                .iter()
                                .find(|r| r.timestamp_ms >= timestamp)
                                .map(|r| r.offset);
                        }
                        Err(e) => error = Some(e),
                    }
                    if found.is_some() || error.is_some() {
                        ControlFlow::Break(())
                    } else {
                        ControlFlow::Continue(())
                    }
                },
            )?;
            if let Some(error) = error {
                return Err(error);
            }
            if let Some(offset) = found {
                return Ok(offset.max(self.log_start_offset()));
            }
        }
        Ok(high_watermark)
    }

    /// The first record carrying the largest timestamp in the partition, as `(offset,
    /// timestamp)` (Kafka's ListOffsets "max timestamp", -3); `None` when nothing is readable.
    pub fn max_timestamp_offset(&self) -> Result<Option<(u64, i64)>> {
        let max = self
            .segments_snapshot()
            .iter()
            .filter(|segment| segment.visible_bytes() > 0)
            .map(|segment| segment.max_timestamp())
            .max()
            .filter(|max| *max != i64::MIN);
        let Some(max) = max else {
            return Ok(None);
        };
        // No record is later than `max`, so the first at or after it is the first carrying it.
        let offset = self.offset_for_timestamp(max)?;
        Ok((offset < self.high_watermark()).then_some((offset, max)))
    }
}
