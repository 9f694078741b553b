//! `GET /v1/overview`: the dashboard's front page in one call — health, the data folder's
//! disk, and totals over streams, queues and groups.
//!
//! Counters, not rates: `streams.high_watermarks_total` only grows while records are
//! published (retention moves log starts, not high watermarks), so a client computes the
//! publish rate from two successive answers and `time_ms`. Queue rates come from the queues'
//! own one-minute windows (`rates.*.per_second`, summed). Cheap: no disk I/O beyond one
//! `statvfs` and the group list of the state store.

use axum::extract::State;
use axum::Json;
use omnibus_engine::DiskSpace;
use serde::Serialize;

use crate::error::ApiError;
use crate::router::AppState;

#[derive(Debug, Serialize)]
pub struct Overview {
    time_ms: i64,
    /// `ok` or `degraded`, as `/health` says, with the problems' kinds and reasons.
    health: &'static str,
    problems: Vec<String>,
    disk: DiskSpace,
    streams: StreamTotals,
    queues: QueueTotals,
    groups: usize,
}

#[derive(Debug, Default, Serialize)]
struct StreamTotals {
    count: usize,
    partitions: usize,
    high_watermarks_total: u64,
    log_bytes: u64,
    partitions_refusing_writes: usize,
}

#[derive(Debug, Default, Serialize)]
struct QueueTotals {
    count: usize,
    ready: u64,
    delayed: u64,
    leased: u64,
    dead_letter_depth: u64,
    enqueued_total: u64,
    enqueued_per_second: f64,
    delivered_per_second: f64,
    completed_per_second: f64,
    failed_per_second: f64,
    dead_lettered_per_second: f64,
}

/// `GET /v1/overview`
pub async fn overview(State(state): State<AppState>) -> Result<Json<Overview>, ApiError> {
    let engine = &state.engine;
    let health = engine.health();
    let mut streams = StreamTotals::default();
    for stream in engine.list_streams() {
        streams.count += 1;
        for partition in &stream.partition_info {
            streams.partitions += 1;
            streams.high_watermarks_total += partition.high_watermark;
            streams.log_bytes += partition.size_bytes;
            streams.partitions_refusing_writes += usize::from(partition.write_error.is_some());
        }
    }
    let mut queues = QueueTotals::default();
    for queue in engine.list_queues() {
        queues.count += 1;
        queues.ready += queue.ready;
        queues.delayed += queue.delayed;
        queues.leased += queue.leased;
        queues.dead_letter_depth += queue.dead_letter_depth;
        queues.enqueued_total += queue.enqueued_total;
        queues.enqueued_per_second += queue.rates.enqueued.per_second;
        queues.delivered_per_second += queue.rates.delivered.per_second;
        queues.completed_per_second += queue.rates.completed.per_second;
        queues.failed_per_second += queue.rates.failed.per_second;
        queues.dead_lettered_per_second += queue.rates.dead_lettered.per_second;
    }
    let groups = engine.list_groups().await?.len();
    Ok(Json(Overview {
        time_ms: now_ms(),
        health: if health.is_ok() { "ok" } else { "degraded" },
        problems: health
            .problems
            .iter()
            .map(|problem| format!("{}: {}", problem.kind.as_str(), problem.reason))
            .collect(),
        disk: engine.disk_space()?,
        streams,
        queues,
        groups,
    }))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as i64)
}
