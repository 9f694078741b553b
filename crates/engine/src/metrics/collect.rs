//! One scrape: every metric family, computed from memory at this moment (see the module doc
//! of `metrics/mod.rs` for what is read where). Rows are gathered once (one pass over the
//! streams, the groups and the queues), then each family is written from them with labels
//! borrowed from the rows, so a series costs no allocation beyond its text.

use std::fmt;
use std::sync::Arc;

use omnibus_storage::metrics::{
    HistogramSnapshot, PartitionTraffic, FSYNC_SECONDS, GROUP_COMMIT_APPENDS, STATE_COMMIT_SECONDS,
};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeCounterValue, EncodeGaugeValue, NoLabelSet,
};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use super::{process, Door};
use crate::engine::now_ms;
use crate::queue::rates::RateKind;
use crate::Engine;

/// Label pairs of one series.
type Labels<'a, const N: usize> = [(&'static str, &'a str); N];

/// Renders every metric of `engine` as OpenMetrics text (ending in `# EOF`).
pub(super) fn render(engine: &Arc<Engine>) -> crate::Result<String> {
    let mut registry = Registry::with_prefix("omnibus");
    registry.register_collector(Box::new(Scrape {
        engine: engine.clone(),
    }));
    let mut text = String::with_capacity(256 * 1024);
    prometheus_client::encoding::text::encode(&mut text, &registry)
        .map_err(|_| crate::EngineError::Internal("encoding the metrics failed".into()))?;
    Ok(text)
}

struct Scrape {
    engine: Arc<Engine>,
}

impl fmt::Debug for Scrape {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("Scrape")
    }
}

impl Collector for Scrape {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        streams(&self.engine, &mut encoder)?;
        groups(&self.engine, &mut encoder)?;
        queues(&self.engine, &mut encoder)?;
        storage(&self.engine, &mut encoder)?;
        doors(&self.engine, &mut encoder)?;
        process_and_disk(&self.engine, &mut encoder)
    }
}

fn counters<'a, const N: usize>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    series: impl IntoIterator<Item = (Labels<'a, N>, u64)>,
) -> fmt::Result {
    let mut series = series.into_iter().peekable();
    if series.peek().is_none() {
        return Ok(());
    }
    let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, value) in series {
        metric
            .encode_family(&labels)?
            .encode_counter::<NoLabelSet, _, u64>(&value, None)?;
    }
    Ok(())
}

fn gauges<'a, const N: usize, V: EncodeGaugeValue>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    series: impl IntoIterator<Item = (Labels<'a, N>, V)>,
) -> fmt::Result {
    let mut series = series.into_iter().peekable();
    if series.peek().is_none() {
        return Ok(());
    }
    let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, value) in series {
        metric.encode_family(&labels)?.encode_gauge(&value)?;
    }
    Ok(())
}

fn single_gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: impl EncodeGaugeValue,
) -> fmt::Result {
    encoder
        .encode_descriptor(name, help, None, MetricType::Gauge)?
        .encode_gauge(&value)
}

fn single_counter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: impl EncodeCounterValue,
) -> fmt::Result {
    encoder
        .encode_descriptor(name, help, None, MetricType::Counter)?
        .encode_counter::<NoLabelSet, _, u64>(&value, None)
}

fn histogram(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    snapshot: &HistogramSnapshot,
) -> fmt::Result {
    let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Histogram)?;
    metric.encode_histogram::<NoLabelSet>(snapshot.sum, snapshot.count, &snapshot.buckets, None)
}

/// One partition, read once.
struct PartitionRow {
    stream: Arc<crate::streams::Stream>,
    partition: String,
    traffic: PartitionTraffic,
    high_watermark: u64,
    log_start_offset: u64,
    size_bytes: u64,
    write_failed: u64,
}

impl PartitionRow {
    fn labels(&self) -> Labels<'_, 2> {
        [
            ("stream", self.stream.config.name.as_str()),
            ("partition", self.partition.as_str()),
        ]
    }
}

fn streams(engine: &Engine, encoder: &mut DescriptorEncoder) -> fmt::Result {
    let streams: Vec<_> = engine.read_streams().values().cloned().collect();
    let mut rows = Vec::new();
    for stream in &streams {
        for (partition, log) in stream.partitions.iter().enumerate() {
            rows.push(PartitionRow {
                stream: stream.clone(),
                partition: partition.to_string(),
                traffic: log.traffic(),
                high_watermark: log.high_watermark(),
                log_start_offset: log.log_start_offset(),
                size_bytes: log.size_bytes(),
                write_failed: u64::from(log.failure().is_some()),
            });
        }
    }
    let each = |value: fn(&PartitionRow) -> u64| rows.iter().map(move |r| (r.labels(), value(r)));
    counters(
        encoder,
        "stream_records_in",
        "Records made durable in the partition since its log was opened.",
        each(|r| r.traffic.records_in),
    )?;
    counters(
        encoder,
        "stream_bytes_in",
        "Bytes (stored batches) made durable in the partition since its log was opened.",
        each(|r| r.traffic.bytes_in),
    )?;
    counters(
        encoder,
        "stream_records_out",
        "Records read from the partition (fetches, deliveries) since its log was opened.",
        each(|r| r.traffic.records_out),
    )?;
    counters(
        encoder,
        "stream_bytes_out",
        "Bytes read from the partition since its log was opened.",
        each(|r| r.traffic.bytes_out),
    )?;
    counters(
        encoder,
        "stream_retention_deleted_segments",
        "Segments deleted by retention.",
        each(|r| r.traffic.retention_segments_deleted),
    )?;
    counters(
        encoder,
        "stream_retention_deleted_bytes",
        "Bytes deleted by retention.",
        each(|r| r.traffic.retention_bytes_deleted),
    )?;
    gauges(
        encoder,
        "stream_high_watermark",
        "One past the last readable offset of the partition.",
        each(|r| r.high_watermark),
    )?;
    gauges(
        encoder,
        "stream_log_start_offset",
        "First offset still in the partition.",
        each(|r| r.log_start_offset),
    )?;
    gauges(
        encoder,
        "stream_log_bytes",
        "Bytes of the partition's segments on disk.",
        each(|r| r.size_bytes),
    )?;
    gauges(
        encoder,
        "stream_write_failed",
        "1 when the partition refuses writes after an I/O error.",
        each(|r| r.write_failed),
    )
}

/// One group's position on one partition.
struct GroupRow {
    entry: crate::groups::committed::CommittedEntry,
    partition: String,
    lag: u64,
    lag_seconds: f64,
}

impl GroupRow {
    fn labels(&self) -> Labels<'_, 3> {
        [
            ("group", self.entry.group.as_str()),
            ("stream", self.entry.stream.as_str()),
            ("partition", self.partition.as_str()),
        ]
    }
}

fn groups(engine: &Engine, encoder: &mut DescriptorEncoder) -> fmt::Result {
    let now = now_ms();
    let mut rows = Vec::new();
    for entry in engine.committed.snapshot() {
        let Ok(stream) = engine.stream(&entry.stream) else {
            continue;
        };
        let Some(log) = stream.partitions.get(entry.partition as usize) else {
            continue;
        };
        let lag = log.high_watermark().saturating_sub(entry.offset);
        // The oldest unconsumed record still in the log: the time index bounds its age
        // from below, to within one index interval, without reading it.
        let oldest = entry.offset.max(log.log_start_offset());
        let age_ms = match log.timestamp_at_most_after(oldest) {
            Some(timestamp) if lag > 0 => now.saturating_sub(timestamp).max(0),
            _ => 0,
        };
        rows.push(GroupRow {
            partition: entry.partition.to_string(),
            entry,
            lag,
            lag_seconds: age_ms as f64 / 1000.0,
        });
    }
    gauges(
        encoder,
        "group_committed_offset",
        "The group's committed offset (the next record it will read).",
        rows.iter().map(|r| (r.labels(), r.entry.offset)),
    )?;
    gauges(
        encoder,
        "group_lag_records",
        "Records between the group's committed offset and the high watermark.",
        rows.iter().map(|r| (r.labels(), r.lag)),
    )?;
    gauges(encoder, "group_lag_seconds", "Age of the oldest record the group has not consumed (a lower bound, to within one index interval); 0 without lag.", rows.iter().map(|r| (r.labels(), r.lag_seconds)))
}

/// One queue, read once.
struct QueueRow {
    queue: Arc<crate::queue::Queue>,
    ready: u64,
    delayed: u64,
    leased: u64,
    waiting_bytes: u64,
    paused: bool,
    failed: bool,
    dead_letter_depth: u64,
    oldest_ready_seconds: f64,
    events: [(RateKind, u64); 6],
    /// waiting, delayed, active, failed, completed, dead, cancelled.
    jobs: [(&'static str, u64); 7],
}

impl QueueRow {
    fn labels(&self) -> Labels<'_, 1> {
        [("queue", self.queue.config.name.as_str())]
    }
}

/// A queue's numbers, its state read under one short lock (not `describe_queue`, which
/// also copies the configuration and the rate ring: this runs for every queue every scrape).
fn queue_row(engine: &Engine, queue: Arc<crate::queue::Queue>, now: i64) -> QueueRow {
    let name = queue.config.name.as_str();
    let (counts, waiting_bytes, paused, oldest_ready, retrying) = {
        let core = queue.lock();
        (
            core.counts(),
            core.waiting_bytes(),
            core.is_paused(),
            core.ready_after(None, 1).first().copied(),
            core.retrying_count(),
        )
    };
    let dead_letter_depth = queue.dead_letter.high_watermark().saturating_sub(
        queue
            .redriven
            .load(std::sync::atomic::Ordering::Acquire)
            .max(queue.dead_letter.log_start_offset()),
    );
    let age_ms = oldest_ready
        .and_then(|id| queue.log.timestamp_at_most_after(id))
        .map_or(0, |timestamp| now.saturating_sub(timestamp).max(0));
    // Finished jobs are counted from the state store once per queue per process; after
    // that the count is kept in memory as jobs finish.
    let finished = match engine.load_final_counts(name) {
        Ok(()) => engine
            .jobs
            .counts()
            .get(name)
            .map(|c| (c.completed, c.dead, c.cancelled)),
        Err(_) => None,
    };
    let (completed, dead, cancelled) = finished.unwrap_or_default();
    let jobs = [
        ("waiting", counts.ready),
        ("delayed", counts.delayed.saturating_sub(retrying)),
        ("active", counts.leased),
        ("failed", retrying),
        ("completed", completed),
        ("dead", dead),
        ("cancelled", cancelled),
    ];
    QueueRow {
        ready: counts.ready,
        delayed: counts.delayed,
        leased: counts.leased,
        waiting_bytes,
        paused,
        failed: queue.failure().is_some(),
        dead_letter_depth,
        oldest_ready_seconds: age_ms as f64 / 1000.0,
        events: queue.event_totals(),
        jobs,
        queue,
    }
}

fn queues(engine: &Engine, encoder: &mut DescriptorEncoder) -> fmt::Result {
    let now = now_ms();
    let queues: Vec<_> = engine
        .queues
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .values()
        .cloned()
        .collect();
    let rows: Vec<QueueRow> = queues
        .into_iter()
        .map(|q| queue_row(engine, q, now))
        .collect();
    let depth = rows.iter().flat_map(|r| {
        let queue = r.queue.config.name.as_str();
        [
            ("ready", r.ready),
            ("delayed", r.delayed),
            ("leased", r.leased),
        ]
        .map(|(state, count)| ([("queue", queue), ("state", state)], count))
    });
    gauges(
        encoder,
        "queue_depth",
        "Messages in the queue by state: ready, delayed (including retries waiting), leased.",
        depth,
    )?;
    gauges(
        encoder,
        "queue_waiting_bytes",
        "Bytes of the ready and delayed messages (what max_bytes counts).",
        rows.iter().map(|r| (r.labels(), r.waiting_bytes)),
    )?;
    gauges(encoder, "queue_oldest_ready_seconds", "Age of the oldest ready message (a lower bound, to within one index interval); 0 when none is ready.", rows.iter().map(|r| (r.labels(), r.oldest_ready_seconds)))?;
    let events = rows.iter().flat_map(|r| {
        let queue = r.queue.config.name.as_str();
        r.events
            .map(|(kind, total)| ([("queue", queue), ("event", kind.as_str())], total))
    });
    counters(encoder, "queue_messages", "Queue events since the queue was opened: enqueued, delivered, completed, failed, dead_lettered, dropped.", events)?;
    gauges(
        encoder,
        "queue_dead_letter_depth",
        "Dead letters not yet redriven.",
        rows.iter().map(|r| (r.labels(), r.dead_letter_depth)),
    )?;
    gauges(
        encoder,
        "queue_paused",
        "1 while deliveries are paused.",
        rows.iter().map(|r| (r.labels(), u64::from(r.paused))),
    )?;
    gauges(
        encoder,
        "queue_failed",
        "1 when the queue refuses work after a state-store failure.",
        rows.iter().map(|r| (r.labels(), u64::from(r.failed))),
    )?;
    let jobs = rows.iter().flat_map(|r| {
        let queue = r.queue.config.name.as_str();
        r.jobs
            .map(|(status, count)| ([("queue", queue), ("status", status)], count))
    });
    gauges(encoder, "jobs", "Jobs by status: waiting, delayed, active, failed (waiting for a retry), completed, dead, cancelled.", jobs)
}

fn storage(engine: &Engine, encoder: &mut DescriptorEncoder) -> fmt::Result {
    histogram(
        encoder,
        "fsync_seconds",
        "Time each partition-log fsync took.",
        &FSYNC_SECONDS.snapshot(),
    )?;
    histogram(
        encoder,
        "group_commit_appends",
        "Appends written together by one group commit of a partition.",
        &GROUP_COMMIT_APPENDS.snapshot(),
    )?;
    histogram(
        encoder,
        "state_commit_seconds",
        "Time each state-store transaction took to commit durably.",
        &STATE_COMMIT_SECONDS.snapshot(),
    )?;
    let stats = engine.state_stats();
    single_counter(
        encoder,
        "state_commits",
        "State-store transactions committed.",
        stats.commits,
    )?;
    single_counter(
        encoder,
        "state_writes",
        "Writes applied by state-store transactions.",
        stats.writes,
    )
}

fn doors(engine: &Engine, encoder: &mut DescriptorEncoder) -> fmt::Result {
    let metrics = engine.metrics();
    let traffic = Door::ALL.map(|door| ([("door", door.as_str())], metrics.door(door).snapshot()));
    let each = |value: fn(&super::DoorTraffic) -> u64| {
        traffic.iter().map(move |(labels, t)| (*labels, value(t)))
    };
    counters(
        encoder,
        "connections_opened",
        "Connections accepted by the front door.",
        each(|t| t.connections_opened),
    )?;
    gauges(
        encoder,
        "connections_open",
        "Connections open now.",
        each(|t| t.connections_opened.saturating_sub(t.connections_closed)),
    )?;
    counters(
        encoder,
        "connections_refused",
        "Connections turned away at connections_max.",
        each(|t| t.connections_refused),
    )?;
    counters(encoder, "requests", "Requests read by the front door (HTTP requests, Kafka API calls, NATS operations, AMQP methods, Redis commands).", each(|t| t.requests))?;
    counters(
        encoder,
        "request_errors",
        "Requests answered with an error, or connections ended by one.",
        each(|t| t.errors),
    )?;
    let routes = metrics.api_routes();
    let counts: Vec<_> = routes
        .iter()
        .map(|(method, route, counts)| (method.as_str(), route.as_str(), counts.snapshot()))
        .collect();
    let series = counts.iter().flat_map(|(method, route, by_status)| {
        by_status.iter().map(move |(status, count)| {
            (
                [("method", *method), ("route", *route), ("status", *status)],
                *count,
            )
        })
    });
    counters(
        encoder,
        "http_requests",
        "HTTP API requests by route template, method and status class.",
        series,
    )
}

fn process_and_disk(engine: &Engine, encoder: &mut DescriptorEncoder) -> fmt::Result {
    let usage = process::usage();
    if let Some(bytes) = usage.resident_bytes {
        single_gauge(
            encoder,
            "process_resident_memory_bytes",
            "Resident memory of the broker process.",
            bytes,
        )?;
    }
    if let Some(files) = usage.open_files {
        single_gauge(
            encoder,
            "process_open_fds",
            "File descriptors the broker process has open.",
            files,
        )?;
    }
    if let Some(seconds) = usage.cpu_seconds {
        single_counter(
            encoder,
            "process_cpu_seconds",
            "User and system CPU time of the broker process.",
            seconds,
        )?;
    }
    if let Some(bytes) = process::disk_free_bytes(engine.data_dir()) {
        single_gauge(
            encoder,
            "disk_free_bytes",
            "Bytes free for the broker in the file system of the data folder.",
            bytes,
        )?;
    }
    Ok(())
}
