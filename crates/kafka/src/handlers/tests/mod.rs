//! Handler tests against a real engine in a temporary folder: every advertised version gets
//! an encodable answer, and the data path (produce, fetch, offsets, idempotence) behaves as
//! Kafka clients expect.

mod configs;
mod groups;
mod produce_fetch;

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseKind};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use omnibus_engine::groups::coordinator::CoordinatorLimits;
use omnibus_engine::{Engine, EngineConfig, StreamSpec};
use omnibus_storage::io::{FaultPlan, FaultyIo, FileIo};

use super::{handle, Broker, Outcome, Peer};
use crate::codec::samples::sample;
use crate::codec::versions::SUPPORTED;
use crate::codec::{Request, Response};
use crate::config::KafkaConfig;

pub(super) struct Fixture {
    pub broker: Broker,
    _dir: tempfile::TempDir,
}

pub(super) async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(test_config(dir.path())).await.unwrap();
    fixture_on(engine, dir)
}

/// A fixture whose disk can be told to fail or stall (`FaultPlan::hold_syncs`).
pub(super) async fn fixture_with_faults() -> (Fixture, Arc<FaultPlan>) {
    let dir = tempfile::tempdir().unwrap();
    let plan = FaultPlan::new();
    let io = Arc::new(FaultyIo::new(Arc::new(FileIo), plan.clone()));
    let engine = Engine::open_with_io(test_config(dir.path()), io)
        .await
        .unwrap();
    (fixture_on(engine, dir), plan)
}

/// An engine config whose group coordinator works in milliseconds.
fn test_config(dir: &std::path::Path) -> EngineConfig {
    let mut config = EngineConfig::new(dir);
    config.coordinator = CoordinatorLimits {
        session_timeout_ms_min: 10,
        initial_rebalance_delay_ms: 0,
        tick_ms: 10,
        ..CoordinatorLimits::default()
    };
    config
}

fn fixture_on(engine: Arc<Engine>, dir: tempfile::TempDir) -> Fixture {
    let broker = Broker {
        coordinator: engine.coordinator().clone(),
        producers: engine.producers().clone(),
        engine,
        config: KafkaConfig::default(),
        host: "127.0.0.1".into(),
        port: 9092,
    };
    Fixture { broker, _dir: dir }
}

impl Fixture {
    pub fn engine(&self) -> &Arc<Engine> {
        &self.broker.engine
    }

    pub async fn create(&self, name: &str, partitions: u32) {
        self.engine()
            .create_stream(StreamSpec {
                name: name.into(),
                partitions: Some(partitions),
                ..StreamSpec::default()
            })
            .await
            .unwrap();
    }

    /// Handles a request and returns the outcome, checking a response encodes at `version`.
    pub async fn call(
        &self,
        api_key: ApiKey,
        body: impl Into<RequestKind>,
        version: i16,
    ) -> Outcome {
        let body = body.into();
        let mut header = RequestHeader::default();
        header.request_api_key = api_key as i16;
        header.request_api_version = version;
        header.correlation_id = 11;
        let request = Request {
            api_key,
            version,
            header,
            body,
        };
        let peer = Peer {
            client_host: "/127.0.0.1".into(),
        };
        let outcome = handle(&self.broker, &peer, request).await;
        if let Outcome::Respond(body) = &outcome {
            let response = Response {
                api_key,
                version,
                correlation_id: 11,
                body: body.clone(),
            };
            response
                .encode(&mut BytesMut::new())
                .unwrap_or_else(|e| panic!("{api_key:?} v{version} response: {e}"));
        }
        outcome
    }

    /// As [`Fixture::call`], for a request that must be answered.
    pub async fn respond(
        &self,
        api_key: ApiKey,
        body: impl Into<RequestKind>,
        version: i16,
    ) -> ResponseKind {
        match self.call(api_key, body, version).await {
            Outcome::Respond(body) => body,
            other => panic!("no response: {other:?}"),
        }
    }
}

/// One v2 record batch of `values`, as a producer would encode it.
pub(super) fn batch(
    values: &[&str],
    compression: Compression,
    producer: Option<(i64, i16, i32)>,
) -> Bytes {
    let (producer_id, producer_epoch, first_sequence) = producer.unwrap_or((-1, -1, -1));
    let records: Vec<Record> = values
        .iter()
        .enumerate()
        .map(|(index, value)| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id,
            producer_epoch,
            timestamp_type: TimestampType::Creation,
            offset: index as i64,
            // The encoder starts a new batch whenever `offset - sequence` changes, so a
            // non-idempotent batch (base sequence -1) numbers its records from -1.
            sequence: if first_sequence < 0 {
                index as i32 - 1
            } else {
                first_sequence + index as i32
            },
            timestamp: 1_700_000_000_000 + index as i64,
            key: Some(Bytes::from(format!("key-{index}"))),
            value: Some(Bytes::copy_from_slice(value.as_bytes())),
            headers: IndexMap::new(),
        })
        .collect();
    let mut buffer = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buffer,
        records.iter(),
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .unwrap();
    buffer.freeze()
}

#[tokio::test]
async fn every_advertised_version_of_every_api_is_answered_with_an_encodable_response() {
    let fixture = fixture().await;
    fixture.create("orders", 3).await;
    for entry in SUPPORTED {
        for version in entry.min..=entry.max {
            let body = sample(entry.key, version);
            let outcome = tokio::time::timeout(
                std::time::Duration::from_secs(10),
                fixture.call(entry.key, body, version),
            )
            .await
            .unwrap_or_else(|_| panic!("{:?} v{version} did not answer", entry.key));
            assert!(
                matches!(outcome, Outcome::Respond(_)),
                "{:?} v{version}: {outcome:?}",
                entry.key
            );
        }
    }
}
