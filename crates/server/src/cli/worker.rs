//! `omnibus worker QUEUE --exec 'CMD'`: turns any program into a job worker.
//!
//! The worker holds up to `--prefetch` jobs at once (at least `--concurrency`): the ones whose
//! command runs, and the ones fetched ahead waiting for a free slot, so that a slot that frees
//! starts its next job with no round trip. Each held job is its own task (see
//! [`super::worker_job`]): from the moment it is fetched its lease is extended by a heartbeat
//! (a progress report) every `--heartbeat-ms` (a third of the lease by default), so a job that
//! waits in the buffer longer than that keeps its lease like a running one. Exit 0 completes the
//! job with stdout as its result, anything else fails it with stderr.
//!
//! Round trips: completions are not sent one by one. They gather while a request is in flight
//! and go together in the next `POST jobs/complete`, which also asks for as many new jobs as
//! there is room for (one request, one commit on the broker, finishes a batch and refills the
//! buffer). When the queue runs dry, the worker long-polls for jobs instead, and completions
//! that end meanwhile are sent on their own so that they never wait out the poll. Failures are
//! reported by their job at once (`jobs/{id}/fail`): there is no batch form.
//!
//! Stopping: the first SIGINT/SIGTERM stops fetching and lets every held job run to its end,
//! the ones waiting in the buffer too: they are leased to us, and abandoning them would leave
//! them waiting out their lease. A fetch already in flight is waited for (at most its long
//! poll), and the jobs it brings are run too. A second signal kills the running commands (their
//! jobs fail with that reason and are retried per the queue's policy), starts none of the jobs
//! still waiting, and abandons a fetch in flight — whatever was leased and not run, the broker
//! redelivers once the lease runs out: at-least-once, as always.
//!
//! `--max-jobs N` is exact: the worker never asks for more jobs than N minus the ones it has
//! fetched and asked for, so it never runs more than N.
//!
//! What is never fatal: a complete / fail / heartbeat the broker refuses (the job was
//! cancelled, or its lease ran out and it went to another worker — then this attempt's outcome
//! no longer counts), and a broker that is briefly unreachable (we retry with backoff).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use omnibus_engine::jobs::JOBS_PER_CALL_MAX;
use tokio::sync::{oneshot, watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::{JoinError, JoinHandle, JoinSet};
use tracing::{info, warn};

use crate::cli::client::{Client, ClientError};
use crate::cli::wire_jobs::{Completion, FetchedJob};
use crate::cli::worker_command::CommandSpec;
use crate::cli::worker_job::{
    explain_refusal, heartbeat_ms, is_transient, run_job, Context, JobDone, JobEnd, Tally,
    HEARTBEAT_MS_MIN, REPORT_TRIES_MAX, RETRY_PAUSE_MS_MAX, RETRY_PAUSE_MS_MIN,
};
use crate::signals::Signals;

/// How long one long poll waits on the broker for a job.
const FETCH_WAIT_MS: u64 = 5_000;
/// If an empty long poll comes back faster than this, pause this long before the next.
const EMPTY_POLL_PAUSE_MS: u64 = 100;
/// Most commands one worker runs at once.
const CONCURRENCY_MAX: u64 = 1_024;
/// Most jobs one worker holds at once (running and fetched ahead): one fetch's worth.
const PREFETCH_MAX: u64 = JOBS_PER_CALL_MAX as u64;

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
    /// Jobs held at once: running, or fetched ahead and waiting for a free slot (their leases
    /// are kept by heartbeats while they wait). Raised to --concurrency if lower
    /// [default: --concurrency].
    #[arg(long, value_name = "N",
        value_parser = clap::value_parser!(u64).range(1..=PREFETCH_MAX))]
    pub prefetch: Option<u64>,
    /// Worker name the broker sees [default: HOST-PID].
    #[arg(long, value_name = "WORKER")]
    pub name: Option<String>,
    /// Extend a held job's lease this often [default: a third of the lease].
    #[arg(long, value_name = "MS",
        value_parser = clap::value_parser!(u64).range(HEARTBEAT_MS_MIN..))]
    pub heartbeat_ms: Option<u64>,
    /// Exit once this many jobs have been run.
    #[arg(long, value_name = "N")]
    pub max_jobs: Option<u64>,
}

pub async fn run(client: &Client, args: WorkerArgs) -> anyhow::Result<()> {
    // Also checks that the queue exists before anything runs.
    let queue = client.queue_info(&args.queue).await?;
    let worker = args.name.clone().unwrap_or_else(default_worker_name);
    let signals = Signals::install()?;
    let (force_stop_sender, force_stop) = watch::channel(false);
    let concurrency = args.concurrency as usize;
    let held_max = args
        .prefetch
        .unwrap_or(args.concurrency)
        .max(args.concurrency) as usize;
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
        "worker {worker} running `{}` for queue {} ({concurrency} at once, {held_max} held, \
         lease {} ms, heartbeat every {} ms)",
        args.exec,
        args.queue,
        context.lease_ms,
        heartbeat_ms(&context, None),
    );
    let mut supervisor = Supervisor {
        context,
        worker: worker.clone(),
        held_max,
        max_jobs: args.max_jobs,
        signals,
        force_stop: force_stop_sender,
        jobs: JoinSet::new(),
        slots: Arc::new(Semaphore::new(concurrency)),
        turns: VecDeque::new(),
        tally: Tally::default(),
        fetched: 0,
        stopping: false,
        failure: None,
        retry_pause_ms: RETRY_PAUSE_MS_MIN,
        paused_until: None,
        completions: Vec::new(),
        quick: None,
        poll: None,
        drained: true,
    };
    while supervisor.step().await {}
    let tally = &supervisor.tally;
    let left = match tally.left_to_lease {
        0 => String::new(),
        left => format!(", {left} never started (left to their lease)"),
    };
    info!(
        "worker {worker} stopped: {} completed, {} failed, {} not recorded{left}",
        tally.completed, tally.failed, tally.not_recorded
    );
    match supervisor.failure {
        Some(error) => Err(error),
        None => Ok(()),
    }
}

/// A completion waiting to be sent, with how many times sending it already failed.
#[derive(Debug)]
struct PendingCompletion {
    completion: Completion,
    tries: u32,
}

/// One request in flight: completions to record and/or jobs to fetch.
struct Exchange {
    completions: Vec<PendingCompletion>,
    /// Jobs asked for (0: completions only).
    asked: usize,
    /// How long the broker may hold it open when no job is ready.
    wait_ms: u64,
    /// When it was sent, to tell a broker that does not hold a poll open.
    sent: Instant,
    answer: JoinHandle<ExchangeAnswer>,
}

/// What came back for an [`Exchange`].
enum ExchangeAnswer {
    /// One outcome per completion, and the fetch's own outcome when jobs were asked for.
    Answered {
        completions: Vec<Result<(), ClientError>>,
        next: Option<Result<Vec<FetchedJob>, ClientError>>,
    },
    /// The request as a whole failed: nothing is known to be recorded or leased.
    Failed(ClientError),
}

/// The worker's loop state: the held jobs, the requests in flight, and whether (and why) we
/// are stopping.
struct Supervisor {
    context: Arc<Context>,
    worker: String,
    /// Most jobs held at once (running or waiting for a slot).
    held_max: usize,
    max_jobs: Option<u64>,
    signals: Signals,
    force_stop: watch::Sender<bool>,
    /// One task per held job.
    jobs: JoinSet<JobDone>,
    /// One permit per command allowed to run at once (`--concurrency`).
    slots: Arc<Semaphore>,
    /// The held jobs waiting for a slot, in the order they were fetched: a freed slot goes to
    /// the first (the tasks themselves would take slots in whatever order they happen to run).
    turns: VecDeque<oneshot::Sender<OwnedSemaphorePermit>>,
    tally: Tally,
    /// Jobs fetched so far, for `--max-jobs`.
    fetched: u64,
    stopping: bool,
    /// Why the worker stops with an error, once its held jobs are done.
    failure: Option<anyhow::Error>,
    retry_pause_ms: u64,
    /// No request is sent before this (after a failed one, or an empty poll that came back
    /// at once).
    paused_until: Option<tokio::time::Instant>,
    /// Completions not yet sent.
    completions: Vec<PendingCompletion>,
    /// A request that does not wait on the broker: completions, and jobs while the queue has
    /// them.
    quick: Option<Exchange>,
    /// A long poll for jobs, once the queue ran dry.
    poll: Option<Exchange>,
    /// The last fetch brought fewer jobs than asked: the next ones are long-polled for.
    drained: bool,
}

impl Supervisor {
    /// One turn of the loop: send what can be sent, then wait for something to happen. False
    /// when done.
    async fn step(&mut self) -> bool {
        self.send();
        if self.stopping
            && self.jobs.is_empty()
            && self.completions.is_empty()
            && self.quick.is_none()
            && self.poll.is_none()
        {
            return false;
        }
        let paused_until = self.paused_until;
        tokio::select! {
            Some(ended) = self.jobs.join_next() => self.on_job_done(ended),
            permit = Arc::clone(&self.slots).acquire_owned(), if !self.turns.is_empty() => {
                if let Ok(permit) = permit {
                    self.start_next(permit);
                }
            }
            answer = finished(&mut self.quick) => {
                let exchange = self.quick.take().expect("in flight");
                self.on_answer(exchange, answer);
            }
            answer = finished(&mut self.poll) => {
                let exchange = self.poll.take().expect("in flight");
                self.on_answer(exchange, answer);
            }
            () = tokio::time::sleep_until(paused_until.unwrap_or_else(tokio::time::Instant::now)),
                if paused_until.is_some() => self.paused_until = None,
            signal = self.signals.next() => self.on_signal(signal),
        }
        true
    }

    /// Jobs to ask for now: room in the buffer, within what `--max-jobs` leaves.
    fn wanted(&self) -> usize {
        if self.stopping {
            return 0;
        }
        let asked =
            self.quick.as_ref().map_or(0, |e| e.asked) + self.poll.as_ref().map_or(0, |e| e.asked);
        let room = self.held_max.saturating_sub(self.jobs.len() + asked);
        let left = self.max_jobs.map_or(u64::MAX, |max| {
            max.saturating_sub(self.fetched + asked as u64)
        });
        room.min(usize::try_from(left).unwrap_or(usize::MAX))
            .min(JOBS_PER_CALL_MAX)
    }

    /// Sends the pending completions and asks for jobs, when a request can go.
    fn send(&mut self) {
        if self.max_jobs.is_some_and(|max| self.fetched >= max) {
            self.stopping = true;
        }
        if self.paused_until.is_some() {
            return;
        }
        if self.quick.is_none() {
            let asked = if self.drained { 0 } else { self.wanted() };
            if asked > 0 || !self.completions.is_empty() {
                let completions = self.take_completions();
                self.quick = Some(self.exchange(completions, asked, 0));
            }
        }
        if self.poll.is_none() && self.drained {
            let asked = self.wanted();
            if asked > 0 {
                self.poll = Some(self.exchange(Vec::new(), asked, FETCH_WAIT_MS));
            }
        }
    }

    fn take_completions(&mut self) -> Vec<PendingCompletion> {
        let count = self.completions.len().min(JOBS_PER_CALL_MAX);
        self.completions.drain(..count).collect()
    }

    /// Starts a request: completes `completions` and fetches up to `asked` jobs, waiting up to
    /// `wait_ms` for the first.
    fn exchange(
        &self,
        completions: Vec<PendingCompletion>,
        asked: usize,
        wait_ms: u64,
    ) -> Exchange {
        let context = Arc::clone(&self.context);
        let worker = self.worker.clone();
        let batch: Vec<Completion> = completions
            .iter()
            .map(|pending| pending.completion.clone())
            .collect();
        let answer = tokio::spawn(async move {
            let (client, queue) = (&context.client, context.queue.as_str());
            if batch.is_empty() {
                return match client.fetch_jobs(queue, &worker, asked, wait_ms).await {
                    Ok(jobs) => ExchangeAnswer::Answered {
                        completions: Vec::new(),
                        next: Some(Ok(jobs)),
                    },
                    Err(error) => ExchangeAnswer::Failed(error),
                };
            }
            let fetch = (asked > 0).then_some((worker.as_str(), asked, wait_ms));
            match client.complete_jobs(queue, &batch, fetch).await {
                Ok(answer) => ExchangeAnswer::Answered {
                    completions: answer.results,
                    next: answer.next,
                },
                Err(error) => ExchangeAnswer::Failed(error),
            }
        });
        Exchange {
            completions,
            asked,
            wait_ms,
            sent: Instant::now(),
            answer,
        }
    }

    fn on_job_done(&mut self, ended: Result<JobDone, JoinError>) {
        match ended {
            Ok(JobDone::Complete(completion)) => self.completions.push(PendingCompletion {
                completion,
                tries: 0,
            }),
            Ok(JobDone::Ended(end)) => self.tally.add(end),
            Err(error) => {
                warn!("a job task ended abnormally: {error}");
                self.tally.add(JobEnd::NotRecorded);
            }
        }
    }

    fn on_answer(&mut self, exchange: Exchange, answer: Result<ExchangeAnswer, JoinError>) {
        let answer = match answer {
            Ok(answer) => answer,
            Err(error) => {
                warn!("a request task ended abnormally: {error}");
                for _ in exchange.completions {
                    self.tally.add(JobEnd::NotRecorded);
                }
                if exchange.asked > 0 && self.failure.is_none() {
                    self.failure = Some(anyhow::anyhow!("a fetch ended abnormally: {error}"));
                    self.stopping = true;
                }
                return;
            }
        };
        match answer {
            ExchangeAnswer::Answered { completions, next } => {
                for (pending, outcome) in exchange.completions.into_iter().zip(completions) {
                    match outcome {
                        Ok(()) => self.tally.add(JobEnd::Completed),
                        Err(error) => {
                            self.not_recorded(&pending.completion, &error);
                        }
                    }
                }
                match next {
                    None => self.retry_pause_ms = RETRY_PAUSE_MS_MIN,
                    Some(Ok(jobs)) => {
                        self.retry_pause_ms = RETRY_PAUSE_MS_MIN;
                        self.drained = jobs.len() < exchange.asked;
                        let at_once =
                            exchange.sent.elapsed() < Duration::from_millis(EMPTY_POLL_PAUSE_MS);
                        let long_poll = exchange.wait_ms > 0;
                        if jobs.is_empty() && long_poll && at_once && !self.stopping {
                            // A broker that does not hold the poll open must not make us spin.
                            self.pause(EMPTY_POLL_PAUSE_MS);
                        }
                        self.hold(jobs);
                    }
                    Some(Err(error)) => self.fetch_failed(error),
                }
            }
            ExchangeAnswer::Failed(error) => {
                let transient = is_transient(&error);
                for mut pending in exchange.completions {
                    pending.tries += 1;
                    if transient && pending.tries < REPORT_TRIES_MAX {
                        self.completions.push(pending);
                    } else {
                        self.not_recorded(&pending.completion, &error);
                    }
                }
                if exchange.asked > 0 {
                    self.fetch_failed(error);
                } else if transient {
                    warn!("cannot send completions ({error}); retrying");
                    self.back_off();
                }
            }
        }
    }

    /// Starts a task for each fetched job; it runs once a slot is handed to it.
    fn hold(&mut self, jobs: Vec<FetchedJob>) {
        for job in jobs {
            self.fetched += 1;
            let (turn, wait) = oneshot::channel();
            self.turns.push_back(turn);
            self.jobs
                .spawn(run_job(Arc::clone(&self.context), job, wait));
        }
    }

    /// Hands a free slot to the first held job still waiting for one (a job that ended while
    /// waiting — refused, or the second signal — gives it back at once).
    fn start_next(&mut self, mut permit: OwnedSemaphorePermit) {
        while let Some(turn) = self.turns.pop_front() {
            match turn.send(permit) {
                Ok(()) => return,
                Err(unused) => permit = unused,
            }
        }
    }

    fn not_recorded(&mut self, completion: &Completion, error: &ClientError) {
        warn!(
            "job {} attempt {}: the broker did not record complete: {error}{}",
            completion.id,
            completion.attempt,
            explain_refusal(error)
        );
        self.tally.add(JobEnd::NotRecorded);
    }

    fn fetch_failed(&mut self, error: ClientError) {
        if is_transient(&error) {
            warn!(
                "cannot fetch jobs ({error}); retrying in {} ms",
                self.retry_pause_ms
            );
            self.back_off();
        } else if self.failure.is_none() {
            // Let the held jobs finish first: their outcomes may still be recorded.
            self.failure = Some(error.into());
            self.stopping = true;
        }
    }

    /// Pauses before the next request, longer each time while the broker stays unreachable.
    fn back_off(&mut self) {
        let pause_ms = self.retry_pause_ms;
        self.pause(pause_ms);
        self.retry_pause_ms = (pause_ms * 2).min(RETRY_PAUSE_MS_MAX);
    }

    fn pause(&mut self, pause_ms: u64) {
        self.paused_until = Some(tokio::time::Instant::now() + Duration::from_millis(pause_ms));
    }

    /// The first signal stops fetching; the next ones kill the running commands, start none
    /// of the jobs waiting for a slot (see [`run_job`]), and abandon a long poll in flight.
    fn on_signal(&mut self, signal: &str) {
        let held = self.jobs.len();
        if self.stopping {
            warn!("received {signal} again; killing the running commands of {held} held jobs");
            let _ = self.force_stop.send(true);
            // No job waiting for a slot may start now: a slot freed by a killed command would
            // otherwise go to the next in line before its own task sees the kill. Their tasks
            // see the turn dropped and leave the job to its lease.
            self.turns.clear();
            // A long poll holds nothing to record; whatever it leases waits out its lease.
            if let Some(poll) = self.poll.take() {
                poll.answer.abort();
            }
        } else {
            info!(
                "received {signal}; no more jobs will be fetched; waiting for the {held} held \
                 jobs, running or fetched ahead (send it again to kill them)"
            );
            self.stopping = true;
        }
    }
}

/// The answer of an exchange in flight; never resolves when there is none.
async fn finished(exchange: &mut Option<Exchange>) -> Result<ExchangeAnswer, JoinError> {
    match exchange {
        Some(exchange) => (&mut exchange.answer).await,
        None => std::future::pending().await,
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
        assert_eq!(args.prefetch, None);

        let args = parse(&[
            "q",
            "--exec",
            "./run.sh --fast",
            "--concurrency",
            "4",
            "--prefetch",
            "64",
            "--name",
            "w1",
            "--heartbeat-ms",
            "250",
            "--max-jobs",
            "200",
        ])
        .unwrap();
        assert_eq!(args.concurrency, 4);
        assert_eq!(args.prefetch, Some(64));
        assert_eq!(args.name.as_deref(), Some("w1"));
        assert_eq!(args.heartbeat_ms, Some(250));
        assert_eq!(args.max_jobs, Some(200));

        assert!(parse(&["q"]).is_err(), "--exec is required");
        assert!(parse(&["q", "--exec", "x", "--concurrency", "0"]).is_err());
        assert!(parse(&["q", "--exec", "x", "--concurrency", "5000"]).is_err());
        assert!(parse(&["q", "--exec", "x", "--heartbeat-ms", "1"]).is_err());
        assert!(parse(&["q", "--exec", "x", "--prefetch", "0"]).is_err());
        assert!(parse(&["q", "--exec", "x", "--prefetch", "10001"]).is_err());
    }
}
