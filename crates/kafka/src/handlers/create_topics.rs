//! CreateTopics (key 19): each topic becomes a stream. One broker means a replication factor
//! of 1 (or -1, "the default"); a manual assignment may only name node 0. Kafka topic configs
//! map onto stream settings (see `topic_configs`); unknown ones are refused.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
use kafka_protocol::protocol::StrBytes;
use omnibus_engine::{EngineError, StreamConfig, StreamSpec};

use super::errors::{engine_error_code, NONE};
use super::{topic_configs, Broker, NODE_ID};

/// Kafka's `ConfigSource.DYNAMIC_TOPIC_CONFIG` and `DEFAULT_CONFIG`.
const SOURCE_TOPIC: i8 = 1;
const SOURCE_DEFAULT: i8 = 5;

pub(crate) async fn handle(broker: &Broker, request: CreateTopicsRequest) -> CreateTopicsResponse {
    let mut response = CreateTopicsResponse::default();
    for topic in request.topics {
        let mut result = CreatableTopicResult::default();
        result.name = topic.name.clone();
        let requested_partitions = topic.num_partitions;
        match create(broker, topic, request.validate_only).await {
            Ok(None) => {
                result.error_code = NONE;
                result.num_partitions = requested_partitions;
                result.replication_factor = 1;
                result.configs = Some(Vec::new());
            }
            Ok(Some(config)) => {
                result.error_code = NONE;
                result.num_partitions = config.partitions as i32;
                result.replication_factor = 1;
                result.configs = Some(configs(&config));
            }
            Err((code, message)) => {
                result.error_code = code;
                result.error_message = Some(StrBytes::from_string(message));
                result.num_partitions = -1;
                result.replication_factor = -1;
                result.configs = None;
            }
        }
        response.topics.push(result);
    }
    response
}

async fn create(
    broker: &Broker,
    topic: CreatableTopic,
    validate_only: bool,
) -> Result<Option<StreamConfig>, (i16, String)> {
    // Kafka's own rule (no `:`, which stream names otherwise allow), before anything else.
    omnibus_types::validate_kafka_topic_name(topic.name.as_str())
        .map_err(|e| (ResponseError::InvalidTopicException.code(), e.to_string()))?;
    let mut spec = StreamSpec {
        name: topic.name.to_string(),
        ..StreamSpec::default()
    };
    if !matches!(topic.replication_factor, -1 | 1) {
        return Err((
            ResponseError::InvalidReplicationFactor.code(),
            format!(
                "replication factor {} is larger than the 1 broker available",
                topic.replication_factor
            ),
        ));
    }
    if topic.assignments.is_empty() {
        match topic.num_partitions {
            -1 => {}
            n if n >= 1 => spec.partitions = Some(n as u32),
            n => {
                return Err((
                    ResponseError::InvalidPartitions.code(),
                    format!("{n} partitions; a topic needs at least 1"),
                ))
            }
        }
    } else {
        if topic.num_partitions != -1 {
            return Err((
                ResponseError::InvalidRequest.code(),
                "give either num_partitions or replica assignments, not both".into(),
            ));
        }
        let single_replica_on_us = topic.assignments.iter().all(|a| a.broker_ids == [NODE_ID]);
        let indexes_dense = topic
            .assignments
            .iter()
            .enumerate()
            .all(|(i, a)| a.partition_index == i as i32);
        if !single_replica_on_us || !indexes_dense {
            return Err((
                ResponseError::InvalidReplicaAssignment.code(),
                "assignments must list partitions 0.. in order, each on broker 0 only".into(),
            ));
        }
        spec.partitions = Some(topic.assignments.len() as u32);
    }
    for config in &topic.configs {
        topic_configs::apply(&mut spec, config.name.as_str(), config.value.as_deref())
            .map_err(|message| (ResponseError::InvalidConfig.code(), message))?;
    }
    let failure = |error: EngineError| {
        let code = match &error {
            EngineError::InvalidConfig(message) if message.contains("partitions") => {
                ResponseError::InvalidPartitions.code()
            }
            other => engine_error_code(other),
        };
        (code, error.to_string())
    };
    if validate_only {
        // The engine validates the rest only when it creates; the name (checked above) and
        // existence are what we can promise without creating.
        return match broker.engine.stream_info(&spec.name) {
            Ok(_) => Err(failure(EngineError::StreamExists(spec.name))),
            Err(EngineError::StreamNotFound(_)) => Ok(None),
            Err(error) => Err(failure(error)),
        };
    }
    let info = broker.engine.create_stream(spec).await.map_err(failure)?;
    tracing::info!(topic = %info.config.name, partitions = info.config.partitions, "created a topic");
    Ok(Some(info.config))
}

fn configs(config: &StreamConfig) -> Vec<CreatableTopicConfigs> {
    topic_configs::describe(config)
        .into_iter()
        .map(|entry| {
            let mut answer = CreatableTopicConfigs::default();
            answer.name = StrBytes::from_static_str(entry.name);
            answer.value = Some(StrBytes::from_string(entry.value));
            answer.read_only = !entry.from_stream;
            answer.config_source = if entry.from_stream {
                SOURCE_TOPIC
            } else {
                SOURCE_DEFAULT
            };
            answer.is_sensitive = false;
            answer
        })
        .collect()
}
