//! The `omnibus` binary: `omnibus serve` runs the broker; every other subcommand is a small
//! client that talks to a running broker over its HTTP API.
//!
//! This is the top layer: it may call the engine (to run it) and the front doors (to listen),
//! and it is the only crate that uses `anyhow`. Nothing below may call into it.
// Denied rather than forbidden: `scheduling` makes two system calls no crate wraps.
#![deny(unsafe_code)]

mod cli;
mod config;
mod config_alerts;
mod config_amqp;
mod config_metrics;
mod config_redis;
mod listeners;
mod scheduling;
mod serve;
mod signals;
mod webhooks;

/// mimalloc instead of glibc malloc: the broker allocates and frees many small buffers per
/// message (records, state-store keys, futures); with glibc that was ~20 % of its CPU on the
/// jobs path, and end-to-end jobs/s rose ~40 % with mimalloc (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Hands the memory freed so far back to the system. mimalloc keeps freed pages a while
/// for reuse; after a start that read a big keyspace that was ~150 MiB held for nothing
/// (docs/benchmarks.md, "A keyspace without a second reference to each key").
#[allow(unsafe_code)]
pub(crate) fn release_freed_memory() {
    // SAFETY: `mi_collect` only walks mimalloc's own structures; any thread may call it.
    unsafe { libmimalloc_sys::mi_collect(true) }
}

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use crate::cli::consume::ConsumeArgs;
use crate::cli::dlq::DlqCommand;
use crate::cli::group::GroupCommand;
use crate::cli::job::JobCommand;
use crate::cli::publish::PublishArgs;
use crate::cli::queue::QueueCommand;
use crate::cli::stream::StreamCommand;
use crate::cli::top::TopArgs;
use crate::cli::worker::WorkerArgs;
use crate::config::ServeArgs;

/// One broker for streams, queues, pub/sub and request-reply.
#[derive(Debug, Parser)]
#[command(name = "omnibus", version)]
struct Cli {
    /// Base URL of the broker's HTTP API (client subcommands only).
    #[arg(
        long,
        global = true,
        env = "OMNIBUS_SERVER",
        value_name = "URL",
        default_value = "http://127.0.0.1:8080"
    )]
    server: String,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the broker.
    Serve(ServeArgs),
    /// Create, list, inspect and delete streams.
    #[command(subcommand)]
    Stream(StreamCommand),
    /// Publish records to a stream (or to a subject with --subject).
    Publish(PublishArgs),
    /// Print a stream's records.
    Consume(ConsumeArgs),
    /// Inspect consumer groups: their committed offsets and lag.
    #[command(subcommand)]
    Group(GroupCommand),
    /// Create, inspect, pause, purge and delete queues.
    #[command(subcommand)]
    Queue(QueueCommand),
    /// Enqueue, inspect, cancel and list background jobs.
    #[command(subcommand)]
    Job(JobCommand),
    /// Inspect a queue's dead letters and send them back to it.
    #[command(subcommand)]
    Dlq(DlqCommand),
    /// Run a shell command for each job of a queue.
    Worker(WorkerArgs),
    /// List alarms (newest first, `--firing` for those firing now) or their rules.
    Alerts(cli::alerts::AlertsArgs),
    /// A live view of rates, queue depths and group lag (q or Ctrl-C quits).
    Top(TopArgs),
}

fn main() -> ExitCode {
    // clap exits with status 2 on a usage error and 0 for --help / --version.
    let cli = Cli::parse();
    // The broker logs what it does; a client stays quiet unless something goes wrong.
    let default_filter = match cli.command {
        // A worker is long-running too: say what it does.
        Command::Serve(_) | Command::Worker(_) => "info",
        _ => "warn",
    };
    init_tracing(default_filter);
    // The broker's configuration is read before the runtime starts its threads: they inherit
    // the scheduling the main thread asks for.
    let serve_config = match &cli.command {
        Command::Serve(args) => match config::ServerConfig::load(args) {
            Ok(config) => {
                request_cpu_slice(config.process.cpu_slice_us);
                Some(config)
            }
            Err(error) => {
                eprintln!("error: {error:#}");
                return ExitCode::FAILURE;
            }
        },
        _ => None,
    };

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(cli, serve_config));
    // Client tasks may still be parked in a long poll; don't wait for them.
    runtime.shutdown_background();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) if is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli, serve_config: Option<config::ServerConfig>) -> anyhow::Result<()> {
    match cli.command {
        // Loaded by `main` before the runtime started.
        Command::Serve(_) => {
            serve::run(serve_config.context("the broker's configuration was not loaded")?).await
        }
        Command::Stream(command) => {
            let client = cli::client::Client::new(&cli.server)?;
            cli::stream::run(&client, command).await
        }
        Command::Publish(args) => {
            let client = cli::client::Client::new(&cli.server)?;
            cli::publish::run(&client, args).await
        }
        Command::Consume(args) => {
            let client = cli::client::Client::new(&cli.server)?;
            cli::consume::run(&client, args).await
        }
        Command::Group(command) => {
            let client = cli::client::Client::new(&cli.server)?;
            cli::group::run(&client, command).await
        }
        Command::Queue(command) => {
            let client = cli::client::Client::new(&cli.server)?;
            cli::queue::run(&client, command).await
        }
        Command::Job(command) => {
            let client = cli::client::Client::new(&cli.server)?;
            cli::job::run(&client, command).await
        }
        Command::Dlq(command) => {
            let client = cli::client::Client::new(&cli.server)?;
            cli::dlq::run(&client, command).await
        }
        Command::Worker(args) => {
            let client = cli::client::Client::new(&cli.server)?;
            cli::worker::run(&client, args).await
        }
        Command::Alerts(args) => {
            let client = cli::client::Client::new(&cli.server)?;
            cli::alerts::run(&client, args).await
        }
        Command::Top(args) => {
            let client = cli::client::Client::new(&cli.server)?;
            cli::top::run(&client, args).await
        }
    }
}

/// Asks for short CPU slices (`scheduling.rs`); the broker runs either way, so a refusal is
/// only logged.
fn request_cpu_slice(slice_us: u64) {
    use scheduling::SliceOutcome;
    match scheduling::request_cpu_slice(slice_us) {
        Ok(SliceOutcome::Applied(ns)) => {
            tracing::debug!(
                slice_us = ns / 1_000,
                "broker threads run with a short CPU slice"
            )
        }
        Ok(SliceOutcome::Default) => {}
        Ok(SliceOutcome::Ignored) => tracing::info!(
            "process.cpu_slice_us has no effect here (needs Linux 6.12+ and a SCHED_OTHER policy)"
        ),
        Err(error) => tracing::warn!(%error, "cannot set the CPU slice; keeping the default"),
    }
}

fn init_tracing(default_filter: &str) {
    let filter = match std::env::var("OMNIBUS_LOG") {
        Ok(text) => EnvFilter::try_new(&text).unwrap_or_else(|error| {
            eprintln!("warning: ignoring OMNIBUS_LOG={text:?}: {error}");
            EnvFilter::new(default_filter)
        }),
        Err(_) => EnvFilter::new(default_filter),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

/// A reader that went away (`omnibus consume s | head`) is a normal way for output to end.
fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn usage_errors_are_reported_by_clap() {
        let error = Cli::try_parse_from(["omnibus", "consume"]).unwrap_err();
        assert_eq!(error.exit_code(), 2);
        let error = Cli::try_parse_from(["omnibus", "consume", "s", "--from", "soon"]).unwrap_err();
        assert_eq!(error.exit_code(), 2);
    }
}
