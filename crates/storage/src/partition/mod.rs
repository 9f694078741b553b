//! A partition log: an ordered set of segments, one of them active (the last), with a single
//! writer that group-commits appends and any number of concurrent readers.
//!
//! Locks, always taken in this order when more than one is held:
//! 1. `writer` — held by whoever writes, syncs, rolls or closes the active segment;
//! 2. `segments` — the map of segments (read for lookups, write to add or remove one);
//! 3. `queue` — the appends waiting to be written; held only for pushes and swaps.
//!
//! A segment's own index mutex is innermost.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::{watch, Semaphore};

use crate::batch::BatchHeader;
use crate::config::LogConfig;
use crate::error::{Result, StorageError};
use crate::io::Io;
use crate::quarantine::{self, QuarantinedFile};
use crate::segment::Segment;

mod append;
mod disk_full;
mod log_start;
mod lost;
pub(crate) mod producers;
mod read;
mod retention;

pub use append::{AppendInfo, PendingAppend};
use producers::ProducerTails;
pub use producers::{ProducerBatch, RECOVERED_BATCHES_MAX, RECOVERED_PRODUCERS_MAX};
pub use read::ReadResult;
pub use retention::RetentionOutcome;

/// What waiters watch: how far the log is readable, and whether it failed.
#[derive(Debug, Clone)]
pub struct Progress {
    /// One past the last offset readers may see and appenders may consider acknowledged.
    pub high_watermark: u64,
    pub failure: Option<Arc<str>>,
    /// The failure is a full disk: writes resume once it has room (`disk_full.rs`).
    pub disk_full: bool,
    /// How many times writes resumed after a full disk.
    pub resumes: u64,
    /// The first offset given out again by each of the latest resumes (the last one is
    /// resume number `resumes`): an append that waited across a resume was acknowledged
    /// only if it ended below the first of them (`disk_full.rs`).
    pub resumed_at: std::collections::VecDeque<u64>,
    /// Set by `close`: this log will not grow; a reader waiting on it should look the
    /// partition up again (a stream reopened under new settings has a new log).
    pub closed: bool,
}

impl Progress {
    /// Whether a reader waiting for records past `offset` should stop waiting.
    pub fn has_news_after(&self, offset: u64) -> bool {
        self.high_watermark > offset || self.failure.is_some() || self.closed
    }
}

/// A snapshot of a partition for status displays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionStatus {
    pub log_start_offset: u64,
    pub high_watermark: u64,
    pub size_bytes: u64,
    pub segments: usize,
    pub failure: Option<String>,
    /// Quarantine files in the partition folder: damaged bytes set aside by recovery.
    pub quarantined: Vec<QuarantinedFile>,
}

struct WriterState {
    last_sync: Instant,
    /// Bytes written to the active segment but not yet fsynced.
    unsynced: bool,
    /// The log start was moved without writing its checkpoint
    /// ([`PartitionLog::delete_records_before_lazily`]): the next maintenance pass or the
    /// close writes it.
    log_start_unsaved: bool,
}

struct Pending {
    bytes: bytes::BytesMut,
    /// Each batch's position inside `bytes` and its header with the assigned base offset.
    headers: Vec<(usize, crate::batch::BatchHeader)>,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

struct AppendQueue {
    next_offset: u64,
    pending: Vec<Pending>,
    flushing: bool,
}

pub struct PartitionLog {
    dir: PathBuf,
    io: Arc<dyn Io>,
    config: LogConfig,
    writer: Mutex<WriterState>,
    segments: RwLock<BTreeMap<u64, Arc<Segment>>>,
    queue: Mutex<AppendQueue>,
    progress: watch::Sender<Progress>,
    /// Bytes that may wait in the queue; appends wait for room (backpressure).
    space: Arc<Semaphore>,
    log_start: AtomicU64,
    /// Idempotent producers' last batches: loaded at open, kept up to date by every write,
    /// snapshotted at every roll (`producers.rs`).
    producer_tails: Mutex<ProducerTails>,
    failure: Mutex<Option<Arc<str>>>,
    closed: AtomicBool,
    /// Damaged bytes recovery set aside, now or at an earlier start (`quarantine.rs`).
    quarantined: Vec<QuarantinedFile>,
    /// Records and bytes in and out, retention deletions (`metrics.rs`).
    counters: crate::metrics::PartitionCounters,
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl PartitionLog {
    /// Opens the partition in `dir`, creating it empty if needed, and recovers: the last
    /// segment is CRC-scanned and a torn tail truncated at the last valid batch (damage with
    /// valid batches after it is first set aside in a quarantine file and reported);
    /// closed segments keep their indexes when those agree with the log, else they are rebuilt.
    pub fn open(io: Arc<dyn Io>, dir: &Path, config: LogConfig) -> Result<Arc<PartitionLog>> {
        config.validate().map_err(StorageError::Config)?;
        io.create_dir_all(dir)
            .map_err(|e| StorageError::io(format!("creating {}", dir.display()), e))?;
        let names = io
            .list_dir(dir)
            .map_err(|e| StorageError::io(format!("listing {}", dir.display()), e))?;
        let mut bases: Vec<u64> = Vec::new();
        for name in &names {
            if name.ends_with(".tmp") {
                // A half-written index from a crash; it is rebuilt if needed.
                let _ = io.remove_file(&dir.join(name));
            } else if let Some(stem) = name.strip_suffix(".log") {
                if let Ok(base) = stem.parse::<u64>() {
                    bases.push(base);
                }
            }
        }
        bases.sort_unstable();
        let now = now_ms();
        // Set aside at earlier starts; reported until an operator removes them.
        let mut quarantined = quarantine::list(io.as_ref(), dir, &names);
        let mut segments = BTreeMap::new();
        if bases.is_empty() {
            segments.insert(0, Arc::new(Segment::create(io.as_ref(), dir, 0)?));
        }
        let mut producers = bases
            .last()
            .and_then(|base| producers::load_snapshot(io.as_ref(), dir, *base))
            .unwrap_or_default();
        for (index, base) in bases.iter().enumerate() {
            let is_last = index + 1 == bases.len();
            let mut observe = |header: &BatchHeader| producers.observe(header);
            let (segment, truncated) = Segment::open(
                io.as_ref(),
                dir,
                *base,
                is_last,
                config.index_interval_bytes,
                config.batch_bytes_max,
                now,
                is_last.then_some(&mut observe as &mut dyn FnMut(&BatchHeader)),
            )?;
            if let Some(repair) = truncated {
                match repair.quarantined {
                    Some(file) => quarantined.push(file),
                    None => tracing::warn!(
                        dir = %dir.display(),
                        base,
                        "recovered a torn tail: {}",
                        repair.note
                    ),
                }
            }
            segments.insert(*base, Arc::new(segment));
        }
        let next_offset = segments.values().next_back().map_or(0, |s| s.next_offset());
        // DeleteRecords may have moved the start inside the first segment.
        let log_start = (*segments.keys().next().unwrap_or(&0))
            .max(log_start::load(io.as_ref(), dir).unwrap_or(0))
            .min(next_offset);
        let lost = lost::load(io.as_ref(), dir);
        let (progress, _) = watch::channel(Progress {
            high_watermark: next_offset,
            failure: None,
            disk_full: false,
            resumes: 0,
            resumed_at: std::collections::VecDeque::new(),
            closed: false,
        });
        let log = Arc::new(PartitionLog {
            dir: dir.to_path_buf(),
            io,
            space: Arc::new(Semaphore::new(config.pending_bytes_max)),
            config,
            writer: Mutex::new(WriterState {
                last_sync: Instant::now(),
                unsynced: false,
                log_start_unsaved: false,
            }),
            segments: RwLock::new(segments),
            queue: Mutex::new(AppendQueue {
                next_offset,
                pending: Vec::new(),
                flushing: false,
            }),
            progress,
            log_start: AtomicU64::new(log_start),
            producer_tails: Mutex::new(producers),
            failure: Mutex::new(None),
            closed: AtomicBool::new(false),
            quarantined,
            counters: Default::default(),
        });
        if let Some(reason) = lost {
            log.poison(&StorageError::Lost(reason));
        }
        Ok(log)
    }

    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn high_watermark(&self) -> u64 {
        self.progress.borrow().high_watermark
    }

    /// One past the last offset given out: the high watermark plus every append queued and
    /// not yet acknowledged. What the next append's first offset would be.
    pub fn next_offset(&self) -> u64 {
        lock(&self.queue).next_offset
    }

    pub fn log_start_offset(&self) -> u64 {
        self.log_start.load(Ordering::Acquire)
    }

    /// The last batches (oldest first) `producer_id` wrote to this partition, as far as the
    /// log knows — including before a restart (see `producers.rs` for the bounds).
    pub fn producer_batches(&self, producer_id: i64) -> Option<Vec<ProducerBatch>> {
        lock(&self.producer_tails).get(producer_id)
    }

    /// Subscribe to progress, e.g. to long-poll for new records.
    pub fn watch(&self) -> watch::Receiver<Progress> {
        self.progress.subscribe()
    }

    pub fn failure(&self) -> Option<Arc<str>> {
        lock(&self.failure).clone()
    }

    pub fn status(&self) -> PartitionStatus {
        let segments = self.segments.read().unwrap_or_else(|p| p.into_inner());
        PartitionStatus {
            log_start_offset: self.log_start_offset(),
            high_watermark: self.high_watermark(),
            size_bytes: segments.values().map(|s| s.written_bytes()).sum(),
            segments: segments.len(),
            failure: self.failure().map(|f| f.to_string()),
            quarantined: self.quarantined.clone(),
        }
    }

    /// Records and bytes in and out and retention deletions since the log was opened.
    pub fn traffic(&self) -> crate::metrics::PartitionTraffic {
        self.counters.snapshot()
    }

    /// Bytes of every segment: `status().size_bytes` without copying the quarantine list.
    pub fn size_bytes(&self) -> u64 {
        let segments = self.segments.read().unwrap_or_else(|p| p.into_inner());
        segments.values().map(|s| s.written_bytes()).sum()
    }

    /// A timestamp no older than the record at `offset`'s, from the sparse time index in
    /// memory (no read of the log): the largest timestamp of the records before the first
    /// index entry after `offset` (or of the whole segment when no entry follows). `now`
    /// minus it is therefore a lower bound of the record's age, short by at most the time one
    /// index interval (`index_interval_bytes` of records) took to arrive. `None` at or past
    /// the high watermark, below the log start, or when no record carries a timestamp.
    pub fn timestamp_at_most_after(&self, offset: u64) -> Option<i64> {
        if offset >= self.high_watermark() || offset < self.log_start_offset() {
            return None;
        }
        let segment = {
            let segments = self.segments.read().unwrap_or_else(|p| p.into_inner());
            segments
                .range(..=offset)
                .next_back()
                .map(|(_, s)| s.clone())?
        };
        let relative = offset.checked_sub(segment.base_offset)?;
        let from_index = {
            let indexes = segment.lock_indexes();
            let after = indexes
                .times
                .partition_point(|entry| entry.relative_offset as u64 <= relative);
            indexes
                .times
                .get(after)
                .map(|entry| entry.max_timestamp_before)
        };
        let timestamp = from_index.unwrap_or_else(|| segment.max_timestamp());
        (timestamp != i64::MIN).then_some(timestamp)
    }

    fn segments_snapshot(&self) -> Vec<Arc<Segment>> {
        let segments = self.segments.read().unwrap_or_else(|p| p.into_inner());
        segments.values().cloned().collect()
    }

    fn active_segment(&self) -> Arc<Segment> {
        let segments = self.segments.read().unwrap_or_else(|p| p.into_inner());
        segments
            .values()
            .next_back()
            .cloned()
            .expect("a partition always has an active segment")
    }

    /// Refuses all further writes; wakes every waiter with the reason.
    fn poison(&self, error: &StorageError) {
        let reason: Arc<str> = Arc::from(error.to_string());
        tracing::error!(dir = %self.dir.display(), "partition refuses writes: {reason}");
        let mut failure = lock(&self.failure);
        if failure.is_none() {
            *failure = Some(reason.clone());
        }
        drop(failure);
        self.progress.send_modify(|p| {
            if p.failure.is_none() {
                p.failure = Some(reason);
            }
        });
    }

    fn check_writable(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(StorageError::Closed);
        }
        if let Some(reason) = self.failure() {
            return Err(self.refusal(&reason));
        }
        Ok(())
    }

    /// Stops accepting appends, waits for queued ones to be written, fsyncs the active
    /// segment and writes its index files. Blocking; call from a blocking context.
    pub fn close(&self) -> Result<()> {
        self.closed.store(true, Ordering::Release);
        loop {
            let queue = lock(&self.queue);
            if !queue.flushing && queue.pending.is_empty() {
                break;
            }
            drop(queue);
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        let mut writer = lock(&self.writer);
        if self.failure().is_some() {
            return Ok(());
        }
        let active = self.active_segment();
        active.trim_preallocated()?;
        active.sync()?;
        writer.unsynced = false;
        active.write_indexes(self.io.as_ref(), &self.dir)?;
        self.save_log_start(&mut writer)?;
        self.progress.send_modify(|progress| progress.closed = true);
        Ok(())
    }

    /// Removes every file of the partition. The log must be closed first.
    pub fn delete(&self) -> Result<()> {
        self.closed.store(true, Ordering::Release);
        self.io
            .remove_dir_all(&self.dir)
            .map_err(|e| StorageError::io(format!("removing {}", self.dir.display()), e))
    }
}

#[cfg(test)]
mod tests;
