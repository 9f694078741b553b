//! The `omnibus-bench` binary: `run` drives one system with one workload; `report` turns the
//! JSON lines of many runs into a Markdown table and a chart.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use omnibus_bench::report::write_report;
use omnibus_bench::run::run_all;
use omnibus_bench::settings::Settings;

#[derive(Debug, Parser)]
#[command(
    name = "omnibus-bench",
    version,
    about = "Side-by-side benchmarks of Omnibus and its peers, over the network"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run one workload against one system, `--runs` times.
    Run {
        #[command(flatten)]
        settings: Box<Settings>,
        /// Repetitions of the run; the report takes their median.
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// Append one JSON line per run to this file.
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// Summarise a JSONL file of runs into DIR/report.md and DIR/chart.svg.
    Report {
        /// The JSON lines written by `run --json`.
        file: PathBuf,
        #[arg(long, default_value = ".")]
        out: PathBuf,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Run {
            settings,
            runs,
            json,
        } => {
            settings.validate()?;
            let runtime = tokio::runtime::Runtime::new().context("cannot start the runtime")?;
            runtime.block_on(run_all(&settings, runs, json.as_ref()))?;
        }
        Command::Report { file, out } => {
            let table = write_report(&file, &out)
                .with_context(|| format!("cannot report on {}", file.display()))?;
            print!("{table}");
        }
    }
    Ok(())
}
