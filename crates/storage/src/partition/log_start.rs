//! Moving the log start inside a segment (Kafka's DeleteRecords): the new start is written to
//! a small checkpoint file, so that after a restart reads below it are still refused, and
//! whole segments below it are deleted. Records between the start of their segment and the
//! log start stay on disk until retention removes the segment, but are never served.
//!
//! The checkpoint, `log-start.checkpoint`: 8 bytes big-endian offset, then 4 bytes CRC-32C of
//! those 8 bytes; written to a `.tmp` file, fsynced, renamed over the old one, and the
//! directory fsynced. A missing or damaged checkpoint means "the first segment's base".
//!
//! A move may also leave the checkpoint for later ([`PartitionLog::delete_records_before_lazily`],
//! for Redis's approximate trims): the start moves in memory at once and the checkpoint is
//! written by the partition's next maintenance pass (every second by default) or its close.
//! Those two fsyncs, under the lock the group commit also takes, were most of what an `XADD
//! … MAXLEN ~` cost (docs/benchmarks.md, "Approximate trims without fsyncs"). A crash before
//! the checkpoint can only bring back records below the moved start, never lose others.

use std::path::Path;
use std::sync::atomic::Ordering;

use super::{lock, PartitionLog, WriterState};
use crate::error::{Result, StorageError};
use crate::io::Io;
use crate::segment::write_file_atomically;

const CHECKPOINT: &str = "log-start.checkpoint";

/// The checkpointed log start of the partition in `dir`, if there is a valid one.
pub(super) fn load(io: &dyn Io, dir: &Path) -> Option<u64> {
    let path = dir.join(CHECKPOINT);
    if !io.exists(&path) {
        return None;
    }
    let file = io.open(&path, false).ok()?;
    let mut bytes = [0u8; 12];
    file.read_exact_at(&mut bytes, 0).ok()?;
    let (offset, crc) = bytes.split_at(8);
    if crc32c::crc32c(offset).to_be_bytes() != crc {
        tracing::warn!(dir = %dir.display(), "ignoring a damaged log start checkpoint");
        return None;
    }
    Some(u64::from_be_bytes(offset.try_into().ok()?))
}

fn store(io: &dyn Io, dir: &Path, offset: u64) -> Result<()> {
    let mut bytes = offset.to_be_bytes().to_vec();
    bytes.extend_from_slice(&crc32c::crc32c(&offset.to_be_bytes()).to_be_bytes());
    write_file_atomically(io, &dir.join(CHECKPOINT), &bytes)
}

impl PartitionLog {
    /// Makes `offset` the first offset readers may ask for (records below it are deleted as
    /// far as readers can tell) and returns the new log start. An offset at or below the
    /// current start changes nothing; one above the high watermark is out of range. Durable
    /// when it returns.
    pub fn delete_records_before(&self, offset: u64) -> Result<u64> {
        self.move_start(offset, true)
    }

    /// [`PartitionLog::delete_records_before`] without the checkpoint's fsyncs: readers are
    /// refused below `offset` at once, and the checkpoint is written by the next maintenance
    /// pass or the close (see the module docs). After a crash before that, the log may start
    /// lower again. Whole segments below `offset` go now (that moves the start durably by
    /// itself: recovery never starts below the first segment).
    pub fn delete_records_before_lazily(&self, offset: u64) -> Result<u64> {
        self.move_start(offset, false)
    }

    fn move_start(&self, offset: u64, durably: bool) -> Result<u64> {
        self.check_writable()?;
        // Serialised with appends' writes and segment rolls.
        let mut writer = lock(&self.writer);
        let high_watermark = self.high_watermark();
        let current = self.log_start_offset();
        if offset > high_watermark {
            return Err(StorageError::OffsetOutOfRange {
                offset,
                log_start: current,
                high_watermark,
            });
        }
        if offset <= current {
            return Ok(current);
        }
        if durably {
            store(self.io.as_ref(), &self.dir, offset)?;
        }
        // Saved now, which covers any start moved lazily before (all lower), or owed.
        writer.log_start_unsaved = !durably;
        self.log_start.fetch_max(offset, Ordering::AcqRel);
        // Whole segments below the new start go now; the active one always stays.
        let doomed = self.remove_leading_segments(|first, _| first.next_offset() <= offset);
        self.delete_segment_files(doomed)?;
        Ok(offset)
    }

    /// Writes the checkpoint of a log start moved lazily, if one waits.
    pub(super) fn save_log_start(&self, writer: &mut WriterState) -> Result<()> {
        if writer.log_start_unsaved {
            store(self.io.as_ref(), &self.dir, self.log_start_offset())?;
            writer.log_start_unsaved = false;
        }
        Ok(())
    }
}
