//! `omnibus-bench report FILE.jsonl --out DIR`: the median of each setting's runs and their
//! spread, as a Markdown table (`DIR/report.md`) and a chart (`DIR/chart.svg`).
//!
//! A setting is (system, workload with its mode, message size); its rows keep the order in
//! which the file first mentions them, so a report reads in the order the matrix ran.

use std::path::Path;

use crate::error::{BenchError, Result};
use crate::record::RunRecord;
use crate::stats::{median, spread};

/// The runs of one setting, summarised.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub system: String,
    /// The workload with its mode: `jobs (batched)`.
    pub workload: String,
    pub size_bytes: usize,
    pub runs: usize,
    pub per_second_median: f64,
    pub per_second_min: f64,
    pub per_second_max: f64,
    pub megabytes_per_second_median: f64,
    pub p50_micros_median: Option<f64>,
    pub p99_micros_median: Option<f64>,
    pub p999_micros_median: Option<f64>,
    /// The broker's CPU per operation, median of the runs that recorded it.
    pub broker_cpu_micros_median: Option<f64>,
    pub durability: String,
    pub note: Option<String>,
}

/// Parses a JSONL file's text; blank lines are skipped, a bad line is an error naming it.
pub fn parse_records(text: &str) -> Result<Vec<RunRecord>> {
    let mut records = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let record = serde_json::from_str(line).map_err(|error| {
            BenchError::Settings(format!("line {} is not a run record: {error}", index + 1))
        })?;
        records.push(record);
    }
    Ok(records)
}

pub fn summarize(records: &[RunRecord]) -> Vec<Summary> {
    let mut keys: Vec<(String, String, usize)> = Vec::new();
    for record in records {
        let key = (record.system.clone(), record.label(), record.size_bytes);
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    keys.into_iter()
        .map(|(system, workload, size_bytes)| {
            let runs: Vec<&RunRecord> = records
                .iter()
                .filter(|record| {
                    record.system == system
                        && record.label() == workload
                        && record.size_bytes == size_bytes
                })
                .collect();
            summarize_runs(system, workload, size_bytes, &runs)
        })
        .collect()
}

fn summarize_runs(
    system: String,
    workload: String,
    size_bytes: usize,
    runs: &[&RunRecord],
) -> Summary {
    let values = |field: fn(&RunRecord) -> Option<f64>| -> Vec<f64> {
        runs.iter().filter_map(|record| field(record)).collect()
    };
    let per_second = values(|record| Some(record.per_second));
    let (per_second_min, per_second_max) = spread(&per_second).unwrap_or((0.0, 0.0));
    let last = runs.last();
    Summary {
        system,
        workload,
        size_bytes,
        runs: runs.len(),
        per_second_median: median(&per_second).unwrap_or(0.0),
        per_second_min,
        per_second_max,
        megabytes_per_second_median: median(&values(|record| Some(record.megabytes_per_second)))
            .unwrap_or(0.0),
        p50_micros_median: median(&values(|record| record.p50_micros.map(|v| v as f64))),
        p99_micros_median: median(&values(|record| record.p99_micros.map(|v| v as f64))),
        p999_micros_median: median(&values(|record| record.p999_micros.map(|v| v as f64))),
        broker_cpu_micros_median: median(&values(|record| record.broker_cpu_micros_per_op)),
        durability: last
            .map(|record| record.durability.clone())
            .unwrap_or_default(),
        note: last.and_then(|record| record.note.clone()),
    }
}

/// Thousands separated by commas: 12345.6 → "12,346".
pub fn group_digits(value: f64) -> String {
    let digits = format!("{:.0}", value.abs());
    let mut grouped = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    if value < -0.5 {
        grouped.insert(0, '-');
    }
    grouped
}

fn micros(value: Option<f64>) -> String {
    value.map(group_digits).unwrap_or_else(|| "–".to_string())
}

/// Microseconds with two decimals, or a dash.
fn cpu_micros(value: Option<f64>) -> String {
    value
        .map(|micros| format!("{micros:.2}"))
        .unwrap_or_else(|| "–".to_string())
}

pub fn markdown(summaries: &[Summary]) -> String {
    let mut text = String::from(
        "| system | workload | size | runs | median /s | min–max /s | MB/s | p50 µs | p99 µs | p99.9 µs | broker µs CPU/op | durability |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for summary in summaries {
        let mut durability = summary.durability.clone();
        if let Some(note) = &summary.note {
            durability.push_str(&format!("; {note}"));
        }
        text.push_str(&format!(
            "| {} | {} | {} B | {} | **{}** | {}–{} | {:.1} | {} | {} | {} | {} | {} |\n",
            summary.system,
            summary.workload,
            summary.size_bytes,
            summary.runs,
            group_digits(summary.per_second_median),
            group_digits(summary.per_second_min),
            group_digits(summary.per_second_max),
            summary.megabytes_per_second_median,
            micros(summary.p50_micros_median),
            micros(summary.p99_micros_median),
            micros(summary.p999_micros_median),
            cpu_micros(summary.broker_cpu_micros_median),
            durability.replace('|', "/"),
        ));
    }
    text
}

/// Reads `input`, writes `out/report.md` and `out/chart.svg`; returns the Markdown.
pub fn write_report(input: &Path, out: &Path) -> Result<String> {
    let text = std::fs::read_to_string(input)?;
    let summaries = summarize(&parse_records(&text)?);
    let table = markdown(&summaries);
    std::fs::create_dir_all(out)?;
    let document = format!(
        "# Benchmark report\n\nFrom `{}`: the median of each setting's runs, and the spread \
         (min–max) of its throughput. Latency columns are medians of the runs' percentiles; the \
         broker's CPU per operation (user + system, from /proc, setup included) is the median of \
         the runs that recorded it.\n\n\
         {table}\n![chart](chart.svg)\n",
        input.display()
    );
    std::fs::write(out.join("report.md"), document)?;
    std::fs::write(out.join("chart.svg"), crate::chart::svg(&summaries))?;
    Ok(table)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Three runs of Omnibus jobs and two of Redis publish, as `omnibus-bench run` writes them.
    pub(crate) const FIXED_JSONL: &str = r#"{"system":"omnibus-http","workload":"jobs","mode":"batched","size_bytes":100,"run":1,"operations":10000,"seconds":1.0,"per_second":10000.0,"megabytes_per_second":1.0,"durability":"fsync per ack","clients":4,"in_flight":32,"finished_at_ms":1}
{"system":"omnibus-http","workload":"jobs","mode":"batched","size_bytes":100,"run":2,"operations":10000,"seconds":0.5,"per_second":20000.0,"megabytes_per_second":2.0,"durability":"fsync per ack","clients":4,"in_flight":32,"finished_at_ms":2}

{"system":"omnibus-http","workload":"jobs","mode":"batched","size_bytes":100,"run":3,"operations":10000,"seconds":0.8,"per_second":12500.0,"megabytes_per_second":1.25,"durability":"fsync per ack","clients":4,"in_flight":32,"finished_at_ms":3}
{"system":"redis","workload":"publish","size_bytes":1024,"run":1,"operations":5000,"seconds":1.0,"per_second":5000.0,"megabytes_per_second":5.12,"p50_micros":100,"p99_micros":900,"p999_micros":1500,"max_micros":2000,"durability":"AOF everysec","clients":1,"in_flight":32,"finished_at_ms":4}
{"system":"redis","workload":"publish","size_bytes":1024,"run":2,"operations":5000,"seconds":0.5,"per_second":10000.0,"megabytes_per_second":10.24,"p50_micros":200,"p99_micros":1100,"p999_micros":1700,"max_micros":2500,"durability":"AOF everysec","clients":1,"in_flight":32,"finished_at_ms":5,"broker_cpu_micros_per_op":2.5}
"#;

    #[test]
    fn the_report_of_a_fixed_file_is_this_table() {
        let summaries = summarize(&parse_records(FIXED_JSONL).expect("valid records"));
        assert_eq!(
            markdown(&summaries),
            "| system | workload | size | runs | median /s | min–max /s | MB/s | p50 µs | p99 µs | p99.9 µs | broker µs CPU/op | durability |\n\
             |---|---|---|---|---|---|---|---|---|---|---|---|\n\
             | omnibus-http | jobs (batched) | 100 B | 3 | **12,500** | 10,000–20,000 | 1.2 | – | – | – | – | fsync per ack |\n\
             | redis | publish | 1024 B | 2 | **7,500** | 5,000–10,000 | 7.7 | 150 | 1,000 | 1,600 | 2.50 | AOF everysec |\n"
        );
    }

    #[test]
    fn a_line_that_is_not_a_record_is_named() {
        let error = parse_records("{}\n").expect_err("an empty object is not a record");
        assert!(error.to_string().contains("line 1"), "{error}");
    }

    #[test]
    fn digits_are_grouped_by_thousands() {
        assert_eq!(group_digits(0.0), "0");
        assert_eq!(group_digits(999.4), "999");
        assert_eq!(group_digits(1_234_567.0), "1,234,567");
    }
}
