//! One driver per system, each in its own file, each speaking only that system's client
//! protocol. A driver gets a [`Context`] and returns a [`Measurement`], or
//! [`BenchError::NotSupported`] for a workload the system has no way to do.
//!
//! What the drivers share lives here: the run context (settings, progress bar, unique names)
//! and the jobs drain, which every queueing system runs the same way: the jobs are enqueued
//! first (not timed), the workers connect (not timed), then the clock runs until the last job
//! is finished.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use tokio::task::JoinSet;

use crate::error::{BenchError, Result};
use crate::load::{self, Budget, Measurement};
use crate::settings::{Settings, System, Workload};

pub mod http1;
pub mod jetstream;
pub mod kafka;
pub mod nats;
pub mod nats_routing;
pub mod omnibus_http;
pub mod rabbitmq;
pub mod redis;

/// Extra time after a run's deadline for in-flight work to come back before it is abandoned.
pub const GRACE: Duration = Duration::from_secs(5);

/// What a driver is given.
#[derive(Debug, Clone)]
pub struct Context {
    pub settings: Settings,
    pub progress: ProgressBar,
    /// Makes this run's stream, queue and topic names unique, so runs never share data.
    pub run_id: String,
}

impl Context {
    pub fn new(settings: Settings, progress: ProgressBar) -> Context {
        let run_id = format!("{:x}", crate::load::now_micros());
        Context {
            settings,
            progress,
            run_id,
        }
    }

    /// A name for something this run creates: `bench-jobs-18c2…`.
    pub fn name(&self, what: &str) -> String {
        format!("{}-{what}-{}", self.settings.prefix, self.run_id)
    }

    /// A budget of `limit` messages over the run's duration, shown on the progress bar.
    pub fn budget(&self, limit: u64) -> Arc<Budget> {
        self.progress.set_length(limit);
        self.progress.set_position(0);
        Arc::new(Budget::new(limit, self.settings.duration()).with_progress(self.progress.clone()))
    }
}

/// Runs the context's workload on its system.
pub async fn run(context: &Context) -> Result<Measurement> {
    context.settings.validate()?;
    let jobs = context.settings.workload == crate::settings::Workload::Jobs;
    let mode = context.settings.mode;
    let system = context.settings.system;
    if jobs && mode == crate::settings::JobMode::OneChained && system != System::OmnibusHttp {
        return Err(not_supported(
            context,
            "one-chained needs a call that finishes a job and takes the next (Omnibus HTTP only)",
        ));
    }
    if jobs
        && mode == crate::settings::JobMode::OnePipelined
        && !matches!(system, System::OmnibusHttp | System::Redis)
    {
        return Err(not_supported(
            context,
            "one-pipelined is built for Omnibus HTTP and Redis only",
        ));
    }
    match context.settings.system {
        System::OmnibusHttp => omnibus_http::run(context).await,
        System::Kafka => kafka::run(context).await,
        System::Redis => redis::run(context).await,
        System::Nats => nats::run(context).await,
        System::Jetstream => jetstream::run(context).await,
        System::Rabbitmq => rabbitmq::run(context).await,
    }
}

pub fn not_supported(context: &Context, why: &str) -> BenchError {
    BenchError::NotSupported(format!(
        "{} {}: {why}",
        context.settings.system.name(),
        context.settings.workload.name()
    ))
}

/// Drains the jobs: one task per worker (each with the connection it was given), all sharing
/// one budget of `jobs`; the clock stops at the last finished job, not when the last worker
/// notices there is nothing left.
pub async fn drain<W, F, Fut>(
    context: &Context,
    jobs: u64,
    workers: Vec<W>,
    work: F,
) -> Result<Measurement>
where
    W: Send + 'static,
    F: Fn(W, Arc<Budget>) -> Fut,
    Fut: Future<Output = Result<Option<Instant>>> + Send + 'static,
{
    let budget = context.budget(jobs);
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for worker in workers {
        tasks.spawn(work(worker, budget.clone()));
    }
    let mut last_finished = started;
    while let Some(joined) = tasks.join_next().await {
        let finished = joined.map_err(|error| BenchError::Incomplete(error.to_string()))??;
        if let Some(finished) = finished {
            last_finished = last_finished.max(finished);
        }
    }
    Ok(measurement(&budget, last_finished - started, None))
}

/// The publish shape every driver shares: one producer per connected client, all taking
/// messages from one budget of `--messages`, timed from the first send to the last answer,
/// with each producer's latencies merged. `produce` is one producer's loop.
pub async fn timed_producers<C, F, Fut>(
    context: &Context,
    clients: Vec<C>,
    produce: F,
) -> Result<Measurement>
where
    C: Send + 'static,
    F: Fn(C, Arc<Budget>) -> Fut,
    Fut: Future<Output = Result<hdrhistogram::Histogram<u64>>> + Send + 'static,
{
    let budget = context.budget(context.settings.messages);
    let started = Instant::now();
    let mut producers = JoinSet::new();
    for client in clients {
        producers.spawn(produce(client, budget.clone()));
    }
    let latencies = join_histograms(producers).await?;
    let mut result = measurement(&budget, started.elapsed(), None);
    result.latency = Some(latencies);
    Ok(result)
}

/// Waits for every task and merges the histograms they return.
pub async fn join_histograms(
    mut tasks: JoinSet<Result<hdrhistogram::Histogram<u64>>>,
) -> Result<hdrhistogram::Histogram<u64>> {
    let mut merged = load::histogram();
    while let Some(joined) = tasks.join_next().await {
        let histogram = joined.map_err(|error| BenchError::Incomplete(error.to_string()))??;
        load::merge(&mut merged, [histogram]);
    }
    Ok(merged)
}

/// A measurement of what the budget completed; a run cut short by its deadline says so.
pub fn measurement(budget: &Budget, elapsed: Duration, note: Option<String>) -> Measurement {
    let mut note = note;
    if !budget.complete() {
        let short = format!("time ran out: {} of {} done", budget.done(), budget.limit());
        note = Some(match note {
            Some(note) => format!("{note}; {short}"),
            None => short,
        });
    }
    Measurement {
        operations: budget.done(),
        elapsed,
        latency: None,
        note,
    }
}

/// Whether a jobs worker should keep going.
pub fn keep_working(budget: &Budget) -> bool {
    !budget.complete() && !budget.expired()
}

/// The workload of the context, for drivers' `match`.
pub fn workload(context: &Context) -> Workload {
    context.settings.workload
}

/// What the sending side of a latency run has done, for the receiving side to know when to
/// stop.
#[derive(Debug, Default)]
struct Sending {
    acknowledged: std::sync::atomic::AtomicU64,
    finished: std::sync::atomic::AtomicBool,
}

/// The receiving side of a latency run: records each stamped payload and says when to stop
/// (every acknowledged message arrived after the senders finished, or the grace ran out).
#[derive(Debug)]
pub struct Receiver {
    latencies: hdrhistogram::Histogram<u64>,
    received: u64,
    sending: Arc<Sending>,
    give_up_at: Instant,
}

impl Receiver {
    pub fn waiting(&self) -> bool {
        use std::sync::atomic::Ordering;
        let done = self.sending.finished.load(Ordering::Acquire)
            && self.received >= self.sending.acknowledged.load(Ordering::Acquire);
        !done && Instant::now() < self.give_up_at
    }

    pub fn received(&mut self, payload: &[u8]) -> Result<()> {
        crate::load::record_stamp(&mut self.latencies, payload)?;
        self.received += 1;
        Ok(())
    }

    /// How long a blocking receive may wait before the receiver should look at
    /// [`Receiver::waiting`] again.
    pub fn poll_interval(&self) -> Duration {
        Duration::from_millis(50)
    }
}

/// A latency run: `receive` runs in its own task (subscribed before this is called, so it
/// misses nothing) while `send` is called at the run's rate with each message's send time.
pub async fn latency_run<S, SendFuture, R, ReceiveFuture>(
    context: &Context,
    send: S,
    receive: R,
) -> Result<Measurement>
where
    S: FnMut(u64) -> SendFuture,
    SendFuture: Future<Output = Result<()>>,
    R: FnOnce(Receiver) -> ReceiveFuture,
    ReceiveFuture: Future<Output = Result<Receiver>> + Send + 'static,
{
    use std::sync::atomic::Ordering;
    let settings = &context.settings;
    let budget = context.budget(settings.messages);
    let sending = Arc::new(Sending::default());
    let receiver = Receiver {
        latencies: crate::load::histogram(),
        received: 0,
        sending: sending.clone(),
        give_up_at: budget.deadline() + GRACE,
    };
    let receiving = tokio::spawn(receive(receiver));
    let started = Instant::now();
    let sent = crate::load::run_paced(&budget, settings.rate, settings.in_flight, send).await;
    let elapsed = started.elapsed();
    sending
        .acknowledged
        .store(*sent.as_ref().unwrap_or(&0), Ordering::Release);
    sending.finished.store(true, Ordering::Release);
    let sent = match sent {
        Ok(sent) => sent,
        Err(error) => {
            receiving.abort();
            return Err(error);
        }
    };
    let receiver = receiving
        .await
        .map_err(|error| BenchError::Incomplete(error.to_string()))??;
    let mut note = None;
    if receiver.received < sent {
        note = Some(format!(
            "{} of {sent} acknowledged messages were not received within {} s",
            sent - receiver.received,
            GRACE.as_secs()
        ));
    }
    Ok(Measurement {
        operations: receiver.received,
        elapsed,
        latency: Some(receiver.latencies),
        note,
    })
}

/// Reads what `stream` has, up to `room` bytes, onto the end of `buffer`; returns how many
/// arrived (0: the peer closed the connection). The harness's own clients (`http1.rs`,
/// `rabbitmq/publisher.rs`, `redis/appender.rs`) keep unparsed bytes in a `Vec` this way.
pub(crate) async fn read_into(
    stream: &mut tokio::net::TcpStream,
    buffer: &mut Vec<u8>,
    room: usize,
) -> std::io::Result<usize> {
    use tokio::io::AsyncReadExt;
    let start = buffer.len();
    buffer.resize(start + room, 0);
    let read = stream.read(&mut buffer[start..]).await;
    buffer.truncate(start + *read.as_ref().unwrap_or(&0));
    read
}
