//! Reads a queue's messages by offset, keeping the last read decoded.
//!
//! Deliveries ask for a handful of offsets at a time, while the log hands out whole batches
//! (an enqueue of 1,000 messages is one batch). Decoding the batch for every delivery of 100
//! of its messages was most of the CPU a fetch cost, so the last decoded read is kept: the
//! next deliveries — usually the offsets right after — are served from it. Messages at an
//! offset never change while the log is open (the log only appends; retention removes whole
//! segments below the ack floor, which no delivery asks for), so the copy cannot go stale.
//!
//! A lookup of a single offset (a job read by id, in any order) reads and decodes only the
//! batch holding it and leaves the kept read alone: a 256 KiB window decoded for every
//! random lookup made reading 8,000 jobs by id take over a minute in a debug build.
//!
//! Just-appended records are kept too (`recent`), up to [`RECENT_BYTES_MAX`]: a consumer
//! that keeps up (request-reply: each request is delivered right after its enqueue) asks for
//! offsets past the kept read, and each such delivery cost a hop to a blocking thread, a log
//! read and a decode of a record the engine had in memory a moment before. The records kept
//! are the ones that were encoded into the log, with their offsets, so they equal what a read
//! would decode (a test checks it). Appends that reach the reader out of order (two enqueues
//! racing) keep only the later run; the other one is read from the log as before.
//!
//! Memory: one read — at most `READ_BYTES_BUDGET` of batches, or one batch when a single
//! batch is larger.
//!
//! One refill at a time: workers taking one job each reach the end of the kept read
//! together, and each read the same megabyte on its own (four workers, four reads and
//! decodes of one window). A refill holds `refill`; a reader that waited for it looks at the
//! kept read again before reading, and usually finds its offset there. For that, a refill
//! for an offset just past the kept read starts where the kept read ended, not at its own
//! offset: the worker that got there first is not always the one with the lowest offset.
//!
//! Why 1 MiB: a log read has a fixed cost well above its size — the partition reads whole
//! 1 MiB chunks to find the batch and again to copy it — so a smaller read bought no memory
//! back worth its price. At 256 KiB a worker taking one job at a time hit the log about every
//! 300 jobs (enqueued 1,000 to a batch, a read held one batch), and those reads were ~9 % of
//! the broker's CPU on that loop; at 1 MiB one read serves several batches.

use std::sync::{Arc, Mutex};

use omnibus_storage::batch::decode_batches;
use omnibus_storage::{PartitionLog, StorageError};
use omnibus_types::Record;

use crate::error::{EngineError, Result};

/// Bytes of batches read from the log at once (always at least one whole batch).
const READ_BYTES_BUDGET: usize = 1024 * 1024;
/// A refill for an offset at most this far past the kept read's end starts at that end, so
/// it also serves the workers just behind it (deliveries go in offset order, a few apart).
const REFILL_CONTINUES_WITHIN: u64 = 64;

/// Most bytes (keys, values, headers) of just-appended records kept per queue.
const RECENT_BYTES_MAX: usize = 1024 * 1024;
/// Most just-appended records kept per queue.
const RECENT_RECORDS_MAX: usize = 4_096;

/// Records just appended, contiguous: offsets `[first, first + records.len())`.
#[derive(Default)]
struct Recent {
    first: u64,
    records: std::collections::VecDeque<Record>,
    bytes: usize,
}

impl Recent {
    fn get(&self, offset: u64) -> Option<&Record> {
        let index = usize::try_from(offset.checked_sub(self.first)?).ok()?;
        self.records.get(index)
    }

    fn end(&self) -> u64 {
        self.first + self.records.len() as u64
    }

    /// Adds records appended at `first..`, dropping the oldest beyond the bounds.
    fn extend(&mut self, first: u64, records: Vec<Record>) {
        if first < self.end() && !self.records.is_empty() {
            return; // an earlier append that came late: read from the log instead
        }
        if first != self.end() {
            self.records.clear();
            self.bytes = 0;
            self.first = first;
        }
        for record in records {
            self.bytes += record_bytes(&record);
            self.records.push_back(record);
        }
        while self.records.len() > RECENT_RECORDS_MAX
            || (self.bytes > RECENT_BYTES_MAX && self.records.len() > 1)
        {
            if let Some(old) = self.records.pop_front() {
                self.bytes -= record_bytes(&old);
                self.first += 1;
            }
        }
    }
}

/// What a cached record holds in memory: key, value and headers.
fn record_bytes(record: &Record) -> usize {
    record.key.as_ref().map_or(0, |k| k.len())
        + record.value.as_ref().map_or(0, |v| v.len())
        + record
            .headers
            .iter()
            .map(|h| h.name.len() + h.value.len())
            .sum::<usize>()
}

/// Decoded records of one log read: offsets `[first, end)` (with gaps where the log holds
/// control records), sorted by offset.
struct DecodedRead {
    first: u64,
    end: u64,
    records: Vec<Record>,
}

impl DecodedRead {
    fn get(&self, offset: u64) -> Option<&Record> {
        if offset < self.first || offset >= self.end {
            return None;
        }
        self.records
            .binary_search_by_key(&offset, |r| r.offset)
            .ok()
            .map(|index| &self.records[index])
    }
}

pub(crate) struct RecordReader {
    log: Arc<PartitionLog>,
    queue: String,
    last: Mutex<Option<Arc<DecodedRead>>>,
    /// Records just appended (see the module doc). Never held with `last`.
    recent: Mutex<Recent>,
    /// Held while one reader refills `last` (never while holding `last`).
    refill: Mutex<()>,
    /// Reads of the log so far (for tests of how often deliveries touch the log).
    log_reads: std::sync::atomic::AtomicU64,
}

impl RecordReader {
    pub(crate) fn new(log: Arc<PartitionLog>, queue: &str) -> RecordReader {
        RecordReader {
            log,
            queue: queue.to_string(),
            last: Mutex::new(None),
            recent: Mutex::new(Recent::default()),
            refill: Mutex::new(()),
            log_reads: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// The records at `offsets`, in order, when the kept read holds them all: no file read,
    /// so callers on the async runtime need not move to a blocking thread (a worker taking
    /// one job at a time asks for the offset right after the last one, nearly always here).
    /// Just-appended records count as kept.
    pub(crate) fn cached(&self, offsets: &[u64]) -> Option<Vec<Record>> {
        let current = self.last.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let mut records = Vec::with_capacity(offsets.len());
        let mut missing = Vec::new();
        for (index, offset) in offsets.iter().enumerate() {
            match current.as_ref().and_then(|read| read.get(*offset)) {
                Some(record) => records.push(Some(record.clone())),
                None => {
                    records.push(None);
                    missing.push(index);
                }
            }
        }
        if !missing.is_empty() {
            let recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
            for index in missing {
                records[index] = Some(recent.get(offsets[index])?.clone());
            }
        }
        records.into_iter().collect()
    }

    /// Keeps `records`, just appended at offsets `first..`, for their deliveries.
    pub(crate) fn keep_appended(&self, first: u64, mut records: Vec<Record>) {
        for (index, record) in records.iter_mut().enumerate() {
            record.offset = first + index as u64;
        }
        self.recent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(first, records);
    }

    /// The records at exactly `offsets`, in the given order, for lookups by id (a single
    /// offset outside the kept read is read alone and not kept). Blocking (file reads).
    pub(crate) fn read(&self, offsets: &[u64]) -> Result<Vec<Record>> {
        self.read_keeping(offsets, false)
    }

    /// [`RecordReader::read`] for deliveries: even a single offset is read with the ones
    /// after it and kept, since the next delivery asks for the next offset.
    pub(crate) fn read_ahead(&self, offsets: &[u64]) -> Result<Vec<Record>> {
        self.read_keeping(offsets, true)
    }

    fn read_keeping(&self, offsets: &[u64], read_ahead: bool) -> Result<Vec<Record>> {
        let mut sorted: Vec<u64> = offsets.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        let mut found = std::collections::HashMap::with_capacity(sorted.len());
        let mut current = self.last.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let ([offset], false) = (&sorted[..], read_ahead) {
            let offset = *offset;
            if current.as_ref().and_then(|read| read.get(offset)).is_none() {
                // A lookup: the smallest read (one whole batch), not kept.
                let read = self.read_from(offset, 1)?;
                let record = read
                    .get(offset)
                    .cloned()
                    .ok_or_else(|| missing(&self.queue, offset))?;
                return Ok(vec![record; offsets.len()]);
            }
        }
        for offset in sorted {
            let hit = current.as_ref().and_then(|read| read.get(offset));
            let record = match hit {
                Some(record) => record.clone(),
                None => {
                    let read = self.refill(offset)?;
                    let record = read
                        .get(offset)
                        .cloned()
                        .ok_or_else(|| missing(&self.queue, offset))?;
                    current = Some(read);
                    record
                }
            };
            found.insert(offset, record);
        }
        // Callers ask for distinct offsets (moved out); a repeated one is copied.
        let distinct = found.len() == offsets.len();
        offsets
            .iter()
            .map(|offset| {
                let record = if distinct {
                    found.remove(offset)
                } else {
                    found.get(offset).cloned()
                };
                record.ok_or_else(|| {
                    EngineError::Internal(format!("queue {}: offset {offset} missing", self.queue))
                })
            })
            .collect()
    }

    /// For a stream's acked consumer (`consumers/`): the records at `offsets` that the log
    /// still holds, read ahead and kept as deliveries are. Unlike a queue's, a consumer's
    /// stream is not its own: retention or a purge may have removed an offset (below the log
    /// start), and a Kafka control record leaves a gap; such offsets are left out instead of
    /// failing the read. Blocking (file reads) unless every offset is in the kept read.
    pub(crate) fn read_present(
        &self,
        offsets: &[u64],
    ) -> Result<std::collections::HashMap<u64, Record>> {
        let mut sorted: Vec<u64> = offsets.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        let mut found = std::collections::HashMap::with_capacity(sorted.len());
        let mut current = self.last.lock().unwrap_or_else(|p| p.into_inner()).clone();
        for offset in sorted {
            // Checked for each offset: the kept read may hold records removed since.
            if offset < self.log.log_start_offset() {
                continue;
            }
            if let Some(read) = current
                .as_ref()
                .filter(|r| r.first <= offset && offset < r.end)
            {
                if let Some(record) = read.get(offset) {
                    found.insert(offset, record.clone());
                }
                continue;
            }
            let read = match self.refill(offset) {
                Ok(read) => read,
                // Removed between the check above and the read.
                Err(EngineError::Storage(StorageError::OffsetOutOfRange { .. })) => continue,
                Err(error) => return Err(error),
            };
            if let Some(record) = read.get(offset) {
                found.insert(offset, record.clone());
            }
            current = Some(read);
        }
        Ok(found)
    }

    /// Reads of the log so far.
    #[cfg(test)]
    pub(crate) fn log_reads(&self) -> u64 {
        self.log_reads.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// A kept read covering `offset`: the one another reader just made, if it covers it
    /// (looked at once this reader's turn to refill comes), else a new read from `offset`,
    /// kept for the next deliveries.
    fn refill(&self, offset: u64) -> Result<Arc<DecodedRead>> {
        let _refill = self.refill.lock().unwrap_or_else(|p| p.into_inner());
        let kept = self.last.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let start = match kept {
            Some(read) if read.first <= offset && offset < read.end => return Ok(read),
            Some(read) if read.end <= offset && offset - read.end <= REFILL_CONTINUES_WITHIN => {
                read.end
            }
            _ => offset,
        };
        let mut read = match self.read_from(start, READ_BYTES_BUDGET) {
            // Retention (or a stream consumer's purge) removed the kept read's end since:
            // read from the offset itself, as a refill without a kept read would.
            Err(EngineError::Storage(StorageError::OffsetOutOfRange { .. })) if start != offset => {
                self.read_from(offset, READ_BYTES_BUDGET)?
            }
            read => read?,
        };
        if read.end <= offset {
            // Batches larger than the budget between the two: read from the offset itself.
            read = self.read_from(offset, READ_BYTES_BUDGET)?;
        }
        let read = Arc::new(read);
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Some(read.clone());
        Ok(read)
    }

    /// Drops the kept read and counts no log reads, so a test sees the next read's source.
    #[cfg(test)]
    pub(crate) fn forget_kept_read_for_tests(&self) {
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = None;
        self.log_reads
            .store(0, std::sync::atomic::Ordering::Relaxed);
    }

    /// Where the kept read ends (for tests).
    #[cfg(test)]
    pub(crate) fn kept_end(&self) -> Option<u64> {
        let kept = self.last.lock().unwrap_or_else(|p| p.into_inner());
        kept.as_ref().map(|read| read.end)
    }

    /// Decodes the log from `offset` on: at most `budget` bytes of batches, at least one.
    fn read_from(&self, offset: u64, budget: usize) -> Result<DecodedRead> {
        self.log_reads
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let read = self.log.read(offset, budget)?;
        let records = decode_batches(read.bytes, offset)?;
        let end = records.last().map_or(offset, |r| r.offset + 1);
        Ok(DecodedRead {
            first: offset,
            end,
            records,
        })
    }
}

fn missing(queue: &str, offset: u64) -> EngineError {
    EngineError::Internal(format!("queue {queue}: offset {offset} is not in the log"))
}
