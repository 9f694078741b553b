//! One command's latency distribution, for INFO's `latencystats` (p50/p99/p99.9 per
//! command, what redis_exporter graphs) and LATENCY HISTOGRAM, as Redis 7 keeps one per
//! command. Written by hand rather than with an HDR histogram crate: every command of every
//! connection records into it, so it must take a record without a lock (one atomic add),
//! which `hdrhistogram`'s `&mut` recording does not.
//!
//! Durations are whole microseconds, rounded up (so at least 1), as Redis measures them.
//! Below 16 µs each value has its own bucket; above, each power of two is cut in 8, so a
//! value is known to within 1/8 of its power of two (12.5 %; Redis's HDR histogram keeps 2
//! significant digits). 280 buckets reach 2^36 µs (19 hours); longer calls count in the last.
//! The buckets are allocated on the command's first call.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

/// Values with a bucket of their own.
const EXACT: usize = 16;
/// Buckets per power of two above them.
const SUB_BUCKETS: usize = 8;
const SUB_BITS: u32 = 3;
/// The highest power of two with buckets.
const OCTAVE_MAX: usize = 36;
const BUCKETS: usize = EXACT + (OCTAVE_MAX - 3) * SUB_BUCKETS;

#[derive(Default)]
pub(crate) struct Histogram {
    buckets: OnceLock<Box<[AtomicU64]>>,
}

/// The bucket of `micros` (at least 1).
fn bucket(micros: u64) -> usize {
    if micros < EXACT as u64 {
        return micros as usize;
    }
    let octave = 63 - micros.leading_zeros() as usize;
    if octave > OCTAVE_MAX {
        return BUCKETS - 1;
    }
    let sub = (micros >> (octave as u32 - SUB_BITS)) as usize & (SUB_BUCKETS - 1);
    EXACT + (octave - 4) * SUB_BUCKETS + sub
}

/// The highest value bucket `index` holds.
fn upper(index: usize) -> u64 {
    if index < EXACT {
        return index as u64;
    }
    let octave = 4 + (index - EXACT) / SUB_BUCKETS;
    let sub = ((index - EXACT) % SUB_BUCKETS) as u64;
    ((SUB_BUCKETS as u64 + sub + 1) << (octave as u32 - SUB_BITS)) - 1
}

impl Histogram {
    /// One call that took `elapsed`.
    pub(crate) fn record(&self, elapsed: Duration) {
        let micros = elapsed.as_nanos().div_ceil(1_000).max(1);
        let micros = u64::try_from(micros).unwrap_or(u64::MAX);
        let buckets = self
            .buckets
            .get_or_init(|| (0..BUCKETS).map(|_| AtomicU64::new(0)).collect());
        buckets[bucket(micros)].fetch_add(1, Ordering::Relaxed);
    }

    /// Every bucket to zero (CONFIG RESETSTAT).
    pub(crate) fn reset(&self) {
        if let Some(buckets) = self.buckets.get() {
            for count in buckets.iter() {
                count.store(0, Ordering::Relaxed);
            }
        }
    }

    fn counts(&self) -> Vec<u64> {
        match self.buckets.get() {
            Some(buckets) => buckets
                .iter()
                .map(|count| count.load(Ordering::Relaxed))
                .collect(),
            None => Vec::new(),
        }
    }

    /// Calls recorded.
    pub(crate) fn calls(&self) -> u64 {
        self.counts().iter().sum()
    }

    /// The duration in µs that `percentile` % of the calls took at most (the highest value
    /// of the bucket that call falls in); 0 without calls.
    pub(crate) fn percentile(&self, percentile: f64) -> u64 {
        let counts = self.counts();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return 0;
        }
        let wanted = ((percentile / 100.0 * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for (index, count) in counts.iter().enumerate() {
            seen += count;
            if seen >= wanted {
                return upper(index);
            }
        }
        upper(BUCKETS - 1)
    }

    /// LATENCY HISTOGRAM's `histogram_usec`: for each power of two of µs from 1, the calls
    /// that took at most that long (within the bucket's 12.5 % above 16 µs), listed where
    /// the count grows, as Redis lists them.
    pub(crate) fn cumulative(&self) -> Vec<(u64, u64)> {
        let counts = self.counts();
        let mut out = Vec::new();
        let (mut seen, mut previous, mut index) = (0, 0, 0);
        for power in 0..=OCTAVE_MAX as u32 {
            let limit = 1u64 << power;
            // Every bucket whose lowest value is at most the limit (the one starting at it
            // included: its calls may be up to 1/8 above).
            while index < counts.len() && (index == 0 || upper(index - 1) < limit) {
                seen += counts[index];
                index += 1;
            }
            if seen > previous {
                out.push((limit, seen));
                previous = seen;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_every_value_in_order_and_hold_it() {
        let mut last = None;
        for micros in 1..100_000u64 {
            let index = bucket(micros);
            assert!(micros <= upper(index), "{micros} above its bucket {index}");
            if index > 0 {
                assert!(micros > upper(index - 1), "{micros} below bucket {index}");
            }
            if let Some(last) = last {
                assert!(index >= last);
            }
            last = Some(index);
        }
        assert_eq!(bucket(u64::MAX), BUCKETS - 1);
        assert_eq!(upper(bucket(1 << 20)), (1 << 20) + (1 << 17) - 1);
    }

    #[test]
    fn percentiles_and_the_cumulative_histogram() {
        let histogram = Histogram::default();
        assert_eq!(histogram.percentile(50.0), 0);
        assert!(histogram.cumulative().is_empty());
        for _ in 0..98 {
            histogram.record(Duration::from_nanos(1_400));
        }
        histogram.record(Duration::from_micros(100));
        histogram.record(Duration::from_millis(3));
        assert_eq!(histogram.calls(), 100);
        assert_eq!(histogram.percentile(50.0), 2);
        assert_eq!(histogram.percentile(99.0), 103); // 100 µs, in 96..=103
        assert_eq!(histogram.percentile(99.9), 3071); // 3,000 µs, in 2,816..=3,071
        assert_eq!(
            histogram.cumulative(),
            vec![(2, 98), (128, 99), (4096, 100)]
        );
        histogram.reset();
        assert_eq!(histogram.calls(), 0);
    }
}
