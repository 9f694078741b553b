//! DeleteRecords (key 21): moves each partition's log start to the requested offset (-1: the
//! high watermark). Readers are refused below it from then on (OFFSET_OUT_OF_RANGE), the new
//! start is checkpointed durably before the answer, and whole segments below it are removed.
//! An offset above the high watermark is OFFSET_OUT_OF_RANGE; one at or below the current
//! start changes nothing and reports the current start.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};

use super::errors::{engine_error_code, NONE};
use super::Broker;

/// "Up to the high watermark".
const HIGH_WATERMARK: i64 = -1;

pub(crate) async fn handle(
    broker: &Broker,
    request: DeleteRecordsRequest,
) -> DeleteRecordsResponse {
    let mut response = DeleteRecordsResponse::default();
    for topic in request.topics {
        let mut answer = DeleteRecordsTopicResult::default();
        for partition in &topic.partitions {
            let mut result = DeleteRecordsPartitionResult::default();
            result.partition_index = partition.partition_index;
            result.low_watermark = -1;
            result.error_code = match delete(
                broker,
                topic.name.as_str(),
                partition.partition_index,
                partition.offset,
            )
            .await
            {
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
async fn delete(broker: &Broker, topic: &str, partition: i32, offset: i64) -> Result<i64, i16> {
    let partition =
        u32::try_from(partition).map_err(|_| ResponseError::UnknownTopicOrPartition.code())?;
    let offset = match offset {
        HIGH_WATERMARK => None,
        offset => Some(u64::try_from(offset).map_err(|_| ResponseError::OffsetOutOfRange.code())?),
    };
    // It fsyncs a checkpoint; the engine does that off the async workers.
    broker
        .engine
        .delete_records(topic, partition, offset)
        .await
        .map(|low_watermark| low_watermark as i64)
        .map_err(|error| engine_error_code(&error))
}
