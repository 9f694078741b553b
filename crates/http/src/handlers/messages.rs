//! Plain queue messages: enqueue, receive (long-poll, leased), and settle a delivery with ack,
//! nack, extend (heartbeat) or term (dead-letter now).
//!
//! Every settle names the delivery by its id (the message's offset) and the `attempt` it was
//! delivered with: an answer from a stale attempt (the lease expired and the message went to
//! another worker) is refused with 409 `stale_attempt`, and one for a message not leased at
//! all with 404 `unknown_delivery`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::extract::{JsonBody, PathParams};
use crate::json_messages::{
    check_duration, check_error_text, check_worker, DeliveryOutput, EnqueueBody,
};
use crate::router::AppState;

/// How many messages a receive asks for when it does not say.
pub const RECEIVE_MAX_DEFAULT: usize = 1;

#[derive(Debug, Serialize)]
pub struct EnqueueResponse {
    /// Each message's id (its offset in the queue), in the order given.
    ids: Vec<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiveBody {
    worker: String,
    max: Option<usize>,
    wait_ms: Option<u64>,
}

#[derive(Debug, Serialize)]
pub struct ReceiveResponse<'a> {
    messages: Vec<DeliveryOutput<'a>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AckBody {
    attempt: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NackBody {
    attempt: u32,
    /// Redeliver after this long instead of the queue's backoff.
    delay_ms: Option<u64>,
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtendBody {
    attempt: u32,
    /// The lease now ends this long from now (default: the queue's lease).
    lease_ms: Option<u64>,
}

#[derive(Debug, Serialize)]
pub struct LeaseResponse {
    pub lease_deadline_ms: i64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TermBody {
    attempt: u32,
    reason: Option<String>,
}

/// `POST /v1/queues/{queue}/messages`: answered after the messages are durable.
pub async fn enqueue(
    State(state): State<AppState>,
    PathParams(queue): PathParams<String>,
    JsonBody(body): JsonBody<EnqueueBody>,
) -> Result<Json<EnqueueResponse>, ApiError> {
    let messages = body.into_messages()?;
    let expected = messages.len();
    let ids = state.engine.enqueue(&queue, messages).await?;
    if ids.len() != expected {
        return Err(ApiError::internal(format!(
            "the engine acknowledged {} messages of {expected}",
            ids.len()
        )));
    }
    Ok(Json(EnqueueResponse { ids }))
}

/// `POST /v1/queues/{queue}/receive`
pub async fn receive(
    State(state): State<AppState>,
    PathParams(queue): PathParams<String>,
    JsonBody(body): JsonBody<ReceiveBody>,
) -> Result<Response, ApiError> {
    check_worker(&body.worker)?;
    let max = body.max.unwrap_or(RECEIVE_MAX_DEFAULT);
    let deliveries = state
        .engine
        .receive(&queue, &body.worker, max, body.wait_ms.unwrap_or(0))
        .await?;
    let response = ReceiveResponse {
        messages: deliveries.iter().map(DeliveryOutput::new).collect(),
    };
    // Rendered here because the response borrows the deliveries.
    Ok(Json(response).into_response())
}

/// `POST /v1/queues/{queue}/messages/{id}/ack`
pub async fn ack(
    State(state): State<AppState>,
    PathParams((queue, id)): PathParams<(String, u64)>,
    JsonBody(body): JsonBody<AckBody>,
) -> Result<StatusCode, ApiError> {
    state.engine.ack(&queue, id, body.attempt).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/queues/{queue}/messages/{id}/nack`: redelivered later, or dead-lettered once the
/// queue's `max_deliver` attempts are used.
pub async fn nack(
    State(state): State<AppState>,
    PathParams((queue, id)): PathParams<(String, u64)>,
    JsonBody(body): JsonBody<NackBody>,
) -> Result<StatusCode, ApiError> {
    let error = body.error.unwrap_or_default();
    check_error_text("error", &error)?;
    check_duration("nack", "delay_ms", body.delay_ms)?;
    state
        .engine
        .nack(&queue, id, body.attempt, body.delay_ms, &error)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/queues/{queue}/messages/{id}/extend`
pub async fn extend(
    State(state): State<AppState>,
    PathParams((queue, id)): PathParams<(String, u64)>,
    JsonBody(body): JsonBody<ExtendBody>,
) -> Result<Json<LeaseResponse>, ApiError> {
    let lease_deadline_ms = state
        .engine
        .extend(&queue, id, body.attempt, body.lease_ms)
        .await?;
    Ok(Json(LeaseResponse { lease_deadline_ms }))
}

/// `POST /v1/queues/{queue}/messages/{id}/term`: dead-letters now, without more attempts.
pub async fn term(
    State(state): State<AppState>,
    PathParams((queue, id)): PathParams<(String, u64)>,
    JsonBody(body): JsonBody<TermBody>,
) -> Result<StatusCode, ApiError> {
    let reason = body.reason.unwrap_or_default();
    check_error_text("reason", &reason)?;
    state.engine.term(&queue, id, body.attempt, &reason).await?;
    Ok(StatusCode::NO_CONTENT)
}
