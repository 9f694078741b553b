//! OffsetDelete (key 47): forgets a group's committed offsets for some partitions
//! (`kafka-consumer-groups --delete-offsets`, admin clients' `delete_consumer_group_offsets`).
//! As in Kafka: an unknown group is GROUP_ID_NOT_FOUND; an empty group loses the offsets
//! asked for; a group with members keeps the offsets of the topics its members subscribe to
//! (GROUP_SUBSCRIBED_TO_TOPIC for those partitions) and loses the others. A group in the
//! middle of a rebalance is answered REBALANCE_IN_PROGRESS (its subscriptions are settling).
//! The subscriptions are read from the members' consumer-protocol metadata, which only Kafka
//! clients write, so the check lives here and not in the engine.

use std::collections::BTreeSet;

use bytes::{Buf, Bytes};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{
    ConsumerProtocolSubscription, OffsetDeleteRequest, OffsetDeleteResponse,
};
use kafka_protocol::protocol::Decodable;
use omnibus_engine::groups::coordinator::GroupState;

use super::errors::{engine_error_code, NONE};
use super::Broker;

/// The newest ConsumerProtocolSubscription version the crate decodes; newer ones only add
/// fields at the end, so their start reads the same.
const SUBSCRIPTION_VERSION_MAX: i16 = 3;

pub(crate) async fn handle(broker: &Broker, request: OffsetDeleteRequest) -> OffsetDeleteResponse {
    let mut response = OffsetDeleteResponse::default();
    let group = request.group_id.to_string();
    let subscribed = match subscribed_topics(broker, &group).await {
        Ok(subscribed) => subscribed,
        Err(code) => {
            response.error_code = code;
            return response;
        }
    };
    let mut deletions = Vec::new();
    for topic in request.topics {
        let name = topic.name.to_string();
        let mut answer = OffsetDeleteResponseTopic::default();
        answer.name = topic.name;
        for partition in topic.partitions {
            let mut result = OffsetDeleteResponsePartition::default();
            result.partition_index = partition.partition_index;
            result.error_code = match u32::try_from(partition.partition_index) {
                _ if subscribed.contains(&name) => ResponseError::GroupSubscribedToTopic.code(),
                Ok(index) => {
                    deletions.push((name.clone(), index));
                    NONE
                }
                Err(_) => ResponseError::UnknownTopicOrPartition.code(),
            };
            answer.partitions.push(result);
        }
        response.topics.push(answer);
    }
    if let Err(error) = broker.engine.delete_offsets(&group, &deletions).await {
        let code = engine_error_code(&error);
        for partition in response.topics.iter_mut().flat_map(|t| &mut t.partitions) {
            if partition.error_code == NONE {
                partition.error_code = code;
            }
        }
    }
    response
}

/// The topics the group's members subscribe to, or the request's top-level error.
async fn subscribed_topics(broker: &Broker, group: &str) -> Result<BTreeSet<String>, i16> {
    let description = broker
        .coordinator
        .describe(group)
        .await
        .map_err(|error| engine_error_code(&error))?;
    match description.state {
        GroupState::Dead => Err(ResponseError::GroupIdNotFound.code()),
        GroupState::Empty => Ok(BTreeSet::new()),
        GroupState::PreparingRebalance | GroupState::CompletingRebalance => {
            Err(ResponseError::RebalanceInProgress.code())
        }
        GroupState::Stable => Ok(description
            .members
            .iter()
            .flat_map(|member| subscription(&member.metadata))
            .collect()),
    }
}

/// The topics of one member's consumer-protocol subscription (none if it is not one).
fn subscription(metadata: &Bytes) -> Vec<String> {
    let mut buffer = metadata.clone();
    if buffer.remaining() < 2 {
        return Vec::new();
    }
    let version = buffer.get_i16().clamp(0, SUBSCRIPTION_VERSION_MAX);
    ConsumerProtocolSubscription::decode(&mut buffer, version)
        .map(|subscription| subscription.topics.iter().map(|t| t.to_string()).collect())
        .unwrap_or_default()
}
