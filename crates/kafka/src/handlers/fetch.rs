//! Fetch (key 1): stored batches served as they are on disk, whole — the first one may start
//! before the fetch offset (clients skip the records they did not ask for). Long-polls up to
//! `max_wait_ms` until `min_bytes` are available — or until the limits, not the data, keep the
//! answer small (more records wait than fit, so waiting cannot add to it); bounded by
//! `max_bytes` overall and
//! `partition_max_bytes` per partition, except that the first batch of the first non-empty
//! partition is always returned, so a batch larger than the limits cannot stall a consumer.
//!
//! Every fetch is a full, sessionless fetch (session id 0): incremental fetch sessions
//! (KIP-227) are optional for clients. With no transactions, the last stable offset is the
//! high watermark and there are never aborted transactions.

use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{FetchRequest, FetchResponse};
use omnibus_engine::Engine;

use super::errors::{engine_error_code, NONE};
use super::Broker;

/// One partition a fetch asks for.
struct Wanted {
    topic: usize,
    partition: i32,
    offset: i64,
    max_bytes: usize,
}

pub(crate) async fn handle(broker: &Broker, request: FetchRequest, _version: i16) -> FetchResponse {
    let wait = Duration::from_millis(request.max_wait_ms.max(0) as u64);
    let deadline = Instant::now() + wait;
    let min_bytes = request.min_bytes.max(0) as usize;
    let max_bytes = positive(request.max_bytes);
    let mut names = Vec::with_capacity(request.topics.len());
    let mut wanted = Vec::new();
    for topic in request.topics {
        let index = names.len();
        for partition in topic.partitions {
            wanted.push(Wanted {
                topic: index,
                partition: partition.partition,
                offset: partition.fetch_offset,
                max_bytes: positive(partition.partition_max_bytes),
            });
        }
        names.push(topic.topic);
    }
    let mut previous: Option<Vec<i64>> = None;
    loop {
        let pass = read_all(&broker.engine, &names, &wanted, max_bytes).await;
        let now = Instant::now();
        let watermarks: Vec<i64> = pass.partitions.iter().map(|p| p.high_watermark).collect();
        // A wake-up with nothing new (a partition that failed wakes its waiters) ends the wait
        // rather than spinning until the deadline.
        let stalled = previous.as_ref() == Some(&watermarks);
        let enough = pass.bytes >= min_bytes.max(1) || pass.limited;
        if enough || pass.errors || stalled || now >= deadline {
            return respond(names, &wanted, pass.partitions);
        }
        previous = Some(watermarks);
        // Wait for any partition to grow past what this pass saw.
        let positions: Vec<(String, u32, u64)> = wanted
            .iter()
            .zip(&pass.partitions)
            .filter_map(|(want, data)| {
                let partition = u32::try_from(want.partition).ok()?;
                Some((
                    names[want.topic].to_string(),
                    partition,
                    data.high_watermark.max(0) as u64,
                ))
            })
            .collect();
        let remaining = deadline.saturating_duration_since(now);
        broker
            .engine
            .wait_for_records(&positions, remaining.as_millis() as u64)
            .await;
    }
}

fn positive(value: i32) -> usize {
    if value <= 0 {
        i32::MAX as usize
    } else {
        value as usize
    }
}

struct Pass {
    partitions: Vec<PartitionData>,
    bytes: usize,
    errors: bool,
    /// Some partition has records the limits left out of this answer.
    limited: bool,
}

async fn read_all(
    engine: &Engine,
    names: &[kafka_protocol::messages::TopicName],
    wanted: &[Wanted],
    max_bytes: usize,
) -> Pass {
    let mut pass = Pass {
        partitions: Vec::with_capacity(wanted.len()),
        bytes: 0,
        errors: false,
        limited: false,
    };
    for want in wanted {
        let budget = want.max_bytes.min(max_bytes.saturating_sub(pass.bytes));
        let (data, limited) =
            read_partition(engine, names[want.topic].as_str(), want, budget, pass.bytes).await;
        pass.limited |= limited;
        pass.errors |= data.error_code != NONE;
        pass.bytes += data.records.as_ref().map_or(0, Bytes::len);
        pass.partitions.push(data);
    }
    pass
}

/// One partition's answer, and whether the limits left some of its records out.
async fn read_partition(
    engine: &Engine,
    topic: &str,
    want: &Wanted,
    budget: usize,
    bytes_so_far: usize,
) -> (PartitionData, bool) {
    let mut data = PartitionData::default();
    data.partition_index = want.partition;
    data.records = Some(Bytes::new());
    let (Ok(partition), Ok(offset)) = (u32::try_from(want.partition), u64::try_from(want.offset))
    else {
        data.error_code = if want.partition < 0 {
            ResponseError::UnknownTopicOrPartition.code()
        } else {
            ResponseError::OffsetOutOfRange.code()
        };
        return (fill_bounds(engine, topic, want.partition, data), false);
    };
    if budget == 0 && bytes_so_far > 0 {
        let data = fill_bounds(engine, topic, want.partition, data);
        let waiting = want.offset < data.high_watermark;
        return (data, waiting);
    }
    match engine
        .fetch_raw(topic, partition, offset, budget.max(1), 0)
        .await
    {
        Ok(raw) => {
            data.high_watermark = raw.high_watermark as i64;
            data.last_stable_offset = raw.high_watermark as i64;
            data.log_start_offset = raw.log_start_offset as i64;
            // Past the first non-empty partition, a batch that does not fit waits for the
            // next fetch rather than overshooting the response limit.
            let limited = if bytes_so_far == 0 || raw.batches.len() <= budget {
                data.records = Some(raw.batches);
                raw.next_offset < raw.high_watermark
            } else {
                true
            };
            (data, limited)
        }
        Err(error) => {
            data.error_code = engine_error_code(&error);
            (fill_bounds(engine, topic, want.partition, data), false)
        }
    }
}

/// High watermark and log start for an answer without records, when the partition exists.
fn fill_bounds(
    engine: &Engine,
    topic: &str,
    partition: i32,
    mut data: PartitionData,
) -> PartitionData {
    data.high_watermark = -1;
    data.last_stable_offset = -1;
    data.log_start_offset = -1;
    if let Ok(partition) = u32::try_from(partition) {
        if let Ok((start, end)) = engine.partition_bounds(topic, partition) {
            data.log_start_offset = start as i64;
            data.high_watermark = end as i64;
            data.last_stable_offset = end as i64;
        }
    }
    data
}

fn respond(
    names: Vec<kafka_protocol::messages::TopicName>,
    wanted: &[Wanted],
    partitions: Vec<PartitionData>,
) -> FetchResponse {
    let mut topics: Vec<FetchableTopicResponse> = names
        .into_iter()
        .map(|name| {
            let mut topic = FetchableTopicResponse::default();
            topic.topic = name;
            topic
        })
        .collect();
    for (want, data) in wanted.iter().zip(partitions) {
        topics[want.topic].partitions.push(data);
    }
    let mut response = FetchResponse::default();
    response.error_code = NONE;
    response.session_id = 0;
    response.responses = topics;
    response
}
