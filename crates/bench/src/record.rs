//! One run's result: printed as a human line and appended as a JSON line. The JSON field names
//! are a file format that `omnibus-bench report` reads back; add fields, never rename them.

use serde::{Deserialize, Serialize};

use crate::load::Measurement;
use crate::settings::{Client, Settings, Workload};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub system: String,
    pub workload: String,
    /// Jobs workers' mode (`one`, `batched`, `one-pipelined, prefetch 4`…), or a rabbitmq consumer's prefetch and acks;
    /// absent for other workloads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    pub size_bytes: usize,
    /// 1-based index of this run among the repetitions of one setting.
    pub run: usize,
    pub operations: u64,
    pub seconds: f64,
    pub per_second: f64,
    pub megabytes_per_second: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p50_micros: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p99_micros: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p999_micros: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_micros: Option<u64>,
    pub durability: String,
    /// Producers, or workers for jobs.
    pub clients: usize,
    pub in_flight: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// When the run finished, in milliseconds since the Unix epoch.
    pub finished_at_ms: u64,
    /// Microseconds of the broker's CPU (user + system, every thread) per operation, when
    /// `--broker-pid` named it; the run's setup (a fill, an enqueue) is included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broker_cpu_micros_per_op: Option<f64>,
}

impl RunRecord {
    pub fn new(settings: &Settings, run: usize, measurement: &Measurement) -> RunRecord {
        let per_second = measurement.per_second();
        let percentile = |quantile: f64| {
            measurement
                .latency
                .as_ref()
                .filter(|histogram| !histogram.is_empty())
                .map(|histogram| histogram.value_at_quantile(quantile))
        };
        let jobs = settings.workload == Workload::Jobs;
        // Only the rabbitmq driver's consumers take --prefetch and --acks.
        let consume_with_prefetch = settings.workload == Workload::Consume
            && settings.system == crate::settings::System::Rabbitmq;
        RunRecord {
            system: settings.label(),
            workload: settings.workload.name().to_string(),
            mode: if jobs && settings.mode == crate::settings::JobMode::OnePipelined {
                Some(format!(
                    "{}, prefetch {}",
                    settings.mode.name(),
                    settings.worker_prefetch
                ))
            } else if jobs {
                Some(settings.mode.name().to_string())
            } else if Client::applies_to(settings.system, settings.workload) {
                Some(settings.client.describe(settings.system).to_string())
            } else if consume_with_prefetch {
                Some(format!(
                    "prefetch {}, ack {}",
                    settings.prefetch,
                    settings.acks.name()
                ))
            } else {
                None
            },
            size_bytes: settings.size,
            run,
            operations: measurement.operations,
            seconds: measurement.elapsed.as_secs_f64(),
            per_second,
            megabytes_per_second: per_second * settings.size as f64 / 1_000_000.0,
            p50_micros: percentile(0.50),
            p99_micros: percentile(0.99),
            p999_micros: percentile(0.999),
            max_micros: measurement
                .latency
                .as_ref()
                .filter(|histogram| !histogram.is_empty())
                .map(|histogram| histogram.max()),
            durability: settings.durability.clone(),
            clients: if jobs {
                settings.workers
            } else {
                settings.producers
            },
            in_flight: settings.in_flight,
            note: measurement.note.clone(),
            finished_at_ms: crate::load::now_micros() / 1_000,
            broker_cpu_micros_per_op: None,
        }
    }

    /// Records `seconds` of broker CPU spent over the run.
    pub fn set_broker_cpu(&mut self, seconds: f64) {
        if self.operations > 0 && seconds >= 0.0 {
            self.broker_cpu_micros_per_op = Some(seconds * 1e6 / self.operations as f64);
        }
    }

    /// The workload with its mode, as reports label it: `jobs (batched)`.
    pub fn label(&self) -> String {
        match &self.mode {
            Some(mode) => format!("{} ({mode})", self.workload),
            None => self.workload.clone(),
        }
    }

    /// One line for a person reading the terminal.
    pub fn human_line(&self) -> String {
        let mut line = format!(
            "{:<13} {:<18} {:>6} B  run {}  {:>12.0}/s  {:>8.2} MB/s  {} in {:.2} s",
            self.system,
            self.label(),
            self.size_bytes,
            self.run,
            self.per_second,
            self.megabytes_per_second,
            self.operations,
            self.seconds,
        );
        if let (Some(p50), Some(p99), Some(p999), Some(max)) = (
            self.p50_micros,
            self.p99_micros,
            self.p999_micros,
            self.max_micros,
        ) {
            line.push_str(&format!(
                "  p50 {p50} µs  p99 {p99} µs  p99.9 {p999} µs  max {max} µs"
            ));
        }
        if let Some(cpu) = self.broker_cpu_micros_per_op {
            line.push_str(&format!("  broker {cpu:.2} µs CPU/op"));
        }
        line.push_str(&format!("  [{}]", self.durability));
        if let Some(note) = &self.note {
            line.push_str(&format!("  ({note})"));
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::load::{histogram, record};
    use crate::settings::{JobMode, System};

    #[test]
    fn a_record_reads_back_from_its_json_line() {
        let mut latencies = histogram();
        for micros in 1..=1_000u64 {
            record(&mut latencies, Duration::from_micros(micros));
        }
        let mut settings = Settings::new(System::Redis, Workload::Jobs);
        settings.mode = JobMode::Batched;
        settings.durability = "AOF everysec".to_string();
        let measurement = Measurement {
            operations: 5_000,
            elapsed: Duration::from_millis(500),
            latency: Some(latencies),
            note: None,
        };
        let written = RunRecord::new(&settings, 2, &measurement);
        assert_eq!(written.per_second, 10_000.0);
        assert_eq!(written.mode.as_deref(), Some("batched"));
        assert_eq!(written.label(), "jobs (batched)");
        // HDR values are within 0.1 % of the recorded ones.
        assert!(
            (499..=501).contains(&written.p50_micros.unwrap_or(0)),
            "{written:?}"
        );
        assert!(
            (989..=991).contains(&written.p99_micros.unwrap_or(0)),
            "{written:?}"
        );
        let line = serde_json::to_string(&written).expect("serializes");
        assert!(
            !line.contains("broker_cpu"),
            "absent unless measured: {line}"
        );
        let read: RunRecord = serde_json::from_str(&line).expect("parses");
        assert_eq!(read, written);

        // 50 ms of broker CPU over 5,000 operations: 10 µs each.
        let mut measured = written.clone();
        measured.set_broker_cpu(0.05);
        assert_eq!(measured.broker_cpu_micros_per_op, Some(10.0));
        assert!(measured.human_line().contains("broker 10.00 µs CPU/op"));
        let line = serde_json::to_string(&measured).expect("serializes");
        let read: RunRecord = serde_json::from_str(&line).expect("parses");
        assert_eq!(read, measured);
    }
}
