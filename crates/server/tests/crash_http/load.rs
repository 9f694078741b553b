//! The producers: concurrent HTTP publishers that record what was acknowledged.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio::task::JoinSet;

use super::*;

pub struct Producer {
    pub client: reqwest::Client,
    pub base: String,
    pub producer: usize,
    pub cycle: usize,
    pub seed: u64,
    pub stop: Arc<AtomicBool>,
    pub deadline: Instant,
}

/// A record as sent: its value and, when the publish named one, its partition.
pub struct Sent {
    pub value: String,
    pub partition: Option<u32>,
}

pub struct Ack {
    pub partition: u32,
    pub offset: u64,
    pub value: String,
}

#[derive(Default)]
pub struct ProducerReport {
    pub producer: usize,
    pub sent: Vec<Sent>,
    pub acked: Vec<Ack>,
    pub requests: usize,
    pub requests_acked: usize,
    /// Answers a running broker must not give (non-200 statuses, malformed 200s).
    pub unexpected: Vec<String>,
}

/// Publishes batches one request at a time until told to stop or until a request fails
/// (after a failure the server is gone, or going; stopping there also keeps each producer's
/// records strictly ordered, which check 4 relies on).
pub async fn produce(task: Producer) -> ProducerReport {
    let mut rng = StdRng::seed_from_u64(task.seed);
    let mut report = ProducerReport {
        producer: task.producer,
        ..ProducerReport::default()
    };
    let url = format!("{}/v1/streams/{STREAM}/records", task.base);
    let mut seq = 0usize;
    while !task.stop.load(Ordering::SeqCst) && Instant::now() < task.deadline {
        let count = rng.random_range(1..=BATCH_RECORDS_MAX);
        let shape = rng.random_range(0..4u32);
        let batch_partition = rng.random_range(0..PARTITIONS);
        let mut records = Vec::with_capacity(count);
        let first = report.sent.len();
        for _ in 0..count {
            let padding_char = char::from(b'a' + (seq % 26) as u8);
            let padding = padding_char
                .to_string()
                .repeat(rng.random_range(0..=PADDING_BYTES_MAX));
            let value = format!("p{}-c{}-n{seq}|{padding}", task.producer, task.cycle);
            seq += 1;
            let (record, partition) = match shape {
                // The whole batch to one partition (the common case), twice as likely.
                0 | 1 => (
                    json!({"value": value, "partition": batch_partition}),
                    Some(batch_partition),
                ),
                // Each record to its own partition.
                2 => {
                    let partition = rng.random_range(0..PARTITIONS);
                    (
                        json!({"value": value, "partition": partition}),
                        Some(partition),
                    )
                }
                // Keyed: the broker picks the partition.
                _ => {
                    let key = format!("key-{}", rng.random_range(0..64u32));
                    (json!({"key": key, "value": value}), None)
                }
            };
            records.push(record);
            report.sent.push(Sent { value, partition });
        }
        report.requests += 1;
        let response = match task
            .client
            .post(&url)
            .json(&json!({ "records": records }))
            .send()
            .await
        {
            Ok(response) => response,
            Err(_) => break, // not acknowledged: the server is gone
        };
        let status = response.status();
        let Ok(text) = response.text().await else {
            break; // the acknowledgement never fully arrived: not acknowledged
        };
        if status != reqwest::StatusCode::OK {
            report.unexpected.push(format!(
                "producer {}: status {status}: {text:.300}",
                task.producer
            ));
            break;
        }
        let positions = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|body| body["records"].as_array().cloned())
            .unwrap_or_default();
        if positions.len() != count {
            report.unexpected.push(format!(
                "producer {}: 200 for {count} records but {} positions: {text:.300}",
                task.producer,
                positions.len()
            ));
            break;
        }
        let mut acks = Vec::with_capacity(count);
        for (index, position) in positions.iter().enumerate() {
            match (position["partition"].as_u64(), position["offset"].as_u64()) {
                (Some(partition), Some(offset)) => acks.push(Ack {
                    partition: u32::try_from(partition).unwrap_or(u32::MAX),
                    offset,
                    value: report.sent[first + index].value.clone(),
                }),
                _ => break,
            }
        }
        if acks.len() != count {
            report.unexpected.push(format!(
                "producer {}: malformed positions in a 200: {text:.300}",
                task.producer
            ));
            break;
        }
        report.acked.extend(acks);
        report.requests_acked += 1;
    }
    report
}

pub fn producer_seed(seed: u64, cycle: usize, producer: usize) -> u64 {
    seed ^ (cycle as u64)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add((producer as u64 + 1).wrapping_mul(0xBF58_476D_1CE4_E5B9))
}

pub async fn join_producers(
    producers: &mut JoinSet<ProducerReport>,
) -> Result<Vec<ProducerReport>, String> {
    let all = async {
        let mut reports = Vec::new();
        while let Some(joined) = producers.join_next().await {
            match joined {
                Ok(report) => reports.push(report),
                Err(error) => return Err(format!("a producer task failed: {error}")),
            }
        }
        reports.sort_by_key(|report| report.producer);
        Ok(reports)
    };
    match tokio::time::timeout(PRODUCER_STOP_TIMEOUT, all).await {
        Ok(result) => result,
        Err(_) => {
            producers.abort_all();
            Err(format!(
                "the producers did not stop within {PRODUCER_STOP_TIMEOUT:?} of the server stop"
            ))
        }
    }
}
