//! Consumer-group offsets: commit, read, lag, and the list of groups.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use omnibus_engine::{CommittedOffset, OffsetCommit, PartitionLag};
use serde::{Deserialize, Serialize};

use crate::bounded::Bounded;
use crate::error::ApiError;
use crate::extract::{JsonBody, PathParams, QueryParams};
use crate::router::AppState;

/// Most offsets in one commit request: a group reading every partition of many streams.
pub const OFFSET_COMMITS_MAX: usize = 100_000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommitBody {
    offsets: Bounded<CommitInput, OFFSET_COMMITS_MAX>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CommitInput {
    stream: String,
    partition: u32,
    /// The next offset the group will read.
    offset: u64,
    #[serde(default)]
    metadata: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamFilter {
    stream: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct CommittedOffsets {
    offsets: Vec<CommittedOffset>,
}

#[derive(Debug, Serialize)]
pub struct GroupLag {
    partitions: Vec<PartitionLag>,
    total_lag: u64,
}

#[derive(Debug, Serialize)]
pub struct GroupList {
    groups: Vec<String>,
}

/// `POST /v1/groups/{group}/offsets`
pub async fn commit_offsets(
    State(state): State<AppState>,
    PathParams(group): PathParams<String>,
    JsonBody(body): JsonBody<CommitBody>,
) -> Result<StatusCode, ApiError> {
    let commits: Vec<OffsetCommit> = body
        .offsets
        .into_items("offsets")?
        .into_iter()
        .map(|input| OffsetCommit {
            stream: input.stream,
            partition: input.partition,
            offset: input.offset,
            metadata: input.metadata,
        })
        .collect();
    state.engine.commit_offsets(&group, commits).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v1/groups/{group}/offsets[?stream=S]`
pub async fn committed_offsets(
    State(state): State<AppState>,
    PathParams(group): PathParams<String>,
    QueryParams(filter): QueryParams<StreamFilter>,
) -> Result<Json<CommittedOffsets>, ApiError> {
    let offsets = state
        .engine
        .committed_offsets(&group, filter.stream.as_deref())
        .await?;
    Ok(Json(CommittedOffsets { offsets }))
}

/// `GET /v1/groups/{group}/lag[?stream=S]`
pub async fn group_lag(
    State(state): State<AppState>,
    PathParams(group): PathParams<String>,
    QueryParams(filter): QueryParams<StreamFilter>,
) -> Result<Json<GroupLag>, ApiError> {
    let partitions = state
        .engine
        .group_lag(&group, filter.stream.as_deref())
        .await?;
    let total_lag = partitions
        .iter()
        .fold(0u64, |total, partition| total.saturating_add(partition.lag));
    Ok(Json(GroupLag {
        partitions,
        total_lag,
    }))
}

/// `GET /v1/groups`
pub async fn list_groups(State(state): State<AppState>) -> Result<Json<GroupList>, ApiError> {
    let groups = state.engine.list_groups().await?;
    Ok(Json(GroupList { groups }))
}
