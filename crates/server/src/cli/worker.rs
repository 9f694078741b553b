//! `omnibus worker QUEUE --exec 'CMD'`: turns any program into a job worker.
//!
//! The loop long-polls `jobs/fetch` for as many jobs as it has free slots (`--concurrency`),
//! and runs each job's command in its own task (see [`super::worker_command`]). While a
//! command runs, a heartbeat (a progress report) extends its lease every `--heartbeat-ms`; exit
//! 0 completes the job with stdout as its result, anything else fails it with stderr.
//!
//! Stopping: the first SIGINT/SIGTERM stops fetching and lets running commands finish. A
//! fetch already in flight is waited for (at most its long poll), and the jobs it brings are
//! run too: they are leased to us, and abandoning them would leave them waiting out their
//! lease. A second signal kills the running commands (their jobs fail with that reason and are
//! retried per the queue's policy) and abandons a fetch in flight — whatever it leased, the
//! broker redelivers once the lease runs out: at-least-once, as always.
//!
//! What is never fatal: a complete / fail / heartbeat the broker refuses (the job was
//! cancelled, or its lease ran out and it went to another worker — then this attempt's outcome
//! no longer counts), and a broker that is briefly unreachable (we retry with backoff).

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use crate::cli::client::{Client, ClientError};
use crate::cli::wire_jobs::FetchedJob;
use crate::cli::worker_command::{run_command, CommandSpec, Exit, Report};
use crate::signals::Signals;

/// How long one fetch waits on the broker for a job.
const FETCH_WAIT_MS: u64 = 5_000;
/// If an empty fetch comes back faster than this, pause this long before the next.
const EMPTY_POLL_PAUSE_MS: u64 = 100;
/// Most commands one worker runs at once.
const CONCURRENCY_MAX: u64 = 1_024;
/// Shortest heartbeat interval (also for very short leases).
const HEARTBEAT_MS_MIN: u64 = 10;
/// Pause after a failed fetch, doubling up to the max while the broker stays unreachable.
const RETRY_PAUSE_MS_MIN: u64 = 200;
const RETRY_PAUSE_MS_MAX: u64 = 5_000;
/// Tries for a complete / fail that could not reach the broker.
const REPORT_TRIES_MAX: u32 = 3;

#[derive(Debug, Args)]
pub struct WorkerArgs {
    pub queue: String,
    /// Shell command run (with `sh -c`) for each job: the payload on stdin; OMNIBUS_JOB_ID,
    /// OMNIBUS_JOB_ATTEMPT, OMNIBUS_JOB_NAME and OMNIBUS_QUEUE in its environment.
    #[arg(long, value_name = "CMD")]
    pub exec: String,
    /// Jobs run at once.
    #[arg(long, value_name = "N", default_value_t = 1,
        value_parser = clap::value_parser!(u64).range(1..=CONCURRENCY_MAX))]
    pub concurrency: u64,
    /// Worker name the broker sees [default: HOST-PID].
    #[arg(long, value_name = "WORKER")]
    pub name: Option<String>,
    /// Extend a running job's lease this often [default: a third of the lease].
    #[arg(long, value_name = "MS",
        value_parser = clap::value_parser!(u64).range(HEARTBEAT_MS_MIN..))]
    pub heartbeat_ms: Option<u64>,
    /// Exit once this many jobs have been run.
    #[arg(long, value_name = "N")]
    pub max_jobs: Option<u64>,
}

/// What every job task needs.
struct Context {
    client: Client,
    command: CommandSpec,
    queue: String,
    /// The queue's lease, for jobs that do not carry their own timeout.
    lease_ms: u64,
    heartbeat_ms: Option<u64>,
    /// Turns true on the second stop signal: kill running commands.
    force_stop: watch::Receiver<bool>,
}

/// How one job ended, for the summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JobEnd {
    Completed,
    Failed,
    /// The broker refused the outcome, or never heard it.
    NotRecorded,
}

#[derive(Debug, Default)]
struct Tally {
    completed: u64,
    failed: u64,
    not_recorded: u64,
}

impl Tally {
    fn add(&mut self, end: JobEnd) {
        match end {
            JobEnd::Completed => self.completed += 1,
            JobEnd::Failed => self.failed += 1,
            JobEnd::NotRecorded => self.not_recorded += 1,
        }
    }
}

pub async fn run(client: &Client, args: WorkerArgs) -> anyhow::Result<()> {
    // Also checks that the queue exists before anything runs.
    let queue = client.queue_info(&args.queue).await?;
    let worker = args.name.clone().unwrap_or_else(default_worker_name);
    let signals = Signals::install()?;
    let (force_stop_sender, force_stop) = watch::channel(false);
    let context = Arc::new(Context {
        client: client.clone(),
        command: CommandSpec {
            shell_command: args.exec.clone(),
            queue: args.queue.clone(),
        },
        queue: args.queue.clone(),
        lease_ms: queue.lease_ms.max(1),
        heartbeat_ms: args.heartbeat_ms,
        force_stop,
    });
    info!(
        "worker {worker} running `{}` for queue {} ({} at once, lease {} ms, heartbeat every {} ms)",
        args.exec,
        args.queue,
        args.concurrency,
        context.lease_ms,
        heartbeat_ms(&context, None),
    );
    let mut supervisor = Supervisor {
        context,
        worker: worker.clone(),
        concurrency: args.concurrency as usize,
        max_jobs: args.max_jobs,
        signals,
        force_stop: force_stop_sender,
        running: JoinSet::new(),
        tally: Tally::default(),
        fetched: 0,
        stopping: false,
        failure: None,
        retry_pause_ms: RETRY_PAUSE_MS_MIN,
    };
    while supervisor.step().await {}
    let tally = &supervisor.tally;
    info!(
        "worker {worker} stopped: {} completed, {} failed, {} not recorded",
        tally.completed, tally.failed, tally.not_recorded
    );
    match supervisor.failure {
        Some(error) => Err(error),
        None => Ok(()),
    }
}

/// The fetch loop's state: the running job tasks, and whether (and why) we are stopping.
struct Supervisor {
    context: Arc<Context>,
    worker: String,
    concurrency: usize,
    max_jobs: Option<u64>,
    signals: Signals,
    force_stop: watch::Sender<bool>,
    running: JoinSet<JobEnd>,
    tally: Tally,
    fetched: u64,
    stopping: bool,
    /// Why the worker stops with an error, once its running jobs are done.
    failure: Option<anyhow::Error>,
    retry_pause_ms: u64,
}

impl Supervisor {
    /// One turn of the loop: fetch for the free slots, or wait for one. False when done.
    async fn step(&mut self) -> bool {
        while let Some(ended) = self.running.try_join_next() {
            self.tally.add(job_end(ended));
        }
        let remaining = self
            .max_jobs
            .map_or(u64::MAX, |max| max.saturating_sub(self.fetched));
        if remaining == 0 {
            self.stopping = true;
        }
        if self.stopping && self.running.is_empty() {
            return false;
        }
        let free = self.concurrency.saturating_sub(self.running.len());
        let want = free.min(usize::try_from(remaining).unwrap_or(usize::MAX));
        if self.stopping || want == 0 {
            // Full, or draining: wait for a job to end (or for a signal).
            tokio::select! {
                Some(ended) = self.running.join_next() => self.tally.add(job_end(ended)),
                signal = self.signals.next() => self.on_signal(signal),
            }
            return true;
        }
        let asked = Instant::now();
        match self.fetch(want).await {
            None => {}
            Some(Ok(jobs)) => {
                self.retry_pause_ms = RETRY_PAUSE_MS_MIN;
                if jobs.is_empty() && asked.elapsed() < Duration::from_millis(EMPTY_POLL_PAUSE_MS) {
                    // A broker that does not hold the poll open must not make us spin.
                    tokio::time::sleep(Duration::from_millis(EMPTY_POLL_PAUSE_MS)).await;
                }
                for job in jobs {
                    self.fetched += 1;
                    self.running.spawn(run_job(Arc::clone(&self.context), job));
                }
            }
            Some(Err(error)) if is_transient(&error) => {
                let pause_ms = self.retry_pause_ms;
                warn!("cannot fetch jobs ({error}); retrying in {pause_ms} ms");
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(pause_ms)) => {}
                    signal = self.signals.next() => self.on_signal(signal),
                }
                self.retry_pause_ms = (pause_ms * 2).min(RETRY_PAUSE_MS_MAX);
            }
            Some(Err(error)) => {
                // Let the running jobs finish first: their outcomes may still be recorded.
                self.failure = Some(error.into());
                self.stopping = true;
            }
        }
        true
    }

    /// One long poll for up to `want` jobs; `None` when a second signal abandoned it.
    ///
    /// A fetch is never abandoned for a finished task or a first signal: it may already have
    /// leased jobs, which would then wait out their lease before anyone ran them.
    async fn fetch(&mut self, want: usize) -> Option<Result<Vec<FetchedJob>, ClientError>> {
        let context = Arc::clone(&self.context);
        let worker = self.worker.clone();
        let fetch = context
            .client
            .fetch_jobs(&context.queue, &worker, want, FETCH_WAIT_MS);
        tokio::pin!(fetch);
        loop {
            tokio::select! {
                answer = &mut fetch => return Some(answer),
                signal = self.signals.next() => {
                    let again = self.stopping;
                    self.on_signal(signal);
                    if again {
                        return None;
                    }
                }
            }
        }
    }

    /// The first signal stops fetching; the next ones kill the running commands.
    fn on_signal(&mut self, signal: &str) {
        let running = self.running.len();
        if self.stopping {
            warn!("received {signal} again; killing {running} running commands");
            let _ = self.force_stop.send(true);
        } else {
            info!(
                "received {signal}; no more jobs will be fetched; waiting for {running} running \
                 commands (send it again to kill them)"
            );
            self.stopping = true;
        }
    }
}

fn job_end(ended: Result<JobEnd, tokio::task::JoinError>) -> JobEnd {
    ended.unwrap_or_else(|error| {
        warn!("a job task ended abnormally: {error}");
        JobEnd::NotRecorded
    })
}

/// Runs one job's command and tells the broker how it ended.
async fn run_job(context: Arc<Context>, job: FetchedJob) -> JobEnd {
    let started = Instant::now();
    let (kill, kill_receiver) = watch::channel(false);
    let heartbeats = tokio::spawn(heartbeat(Arc::clone(&context), job.clone(), kill));
    let output = run_command(&context.command, &job, kill_receiver).await;
    heartbeats.abort();
    let killed = heartbeats.await.ok();
    let elapsed_ms = started.elapsed().as_millis();
    let (id, attempt) = (job.id.as_str(), job.attempt);
    let outcome = match killed {
        // The broker has already said it will not take this attempt's outcome.
        Some(KillReason::Refused) => return JobEnd::NotRecorded,
        // Unless the command managed to finish first.
        Some(KillReason::Stopped) if output.exit != Exit::Code(0) => Report::Fail {
            error: "the worker was stopped and killed the command".to_string(),
        },
        Some(KillReason::Stopped) | None => output.report(),
    };
    match outcome {
        Report::Complete { result, truncated } => {
            if truncated {
                warn!(
                    "job {id} attempt {attempt}: stdout was {} bytes; the result keeps the \
                     start of it",
                    output.stdout.total
                );
            }
            let sent = report(&job, "complete", || {
                context
                    .client
                    .complete_job(&context.queue, id, attempt, result.as_ref())
            })
            .await;
            if sent {
                debug!("job {id} attempt {attempt} completed in {elapsed_ms} ms");
                return JobEnd::Completed;
            }
        }
        Report::Fail { error } => {
            let first_line = error.lines().next().unwrap_or_default();
            warn!("job {id} attempt {attempt} failed after {elapsed_ms} ms: {first_line}");
            let sent = report(&job, "fail", || {
                context.client.fail_job(&context.queue, id, attempt, &error)
            })
            .await;
            if sent {
                return JobEnd::Failed;
            }
        }
    }
    JobEnd::NotRecorded
}

/// Sends a complete or fail, retrying while the broker is unreachable; true once recorded.
async fn report<F, Fut>(job: &FetchedJob, what: &str, send: F) -> bool
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<(), ClientError>>,
{
    let mut pause_ms = RETRY_PAUSE_MS_MIN;
    for tries in 1..=REPORT_TRIES_MAX {
        match send().await {
            Ok(()) => return true,
            Err(error) if is_transient(&error) && tries < REPORT_TRIES_MAX => {
                warn!(
                    "job {} attempt {}: cannot {what} ({error}); retrying",
                    job.id, job.attempt
                );
                tokio::time::sleep(Duration::from_millis(pause_ms)).await;
                pause_ms *= 2;
            }
            Err(error) => {
                warn!(
                    "job {} attempt {}: the broker did not record {what}: {error}{}",
                    job.id,
                    job.attempt,
                    explain_refusal(&error)
                );
                return false;
            }
        }
    }
    false
}

/// Why a job's command was killed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KillReason {
    /// The broker refused a heartbeat: the job was cancelled or went to another worker.
    Refused,
    /// The second stop signal.
    Stopped,
}

/// Extends the job's lease until aborted. Kills the command when the broker refuses (the job
/// was cancelled or went to another worker: its work is no longer wanted from us) and on the
/// second stop signal, and returns why.
async fn heartbeat(
    context: Arc<Context>,
    job: FetchedJob,
    kill: watch::Sender<bool>,
) -> KillReason {
    let period = Duration::from_millis(heartbeat_ms(&context, job.timeout_ms));
    let beat = serde_json::json!({ "heartbeat": true });
    let mut force_stop = context.force_stop.clone();
    let mut watching = true;
    loop {
        if watching && *force_stop.borrow_and_update() {
            let _ = kill.send(true);
            return KillReason::Stopped;
        }
        tokio::select! {
            () = tokio::time::sleep(period) => {}
            changed = force_stop.changed(), if watching => {
                // A closed channel can never ask for a kill; stop watching it.
                watching = changed.is_ok();
                continue;
            }
        }
        // A beat that hangs must not hold up the next one past the lease.
        let sent = tokio::time::timeout(
            period.max(Duration::from_secs(1)),
            context
                .client
                .job_progress(&context.queue, &job.id, job.attempt, &beat),
        )
        .await;
        match sent {
            Ok(Ok(_deadline)) => {}
            Ok(Err(error)) if !is_transient(&error) => {
                warn!(
                    "job {} attempt {}: heartbeat refused ({error}){}; stopping its command",
                    job.id,
                    job.attempt,
                    explain_refusal(&error)
                );
                let _ = kill.send(true);
                return KillReason::Refused;
            }
            Ok(Err(error)) => warn!(
                "job {} attempt {}: heartbeat failed ({error}); will try again",
                job.id, job.attempt
            ),
            Err(_) => warn!(
                "job {} attempt {}: heartbeat timed out; will try again",
                job.id, job.attempt
            ),
        }
    }
}

/// The heartbeat interval for a job with `timeout_ms` (or the queue's lease).
fn heartbeat_ms(context: &Context, timeout_ms: Option<u64>) -> u64 {
    context
        .heartbeat_ms
        .unwrap_or_else(|| timeout_ms.unwrap_or(context.lease_ms) / 3)
        .max(HEARTBEAT_MS_MIN)
}

/// Worth retrying: the broker could not be reached or was briefly unable to answer.
fn is_transient(error: &ClientError) -> bool {
    match error {
        ClientError::Transport { .. } => true,
        ClientError::Api { code, .. } => {
            matches!(code.as_str(), "unavailable" | "internal") || code.starts_with("http_5")
        }
        ClientError::Protocol { .. } | ClientError::InvalidServer { .. } => false,
    }
}

fn explain_refusal(error: &ClientError) -> &'static str {
    match error.code() {
        "stale_attempt" | "unknown_delivery" => {
            " (the job was cancelled, or its lease ran out and it was given to another worker)"
        }
        _ => "",
    }
}

/// `HOST-PID`: unique enough among the workers of one broker, and says where to look.
fn default_worker_name() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|host| host.trim().to_string())
        .filter(|host| !host.is_empty())
        .unwrap_or_else(|| "worker".to_string());
    format!("{host}-{}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        worker: WorkerArgs,
    }

    fn parse(args: &[&str]) -> Result<WorkerArgs, clap::Error> {
        Cli::try_parse_from(["worker"].iter().chain(args)).map(|cli| cli.worker)
    }

    #[test]
    fn worker_arguments_parse_with_defaults() {
        let args = parse(&["emails", "--exec", "cat"]).unwrap();
        assert_eq!(args.queue, "emails");
        assert_eq!(args.exec, "cat");
        assert_eq!(args.concurrency, 1);
        assert_eq!((args.heartbeat_ms, args.max_jobs), (None, None));

        let args = parse(&[
            "q",
            "--exec",
            "./run.sh --fast",
            "--concurrency",
            "4",
            "--name",
            "w1",
            "--heartbeat-ms",
            "250",
            "--max-jobs",
            "200",
        ])
        .unwrap();
        assert_eq!(args.concurrency, 4);
        assert_eq!(args.name.as_deref(), Some("w1"));
        assert_eq!(args.heartbeat_ms, Some(250));
        assert_eq!(args.max_jobs, Some(200));

        assert!(parse(&["q"]).is_err(), "--exec is required");
        assert!(parse(&["q", "--exec", "x", "--concurrency", "0"]).is_err());
        assert!(parse(&["q", "--exec", "x", "--concurrency", "5000"]).is_err());
        assert!(parse(&["q", "--exec", "x", "--heartbeat-ms", "1"]).is_err());
    }

    fn context(heartbeat_ms: Option<u64>) -> Context {
        Context {
            client: Client::new("http://127.0.0.1:1").unwrap(),
            command: CommandSpec {
                shell_command: "true".into(),
                queue: "q".into(),
            },
            queue: "q".into(),
            lease_ms: 30_000,
            heartbeat_ms,
            force_stop: watch::channel(false).1,
        }
    }

    #[test]
    fn heartbeats_default_to_a_third_of_the_lease() {
        assert_eq!(heartbeat_ms(&context(None), None), 10_000);
        assert_eq!(heartbeat_ms(&context(None), Some(900)), 300);
        assert_eq!(heartbeat_ms(&context(None), Some(3)), HEARTBEAT_MS_MIN);
        assert_eq!(heartbeat_ms(&context(Some(50)), Some(900)), 50);
    }

    #[test]
    fn only_unreachable_or_struggling_brokers_are_retried() {
        let api = |code: &str| ClientError::Api {
            code: code.into(),
            message: String::new(),
        };
        assert!(is_transient(&api("unavailable")));
        assert!(is_transient(&api("http_502")));
        assert!(!is_transient(&api("stale_attempt")));
        assert!(!is_transient(&api("queue_not_found")));
        assert!(explain_refusal(&api("stale_attempt")).contains("another worker"));
    }
}
