//! Stream administration: list, create, describe, delete.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use omnibus_engine::{StreamInfo, StreamSpec};
use serde::Serialize;

use crate::error::ApiError;
use crate::extract::{JsonBody, PathParams};
use crate::handlers::run_blocking;
use crate::router::AppState;

#[derive(Serialize)]
pub struct StreamList {
    streams: Vec<StreamInfo>,
}

/// `GET /v1/streams`
pub async fn list_streams(State(state): State<AppState>) -> Result<Json<StreamList>, ApiError> {
    let streams = run_blocking(&state.engine, |engine| Ok(engine.list_streams())).await?;
    Ok(Json(StreamList { streams }))
}

/// `POST /v1/streams` with a `StreamSpec` body.
pub async fn create_stream(
    State(state): State<AppState>,
    JsonBody(spec): JsonBody<StreamSpec>,
) -> Result<(StatusCode, Json<StreamInfo>), ApiError> {
    let info = run_blocking(&state.engine, move |engine| engine.create_stream(spec)).await?;
    Ok((StatusCode::CREATED, Json(info)))
}

/// `GET /v1/streams/{stream}`
pub async fn get_stream(
    State(state): State<AppState>,
    PathParams(stream): PathParams<String>,
) -> Result<Json<StreamInfo>, ApiError> {
    let info = run_blocking(&state.engine, move |engine| engine.stream_info(&stream)).await?;
    Ok(Json(info))
}

/// `DELETE /v1/streams/{stream}`
pub async fn delete_stream(
    State(state): State<AppState>,
    PathParams(stream): PathParams<String>,
) -> Result<StatusCode, ApiError> {
    run_blocking(&state.engine, move |engine| engine.delete_stream(&stream)).await?;
    Ok(StatusCode::NO_CONTENT)
}
