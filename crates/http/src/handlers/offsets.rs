//! `GET /v1/streams/{stream}/partitions/{partition}/offsets?at=earliest|latest|<timestamp_ms>`,
//! and the parsing of offset positions shared with fetch.

use axum::extract::State;
use axum::Json;
use omnibus_engine::OffsetSpec;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::extract::{PathParams, QueryParams};
use crate::router::AppState;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OffsetQuery {
    /// `earliest`, `latest` (the default) or a timestamp in ms since the epoch.
    at: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct OffsetResponse {
    offset: u64,
}

pub async fn resolve_offset(
    State(state): State<AppState>,
    PathParams((stream, partition)): PathParams<(String, u32)>,
    QueryParams(query): QueryParams<OffsetQuery>,
) -> Result<Json<OffsetResponse>, ApiError> {
    let spec = match query.at.as_deref() {
        None => OffsetSpec::Latest,
        Some(at) => parse_at(at)?,
    };
    let offset = resolve(&state, stream, partition, spec).await?;
    Ok(Json(OffsetResponse { offset }))
}

/// Asks the engine for the offset `spec` names.
pub async fn resolve(
    state: &AppState,
    stream: String,
    partition: u32,
    spec: OffsetSpec,
) -> Result<u64, ApiError> {
    Ok(state
        .engine
        .resolve_offset(&stream, partition, spec)
        .await?)
}

fn parse_at(at: &str) -> Result<OffsetSpec, ApiError> {
    match at {
        "earliest" => Ok(OffsetSpec::Earliest),
        "latest" => Ok(OffsetSpec::Latest),
        timestamp => timestamp
            .parse::<i64>()
            .map(OffsetSpec::Timestamp)
            .map_err(|_| {
                ApiError::bad_request(format!(
                    "at={timestamp:?} is not earliest, latest or a timestamp in ms since the epoch"
                ))
            }),
    }
}

/// Where a fetch starts: a named position to resolve, or an exact offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartOffset {
    Resolve(OffsetSpec),
    Exact(u64),
}

/// Parses a fetch's `offset=N|earliest|latest`.
pub fn parse_start_offset(offset: &str) -> Result<StartOffset, ApiError> {
    match offset {
        "earliest" => Ok(StartOffset::Resolve(OffsetSpec::Earliest)),
        "latest" => Ok(StartOffset::Resolve(OffsetSpec::Latest)),
        exact => exact.parse::<u64>().map(StartOffset::Exact).map_err(|_| {
            ApiError::bad_request(format!(
                "offset={exact:?} is not earliest, latest or a non-negative integer"
            ))
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_accepts_names_and_timestamps() {
        assert_eq!(parse_at("earliest").unwrap(), OffsetSpec::Earliest);
        assert_eq!(parse_at("latest").unwrap(), OffsetSpec::Latest);
        assert_eq!(
            parse_at("1700000000000").unwrap(),
            OffsetSpec::Timestamp(1_700_000_000_000)
        );
        assert_eq!(parse_at("soon").unwrap_err().code(), "bad_request");
    }

    #[test]
    fn start_offset_accepts_names_and_exact_offsets_only() {
        assert_eq!(
            parse_start_offset("earliest").unwrap(),
            StartOffset::Resolve(OffsetSpec::Earliest)
        );
        assert_eq!(parse_start_offset("42").unwrap(), StartOffset::Exact(42));
        assert_eq!(parse_start_offset("-1").unwrap_err().code(), "bad_request");
        assert_eq!(parse_start_offset("").unwrap_err().code(), "bad_request");
    }
}
