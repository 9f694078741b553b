//! One scrape: every metric family, computed from memory at this moment (see the module doc
//! of `metrics/mod.rs` for what is read where).

use std::fmt;
use std::sync::Arc;

use omnibus_storage::metrics::STATE_COMMIT_SECONDS;
use omnibus_storage::metrics::{HistogramSnapshot, FSYNC_SECONDS, GROUP_COMMIT_APPENDS};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeGaugeValue, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use super::{process, Door};
use crate::engine::now_ms;
use crate::Engine;

/// Label pairs of one series.
type Labels = Vec<(&'static str, String)>;

/// Renders every metric of `engine` as OpenMetrics text (ending in `# EOF`).
pub(super) fn render(engine: &Arc<Engine>) -> crate::Result<String> {
    let mut registry = Registry::with_prefix("omnibus");
    registry.register_collector(Box::new(Scrape {
        engine: engine.clone(),
    }));
    let mut text = String::with_capacity(64 * 1024);
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

fn counters(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    series: &[(Labels, u64)],
) -> fmt::Result {
    if series.is_empty() {
        return Ok(());
    }
    let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, value) in series {
        metric
            .encode_family(labels)?
            .encode_counter::<NoLabelSet, _, u64>(value, None)?;
    }
    Ok(())
}

fn gauges<V: EncodeGaugeValue>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    series: &[(Labels, V)],
) -> fmt::Result {
    if series.is_empty() {
        return Ok(());
    }
    let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, value) in series {
        metric.encode_family(labels)?.encode_gauge(value)?;
    }
    Ok(())
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

fn partition_labels(stream: &str, partition: usize) -> Labels {
    vec![
        ("stream", stream.to_string()),
        ("partition", partition.to_string()),
    ]
}

fn streams(engine: &Engine, encoder: &mut DescriptorEncoder) -> fmt::Result {
    let streams: Vec<_> = engine.read_streams().values().cloned().collect();
    let mut records_in = Vec::new();
    let mut bytes_in = Vec::new();
    let mut records_out = Vec::new();
    let mut bytes_out = Vec::new();
    let mut retention_segments = Vec::new();
    let mut retention_bytes = Vec::new();
    let mut high_watermarks = Vec::new();
    let mut log_starts = Vec::new();
    let mut sizes = Vec::new();
    let mut write_failed = Vec::new();
    for stream in &streams {
        for (partition, log) in stream.partitions.iter().enumerate() {
            let labels = partition_labels(&stream.config.name, partition);
            let traffic = log.traffic();
            records_in.push((labels.clone(), traffic.records_in));
            bytes_in.push((labels.clone(), traffic.bytes_in));
            records_out.push((labels.clone(), traffic.records_out));
            bytes_out.push((labels.clone(), traffic.bytes_out));
            retention_segments.push((labels.clone(), traffic.retention_segments_deleted));
            retention_bytes.push((labels.clone(), traffic.retention_bytes_deleted));
            high_watermarks.push((labels.clone(), log.high_watermark()));
            log_starts.push((labels.clone(), log.log_start_offset()));
            sizes.push((labels.clone(), log.size_bytes()));
            write_failed.push((labels, u64::from(log.failure().is_some())));
        }
    }
    counters(
        encoder,
        "stream_records_in",
        "Records made durable in the partition since it was opened.",
        &records_in,
    )?;
    counters(
        encoder,
        "stream_bytes_in",
        "Bytes (stored batches) made durable in the partition since it was opened.",
        &bytes_in,
    )?;
    counters(
        encoder,
        "stream_records_out",
        "Records read from the partition (fetches, deliveries) since it was opened.",
        &records_out,
    )?;
    counters(
        encoder,
        "stream_bytes_out",
        "Bytes read from the partition since it was opened.",
        &bytes_out,
    )?;
    counters(
        encoder,
        "stream_retention_deleted_segments",
        "Segments deleted by retention.",
        &retention_segments,
    )?;
    counters(
        encoder,
        "stream_retention_deleted_bytes",
        "Bytes deleted by retention.",
        &retention_bytes,
    )?;
    gauges(
        encoder,
        "stream_high_watermark",
        "One past the last readable offset of the partition.",
        &high_watermarks,
    )?;
    gauges(
        encoder,
        "stream_log_start_offset",
        "First offset still in the partition.",
        &log_starts,
    )?;
    gauges(
        encoder,
        "stream_log_bytes",
        "Bytes of the partition's segments on disk.",
        &sizes,
    )?;
    gauges(
        encoder,
        "stream_write_failed",
        "1 when the partition refuses writes after an I/O error.",
        &write_failed,
    )
}

fn groups(engine: &Engine, encoder: &mut DescriptorEncoder) -> fmt::Result {
    let now = now_ms();
    let mut committed = Vec::new();
    let mut lag_records = Vec::new();
    let mut lag_seconds = Vec::new();
    for entry in engine.committed.snapshot() {
        let Ok(stream) = engine.stream(&entry.stream) else {
            continue;
        };
        let Some(log) = stream.partitions.get(entry.partition as usize) else {
            continue;
        };
        let labels: Labels = vec![
            ("group", entry.group),
            ("stream", entry.stream),
            ("partition", entry.partition.to_string()),
        ];
        let high_watermark = log.high_watermark();
        let lag = high_watermark.saturating_sub(entry.offset);
        // The oldest unconsumed record still in the log: the time index bounds its age
        // from below, to within one index interval, without reading it.
        let oldest = entry.offset.max(log.log_start_offset());
        let age_ms = match log.timestamp_at_most_after(oldest) {
            Some(timestamp) if lag > 0 => now.saturating_sub(timestamp).max(0),
            _ => 0,
        };
        committed.push((labels.clone(), entry.offset));
        lag_records.push((labels.clone(), lag));
        lag_seconds.push((labels, age_ms as f64 / 1000.0));
    }
    gauges(
        encoder,
        "group_committed_offset",
        "The group's committed offset (the next record it will read).",
        &committed,
    )?;
    gauges(
        encoder,
        "group_lag_records",
        "Records between the group's committed offset and the high watermark.",
        &lag_records,
    )?;
    gauges(encoder, "group_lag_seconds", "Age of the oldest record the group has not consumed (a lower bound, to within one index interval); 0 without lag.", &lag_seconds)
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
    let mut depth = Vec::new();
    let mut waiting_bytes = Vec::new();
    let mut oldest = Vec::new();
    let mut events = Vec::new();
    let mut dead_letters = Vec::new();
    let mut paused = Vec::new();
    let mut failed = Vec::new();
    let mut jobs = Vec::new();
    for queue in &queues {
        let name = &queue.config.name;
        let info = engine.describe_queue(queue);
        let (oldest_ready, retrying) = {
            let core = queue.lock();
            (
                core.ready_after(None, 1).first().copied(),
                core.retrying_count(),
            )
        };
        let queue_label = || vec![("queue", name.clone())];
        for (state, count) in [
            ("ready", info.ready),
            ("delayed", info.delayed),
            ("leased", info.leased),
        ] {
            depth.push((
                vec![("queue", name.clone()), ("state", state.to_string())],
                count,
            ));
        }
        waiting_bytes.push((queue_label(), info.waiting_bytes));
        let age_ms = oldest_ready
            .and_then(|id| queue.log.timestamp_at_most_after(id))
            .map_or(0, |timestamp| now.saturating_sub(timestamp).max(0));
        oldest.push((queue_label(), age_ms as f64 / 1000.0));
        for (kind, total) in queue.event_totals() {
            events.push((
                vec![
                    ("queue", name.clone()),
                    ("event", kind.as_str().to_string()),
                ],
                total,
            ));
        }
        dead_letters.push((queue_label(), info.dead_letter_depth));
        paused.push((queue_label(), u64::from(info.paused)));
        failed.push((queue_label(), u64::from(info.failure.is_some())));
        // Finished jobs are counted from the state store once per queue per process; after
        // that the count is kept in memory as jobs finish.
        let finished = match engine.load_final_counts(name) {
            Ok(()) => engine
                .jobs
                .counts()
                .get(name.as_str())
                .map(|c| (c.completed, c.dead, c.cancelled)),
            Err(_) => None,
        };
        let (completed, dead, cancelled) = finished.unwrap_or_default();
        for (status, count) in [
            ("waiting", info.ready),
            ("delayed", info.delayed.saturating_sub(retrying)),
            ("active", info.leased),
            ("failed", retrying),
            ("completed", completed),
            ("dead", dead),
            ("cancelled", cancelled),
        ] {
            jobs.push((
                vec![("queue", name.clone()), ("status", status.to_string())],
                count,
            ));
        }
    }
    gauges(
        encoder,
        "queue_depth",
        "Messages in the queue by state: ready, delayed (including retries waiting), leased.",
        &depth,
    )?;
    gauges(
        encoder,
        "queue_waiting_bytes",
        "Bytes of the ready and delayed messages (what max_bytes counts).",
        &waiting_bytes,
    )?;
    gauges(encoder, "queue_oldest_ready_seconds", "Age of the oldest ready message (a lower bound, to within one index interval); 0 when none is ready.", &oldest)?;
    counters(encoder, "queue_messages", "Queue events since the queue was opened: enqueued, delivered, completed, failed, dead_lettered, dropped.", &events)?;
    gauges(
        encoder,
        "queue_dead_letter_depth",
        "Dead letters not yet redriven.",
        &dead_letters,
    )?;
    gauges(
        encoder,
        "queue_paused",
        "1 while deliveries are paused.",
        &paused,
    )?;
    gauges(
        encoder,
        "queue_failed",
        "1 when the queue refuses work after a state-store failure.",
        &failed,
    )?;
    gauges(encoder, "jobs", "Jobs by status: waiting, delayed, active, failed (waiting for a retry), completed, dead, cancelled.", &jobs)
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
    counters(
        encoder,
        "state_commits",
        "State-store transactions committed.",
        &[(Vec::new(), stats.commits)],
    )?;
    counters(
        encoder,
        "state_writes",
        "Writes applied by state-store transactions.",
        &[(Vec::new(), stats.writes)],
    )
}

fn doors(engine: &Engine, encoder: &mut DescriptorEncoder) -> fmt::Result {
    let metrics = engine.metrics();
    let mut opened = Vec::new();
    let mut open = Vec::new();
    let mut refused = Vec::new();
    let mut requests = Vec::new();
    let mut errors = Vec::new();
    for door in Door::ALL {
        let traffic = metrics.door(door).snapshot();
        let labels = vec![("door", door.as_str().to_string())];
        opened.push((labels.clone(), traffic.connections_opened));
        open.push((
            labels.clone(),
            traffic
                .connections_opened
                .saturating_sub(traffic.connections_closed),
        ));
        refused.push((labels.clone(), traffic.connections_refused));
        requests.push((labels.clone(), traffic.requests));
        errors.push((labels, traffic.errors));
    }
    counters(
        encoder,
        "connections_opened",
        "Connections accepted by the front door.",
        &opened,
    )?;
    gauges(encoder, "connections_open", "Connections open now.", &open)?;
    counters(
        encoder,
        "connections_refused",
        "Connections turned away at connections_max.",
        &refused,
    )?;
    counters(encoder, "requests", "Requests read by the front door (HTTP requests, Kafka API calls, NATS and Redis commands, AMQP methods).", &requests)?;
    counters(
        encoder,
        "request_errors",
        "Requests answered with an error, or connections ended by one.",
        &errors,
    )?;
    let mut routes = Vec::new();
    for (method, route, counts) in metrics.api_routes() {
        for (status, count) in counts.snapshot() {
            routes.push((
                vec![
                    ("method", method.clone()),
                    ("route", route.clone()),
                    ("status", status.to_string()),
                ],
                count,
            ));
        }
    }
    counters(
        encoder,
        "http_requests",
        "HTTP API requests by route template, method and status class.",
        &routes,
    )
}

fn process_and_disk(engine: &Engine, encoder: &mut DescriptorEncoder) -> fmt::Result {
    let usage = process::usage();
    if let Some(bytes) = usage.resident_bytes {
        gauges(
            encoder,
            "process_resident_memory_bytes",
            "Resident memory of the broker process.",
            &[(Vec::new(), bytes)],
        )?;
    }
    if let Some(files) = usage.open_files {
        gauges(
            encoder,
            "process_open_fds",
            "File descriptors the broker process has open.",
            &[(Vec::new(), files)],
        )?;
    }
    if let Some(seconds) = usage.cpu_seconds {
        let mut metric = encoder.encode_descriptor(
            "process_cpu_seconds",
            "User and system CPU time of the broker process.",
            None,
            MetricType::Counter,
        )?;
        metric.encode_counter::<NoLabelSet, _, u64>(&seconds, None)?;
    }
    if let Some(bytes) = process::disk_free_bytes(engine.data_dir()) {
        gauges(
            encoder,
            "disk_free_bytes",
            "Bytes free for the broker in the file system of the data folder.",
            &[(Vec::new(), bytes)],
        )?;
    }
    Ok(())
}
