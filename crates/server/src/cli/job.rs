//! `omnibus job enqueue|get|cancel|list`.
//!
//! `job enqueue QUEUE -` reads one payload per line from stdin and sends them in batches, one
//! after another, so jobs are enqueued in the order of the lines; each batch's ids are printed
//! (one per line, in line order) as soon as the broker has durably accepted it. Reading runs on
//! its own thread one batch ahead, as `publish` does.

use omnibus_types::calendar::civil_from_days;
use std::io::{BufRead, IsTerminal, Write};
use std::time::Instant;

use base64::Engine as _;
use clap::builder::PossibleValuesParser;
use clap::{Args, Subcommand};
use omnibus_engine::jobs::JobStatus;
use tokio::sync::mpsc;

use crate::cli::client::Client;
use crate::cli::lines::read_line_batches;
use crate::cli::progress::{stdout_is_terminal, Progress};
use crate::cli::table::{one_line, print_list, render_table, ListFormat};
use crate::cli::wire_jobs::{JobRow, NewJob};

/// Most jobs in one enqueue request.
const BATCH_JOBS_MAX: usize = 1_000;
/// Rough JSON framing per job, so many tiny lines still cut batches.
const JOB_OVERHEAD_BYTES: usize = 32;
const READ_AHEAD_BATCHES: usize = 2;
/// Jobs asked for per page by `job list`.
const LIST_PAGE_JOBS_MAX: usize = 1_000;
/// Widest last-error cell in the `job list` table.
const ERROR_CELL_CHARS_MAX: usize = 60;

#[derive(Debug, Subcommand)]
pub enum JobCommand {
    /// Enqueue a job, or one job per line of stdin.
    Enqueue(EnqueueArgs),
    /// Show a job (status, attempts, progress, result, errors) as JSON.
    Get { queue: String, id: String },
    /// Cancel a waiting, delayed or active job.
    Cancel { queue: String, id: String },
    /// List a queue's jobs, oldest first.
    List(ListArgs),
}

#[derive(Debug, Args)]
pub struct EnqueueArgs {
    pub queue: String,
    /// The payload: JSON, or else taken as a string; `-` or nothing reads stdin, one job per
    /// line.
    pub payload: Option<String>,
    /// What kind of work (e.g. send-email).
    #[arg(long, default_value = "default")]
    pub name: String,
    /// 0–9, higher first.
    #[arg(long, value_name = "P", value_parser = clap::value_parser!(u8).range(0..=9))]
    pub priority: Option<u8>,
    /// Run no earlier than this many ms from now.
    #[arg(long, value_name = "MS")]
    pub delay_ms: Option<u64>,
    /// Attempts before the job is dead [default: the queue's max deliveries].
    #[arg(long, value_name = "N")]
    pub max_attempts: Option<u32>,
    /// Enqueuing the same key again returns the existing job instead of a new one.
    #[arg(long, value_name = "KEY")]
    pub unique_key: Option<String>,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    pub queue: String,
    /// Only jobs with this status.
    #[arg(long, value_name = "STATUS", value_parser = PossibleValuesParser::new(
        JobStatus::ALL.map(JobStatus::as_str)))]
    pub status: Option<String>,
    /// Most jobs to show.
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub limit: usize,
    /// `table`, or `json`: each job as one JSON line.
    #[arg(long, value_enum, default_value_t = ListFormat::Table)]
    pub format: ListFormat,
}

pub async fn run(client: &Client, command: JobCommand) -> anyhow::Result<()> {
    match command {
        JobCommand::Enqueue(args) => enqueue(client, args).await,
        JobCommand::Get { queue, id } => {
            let job = client.job_json(&queue, &id).await?;
            let mut stdout = std::io::stdout().lock();
            writeln!(stdout, "{}", serde_json::to_string_pretty(&job)?)?;
            stdout.flush()?;
            Ok(())
        }
        JobCommand::Cancel { queue, id } => {
            client.cancel_job(&queue, &id).await?;
            let mut stdout = std::io::stdout().lock();
            writeln!(stdout, "cancelled job {id}")?;
            stdout.flush()?;
            Ok(())
        }
        JobCommand::List(args) => list(client, args).await,
    }
}

async fn enqueue(client: &Client, args: EnqueueArgs) -> anyhow::Result<()> {
    let template = NewJob {
        name: args.name,
        priority: args.priority,
        delay_ms: args.delay_ms,
        max_attempts: args.max_attempts,
        unique_key: args.unique_key,
        ..NewJob::default()
    };
    match args.payload.as_deref() {
        None | Some("-") => enqueue_stdin(client, &args.queue, template).await,
        Some(payload) => {
            let job = job_from_line(payload.as_bytes(), &template);
            let enqueued = client.enqueue_jobs(&args.queue, &[job]).await?;
            let mut stdout = std::io::stdout().lock();
            for job in enqueued {
                writeln!(stdout, "{}", job.id)?;
                if !job.created {
                    eprintln!("job {} already existed under this unique key", job.id);
                }
            }
            stdout.flush()?;
            Ok(())
        }
    }
}

async fn enqueue_stdin(client: &Client, queue: &str, template: NewJob) -> anyhow::Result<()> {
    if template.unique_key.is_some() {
        // Every line would collapse into the first line's job.
        anyhow::bail!("--unique-key applies to one job; it cannot be used with stdin");
    }
    let (sender, mut receiver) = mpsc::channel(READ_AHEAD_BATCHES);
    // Someone typing payloads expects each to go out when they press Enter.
    let interactive = std::io::stdin().is_terminal();
    let batch_jobs_max = if interactive { 1 } else { BATCH_JOBS_MAX };
    // A plain thread, so a read parked on a terminal cannot hold up the runtime's shutdown.
    std::thread::spawn(move || {
        let stdin = std::io::stdin().lock();
        let outcome = read_batches(stdin, batch_jobs_max, &template, |batch| {
            sender.blocking_send(Ok(batch)).is_ok()
        });
        if let Err(error) = outcome {
            let _ = sender.blocking_send(Err(error));
        }
    });

    let started = Instant::now();
    let progress = Progress::new("enqueuing", None, !interactive && !stdout_is_terminal());
    let mut stdout = std::io::stdout().lock();
    let mut enqueued: u64 = 0;
    while let Some(batch) = receiver.recv().await {
        let outcome = match batch {
            Ok(batch) => client
                .enqueue_jobs(queue, &batch)
                .await
                .map_err(anyhow::Error::from),
            Err(error) => Err(error),
        };
        let ids = match outcome {
            Ok(ids) => ids,
            Err(error) => {
                progress.finish();
                // Every earlier batch is durably enqueued; say so, so a retry can skip them.
                if enqueued > 0 {
                    eprintln!("enqueued {enqueued} jobs before the error");
                }
                return Err(error);
            }
        };
        for job in &ids {
            writeln!(stdout, "{}", job.id)?;
        }
        stdout.flush()?;
        enqueued += ids.len() as u64;
        progress.add(ids.len() as u64);
    }
    progress.finish();
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "enqueued {enqueued} jobs in {seconds:.2} s ({:.0} jobs/s)",
        enqueued as f64 / seconds.max(1e-9)
    );
    Ok(())
}

/// Lines of `input` as batches of items made from `template`; see [`read_line_batches`].
fn read_batches(
    input: impl BufRead,
    items_max: usize,
    template: &NewJob,
    send: impl FnMut(Vec<NewJob>) -> bool,
) -> anyhow::Result<()> {
    read_line_batches(
        input,
        items_max,
        JOB_OVERHEAD_BYTES,
        |line| job_from_line(line, template),
        send,
    )
}

/// A line that is a JSON document is sent as that JSON; other text as a JSON string; bytes
/// that are not UTF-8 as base64, so they arrive intact.
fn job_from_line(line: &[u8], template: &NewJob) -> NewJob {
    let mut job = template.clone();
    match std::str::from_utf8(line) {
        Ok(text) => {
            let payload = serde_json::from_str(text)
                .unwrap_or_else(|_| serde_json::Value::String(text.to_string()));
            job.payload = Some(payload);
        }
        Err(_) => job.payload_base64 = Some(base64::engine::general_purpose::STANDARD.encode(line)),
    }
    job
}

async fn list(client: &Client, args: ListArgs) -> anyhow::Result<()> {
    let mut jobs = Vec::new();
    let mut after: Option<String> = None;
    let mut more = false;
    while jobs.len() < args.limit {
        let want = (args.limit - jobs.len()).min(LIST_PAGE_JOBS_MAX);
        let page = client
            .list_jobs(&args.queue, args.status.as_deref(), after.as_deref(), want)
            .await?;
        let empty = page.jobs.is_empty();
        jobs.extend(page.jobs.into_iter().take(want));
        match page.next {
            Some(next) if !empty && after.as_deref() != Some(next.as_str()) => {
                after = Some(next);
                more = true;
            }
            _ => {
                more = false;
                break;
            }
        }
    }
    print_list(&jobs, args.format, job_table)?;
    if more {
        eprintln!(
            "(showing the first {}; raise --limit to see more)",
            jobs.len()
        );
    }
    Ok(())
}

fn job_table(jobs: &[JobRow]) -> String {
    let header = ["ID", "STATUS", "ATTEMPTS", "NAME", "CREATED", "LAST_ERROR"].map(String::from);
    let rows = jobs.iter().map(|job| {
        vec![
            job.id.clone(),
            job.status.clone(),
            format!("{}/{}", job.attempts, job.max_attempts),
            job.name.clone(),
            format_timestamp_ms(job.created_ms),
            job.errors
                .last()
                .map(|error| one_line(&error.message, ERROR_CELL_CHARS_MAX))
                .unwrap_or_default(),
        ]
    });
    render_table(&header, &[false, false, true, false, false, false], rows)
}

/// `2026-11-28T10:00:00Z` (UTC, whole seconds) for ms since the epoch.
pub fn format_timestamp_ms(ms: i64) -> String {
    let seconds = ms.div_euclid(1000);
    let days = seconds.div_euclid(86_400);
    let second_of_day = seconds.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        second_of_day / 3600,
        second_of_day / 60 % 60,
        second_of_day % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::time::parse_timestamp_ms;
    use clap::Parser;
    use serde_json::json;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(subcommand)]
        command: JobCommand,
    }

    fn batches(input: &[u8]) -> Vec<Vec<NewJob>> {
        let mut batches = Vec::new();
        read_batches(input, BATCH_JOBS_MAX, &NewJob::default(), |batch| {
            batches.push(batch);
            true
        })
        .unwrap();
        batches
    }

    #[test]
    fn json_lines_stay_json_and_other_lines_become_strings() {
        let lines = batches(b"{\"a\":1}\n42\nhello world\n\"quoted\"\r\n\n[1,\n");
        let payloads: Vec<_> = lines[0].iter().map(|job| job.payload.clone()).collect();
        assert_eq!(
            payloads,
            [
                Some(json!({"a": 1})),
                Some(json!(42)),
                Some(json!("hello world")),
                Some(json!("quoted")),
                Some(json!("")),
                Some(json!("[1,")),
            ]
        );
        let binary = &batches(b"\xff\xfe\n")[0][0];
        assert_eq!(binary.payload, None);
        assert_eq!(binary.payload_base64.as_deref(), Some("//4="));
    }

    #[test]
    fn batches_hold_at_most_a_thousand_jobs() {
        let input: String = (0..2_501).map(|n| format!("{n}\n")).collect();
        let sizes: Vec<_> = batches(input.as_bytes()).iter().map(Vec::len).collect();
        assert_eq!(sizes, [1_000, 1_000, 501]);
        assert!(batches(b"").is_empty());
    }

    #[test]
    fn batches_are_cut_by_bytes() {
        let line = "x".repeat(300_000);
        let input: String = (0..7).map(|_| format!("{line}\n")).collect();
        let sizes: Vec<_> = batches(input.as_bytes()).iter().map(Vec::len).collect();
        assert_eq!(sizes, [4, 3]);
    }

    #[test]
    fn job_options_are_copied_onto_every_line() {
        let template = NewJob {
            name: "email".into(),
            priority: Some(7),
            delay_ms: Some(500),
            max_attempts: Some(2),
            ..NewJob::default()
        };
        let job = job_from_line(b"x", &template);
        let bare = job_from_line(b"y", &NewJob::default());
        assert_eq!(
            serde_json::to_value(&bare).unwrap(),
            json!({"name": "", "payload": "y"})
        );
        assert_eq!(
            serde_json::to_value(&job).unwrap(),
            json!({"name": "email", "payload": "x", "priority": 7, "delay_ms": 500,
                   "max_attempts": 2})
        );
    }

    #[test]
    fn enqueue_and_list_arguments_parse() {
        let parsed =
            Cli::try_parse_from(["job", "enqueue", "q", "-", "--priority", "9", "--name", "n"])
                .unwrap();
        let JobCommand::Enqueue(args) = parsed.command else {
            panic!("not an enqueue")
        };
        assert_eq!(args.payload.as_deref(), Some("-"));
        assert_eq!(args.priority, Some(9));
        assert!(Cli::try_parse_from(["job", "enqueue", "q", "--priority", "10"]).is_err());

        let parsed =
            Cli::try_parse_from(["job", "list", "q", "--status", "completed", "--limit", "5"])
                .unwrap();
        let JobCommand::List(args) = parsed.command else {
            panic!("not a list")
        };
        assert_eq!(args.status.as_deref(), Some("completed"));
        assert_eq!(args.limit, 5);
        assert!(Cli::try_parse_from(["job", "list", "q", "--status", "done"]).is_err());
    }

    #[test]
    fn timestamps_format_as_rfc3339_and_parse_back() {
        for text in [
            "1970-01-01T00:00:00Z",
            "2000-02-29T23:59:59Z",
            "2026-11-28T10:00:00Z",
            "1969-12-31T23:59:59Z",
        ] {
            let ms = parse_timestamp_ms(text).unwrap();
            assert_eq!(format_timestamp_ms(ms), text);
        }
        assert_eq!(format_timestamp_ms(1_999), "1970-01-01T00:00:01Z");
    }

    #[test]
    fn the_job_table_shows_attempts_and_the_last_error() {
        let job: JobRow = serde_json::from_value(json!({
            "id": "01J", "queue": "q", "name": "", "status": "failed", "attempts": 2,
            "max_attempts": 5, "created_ms": 0,
            "errors": [{"attempt": 1, "message": "first", "at_ms": 1},
                       {"attempt": 2, "message": "boom\nat line 3", "at_ms": 2}]
        }))
        .unwrap();
        let expected = "\
ID   STATUS  ATTEMPTS  NAME  CREATED               LAST_ERROR
01J  failed       2/5  -     1970-01-01T00:00:00Z  boom at line 3
";
        assert_eq!(job_table(&[job]), expected);
    }
}
