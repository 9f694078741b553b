//! The queue and acked-consumer families of a scrape.
//!
//! Queues: each queue's state is read under one short lock (not `describe_queue`, which also
//! copies the configuration and the rate ring: this runs for every queue every scrape), its
//! event totals under the rate ring's own lock, and the finished-job counts of every queue
//! under one lock of the jobs table. What is left out (docs/operations.md):
//! - gauges whose zero is the normal state and says nothing another series does not:
//!   `queue_depth` `delayed` and `leased`, `queue_waiting_bytes` (nothing waits),
//!   `queue_oldest_ready_seconds` (nothing ready), `queue_paused`, `queue_failed`;
//! - the rare event counters (`failed`, `dead_lettered`, `dropped`) until their first event
//!   (`queue_dead_letter_depth`, always written, shows the first dead letter);
//! - `jobs` for the live statuses, which repeated `queue_depth` (`waiting` = ready,
//!   `active` = leased, `delayed` + `failed` = delayed): only `failed` (waiting for a
//!   retry) and the finished statuses are written, once non-zero.
//!
//! Acked consumers of streams (JetStream consumers, Redis consumer groups): their lag in
//! records (not yet acknowledged), deliveries awaiting an ack, and the age of the oldest
//! record not yet acknowledged. AMQP queues' consumers read engine queues: their lag is the
//! queue's `ready` depth and `queue_oldest_ready_seconds`.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::text::{Exposition, Kind, LabelSet, SampleValue};
use crate::consumers::Consumer;
use crate::engine::now_ms;
use crate::queue::rates::RateKind;
use crate::queue::Queue;
use crate::Engine;

/// Every queue, in name order.
pub(super) fn read_queues(engine: &Engine) -> Vec<Arc<Queue>> {
    engine
        .queues
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .values()
        .cloned()
        .collect()
}

/// The streams a queue keeps its messages and (by default) its dead letters in: their
/// per-partition series are left out, the queue's series cover them. A dead-letter stream
/// named by the queue's configuration (not `<queue>.dlq`) may be shared and is a plain
/// stream.
pub(super) fn backing_streams(queues: &[Arc<Queue>]) -> HashSet<&str> {
    let mut names = HashSet::with_capacity(queues.len() * 2);
    for queue in queues {
        let name = queue.config.name.as_str();
        names.insert(name);
        let dead_letter = queue.config.dead_letter.as_str();
        if dead_letter.strip_suffix(".dlq") == Some(name) {
            names.insert(dead_letter);
        }
    }
    names
}

/// One queue, read once.
struct QueueRow {
    labels: LabelSet,
    ready: u64,
    delayed: u64,
    leased: u64,
    waiting_bytes: u64,
    paused: bool,
    failed: bool,
    dead_letter_depth: u64,
    oldest_ready_seconds: f64,
    log_bytes: u64,
    events: [(RateKind, u64); 6],
    /// failed (waiting for a retry), completed, dead, cancelled.
    jobs: [(&'static str, u64); 4],
}

fn queue_row(queue: &Queue, now: i64) -> QueueRow {
    let name = queue.config.name.as_str();
    let (counts, waiting_bytes, paused, oldest_ready, retrying) = {
        let core = queue.lock();
        let counts = core.counts();
        // A retry waits among the delayed: none delayed, none retrying (and no walk over
        // the attempts to count them).
        let retrying = if counts.delayed > 0 {
            core.retrying_count()
        } else {
            0
        };
        let oldest = if counts.ready > 0 {
            core.ready_after(None, 1).first().copied()
        } else {
            None
        };
        (
            counts,
            core.waiting_bytes(),
            core.is_paused(),
            oldest,
            retrying,
        )
    };
    let dead_letter_depth = queue.dead_letter.high_watermark().saturating_sub(
        queue
            .redriven
            .load(Ordering::Acquire)
            .max(queue.dead_letter.log_start_offset()),
    );
    let age_ms = oldest_ready
        .and_then(|id| queue.log.timestamp_at_most_after(id))
        .map_or(0, |timestamp| now.saturating_sub(timestamp).max(0));
    let mut log_bytes = queue.log.size_bytes();
    if queue.config.dead_letter.strip_suffix(".dlq") == Some(name) {
        log_bytes += queue.dead_letter.size_bytes();
    }
    QueueRow {
        labels: LabelSet::new(&[("queue", name)]),
        ready: counts.ready,
        delayed: counts.delayed,
        leased: counts.leased,
        waiting_bytes,
        paused,
        failed: queue.failure().is_some(),
        dead_letter_depth,
        oldest_ready_seconds: age_ms as f64 / 1000.0,
        log_bytes,
        events: queue.event_totals(),
        jobs: [
            ("failed", retrying),
            ("completed", 0),
            ("dead", 0),
            ("cancelled", 0),
        ],
    }
}

/// Puts the finished-job counts on the rows. They are counted from the state store once
/// per queue per process, then kept in memory as jobs finish; all are read under one lock.
fn finished_jobs(engine: &Engine, queues: &[Arc<Queue>], rows: &mut [QueueRow]) {
    // Only the first scrape after a start reads the store, for queues it has not counted.
    let missing: Vec<&str> = {
        let counts = engine.jobs.counts();
        queues
            .iter()
            .map(|queue| queue.config.name.as_str())
            .filter(|name| !counts.contains_key(*name))
            .collect()
    };
    for name in missing {
        let _ = engine.load_final_counts(name);
    }
    let counts = engine.jobs.counts();
    for (queue, row) in queues.iter().zip(rows) {
        if let Some(finished) = counts.get(&queue.config.name) {
            row.jobs[1].1 = finished.completed;
            row.jobs[2].1 = finished.dead;
            row.jobs[3].1 = finished.cancelled;
        }
    }
}

pub(super) fn write_queues(engine: &Engine, queues: &[Arc<Queue>], text: &mut Exposition) {
    let now = now_ms();
    let mut rows: Vec<QueueRow> = queues.iter().map(|q| queue_row(q, now)).collect();
    finished_jobs(engine, queues, &mut rows);

    text.family(
        "queue_depth",
        "Messages in the queue by state: ready (always written), delayed (including retries waiting) and leased (written when not 0).",
        Kind::Gauge,
        |family| {
            for row in &rows {
                family.sample_with(&row.labels, ("state", "ready"), row.ready);
                if row.delayed > 0 {
                    family.sample_with(&row.labels, ("state", "delayed"), row.delayed);
                }
                if row.leased > 0 {
                    family.sample_with(&row.labels, ("state", "leased"), row.leased);
                }
            }
        },
    );
    gauge_if(
        text,
        &rows,
        "queue_waiting_bytes",
        "Bytes of the ready and delayed messages (what max_bytes counts); written when not 0.",
        |r| (r.waiting_bytes > 0).then_some(r.waiting_bytes),
    );
    gauge_if(text, &rows, "queue_oldest_ready_seconds", "Age of the oldest ready message (a lower bound, to within one index interval); written while a message is ready.", |r| (r.ready > 0).then_some(r.oldest_ready_seconds));
    text.family("queue_messages", "Queue events since the queue was opened: enqueued, delivered, completed (always written), failed, dead_lettered, dropped (written once not 0).", Kind::Counter, |family| {
        for row in &rows {
            for (kind, total) in row.events {
                let always = matches!(
                    kind,
                    RateKind::Enqueued | RateKind::Delivered | RateKind::Completed
                );
                if always || total > 0 {
                    family.sample_with(&row.labels, ("event", event_label(kind)), total);
                }
            }
        }
    });
    gauge_if(
        text,
        &rows,
        "queue_dead_letter_depth",
        "Dead letters not yet redriven.",
        |r| Some(r.dead_letter_depth),
    );
    gauge_if(
        text,
        &rows,
        "queue_log_bytes",
        "Bytes on disk of the queue's stream and of its default dead-letter stream.",
        |r| Some(r.log_bytes),
    );
    gauge_if(
        text,
        &rows,
        "queue_paused",
        "1 while deliveries are paused (only paused queues are written).",
        |r| r.paused.then_some(1u64),
    );
    gauge_if(
        text,
        &rows,
        "queue_failed",
        "1 when the queue refuses work after a state-store failure (only such queues are written).",
        |r| r.failed.then_some(1u64),
    );
    text.family("jobs", "Jobs by status, written when not 0: failed (waiting for a retry), completed, dead, cancelled. Waiting, active and delayed jobs are queue_depth's ready, leased and delayed.", Kind::Gauge, |family| {
        for row in &rows {
            for (status, count) in row.jobs {
                if count > 0 {
                    family.sample_with(&row.labels, ("status", status), count);
                }
            }
        }
    });
}

/// A gauge family with one sample per row that has a value.
fn gauge_if<V: SampleValue>(
    text: &mut Exposition,
    rows: &[QueueRow],
    name: &str,
    help: &str,
    value: impl Fn(&QueueRow) -> Option<V>,
) {
    text.family(name, help, Kind::Gauge, |family| {
        for row in rows {
            if let Some(value) = value(row) {
                family.sample(&row.labels, value);
            }
        }
    });
}

fn event_label(kind: RateKind) -> &'static str {
    match kind {
        RateKind::Enqueued => "enqueued",
        RateKind::Delivered => "delivered",
        RateKind::Completed => "completed",
        RateKind::Failed => "failed",
        RateKind::DeadLettered => "dead_lettered",
        RateKind::Dropped => "dropped",
    }
}

/// One acked consumer's lag, read under its lock.
struct ConsumerRow {
    labels: LabelSet,
    lag: u64,
    ack_pending: u64,
    lag_seconds: f64,
}

fn consumer_row(consumer: &Consumer, now: i64) -> ConsumerRow {
    let lag = consumer.lag(now);
    let spec = &consumer.stored.spec;
    ConsumerRow {
        labels: LabelSet::new(&[
            ("stream", spec.stream.as_str()),
            ("consumer", spec.name.as_str()),
        ]),
        lag: lag.records,
        ack_pending: lag.ack_pending,
        lag_seconds: lag.seconds,
    }
}

pub(super) fn write_consumers(engine: &Engine, text: &mut Exposition) {
    let consumers = engine.consumer_list();
    let now = now_ms();
    let rows: Vec<ConsumerRow> = consumers.iter().map(|c| consumer_row(c, now)).collect();
    text.family("consumer_lag_records", "Records of the stream the acked consumer has not acknowledged yet: not yet delivered (for a filtered consumer, records of other subjects not yet passed over count too) plus delivered and unacknowledged.", Kind::Gauge, |family| {
        for row in &rows {
            family.sample(&row.labels, row.lag);
        }
    });
    text.family(
        "consumer_ack_pending",
        "Deliveries of the acked consumer waiting for an acknowledgement.",
        Kind::Gauge,
        |family| {
            for row in &rows {
                family.sample(&row.labels, row.ack_pending);
            }
        },
    );
    text.family("consumer_lag_seconds", "Age of the oldest record the acked consumer has not acknowledged (a lower bound, to within one index interval); 0 without lag.", Kind::Gauge, |family| {
        for row in &rows {
            family.sample(&row.labels, row.lag_seconds);
        }
    });
}
