//! A full disk refuses writes until space returns, instead of poisoning the partition.
//!
//! Most write failures poison the log until a restart (`PartitionLog::poison`): after a failed
//! fsync nobody knows what reached the disk, and readers may already have seen those bytes.
//! ENOSPC is different — the filesystem refused the bytes, it did not lose them — so it heals
//! once the bytes nobody was promised are removed:
//!
//! 1. The log refuses writes with [`StorageError::DiskFull`]; every append of the failed group
//!    (and any queued behind it) fails with it. None of them was acknowledged.
//! 2. The active segment is cut back (`set_len`) to the end of the last acknowledged batch —
//!    the high watermark — and reopened, so its indexes, next offset and the producers' last
//!    batches forget the refused appends. The next append gets the offsets they had.
//! 3. [`PartitionLog::resume_after_disk_full`] (the engine's maintenance pass calls it when
//!    the filesystem has room again) lets writes in.
//!
//! What readers may have seen decides when this is safe. Readers only ever see offsets below
//! the high watermark, and the high watermark only moves after a group's write (and, under
//! `fsync = always`, its fsync) succeeded; the cut never goes below it, so nothing a reader saw
//! or a client was told is removed.
//! - `fsync = always`: every acknowledged byte was fsynced before it was acknowledged. An
//!   ENOSPC from a write or from an fsync concerns only the refused group, which is cut. Heals.
//! - `fsync = interval:<ms>` or `never`: acknowledged bytes may still wait for their fsync.
//!   An ENOSPC from a *write* leaves them in the page cache, untouched: heals (the next fsync
//!   makes them durable). An ENOSPC from an *fsync* may have lost acknowledged bytes that
//!   readers have seen: that stays a poison, like any failed fsync.
//! - A refused group that straddled a segment roll left unacknowledged batches in a segment
//!   that is already closed; cutting a closed segment is not worth its complexity for so rare
//!   a case, so that poisons too.
//! - Only the flusher heals (it is the one writer of offsets, so no group is in flight while
//!   it cuts and resets the next offset). A failure in `maintain` (the interval fsync, a roll
//!   by age of an idle segment) still poisons.

use std::sync::Arc;

use super::{lock, producers, AppendInfo, PartitionLog, Progress};
use crate::config::FsyncPolicy;
use crate::error::StorageError;
use crate::segment::Segment;

/// Resumes whose first reissued offset `Progress` remembers; an append whose waiter slept
/// through more of them than this is reported as failed (it may not have been).
const RESUMES_REMEMBERED: usize = 16;

/// How `Segment::sync` names a failed data fsync (`segment.rs`): the one ENOSPC that may have
/// dropped acknowledged bytes under a relaxed fsync policy.
const DATA_FSYNC_CONTEXT: &str = "fsync of ";

impl Progress {
    /// The outcome for an append enqueued when `resumes` was the resume count, seen only after
    /// later resumes: acknowledged if it ended below the first offset the first of them gave
    /// out again (cuts never go below the high watermark, which only grows), else refused.
    pub(super) fn acknowledged_before_resume(
        &self,
        resumes: u64,
        info: AppendInfo,
    ) -> crate::error::Result<AppendInfo> {
        let oldest = self.resumes + 1 - self.resumed_at.len() as u64;
        let first_after = resumes + 1;
        let reissued_from = first_after
            .checked_sub(oldest)
            .and_then(|index| self.resumed_at.get(index as usize));
        match reissued_from {
            Some(&reissued_from) if info.last_offset < reissued_from => Ok(info),
            _ => Err(StorageError::DiskFull {
                context: "writing to the partition".into(),
            }),
        }
    }
}

impl PartitionLog {
    /// Handles a failed write, fsync or roll of the flusher: a full disk refuses writes until
    /// space returns, anything else poisons the log. Called only by the flusher (the flush loop,
    /// or an appender writing inline: `append.rs`).
    pub(super) fn fail_writes(&self, error: &StorageError) {
        let StorageError::DiskFull { context } = error else {
            self.poison(error);
            return;
        };
        let acknowledged_unsynced_may_be_lost = context.starts_with(DATA_FSYNC_CONTEXT)
            && !matches!(self.config.fsync, FsyncPolicy::Always);
        if acknowledged_unsynced_may_be_lost || self.failure().is_some() {
            self.poison(error);
            return;
        }
        self.refuse_until_space_returns(error);
    }

    /// Whether the log refuses writes because the disk was full (and may resume).
    pub fn is_disk_full(&self) -> bool {
        self.progress.borrow().disk_full
    }

    /// Lets writes in again after a disk-full refusal; returns whether it did. The caller
    /// checks that the filesystem has room (appends fail again with `disk_full` if not).
    pub fn resume_after_disk_full(&self) -> bool {
        // Under the queue lock: an append takes its place and notes the resume count there.
        let _queue = lock(&self.queue);
        let refusing = {
            let progress = self.progress.borrow();
            // Without the failure the cut is still under way.
            progress.disk_full && progress.failure.is_some()
        };
        if !refusing {
            return false;
        }
        *lock(&self.failure) = None;
        self.progress.send_modify(|progress| {
            progress.failure = None;
            progress.disk_full = false;
            progress.resumes += 1;
            // Nothing was written while refusing: the high watermark is where the cut was.
            let reissued_from = progress.high_watermark;
            progress.resumed_at.push_back(reissued_from);
            if progress.resumed_at.len() > RESUMES_REMEMBERED {
                progress.resumed_at.pop_front();
            }
        });
        tracing::info!(dir = %self.dir.display(), "partition accepts writes again after a full disk");
        true
    }

    /// The error an append gets while the log refuses writes for `reason`.
    pub(super) fn refusal(&self, reason: &str) -> StorageError {
        if self.is_disk_full() {
            StorageError::DiskFull {
                context: format!(
                    "writing to {} (it accepts writes again once the disk has room)",
                    self.dir.display()
                ),
            }
        } else {
            StorageError::Poisoned {
                reason: reason.to_string(),
            }
        }
    }

    /// Refuses appends (new ones see the failure at once) but wakes the waiters of the
    /// refused ones only after the cut, so a client told "disk full" finds none of its bytes.
    fn refuse_until_space_returns(&self, error: &StorageError) {
        let reason: Arc<str> = Arc::from(error.to_string());
        tracing::warn!(dir = %self.dir.display(), "partition refuses writes until the disk has room: {reason}");
        // `disk_full` first, so an append refused from now on is told `disk_full`.
        self.progress
            .send_modify(|progress| progress.disk_full = true);
        *lock(&self.failure) = Some(reason.clone());
        {
            // Appends queued behind the failed group have offsets past it; they fail too and
            // their offsets are given out again after the cut.
            let mut queue = lock(&self.queue);
            queue.pending.clear();
            queue.next_offset = self.high_watermark();
        }
        match self.cut_to_high_watermark() {
            Ok(()) => self.progress.send_modify(|progress| {
                progress.failure = Some(reason);
            }),
            Err(cut_error) => self.escalate_to_poison(&cut_error),
        }
    }

    fn escalate_to_poison(&self, error: &StorageError) {
        let reason: Arc<str> = Arc::from(error.to_string());
        tracing::error!(dir = %self.dir.display(), "partition refuses writes: {reason}");
        *lock(&self.failure) = Some(reason.clone());
        self.progress.send_modify(|progress| {
            progress.failure = Some(reason);
            progress.disk_full = false;
        });
    }

    /// Cuts the active segment back to the high watermark and reopens it, so nothing of the
    /// refused appends is left: not on disk, not in the indexes, not in the producers' tails.
    fn cut_to_high_watermark(&self) -> crate::error::Result<()> {
        let _writer = lock(&self.writer);
        let high_watermark = self.high_watermark();
        let active = self.active_segment();
        if active.base_offset > high_watermark {
            return Err(StorageError::Corrupt(format!(
                "disk full during a segment roll left unacknowledged records from offset \
                 {high_watermark} in a closed segment"
            )));
        }
        let cut = if high_watermark < active.next_offset() {
            active.locate(high_watermark, self.config.batch_bytes_max)?
        } else {
            active.written_bytes()
        };
        active.file.set_len(cut).map_err(|e| {
            StorageError::io(
                format!("cutting {} after a full disk", self.dir.display()),
                e,
            )
        })?;
        let mut tails = producers::load_snapshot(self.io.as_ref(), &self.dir, active.base_offset)
            .unwrap_or_default();
        let mut observe = |header: &crate::batch::BatchHeader| tails.observe(header);
        let (reopened, _) = Segment::open(
            self.io.as_ref(),
            &self.dir,
            active.base_offset,
            true,
            self.config.index_interval_bytes,
            self.config.batch_bytes_max,
            super::now_ms(),
            Some(&mut observe),
        )?;
        debug_assert_eq!(
            reopened.next_offset(),
            high_watermark.max(active.base_offset)
        );
        *lock(&self.producer_tails) = tails;
        let mut segments = self.segments.write().unwrap_or_else(|p| p.into_inner());
        segments.insert(active.base_offset, Arc::new(reopened));
        Ok(())
    }
}

#[cfg(test)]
#[path = "disk_full_tests.rs"]
mod tests;
