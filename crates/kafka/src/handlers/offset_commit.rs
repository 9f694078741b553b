//! OffsetCommit (key 8): the coordinator checks the member and generation (generation -1 with
//! no member id is a standalone commit), then the offsets — "the next offset to read" — are
//! stored durably and atomically in the engine. A partition of an unknown topic or with
//! oversized metadata gets its own error; the others are still committed.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};
use omnibus_engine::{Engine, OffsetCommit};

use super::errors::{engine_error_code, NONE};
use super::Broker;

/// Longest commit metadata (Kafka's `offset.metadata.max.bytes` default, also the engine's).
const METADATA_BYTES_MAX: usize = 4096;

pub(crate) async fn handle(broker: &Broker, request: OffsetCommitRequest) -> OffsetCommitResponse {
    let group = request.group_id.to_string();
    let group_error = broker
        .coordinator
        .validate_commit(
            &group,
            request.member_id.as_str(),
            request.generation_id_or_member_epoch,
        )
        .err()
        .map(|error| engine_error_code(&error));
    // Per partition: its error, or the commit to store.
    let mut answers: Vec<(usize, i32, i16)> = Vec::new();
    let mut commits: Vec<(usize, OffsetCommit)> = Vec::new();
    for (topic_index, topic) in request.topics.iter().enumerate() {
        for partition in &topic.partitions {
            let error =
                group_error.or_else(|| check(&broker.engine, topic.name.as_str(), partition));
            match error {
                Some(code) => answers.push((topic_index, partition.partition_index, code)),
                None => commits.push((
                    topic_index,
                    OffsetCommit {
                        stream: topic.name.to_string(),
                        partition: partition.partition_index as u32,
                        offset: partition.committed_offset as u64,
                        metadata: partition
                            .committed_metadata
                            .as_deref()
                            .unwrap_or("")
                            .to_string(),
                    },
                )),
            }
        }
    }
    if !commits.is_empty() {
        let partitions: Vec<(usize, i32)> = commits
            .iter()
            .map(|(t, c)| (*t, c.partition as i32))
            .collect();
        let result = broker
            .engine
            .commit_offsets(&group, commits.into_iter().map(|(_, c)| c).collect())
            .await;
        let code = match result {
            Ok(()) => NONE,
            Err(error) => {
                tracing::warn!(group, "offset commit failed: {error}");
                engine_error_code(&error)
            }
        };
        answers.extend(partitions.into_iter().map(|(t, p)| (t, p, code)));
    }
    let mut response = OffsetCommitResponse::default();
    response.topics = request
        .topics
        .into_iter()
        .enumerate()
        .map(|(index, topic)| {
            let mut answer = OffsetCommitResponseTopic::default();
            answer.name = topic.name;
            answer.partitions = topic
                .partitions
                .iter()
                .map(|requested| {
                    let mut partition = OffsetCommitResponsePartition::default();
                    partition.partition_index = requested.partition_index;
                    partition.error_code = answers
                        .iter()
                        .find(|(t, p, _)| *t == index && *p == requested.partition_index)
                        .map_or(NONE, |(_, _, code)| *code);
                    partition
                })
                .collect();
            answer
        })
        .collect();
    response
}

/// A partition-level reason not to commit, if any.
fn check(
    engine: &Engine,
    topic: &str,
    partition: &kafka_protocol::messages::offset_commit_request::OffsetCommitRequestPartition,
) -> Option<i16> {
    if partition.committed_metadata.as_ref().map_or(0, |m| m.len()) > METADATA_BYTES_MAX {
        return Some(ResponseError::OffsetMetadataTooLarge.code());
    }
    if partition.committed_offset < 0 {
        return Some(ResponseError::InvalidCommitOffsetSize.code());
    }
    let known = u32::try_from(partition.partition_index).is_ok_and(|index| {
        engine
            .stream_info(topic)
            .is_ok_and(|info| index < info.config.partitions)
    });
    (!known).then(|| ResponseError::UnknownTopicOrPartition.code())
}
