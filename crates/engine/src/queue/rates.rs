//! Per-queue rates: how many messages were enqueued, delivered, completed, failed,
//! dead-lettered and dropped in the last minute, and the same as a per-second rate.
//!
//! A ring of 60 one-second buckets, in memory only: the counts start from zero when the queue
//! is opened (at creation and at every start of the broker). Recording is one uncontended
//! mutex and an array increment — no allocation — so it stays off the hot path's costs; time
//! is passed in, so the ring is tested without a clock.

use serde::Serialize;

/// Seconds the ring covers.
pub const RATE_WINDOW_SECONDS: usize = 60;

/// What happened to messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateKind {
    /// Appended to the queue.
    Enqueued = 0,
    /// Handed to a worker (each delivery counts, redeliveries too).
    Delivered = 1,
    /// Acked (a job completed).
    Completed = 2,
    /// An attempt that ended without an ack: nack, term, or an expired lease.
    Failed = 3,
    /// Written to the dead-letter stream, for any reason.
    DeadLettered = 4,
    /// Removed without delivery and without a dead letter: expired (TTL) on a queue that drops
    /// expired messages, or the oldest made room for new ones (`drop_oldest`).
    Dropped = 5,
}

const KINDS: usize = 6;

impl RateKind {
    pub const ALL: [RateKind; KINDS] = [
        RateKind::Enqueued,
        RateKind::Delivered,
        RateKind::Completed,
        RateKind::Failed,
        RateKind::DeadLettered,
        RateKind::Dropped,
    ];

    /// The name `/metrics` labels it with.
    pub fn as_str(self) -> &'static str {
        match self {
            RateKind::Enqueued => "enqueued",
            RateKind::Delivered => "delivered",
            RateKind::Completed => "completed",
            RateKind::Failed => "failed",
            RateKind::DeadLettered => "dead_lettered",
            RateKind::Dropped => "dropped",
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// The second (since the epoch) these counts belong to.
    second: i64,
    counts: [u64; KINDS],
}

/// Counts per second for the last [`RATE_WINDOW_SECONDS`] seconds.
#[derive(Debug, Clone)]
pub struct RateRing {
    buckets: [Bucket; RATE_WINDOW_SECONDS],
    /// The second the ring started counting: the window is shorter until a minute has passed.
    started_second: i64,
    /// Every event since the ring started, by kind: the counters `/metrics` exports.
    totals: [u64; KINDS],
}

/// One kind of event over the window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Rate {
    /// Events in the last 60 seconds (the current second included).
    pub last_minute: u64,
    /// `last_minute` divided by the seconds the window covers (fewer than 60 right after the
    /// queue was opened).
    pub per_second: f64,
}

/// A queue's rates, as reported in its stats.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct QueueRates {
    /// Milliseconds the window covers: 60,000 once the queue has been open for a minute.
    pub window_ms: u64,
    pub enqueued: Rate,
    pub delivered: Rate,
    pub completed: Rate,
    pub failed: Rate,
    pub dead_lettered: Rate,
    pub dropped: Rate,
}

fn second_of(now_ms: i64) -> i64 {
    now_ms.div_euclid(1_000)
}

impl RateRing {
    pub fn new(now_ms: i64) -> Self {
        RateRing {
            buckets: [Bucket {
                second: i64::MIN,
                counts: [0; KINDS],
            }; RATE_WINDOW_SECONDS],
            started_second: second_of(now_ms),
            totals: [0; KINDS],
        }
    }

    /// Events of `kind` since the ring started (the queue was opened), whatever their age.
    pub fn total(&self, kind: RateKind) -> u64 {
        self.totals[kind as usize]
    }

    /// Adds `count` events of `kind` at `now_ms`.
    pub fn record(&mut self, kind: RateKind, count: u64, now_ms: i64) {
        if count == 0 {
            return;
        }
        let second = second_of(now_ms);
        let bucket = &mut self.buckets[second.rem_euclid(RATE_WINDOW_SECONDS as i64) as usize];
        // A bucket last used a minute (or more) ago starts over. One from the future (the
        // clock went back) keeps its counts: they are still recent.
        if bucket.second < second {
            *bucket = Bucket {
                second,
                counts: [0; KINDS],
            };
        }
        bucket.counts[kind as usize] = bucket.counts[kind as usize].saturating_add(count);
        self.totals[kind as usize] = self.totals[kind as usize].saturating_add(count);
    }

    /// The counts of the last [`RATE_WINDOW_SECONDS`] seconds up to `now_ms`.
    pub fn snapshot(&self, now_ms: i64) -> QueueRates {
        let now = second_of(now_ms);
        let oldest = now - (RATE_WINDOW_SECONDS as i64 - 1);
        let mut totals = [0u64; KINDS];
        for bucket in &self.buckets {
            if bucket.second >= oldest && bucket.second <= now {
                for (total, count) in totals.iter_mut().zip(bucket.counts) {
                    *total = total.saturating_add(count);
                }
            }
        }
        let seconds = (now - self.started_second + 1).clamp(1, RATE_WINDOW_SECONDS as i64) as u64;
        let rate = |kind: RateKind| {
            let last_minute = totals[kind as usize];
            Rate {
                last_minute,
                per_second: last_minute as f64 / seconds as f64,
            }
        };
        QueueRates {
            window_ms: seconds * 1_000,
            enqueued: rate(RateKind::Enqueued),
            delivered: rate(RateKind::Delivered),
            completed: rate(RateKind::Completed),
            failed: rate(RateKind::Failed),
            dead_lettered: rate(RateKind::DeadLettered),
            dropped: rate(RateKind::Dropped),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const START: i64 = 1_700_000_000_000;

    #[test]
    fn counts_within_the_last_minute_and_divides_by_the_window() {
        let mut ring = RateRing::new(START);
        for second in 0..60 {
            ring.record(RateKind::Enqueued, 10, START + second * 1_000 + 500);
        }
        ring.record(RateKind::Completed, 3, START + 59_999);
        let rates = ring.snapshot(START + 59_999);
        assert_eq!(rates.window_ms, 60_000);
        assert_eq!(rates.enqueued.last_minute, 600);
        assert_eq!(rates.enqueued.per_second, 10.0);
        assert_eq!(rates.completed.last_minute, 3);
        assert_eq!(rates.delivered, Rate::default());
        assert_eq!(ring.total(RateKind::Enqueued), 600);

        // One second later the first second's 10 fall out of the window.
        let later = ring.snapshot(START + 60_000);
        assert_eq!(later.enqueued.last_minute, 590);
        // Two minutes of silence: everything is gone.
        let quiet = ring.snapshot(START + 180_000);
        assert_eq!(quiet.enqueued.last_minute, 0);
        assert_eq!(quiet.enqueued.per_second, 0.0);
        // The totals keep every event, however old: they are Prometheus counters.
        assert_eq!(ring.total(RateKind::Enqueued), 600);
        assert_eq!(ring.total(RateKind::Completed), 3);
    }

    #[test]
    fn a_young_queue_divides_by_the_seconds_it_has_been_open() {
        let mut ring = RateRing::new(START);
        ring.record(RateKind::Delivered, 30, START + 100);
        ring.record(RateKind::Delivered, 30, START + 2_100);
        let rates = ring.snapshot(START + 2_900);
        assert_eq!(rates.window_ms, 3_000);
        assert_eq!(rates.delivered.last_minute, 60);
        assert_eq!(rates.delivered.per_second, 20.0);
    }

    #[test]
    fn a_reused_bucket_starts_over() {
        let mut ring = RateRing::new(START);
        ring.record(RateKind::Failed, 5, START);
        // 60 seconds later the same slot is reused for a new second.
        ring.record(RateKind::Failed, 1, START + 60_000);
        let rates = ring.snapshot(START + 60_000);
        assert_eq!(rates.failed.last_minute, 1);
        assert_eq!(rates.failed.per_second, 1.0 / 60.0);
    }

    #[test]
    fn kinds_are_counted_apart_and_a_clock_going_back_loses_nothing() {
        let mut ring = RateRing::new(START);
        ring.record(RateKind::DeadLettered, 2, START + 10_000);
        ring.record(RateKind::Completed, 7, START + 10_000);
        // The clock steps back a little: the events still count, in the window.
        ring.record(RateKind::Completed, 1, START + 9_000);
        let rates = ring.snapshot(START + 10_000);
        assert_eq!(rates.dead_lettered.last_minute, 2);
        assert_eq!(rates.completed.last_minute, 8);
        assert_eq!(rates.enqueued.last_minute, 0);
    }
}
