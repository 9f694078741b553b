//! Appends and the group commit.
//!
//! An append validates its batches, waits for room in the pending-bytes budget, then — under
//! the queue lock, so offsets are dense and ordered — assigns offsets by rewriting each batch's
//! base offset and queues the bytes. If no flush is running it starts one on a blocking thread.
//! The flusher takes *everything* queued, writes it with one `write` per segment, then one
//! fsync (policy `always`), and only then raises the high watermark, which acknowledges every
//! append in that group at once. Appends that arrive meanwhile form the next group.
//!
//! A partition that is never fsynced (policy `never`: transient queues) writes a small group
//! on the appending task instead (`flush_inline`): a page-cache write of a few KiB takes
//! microseconds, where handing it to a blocking thread and waking the appender back costs
//! more than the write — and with no fsync to wait behind, groups stay one append long, so
//! that hand-off would be paid per message. A group that would roll the segment (fsync, index
//! files) or is large still goes to the blocking thread, as do the groups after
//! `INLINE_GROUPS_MAX` inline ones (an appender does not write others' appends for ever).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::BytesMut;

use tokio::sync::watch;

use super::{lock, now_ms, producers, PartitionLog, Pending, Progress};
use crate::batch::{set_base_offset, validate_batches, BatchHeader, BatchSpan, EncodedBatches};
use crate::config::FsyncPolicy;
use crate::error::{Result, StorageError};
use crate::segment::Segment;

/// The largest group a never-fsynced partition writes on the appending task.
const INLINE_BYTES_MAX: usize = 64 * 1024;

/// How many groups one appender writes inline before handing the rest to a blocking thread.
const INLINE_GROUPS_MAX: usize = 4;

/// An fsynced partition's writes smaller than this get zeros written ahead of them
/// (`Segment::preallocate`); larger ones extend the file themselves (`write_to`).
pub(crate) const PREALLOCATE_WRITES_BELOW: usize = 16 * 1024;

/// Offsets given to an acknowledged append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    pub first_offset: u64,
    pub last_offset: u64,
}

/// An append that has its offsets but may not be durable yet: the first phase of
/// [`PartitionLog::enqueue`]. Appends enqueued one after another get increasing offsets in
/// that order; [`PendingAppend::durable`] resolves once the group holding this one is
/// acknowledged under the fsync policy (or the partition fails).
#[derive(Debug)]
pub struct PendingAppend {
    info: AppendInfo,
    progress: watch::Receiver<Progress>,
    /// `Progress::resumes` when the append took its place.
    resumes: u64,
}

impl PendingAppend {
    /// The offsets this append was given (not yet readable until it is durable).
    pub fn offsets(&self) -> AppendInfo {
        self.info
    }

    /// Waits until the append is acknowledged.
    pub async fn durable(self) -> Result<AppendInfo> {
        wait_durable(self.progress, self.info, self.resumes).await
    }
}

/// Waits until the high watermark passes `info.last_offset`, or the partition fails first.
async fn wait_durable(
    mut progress: watch::Receiver<Progress>,
    info: AppendInfo,
    resumes: u64,
) -> Result<AppendInfo> {
    let seen = progress
        .wait_for(|p| {
            p.high_watermark > info.last_offset || p.failure.is_some() || p.resumes != resumes
        })
        .await
        .map_err(|_| StorageError::Closed)?;
    if seen.resumes != resumes {
        return seen.acknowledged_before_resume(resumes, info);
    }
    if seen.high_watermark > info.last_offset {
        Ok(info)
    } else if seen.disk_full {
        Err(StorageError::DiskFull {
            context: "writing to the partition".into(),
        })
    } else {
        Err(StorageError::Poisoned {
            reason: seen.failure.as_deref().unwrap_or("unknown").to_string(),
        })
    }
}

impl PartitionLog {
    /// Appends one or more RecordBatch v2 batches (as a producer sent them; base offsets are
    /// overwritten) and resolves once they are acknowledged under the fsync policy.
    pub async fn append(self: &Arc<Self>, bytes: BytesMut) -> Result<AppendInfo> {
        self.enqueue(bytes).await?.durable().await
    }

    /// The first phase of an append: validates the batches, waits for room in the
    /// pending-bytes budget, assigns offsets and queues the bytes for the next group commit.
    /// Returns as soon as the append has its place in the log, so a caller can enqueue
    /// several appends in order (a pipelining Kafka connection) and wait for all of them
    /// together; they usually share one fsync.
    pub async fn enqueue(self: &Arc<Self>, bytes: BytesMut) -> Result<PendingAppend> {
        self.check_writable()?;
        let spans = validate_batches(&bytes, self.config.batch_bytes_max)?;
        self.enqueue_spans(bytes, spans).await
    }

    /// [`PartitionLog::enqueue`] for batches this process encoded: not validated again, but
    /// held to the same size bound.
    pub async fn enqueue_encoded(
        self: &Arc<Self>,
        batches: EncodedBatches,
    ) -> Result<PendingAppend> {
        self.check_writable()?;
        if batches.is_empty() {
            return Err(StorageError::InvalidBatch("no record batch given".into()));
        }
        let (bytes, spans) = batches.into_parts();
        let max = self.config.batch_bytes_max;
        if let Some(span) = spans.iter().find(|span| span.header.total_bytes() > max) {
            return Err(StorageError::BatchTooLarge {
                bytes: span.header.total_bytes(),
                max,
            });
        }
        self.enqueue_spans(bytes, spans).await
    }

    /// [`PartitionLog::append`] for batches this process encoded.
    pub async fn append_encoded(self: &Arc<Self>, batches: EncodedBatches) -> Result<AppendInfo> {
        self.enqueue_encoded(batches).await?.durable().await
    }

    async fn enqueue_spans(
        self: &Arc<Self>,
        mut bytes: BytesMut,
        spans: Vec<BatchSpan>,
    ) -> Result<PendingAppend> {
        let permits = bytes.len().min(self.config.pending_bytes_max) as u32;
        let permit = self
            .space
            .clone()
            .acquire_many_owned(permits)
            .await
            .map_err(|_| StorageError::Closed)?;
        let progress = self.progress.subscribe();
        let (info, start_flush, resumes) = {
            let mut queue = lock(&self.queue);
            self.check_writable()?;
            let resumes = self.progress.borrow().resumes;
            let first_offset = queue.next_offset;
            let mut headers = Vec::with_capacity(spans.len());
            for span in spans {
                set_base_offset(&mut bytes[span.position..], queue.next_offset);
                let header = BatchHeader {
                    base_offset: queue.next_offset,
                    ..span.header
                };
                queue.next_offset += header.offset_count();
                headers.push((span.position, header));
            }
            let last_offset = queue.next_offset - 1;
            queue.pending.push(Pending {
                bytes,
                headers,
                _permit: permit,
            });
            let start_flush = !queue.flushing;
            queue.flushing = true;
            let info = AppendInfo {
                first_offset,
                last_offset,
            };
            (info, start_flush, resumes)
        };
        if start_flush {
            if self.config.fsync == FsyncPolicy::Never {
                self.flush_inline();
            } else {
                let log = self.clone();
                tokio::task::spawn_blocking(move || log.flush_loop());
            }
        }
        Ok(PendingAppend {
            info,
            progress,
            resumes,
        })
    }

    /// Waits until the offsets of an earlier append are acknowledged (or the partition
    /// fails): how a retried batch answered from memory waits for its original to be durable.
    pub async fn wait_durable(&self, info: AppendInfo) -> Result<AppendInfo> {
        let progress = self.progress.subscribe();
        let resumes = progress.borrow().resumes;
        wait_durable(progress, info, resumes).await
    }

    /// Runs on a blocking thread until the queue is empty. Only one runs per partition.
    fn flush_loop(&self) {
        loop {
            let group = {
                let mut queue = lock(&self.queue);
                if queue.pending.is_empty() {
                    queue.flushing = false;
                    return;
                }
                std::mem::take(&mut queue.pending)
            };
            self.flush_group(group);
        }
    }

    /// The flusher of a never-fsynced partition, run by the appender that found none running
    /// (it holds `flushing`, so it is still the only writer): writes the queued groups here
    /// while they are small and need no roll, and hands whatever is left to a blocking thread.
    fn flush_inline(self: &Arc<Self>) {
        for _ in 0..INLINE_GROUPS_MAX {
            let group = {
                let mut queue = lock(&self.queue);
                if queue.pending.is_empty() {
                    queue.flushing = false;
                    return;
                }
                if !self.fits_inline(&queue.pending) {
                    break;
                }
                std::mem::take(&mut queue.pending)
            };
            self.flush_group(group);
        }
        let log = self.clone();
        tokio::task::spawn_blocking(move || log.flush_loop());
    }

    /// Whether `group` is small and lands in the active segment without a roll. A guess
    /// (`maintain` may roll meanwhile): a wrong one only means a roll runs inline once.
    fn fits_inline(&self, group: &[Pending]) -> bool {
        let bytes: usize = group.iter().map(|item| item.bytes.len()).sum();
        if bytes > INLINE_BYTES_MAX {
            return false;
        }
        let active = self.active_segment();
        let size = active.written_bytes();
        if size == 0 {
            return true;
        }
        let too_big = size + bytes as u64 > self.config.segment_bytes;
        let too_old =
            now_ms().saturating_sub(active.first_batch_ms()) >= self.config.segment_ms as i64;
        !too_big && !too_old
    }

    /// Writes one group taken from the queue and acknowledges it (or fails the partition).
    fn flush_group(&self, group: Vec<Pending>) {
        if self.failure().is_some() {
            // Their waiters already saw the failure; dropping releases their budget.
            return;
        }
        match self.write_group(&group) {
            Ok(high_watermark) => {
                self.count_group(&group);
                self.progress.send_modify(|p| {
                    p.high_watermark = p.high_watermark.max(high_watermark);
                })
            }
            Err(error) => self.fail_writes(&error),
        }
    }

    /// Counts a written group: its records and bytes, and its size as a group commit.
    fn count_group(&self, group: &[Pending]) {
        if !crate::metrics::recording() {
            return;
        }
        let mut records = 0u64;
        let mut bytes = 0u64;
        for item in group {
            bytes += item.bytes.len() as u64;
            records += item
                .headers
                .iter()
                .map(|(_, header)| header.offset_count())
                .sum::<u64>();
        }
        self.counters.wrote(records, bytes);
        crate::metrics::GROUP_COMMIT_APPENDS.observe(group.len() as u64);
    }

    /// Writes a group of pending appends, rolling segments as needed; returns the new high
    /// watermark once the group is acknowledged under the fsync policy.
    fn write_group(&self, group: &[Pending]) -> Result<u64> {
        let mut writer = lock(&self.writer);
        let now = now_ms();
        let mut active = self.active_segment();
        let mut buffer = BytesMut::new();
        let mut headers: Vec<(usize, BatchHeader)> = Vec::new();
        let mut high_watermark = 0;
        for item in group {
            let size = active.written_bytes() + buffer.len() as u64;
            let too_big = size + item.bytes.len() as u64 > self.config.segment_bytes;
            let too_old =
                now.saturating_sub(active.first_batch_ms()) >= self.config.segment_ms as i64;
            if size > 0 && (too_big || too_old) {
                if !buffer.is_empty() {
                    self.write_to(&active, &buffer, &headers, now)?;
                    buffer.clear();
                    headers.clear();
                }
                active = self.roll(&active)?;
                writer.unsynced = false;
            }
            {
                let mut tails = lock(&self.producer_tails);
                for (position, header) in &item.headers {
                    headers.push((buffer.len() + position, *header));
                    high_watermark = header.last_offset() + 1;
                    tails.observe(header);
                }
            }
            buffer.extend_from_slice(&item.bytes);
        }
        if !buffer.is_empty() {
            self.write_to(&active, &buffer, &headers, now)?;
        }
        match self.config.fsync {
            FsyncPolicy::Always => {
                active.sync()?;
                writer.last_sync = std::time::Instant::now();
                writer.unsynced = false;
            }
            FsyncPolicy::IntervalMs(ms) => {
                writer.unsynced = true;
                if writer.last_sync.elapsed().as_millis() as u64 >= ms {
                    active.sync()?;
                    writer.last_sync = std::time::Instant::now();
                    writer.unsynced = false;
                }
            }
            FsyncPolicy::Never => writer.unsynced = true,
        }
        active.publish_written();
        Ok(high_watermark)
    }

    /// Writes `buffer` at the end of `active`. A partition that is fsynced first has the
    /// file extended with zeros ahead of a small write (`Segment::preallocate`), so the
    /// fsync that follows writes data alone; one that is never fsynced has no fsync to spare.
    ///
    /// A write of [`PREALLOCATE_WRITES_BELOW`] or more extends the file itself. Every zero
    /// written ahead reaches the disk once before the data overwrites it, so preallocating
    /// doubles the bytes a partition writes; that is worth ~100 µs saved per fsync while the
    /// fsyncs are many and small (latency-bound work), and not once a group carries 16 KiB
    /// or more, which with group commit means at least that much arrived during one fsync
    /// (throughput-bound work): there the doubled bytes are what a disk with a bandwidth cap
    /// runs out of first (docs/storage.md, "Preallocated segments").
    fn write_to(
        &self,
        active: &Segment,
        buffer: &[u8],
        headers: &[(usize, BatchHeader)],
        now: i64,
    ) -> Result<()> {
        if self.config.fsync != FsyncPolicy::Never && buffer.len() < PREALLOCATE_WRITES_BELOW {
            let end = active.written_bytes() + buffer.len() as u64;
            active.preallocate(end, self.config.segment_bytes);
        }
        active.append(buffer, headers, self.config.index_interval_bytes, now)
    }

    /// Closes `active` (fsync, index files) and makes a new empty segment the active one.
    /// Every closed segment is fully synced, whatever the policy, so recovery only ever needs
    /// to scan the last segment.
    fn roll(&self, active: &Arc<Segment>) -> Result<Arc<Segment>> {
        active.trim_preallocated()?;
        active.sync()?;
        active.publish_written();
        active.write_indexes(self.io.as_ref(), &self.dir)?;
        let base = active.next_offset();
        // Producers' state as of the new segment's start: recovery loads it and scans only
        // the new segment on top (written before the segment, so it is there if the segment is).
        producers::write_snapshot(
            self.io.as_ref(),
            &self.dir,
            &lock(&self.producer_tails),
            base,
            active.base_offset,
        )?;
        let segment = Arc::new(Segment::create(self.io.as_ref(), &self.dir, base)?);
        let mut segments = self.segments.write().unwrap_or_else(|p| p.into_inner());
        segments.insert(base, segment.clone());
        Ok(segment)
    }

    /// Periodic upkeep: the fsync an `interval:<ms>` policy owes, and rolling an active
    /// segment that has grown older than `segment_ms` while idle.
    pub fn maintain(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) || self.failure().is_some() {
            return Ok(());
        }
        let mut writer = lock(&self.writer);
        let active = self.active_segment();
        let result = (|| {
            if let FsyncPolicy::IntervalMs(ms) = self.config.fsync {
                if writer.unsynced && writer.last_sync.elapsed().as_millis() as u64 >= ms {
                    active.sync()?;
                    writer.last_sync = std::time::Instant::now();
                    writer.unsynced = false;
                }
            }
            if !active.is_empty()
                && now_ms().saturating_sub(active.first_batch_ms()) >= self.config.segment_ms as i64
            {
                self.roll(&active)?;
                writer.unsynced = false;
            }
            self.save_log_start(&mut writer)
        })();
        if let Err(error) = &result {
            self.poison(error);
        }
        result
    }
}
