//! Produce (key 0): each partition's record batch is appended exactly as the producer encoded
//! it (the log only rewrites the base offset) and answered after the durable acknowledgement.
//! Handled in two phases so a connection can pipeline: [`start`] gives every batch its place
//! in its partition, in request order, and returns the wait for their acknowledgements; the
//! session starts the next produce request while earlier ones wait for their fsync, so a
//! producer's batches reach each partition in the order sent and share group commits.
//!
//! `timeout_ms` bounds the wait for the acknowledgement, as Kafka bounds its wait for
//! replication: a partition whose batch is not durable by then answers REQUEST_TIMED_OUT
//! (its batch may still be written; an idempotent producer's retry is then answered with the
//! original offset). A timeout ≤ 0 waits for the fsync however long it takes.
//!
//! Idempotent batches (producer id ≥ 0) go through the engine's producer registry: a retried
//! batch is answered with its original offset and no error, as Kafka 2.x+ does; a sequence
//! gap is OUT_OF_ORDER_SEQUENCE_NUMBER; a fenced epoch is INVALID_PRODUCER_EPOCH.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tokio::time::Instant;

use bytes::{Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use omnibus_engine::producers::{PendingProduce, ProducedBatch};
use omnibus_engine::EngineError;
use omnibus_types::ErrorCode;

use super::errors::{engine_error_code, NONE};
use super::{Broker, Outcome};

/// The second phase of a produce request: resolves to the response once every batch in it is
/// durable. Holds no borrow of the connection, so the session can read on meanwhile.
pub(crate) type PendingOutcome = Pin<Box<dyn Future<Output = Outcome> + Send>>;

/// The first phase of a produce request: checks each batch and gives it its place in its
/// partition (in request order, one partition after another), then returns the wait for
/// their acknowledgements. A session that starts its requests one after another and awaits
/// them later keeps every partition's batches in the order they were sent, and lets them
/// share group commits.
pub(crate) async fn start(
    broker: &Broker,
    request: ProduceRequest,
    version: i16,
) -> PendingOutcome {
    let acks = request.acks;
    let deadline = u64::try_from(request.timeout_ms)
        .ok()
        .filter(|ms| *ms > 0)
        .map(|ms| Instant::now() + Duration::from_millis(ms));
    let refusal = if request.transactional_id.is_some() {
        Some(ResponseError::TransactionalIdAuthorizationFailed)
    } else if !matches!(acks, -1..=1) {
        Some(ResponseError::InvalidRequiredAcks)
    } else {
        None
    };
    let mut topics: Vec<TopicName> = Vec::with_capacity(request.topic_data.len());
    // Per topic, per partition answer slot, in request order.
    let mut slots: Vec<Vec<Slot>> = Vec::with_capacity(request.topic_data.len());
    for topic in request.topic_data {
        let name = topic.name.to_string();
        let mut topic_slots = Vec::with_capacity(topic.partition_data.len());
        for partition in topic.partition_data {
            let index = partition.index;
            let slot = match refusal {
                Some(error) => Slot::Ready(failed(index, error.code(), None)),
                None => enqueue(broker, &name, index, partition.records, version).await,
            };
            topic_slots.push(slot);
        }
        topics.push(topic.name);
        slots.push(topic_slots);
    }
    Box::pin(async move {
        let mut response = ProduceResponse::default();
        for (name, topic_slots) in topics.into_iter().zip(slots) {
            let mut topic = TopicProduceResponse::default();
            topic.name = name;
            for slot in topic_slots {
                topic
                    .partition_responses
                    .push(slot.answer(version, deadline).await);
            }
            response.responses.push(topic);
        }
        if acks == 0 {
            Outcome::Silent
        } else {
            Outcome::Respond(response.into())
        }
    })
}

/// One partition's part of the answer.
enum Slot {
    Ready(PartitionProduceResponse),
    Pending {
        partition: i32,
        topic: String,
        pending: PendingProduce,
    },
}

impl Slot {
    async fn answer(self, version: i16, deadline: Option<Instant>) -> PartitionProduceResponse {
        match self {
            Slot::Ready(answer) => answer,
            Slot::Pending {
                partition,
                topic,
                pending,
            } => {
                let durable = match deadline {
                    Some(deadline) => tokio::time::timeout_at(deadline, pending.durable()).await,
                    None => Ok(pending.durable().await),
                };
                match durable {
                    Ok(Ok(produced)) => appended(partition, produced),
                    Ok(Err(error)) => refused(&topic, partition, &error, version),
                    Err(_elapsed) => {
                        tracing::debug!(topic, partition, "produce timed out waiting for fsync");
                        let message = (version >= 8)
                            .then(|| StrBytes::from_static_str("not durable within timeout_ms"));
                        failed(partition, ResponseError::RequestTimedOut.code(), message)
                    }
                }
            }
        }
    }
}

async fn enqueue(
    broker: &Broker,
    topic: &str,
    partition: i32,
    records: Option<Bytes>,
    version: i16,
) -> Slot {
    let Ok(index) = u32::try_from(partition) else {
        let code = ResponseError::UnknownTopicOrPartition.code();
        return Slot::Ready(failed(partition, code, None));
    };
    let Some(records) = records.filter(|r| !r.is_empty()) else {
        return Slot::Ready(failed(
            partition,
            ResponseError::CorruptMessage.code(),
            None,
        ));
    };
    let batch = BytesMut::from(&records[..]);
    match broker
        .producers
        .enqueue(&broker.engine, topic, index, batch)
        .await
    {
        Ok(pending) => Slot::Pending {
            partition,
            topic: topic.to_string(),
            pending,
        },
        Err(error) => Slot::Ready(refused(topic, partition, &error, version)),
    }
}

fn appended(partition: i32, produced: ProducedBatch) -> PartitionProduceResponse {
    let offsets = produced.offsets();
    let mut answer = PartitionProduceResponse::default();
    answer.index = partition;
    answer.error_code = NONE;
    answer.base_offset = offsets.first_offset as i64;
    answer.log_append_time_ms = -1;
    answer.log_start_offset = offsets.log_start_offset as i64;
    answer
}

fn refused(
    topic: &str,
    partition: i32,
    error: &EngineError,
    version: i16,
) -> PartitionProduceResponse {
    let code = producer_error_code(error);
    if code == ResponseError::KafkaStorageError.code() {
        tracing::error!(topic, partition, "produce failed: {error}");
    } else {
        tracing::debug!(topic, partition, "produce refused: {error}");
    }
    let message = (version >= 8).then(|| StrBytes::from_string(error.to_string()));
    failed(partition, code, message)
}

/// A produce refines the general mapping: a batch that fails its CRC or structure checks is
/// CORRUPT_MESSAGE, and a batch over a count limit is MESSAGE_TOO_LARGE.
fn producer_error_code(error: &EngineError) -> i16 {
    match error {
        error if error.code() == ErrorCode::BadRequest => ResponseError::CorruptMessage.code(),
        EngineError::LimitExceeded(_) => ResponseError::MessageTooLarge.code(),
        error => engine_error_code(error),
    }
}

fn failed(partition: i32, error_code: i16, message: Option<StrBytes>) -> PartitionProduceResponse {
    let mut answer = PartitionProduceResponse::default();
    answer.index = partition;
    answer.error_code = error_code;
    answer.base_offset = -1;
    answer.log_append_time_ms = -1;
    answer.log_start_offset = -1;
    answer.error_message = message;
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_produce_refines_bad_batches_and_count_limits_and_keeps_producer_codes() {
        let corrupt = EngineError::BadRequest("crc mismatch".into());
        assert_eq!(producer_error_code(&corrupt), 2);
        let too_many = EngineError::LimitExceeded("too many records".into());
        assert_eq!(producer_error_code(&too_many), 10);
        let out_of_order = EngineError::OutOfOrderSequence {
            expected: 1,
            received: 3,
        };
        assert_eq!(producer_error_code(&out_of_order), 45);
        let fenced = EngineError::ProducerFenced {
            current: 2,
            received: 1,
        };
        assert_eq!(producer_error_code(&fenced), 47);
        assert_eq!(producer_error_code(&EngineError::ShuttingDown), 6);
    }
}
