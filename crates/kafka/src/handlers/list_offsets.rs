//! ListOffsets (key 2): earliest (-2) is the log start, latest (-1) the high watermark (which is
//! also the last stable offset: there are no transactions), and a timestamp finds the first
//! record at or after it — with that record's own timestamp, or offset -1 when every record is
//! older, as Kafka answers. Max timestamp (-3, v7+) is the first record carrying the largest
//! timestamp, with that timestamp (-1, -1 for an empty partition).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use omnibus_engine::{EngineError, FetchRequest, OffsetSpec};

use super::errors::{engine_error_code, NONE};
use super::Broker;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
/// The record with the largest timestamp (v7+, KIP-734).
const MAX_TIMESTAMP: i64 = -3;

pub(crate) async fn handle(
    broker: &Broker,
    request: ListOffsetsRequest,
    version: i16,
) -> ListOffsetsResponse {
    let mut response = ListOffsetsResponse::default();
    for topic in request.topics {
        let mut answer = ListOffsetsTopicResponse::default();
        for partition in &topic.partitions {
            let mut entry = ListOffsetsPartitionResponse::default();
            entry.partition_index = partition.partition_index;
            match lookup(
                broker,
                topic.name.as_str(),
                partition.partition_index,
                partition.timestamp,
            )
            .await
            {
                Ok((offset, timestamp)) => {
                    entry.error_code = NONE;
                    entry.offset = offset;
                    entry.timestamp = timestamp;
                    if version >= 4 {
                        entry.leader_epoch = 0;
                    }
                }
                Err(code) => {
                    entry.error_code = code;
                    entry.offset = -1;
                    entry.timestamp = -1;
                }
            }
            answer.partitions.push(entry);
        }
        answer.name = topic.name;
        response.topics.push(answer);
    }
    response
}

/// `(offset, timestamp)` for one partition, or a Kafka error code.
async fn lookup(
    broker: &Broker,
    topic: &str,
    partition: i32,
    timestamp: i64,
) -> Result<(i64, i64), i16> {
    let partition =
        u32::try_from(partition).map_err(|_| ResponseError::UnknownTopicOrPartition.code())?;
    let engine = &broker.engine;
    let code = |error: EngineError| engine_error_code(&error);
    match timestamp {
        LATEST => Ok((
            engine
                .resolve_offset(topic, partition, OffsetSpec::Latest)
                .await
                .map_err(code)? as i64,
            -1,
        )),
        EARLIEST => Ok((
            engine
                .resolve_offset(topic, partition, OffsetSpec::Earliest)
                .await
                .map_err(code)? as i64,
            -1,
        )),
        target if target >= 0 => {
            let offset = engine
                .resolve_offset(topic, partition, OffsetSpec::Timestamp(target))
                .await
                .map_err(code)?;
            let high_watermark = engine
                .resolve_offset(topic, partition, OffsetSpec::Latest)
                .await
                .map_err(code)?;
            if offset >= high_watermark {
                return Ok((-1, -1));
            }
            let found = engine
                .fetch(FetchRequest {
                    stream: topic.to_string(),
                    partition,
                    offset,
                    max_records: 1,
                    max_bytes: 1,
                    wait_ms: 0,
                })
                .await
                .map_err(code)?;
            let timestamp = found.records.first().map_or(-1, |r| r.timestamp_ms);
            Ok((offset as i64, timestamp))
        }
        MAX_TIMESTAMP => Ok(engine
            .max_timestamp_offset(topic, partition)
            .await
            .map_err(code)?
            .map_or((-1, -1), |(offset, timestamp)| (offset as i64, timestamp))),
        // -4/-5 (tiered storage) need versions we do not advertise.
        _ => Err(ResponseError::InvalidRequest.code()),
    }
}
