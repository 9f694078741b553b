//! Omnibus through its HTTP API (docs/http-api.md).
//!
//! - publish: `POST /v1/streams/{s}/records` with `{"records":[…]}` (`--batch` records per
//!   request, one record by default), answered after the stream's fsync policy acknowledged
//!   them; each producer has its own client and keeps `--in-flight` requests open.
//! - consume: a stream pre-filled with `--messages` records (not timed), then one consumer per
//!   `--producers` reading its share of the partitions with fetch and committing the group
//!   offset after every fetch.
//! - latency: one record per publish at `--rate`; a consumer long-polls each partition.
//! - jobs: a queue created with `--completions` passed through (a broker that refuses the field
//!   gets the queue without it), `--jobs` enqueued in batches, then each worker, with its own
//!   connection (a lean HTTP/1.1 client, `http1.rs`): `one` = `jobs/fetch` max 1 + `jobs/{id}/complete`;
//!   `one-chained` = `jobs/complete` for the one job with `fetch` taking the next;
//!   `one-pipelined` = the same on `--worker-prefetch` connections per worker, one request in
//!   flight on each;
//!   `batched` = `jobs/complete` for up to 100 with `fetch` taking the next ones in the same
//!   request.
//! - request-reply: not supported (no request-reply door yet).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::task::{JoinHandle, JoinSet};

use super::http1::Http1;
use super::{drain, join_histograms, keep_working, measurement, not_supported, Context};
use crate::error::{BenchError, Result};
use crate::load::{self, Budget, Measurement};
use crate::settings::{JobMode, Workload};

/// Records or jobs per request when filling a stream or a queue before the clock starts.
const FILL_BATCH: u64 = 1_000;
/// How long a fetch waits on the broker for records or jobs; short, so a worker notices soon
/// that the others finished the run.
const POLL_WAIT_MS: u64 = 50;

/// A client of one broker's HTTP API.
#[derive(Debug, Clone)]
pub struct Api {
    client: reqwest::Client,
    base: String,
}

impl Api {
    /// A new client, so a new connection pool: workers each get their own connection.
    pub fn new(address: &str) -> Api {
        Api {
            client: reqwest::Client::new(),
            base: format!("http://{address}"),
        }
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<Value> {
        let response = request.send().await?;
        let status = response.status();
        let bytes = response.bytes().await?;
        if !status.is_success() {
            return Err(BenchError::Broker {
                system: "omnibus-http",
                status: status.to_string(),
                body: String::from_utf8_lossy(&bytes).into_owned(),
            });
        }
        if bytes.is_empty() || status == StatusCode::NO_CONTENT {
            return Ok(Value::Null);
        }
        Ok(serde_json::from_slice(&bytes)?)
    }

    pub async fn post(&self, path: &str, body: &Value) -> Result<Value> {
        let url = format!("{}{path}", self.base);
        self.send(self.client.post(url).json(body)).await
    }

    /// [`Api::post`] asking for the short answer (`Prefer: return=minimal`): a worker that
    /// throws the finished job's record away does not have it rendered.
    pub async fn post_minimal(&self, path: &str, body: &Value) -> Result<Value> {
        let url = format!("{}{path}", self.base);
        let request = self
            .client
            .post(url)
            .header("prefer", "return=minimal")
            .json(body);
        self.send(request).await
    }

    /// Posts a body that is already JSON text (publish bodies are built once and reused).
    pub async fn post_text(&self, path: &str, body: Arc<String>) -> Result<Value> {
        let url = format!("{}{path}", self.base);
        let request = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.as_ref().clone());
        self.send(request).await
    }

    pub async fn get(&self, path: &str) -> Result<Value> {
        self.send(self.client.get(format!("{}{path}", self.base)))
            .await
    }
}

pub async fn run(context: &Context) -> Result<Measurement> {
    match context.settings.workload {
        Workload::KeyValue => Err(not_supported(
            context,
            "a Redis strings workload (use --system redis)",
        )),
        Workload::FanOut | Workload::Routing => Err(not_supported(
            context,
            "a core NATS routing workload (use --system nats)",
        )),
        Workload::Publish => publish(context).await,
        Workload::Consume => consume(context).await,
        Workload::Latency => latency(context).await,
        Workload::Jobs => jobs(context).await,
        Workload::Enqueue => enqueue(context).await,
        Workload::RequestReply => Err(not_supported(
            context,
            "Omnibus has no request-reply door yet",
        )),
    }
}

/// `{"records":[{"value":"xx…"}, …]}` with `count` records of the run's size.
fn records_body(count: u64, size: usize) -> Arc<String> {
    let value = String::from_utf8(load::payload(size)).unwrap_or_default();
    let records: Vec<Value> = (0..count).map(|_| json!({ "value": value })).collect();
    Arc::new(json!({ "records": records }).to_string())
}

async fn create_stream(api: &Api, name: &str, partitions: usize) -> Result<()> {
    api.post(
        "/v1/streams",
        &json!({ "name": name, "partitions": partitions }),
    )
    .await?;
    Ok(())
}

async fn publish(context: &Context) -> Result<Measurement> {
    let settings = &context.settings;
    let stream = context.name("publish");
    create_stream(&Api::new(&settings.address()), &stream, settings.producers).await?;
    let path = format!("/v1/streams/{stream}/records");
    post_in_windows(context, path, records_body, None).await
}

/// Acknowledged job enqueues: `--producers` producers, each with `--in-flight` requests of
/// `--batch` jobs open; jobs/s and each request's round trip.
async fn enqueue(context: &Context) -> Result<Measurement> {
    let settings = &context.settings;
    let queue = context.name("enqueue");
    let note = create_queue(
        &Api::new(&settings.address()),
        &queue,
        settings.completions.as_deref(),
    )
    .await?;
    let path = format!("/v1/queues/{queue}/jobs");
    post_in_windows(context, path, jobs_body, note).await
}

/// `--producers` producers, each with `--in-flight` POSTs to `path` open — one connection per
/// open request (HTTP/1.1 answers a connection's requests one after the other), opened before
/// the clock starts — each carrying `--batch` items built by `body` (the full-size body built
/// once), until `--messages` items are acknowledged; the round trip of every request.
async fn post_in_windows(
    context: &Context,
    path: String,
    body: fn(u64, usize) -> Arc<String>,
    note: Option<String>,
) -> Result<Measurement> {
    let settings = &context.settings;
    let full_body = body(settings.batch as u64, settings.size);
    let mut pools = Vec::new();
    for _ in 0..settings.producers {
        let mut connections = Vec::with_capacity(settings.in_flight);
        for _ in 0..settings.in_flight.max(1) {
            connections.push(Http1::connect(&settings.address()).await?);
        }
        pools.push(Arc::new(std::sync::Mutex::new(connections)));
    }
    let budget = context.budget(settings.messages);
    let started = Instant::now();
    let mut producers = JoinSet::new();
    for pool in pools {
        let (budget, path, full_body) = (budget.clone(), path.clone(), full_body.clone());
        let (window, batch, size) = (settings.in_flight, settings.batch as u64, settings.size);
        producers.spawn(async move {
            load::run_window(&budget, window, batch, |count| {
                let body = if count == batch {
                    full_body.clone()
                } else {
                    body(count, size)
                };
                let (pool, path) = (pool.clone(), path.clone());
                async move {
                    // At most `window` sends are open, so a connection is always free.
                    let mut connection = pool
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .pop()
                        .ok_or_else(|| BenchError::Incomplete("no free connection".into()))?;
                    let outcome = connection.post(&path, body.as_bytes(), false).await;
                    pool.lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(connection);
                    outcome.map(drop)
                }
            })
            .await
        });
    }
    let latencies = join_histograms(producers).await?;
    let mut result = measurement(&budget, started.elapsed(), note);
    result.latency = Some(latencies);
    Ok(result)
}

/// The body of a job enqueue: `count` jobs with `size`-byte payloads, as JSON text.
fn jobs_body(count: u64, size: usize) -> Arc<String> {
    let payload = String::from_utf8(load::payload(size)).unwrap_or_default();
    let jobs: Vec<Value> = (0..count)
        .map(|_| json!({ "name": "bench", "payload": payload }))
        .collect();
    Arc::new(json!({ "jobs": jobs }).to_string())
}

/// Publishes `count` records to `stream` in requests of [`FILL_BATCH`], before a clock starts.
async fn fill_stream(api: &Api, stream: &str, count: u64, size: usize) -> Result<()> {
    let path = format!("/v1/streams/{stream}/records");
    let mut left = count;
    while left > 0 {
        let batch = left.min(FILL_BATCH);
        api.post_text(&path, records_body(batch, size)).await?;
        left -= batch;
    }
    Ok(())
}

async fn consume(context: &Context) -> Result<Measurement> {
    let settings = &context.settings;
    let api = Api::new(&settings.address());
    let stream = context.name("consume");
    create_stream(&api, &stream, settings.producers).await?;
    fill_stream(&api, &stream, settings.messages, settings.size).await?;
    let group = context.name("group");
    let budget = context.budget(settings.messages);
    let started = Instant::now();
    let mut consumers = JoinSet::new();
    for consumer in 0..settings.producers {
        let api = Api::new(&settings.address());
        let (budget, stream, group) = (budget.clone(), stream.clone(), group.clone());
        // With one partition per consumer, consumer i reads partition i.
        consumers
            .spawn(async move { consume_partition(api, budget, stream, group, consumer).await });
    }
    while let Some(joined) = consumers.join_next().await {
        joined.map_err(|error| BenchError::Incomplete(error.to_string()))??;
    }
    Ok(measurement(&budget, started.elapsed(), None))
}

/// Fetches one partition from the start and commits the group's offset after every fetch,
/// until the whole run's budget is consumed.
async fn consume_partition(
    api: Api,
    budget: Arc<Budget>,
    stream: String,
    group: String,
    partition: usize,
) -> Result<()> {
    let mut offset = 0u64;
    while keep_working(&budget) {
        let page = api
            .get(&format!(
                "/v1/streams/{stream}/partitions/{partition}/records?offset={offset}\
                 &max_records={FILL_BATCH}&wait_ms={POLL_WAIT_MS}"
            ))
            .await?;
        let count = page["records"].as_array().map_or(0, Vec::len) as u64;
        if count == 0 {
            continue;
        }
        offset = page["next_offset"].as_u64().ok_or_else(|| {
            BenchError::Incomplete(format!("a fetch answered without next_offset: {page}"))
        })?;
        let commit = json!({ "offsets": [
            { "stream": stream, "partition": partition, "offset": offset }
        ]});
        api.post(&format!("/v1/groups/{group}/offsets"), &commit)
            .await?;
        budget.finish(count);
    }
    Ok(())
}

async fn latency(context: &Context) -> Result<Measurement> {
    let settings = &context.settings;
    let api = Api::new(&settings.address());
    let stream = context.name("latency");
    create_stream(&api, &stream, 1).await?;
    let path = format!("/v1/streams/{stream}/records");
    let size = settings.size;
    let receiver_api = Api::new(&settings.address());
    super::latency_run(
        context,
        move |stamp| {
            let (api, path) = (api.clone(), path.clone());
            let value = String::from_utf8(load::stamped_payload(size, stamp)).unwrap_or_default();
            async move {
                let body = Arc::new(json!({ "records": [{ "value": value }] }).to_string());
                api.post_text(&path, body).await.map(drop)
            }
        },
        move |mut receiver: super::Receiver| async move {
            let mut offset = 0u64;
            while receiver.waiting() {
                let page = receiver_api
                    .get(&format!(
                        "/v1/streams/{stream}/partitions/0/records?offset={offset}\
                         &max_records={FILL_BATCH}&wait_ms={POLL_WAIT_MS}"
                    ))
                    .await?;
                for record in page["records"].as_array().into_iter().flatten() {
                    let value = record["value"].as_str().unwrap_or_default();
                    receiver.received(value.as_bytes())?;
                }
                if let Some(next) = page["next_offset"].as_u64() {
                    offset = next;
                }
            }
            Ok(receiver)
        },
    )
    .await
}

/// Creates the queue with `completions` passed through; when the broker refuses the field
/// (it does not know it yet), creates it without.
async fn create_queue(api: &Api, name: &str, completions: Option<&str>) -> Result<Option<String>> {
    if let Some(completions) = completions {
        let with = json!({ "name": name, "completions": completions });
        match api.post("/v1/queues", &with).await {
            Ok(_) => return Ok(None),
            Err(BenchError::Broker { status, .. }) if status.starts_with("400") => {}
            Err(error) => return Err(error),
        }
        api.post("/v1/queues", &json!({ "name": name })).await?;
        return Ok(Some(format!(
            "the broker refused completions={completions}; its default was used"
        )));
    }
    api.post("/v1/queues", &json!({ "name": name })).await?;
    Ok(None)
}

async fn jobs(context: &Context) -> Result<Measurement> {
    let settings = &context.settings;
    let api = Api::new(&settings.address());
    let queue = context.name("jobs");
    let note = create_queue(&api, &queue, settings.completions.as_deref()).await?;
    let payload = String::from_utf8(load::payload(settings.size)).unwrap_or_default();
    let mut left = settings.jobs;
    while left > 0 {
        let batch = left.min(FILL_BATCH);
        let jobs: Vec<Value> = (0..batch)
            .map(|_| json!({ "name": "bench", "payload": payload }))
            .collect();
        api.post(
            &format!("/v1/queues/{queue}/jobs"),
            &json!({ "jobs": jobs }),
        )
        .await?;
        left -= batch;
    }
    // A pipelined worker has a connection (lane) per job it holds, each with its own request
    // in flight.
    let pipelined = settings.mode == JobMode::OnePipelined;
    let lanes = if pipelined {
        usize::from(settings.worker_prefetch)
    } else {
        1
    };
    let mut workers = Vec::new();
    for index in 0..settings.workers {
        // Each worker on its own connections, opened before the clock starts, as the other
        // drivers do.
        let mut worker = Vec::with_capacity(lanes);
        for _ in 0..lanes {
            let mut connection = Http1::connect(&settings.address()).await?;
            connection.get("/health").await?;
            worker.push(Worker::new(connection, &queue, &format!("worker-{index}")));
        }
        workers.push(worker);
    }
    let batch = settings.mode.batch();
    let chained = settings.mode == JobMode::OneChained;
    let mut result = drain(
        context,
        settings.jobs,
        workers,
        |mut lanes: Vec<Worker>, budget| async move {
            if pipelined {
                return work_one_pipelined(lanes, budget).await;
            }
            let worker = lanes.pop().expect("a worker has a connection");
            if chained {
                work_one_chained(worker, budget).await
            } else if batch == 1 {
                work_one_at_a_time(worker, budget).await
            } else {
                work_batched(worker, batch, budget).await
            }
        },
    )
    .await?;
    if let Some(refused) = note {
        result.note = Some(match result.note {
            Some(other) => format!("{refused}; {other}"),
            None => refused,
        });
    }
    Ok(result)
}

/// A jobs worker: its connection, and its requests' fixed parts rendered once.
struct Worker {
    connection: Http1,
    queue: String,
    fetch_path: String,
    complete_path: String,
    /// `{"worker":…,"max":` — a fetch's fields before the count.
    fetch_head: String,
}

/// A leased job, as much of it as a worker that does nothing with the payload reads.
#[derive(Debug, Deserialize)]
struct Leased {
    id: JobId,
    attempt: u32,
}

/// Ids are decimal strings; take a number too.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum JobId {
    Text(String),
    Number(u64),
}

impl JobId {
    fn as_json(&self) -> String {
        match self {
            JobId::Text(text) => Value::String(text.clone()).to_string(),
            JobId::Number(number) => number.to_string(),
        }
    }

    fn as_path(&self) -> String {
        match self {
            JobId::Text(text) => text.clone(),
            JobId::Number(number) => number.to_string(),
        }
    }
}

#[derive(Debug, Deserialize)]
struct Fetched {
    #[serde(default)]
    jobs: Vec<Leased>,
}

#[derive(Debug, Deserialize)]
struct CompletedAndNext {
    #[serde(default)]
    results: Vec<CompletionResult>,
    #[serde(default)]
    next: Vec<Leased>,
}

#[derive(Debug, Deserialize)]
struct CompletionResult {
    error: Option<Value>,
}

impl Worker {
    fn new(connection: Http1, queue: &str, name: &str) -> Worker {
        Worker {
            connection,
            queue: queue.to_string(),
            fetch_path: format!("/v1/queues/{queue}/jobs/fetch"),
            complete_path: format!("/v1/queues/{queue}/jobs/complete"),
            fetch_head: format!("{{\"worker\":{},\"max\":", Value::String(name.into())),
        }
    }

    /// `{"worker":…,"max":max,"wait_ms":wait_ms}`
    fn fetch_body(&self, max: usize, wait_ms: u64) -> String {
        format!("{}{max},\"wait_ms\":{wait_ms}}}", self.fetch_head)
    }

    /// Leases up to `max` jobs, long-polling when none is ready (the short answer: a worker
    /// reads only the id and the attempt).
    async fn fetch(&mut self, max: usize) -> Result<Vec<Leased>> {
        let body = self.fetch_body(max, POLL_WAIT_MS);
        let answer = self
            .connection
            .post(&self.fetch_path, body.as_bytes(), true)
            .await?;
        Ok(serde_json::from_slice::<Fetched>(&answer.body)?.jobs)
    }

    /// Completes `held` and takes up to `max` ready jobs in the same request.
    async fn complete_and_fetch(&mut self, held: &[Leased], max: usize) -> Result<Vec<Leased>> {
        let mut body = String::with_capacity(64 + held.len() * 40);
        body.push_str("{\"completions\":[");
        for (index, job) in held.iter().enumerate() {
            if index > 0 {
                body.push(',');
            }
            body.push_str(&format!(
                "{{\"id\":{},\"attempt\":{}}}",
                job.id.as_json(),
                job.attempt
            ));
        }
        body.push_str("],\"fetch\":");
        body.push_str(&self.fetch_body(max, 0));
        body.push('}');
        let answer = self
            .connection
            .post(&self.complete_path, body.as_bytes(), true)
            .await?;
        let answer: CompletedAndNext = serde_json::from_slice(&answer.body)?;
        if let Some(failed) = answer
            .results
            .iter()
            .find_map(|result| result.error.as_ref())
        {
            return Err(BenchError::Broker {
                system: "omnibus-http",
                status: "a completion failed".into(),
                body: failed.to_string(),
            });
        }
        if answer.results.len() != held.len() {
            return Err(BenchError::Broker {
                system: "omnibus-http",
                status: "a completion went unanswered".into(),
                body: format!(
                    "{} answers for {} completions",
                    answer.results.len(),
                    held.len()
                ),
            });
        }
        Ok(answer.next)
    }

    /// A worker's next request: finishes `held` and takes up to `batch` ready jobs in the same
    /// request, or (holding nothing) long-polls for up to `batch`. Returns the jobs leased and
    /// how many were finished.
    async fn step(&mut self, held: &[Leased], batch: usize) -> Result<(Vec<Leased>, u64)> {
        if held.is_empty() {
            return Ok((self.fetch(batch).await?, 0));
        }
        let next = self.complete_and_fetch(held, batch).await?;
        Ok((next, held.len() as u64))
    }

    /// Completes one job on its own (`jobs/{id}/complete`, answered 204).
    async fn complete(&mut self, job: &Leased) -> Result<()> {
        let path = format!(
            "/v1/queues/{}/jobs/{}/complete",
            self.queue,
            job.id.as_path()
        );
        let body = format!("{{\"attempt\":{}}}", job.attempt);
        self.connection.post(&path, body.as_bytes(), true).await?;
        Ok(())
    }
}

async fn work_one_at_a_time(mut worker: Worker, budget: Arc<Budget>) -> Result<Option<Instant>> {
    let mut last_finished = None;
    while keep_working(&budget) {
        for job in worker.fetch(1).await? {
            worker.complete(&job).await?;
            budget.finish(1);
            last_finished = Some(Instant::now());
        }
    }
    Ok(last_finished)
}

/// One job at a time, each completion taking the next job in the same request; a fetch on
/// its own (long-polling) only when the worker holds nothing.
async fn work_one_chained(worker: Worker, budget: Arc<Budget>) -> Result<Option<Instant>> {
    work_batched(worker, 1, budget).await
}

/// What one lane's request brought back: its connection, the jobs it leased, and how many
/// jobs it completed.
type LaneAnswer = (Worker, Vec<Leased>, u64);

/// One job at a time, `--worker-prefetch` jobs held (`one-pipelined`): the worker's lanes
/// (connections, one per job held) each carry one request, and the worker takes their
/// answers in the order it sent them. For each answer it works the job that came back (here:
/// nothing to do) and sends that lane's next request at once ([`Worker::step`]).
/// So while one lane's completion waits for its fsync, the worker already holds the other
/// lane's job, and every completion still gets its own durable answer before the worker
/// counts it.
async fn work_one_pipelined(lanes: Vec<Worker>, budget: Arc<Budget>) -> Result<Option<Instant>> {
    let mut last_finished = None;
    let mut in_flight: VecDeque<JoinHandle<Result<LaneAnswer>>> = lanes
        .into_iter()
        .map(|lane| tokio::spawn(lane_request(lane, Vec::new())))
        .collect();
    while keep_working(&budget) {
        let Some(oldest) = in_flight.pop_front() else {
            break;
        };
        let (lane, leased, completed) = oldest
            .await
            .map_err(|error| BenchError::Incomplete(error.to_string()))??;
        if completed > 0 {
            budget.finish(completed);
            last_finished = Some(Instant::now());
        }
        in_flight.push_back(tokio::spawn(lane_request(lane, leased)));
    }
    for request in in_flight {
        // Only fetches of an emptied queue (or completions the budget no longer needs) are
        // left; the run is over.
        request.abort();
    }
    Ok(last_finished)
}

/// One lane's next request ([`Worker::step`] for one job), handing the lane back.
async fn lane_request(mut lane: Worker, held: Vec<Leased>) -> Result<LaneAnswer> {
    let (leased, completed) = lane.step(&held, 1).await?;
    Ok((lane, leased, completed))
}

/// Up to `batch` jobs at a time: each batch's completions take the next batch in the same
/// request; a fetch on its own (long-polling) only when the worker holds nothing. Waiting in
/// the combined request would hold finished jobs' answers back, so it does not wait.
async fn work_batched(
    mut worker: Worker,
    batch: usize,
    budget: Arc<Budget>,
) -> Result<Option<Instant>> {
    let mut last_finished = None;
    let mut held: Vec<Leased> = Vec::new();
    while keep_working(&budget) {
        let (leased, completed) = worker.step(&held, batch).await?;
        if completed > 0 {
            budget.finish(completed);
            last_finished = Some(Instant::now());
        }
        held = leased;
    }
    Ok(last_finished)
}
