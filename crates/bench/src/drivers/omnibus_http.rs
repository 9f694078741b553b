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
//!   client and so its own connection: `one` = `jobs/fetch` max 1 + `jobs/{id}/complete`;
//!   `batched` = `jobs/complete` for up to 100 with `fetch` taking the next ones in the same
//!   request.
//! - request-reply: not supported (no request-reply door yet).

use std::sync::Arc;
use std::time::Instant;

use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::task::JoinSet;

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

/// `--producers` producers, each on its own connection with `--in-flight` POSTs to `path`
/// open, each carrying `--batch` items built by `body` (the full-size body built once), until
/// `--messages` items are acknowledged; the round trip of every request.
async fn post_in_windows(
    context: &Context,
    path: String,
    body: fn(u64, usize) -> Arc<String>,
    note: Option<String>,
) -> Result<Measurement> {
    let settings = &context.settings;
    let full_body = body(settings.batch as u64, settings.size);
    let budget = context.budget(settings.messages);
    let started = Instant::now();
    let mut producers = JoinSet::new();
    for _ in 0..settings.producers {
        let api = Api::new(&settings.address());
        let (budget, path, full_body) = (budget.clone(), path.clone(), full_body.clone());
        let (window, batch, size) = (settings.in_flight, settings.batch as u64, settings.size);
        producers.spawn(async move {
            load::run_window(&budget, window, batch, |count| {
                let body = if count == batch {
                    full_body.clone()
                } else {
                    body(count, size)
                };
                let (api, path) = (api.clone(), path.clone());
                async move { api.post_text(&path, body).await.map(drop) }
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
    let mut workers = Vec::new();
    for index in 0..settings.workers {
        let api = Api::new(&settings.address());
        // Opens the worker's connection before the clock starts, as the other drivers do.
        api.get("/health").await?;
        workers.push((api, format!("worker-{index}")));
    }
    let batch = settings.mode.batch();
    let chained = settings.mode == JobMode::OneChained;
    let mut result = drain(context, settings.jobs, workers, |(api, worker), budget| {
        let queue = queue.clone();
        async move {
            if chained {
                work_one_chained(api, queue, worker, budget).await
            } else if batch == 1 {
                work_one_at_a_time(api, queue, worker, budget).await
            } else {
                work_batched(api, queue, worker, batch, budget).await
            }
        }
    })
    .await?;
    if let Some(refused) = note {
        result.note = Some(match result.note {
            Some(other) => format!("{refused}; {other}"),
            None => refused,
        });
    }
    Ok(result)
}

fn active_jobs(value: &Value) -> Vec<Value> {
    value.as_array().cloned().unwrap_or_default()
}

/// A job's id as it goes in a path: ids are numbers, but take a string too.
fn job_id(job: &Value) -> String {
    match &job["id"] {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

async fn work_one_at_a_time(
    api: Api,
    queue: String,
    worker: String,
    budget: Arc<Budget>,
) -> Result<Option<Instant>> {
    let fetch = json!({ "worker": worker, "max": 1, "wait_ms": POLL_WAIT_MS });
    let mut last_finished = None;
    while keep_working(&budget) {
        let fetched = api
            .post(&format!("/v1/queues/{queue}/jobs/fetch"), &fetch)
            .await?;
        for job in active_jobs(&fetched["jobs"]) {
            let path = format!("/v1/queues/{queue}/jobs/{}/complete", job_id(&job));
            api.post_minimal(&path, &json!({ "attempt": job["attempt"] }))
                .await?;
            budget.finish(1);
            last_finished = Some(Instant::now());
        }
    }
    Ok(last_finished)
}

/// One job at a time, each completion taking the next job in the same request; a fetch on
/// its own (long-polling) only when the worker holds nothing.
async fn work_one_chained(
    api: Api,
    queue: String,
    worker: String,
    budget: Arc<Budget>,
) -> Result<Option<Instant>> {
    let fetch_now = json!({ "worker": worker, "max": 1, "wait_ms": 0 });
    let fetch_waiting = json!({ "worker": worker, "max": 1, "wait_ms": POLL_WAIT_MS });
    let mut last_finished = None;
    let mut held: Option<Value> = None;
    while keep_working(&budget) {
        let Some(job) = held.take() else {
            let fetched = api
                .post(&format!("/v1/queues/{queue}/jobs/fetch"), &fetch_waiting)
                .await?;
            held = active_jobs(&fetched["jobs"]).into_iter().next();
            continue;
        };
        let body = json!({
            "completions": [{ "id": job["id"], "attempt": job["attempt"] }],
            "fetch": fetch_now,
        });
        let answer = api
            .post_minimal(&format!("/v1/queues/{queue}/jobs/complete"), &body)
            .await?;
        if let Some(failed) = answer["results"][0].get("error") {
            return Err(BenchError::Broker {
                system: "omnibus-http",
                status: "a completion failed".into(),
                body: failed.to_string(),
            });
        }
        budget.finish(1);
        last_finished = Some(Instant::now());
        held = active_jobs(&answer["next"]).into_iter().next();
    }
    Ok(last_finished)
}

async fn work_batched(
    api: Api,
    queue: String,
    worker: String,
    batch: usize,
    budget: Arc<Budget>,
) -> Result<Option<Instant>> {
    // Waiting in the combined request would hold finished jobs' answers back; only a fetch
    // on its own long-polls.
    let fetch_now = json!({ "worker": worker, "max": batch, "wait_ms": 0 });
    let fetch_waiting = json!({ "worker": worker, "max": batch, "wait_ms": POLL_WAIT_MS });
    let mut last_finished = None;
    let mut held: Vec<Value> = Vec::new();
    while keep_working(&budget) {
        if held.is_empty() {
            let fetched = api
                .post(&format!("/v1/queues/{queue}/jobs/fetch"), &fetch_waiting)
                .await?;
            held = active_jobs(&fetched["jobs"]);
            continue;
        }
        let completions: Vec<Value> = held
            .iter()
            .map(|job| json!({ "id": job["id"], "attempt": job["attempt"] }))
            .collect();
        let body = json!({ "completions": completions, "fetch": fetch_now });
        let answer = api
            .post_minimal(&format!("/v1/queues/{queue}/jobs/complete"), &body)
            .await?;
        let failed = answer["results"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|result| result.get("error").is_some());
        if let Some(failed) = failed {
            return Err(BenchError::Broker {
                system: "omnibus-http",
                status: "a completion failed".into(),
                body: failed.to_string(),
            });
        }
        budget.finish(held.len() as u64);
        last_finished = Some(Instant::now());
        held = active_jobs(&answer["next"]);
    }
    Ok(last_finished)
}
