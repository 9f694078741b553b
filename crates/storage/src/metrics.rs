//! Storage's own measurements: fsync latency, group-commit sizes and state-store commit
//! latency (process-wide histograms), and each partition's traffic counters
//! ([`PartitionCounters`], owned by its `PartitionLog`).
//!
//! Everything here is a plain atomic, so recording costs one or two uncontended atomic adds
//! on the write path and nothing is allocated. The histograms are process-wide rather than
//! per partition: one broker runs per process, and a histogram per partition would multiply
//! the series by the partition count (1,000 partitions × 14 buckets) for little insight.
//! The engine reads these at scrape time and renders them; storage knows nothing of the
//! exposition format.
//!
//! [`set_recording`] turns recording off for the whole process (the publish benchmark's
//! "metrics off" side); reading always works and simply sees no new counts.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::LazyLock;
use std::time::Instant;

static RECORDING: AtomicBool = AtomicBool::new(true);

/// Turns recording of every storage metric on or off for this process.
pub fn set_recording(on: bool) {
    RECORDING.store(on, Ordering::Relaxed);
}

/// Whether storage metrics are being recorded.
pub fn recording() -> bool {
    RECORDING.load(Ordering::Relaxed)
}

/// Latency buckets in nanoseconds: 50 µs to 1 s, covering a fast NVMe fdatasync up to a
/// stalled disk.
const LATENCY_BOUNDS_NS: &[u64] = &[
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    1_000_000_000,
];

/// Appends per group commit: powers of two up to 1,024.
const GROUP_BOUNDS: &[u64] = &[1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];

/// A histogram over fixed bounds, in integer units, made of atomics.
pub struct AtomicHistogram {
    bounds: &'static [u64],
    /// What one unit is worth when exported (1e-9 for nanoseconds → seconds).
    scale: f64,
    /// One count per bound plus one for values above the last (non-cumulative).
    counts: Box<[AtomicU64]>,
    sum: AtomicU64,
}

/// A histogram's buckets, each counted on its own (not cumulative: the exposition encoder
/// adds them up), the last bound `f64::INFINITY`.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSnapshot {
    pub sum: f64,
    pub count: u64,
    /// (upper bound, observations above the previous bound and at or below this one).
    pub buckets: Vec<(f64, u64)>,
}

impl AtomicHistogram {
    fn new(bounds: &'static [u64], scale: f64) -> Self {
        AtomicHistogram {
            bounds,
            scale,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0),
        }
    }

    /// Counts one observation of `value` units (when recording is on).
    pub fn observe(&self, value: u64) {
        if !recording() {
            return;
        }
        let index = self.bounds.partition_point(|bound| *bound < value);
        self.counts[index].fetch_add(1, Ordering::Relaxed);
        self.sum.fetch_add(value, Ordering::Relaxed);
    }

    /// Counts the time since `start`, in nanoseconds.
    pub fn observe_since(&self, start: Instant) {
        self.observe(start.elapsed().as_nanos().min(u64::MAX as u128) as u64);
    }

    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut total = 0u64;
        let mut buckets = Vec::with_capacity(self.counts.len());
        for (index, count) in self.counts.iter().enumerate() {
            let count = count.load(Ordering::Relaxed);
            total += count;
            let bound = match self.bounds.get(index) {
                Some(bound) => *bound as f64 * self.scale,
                None => f64::INFINITY,
            };
            buckets.push((bound, count));
        }
        HistogramSnapshot {
            sum: self.sum.load(Ordering::Relaxed) as f64 * self.scale,
            count: total,
            buckets,
        }
    }
}

/// Time each partition-log fsync (`fdatasync`) took, in seconds when exported.
pub static FSYNC_SECONDS: LazyLock<AtomicHistogram> =
    LazyLock::new(|| AtomicHistogram::new(LATENCY_BOUNDS_NS, 1e-9));

/// Appends written together by one group commit of a partition log.
pub static GROUP_COMMIT_APPENDS: LazyLock<AtomicHistogram> =
    LazyLock::new(|| AtomicHistogram::new(GROUP_BOUNDS, 1.0));

/// Time each state-store transaction took to commit (durably), in seconds when exported.
pub static STATE_COMMIT_SECONDS: LazyLock<AtomicHistogram> =
    LazyLock::new(|| AtomicHistogram::new(LATENCY_BOUNDS_NS, 1e-9));

/// A partition's traffic since its log was opened (a restart, or a stream reopened under
/// new settings, starts them from zero: Prometheus reads that as a counter reset).
#[derive(Debug, Default)]
pub struct PartitionCounters {
    records_in: AtomicU64,
    bytes_in: AtomicU64,
    records_out: AtomicU64,
    bytes_out: AtomicU64,
    retention_segments_deleted: AtomicU64,
    retention_bytes_deleted: AtomicU64,
}

/// A copy of [`PartitionCounters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PartitionTraffic {
    /// Records made durable (acknowledged) in this partition.
    pub records_in: u64,
    /// Their bytes as stored (whole batches).
    pub bytes_in: u64,
    /// Records handed to readers (fetches, queue deliveries, consumers); a record read
    /// twice counts twice.
    pub records_out: u64,
    pub bytes_out: u64,
    pub retention_segments_deleted: u64,
    pub retention_bytes_deleted: u64,
}

impl PartitionCounters {
    pub(crate) fn wrote(&self, records: u64, bytes: u64) {
        if recording() {
            self.records_in.fetch_add(records, Ordering::Relaxed);
            self.bytes_in.fetch_add(bytes, Ordering::Relaxed);
        }
    }

    pub(crate) fn read(&self, records: u64, bytes: u64) {
        if recording() && bytes > 0 {
            self.records_out.fetch_add(records, Ordering::Relaxed);
            self.bytes_out.fetch_add(bytes, Ordering::Relaxed);
        }
    }

    pub(crate) fn retained(&self, segments: u64, bytes: u64) {
        // Retention is rare and its counts are wanted even in a benchmark without metrics.
        self.retention_segments_deleted
            .fetch_add(segments, Ordering::Relaxed);
        self.retention_bytes_deleted
            .fetch_add(bytes, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> PartitionTraffic {
        PartitionTraffic {
            records_in: self.records_in.load(Ordering::Relaxed),
            bytes_in: self.bytes_in.load(Ordering::Relaxed),
            records_out: self.records_out.load(Ordering::Relaxed),
            bytes_out: self.bytes_out.load(Ordering::Relaxed),
            retention_segments_deleted: self.retention_segments_deleted.load(Ordering::Relaxed),
            retention_bytes_deleted: self.retention_bytes_deleted.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_count_apart_and_end_at_infinity() {
        let histogram = AtomicHistogram::new(&[10, 100], 0.5);
        for value in [5, 10, 11, 100, 1_000] {
            histogram.observe(value);
        }
        let snapshot = histogram.snapshot();
        assert_eq!(snapshot.count, 5);
        assert_eq!(snapshot.sum, 1_126.0 * 0.5);
        assert_eq!(
            snapshot.buckets,
            vec![(5.0, 2), (50.0, 2), (f64::INFINITY, 1)]
        );
    }

    #[test]
    fn partition_counters_add_up_and_skip_empty_reads() {
        let counters = PartitionCounters::default();
        counters.wrote(3, 300);
        counters.wrote(1, 100);
        counters.read(0, 0);
        counters.read(2, 200);
        counters.retained(1, 4096);
        let traffic = counters.snapshot();
        assert_eq!((traffic.records_in, traffic.bytes_in), (4, 400));
        assert_eq!((traffic.records_out, traffic.bytes_out), (2, 200));
        assert_eq!(traffic.retention_segments_deleted, 1);
        assert_eq!(traffic.retention_bytes_deleted, 4096);
    }
}
