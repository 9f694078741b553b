//! Stream administration: list, create, describe, change settings, delete.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use omnibus_engine::{FsyncPolicy, StreamInfo, StreamSettings, StreamSpec};
use serde::{Deserialize, Deserializer, Serialize};

use crate::error::ApiError;
use crate::extract::{JsonBody, PathParams};
use crate::router::AppState;

#[derive(Serialize)]
pub struct StreamList {
    streams: Vec<StreamInfo>,
}

/// `GET /v1/streams`
pub async fn list_streams(State(state): State<AppState>) -> Result<Json<StreamList>, ApiError> {
    let streams = state.engine.list_streams();
    Ok(Json(StreamList { streams }))
}

/// `POST /v1/streams` with a `StreamSpec` body.
pub async fn create_stream(
    State(state): State<AppState>,
    JsonBody(spec): JsonBody<StreamSpec>,
) -> Result<(StatusCode, Json<StreamInfo>), ApiError> {
    let info = state.engine.create_stream(spec).await?;
    Ok((StatusCode::CREATED, Json(info)))
}

/// `GET /v1/streams/{stream}`
pub async fn get_stream(
    State(state): State<AppState>,
    PathParams(stream): PathParams<String>,
) -> Result<Json<StreamInfo>, ApiError> {
    let info = state.engine.stream_info(&stream)?;
    Ok(Json(info))
}

/// The body of `PATCH /v1/streams/{stream}`: the settings to change; absent ones are kept.
/// For the retention limits `null` means "no limit".
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamPatch {
    #[serde(default, deserialize_with = "present")]
    retention_ms: Option<Option<u64>>,
    #[serde(default, deserialize_with = "present")]
    retention_bytes: Option<Option<u64>>,
    segment_bytes: Option<u64>,
    segment_ms: Option<u64>,
    fsync: Option<FsyncPolicy>,
    message_bytes_max: Option<usize>,
}

/// Tells a field sent as `null` (`Some(None)`) from one left out (`None`, via `default`).
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

impl StreamPatch {
    fn apply(self, settings: &mut StreamSettings) {
        if let Some(retention_ms) = self.retention_ms {
            settings.retention_ms = retention_ms;
        }
        if let Some(retention_bytes) = self.retention_bytes {
            settings.retention_bytes = retention_bytes;
        }
        if let Some(segment_bytes) = self.segment_bytes {
            settings.segment_bytes = segment_bytes;
        }
        if let Some(segment_ms) = self.segment_ms {
            settings.segment_ms = segment_ms;
        }
        if let Some(fsync) = self.fsync {
            settings.fsync = fsync;
        }
        if let Some(message_bytes_max) = self.message_bytes_max {
            settings.message_bytes_max = message_bytes_max;
        }
    }
}

/// `PATCH /v1/streams/{stream}`: changes a stream's settings, durably; its data stays.
pub async fn alter_stream(
    State(state): State<AppState>,
    PathParams(stream): PathParams<String>,
    JsonBody(patch): JsonBody<StreamPatch>,
) -> Result<Json<StreamInfo>, ApiError> {
    let info = state
        .engine
        .change_stream_settings(&stream, false, move |settings| {
            patch.apply(settings);
            Ok(())
        })
        .await?;
    Ok(Json(info))
}

/// `DELETE /v1/streams/{stream}`
pub async fn delete_stream(
    State(state): State<AppState>,
    PathParams(stream): PathParams<String>,
) -> Result<StatusCode, ApiError> {
    state.engine.delete_stream(&stream).await?;
    Ok(StatusCode::NO_CONTENT)
}
