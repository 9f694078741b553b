//! Publishing: `POST /v1/streams/{stream}/records` and `POST /v1/subjects/{subject}/records`.
//!
//! The answer is sent only after `Engine::publish` returns, which is the durable
//! acknowledgement (under the default fsync policy, after fsync).

use axum::extract::State;
use axum::Json;
use omnibus_engine::{PublishRecord, PublishTarget, RecordPosition};
use serde::Serialize;

use crate::error::ApiError;
use crate::extract::{JsonBody, PathParams};
use crate::json::PublishBody;
use crate::router::AppState;

#[derive(Debug, Serialize)]
pub struct PublishResponse {
    /// Where each record landed, in the order the records were given.
    records: Vec<RecordPosition>,
}

pub async fn publish_to_stream(
    State(state): State<AppState>,
    PathParams(stream): PathParams<String>,
    JsonBody(body): JsonBody<PublishBody>,
) -> Result<Json<PublishResponse>, ApiError> {
    let records = publish_records(body, None)?;
    publish(&state, PublishTarget::Stream(stream), records).await
}

pub async fn publish_to_subject(
    State(state): State<AppState>,
    PathParams(subject): PathParams<String>,
    JsonBody(body): JsonBody<PublishBody>,
) -> Result<Json<PublishResponse>, ApiError> {
    let records = publish_records(body, Some(&subject))?;
    publish(&state, PublishTarget::Subject(subject), records).await
}

/// Converts the body's records. When publishing by subject, a record may repeat the path's
/// subject but not name another one (the engine would silently ignore it).
fn publish_records(
    body: PublishBody,
    path_subject: Option<&str>,
) -> Result<Vec<PublishRecord>, ApiError> {
    let inputs = body.into_records()?;
    let single = inputs.len() == 1;
    let mut records = Vec::with_capacity(inputs.len());
    for (index, input) in inputs.into_iter().enumerate() {
        let name = if single {
            "record".to_owned()
        } else {
            format!("records[{index}]")
        };
        let record = input.into_publish_record(&name)?;
        if let (Some(path_subject), Some(subject)) = (path_subject, record.subject.as_deref()) {
            if subject != path_subject {
                return Err(ApiError::bad_request(format!(
                    "{name}: subject {subject:?} differs from the subject in the path {path_subject:?}"
                )));
            }
        }
        records.push(record);
    }
    Ok(records)
}

async fn publish(
    state: &AppState,
    target: PublishTarget,
    records: Vec<PublishRecord>,
) -> Result<Json<PublishResponse>, ApiError> {
    if records.is_empty() {
        return Ok(Json(PublishResponse {
            records: Vec::new(),
        }));
    }
    let expected = records.len();
    let positions = state.engine.publish(target, records).await?;
    if positions.len() != expected {
        return Err(ApiError::internal(format!(
            "the engine acknowledged {} records of {expected}",
            positions.len()
        )));
    }
    Ok(Json(PublishResponse { records: positions }))
}
