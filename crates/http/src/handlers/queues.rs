//! Queue administration: create, list, describe, delete, pause, resume, purge.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use omnibus_engine::jobs::JobStats;
use omnibus_engine::queue::{QueueInfo, QueueSpec};
use serde::Serialize;

use crate::error::ApiError;
use crate::extract::{JsonBody, PathParams};
use crate::json_messages::check_queue_spec;
use crate::router::AppState;

#[derive(Serialize)]
pub struct QueueList {
    queues: Vec<QueueInfo>,
}

/// A queue with the counts of its jobs.
#[derive(Serialize)]
pub struct QueueDetail {
    #[serde(flatten)]
    info: QueueInfo,
    jobs: JobStats,
}

#[derive(Serialize)]
pub struct Purged {
    purged: u64,
}

/// `GET /v1/queues`
pub async fn list_queues(State(state): State<AppState>) -> Result<Json<QueueList>, ApiError> {
    let queues = state.engine.list_queues();
    Ok(Json(QueueList { queues }))
}

/// `POST /v1/queues` with a `QueueSpec` body.
pub async fn create_queue(
    State(state): State<AppState>,
    JsonBody(spec): JsonBody<QueueSpec>,
) -> Result<(StatusCode, Json<QueueInfo>), ApiError> {
    check_queue_spec(&spec)?;
    let info = state.engine.create_queue(spec).await?;
    Ok((StatusCode::CREATED, Json(info)))
}

/// `GET /v1/queues/{queue}`
pub async fn get_queue(
    State(state): State<AppState>,
    PathParams(queue): PathParams<String>,
) -> Result<Json<QueueDetail>, ApiError> {
    let info = state.engine.queue_info(&queue)?;
    let jobs = state.engine.job_stats(&queue).await?;
    Ok(Json(QueueDetail { info, jobs }))
}

/// `DELETE /v1/queues/{queue}`
pub async fn delete_queue(
    State(state): State<AppState>,
    PathParams(queue): PathParams<String>,
) -> Result<StatusCode, ApiError> {
    state.engine.delete_queue(&queue).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/queues/{queue}/pause`: stops deliveries; enqueues and acks go on.
pub async fn pause_queue(
    State(state): State<AppState>,
    PathParams(queue): PathParams<String>,
) -> Result<StatusCode, ApiError> {
    state.engine.pause_queue(&queue).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/queues/{queue}/resume`
pub async fn resume_queue(
    State(state): State<AppState>,
    PathParams(queue): PathParams<String>,
) -> Result<StatusCode, ApiError> {
    state.engine.resume_queue(&queue).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/queues/{queue}/purge`: removes every ready and waiting message.
pub async fn purge_queue(
    State(state): State<AppState>,
    PathParams(queue): PathParams<String>,
) -> Result<Json<Purged>, ApiError> {
    let purged = state.engine.purge_queue(&queue).await?;
    Ok(Json(Purged { purged }))
}
