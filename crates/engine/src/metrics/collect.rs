//! One scrape: every metric family, computed from memory at this moment (see the module doc
//! of `metrics/mod.rs` for what is read where), written by the `prometheus-client` crate's
//! encoder through one collector registered for the scrape (`text.rs`).
//! Objects are read once (one pass over the streams, the groups, the queues and the
//! consumers), each object's label set is rendered once, then each family is written from
//! those rows.
//!
//! Which series are left out, and why (docs/operations.md, "What a scrape leaves out"):
//! - **A queue's backing streams** (its own stream and its default `<queue>.dlq`) get no
//!   per-partition series: the queue's series cover them (`queues.rs`), and they were 40 %
//!   of a scrape with many queues. A poisoned backing partition still shows in
//!   `stream_write_failed`.
//! - **Idle partitions' traffic counters**: the four records/bytes in/out counters of a
//!   partition are written once one of them is non-zero (since its log was opened).
//! - **Counters and flags that are zero** where zero is the normal state and no graph needs
//!   a baseline: retention deletions per partition, `stream_write_failed`.
//!
//! Each family's `# HELP` / `# TYPE` is written even when it has no sample, so a scraper
//! (and the documentation test) knows every family.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::registry::Registry;

use omnibus_storage::metrics::{
    HistogramSnapshot, PartitionTraffic, FSYNC_SECONDS, GROUP_COMMIT_APPENDS, STATE_COMMIT_SECONDS,
};

use super::text::{Exposition, Kind, LabelSet, PREFIX};
use super::{process, queues, Door};
use crate::alerts::AlertKind;
use crate::engine::now_ms;
use crate::streams::Stream;
use crate::Engine;

/// Renders every metric of `engine` as OpenMetrics text (ending in `# EOF`), in a buffer of
/// `capacity` bytes to start with (the last scrape's size, so it is not grown by copying).
pub(super) fn render(engine: Arc<Engine>, capacity: usize) -> Result<String, fmt::Error> {
    let mut registry = Registry::with_prefix(PREFIX);
    registry.register_collector(Box::new(Scrape(engine)));
    let mut out = String::with_capacity(capacity);
    prometheus_client::encoding::text::encode(&mut out, &registry)?;
    Ok(out)
}

/// The collector of one scrape: it reads the engine when the crate asks for its families.
struct Scrape(Arc<Engine>);

impl fmt::Debug for Scrape {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("Scrape")
    }
}

impl Collector for Scrape {
    fn encode(&self, encoder: DescriptorEncoder) -> fmt::Result {
        let engine = &*self.0;
        let mut text = Exposition::new(encoder);
        let queues = queues::read_queues(engine);
        let backing = queues::backing_streams(&queues);
        // In name order (the table is a BTreeMap), which `groups` searches.
        let streams: Vec<Arc<Stream>> = engine.read_streams().values().cloned().collect();
        write_streams(&streams, &backing, &mut text);
        groups(engine, &streams, &mut text);
        queues::write_queues(engine, &queues, &mut text);
        queues::write_consumers(engine, &mut text);
        storage(engine, &mut text);
        keyspace(engine, &mut text);
        doors(engine, &mut text);
        alarms(engine, &mut text);
        process_and_disk(engine, &mut text);
        text.finish()
    }
}

/// One partition, read once.
struct PartitionRow {
    labels: LabelSet,
    traffic: PartitionTraffic,
    high_watermark: u64,
    log_start_offset: u64,
    size_bytes: u64,
    /// Whether it belongs to a queue (only its failure flag is written).
    backing: bool,
    write_failed: bool,
}

impl PartitionRow {
    fn has_traffic(&self) -> bool {
        let t = &self.traffic;
        (t.records_in | t.bytes_in | t.records_out | t.bytes_out) != 0
    }
}

fn write_streams(streams: &[Arc<Stream>], backing: &HashSet<&str>, text: &mut Exposition) {
    let mut rows = Vec::new();
    for stream in streams {
        let name = stream.config.name.as_str();
        let is_backing = backing.contains(name);
        for (partition, log) in stream.partitions.iter().enumerate() {
            let write_failed = log.failure().is_some();
            if is_backing && !write_failed {
                continue;
            }
            rows.push(PartitionRow {
                labels: LabelSet::new(&[
                    ("stream", name),
                    ("partition", itoa::Buffer::new().format(partition)),
                ]),
                traffic: log.traffic(),
                high_watermark: log.high_watermark(),
                log_start_offset: log.log_start_offset(),
                size_bytes: log.size_bytes(),
                backing: is_backing,
                write_failed,
            });
        }
    }
    let plain = || rows.iter().filter(|r| !r.backing);
    let active = || plain().filter(|r| r.has_traffic());
    type Counter = (&'static str, &'static str, fn(&PartitionTraffic) -> u64);
    const TRAFFIC: [Counter; 4] = [
        ("stream_records_in", "Records made durable in the partition since its log was opened (written once the partition has traffic).", |t| t.records_in),
        ("stream_bytes_in", "Bytes (stored batches) made durable in the partition since its log was opened (written once the partition has traffic).", |t| t.bytes_in),
        ("stream_records_out", "Records read from the partition (fetches, deliveries) since its log was opened (written once the partition has traffic).", |t| t.records_out),
        ("stream_bytes_out", "Bytes read from the partition since its log was opened (written once the partition has traffic).", |t| t.bytes_out),
    ];
    for (name, help, value) in TRAFFIC {
        text.family(name, help, Kind::Counter, |family| {
            for row in active() {
                family.sample(&row.labels, value(&row.traffic));
            }
        });
    }
    const RETENTION: [Counter; 2] = [
        (
            "stream_retention_deleted_segments",
            "Segments deleted by retention (written once non-zero).",
            |t| t.retention_segments_deleted,
        ),
        (
            "stream_retention_deleted_bytes",
            "Bytes deleted by retention (written once non-zero).",
            |t| t.retention_bytes_deleted,
        ),
    ];
    for (name, help, value) in RETENTION {
        text.family(name, help, Kind::Counter, |family| {
            for row in plain().filter(|r| value(&r.traffic) != 0) {
                family.sample(&row.labels, value(&row.traffic));
            }
        });
    }
    type Gauge = (&'static str, &'static str, fn(&PartitionRow) -> u64);
    const POSITIONS: [Gauge; 3] = [
        (
            "stream_high_watermark",
            "One past the last readable offset of the partition.",
            |r| r.high_watermark,
        ),
        (
            "stream_log_start_offset",
            "First offset still in the partition.",
            |r| r.log_start_offset,
        ),
        (
            "stream_log_bytes",
            "Bytes of the partition's segments on disk.",
            |r| r.size_bytes,
        ),
    ];
    for (name, help, value) in POSITIONS {
        text.family(name, help, Kind::Gauge, |family| {
            for row in plain() {
                family.sample(&row.labels, value(row));
            }
        });
    }
    text.family(
        "stream_write_failed",
        "1 when the partition refuses writes after an I/O error (only such partitions are written).",
        Kind::Gauge,
        |family| {
            for row in rows.iter().filter(|r| r.write_failed) {
                family.sample(&row.labels, 1u64);
            }
        },
    );
}

/// One group's position on one partition.
struct GroupRow {
    labels: LabelSet,
    offset: u64,
    lag: u64,
    lag_seconds: f64,
}

fn groups(engine: &Engine, streams: &[Arc<Stream>], text: &mut Exposition) {
    let now = now_ms();
    let mut rows = Vec::new();
    for entry in engine.committed.snapshot() {
        let Ok(found) = streams.binary_search_by(|s| s.config.name.as_str().cmp(&entry.stream))
        else {
            continue;
        };
        let stream = &streams[found];
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
            labels: LabelSet::new(&[
                ("group", entry.group.as_str()),
                ("stream", entry.stream.as_str()),
                ("partition", itoa::Buffer::new().format(entry.partition)),
            ]),
            offset: entry.offset,
            lag,
            lag_seconds: age_ms as f64 / 1000.0,
        });
    }
    text.family(
        "group_committed_offset",
        "The group's committed offset (the next record it will read).",
        Kind::Gauge,
        |family| {
            for row in &rows {
                family.sample(&row.labels, row.offset);
            }
        },
    );
    text.family(
        "group_lag_records",
        "Records between the group's committed offset and the high watermark.",
        Kind::Gauge,
        |family| {
            for row in &rows {
                family.sample(&row.labels, row.lag);
            }
        },
    );
    text.family("group_lag_seconds", "Age of the oldest record the group has not consumed (a lower bound, to within one index interval); 0 without lag.", Kind::Gauge, |family| {
        for row in &rows {
            family.sample(&row.labels, row.lag_seconds);
        }
    });
}

fn histogram(text: &mut Exposition, name: &str, help: &str, snapshot: &HistogramSnapshot) {
    text.histogram(name, help, snapshot.sum, snapshot.count, &snapshot.buckets);
}

fn storage(engine: &Engine, text: &mut Exposition) {
    histogram(
        text,
        "fsync_seconds",
        "Time each partition-log fsync took.",
        &FSYNC_SECONDS.snapshot(),
    );
    histogram(
        text,
        "group_commit_appends",
        "Appends written together by one group commit of a partition.",
        &GROUP_COMMIT_APPENDS.snapshot(),
    );
    histogram(
        text,
        "state_commit_seconds",
        "Time each state-store transaction took to commit durably.",
        &STATE_COMMIT_SECONDS.snapshot(),
    );
    let stats = engine.state_stats();
    text.family(
        "state_commits",
        "State-store transactions committed.",
        Kind::Counter,
        |family| family.value(stats.commits),
    );
    text.family(
        "state_writes",
        "Writes applied by state-store transactions.",
        Kind::Counter,
        |family| family.value(stats.writes),
    );
}

/// The keyspace (the Redis door's keys), zero until a client first uses it (reading it does
/// not load it).
fn keyspace(engine: &Engine, text: &mut Exposition) {
    let stats = engine
        .keyspace_if_open()
        .map(|keys| keys.stats())
        .unwrap_or_default();
    type Row = (&'static str, &'static str, Kind, u64);
    let rows: [Row; 6] = [
        ("keys", "Keys the keyspace holds (the Redis door's strings, lists, hashes, sets and sorted sets; a stream key is a stream).", Kind::Gauge, stats.keys),
        ("keys_expiring", "Keys with a deadline.", Kind::Gauge, stats.expiring),
        ("keys_bytes", "Bytes of keys and values the keyspace holds, as its bound counts them (each part with its bookkeeping).", Kind::Gauge, stats.bytes),
        ("keys_bytes_limit", "The keyspace's bound in bytes: writes past it are refused (Redis: -OOM).", Kind::Gauge, crate::keys::KEYSPACE_BYTES_MAX),
        ("keys_expired", "Keys deleted at their deadline since the keyspace opened.", Kind::Counter, stats.expired_keys),
        ("hash_fields_expired", "Hash fields deleted at their deadline since the keyspace opened (Redis 7.4 field expiry).", Kind::Counter, stats.expired_fields),
    ];
    for (name, help, kind, value) in rows {
        text.family(name, help, kind, |family| family.value(value));
    }
}

fn doors(engine: &Engine, text: &mut Exposition) {
    let metrics = engine.metrics();
    let traffic = Door::ALL.map(|door| {
        (
            LabelSet::new(&[("door", door.as_str())]),
            metrics.door(door).snapshot(),
        )
    });
    type Series = (
        &'static str,
        &'static str,
        Kind,
        fn(&super::DoorTraffic) -> u64,
    );
    const SERIES: [Series; 5] = [
        ("connections_opened", "Connections accepted by the front door.", Kind::Counter, |t| t.connections_opened),
        ("connections_open", "Connections open now.", Kind::Gauge, |t| t.connections_opened.saturating_sub(t.connections_closed)),
        ("connections_refused", "Connections turned away at connections_max.", Kind::Counter, |t| t.connections_refused),
        ("requests", "Requests read by the front door (HTTP requests, Kafka API calls, NATS operations, AMQP methods, Redis commands).", Kind::Counter, |t| t.requests),
        ("request_errors", "Requests answered with an error, or connections ended by one.", Kind::Counter, |t| t.errors),
    ];
    for (name, help, kind, value) in SERIES {
        text.family(name, help, kind, |family| {
            for (labels, door) in &traffic {
                family.sample(labels, value(door));
            }
        });
    }
    text.family(
        "http_requests",
        "HTTP API requests by route template, method and status class.",
        Kind::Counter,
        |family| {
            for (method, route, counters) in metrics.api_routes() {
                let labels =
                    LabelSet::new(&[("method", method.as_str()), ("route", route.as_str())]);
                for (status, count) in counters.snapshot() {
                    family.sample_with(&labels, ("status", status), count);
                }
            }
        },
    );
}

/// Firing alarms by kind (every kind written, so a sum shows 0) and the transitions a flood
/// of alarms put off to a later evaluation (`alerts::TRANSITIONS_PER_TICK_MAX`).
fn alarms(engine: &Engine, text: &mut Exposition) {
    let mut firing = [0u64; AlertKind::ALL.len()];
    for alert in engine.alerts(true) {
        if let Some(index) = AlertKind::ALL.iter().position(|kind| *kind == alert.kind) {
            firing[index] += 1;
        }
    }
    text.family(
        "alerts_firing",
        "Alarms firing now, by kind.",
        Kind::Gauge,
        |family| {
            for (kind, count) in AlertKind::ALL.iter().zip(firing) {
                family.sample(&LabelSet::new(&[("kind", kind.as_str())]), count);
            }
        },
    );
    text.family(
        "alert_transitions_deferred",
        "Alarm transitions put off to a later evaluation because one evaluation had more than its bound (a flood of alarms).",
        Kind::Counter,
        |family| family.value(engine.alert_transitions_deferred()),
    );
}

fn process_and_disk(engine: &Engine, text: &mut Exposition) {
    let usage = process::usage();
    if let Some(bytes) = usage.resident_bytes {
        text.family(
            "process_resident_memory_bytes",
            "Resident memory of the broker process.",
            Kind::Gauge,
            |family| family.value(bytes),
        );
    }
    if let Some(files) = usage.open_files {
        text.family(
            "process_open_fds",
            "File descriptors the broker process has open.",
            Kind::Gauge,
            |family| family.value(files),
        );
    }
    if let Some(seconds) = usage.cpu_seconds {
        text.family(
            "process_cpu_seconds",
            "User and system CPU time of the broker process.",
            Kind::Counter,
            |family| family.value(seconds),
        );
    }
    if let Some(bytes) = process::disk_free_bytes(engine.data_dir()) {
        text.family(
            "disk_free_bytes",
            "Bytes free for the broker in the file system of the data folder.",
            Kind::Gauge,
            |family| family.value(bytes),
        );
    }
}
