//! What the evaluator looks at, gathered from the engine's memory: queues' counts and
//! failures, partitions' high watermarks and failures, acked consumers' lag, the data
//! folder's free space. The one
//! read beyond memory is the state store's table of committed group offsets (a read
//! transaction over a few pages, no log read).
//!
//! Ages need the time a record arrived, which memory does not hold. Each evaluation samples
//! every watched partition's end offset with the time; a record at offset `o` arrived no
//! later than the first sample whose end passed `o`. So an age is exact to one evaluation
//! interval, and needs no read of the record. Each partition keeps at most
//! [`SAMPLES_MAX`] samples: when full, every other one is dropped, so the samples cover a
//! span that doubles instead of forgetting the old records an age is about.

use std::collections::{BTreeMap, HashMap, VecDeque};

use super::evaluator::Observation;
use super::{AlertKind, LagUnit};
use crate::engine::Engine;
use crate::error::{EngineError, Result};
use crate::groups;
use crate::health::HealthProblemKind;

/// Samples kept per watched partition or queue.
pub const SAMPLES_MAX: usize = 512;
/// Committed offsets looked at per evaluation; more are skipped (and logged).
pub const GROUP_OFFSETS_MAX: usize = 100_000;

/// End offsets of one partition over time: `(end, first seen at ms)`, ends increasing.
#[derive(Debug, Default)]
pub struct EndSamples {
    samples: VecDeque<(u64, i64)>,
}

impl EndSamples {
    /// Notes the partition's end at `now_ms` (only when it moved).
    pub fn record(&mut self, end: u64, now_ms: i64) {
        if self.samples.back().is_some_and(|(last, _)| *last >= end) {
            return;
        }
        if self.samples.len() >= SAMPLES_MAX {
            let kept: VecDeque<(u64, i64)> = self.samples.iter().copied().step_by(2).collect();
            self.samples = kept;
        }
        self.samples.push_back((end, now_ms));
    }

    /// Seconds since the record at `offset` arrived, as far as the samples tell; 0 when it
    /// has not arrived.
    pub fn age_seconds(&self, offset: u64, now_ms: i64) -> f64 {
        let index = self.samples.partition_point(|(end, _)| *end <= offset);
        match self.samples.get(index) {
            Some((_, arrived_ms)) => (now_ms.saturating_sub(*arrived_ms).max(0) as f64) / 1000.0,
            None => 0.0,
        }
    }
}

/// The samples kept between evaluations.
#[derive(Debug, Default)]
pub struct Observer {
    partitions: HashMap<(String, u32), EndSamples>,
    queues: HashMap<String, EndSamples>,
}

impl Observer {
    /// Every observation of the engine at `now_ms`, and the kinds that could not be
    /// measured this time (a failed state store, a failed statvfs): their alarms stay as
    /// they are rather than resolve. Blocking (a state-store read, a statvfs).
    pub fn observe(&mut self, engine: &Engine, now_ms: i64) -> (Vec<Observation>, Vec<AlertKind>) {
        let mut observations = Vec::new();
        let mut unobserved = Vec::new();
        self.observe_queues(engine, now_ms, &mut observations);
        if let Err(error) = self.observe_groups(engine, now_ms, &mut observations) {
            tracing::warn!("alarms cannot read committed offsets: {error}");
            unobserved.push(AlertKind::ConsumerLag);
        }
        observe_acked_consumers(engine, now_ms, &mut observations);
        if !observe_disk(engine, &mut observations) {
            unobserved.push(AlertKind::DiskFree);
        }
        observe_poisoned(engine, &mut observations);
        observe_keyspace(engine, &mut observations);
        (observations, unobserved)
    }

    fn observe_queues(&mut self, engine: &Engine, now_ms: i64, out: &mut Vec<Observation>) {
        let mut watched = HashMap::new();
        for info in engine.list_queues() {
            let name = info.config.name.clone();
            out.push(observation(
                AlertKind::DlqDepth,
                None,
                &name,
                info.dead_letter_depth as f64,
            ));
            let mut samples = self.queues.remove(&name).unwrap_or_default();
            samples.record(info.enqueued_total, now_ms);
            let age = if info.ready > 0 {
                samples.age_seconds(info.ack_floor, now_ms)
            } else {
                0.0
            };
            out.push(observation(AlertKind::QueueOldestAge, None, &name, age));
            if let Some(reason) = &info.failure {
                let mut poisoned = observation(AlertKind::IoPoisoned, None, &name, 1.0);
                poisoned.detail = Some(reason.clone());
                out.push(poisoned);
            }
            watched.insert(name, samples);
        }
        // Deleted queues' samples go with them.
        self.queues = watched;
    }

    fn observe_groups(
        &mut self,
        engine: &Engine,
        now_ms: i64,
        out: &mut Vec<Observation>,
    ) -> Result<()> {
        let stored = engine.state.scan_prefix(groups::TABLE, "")?;
        if stored.len() > GROUP_OFFSETS_MAX {
            tracing::warn!(
                offsets = stored.len(),
                "alarms look at the first {GROUP_OFFSETS_MAX} committed offsets only"
            );
        }
        // (stream, group) → (most records behind, oldest unconsumed age) over its partitions.
        let mut lags: BTreeMap<(String, String), (u64, f64)> = BTreeMap::new();
        let mut watched = HashMap::new();
        let streams = engine.read_streams();
        for (key, value) in stored.iter().take(GROUP_OFFSETS_MAX) {
            let Some((group, stream_name, partition)) = groups::parse_key(key) else {
                continue;
            };
            let Some(stream) = streams.get(stream_name) else {
                continue;
            };
            let Some(log) = stream.partitions.get(partition as usize) else {
                continue;
            };
            let stored: groups::StoredOffset = serde_json::from_slice(value)
                .map_err(|e| EngineError::Internal(format!("stored offset {key:?}: {e}")))?;
            let sample_key = (stream_name.to_string(), partition);
            let mut samples = self
                .partitions
                .remove(&sample_key)
                .or_else(|| watched.remove(&sample_key))
                .unwrap_or_default();
            let end = log.high_watermark();
            samples.record(end, now_ms);
            let from = stored.offset.max(log.log_start_offset());
            let records = end.saturating_sub(from);
            let age = if records > 0 {
                samples.age_seconds(from, now_ms)
            } else {
                0.0
            };
            watched.insert(sample_key, samples);
            let entry = lags
                .entry((stream_name.to_string(), group.to_string()))
                .or_default();
            entry.0 = entry.0.max(records);
            entry.1 = entry.1.max(age);
        }
        drop(streams);
        // Partitions no group watches any more drop their samples.
        self.partitions = watched;
        for ((stream, group), (records, age)) in lags {
            let target = format!("{stream}/{group}");
            out.push(observation(
                AlertKind::ConsumerLag,
                Some(LagUnit::Records),
                &target,
                records as f64,
            ));
            out.push(observation(
                AlertKind::ConsumerLag,
                Some(LagUnit::Seconds),
                &target,
                age,
            ));
        }
        Ok(())
    }
}

/// Acked consumers of streams (JetStream consumers, Redis consumer groups): their lag in
/// records not yet acknowledged and the age of the oldest, as `/metrics` reports them
/// (`consumers/lag.rs`), under the target `<stream>/<consumer>`. Memory only.
fn observe_acked_consumers(engine: &Engine, now_ms: i64, out: &mut Vec<Observation>) {
    for consumer in engine.consumer_list() {
        let lag = consumer.lag(now_ms);
        let spec = &consumer.stored.spec;
        let target = format!("{}/{}", spec.stream, spec.name);
        out.push(observation(
            AlertKind::ConsumerLag,
            Some(LagUnit::Records),
            &target,
            lag.records as f64,
        ));
        out.push(observation(
            AlertKind::ConsumerLag,
            Some(LagUnit::Seconds),
            &target,
            lag.seconds,
        ));
    }
}

fn observation(kind: AlertKind, unit: Option<LagUnit>, target: &str, value: f64) -> Observation {
    Observation {
        kind,
        unit,
        target: target.to_string(),
        value,
        detail: None,
    }
}

/// False when the disk could not be measured.
fn observe_disk(engine: &Engine, out: &mut Vec<Observation>) -> bool {
    let data_dir = engine.data_dir();
    match engine.config.alerts.disk_probe.measure(data_dir) {
        Ok((available, total)) if total > 0 => {
            let percent = available as f64 * 100.0 / total as f64;
            // Two decimals: enough for a threshold, and stable between evaluations.
            let percent = (percent * 100.0).round() / 100.0;
            out.push(observation(
                AlertKind::DiskFree,
                None,
                &data_dir.display().to_string(),
                percent,
            ));
            true
        }
        Ok(_) => false,
        Err(error) => {
            tracing::warn!("alarms cannot measure free disk: {error}");
            false
        }
    }
}

/// How much of the keyspace's byte bound is in use, once a client has used keys (a broker
/// whose clients never do has nothing to watch).
fn observe_keyspace(engine: &Engine, out: &mut Vec<Observation>) {
    if let Some(keys) = engine.keyspace_if_open() {
        let used = keys.stats().bytes as f64 * 100.0 / crate::keys::KEYSPACE_BYTES_MAX as f64;
        // Two decimals, as the free disk.
        let used = (used * 100.0).round() / 100.0;
        out.push(observation(AlertKind::KeyspaceUsed, None, "keyspace", used));
    }
}

/// Partitions refusing writes (`<stream>/<partition>`) and a failed state store
/// (`state_store`); queues refusing work are observed with the queues.
fn observe_poisoned(engine: &Engine, out: &mut Vec<Observation>) {
    for problem in engine.health().problems {
        let target = match (problem.kind, &problem.stream, problem.partition) {
            (HealthProblemKind::PartitionRefusingWrites, Some(stream), Some(partition)) => {
                format!("{stream}/{partition}")
            }
            (HealthProblemKind::StateStoreFailed, _, _) => "state_store".to_string(),
            _ => continue,
        };
        let mut poisoned = observation(AlertKind::IoPoisoned, None, &target, 1.0);
        poisoned.detail = Some(problem.reason);
        out.push(poisoned);
    }
}
