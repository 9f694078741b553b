//! What was sent and acknowledged across cycles, and the checks after each restart.

use std::collections::{BTreeMap, HashMap};
use std::time::{SystemTime, UNIX_EPOCH};

use super::*;

/// What the test knows across cycles.
pub struct Ledger {
    /// Every value ever sent → who sent it, in which order, to which partition.
    pub sent: HashMap<String, SentInfo>,
    /// Every acknowledged position → its value. Only grows.
    pub acked: BTreeMap<(u32, u64), String>,
    /// Every acknowledged value → its position.
    pub acked_values: HashMap<String, (u32, u64)>,
    /// Each partition as read after the previous restart.
    pub observed: Vec<Vec<String>>,
}

#[derive(Clone, Copy)]
pub struct SentInfo {
    pub producer: usize,
    /// (cycle, sequence number): the order in which that producer sent its records.
    pub order: (usize, usize),
    pub partition: Option<u32>,
    pub acked: bool,
}

pub struct LoadSummary {
    pub records_sent: usize,
    pub records_acked: usize,
    pub requests: usize,
    /// Publishes answered 503 while a SIGTERMed broker drained (allowed, not acknowledged).
    pub turned_away: usize,
    pub failures: Vec<String>,
}

pub struct Verified {
    pub failures: Vec<String>,
    pub high_watermarks: Vec<usize>,
    pub unacked_present_this_cycle: usize,
}

impl Ledger {
    pub fn new() -> Ledger {
        Ledger {
            sent: HashMap::new(),
            acked: BTreeMap::new(),
            acked_values: HashMap::new(),
            observed: vec![Vec::new(); PARTITIONS as usize],
        }
    }

    pub fn record_load(&mut self, mode: StopMode, reports: &[ProducerReport]) -> LoadSummary {
        let mut summary = LoadSummary {
            records_sent: 0,
            records_acked: 0,
            requests: 0,
            turned_away: 0,
            failures: Vec::new(),
        };
        for report in reports {
            summary.records_sent += report.sent.len();
            summary.records_acked += report.acked.len();
            summary.requests += report.requests;
            for message in &report.unexpected {
                // While draining after SIGTERM a broker may turn requests away with 503.
                if mode == StopMode::Term && message.contains("status 503") {
                    summary.turned_away += 1;
                } else {
                    summary
                        .failures
                        .push(format!("unexpected answer to a publish: {message}"));
                }
            }
            for (seq, sent) in report.sent.iter().enumerate() {
                let info = SentInfo {
                    producer: report.producer,
                    order: parse_order(&sent.value).unwrap_or((usize::MAX, seq)),
                    partition: sent.partition,
                    acked: false,
                };
                if self.sent.insert(sent.value.clone(), info).is_some() {
                    summary.failures.push(format!(
                        "harness bug: value {} sent twice",
                        short(&sent.value)
                    ));
                }
            }
            for ack in &report.acked {
                let position = (ack.partition, ack.offset);
                let context = format!(
                    "acknowledged {} at partition {} offset {}",
                    short(&ack.value),
                    ack.partition,
                    ack.offset
                );
                if let Some(info) = self.sent.get_mut(&ack.value) {
                    info.acked = true;
                    if info.partition.is_some_and(|wanted| wanted != ack.partition) {
                        summary.failures.push(format!(
                            "{context}, but it was published to partition {}",
                            info.partition.unwrap_or_default()
                        ));
                    }
                }
                if ack.partition >= PARTITIONS {
                    summary
                        .failures
                        .push(format!("{context}: no such partition"));
                }
                if let Some(previous) = self.acked.insert(position, ack.value.clone()) {
                    summary.failures.push(format!(
                        "{context}, a position already acknowledged for {}",
                        short(&previous)
                    ));
                }
                if let Some((p, o)) = self.acked_values.insert(ack.value.clone(), position) {
                    summary.failures.push(format!(
                        "{context}, but it was already acknowledged at partition {p} offset {o}"
                    ));
                }
            }
        }
        summary
    }

    /// Checks the stream as read after a restart against everything known, then remembers it.
    pub fn verify(&mut self, logs: &[Vec<String>], cycle: usize) -> Verified {
        let mut failures = Vec::new();
        let mut unacked_present_this_cycle = 0;

        // (1) every acknowledged record is where its acknowledgement said. Summarized per
        // partition (a lost tail can be thousands of records), with the first few in detail.
        let mut lost_total = 0usize;
        let mut lost: BTreeMap<u32, Vec<(u64, &String)>> = BTreeMap::new();
        let mut replaced: BTreeMap<u32, Vec<(u64, &String, &String)>> = BTreeMap::new();
        for (&(partition, offset), value) in &self.acked {
            let log = &logs[partition as usize];
            match usize::try_from(offset)
                .ok()
                .and_then(|index| log.get(index))
            {
                Some(found) if found == value => {}
                Some(found) => replaced
                    .entry(partition)
                    .or_default()
                    .push((offset, value, found)),
                None => {
                    lost_total += 1;
                    lost.entry(partition).or_default().push((offset, value));
                }
            }
        }
        if lost_total > 0 {
            failures.push(format!(
                "{lost_total} ACKNOWLEDGED RECORD(S) LOST after the restart"
            ));
        }
        for (partition, records) in &lost {
            let (first, last) = (records[0].0, records[records.len() - 1].0);
            failures.push(format!(
                "partition {partition}: {} acknowledged record(s) lost, offsets {first}..={last}; \
                 the partition now has {} records",
                records.len(),
                logs[*partition as usize].len()
            ));
            for (offset, value) in records.iter().take(DETAILS_PER_PARTITION) {
                failures.push(format!(
                    "ACKNOWLEDGED RECORD LOST: {} at partition {partition} offset {offset}{}",
                    short(value),
                    self.whereabouts(logs, value)
                ));
            }
        }
        for (partition, records) in &replaced {
            failures.push(format!(
                "partition {partition}: {} acknowledged record(s) replaced by other values",
                records.len()
            ));
            for (offset, value, found) in records.iter().take(DETAILS_PER_PARTITION) {
                failures.push(format!(
                    "ACKNOWLEDGED RECORD REPLACED: partition {partition} offset {offset} should \
                     hold {} but holds {}{}",
                    short(value),
                    short(found),
                    self.whereabouts(logs, value)
                ));
            }
        }

        // (2) no duplicates, (4) per-producer order, (5) only values we sent, where we sent them.
        let mut seen: HashMap<&str, (u32, usize)> = HashMap::new();
        for (partition, log) in logs.iter().enumerate() {
            let partition = partition as u32;
            let mut last_order: HashMap<usize, ((usize, usize), usize)> = HashMap::new();
            for (offset, value) in log.iter().enumerate() {
                if let Some((p, o)) = seen.insert(value.as_str(), (partition, offset)) {
                    failures.push(format!(
                        "DUPLICATE: {} (acknowledged: {}) at partition {p} offset {o} and again \
                         at partition {partition} offset {offset}",
                        short(value),
                        self.sent.get(value).is_some_and(|info| info.acked)
                    ));
                }
                let Some(info) = self.sent.get(value) else {
                    failures.push(format!(
                        "UNKNOWN VALUE at partition {partition} offset {offset}: {} was never sent",
                        short(value)
                    ));
                    continue;
                };
                if info.order.0 == cycle && !info.acked {
                    unacked_present_this_cycle += 1;
                }
                if info.partition.is_some_and(|wanted| wanted != partition) {
                    failures.push(format!(
                        "WRONG PARTITION: {} was published to partition {} but is at partition \
                         {partition} offset {offset}",
                        short(value),
                        info.partition.unwrap_or_default()
                    ));
                }
                if let Some((previous, previous_offset)) =
                    last_order.insert(info.producer, (info.order, offset))
                {
                    if previous >= info.order {
                        failures.push(format!(
                            "OUT OF ORDER in partition {partition}: producer {} sent \
                             (cycle {}, seq {}) before (cycle {}, seq {}), but they are at \
                             offsets {offset} and {previous_offset}",
                            info.producer, info.order.0, info.order.1, previous.0, previous.1
                        ));
                    }
                }
            }
        }

        // (6) what readers saw after the previous restart is still there, unchanged.
        for (partition, (before, now)) in self.observed.iter().zip(logs).enumerate() {
            if now.len() < before.len() {
                failures.push(format!(
                    "PARTITION SHRANK: partition {partition} had {} records after the previous \
                     restart and has {} now",
                    before.len(),
                    now.len()
                ));
            }
            if let Some(offset) = before.iter().zip(now).position(|(a, b)| a != b) {
                failures.push(format!(
                    "RECORD REWRITTEN: partition {partition} offset {offset} was {} after the \
                     previous restart and is {} now",
                    short(&before[offset]),
                    short(&now[offset])
                ));
            }
        }

        self.observed = logs.to_vec();
        Verified {
            failures,
            high_watermarks: logs.iter().map(Vec::len).collect(),
            unacked_present_this_cycle,
        }
    }

    /// Where else a value turned up, for a lost or replaced record's report.
    pub fn whereabouts(&self, logs: &[Vec<String>], value: &str) -> String {
        let places: Vec<String> = logs
            .iter()
            .enumerate()
            .flat_map(|(p, log)| {
                log.iter()
                    .enumerate()
                    .filter(move |(_, v)| v.as_str() == value)
                    .map(move |(o, _)| format!("partition {p} offset {o}"))
            })
            .collect();
        if places.is_empty() {
            " (not found anywhere)".to_owned()
        } else {
            format!(" (found at {})", places.join(", "))
        }
    }
}

/// `p{producer}-c{cycle}-n{seq}|padding` → (cycle, seq).
pub fn parse_order(value: &str) -> Option<(usize, usize)> {
    let id = value.split('|').next()?;
    let mut parts = id.split('-');
    let _producer = parts.next()?;
    let cycle = parts.next()?.strip_prefix('c')?.parse().ok()?;
    let seq = parts.next()?.strip_prefix('n')?.parse().ok()?;
    Some((cycle, seq))
}

/// A value without its padding, for messages.
pub fn short(value: &str) -> String {
    match value.split_once('|') {
        Some((id, padding)) => format!("{id:?} (+{} padding bytes)", padding.len()),
        None => format!("{:?}", value.chars().take(80).collect::<String>()),
    }
}

pub fn seed() -> u64 {
    match std::env::var("OMNIBUS_CRASH_SEED") {
        Ok(text) => text
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("OMNIBUS_CRASH_SEED={text:?} is not a u64")),
        Err(_) => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|elapsed| elapsed.as_nanos() as u64)
            .unwrap_or(0x5EED),
    }
}

#[test]
pub fn value_order_parses() {
    assert_eq!(parse_order("p3-c12-n456|xxxx"), Some((12, 456)));
    assert_eq!(parse_order("p0-c0-n0|"), Some((0, 0)));
    assert_eq!(parse_order("garbage"), None);
    assert_eq!(short("p1-c2-n3|aaa"), "\"p1-c2-n3\" (+3 padding bytes)");
}
