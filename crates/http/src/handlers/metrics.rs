//! `GET /metrics`: every metric in the OpenMetrics text format, for Prometheus.
//!
//! The engine renders it (`omnibus_engine::metrics`): counters are atomics the engine and
//! the doors already keep, gauges are computed from memory at this moment, so a scrape
//! every second stays cheap with thousands of partitions and queues. docs/operations.md
//! lists every metric.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::router::AppState;

/// The media type of the OpenMetrics text format, which Prometheus asks for and parses.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

pub async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    let text = state.engine.render_metrics().await?;
    Ok(([(header::CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE)], text).into_response())
}
