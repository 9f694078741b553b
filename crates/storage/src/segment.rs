//! One segment: a log file of batches plus its sparse offset index and time index.
//!
//! Files, for a segment whose first offset is B (zero-padded to 20 digits):
//! - `B.log`: batches back to back, exactly as [`crate::batch`] describes.
//! - `B.index`: 8-byte entries `(relative offset: u32 BE, position: u32 BE)`, one for the first
//!   batch and then one at the first batch after every `index_interval_bytes` of log.
//! - `B.timeindex`: 12-byte entries `(max timestamp before the batch: i64 BE, relative
//!   offset: u32 BE)` at the same batches. The timestamp is the largest record timestamp of
//!   everything in the segment before that batch, so entries are non-decreasing and a lookup
//!   can skip every batch that cannot hold a timestamp at or after its target.
//!
//! The index files are written when a segment is closed (rolled, or at shutdown) and are
//! only a cache: the active segment's indexes live in memory, and recovery rebuilds any index
//! that is missing or does not agree with the log.
//!
//! The active segment of an fsynced partition is extended with zeros ahead of its writes
//! ([`Segment::preallocate`]): a batch then overwrites blocks the file already has and its
//! `fdatasync` writes the data alone, where an append that grows the file also commits the
//! new size and block allocation to the filesystem's journal — on ext4 here that halves both
//! the fsync's latency and its CPU (docs/storage.md, "Preallocated segments"). The zeros are
//! cut off when the segment is closed, so a closed segment ends at its last batch; after a
//! crash, recovery recognises an all-zero tail as the end of the log, not as damage.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::batch::{BatchHeader, HEADER_BYTES};
use crate::error::{Result, StorageError};
use crate::io::{Io, IoFile};
use crate::quarantine::{self, QuarantinedFile};
use crate::scan::{scan_batches, scan_batches_in_chunks, Chunks, ScanEnd};

/// What [`Segment::locate`] reads at a time while walking batch headers from an index entry.
const LOCATE_CHUNK_BYTES: usize = 64 * 1024;

/// How far ahead of its end a segment's file is extended with zeros: the distance grows with
/// the segment (a partition written once in a while keeps a small tail) up to the maximum.
const PREALLOCATE_MIN: u64 = 64 * 1024;
const PREALLOCATE_MAX: u64 = 1024 * 1024;

/// Preallocated ends are multiples of a page, so data never shares a page with a partial one.
const PAGE_BYTES: u64 = 4096;

/// What one preallocating write, and one read of a tail checked for zeros, covers.
static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];

const OFFSET_ENTRY_BYTES: usize = 8;
const TIME_ENTRY_BYTES: usize = 12;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetEntry {
    pub relative_offset: u32,
    pub position: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeEntry {
    pub max_timestamp_before: i64,
    pub relative_offset: u32,
}

#[derive(Debug, Default)]
pub struct Indexes {
    pub offsets: Vec<OffsetEntry>,
    pub times: Vec<TimeEntry>,
    bytes_since_entry: u64,
    max_timestamp: i64,
}

impl Indexes {
    fn new() -> Self {
        Indexes {
            max_timestamp: i64::MIN,
            ..Default::default()
        }
    }

    /// Records a batch written at `position`; adds sparse entries at the interval.
    fn observe(&mut self, base_offset: u64, position: u64, header: &BatchHeader, interval: u32) {
        let relative = (header.base_offset - base_offset) as u32;
        if self.offsets.is_empty() || self.bytes_since_entry >= interval as u64 {
            self.offsets.push(OffsetEntry {
                relative_offset: relative,
                position: position as u32,
            });
            self.times.push(TimeEntry {
                max_timestamp_before: self.max_timestamp,
                relative_offset: relative,
            });
            self.bytes_since_entry = 0;
        }
        self.bytes_since_entry += header.total_bytes() as u64;
        self.max_timestamp = self.max_timestamp.max(header.max_timestamp);
    }

    /// Position of the last indexed batch starting at or before `relative`.
    fn floor_position(&self, relative: u32) -> u64 {
        let index = self
            .offsets
            .partition_point(|e| e.relative_offset <= relative);
        if index == 0 {
            0
        } else {
            self.offsets[index - 1].position as u64
        }
    }
}

pub struct Segment {
    pub base_offset: u64,
    log_path: PathBuf,
    pub file: Arc<dyn IoFile>,
    /// End of what the writer has written.
    written: AtomicU64,
    /// Length of the file: what is written, plus zeros written ahead of it
    /// ([`Segment::preallocate`]). Only the partition's single writer changes it.
    allocated: AtomicU64,
    /// End of what readers may see: written and, under `fsync = always`, synced.
    visible: AtomicU64,
    /// One past the last offset written.
    next_offset: AtomicU64,
    /// Largest record timestamp written, `i64::MIN` when empty.
    max_timestamp: AtomicI64,
    /// Wall-clock ms of the first batch, for rolling by age (`i64::MAX` when empty).
    first_batch_ms: AtomicI64,
    indexes: Mutex<Indexes>,
}

/// What recovery did to the end of an active segment.
pub struct TailRepair {
    /// An account of the truncation, for the log.
    pub note: String,
    /// Set when valid batches followed the damage: the bytes set aside before truncating.
    pub quarantined: Option<QuarantinedFile>,
}

pub fn file_stem(base_offset: u64) -> String {
    format!("{base_offset:020}")
}

impl Segment {
    fn paths(dir: &Path, base_offset: u64) -> (PathBuf, PathBuf, PathBuf) {
        let stem = file_stem(base_offset);
        (
            dir.join(format!("{stem}.log")),
            dir.join(format!("{stem}.index")),
            dir.join(format!("{stem}.timeindex")),
        )
    }

    /// Creates a new, empty segment file and makes its directory entry durable.
    pub fn create(io: &dyn Io, dir: &Path, base_offset: u64) -> Result<Segment> {
        let (log_path, _, _) = Self::paths(dir, base_offset);
        let file = io
            .open(&log_path, true)
            .map_err(|e| StorageError::io(format!("creating {}", log_path.display()), e))?;
        file.set_len(0)
            .map_err(|e| StorageError::io(format!("truncating {}", log_path.display()), e))?;
        io.sync_dir(dir)
            .map_err(|e| StorageError::io(format!("syncing directory {}", dir.display()), e))?;
        Ok(Segment::from_parts(base_offset, log_path, file))
    }

    fn from_parts(base_offset: u64, log_path: PathBuf, file: Arc<dyn IoFile>) -> Segment {
        Segment {
            base_offset,
            log_path,
            file,
            written: AtomicU64::new(0),
            allocated: AtomicU64::new(0),
            visible: AtomicU64::new(0),
            next_offset: AtomicU64::new(base_offset),
            max_timestamp: AtomicI64::new(i64::MIN),
            first_batch_ms: AtomicI64::new(i64::MAX),
            indexes: Mutex::new(Indexes::new()),
        }
    }

    /// Opens an existing segment. With `scan_tail`, every batch is CRC-checked and a torn
    /// tail is truncated at the last valid batch (the active segment after a crash); damage
    /// followed by valid batches is set aside in a quarantine file first (`quarantine.rs`).
    /// Otherwise the index files are loaded and verified against the log, and rebuilt from a
    /// header scan when they are missing or stale. `on_batch` sees each batch of the valid
    /// prefix when the log is scanned.
    #[allow(clippy::too_many_arguments)] // each is a distinct setting of the one open
    pub fn open(
        io: &dyn Io,
        dir: &Path,
        base_offset: u64,
        scan_tail: bool,
        index_interval: u32,
        batch_bytes_max: usize,
        now_ms: i64,
        mut on_batch: Option<&mut dyn FnMut(&BatchHeader)>,
    ) -> Result<(Segment, Option<TailRepair>)> {
        let (log_path, index_path, time_path) = Self::paths(dir, base_offset);
        let file = io
            .open(&log_path, false)
            .map_err(|e| StorageError::io(format!("opening {}", log_path.display()), e))?;
        let length = file
            .len()
            .map_err(|e| StorageError::io(format!("measuring {}", log_path.display()), e))?;
        let segment = Segment::from_parts(base_offset, log_path.clone(), file);
        if !scan_tail {
            if let Some(indexes) = load_indexes(io, &index_path, &time_path, &segment, length) {
                segment.adopt_closed(indexes, length, batch_bytes_max)?;
                return Ok((segment, None));
            }
        }
        let mut indexes = Indexes::new();
        let mut expected = base_offset;
        let mut first_timestamp = None;
        let mut broken = None;
        let outcome = scan_batches(
            segment.file.as_ref(),
            0,
            length,
            scan_tail,
            batch_bytes_max,
            |position, header, _| {
                if header.base_offset != expected {
                    broken = Some(format!(
                        "batch at byte {position} starts at offset {} but {expected} was expected",
                        header.base_offset
                    ));
                    return ControlFlow::Break(());
                }
                indexes.observe(base_offset, position, header, index_interval);
                first_timestamp.get_or_insert(header.base_timestamp);
                expected = header.last_offset() + 1;
                if let Some(on_batch) = on_batch.as_mut() {
                    on_batch(header);
                }
                ControlFlow::Continue(())
            },
        )?;
        let valid_end = outcome.position;
        let truncated = match (&outcome.end, broken) {
            (ScanEnd::End, None) => None,
            (_, Some(reason)) => Some(reason),
            // The zeros a crash left ahead of the last write (`preallocate`): the log's end.
            (ScanEnd::Invalid { .. }, None)
                if scan_tail && all_zeros(segment.file.as_ref(), valid_end, length)? =>
            {
                None
            }
            (ScanEnd::Invalid { reason, .. }, None) => Some(reason.clone()),
            (ScanEnd::Stopped, None) => Some("scan stopped".into()),
        };
        let mut allocated = length;
        let mut quarantined = None;
        if let Some(reason) = &truncated {
            if !scan_tail {
                return Err(StorageError::Corrupt(format!(
                    "closed segment {} is damaged at byte {valid_end}: {reason}",
                    log_path.display()
                )));
            }
            quarantined = quarantine::set_aside_if_valid_follows(
                io,
                dir,
                base_offset,
                segment.file.as_ref(),
                valid_end,
                length,
                batch_bytes_max,
                now_ms,
                reason,
            )?;
            segment
                .file
                .set_len(valid_end)
                .and_then(|_| segment.file.sync_data())
                .map_err(|e| StorageError::io(format!("truncating {}", log_path.display()), e))?;
            allocated = valid_end;
        }
        let max_timestamp = indexes.max_timestamp;
        *segment.lock_indexes() = indexes;
        segment.written.store(valid_end, Ordering::Release);
        segment.allocated.store(allocated, Ordering::Release);
        segment.visible.store(valid_end, Ordering::Release);
        segment.next_offset.store(expected, Ordering::Release);
        segment
            .max_timestamp
            .store(max_timestamp, Ordering::Release);
        if let Some(first) = first_timestamp {
            segment
                .first_batch_ms
                .store(first.min(now_ms), Ordering::Release);
        }
        let repair = truncated.map(|reason| TailRepair {
            note: format!("truncated at byte {valid_end} of {length}: {reason}"),
            quarantined,
        });
        Ok((segment, repair))
    }

    /// Takes verified indexes of a closed segment; reads its last batch to learn its end.
    fn adopt_closed(&self, indexes: Indexes, length: u64, batch_bytes_max: usize) -> Result<()> {
        let start = indexes.offsets.last().map_or(0, |e| e.position as u64);
        let mut next = self.base_offset;
        let mut max_timestamp = indexes.max_timestamp;
        let outcome = scan_batches(
            self.file.as_ref(),
            start,
            length,
            false,
            batch_bytes_max,
            |_, header, _| {
                next = header.last_offset() + 1;
                max_timestamp = max_timestamp.max(header.max_timestamp);
                ControlFlow::Continue(())
            },
        )?;
        if let ScanEnd::Invalid { position, reason } = outcome.end {
            return Err(StorageError::Corrupt(format!(
                "closed segment {} is damaged at byte {position}: {reason}",
                self.log_path.display()
            )));
        }
        *self.lock_indexes() = Indexes {
            max_timestamp,
            ..indexes
        };
        self.written.store(length, Ordering::Release);
        self.allocated.store(length, Ordering::Release);
        self.visible.store(length, Ordering::Release);
        self.next_offset.store(next, Ordering::Release);
        self.max_timestamp.store(max_timestamp, Ordering::Release);
        Ok(())
    }

    pub fn lock_indexes(&self) -> MutexGuard<'_, Indexes> {
        self.indexes.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn written_bytes(&self) -> u64 {
        self.written.load(Ordering::Acquire)
    }

    pub fn visible_bytes(&self) -> u64 {
        self.visible.load(Ordering::Acquire)
    }

    pub fn next_offset(&self) -> u64 {
        self.next_offset.load(Ordering::Acquire)
    }

    pub fn max_timestamp(&self) -> i64 {
        self.max_timestamp.load(Ordering::Acquire)
    }

    pub fn first_batch_ms(&self) -> i64 {
        self.first_batch_ms.load(Ordering::Acquire)
    }

    pub fn is_empty(&self) -> bool {
        self.written_bytes() == 0
    }

    /// Writes already-validated batches (with offsets assigned) at the end of the segment.
    /// Called only by the partition's single flusher.
    pub fn append(
        &self,
        bytes: &[u8],
        headers: &[(usize, BatchHeader)],
        index_interval: u32,
        now_ms: i64,
    ) -> Result<()> {
        let position = self.written_bytes();
        self.file
            .write_at(bytes, position)
            .map_err(|e| StorageError::io(format!("writing {}", self.log_path.display()), e))?;
        let mut indexes = self.lock_indexes();
        for (offset_in_bytes, header) in headers {
            indexes.observe(
                self.base_offset,
                position + *offset_in_bytes as u64,
                header,
                index_interval,
            );
            self.next_offset
                .store(header.last_offset() + 1, Ordering::Release);
        }
        self.max_timestamp
            .store(indexes.max_timestamp, Ordering::Release);
        drop(indexes);
        if self.first_batch_ms() == i64::MAX {
            self.first_batch_ms.store(now_ms, Ordering::Release);
        }
        let end = position + bytes.len() as u64;
        self.written.store(end, Ordering::Release);
        self.allocated.fetch_max(end, Ordering::AcqRel);
        Ok(())
    }

    /// Makes sure the file is at least `end` bytes long before a write up to `end`, by
    /// writing zeros from its current length to a page boundary further ahead (never past
    /// `limit`, the partition's segment size): the write then overwrites blocks the file has,
    /// and its fsync need not also commit a new size and allocation. Called only by the
    /// partition's single writer, before [`Segment::append`].
    ///
    /// Only an optimisation: if the zeros cannot be written (a full disk), the file is put
    /// back to what it was and the write that follows extends it itself — and meets the
    /// same error, if it is one, where the log knows how to handle it.
    pub fn preallocate(&self, end: u64, limit: u64) {
        let allocated = self.allocated.load(Ordering::Acquire);
        if end <= allocated {
            return;
        }
        let ahead = end.clamp(PREALLOCATE_MIN, PREALLOCATE_MAX);
        let target = (end + ahead).div_ceil(PAGE_BYTES) * PAGE_BYTES;
        let target = target.min(limit);
        let mut position = allocated.max(end);
        if target <= position {
            return;
        }
        while position < target {
            let length = (target - position).min(ZEROS.len() as u64) as usize;
            if self.file.write_at(&ZEROS[..length], position).is_err() {
                let _ = self.file.set_len(allocated);
                return;
            }
            position += length as u64;
        }
        self.allocated.store(target, Ordering::Release);
    }

    /// Cuts the zeros written ahead (`preallocate`) off the file, so a closed segment ends
    /// at its last batch. The caller fsyncs after (which makes the new length durable).
    pub fn trim_preallocated(&self) -> Result<()> {
        let written = self.written_bytes();
        if self.allocated.load(Ordering::Acquire) <= written {
            return Ok(());
        }
        self.file
            .set_len(written)
            .map_err(|e| StorageError::io(format!("trimming {}", self.log_path.display()), e))?;
        self.allocated.store(written, Ordering::Release);
        Ok(())
    }

    pub fn sync(&self) -> Result<()> {
        let start = std::time::Instant::now();
        let result = self
            .file
            .sync_data()
            .map_err(|e| StorageError::io(format!("fsync of {}", self.log_path.display()), e));
        crate::metrics::FSYNC_SECONDS.observe_since(start);
        result
    }

    /// Lets readers see everything written so far.
    pub fn publish_written(&self) {
        self.visible.store(self.written_bytes(), Ordering::Release);
    }

    /// Writes the index files (tmp + sync + rename) so a restart need not rebuild them.
    pub fn write_indexes(&self, io: &dyn Io, dir: &Path) -> Result<()> {
        let (_, index_path, time_path) = Self::paths(dir, self.base_offset);
        let indexes = self.lock_indexes();
        let mut offsets = Vec::with_capacity(indexes.offsets.len() * OFFSET_ENTRY_BYTES);
        for entry in &indexes.offsets {
            offsets.extend_from_slice(&entry.relative_offset.to_be_bytes());
            offsets.extend_from_slice(&entry.position.to_be_bytes());
        }
        let mut times = Vec::with_capacity(indexes.times.len() * TIME_ENTRY_BYTES);
        for entry in &indexes.times {
            times.extend_from_slice(&entry.max_timestamp_before.to_be_bytes());
            times.extend_from_slice(&entry.relative_offset.to_be_bytes());
        }
        drop(indexes);
        // One folder fsync for both (a shutdown closes every partition).
        replace_file(io, &index_path, &offsets)?;
        replace_file(io, &time_path, &times)?;
        sync_parent(io, &index_path)
    }

    /// Position of the batch holding `offset`, or the first batch after it. `offset` must be
    /// at least `base_offset` and below `next_offset()`.
    pub fn locate(&self, offset: u64, batch_bytes_max: usize) -> Result<u64> {
        let relative = (offset - self.base_offset) as u32;
        let start = self.lock_indexes().floor_position(relative);
        let end = self.visible_bytes();
        let mut found = end;
        // Headers are all this needs: the index leaves at most about one index interval of
        // batches before the one holding `offset`, so small reads suffice.
        let chunks = Chunks {
            bytes: LOCATE_CHUNK_BYTES,
            verify: false,
            batch_bytes_max,
        };
        scan_batches_in_chunks(
            self.file.as_ref(),
            start,
            end,
            chunks,
            |position, header| {
                if header.last_offset() >= offset {
                    found = position;
                    return ControlFlow::Break(());
                }
                ControlFlow::Continue(())
            },
            |_, _, _| ControlFlow::Continue(()),
        )?;
        Ok(found)
    }

    /// Position of the first batch that may hold a record with a timestamp at or after
    /// `timestamp` (every earlier batch holds only older records).
    pub fn locate_time(&self, timestamp: i64) -> u64 {
        let indexes = self.lock_indexes();
        let index = indexes
            .times
            .partition_point(|e| e.max_timestamp_before < timestamp);
        if index == 0 {
            return 0;
        }
        let relative = indexes.times[index - 1].relative_offset;
        indexes.floor_position(relative)
    }

    pub fn delete_files(&self, io: &dyn Io, dir: &Path) -> Result<()> {
        let (log_path, index_path, time_path) = Self::paths(dir, self.base_offset);
        for path in [&log_path, &index_path, &time_path] {
            if io.exists(path) {
                io.remove_file(path)
                    .map_err(|e| StorageError::io(format!("removing {}", path.display()), e))?;
            }
        }
        // Otherwise a deleted segment may come back after a power loss: harmless for its own
        // data, but it would move the log start back.
        io.sync_dir(dir)
            .map_err(|e| StorageError::io(format!("syncing directory {}", dir.display()), e))
    }
}

/// Whether `[start, end)` of `file` holds only zero bytes.
fn all_zeros(file: &dyn IoFile, start: u64, end: u64) -> Result<bool> {
    let mut buffer = vec![0u8; ZEROS.len()];
    let mut position = start;
    while position < end {
        let length = (end - position).min(buffer.len() as u64) as usize;
        file.read_exact_at(&mut buffer[..length], position)
            .map_err(|e| StorageError::io("reading a segment's tail".to_string(), e))?;
        if buffer[..length] != ZEROS[..length] {
            return Ok(false);
        }
        position += length as u64;
    }
    Ok(true)
}

/// Replaces `path` with `bytes` so that a crash leaves either the old or the new file whole:
/// a `.tmp` file written and fsynced, renamed over `path`, and the directory fsynced.
pub(crate) fn write_file_atomically(io: &dyn Io, path: &Path, bytes: &[u8]) -> Result<()> {
    replace_file(io, path, bytes)?;
    sync_parent(io, path)
}

/// The `.tmp` + fsync + rename of [`write_file_atomically`] without the directory fsync, for
/// a caller that replaces several files of one folder and syncs it once after.
fn replace_file(io: &dyn Io, path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let context = |what: &str| format!("{what} {}", tmp.display());
    let file = io
        .open(&tmp, true)
        .map_err(|e| StorageError::io(context("creating"), e))?;
    file.set_len(0)
        .and_then(|_| file.write_at(bytes, 0))
        .and_then(|_| file.sync_data())
        .map_err(|e| StorageError::io(context("writing"), e))?;
    io.rename(&tmp, path)
        .map_err(|e| StorageError::io(format!("renaming to {}", path.display()), e))
}

/// Until the directory is synced a power loss may undo a rename into it, bringing back the
/// old file (or none) under the name.
fn sync_parent(io: &dyn Io, path: &Path) -> Result<()> {
    let dir = crate::io::parent_of(path);
    io.sync_dir(&dir)
        .map_err(|e| StorageError::io(format!("syncing directory {}", dir.display()), e))
}

/// Loads a closed segment's index files if they exist and agree with the log; `None` means
/// rebuild.
fn load_indexes(
    io: &dyn Io,
    index_path: &Path,
    time_path: &Path,
    segment: &Segment,
    log_length: u64,
) -> Option<Indexes> {
    let read_all = |path: &Path| -> Option<Vec<u8>> {
        let file = io.open(path, false).ok()?;
        let length = file.len().ok()? as usize;
        let mut bytes = vec![0u8; length];
        file.read_exact_at(&mut bytes, 0).ok()?;
        Some(bytes)
    };
    let offset_bytes = read_all(index_path)?;
    let time_bytes = read_all(time_path)?;
    if offset_bytes.len() % OFFSET_ENTRY_BYTES != 0 || time_bytes.len() % TIME_ENTRY_BYTES != 0 {
        return None;
    }
    let offsets: Vec<OffsetEntry> = offset_bytes
        .chunks_exact(OFFSET_ENTRY_BYTES)
        .map(|c| OffsetEntry {
            relative_offset: u32::from_be_bytes(c[0..4].try_into().expect("4")),
            position: u32::from_be_bytes(c[4..8].try_into().expect("4")),
        })
        .collect();
    let times: Vec<TimeEntry> = time_bytes
        .chunks_exact(TIME_ENTRY_BYTES)
        .map(|c| TimeEntry {
            max_timestamp_before: i64::from_be_bytes(c[0..8].try_into().expect("8")),
            relative_offset: u32::from_be_bytes(c[8..12].try_into().expect("4")),
        })
        .collect();
    let empty_log = log_length == 0;
    if offsets.is_empty() != empty_log || offsets.len() != times.len() {
        return None;
    }
    let increasing = offsets
        .windows(2)
        .all(|w| w[0].relative_offset < w[1].relative_offset && w[0].position < w[1].position)
        && times
            .windows(2)
            .all(|w| w[0].max_timestamp_before <= w[1].max_timestamp_before);
    if !increasing || offsets.first().is_some_and(|e| e.position != 0) {
        return None;
    }
    // The last entry must point at a batch that starts at the offset it claims.
    if let Some(last) = offsets.last() {
        if last.position as u64 + HEADER_BYTES as u64 > log_length {
            return None;
        }
        let mut header = [0u8; HEADER_BYTES];
        segment
            .file
            .read_exact_at(&mut header, last.position as u64)
            .ok()?;
        let parsed = BatchHeader::parse(&header).ok()?;
        if parsed.base_offset != segment.base_offset + last.relative_offset as u64 {
            return None;
        }
    }
    Some(Indexes {
        offsets,
        times,
        bytes_since_entry: 0,
        max_timestamp: i64::MIN,
    })
}
