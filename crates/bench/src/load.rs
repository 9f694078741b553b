//! Bounded load generation, shared by every driver.
//!
//! Every run has a [`Budget`]: a count of messages and a deadline; whichever comes first ends
//! it, so no run can hang on a broker that stopped answering. Producers keep a window of
//! operations in flight ([`run_window`]); each operation's round trip goes into an HDR
//! histogram in microseconds. Latency payloads carry their intended send time as 16 ASCII
//! digits (text, so every protocol, JSON included, carries it unchanged), and the receiver
//! subtracts it from its own clock: sender and receiver run in this one process.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::stream::{FuturesUnordered, StreamExt};
use hdrhistogram::Histogram;
use indicatif::ProgressBar;

use crate::error::{BenchError, Result};

/// Bytes of the send time at the start of a latency payload: microseconds since the Unix
/// epoch, zero-padded decimal.
pub const STAMP_BYTES: usize = 16;
/// Highest latency the histograms track: one hour, in microseconds.
const LATENCY_MICROS_MAX: u64 = 3_600_000_000;

/// How many messages a run may still send, and until when.
#[derive(Debug)]
pub struct Budget {
    limit: u64,
    deadline: Instant,
    claimed: AtomicU64,
    done: AtomicU64,
    progress: ProgressBar,
}

impl Budget {
    pub fn new(limit: u64, duration: Duration) -> Budget {
        Budget {
            limit,
            deadline: Instant::now() + duration,
            claimed: AtomicU64::new(0),
            done: AtomicU64::new(0),
            progress: ProgressBar::hidden(),
        }
    }

    /// Shows completed messages on `progress`.
    pub fn with_progress(mut self, progress: ProgressBar) -> Budget {
        self.progress = progress;
        self
    }

    pub fn limit(&self) -> u64 {
        self.limit
    }

    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    pub fn expired(&self) -> bool {
        Instant::now() >= self.deadline
    }

    /// Takes up to `wanted` messages from the budget; 0 when it is spent or time is up.
    pub fn claim(&self, wanted: u64) -> u64 {
        if self.expired() {
            return 0;
        }
        let before = self.claimed.fetch_add(wanted, Ordering::Relaxed);
        wanted.min(self.limit.saturating_sub(before))
    }

    /// Counts messages whose operation completed (acknowledged, consumed, finished).
    pub fn finish(&self, count: u64) {
        self.done.fetch_add(count, Ordering::Relaxed);
        self.progress.inc(count);
    }

    pub fn done(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }

    /// Whether every message of the budget completed.
    pub fn complete(&self) -> bool {
        self.done() >= self.limit
    }
}

/// What one run measured.
#[derive(Debug)]
pub struct Measurement {
    /// Messages (or jobs, or round trips) completed.
    pub operations: u64,
    pub elapsed: Duration,
    /// Per-operation latency in microseconds, where the workload measures one.
    pub latency: Option<Histogram<u64>>,
    /// Something a reader of the figure must know (for example "publish is not acknowledged").
    pub note: Option<String>,
}

impl Measurement {
    pub fn per_second(&self) -> f64 {
        let seconds = self.elapsed.as_secs_f64();
        if seconds > 0.0 {
            self.operations as f64 / seconds
        } else {
            0.0
        }
    }
}

pub fn histogram() -> Histogram<u64> {
    // Three significant digits over 1 µs – 1 h: bounds that are constants, so this cannot fail.
    Histogram::new_with_bounds(1, LATENCY_MICROS_MAX, 3).expect("constant histogram bounds")
}

/// Adds a latency, clamped into the histogram's range.
pub fn record(histogram: &mut Histogram<u64>, latency: Duration) {
    let micros = (latency.as_micros() as u64).clamp(1, LATENCY_MICROS_MAX);
    histogram.saturating_record(micros);
}

/// Adds every value of `others` to `into`.
pub fn merge(into: &mut Histogram<u64>, others: impl IntoIterator<Item = Histogram<u64>>) {
    for other in others {
        // Same bounds everywhere, so adding cannot go out of range.
        let _ = into.add(other);
    }
}

/// Keeps up to `window` operations in flight until the budget is spent; each operation is
/// given how many messages it carries (claimed `batch` at a time) and its round trip is
/// recorded. Returns at the first error.
pub async fn run_window<F, Fut>(
    budget: &Budget,
    window: usize,
    batch: u64,
    mut send: F,
) -> Result<Histogram<u64>>
where
    F: FnMut(u64) -> Fut,
    Fut: Future<Output = Result<()>>,
{
    let mut latencies = histogram();
    let mut in_flight = FuturesUnordered::new();
    let mut exhausted = false;
    loop {
        while !exhausted && in_flight.len() < window {
            let count = budget.claim(batch);
            if count == 0 {
                exhausted = true;
                break;
            }
            let operation = send(count);
            in_flight.push(async move {
                let started = Instant::now();
                let outcome = operation.await;
                (outcome, count, started.elapsed())
            });
        }
        let Some((outcome, count, elapsed)) = in_flight.next().await else {
            return Ok(latencies);
        };
        outcome?;
        record(&mut latencies, elapsed);
        budget.finish(count);
    }
}

/// A payload of `size` bytes of filler.
pub fn payload(size: usize) -> Vec<u8> {
    vec![b'x'; size]
}

/// Microseconds since the Unix epoch.
pub fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|since| since.as_micros() as u64)
        .unwrap_or(0)
}

/// A payload of `size` bytes (at least [`STAMP_BYTES`]) starting with `sent_micros`.
pub fn stamped_payload(size: usize, sent_micros: u64) -> Vec<u8> {
    let mut bytes = format!("{sent_micros:0width$}", width = STAMP_BYTES).into_bytes();
    bytes.truncate(STAMP_BYTES);
    bytes.resize(size.max(STAMP_BYTES), b'x');
    bytes
}

/// The send time a stamped payload carries.
pub fn read_stamp(payload: &[u8]) -> Option<u64> {
    let digits = std::str::from_utf8(payload.get(..STAMP_BYTES)?).ok()?;
    digits.parse().ok()
}

/// Records how long ago a stamped payload was sent; an unstamped payload is an error, as it
/// means the run read someone else's messages.
pub fn record_stamp(histogram: &mut Histogram<u64>, payload: &[u8]) -> Result<()> {
    let sent = read_stamp(payload)
        .ok_or_else(|| BenchError::Incomplete("a received message carries no send time".into()))?;
    let micros = now_micros()
        .saturating_sub(sent)
        .clamp(1, LATENCY_MICROS_MAX);
    histogram.saturating_record(micros);
    Ok(())
}

/// Sends at a fixed rate, keeping at most `window` sends in flight: calls `send` with each
/// message's intended send time (µs since the epoch) at that time. The intended time, not the
/// actual one, goes in the payload, so a sender that falls behind shows up as latency instead
/// of hiding it (coordinated omission). Returns how many sends were acknowledged.
pub async fn run_paced<F, Fut>(
    budget: &Budget,
    rate: u64,
    window: usize,
    mut send: F,
) -> Result<u64>
where
    F: FnMut(u64) -> Fut,
    Fut: Future<Output = Result<()>>,
{
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let start = tokio::time::Instant::now();
    let start_micros = now_micros();
    let mut in_flight = FuturesUnordered::new();
    let mut scheduled = 0u64;
    let mut more = budget.claim(1) == 1;
    let mut acknowledged = 0u64;
    while more || !in_flight.is_empty() {
        let offset = interval.mul_f64(scheduled as f64);
        tokio::select! {
            _ = tokio::time::sleep_until(start + offset), if more && in_flight.len() < window => {
                in_flight.push(send(start_micros + offset.as_micros() as u64));
                scheduled += 1;
                more = budget.claim(1) == 1;
            }
            Some(outcome) = in_flight.next(), if !in_flight.is_empty() => {
                outcome?;
                acknowledged += 1;
                budget.finish(1);
            }
        }
    }
    Ok(acknowledged)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamped_payload_has_its_size_and_gives_its_stamp_back() {
        let payload = stamped_payload(100, 1_764_000_000_123_456);
        assert_eq!(payload.len(), 100);
        assert_eq!(read_stamp(&payload), Some(1_764_000_000_123_456));
        assert_eq!(read_stamp(b"not a stamp at all"), None);
    }

    #[test]
    fn a_budget_grants_no_more_than_its_limit() {
        let budget = Budget::new(250, Duration::from_secs(60));
        assert_eq!(budget.claim(100), 100);
        assert_eq!(budget.claim(100), 100);
        assert_eq!(budget.claim(100), 50);
        assert_eq!(budget.claim(100), 0);
    }

    #[test]
    fn an_expired_budget_grants_nothing() {
        let budget = Budget::new(250, Duration::ZERO);
        assert_eq!(budget.claim(1), 0);
    }

    #[tokio::test]
    async fn a_window_completes_the_whole_budget_and_times_each_operation() {
        let budget = Budget::new(1_000, Duration::from_secs(60));
        let latencies = run_window(&budget, 8, 10, |_| async { Ok(()) })
            .await
            .expect("no operation fails");
        assert_eq!(budget.done(), 1_000);
        assert_eq!(latencies.len(), 100);
    }
}
