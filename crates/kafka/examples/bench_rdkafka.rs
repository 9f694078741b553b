//! Produce and consume throughput through the Kafka front door with librdkafka (the `rdkafka`
//! crate), against a running broker:
//! `cargo run --release -p omnibus-kafka --example bench_rdkafka -- 127.0.0.1:9092 1000000 100 8`
//! (bootstrap, messages, message bytes, partitions). Produces with `acks=all` and idempotence,
//! then consumes everything back from partition assignments (no group).

use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

/// Extra client settings from the environment, as `key=value,key=value`, for experiments
/// (`BENCH_PRODUCER_CONFIG`, `BENCH_CONSUMER_CONFIG`); each run prints what it used.
trait SetExtra {
    fn set_extra(&mut self, extra: Option<String>) -> &mut Self;
}

impl SetExtra for ClientConfig {
    fn set_extra(&mut self, extra: Option<String>) -> &mut Self {
        for pair in extra.iter().flat_map(|e| e.split(',')) {
            if let Some((key, value)) = pair.split_once('=') {
                eprintln!("extra client setting {key}={value}");
                self.set(key.trim(), value.trim());
            }
        }
        self
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let bootstrap = args.next().unwrap_or_else(|| "127.0.0.1:9092".into());
    let count: usize = args.next().map_or(Ok(1_000_000), |a| a.parse())?;
    let size: usize = args.next().map_or(Ok(100), |a| a.parse())?;
    let partitions: i32 = args.next().map_or(Ok(1), |a| a.parse())?;
    let topic = format!("bench-{size}-{partitions}-{}", std::process::id());

    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .create()?;
    let created = admin
        .create_topics(
            &[NewTopic::new(
                &topic,
                partitions,
                TopicReplication::Fixed(1),
            )],
            &AdminOptions::new(),
        )
        .await?;
    created
        .into_iter()
        .collect::<Result<Vec<_>, _>>()
        .map_err(|(_, e)| e)?;

    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .set("batch.num.messages", "100000")
        .set("batch.size", "1000000")
        .set("queue.buffering.max.messages", "2000000")
        .set_extra(std::env::var("BENCH_PRODUCER_CONFIG").ok())
        .create()?;
    let payload = vec![b'x'; size];
    let started = Instant::now();
    for i in 0..count {
        let key = (i % 1024).to_string();
        loop {
            match producer.send(BaseRecord::to(&topic).key(&key).payload(&payload)) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    producer.poll(Duration::from_millis(1));
                }
                Err((error, _)) => return Err(error.into()),
            }
        }
    }
    producer.flush(Duration::from_secs(120))?;
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "produce {count} x {size} B to {partitions} partition(s), acks=all: {:.0} msg/s, {:.1} MB/s",
        count as f64 / elapsed,
        (count * size) as f64 / elapsed / 1e6
    );

    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("group.id", format!("{topic}-reader"))
        .set("enable.auto.commit", "false")
        // librdkafka's default 1 MiB per partition: a larger one fills the local queue past
        // `queued.min.messages` in one fetch, and librdkafka then pauses fetching for
        // `fetch.queue.backoff.ms` (1 s), which halves the measured rate.
        .set("fetch.max.bytes", "52428800")
        .set_extra(std::env::var("BENCH_CONSUMER_CONFIG").ok())
        .create()?;
    let mut assignment = TopicPartitionList::new();
    for partition in 0..partitions {
        assignment.add_partition_offset(&topic, partition, Offset::Beginning)?;
    }
    // Learn the partitions' leader before the clock starts: assigned without it, librdkafka
    // retries its offset lookup on a 500 ms timer, which would be counted as consume time.
    consumer.fetch_metadata(Some(&topic), Duration::from_secs(10))?;
    let started = Instant::now();
    consumer.assign(&assignment)?;
    let mut received = 0usize;
    let mut first = None;
    while received < count {
        match consumer.poll(Duration::from_secs(5)) {
            Some(Ok(_)) => {
                if first.is_none() {
                    first = Some(started.elapsed());
                }
                received += 1
            }
            Some(Err(error)) => return Err(error.into()),
            None => break,
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "consume {received}: {:.0} msg/s, {:.1} MB/s (first message after {:?}, {:.0} msg/s after it)",
        received as f64 / elapsed,
        (received * size) as f64 / elapsed / 1e6,
        first.unwrap_or_default(),
        received as f64 / (elapsed - first.unwrap_or_default().as_secs_f64())
    );
    Ok(())
}
