//! Background jobs: enqueue (with unique keys), fetch (long-poll, leased), progress (which
//! extends the lease), complete, fail, cancel, read one, list by status.
//!
//! Answers that settle a job (complete, fail, cancel) and listings carry the job record
//! without its payload; `GET` of one job includes it.
//!
//! A worker that only needs to know its report was taken sends `Prefer: return=minimal`:
//! complete and fail then answer 204 with no body, and each accepted completion of a batch
//! is `{"status":"completed"}` instead of the whole job record — rendering that record was
//! most of the answer's cost, and a worker throws it away.
//!
//! A worker reports against the `attempt` it fetched: a stale attempt is refused with 409
//! `stale_attempt`, and a job that is no longer leased to anyone (cancelled, or finished) with
//! 404 `unknown_delivery`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use omnibus_engine::jobs::{EnqueuedJob, Job, JobStatus};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::error::ApiError;
use crate::extract::{JsonBody, PathParams, PreferMinimal, QueryParams, PREFERENCE_APPLIED};
use crate::json_jobs::{job_document, ActiveJobOutput, EnqueueJobsBody, JobOutput};
use crate::json_messages::{check_duration, check_error_text, check_worker};
use crate::router::AppState;

/// Jobs a fetch asks for when it does not say.
pub const FETCH_MAX_DEFAULT: usize = 1;
/// Jobs per page when a listing does not say.
pub const LIST_LIMIT_DEFAULT: usize = 100;
/// Most jobs per page.
pub const LIST_LIMIT_MAX: usize = 1_000;

#[derive(Debug, Serialize)]
pub struct EnqueueJobsResponse {
    jobs: Vec<EnqueuedJob>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FetchBody {
    worker: String,
    max: Option<usize>,
    wait_ms: Option<u64>,
}

#[derive(Debug, Serialize)]
pub struct FetchResponse<'a> {
    jobs: Vec<ActiveJobOutput<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    status: Option<String>,
    /// The previous page's `next`.
    after: Option<String>,
    limit: Option<usize>,
}

/// A page of jobs, without payloads (read a job by id for its payload).
#[derive(Debug, Serialize)]
pub struct JobList {
    jobs: Vec<Job>,
    next: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProgressBody {
    attempt: u32,
    progress: Box<RawValue>,
}

#[derive(Debug, Serialize)]
pub struct ProgressResponse {
    lease_deadline_ms: i64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompleteBody {
    attempt: u32,
    result: Option<Box<RawValue>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompleteManyBody {
    completions: Vec<CompletionBody>,
    /// Also fetch this worker's next jobs, in the same commit as the completions.
    fetch: Option<FetchBody>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompletionBody {
    id: String,
    attempt: u32,
    result: Option<Box<RawValue>>,
}

/// One answer of a batch completion: the completed job, or why this one was refused.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum CompletionAnswer {
    Completed {
        job: Box<Job>,
    },
    /// With `Prefer: return=minimal`: always `"completed"`.
    Minimal {
        status: &'static str,
    },
    Refused {
        error: CompletionError,
    },
}

#[derive(Debug, Serialize)]
pub struct CompletionError {
    code: &'static str,
    message: String,
}

#[derive(Debug, Serialize)]
pub struct CompleteManyResponse<'a> {
    results: Vec<CompletionAnswer>,
    /// With `fetch`: the next jobs.
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<Vec<ActiveJobOutput<'a>>>,
    /// With `fetch`: why fetching failed (the completions stand).
    #[serde(skip_serializing_if = "Option::is_none")]
    fetch_error: Option<CompletionError>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailBody {
    attempt: u32,
    error: String,
    /// Retry after this long instead of the job's backoff.
    retry_delay_ms: Option<u64>,
}

/// `POST /v1/queues/{queue}/jobs`: 201 when any job was created, 200 when every one already
/// existed under its unique key.
pub async fn enqueue_jobs(
    State(state): State<AppState>,
    PathParams(queue): PathParams<String>,
    JsonBody(body): JsonBody<EnqueueJobsBody>,
) -> Result<(StatusCode, Json<EnqueueJobsResponse>), ApiError> {
    let jobs = body.into_jobs()?;
    let expected = jobs.len();
    let enqueued = state.engine.enqueue_jobs(&queue, jobs).await?;
    if enqueued.len() != expected {
        return Err(ApiError::internal(format!(
            "the engine answered for {} jobs of {expected}",
            enqueued.len()
        )));
    }
    let status = if enqueued.iter().any(|job| job.created) {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(EnqueueJobsResponse { jobs: enqueued })))
}

/// `POST /v1/queues/{queue}/jobs/fetch`
pub async fn fetch_jobs(
    State(state): State<AppState>,
    PathParams(queue): PathParams<String>,
    PreferMinimal(minimal): PreferMinimal,
    JsonBody(body): JsonBody<FetchBody>,
) -> Result<Response, ApiError> {
    check_worker(&body.worker)?;
    let max = body.max.unwrap_or(FETCH_MAX_DEFAULT);
    let active = state
        .engine
        .fetch_jobs(&queue, &body.worker, max, body.wait_ms.unwrap_or(0))
        .await?;
    let response = FetchResponse {
        jobs: active
            .iter()
            .map(|job| ActiveJobOutput::with_minimal(job, minimal))
            .collect(),
    };
    // Rendered here because the response borrows the jobs.
    let mut answer = json_answer(&response, active.len());
    if minimal {
        applied_minimal(&mut answer);
    }
    Ok(answer)
}

/// About the JSON of one handed-out job without a large payload: answers are rendered into a
/// buffer this size per job. axum's `Json` starts at 128 bytes and doubles, copying each
/// time, up to the ~500 a one-job answer takes.
const ANSWER_BYTES_PER_JOB: usize = 640;

/// `value` as a JSON answer (as axum's `Json` renders it), into a buffer sized for `jobs`.
fn json_answer<T: Serialize>(value: &T, jobs: usize) -> Response {
    let mut body = Vec::with_capacity(ANSWER_BYTES_PER_JOB * jobs.max(1));
    match serde_json::to_writer(&mut body, value) {
        Ok(()) => (
            [(
                axum::http::header::CONTENT_TYPE,
                axum::http::HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response(),
        Err(error) => ApiError::internal(format!("rendering the answer: {error}")).into_response(),
    }
}

/// `GET /v1/queues/{queue}/jobs?status=&after=&limit=`
pub async fn list_jobs(
    State(state): State<AppState>,
    PathParams(queue): PathParams<String>,
    QueryParams(query): QueryParams<ListQuery>,
) -> Result<Json<JobList>, ApiError> {
    let status = query.status.as_deref().map(parse_status).transpose()?;
    let limit = query
        .limit
        .unwrap_or(LIST_LIMIT_DEFAULT)
        .clamp(1, LIST_LIMIT_MAX);
    let page = state
        .engine
        .list_jobs(&queue, status, query.after.as_deref(), limit)
        .await?;
    Ok(Json(JobList {
        jobs: page.jobs,
        next: page.next,
    }))
}

fn parse_status(text: &str) -> Result<JobStatus, ApiError> {
    JobStatus::parse(text).ok_or_else(|| {
        let known: Vec<&str> = JobStatus::ALL
            .iter()
            .map(|status| status.as_str())
            .collect();
        ApiError::bad_request(format!(
            "status={text:?} is not one of {}",
            known.join(", ")
        ))
    })
}

/// `GET /v1/queues/{queue}/jobs/{id}`: the job with its payload.
pub async fn get_job(
    State(state): State<AppState>,
    PathParams((queue, id)): PathParams<(String, String)>,
) -> Result<Response, ApiError> {
    let job = state.engine.get_job(&queue, &id).await?;
    // Rendered here because the output borrows the job.
    Ok(Json(JobOutput::new(&job)).into_response())
}

/// `POST /v1/queues/{queue}/jobs/{id}/progress`: also extends the attempt's lease.
pub async fn job_progress(
    State(state): State<AppState>,
    PathParams((queue, id)): PathParams<(String, String)>,
    JsonBody(body): JsonBody<ProgressBody>,
) -> Result<Json<ProgressResponse>, ApiError> {
    let progress = job_document("progress", &body.progress)?;
    let lease_deadline_ms = state
        .engine
        .job_progress(&queue, &id, body.attempt, progress)
        .await?;
    Ok(Json(ProgressResponse { lease_deadline_ms }))
}

/// `POST /v1/queues/{queue}/jobs/{id}/complete`
pub async fn complete_job(
    State(state): State<AppState>,
    PathParams((queue, id)): PathParams<(String, String)>,
    PreferMinimal(minimal): PreferMinimal,
    JsonBody(body): JsonBody<CompleteBody>,
) -> Result<Response, ApiError> {
    let result = body
        .result
        .map(|raw| job_document("result", &raw))
        .transpose()?;
    let job = state
        .engine
        .complete_job(&queue, &id, body.attempt, result)
        .await?;
    Ok(job_answer(job, minimal))
}

/// The settled job, or with `Prefer: return=minimal` 204 and no body.
fn job_answer(job: Job, minimal: bool) -> Response {
    if minimal {
        return (
            StatusCode::NO_CONTENT,
            [(PREFERENCE_APPLIED, "return=minimal")],
        )
            .into_response();
    }
    Json(job).into_response()
}

/// `POST /v1/queues/{queue}/jobs/complete`: completes many attempts at once. Each is judged
/// on its own (a stale attempt or an unknown job fails alone, answered in its slot); the
/// accepted ones are made durable in one commit before the answer. The whole request fails
/// only when it cannot be attempted at all (unknown queue, too many completions, a commit
/// that failed). With `fetch`, the worker's next jobs are leased in the same commit (or
/// long-polled for after it, when none is ready) and returned as `next`.
pub async fn complete_jobs(
    State(state): State<AppState>,
    PathParams(queue): PathParams<String>,
    PreferMinimal(minimal): PreferMinimal,
    JsonBody(body): JsonBody<CompleteManyBody>,
) -> Result<Response, ApiError> {
    if let Some(fetch) = &body.fetch {
        check_worker(&fetch.worker)?;
    }
    let mut completions = Vec::with_capacity(body.completions.len());
    for completion in body.completions {
        let result = completion
            .result
            .map(|raw| job_document("result", &raw))
            .transpose()?;
        completions.push(omnibus_engine::jobs::JobCompletion {
            id: completion.id,
            attempt: completion.attempt,
            result,
        });
    }
    let (answers, next) = match &body.fetch {
        None => (state.engine.complete_jobs(&queue, completions).await?, None),
        Some(fetch) => {
            let outcome = state
                .engine
                .complete_and_fetch_jobs(
                    &queue,
                    completions,
                    &fetch.worker,
                    fetch.max.unwrap_or(FETCH_MAX_DEFAULT),
                    fetch.wait_ms.unwrap_or(0),
                )
                .await?;
            (outcome.completed, Some(outcome.next))
        }
    };
    let (next, fetch_error) = match next {
        None => (None, None),
        Some(Ok(active)) => (Some(active), None),
        Some(Err(error)) => (None, Some(error_body(error))),
    };
    let results = answers
        .into_iter()
        .map(|answer| match answer {
            Ok(_) if minimal => CompletionAnswer::Minimal {
                status: JobStatus::Completed.as_str(),
            },
            Ok(job) => CompletionAnswer::Completed { job: Box::new(job) },
            Err(error) => CompletionAnswer::Refused {
                error: error_body(error),
            },
        })
        .collect();
    let response = CompleteManyResponse {
        results,
        next: next.as_ref().map(|active| {
            active
                .iter()
                .map(|job| ActiveJobOutput::with_minimal(job, minimal))
                .collect()
        }),
        fetch_error,
    };
    // Rendered here because the response borrows the jobs.
    let jobs = response.results.len() + response.next.as_ref().map_or(0, Vec::len);
    let mut answer = json_answer(&response, jobs);
    if minimal {
        applied_minimal(&mut answer);
    }
    Ok(answer)
}

/// Marks an answer rendered short for `Prefer: return=minimal`.
fn applied_minimal(answer: &mut Response) {
    answer.headers_mut().insert(
        PREFERENCE_APPLIED,
        axum::http::HeaderValue::from_static("return=minimal"),
    );
}

fn error_body(error: omnibus_engine::EngineError) -> CompletionError {
    let error = ApiError::from(error);
    CompletionError {
        code: error.code(),
        message: error.to_string(),
    }
}

/// `POST /v1/queues/{queue}/jobs/{id}/fail`: retried per the job's policy, or dead.
pub async fn fail_job(
    State(state): State<AppState>,
    PathParams((queue, id)): PathParams<(String, String)>,
    PreferMinimal(minimal): PreferMinimal,
    JsonBody(body): JsonBody<FailBody>,
) -> Result<Response, ApiError> {
    check_error_text("error", &body.error)?;
    check_duration("fail", "retry_delay_ms", body.retry_delay_ms)?;
    let job = state
        .engine
        .fail_job(&queue, &id, body.attempt, &body.error, body.retry_delay_ms)
        .await?;
    Ok(job_answer(job, minimal))
}

/// `POST /v1/queues/{queue}/jobs/{id}/cancel`: a waiting, delayed or active job.
pub async fn cancel_job(
    State(state): State<AppState>,
    PathParams((queue, id)): PathParams<(String, String)>,
) -> Result<Json<Job>, ApiError> {
    let job = state.engine.cancel_job(&queue, &id).await?;
    Ok(Json(job))
}

/// `POST /v1/queues/{queue}/jobs/{id}/retry`: a dead or cancelled job runs again as a new
/// job with the same name, payload and options (201 `{"jobs":[{"id","created","status"}]}`,
/// the shape of an enqueue).
pub async fn retry_job(
    State(state): State<AppState>,
    PathParams((queue, id)): PathParams<(String, String)>,
) -> Result<(StatusCode, Json<EnqueueJobsResponse>), ApiError> {
    let job = state.engine.retry_job(&queue, &id).await?;
    let status = if job.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(EnqueueJobsResponse { jobs: vec![job] })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn answers_render_as_axum_json_would() {
        let value = serde_json::json!({"jobs": [{"id": "1", "payload": {"a": [1, 2]}}]});
        let ours = json_answer(&value, 1);
        let axums = Json(&value).into_response();
        assert_eq!(ours.status(), axums.status());
        assert_eq!(
            ours.headers().get(axum::http::header::CONTENT_TYPE),
            axums.headers().get(axum::http::header::CONTENT_TYPE)
        );
        let body = |response: Response| axum::body::to_bytes(response.into_body(), usize::MAX);
        assert_eq!(body(ours).await.unwrap(), body(axums).await.unwrap());
    }

    #[test]
    fn status_names_parse_and_unknown_ones_list_the_known() {
        assert_eq!(parse_status("completed").unwrap(), JobStatus::Completed);
        let error = parse_status("done").unwrap_err();
        assert_eq!(error.code(), "bad_request");
        assert!(error.to_string().contains("waiting, delayed"), "{error}");
    }
}
