//! The kafka driver (librdkafka) against Omnibus's Kafka door, started in this process on
//! 127.0.0.1 port 0; the driver reaches it over TCP as it would any Kafka-protocol broker.

mod support;

use std::time::Duration;

use indicatif::ProgressBar;
use omnibus_bench::drivers::{self, Context};
use omnibus_bench::load::Measurement;
use omnibus_bench::settings::{Settings, System, Workload};
use omnibus_bench::BenchError;
use omnibus_kafka::KafkaConfig;
use support::InProcessDoor;

async fn start() -> InProcessDoor {
    InProcessDoor::start(|listener, engine, shutdown| {
        omnibus_kafka::serve(listener, engine, KafkaConfig::default(), shutdown)
    })
    .await
}

fn settings(broker: &InProcessDoor, workload: Workload) -> Settings {
    let mut settings = Settings::new(System::Kafka, workload);
    settings.address = Some(broker.address.clone());
    settings.duration = 10.0;
    settings
}

async fn run(settings: Settings) -> Result<Measurement, BenchError> {
    let context = Context::new(settings, ProgressBar::hidden());
    tokio::time::timeout(Duration::from_secs(30), drivers::run(&context))
        .await
        .expect("the run stops by itself")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_consume_and_latency_through_the_kafka_door() {
    let broker = start().await;

    let mut publish = settings(&broker, Workload::Publish);
    publish.messages = 400;
    publish.producers = 2;
    let measurement = run(publish).await.expect("publish succeeds");
    assert_eq!(measurement.operations, 400, "{measurement:?}");
    assert_eq!(
        measurement.latency.map(|latencies| latencies.len()),
        Some(400)
    );

    let mut consume = settings(&broker, Workload::Consume);
    consume.messages = 1_500;
    consume.producers = 2;
    let measurement = run(consume).await.expect("consume succeeds");
    assert_eq!(measurement.operations, 1_500, "{measurement:?}");

    let mut latency = settings(&broker, Workload::Latency);
    latency.messages = 100;
    latency.rate = 200;
    let measurement = run(latency).await.expect("latency succeeds");
    assert_eq!(measurement.operations, 100, "{measurement:?}");
    assert_eq!(measurement.note, None);

    let outcome = run(settings(&broker, Workload::Jobs)).await;
    assert!(
        matches!(outcome, Err(BenchError::NotSupported(_))),
        "{outcome:?}"
    );
}
