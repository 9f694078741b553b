//! CreatePartitions (key 37): grows a stream's partition count (never shrinks it). A manual
//! assignment may only name broker 0.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};
use kafka_protocol::protocol::StrBytes;
use omnibus_engine::EngineError;

use super::errors::{engine_error_code, NONE};
use super::{Broker, NODE_ID};

pub(crate) async fn handle(
    broker: &Broker,
    request: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let mut response = CreatePartitionsResponse::default();
    for topic in request.topics {
        let mut result = CreatePartitionsTopicResult::default();
        result.name = topic.name.clone();
        match grow(broker, topic, request.validate_only).await {
            Ok(()) => result.error_code = NONE,
            Err((code, message)) => {
                result.error_code = code;
                result.error_message = Some(StrBytes::from_string(message));
            }
        }
        response.results.push(result);
    }
    response
}

async fn grow(
    broker: &Broker,
    topic: CreatePartitionsTopic,
    validate_only: bool,
) -> Result<(), (i16, String)> {
    let name = topic.name.to_string();
    let info = broker
        .engine
        .stream_info(&name)
        .map_err(|error| (engine_error_code(&error), error.to_string()))?;
    let current = info.config.partitions as i64;
    let wanted = topic.count as i64;
    if wanted <= current {
        return Err((
            ResponseError::InvalidPartitions.code(),
            format!("topic {name} has {current} partitions; the count can only grow"),
        ));
    }
    if let Some(assignments) = &topic.assignments {
        let only_us = assignments.iter().all(|a| a.broker_ids == [NODE_ID]);
        if !only_us || assignments.len() as i64 != wanted - current {
            return Err((
                ResponseError::InvalidReplicaAssignment.code(),
                "each new partition must be assigned to broker 0 only".into(),
            ));
        }
    }
    if validate_only {
        return Ok(());
    }
    // The engine flushes and reopens the stream's logs off the async workers.
    match broker.engine.add_partitions(&name, wanted as u32).await {
        Ok(info) => {
            tracing::info!(topic = %info.config.name, partitions = info.config.partitions, "added partitions");
            Ok(())
        }
        Err(error @ EngineError::InvalidConfig(_)) => {
            Err((ResponseError::InvalidPartitions.code(), error.to_string()))
        }
        Err(error) => Err((engine_error_code(&error), error.to_string())),
    }
}
