//! OffsetFetch (key 9): a group's committed offsets. v1–7 ask for one group (null topics: every
//! committed partition, v2+); v8 asks for several groups at once. A partition with no commit
//! answers offset -1 and no error, as Kafka does.

use std::collections::BTreeMap;

use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{GroupId, OffsetFetchRequest, OffsetFetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use omnibus_engine::EngineError;

use super::errors::{engine_error_code, NONE};
use super::Broker;

/// (offset, metadata) per (topic, partition).
type Committed = BTreeMap<(String, i32), (i64, String)>;

/// One partition's answer: (index, committed offset, metadata).
type PartitionOffset = (i32, i64, String);

/// One group's answer: per topic, its partitions.
struct GroupOffsets {
    error_code: i16,
    topics: Vec<(TopicName, Vec<PartitionOffset>)>,
}

pub(crate) async fn handle(
    broker: &Broker,
    request: OffsetFetchRequest,
    version: i16,
) -> OffsetFetchResponse {
    let mut response = OffsetFetchResponse::default();
    if version >= 8 {
        for group in request.groups {
            {
                let wanted = group.topics.map(|topics| {
                    topics
                        .into_iter()
                        .map(|t| (t.name, t.partition_indexes))
                        .collect()
                });
                let offsets = group_offsets(broker, &group.group_id, wanted).await;
                let mut answer = OffsetFetchResponseGroup::default();
                answer.group_id = group.group_id;
                answer.error_code = offsets.error_code;
                answer.topics = offsets
                    .topics
                    .into_iter()
                    .map(|(name, partitions)| {
                        let mut topic = OffsetFetchResponseTopics::default();
                        topic.name = name;
                        topic.partitions = partitions
                            .into_iter()
                            .map(|(index, offset, metadata)| {
                                let mut partition = OffsetFetchResponsePartitions::default();
                                partition.partition_index = index;
                                partition.committed_offset = offset;
                                partition.metadata = Some(StrBytes::from_string(metadata));
                                partition
                            })
                            .collect();
                        topic
                    })
                    .collect();
                response.groups.push(answer);
            }
        }
        return response;
    }
    let wanted = request.topics.map(|topics| {
        topics
            .into_iter()
            .map(|t| (t.name, t.partition_indexes))
            .collect()
    });
    let offsets = group_offsets(broker, &request.group_id, wanted).await;
    response.error_code = offsets.error_code;
    response.topics = offsets
        .topics
        .into_iter()
        .map(|(name, partitions)| {
            let mut topic = OffsetFetchResponseTopic::default();
            topic.name = name;
            topic.partitions = partitions
                .into_iter()
                .map(|(index, offset, metadata)| {
                    let mut partition = OffsetFetchResponsePartition::default();
                    partition.partition_index = index;
                    partition.committed_offset = offset;
                    partition.metadata = Some(StrBytes::from_string(metadata));
                    partition.error_code = offsets.error_code;
                    partition
                })
                .collect();
            topic
        })
        .collect();
    response
}

async fn group_offsets(
    broker: &Broker,
    group: &GroupId,
    wanted: Option<Vec<(TopicName, Vec<i32>)>>,
) -> GroupOffsets {
    let committed: Result<Committed, EngineError> = broker
        .engine
        .committed_offsets(group.as_str(), None)
        .await
        .map(|list| {
            list.into_iter()
                .map(|c| {
                    (
                        (c.stream, c.partition as i32),
                        (c.offset as i64, c.metadata),
                    )
                })
                .collect()
        });
    let (error_code, committed) = match committed {
        Ok(committed) => (NONE, committed),
        // An invalid group name has no offsets, like an unknown group.
        Err(EngineError::InvalidName(_)) => (NONE, Committed::new()),
        Err(error) => (engine_error_code(&error), Committed::new()),
    };
    let topics = match wanted {
        Some(wanted) => wanted
            .into_iter()
            .map(|(name, partitions)| {
                let answers = partitions
                    .into_iter()
                    .map(|index| {
                        let (offset, metadata) = committed
                            .get(&(name.to_string(), index))
                            .cloned()
                            .unwrap_or((-1, String::new()));
                        (index, offset, metadata)
                    })
                    .collect();
                (name, answers)
            })
            .collect(),
        None => {
            let mut topics: Vec<(TopicName, Vec<PartitionOffset>)> = Vec::new();
            for ((topic, index), (offset, metadata)) in committed {
                match topics.last_mut() {
                    Some((name, partitions)) if name.as_str() == topic => {
                        partitions.push((index, offset, metadata));
                    }
                    _ => topics.push((
                        TopicName(StrBytes::from_string(topic)),
                        vec![(index, offset, metadata)],
                    )),
                }
            }
            topics
        }
    };
    GroupOffsets { error_code, topics }
}
