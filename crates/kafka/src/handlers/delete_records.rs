//! DeleteRecords (key 21): the engine can move a partition's log start only by whole segments
//! (through retention), not to an arbitrary offset yet (storage.md, "Not done yet"). So a
//! request at or below the current log start succeeds (there is nothing to delete) and one
//! above it is refused with POLICY_VIOLATION, rather than claiming a deletion that did not
//! happen.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};
use omnibus_engine::OffsetSpec;

use super::errors::{engine_error_code, NONE};
use super::Broker;

/// "Up to the high watermark".
const HIGH_WATERMARK: i64 = -1;

pub(crate) fn handle(broker: &Broker, request: DeleteRecordsRequest) -> DeleteRecordsResponse {
    let mut response = DeleteRecordsResponse::default();
    for topic in request.topics {
        let mut answer = DeleteRecordsTopicResult::default();
        for partition in &topic.partitions {
            let mut result = DeleteRecordsPartitionResult::default();
            result.partition_index = partition.partition_index;
            result.low_watermark = -1;
            result.error_code = match check(
                broker,
                topic.name.as_str(),
                partition.partition_index,
                partition.offset,
            ) {
                Ok(low_watermark) => {
                    result.low_watermark = low_watermark;
                    NONE
                }
                Err(code) => code,
            };
            answer.partitions.push(result);
        }
        answer.name = topic.name;
        response.topics.push(answer);
    }
    response
}

/// The low watermark after the request, or why it cannot be done.
fn check(broker: &Broker, topic: &str, partition: i32, offset: i64) -> Result<i64, i16> {
    let partition =
        u32::try_from(partition).map_err(|_| ResponseError::UnknownTopicOrPartition.code())?;
    let engine = &broker.engine;
    let start = engine
        .resolve_offset(topic, partition, OffsetSpec::Earliest)
        .map_err(|e| engine_error_code(&e))? as i64;
    let end = engine
        .resolve_offset(topic, partition, OffsetSpec::Latest)
        .map_err(|e| engine_error_code(&e))? as i64;
    let target = if offset == HIGH_WATERMARK {
        end
    } else {
        offset
    };
    if target < 0 || target > end {
        return Err(ResponseError::OffsetOutOfRange.code());
    }
    if target <= start {
        return Ok(start);
    }
    Err(ResponseError::PolicyViolation.code())
}
