//! Produce (key 0): each partition's record batch is appended exactly as the producer encoded
//! it (the log only rewrites the base offset) and answered after the durable acknowledgement.
//! Partitions of one request are appended concurrently; requests of one connection are
//! handled one after another, so a producer's batches reach each partition in order.
//!
//! Idempotent batches (producer id ≥ 0) go through the engine's producer registry: a retried
//! batch is answered with its original offset and no error, as Kafka 2.x+ does; a sequence
//! gap is OUT_OF_ORDER_SEQUENCE_NUMBER; a fenced epoch is INVALID_PRODUCER_EPOCH.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use omnibus_engine::producers::{ProducerError, ProducerRegistry};
use omnibus_engine::{Engine, EngineError};
use omnibus_types::ErrorCode;

use super::errors::{engine_error_code, NONE};
use super::{Broker, Outcome};

pub(crate) async fn handle(broker: &Broker, request: ProduceRequest, version: i16) -> Outcome {
    let acks = request.acks;
    let refusal = if request.transactional_id.is_some() {
        Some(ResponseError::TransactionalIdAuthorizationFailed)
    } else if !matches!(acks, -1..=1) {
        Some(ResponseError::InvalidRequiredAcks)
    } else {
        None
    };
    // One task per distinct partition; batches for the same partition (Kafka allows only one
    // per request, but a request may name a partition twice) stay in request order.
    let mut work: BTreeMap<(usize, i32), Vec<Option<Bytes>>> = BTreeMap::new();
    let mut topics: Vec<TopicName> = Vec::new();
    for topic in request.topic_data {
        let index = topics.len();
        topics.push(topic.name);
        for partition in topic.partition_data {
            work.entry((index, partition.index))
                .or_default()
                .push(partition.records);
        }
    }
    let mut tasks = tokio::task::JoinSet::new();
    let mut answers: BTreeMap<(usize, i32), Vec<PartitionProduceResponse>> = BTreeMap::new();
    for ((topic, partition), batches) in work {
        if let Some(error) = refusal {
            let answer = failed(partition, error.code(), None);
            answers.insert((topic, partition), vec![answer; batches.len()]);
            continue;
        }
        let engine = broker.engine.clone();
        let producers = broker.producers.clone();
        let name = topics[topic].to_string();
        tasks.spawn(async move {
            let mut answers = Vec::with_capacity(batches.len());
            for records in batches {
                let answer = append(&engine, &producers, &name, partition, records, version).await;
                answers.push(answer);
            }
            ((topic, partition), answers)
        });
    }
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((key, partition_answers)) => {
                answers.insert(key, partition_answers);
            }
            Err(error) => tracing::error!("a produce task failed: {error}"),
        }
    }
    if acks == 0 {
        return Outcome::Silent;
    }
    let mut response = ProduceResponse::default();
    for (index, name) in topics.into_iter().enumerate() {
        let mut topic = TopicProduceResponse::default();
        topic.name = name;
        topic.partition_responses = answers
            .range((index, i32::MIN)..=(index, i32::MAX))
            .flat_map(|(_, list)| list.iter().cloned())
            .collect();
        response.responses.push(topic);
    }
    Outcome::Respond(response.into())
}

async fn append(
    engine: &Arc<Engine>,
    producers: &ProducerRegistry,
    topic: &str,
    partition: i32,
    records: Option<Bytes>,
    version: i16,
) -> PartitionProduceResponse {
    let Ok(index) = u32::try_from(partition) else {
        return failed(
            partition,
            ResponseError::UnknownTopicOrPartition.code(),
            None,
        );
    };
    let Some(records) = records.filter(|r| !r.is_empty()) else {
        return failed(partition, ResponseError::CorruptMessage.code(), None);
    };
    let batch = BytesMut::from(&records[..]);
    match producers.append(engine, topic, index, batch).await {
        Ok(produced) => {
            let offsets = produced.offsets();
            let mut answer = PartitionProduceResponse::default();
            answer.index = partition;
            answer.error_code = NONE;
            answer.base_offset = offsets.first_offset as i64;
            answer.log_append_time_ms = -1;
            answer.log_start_offset = offsets.log_start_offset as i64;
            answer
        }
        Err(error) => {
            let code = producer_error_code(&error);
            if code == ResponseError::KafkaStorageError.code() {
                tracing::error!(topic, partition, "produce failed: {error}");
            } else {
                tracing::debug!(topic, partition, "produce refused: {error}");
            }
            let message = (version >= 8).then(|| StrBytes::from_string(error.to_string()));
            failed(partition, code, message)
        }
    }
}

fn producer_error_code(error: &ProducerError) -> i16 {
    match error {
        ProducerError::OutOfOrderSequence { .. } => ResponseError::OutOfOrderSequenceNumber.code(),
        ProducerError::InvalidProducerEpoch { .. } => ResponseError::InvalidProducerEpoch.code(),
        // A batch that fails its CRC or structure checks.
        ProducerError::Engine(error) if error.code() == ErrorCode::BadRequest => {
            ResponseError::CorruptMessage.code()
        }
        ProducerError::Engine(EngineError::LimitExceeded(_)) => {
            ResponseError::MessageTooLarge.code()
        }
        ProducerError::Engine(error) => engine_error_code(error),
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
