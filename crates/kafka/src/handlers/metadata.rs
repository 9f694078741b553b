//! Metadata (key 3): the one broker (node 0 at the advertised address) and the requested
//! topics, each partition led by node 0. Null topics (or an empty list in v0) means every
//! stream. A missing topic is created when both the client (`allow_auto_topic_creation`) and
//! the broker (`auto_create_topics`) allow it, with the engine's stream defaults.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use omnibus_engine::{EngineError, StreamInfo, StreamSpec};

use super::errors::engine_error_code;
use super::{Broker, CLUSTER_ID, NODE_ID};

pub(crate) async fn handle(
    broker: &Broker,
    request: MetadataRequest,
    version: i16,
) -> MetadataResponse {
    let mut response = MetadataResponse::default();
    let mut node = MetadataResponseBroker::default();
    node.node_id = NODE_ID;
    node.host = broker.host();
    node.port = broker.port;
    response.brokers = vec![node];
    response.cluster_id = Some(StrBytes::from_static_str(CLUSTER_ID));
    response.controller_id = NODE_ID;
    let requested: Option<Vec<Option<TopicName>>> = match request.topics {
        None => None,
        Some(topics) if topics.is_empty() && version == 0 => None,
        Some(topics) => Some(topics.into_iter().map(|t| t.name).collect()),
    };
    response.topics = match requested {
        None => broker
            .engine
            .list_streams()
            .iter()
            .map(|info| topic_metadata(info, version))
            .collect(),
        Some(names) => {
            let create = request.allow_auto_topic_creation && broker.config.auto_create_topics;
            let mut topics = Vec::with_capacity(names.len());
            for name in names {
                topics.push(requested_topic(broker, name, create, version).await);
            }
            topics
        }
    };
    response
}

async fn requested_topic(
    broker: &Broker,
    name: Option<TopicName>,
    create: bool,
    version: i16,
) -> MetadataResponseTopic {
    let Some(name) = name else {
        // A lookup by topic id (v12+): we have no topic ids.
        return error_topic(None, ResponseError::UnknownTopicId.code());
    };
    match broker.engine.stream_info(name.as_str()) {
        Ok(info) => topic_metadata(&info, version),
        Err(EngineError::StreamNotFound(_)) if create => match auto_create(broker, &name).await {
            Ok(info) => topic_metadata(&info, version),
            Err(error) => error_topic(Some(name), engine_error_code(&error)),
        },
        Err(error) => error_topic(Some(name), engine_error_code(&error)),
    }
}

async fn auto_create(broker: &Broker, name: &TopicName) -> Result<StreamInfo, EngineError> {
    // A topic made on first use follows Kafka's rule (no `:`), as one created explicitly does.
    omnibus_types::validate_kafka_topic_name(name.as_str())
        .map_err(|e| EngineError::InvalidName(e.to_string()))?;
    let created = broker
        .engine
        .create_stream(StreamSpec {
            name: name.to_string(),
            ..StreamSpec::default()
        })
        .await;
    match created {
        Ok(info) => {
            tracing::info!(topic = %name.as_str(), "created a topic on first use");
            Ok(info)
        }
        // Another connection created it meanwhile.
        Err(EngineError::StreamExists(_)) => broker.engine.stream_info(name.as_str()),
        Err(error) => Err(error),
    }
}

fn error_topic(name: Option<TopicName>, error_code: i16) -> MetadataResponseTopic {
    let mut topic = MetadataResponseTopic::default();
    topic.error_code = error_code;
    topic.name = name.or_else(|| Some(TopicName(StrBytes::default())));
    topic
}

pub(crate) fn topic_metadata(info: &StreamInfo, version: i16) -> MetadataResponseTopic {
    let mut topic = MetadataResponseTopic::default();
    topic.name = Some(TopicName(StrBytes::from_string(info.config.name.clone())));
    topic.partitions = (0..info.config.partitions)
        .map(|index| {
            let mut partition = MetadataResponsePartition::default();
            partition.partition_index = index as i32;
            partition.leader_id = NODE_ID;
            if version >= 7 {
                partition.leader_epoch = 0;
            }
            partition.replica_nodes = vec![NODE_ID];
            partition.isr_nodes = vec![NODE_ID];
            partition
        })
        .collect();
    topic
}
