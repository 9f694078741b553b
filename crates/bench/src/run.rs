//! `omnibus-bench run`: repeats one setting `--runs` times, each run with a progress bar,
//! its human line on stdout and its JSON line appended to `--json`.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::broker_cpu::cpu_seconds;
use crate::drivers::{self, Context};
use crate::error::{BenchError, Result};
use crate::record::RunRecord;
use crate::settings::Settings;

/// Repeats a run and records each result; a workload the system does not support is one
/// line on stdout and no record.
pub async fn run_all(
    settings: &Settings,
    runs: usize,
    json: Option<&PathBuf>,
) -> Result<Vec<RunRecord>> {
    let mut records = Vec::new();
    for run in 1..=runs {
        let progress = progress_bar(settings, run);
        let context = Context::new(settings.clone(), progress.clone());
        let cpu_before = settings.broker_pid.and_then(cpu_seconds);
        let outcome = drivers::run(&context).await;
        let cpu_after = settings.broker_pid.and_then(cpu_seconds);
        progress.finish_and_clear();
        let measurement = match outcome {
            Ok(measurement) => measurement,
            Err(BenchError::NotSupported(why)) => {
                println!("{:<13} not supported: {why}", settings.label());
                return Ok(records);
            }
            Err(error) => return Err(error),
        };
        let mut record = RunRecord::new(settings, run, &measurement);
        if let (Some(before), Some(after)) = (cpu_before, cpu_after) {
            record.set_broker_cpu(after - before);
        }
        println!("{}", record.human_line());
        if let Some(path) = json {
            append(path, &record)?;
        }
        records.push(record);
    }
    Ok(records)
}

fn progress_bar(settings: &Settings, run: usize) -> ProgressBar {
    let target = if std::io::stdout().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let progress = ProgressBar::with_draw_target(None, target);
    let template = "{prefix} [{elapsed_precise}] {wide_bar} {pos}/{len} ({per_sec})";
    if let Ok(style) = ProgressStyle::with_template(template) {
        progress.set_style(style);
    }
    progress.set_prefix(format!(
        "{} {} run {run}",
        settings.label(),
        settings.workload.name()
    ));
    progress
}

fn append(path: &PathBuf, record: &RunRecord) -> Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    let mut line = serde_json::to_string(record)?;
    line.push('\n');
    file.write_all(line.as_bytes())?;
    Ok(())
}
