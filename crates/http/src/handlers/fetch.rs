//! `GET /v1/streams/{stream}/partitions/{partition}/records`: read records from an offset,
//! optionally long-polling until one arrives.

use axum::extract::State;
use axum::Json;
use omnibus_engine::{FetchRequest, FetchResult, OffsetSpec};
use omnibus_types::limits::{BATCH_BYTES_MAX, FETCH_WAIT_MS_MAX};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::extract::{PathParams, QueryParams};
use crate::handlers::offsets::{parse_start_offset, resolve, StartOffset};
use crate::json::RecordOutput;
use crate::router::AppState;

pub const MAX_RECORDS_DEFAULT: usize = 1000;
pub const MAX_BYTES_DEFAULT: usize = 1024 * 1024;
/// Ceiling for `max_bytes`: one stored batch, the most any single read returns anyway.
pub const MAX_BYTES_CEILING: usize = BATCH_BYTES_MAX;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FetchQuery {
    /// `earliest` (the default), `latest` or an exact offset.
    offset: Option<String>,
    /// Start at the first record at or after this time instead of at `offset`.
    timestamp_ms: Option<i64>,
    max_records: Option<usize>,
    max_bytes: Option<usize>,
    wait_ms: Option<u64>,
}

#[derive(Debug, Serialize)]
pub struct FetchResponse<'a> {
    records: Vec<RecordOutput<'a>>,
    next_offset: u64,
    high_watermark: u64,
    log_start_offset: u64,
}

impl<'a> FetchResponse<'a> {
    /// Renders fetched records of `partition` (also used for a queue's dead letters).
    pub fn new(result: &'a FetchResult, partition: u32) -> Self {
        FetchResponse {
            records: result
                .records
                .iter()
                .map(|record| RecordOutput::new(record, partition))
                .collect(),
            next_offset: result.next_offset,
            high_watermark: result.high_watermark,
            log_start_offset: result.log_start_offset,
        }
    }
}

/// The bounded numbers of a fetch, after defaults and clamping.
#[derive(Debug, PartialEq, Eq)]
struct FetchBounds {
    max_records: usize,
    max_bytes: usize,
    wait_ms: u64,
}

impl FetchBounds {
    fn new(query: &FetchQuery, fetch_records_max: usize) -> Self {
        FetchBounds {
            max_records: query
                .max_records
                .unwrap_or(MAX_RECORDS_DEFAULT)
                .clamp(1, fetch_records_max.max(1)),
            max_bytes: query
                .max_bytes
                .unwrap_or(MAX_BYTES_DEFAULT)
                .clamp(1, MAX_BYTES_CEILING),
            wait_ms: query.wait_ms.unwrap_or(0).min(FETCH_WAIT_MS_MAX),
        }
    }
}

pub async fn fetch_records(
    State(state): State<AppState>,
    PathParams((stream, partition)): PathParams<(String, u32)>,
    QueryParams(query): QueryParams<FetchQuery>,
) -> Result<axum::response::Response, ApiError> {
    let start = match (&query.offset, query.timestamp_ms) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "give offset or timestamp_ms, not both",
            ))
        }
        (None, Some(timestamp_ms)) => StartOffset::Resolve(OffsetSpec::Timestamp(timestamp_ms)),
        (Some(offset), None) => parse_start_offset(offset)?,
        (None, None) => StartOffset::Resolve(OffsetSpec::Earliest),
    };
    let offset = match start {
        StartOffset::Exact(offset) => offset,
        StartOffset::Resolve(spec) => resolve(&state, stream.clone(), partition, spec).await?,
    };
    let bounds = FetchBounds::new(&query, state.config.fetch_records_max);
    let result = state
        .engine
        .fetch(FetchRequest {
            stream,
            partition,
            offset,
            max_records: bounds.max_records,
            max_bytes: bounds.max_bytes,
            wait_ms: bounds.wait_ms,
        })
        .await?;
    let response = FetchResponse::new(&result, partition);
    // Rendered here because the response borrows the fetched records.
    Ok(axum::response::IntoResponse::into_response(Json(response)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_default_when_absent() {
        let bounds = FetchBounds::new(&FetchQuery::default(), 10_000);
        assert_eq!(
            bounds,
            FetchBounds {
                max_records: MAX_RECORDS_DEFAULT,
                max_bytes: MAX_BYTES_DEFAULT,
                wait_ms: 0,
            }
        );
    }

    #[test]
    fn bounds_are_clamped_to_their_ceilings() {
        let query = FetchQuery {
            max_records: Some(usize::MAX),
            max_bytes: Some(usize::MAX),
            wait_ms: Some(u64::MAX),
            ..FetchQuery::default()
        };
        let bounds = FetchBounds::new(&query, 500);
        assert_eq!(
            bounds,
            FetchBounds {
                max_records: 500,
                max_bytes: MAX_BYTES_CEILING,
                wait_ms: FETCH_WAIT_MS_MAX,
            }
        );
        let zero = FetchQuery {
            max_records: Some(0),
            max_bytes: Some(0),
            ..FetchQuery::default()
        };
        let bounds = FetchBounds::new(&zero, 500);
        assert_eq!((bounds.max_records, bounds.max_bytes), (1, 1));
    }
}
