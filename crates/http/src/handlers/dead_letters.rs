//! A queue's dead letters: `GET /v1/queues/{queue}/dlq` reads them like a stream fetch (each
//! carries its reason, attempt count, last error and source in `omnibus.dlq.*` headers);
//! `POST /v1/queues/{queue}/dlq/redrive` moves them back into the queue with fresh attempts;
//! `POST /v1/queues/{queue}/dlq/{offset}/redrive` moves one chosen letter back. The listing
//! also says which letters were redriven already (`redriven_below`, `redriven_offsets`), so
//! a dashboard can tell them apart.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::extract::{OptionalJsonBody, PathParams, QueryParams};
use crate::handlers::fetch::FetchResponse;
use crate::router::AppState;
use omnibus_engine::queue::RedriveState;

/// Dead letters per page when the query does not say.
pub const DEAD_LETTERS_LIMIT_DEFAULT: usize = 100;
/// Most dead letters per page, and per redrive.
pub const DEAD_LETTERS_LIMIT_MAX: usize = 10_000;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeadLetterQuery {
    /// Offset in the dead-letter stream to start at (default: its oldest).
    offset: Option<u64>,
    limit: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedriveBody {
    /// At most this many (default and ceiling: 10000).
    max: Option<usize>,
}

#[derive(Debug, Serialize)]
pub struct Redriven {
    redriven: u64,
}

/// `GET /v1/queues/{queue}/dlq?offset=&limit=`
pub async fn list_dead_letters(
    State(state): State<AppState>,
    PathParams(queue): PathParams<String>,
    QueryParams(query): QueryParams<DeadLetterQuery>,
) -> Result<Response, ApiError> {
    let limit = query
        .limit
        .unwrap_or(DEAD_LETTERS_LIMIT_DEFAULT)
        .clamp(1, DEAD_LETTERS_LIMIT_MAX);
    let result = state
        .engine
        .dead_letters(&queue, query.offset.unwrap_or(0), limit)
        .await?;
    let redrives = state.engine.redrive_state(&queue)?;
    // A dead-letter stream has one partition.
    Ok(Json(DeadLetterPage {
        fetch: FetchResponse::new(&result, 0),
        redrives,
    })
    .into_response())
}

#[derive(Serialize)]
struct DeadLetterPage<'a> {
    #[serde(flatten)]
    fetch: FetchResponse<'a>,
    #[serde(flatten)]
    redrives: RedriveState,
}

/// `POST /v1/queues/{queue}/dlq/{offset}/redrive`: the one letter at `offset` of the queue's
/// dead-letter stream goes back into the queue; 400 when it was redriven already.
pub async fn redrive_one(
    State(state): State<AppState>,
    PathParams((queue, offset)): PathParams<(String, u64)>,
) -> Result<Json<Redriven>, ApiError> {
    state.engine.redrive_dead_letter(&queue, offset).await?;
    Ok(Json(Redriven { redriven: 1 }))
}

/// `POST /v1/queues/{queue}/dlq/redrive` with an optional `{"max":N}` body.
pub async fn redrive(
    State(state): State<AppState>,
    PathParams(queue): PathParams<String>,
    OptionalJsonBody(body): OptionalJsonBody<RedriveBody>,
) -> Result<Json<Redriven>, ApiError> {
    let max = body
        .and_then(|body| body.max)
        .unwrap_or(DEAD_LETTERS_LIMIT_MAX)
        .clamp(1, DEAD_LETTERS_LIMIT_MAX);
    let redriven = state.engine.redrive(&queue, max).await?;
    Ok(Json(Redriven { redriven }))
}
