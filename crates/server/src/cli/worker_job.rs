//! One job held by `omnibus worker`, from the moment it is fetched: its lease is kept alive
//! (heartbeats) while it waits for a free slot and while its command runs; then a failure is
//! reported by the job itself, and a completion is handed back to the worker's loop, which
//! sends completions in batches (see [`super::worker`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{oneshot, watch, OwnedSemaphorePermit};
use tracing::{debug, warn};

use crate::cli::client::{Client, ClientError};
use crate::cli::wire_jobs::{Completion, FetchedJob};
use crate::cli::worker_command::{run_command, CommandSpec, Exit, Report};

/// Shortest heartbeat interval (also for very short leases).
pub const HEARTBEAT_MS_MIN: u64 = 10;
/// Pause after a failed request, doubling up to the max while the broker stays unreachable.
pub const RETRY_PAUSE_MS_MIN: u64 = 200;
pub const RETRY_PAUSE_MS_MAX: u64 = 5_000;
/// Tries for a complete / fail that could not reach the broker.
pub const REPORT_TRIES_MAX: u32 = 3;

/// What every job task needs.
pub struct Context {
    pub client: Client,
    pub command: CommandSpec,
    pub queue: String,
    /// The queue's lease, for jobs that do not carry their own timeout.
    pub lease_ms: u64,
    pub heartbeat_ms: Option<u64>,
    /// Turns true on the second stop signal: kill running commands, start no more.
    pub force_stop: watch::Receiver<bool>,
}

/// How one held job ended, for the loop.
#[derive(Debug)]
pub enum JobDone {
    /// The command succeeded; the completion is still to be sent (in a batch).
    Complete(Completion),
    /// Settled, or given up on, by the job task itself.
    Ended(JobEnd),
}

/// How one job ended, for the summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobEnd {
    Completed,
    Failed,
    /// The broker refused the outcome, or never heard it.
    NotRecorded,
    /// Fetched ahead but never started (the second stop signal): the broker gives it to
    /// another worker once its lease runs out.
    LeftToLease,
}

#[derive(Debug, Default)]
pub struct Tally {
    pub completed: u64,
    pub failed: u64,
    pub not_recorded: u64,
    pub left_to_lease: u64,
}

impl Tally {
    pub fn add(&mut self, end: JobEnd) {
        match end {
            JobEnd::Completed => self.completed += 1,
            JobEnd::Failed => self.failed += 1,
            JobEnd::NotRecorded => self.not_recorded += 1,
            JobEnd::LeftToLease => self.left_to_lease += 1,
        }
    }
}

/// Holds one fetched job: keeps its lease while it waits for its turn (a slot, handed over by
/// the loop in the order the jobs were fetched), runs its command, and reports a failure (a
/// completion goes back to the loop to be batched).
pub async fn run_job(
    context: Arc<Context>,
    job: FetchedJob,
    turn: oneshot::Receiver<OwnedSemaphorePermit>,
) -> JobDone {
    let (kill, mut kill_receiver) = watch::channel(false);
    let heartbeats = tokio::spawn(heartbeat(Arc::clone(&context), job.clone(), kill));
    // Waiting for a slot ends early when the job is no longer ours (a refused heartbeat) or
    // the worker is told to stop now.
    let slot = tokio::select! {
        biased;
        Ok(_) = kill_receiver.wait_for(|kill| *kill) => None,
        permit = turn => permit.ok(),
    };
    // A slot handed over just as the worker was told to stop now starts nothing either.
    let slot = slot.filter(|_| !*context.force_stop.borrow());
    let Some(slot) = slot else {
        heartbeats.abort();
        return JobDone::Ended(match heartbeats.await.ok() {
            Some(KillReason::Refused) => JobEnd::NotRecorded,
            Some(KillReason::Stopped) | None => JobEnd::LeftToLease,
        });
    };
    let started = Instant::now();
    let output = run_command(&context.command, &job, kill_receiver).await;
    // The next job waiting for a slot starts now, while this one's outcome is sent.
    drop(slot);
    heartbeats.abort();
    let killed = heartbeats.await.ok();
    let elapsed_ms = started.elapsed().as_millis();
    let (id, attempt) = (job.id.as_str(), job.attempt);
    let outcome = match killed {
        // The broker has already said it will not take this attempt's outcome.
        Some(KillReason::Refused) => return JobDone::Ended(JobEnd::NotRecorded),
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
            debug!("job {id} attempt {attempt} ran in {elapsed_ms} ms");
            JobDone::Complete(Completion {
                id: job.id.clone(),
                attempt,
                result,
            })
        }
        Report::Fail { error } => {
            let first_line = error.lines().next().unwrap_or_default();
            warn!("job {id} attempt {attempt} failed after {elapsed_ms} ms: {first_line}");
            let sent = report(&job, "fail", || {
                context.client.fail_job(&context.queue, id, attempt, &error)
            })
            .await;
            JobDone::Ended(if sent {
                JobEnd::Failed
            } else {
                JobEnd::NotRecorded
            })
        }
    }
}

/// Sends a fail, retrying while the broker is unreachable; true once recorded.
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

/// Why a job's command was killed (or never started).
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
pub fn heartbeat_ms(context: &Context, timeout_ms: Option<u64>) -> u64 {
    context
        .heartbeat_ms
        .unwrap_or_else(|| timeout_ms.unwrap_or(context.lease_ms) / 3)
        .max(HEARTBEAT_MS_MIN)
}

/// Worth retrying: the broker could not be reached or was briefly unable to answer.
pub fn is_transient(error: &ClientError) -> bool {
    match error {
        ClientError::Transport { .. } => true,
        ClientError::Api { code, .. } => {
            matches!(code.as_str(), "unavailable" | "internal") || code.starts_with("http_5")
        }
        ClientError::Protocol { .. } | ClientError::InvalidServer { .. } => false,
    }
}

pub fn explain_refusal(error: &ClientError) -> &'static str {
    match error.code() {
        "stale_attempt" | "unknown_delivery" => {
            " (the job was cancelled, or its lease ran out and it was given to another worker)"
        }
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
