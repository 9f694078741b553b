//! Consumer-group offsets: commit, read, lag, list.

use std::collections::BTreeSet;

use omnibus_storage::StateWrite;
use omnibus_types::validate_group_name;

use crate::engine::{now_ms, Engine};
use crate::error::{EngineError, Result};
use crate::groups::{self, StoredOffset};
use crate::model::{CommittedOffset, OffsetCommit, PartitionLag};
use crate::streams::registry::off_the_runtime;

/// Most offsets one commit call may carry.
pub const COMMIT_OFFSETS_MAX: usize = 100_000;
/// Longest commit metadata string (Kafka's default `offset.metadata.max.bytes`).
pub const COMMIT_METADATA_BYTES_MAX: usize = 4096;

impl Engine {
    /// Commits offsets for a group atomically and durably (group-committed with other state
    /// writes: one fsync for every commit that arrives meanwhile, off the async runtime).
    pub async fn commit_offsets(&self, group: &str, commits: Vec<OffsetCommit>) -> Result<()> {
        self.check_running()?;
        validate_group_name(group).map_err(|e| EngineError::InvalidName(e.to_string()))?;
        if commits.len() > COMMIT_OFFSETS_MAX {
            return Err(EngineError::LimitExceeded(format!(
                "{} offsets in one commit; the limit is {COMMIT_OFFSETS_MAX}",
                commits.len()
            )));
        }
        let now = now_ms();
        let mut writes = Vec::with_capacity(commits.len());
        let mut committed = Vec::with_capacity(commits.len());
        for commit in commits {
            self.stream(&commit.stream)?.partition(commit.partition)?;
            if commit.metadata.len() > COMMIT_METADATA_BYTES_MAX {
                return Err(EngineError::LimitExceeded(format!(
                    "commit metadata is {} bytes; the limit is {COMMIT_METADATA_BYTES_MAX}",
                    commit.metadata.len()
                )));
            }
            committed.push((commit.stream.clone(), commit.partition, commit.offset));
            let stored = StoredOffset {
                offset: commit.offset,
                metadata: commit.metadata,
                committed_ms: now,
            };
            writes.push(StateWrite::Put {
                table: groups::TABLE,
                key: groups::key(group, &commit.stream, commit.partition),
                value: serde_json::to_vec(&stored).expect("offset serializes"),
            });
        }
        self.state.commit(writes).await?;
        for (stream, partition, offset) in committed {
            self.committed.set(group, &stream, partition, offset);
        }
        Ok(())
    }

    /// Forgets a group's committed offsets for these (stream, partition) pairs, atomically and
    /// durably; a pair without an offset is no error. The group then starts those partitions
    /// from its reset policy, like a new group (Kafka's OffsetDelete). Whether the group's
    /// live members still read them is the caller's check.
    pub async fn delete_offsets(&self, group: &str, partitions: &[(String, u32)]) -> Result<()> {
        self.check_running()?;
        validate_group_name(group).map_err(|e| EngineError::InvalidName(e.to_string()))?;
        if partitions.len() > COMMIT_OFFSETS_MAX {
            return Err(EngineError::LimitExceeded(format!(
                "{} offsets in one delete; the limit is {COMMIT_OFFSETS_MAX}",
                partitions.len()
            )));
        }
        let writes: Vec<StateWrite> = partitions
            .iter()
            .map(|(stream, partition)| StateWrite::Delete {
                table: groups::TABLE,
                key: groups::key(group, stream, *partition),
            })
            .collect();
        self.state.commit(writes).await?;
        for (stream, partition) in partitions {
            self.committed.remove(group, stream, *partition);
        }
        Ok(())
    }

    /// Committed offsets of a group, optionally for one stream (read off the async runtime).
    pub async fn committed_offsets(
        &self,
        group: &str,
        stream: Option<&str>,
    ) -> Result<Vec<CommittedOffset>> {
        validate_group_name(group).map_err(|e| EngineError::InvalidName(e.to_string()))?;
        let prefix = match stream {
            Some(stream) => groups::stream_prefix(group, stream),
            None => groups::group_prefix(group),
        };
        let state = self.state.clone();
        let stored =
            off_the_runtime(move || Ok(state.scan_prefix(groups::TABLE, &prefix)?)).await?;
        let mut offsets = Vec::new();
        for (key, value) in stored {
            let Some((_, stream, partition)) = groups::parse_key(&key) else {
                continue;
            };
            let stored: StoredOffset = serde_json::from_slice(&value)
                .map_err(|e| EngineError::Internal(format!("stored offset {key:?}: {e}")))?;
            offsets.push(CommittedOffset {
                stream: stream.to_string(),
                partition,
                offset: stored.offset,
                metadata: stored.metadata,
                committed_ms: stored.committed_ms,
            });
        }
        Ok(offsets)
    }

    /// Lag for every partition of the streams the group has committed on (or of `stream`).
    pub async fn group_lag(&self, group: &str, stream: Option<&str>) -> Result<Vec<PartitionLag>> {
        let committed = self.committed_offsets(group, stream).await?;
        let mut names: BTreeSet<String> = committed.iter().map(|c| c.stream.clone()).collect();
        if let Some(stream) = stream {
            names.insert(stream.to_string());
        }
        let now = now_ms();
        let mut lags = Vec::new();
        for name in names {
            let Ok(stream) = self.stream(&name) else {
                continue;
            };
            for (index, log) in stream.partitions.iter().enumerate() {
                let partition = index as u32;
                let offset = committed
                    .iter()
                    .find(|c| c.stream == name && c.partition == partition)
                    .map(|c| c.offset);
                let high_watermark = log.high_watermark();
                let from = offset.unwrap_or(log.log_start_offset());
                let lag = high_watermark.saturating_sub(from);
                let lag_ms = (lag > 0)
                    .then(|| log.timestamp_at_most_after(from.max(log.log_start_offset())))
                    .flatten()
                    .map(|timestamp| now.saturating_sub(timestamp).max(0));
                lags.push(PartitionLag {
                    stream: name.clone(),
                    partition,
                    committed: offset,
                    high_watermark,
                    lag,
                    lag_ms,
                });
            }
        }
        Ok(lags)
    }

    /// Every group with a committed offset (read off the async runtime).
    pub async fn list_groups(&self) -> Result<Vec<String>> {
        let state = self.state.clone();
        let stored = off_the_runtime(move || Ok(state.scan_prefix(groups::TABLE, "")?)).await?;
        let mut groups = BTreeSet::new();
        for (key, _) in stored {
            if let Some((group, _, _)) = groups::parse_key(&key) {
                groups.insert(group.to_string());
            }
        }
        Ok(groups.into_iter().collect())
    }
}
