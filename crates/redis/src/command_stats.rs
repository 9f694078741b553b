//! Per-command statistics for INFO's `commandstats` and `errorstats` sections, what Redis
//! dashboards (redis_exporter, Grafana's Redis panels) graph: each command's calls, the
//! microseconds spent in them, the calls refused before running (`rejected_calls`: a wrong
//! number of arguments) and those answered with an error (`failed_calls`), and every error
//! reply counted by its code (`ERR`, `WRONGTYPE`, …). Counted for every command the door
//! runs, by name (a container's subcommands count under the container: `cmdstat_config`,
//! where redis-server writes `cmdstat_config|get`). An error answered once a command's wait
//! ends — a blocked XREADGROUP whose group is destroyed, a write the disk refused — counts
//! when it is answered (`session/replies.rs`), in `failed_calls`, errorstats and
//! `total_error_replies` alike.
//!
//! Each command's latency distribution too (`latency_histogram.rs`): INFO's `latencystats`
//! (p50, p99, p99.9) and LATENCY HISTOGRAM.
//!
//! `CONFIG RESETSTAT` zeroes them, and sets INFO's `# Stats` counters back to zero too: those
//! are the broker's door metrics (`/metrics`), which only grow, so the door keeps their
//! values at the reset and INFO answers the difference.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use omnibus_engine::metrics::DoorTraffic;

use crate::codec::Reply;
use crate::commands::table::COMMANDS;
use crate::latency_histogram::Histogram;

/// How many distinct error codes are kept (a code past it is counted under the last).
const ERROR_CODES_MAX: usize = 128;

#[derive(Default)]
struct Counters {
    calls: AtomicU64,
    micros: AtomicU64,
    rejected: AtomicU64,
    failed: AtomicU64,
}

/// One set of counters per command of the table, and the error codes seen.
pub(crate) struct CommandStats {
    commands: Vec<Counters>,
    /// Each command's latencies, at its table position.
    latencies: Vec<Histogram>,
    errors: Mutex<BTreeMap<String, u64>>,
    /// The door's traffic counters at the last CONFIG RESETSTAT.
    traffic_at_reset: Mutex<DoorTraffic>,
}

impl Default for CommandStats {
    fn default() -> CommandStats {
        CommandStats {
            commands: COMMANDS.iter().map(|_| Counters::default()).collect(),
            latencies: COMMANDS.iter().map(|_| Histogram::default()).collect(),
            errors: Mutex::default(),
            traffic_at_reset: Mutex::default(),
        }
    }
}

impl CommandStats {
    /// The command at `position` in the table ran for `elapsed`, answered with an error or
    /// not.
    pub(crate) fn ran(&self, position: usize, elapsed: Duration, failed: bool) {
        let counters = &self.commands[position];
        counters.calls.fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        counters.micros.fetch_add(micros, Ordering::Relaxed);
        if failed {
            counters.failed.fetch_add(1, Ordering::Relaxed);
        }
        self.latencies[position].record(elapsed);
    }

    /// The command at `position` was refused before it ran (its number of arguments).
    pub(crate) fn rejected(&self, position: usize) {
        self.commands[position]
            .rejected
            .fetch_add(1, Ordering::Relaxed);
    }

    /// The command at `position`, counted when it ran, answered with an error once its wait
    /// ended (a blocked XREADGROUP whose group was destroyed, a write the disk refused).
    pub(crate) fn failed_later(&self, position: usize) {
        self.commands[position]
            .failed
            .fetch_add(1, Ordering::Relaxed);
    }

    /// An error reply, by its code (the first word of the line).
    pub(crate) fn error(&self, line: &str) {
        let code = line.split(' ').next().unwrap_or_default();
        let mut errors = self.errors.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = errors.get_mut(code) {
            *count += 1;
        } else if errors.len() < ERROR_CODES_MAX {
            errors.insert(code.to_string(), 1);
        }
    }

    /// CONFIG RESETSTAT: every command's counters and the error codes to zero, and `traffic`
    /// (the door's counters now) the new zero of [`CommandStats::since_reset`].
    pub(crate) fn reset(&self, traffic: DoorTraffic) {
        for counters in &self.commands {
            for counter in [
                &counters.calls,
                &counters.micros,
                &counters.rejected,
                &counters.failed,
            ] {
                counter.store(0, Ordering::Relaxed);
            }
        }
        for histogram in &self.latencies {
            histogram.reset();
        }
        self.errors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        *self
            .traffic_at_reset
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = traffic;
    }

    /// The door's counters `now`, counted from the last CONFIG RESETSTAT.
    pub(crate) fn since_reset(&self, now: DoorTraffic) -> DoorTraffic {
        let at_reset = *self
            .traffic_at_reset
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        DoorTraffic {
            connections_opened: now
                .connections_opened
                .saturating_sub(at_reset.connections_opened),
            connections_closed: now
                .connections_closed
                .saturating_sub(at_reset.connections_closed),
            connections_refused: now
                .connections_refused
                .saturating_sub(at_reset.connections_refused),
            requests: now.requests.saturating_sub(at_reset.requests),
            errors: now.errors.saturating_sub(at_reset.errors),
        }
    }

    /// INFO's `# Commandstats` lines: the commands called or refused at least once.
    pub(crate) fn write_commands(&self, text: &mut String) {
        text.push_str("# Commandstats\r\n");
        for (command, counters) in COMMANDS.iter().zip(&self.commands) {
            let calls = counters.calls.load(Ordering::Relaxed);
            let rejected = counters.rejected.load(Ordering::Relaxed);
            if calls == 0 && rejected == 0 {
                continue;
            }
            let micros = counters.micros.load(Ordering::Relaxed);
            let per_call = if calls == 0 {
                0.0
            } else {
                micros as f64 / calls as f64
            };
            let _ = write!(
                text,
                "cmdstat_{}:calls={calls},usec={micros},usec_per_call={per_call:.2},\
                 rejected_calls={rejected},failed_calls={}\r\n",
                command.name,
                counters.failed.load(Ordering::Relaxed),
            );
        }
    }

    /// INFO's `# Latencystats` lines: p50, p99 and p99.9 in µs of each command called
    /// (Redis's default `latency-tracking-info-percentiles`).
    pub(crate) fn write_latencies(&self, text: &mut String) {
        text.push_str("# Latencystats\r\n");
        for (command, histogram) in COMMANDS.iter().zip(&self.latencies) {
            if histogram.calls() == 0 {
                continue;
            }
            let _ = write!(text, "latency_percentiles_usec_{}:", command.name);
            for (at, (name, percentile)) in [("50", 50.0), ("99", 99.0), ("99.9", 99.9)]
                .into_iter()
                .enumerate()
            {
                let micros = histogram.percentile(percentile);
                let comma = if at == 0 { "" } else { "," };
                let _ = write!(text, "{comma}p{name}={micros}.000");
            }
            text.push_str("\r\n");
        }
    }

    /// LATENCY HISTOGRAM's answer for the commands at `positions` (every command called,
    /// when `None`): per command, its calls and its cumulative `histogram_usec`.
    pub(crate) fn histograms(&self, positions: Option<&[usize]>) -> Reply {
        let all: Vec<usize> = (0..COMMANDS.len()).collect();
        let mut out = Vec::new();
        for &position in positions.unwrap_or(&all) {
            let histogram = &self.latencies[position];
            let calls = histogram.calls();
            if calls == 0 {
                continue;
            }
            let buckets = histogram
                .cumulative()
                .into_iter()
                .map(|(micros, count)| {
                    (Reply::Integer(micros as i64), Reply::Integer(count as i64))
                })
                .collect();
            let body = Reply::Map(vec![
                (Reply::text("calls"), Reply::Integer(calls as i64)),
                (Reply::text("histogram_usec"), Reply::Map(buckets)),
            ]);
            out.push((Reply::text(COMMANDS[position].name), body));
        }
        Reply::Map(out)
    }

    /// INFO's `# Errorstats` lines, by code.
    pub(crate) fn write_errors(&self, text: &mut String) {
        text.push_str("# Errorstats\r\n");
        let errors = self.errors.lock().unwrap_or_else(|p| p.into_inner());
        for (code, count) in errors.iter() {
            let _ = write!(text, "errorstat_{code}:count={count}\r\n");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::CommandStats;
    use crate::commands::table::position;
    use omnibus_engine::metrics::DoorTraffic;
    use std::time::Duration;

    #[test]
    fn commands_are_counted_by_name_and_errors_by_code() {
        let stats = CommandStats::default();
        let (get, set) = (position("get").unwrap(), position("set").unwrap());
        stats.ran(get, Duration::from_micros(3), false);
        stats.ran(get, Duration::from_micros(5), true);
        stats.rejected(set);
        stats.error("WRONGTYPE Operation against a key holding the wrong kind of value");
        stats.error("ERR wrong number of arguments for 'set' command");
        stats.error("ERR syntax error");
        let mut text = String::new();
        stats.write_commands(&mut text);
        assert_eq!(
            text,
            "# Commandstats\r\n\
             cmdstat_get:calls=2,usec=8,usec_per_call=4.00,rejected_calls=0,failed_calls=1\r\n\
             cmdstat_set:calls=0,usec=0,usec_per_call=0.00,rejected_calls=1,failed_calls=0\r\n"
        );
        let mut text = String::new();
        stats.write_errors(&mut text);
        assert_eq!(
            text,
            "# Errorstats\r\nerrorstat_ERR:count=2\r\nerrorstat_WRONGTYPE:count=1\r\n"
        );
    }

    #[test]
    fn resetstat_zeroes_the_commands_the_errors_and_the_traffic_seen_since() {
        let stats = CommandStats::default();
        let get = position("get").unwrap();
        stats.ran(get, Duration::from_micros(3), true);
        stats.error("ERR syntax error");
        let traffic = |requests, errors| DoorTraffic {
            connections_opened: 4,
            requests,
            errors,
            ..DoorTraffic::default()
        };
        assert_eq!(stats.since_reset(traffic(10, 2)), traffic(10, 2));
        stats.reset(traffic(10, 2));
        let (mut commands, mut errors) = (String::new(), String::new());
        stats.write_commands(&mut commands);
        stats.write_errors(&mut errors);
        assert_eq!(commands, "# Commandstats\r\n");
        assert_eq!(errors, "# Errorstats\r\n");
        let since = stats.since_reset(traffic(13, 2));
        assert_eq!(
            (since.requests, since.errors, since.connections_opened),
            (3, 0, 0)
        );
        stats.ran(get, Duration::from_micros(1), false);
        let mut commands = String::new();
        stats.write_commands(&mut commands);
        assert!(
            commands.contains("cmdstat_get:calls=1,usec=1,"),
            "{commands}"
        );
    }
}
