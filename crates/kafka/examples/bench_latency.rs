//! End-to-end latency through the Kafka front door with librdkafka: a producer sends at a
//! fixed rate (`acks=all`, so each message is fsynced before it is acknowledged and before a
//! consumer can see it) while a consumer reads the partition; each message carries its send
//! time, and the consumer records receive − send. Prints p50 / p99 / p99.9 / max. Messages sent
//! in the first second are not counted: that is the clients connecting, not the broker.
//!
//! `cargo run --release -p omnibus-kafka --example bench_latency -- 127.0.0.1:9092 5000 10`
//! (bootstrap, messages per second, seconds). 100-byte messages, one partition.

use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

const WARM_UP_NANOS: u64 = 1_000_000_000;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let bootstrap = args.next().unwrap_or_else(|| "127.0.0.1:9092".into());
    let rate: u64 = args.next().map_or(Ok(5_000), |a| a.parse())?;
    let seconds: u64 = args.next().map_or(Ok(10), |a| a.parse())?;
    let topic = format!("latency-{}", std::process::id());
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .create()?;
    admin
        .create_topics(
            &[NewTopic::new(&topic, 1, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        )
        .await?
        .into_iter()
        .collect::<Result<Vec<_>, _>>()
        .map_err(|(_, e)| e)?;

    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("group.id", format!("{topic}-reader"))
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "100")
        .set("fetch.min.bytes", "1")
        .create()?;
    let mut assignment = TopicPartitionList::new();
    assignment.add_partition_offset(&topic, 0, Offset::Beginning)?;
    consumer.assign(&assignment)?;

    let origin = Instant::now();
    let total = rate * seconds;
    let producer_topic = topic.clone();
    let producer_bootstrap = bootstrap.clone();
    let sender = std::thread::spawn(move || -> Result<(), String> {
        let producer: BaseProducer = ClientConfig::new()
            .set("bootstrap.servers", &producer_bootstrap)
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set("linger.ms", "0")
            .create()
            .map_err(|e| e.to_string())?;
        let interval = Duration::from_nanos(1_000_000_000 / rate.max(1));
        for i in 0..total {
            let due = interval * i as u32;
            // Sleep until due: librdkafka's poll takes whole milliseconds, so polling with a
            // sub-millisecond timeout would spin and take a core from the broker.
            let now = origin.elapsed();
            if now < due {
                std::thread::sleep(due - now);
            }
            let mut payload = vec![b'x'; 100];
            let sent = origin.elapsed().as_nanos() as u64;
            payload[..8].copy_from_slice(&sent.to_be_bytes());
            producer
                .send(BaseRecord::<(), _>::to(&producer_topic).payload(&payload))
                .map_err(|(e, _)| e.to_string())?;
            producer.poll(Duration::ZERO);
        }
        producer
            .flush(Duration::from_secs(30))
            .map_err(|e| e.to_string())
    });

    let mut latencies = Vec::with_capacity(total as usize);
    let mut received = 0u64;
    let deadline = Instant::now() + Duration::from_secs(seconds + 30);
    while received < total && Instant::now() < deadline {
        if let Some(message) = consumer.poll(Duration::from_millis(100)) {
            let message = message?;
            let now = origin.elapsed().as_nanos() as u64;
            if let Some(payload) = message.payload() {
                let sent = u64::from_be_bytes(payload[..8].try_into()?);
                received += 1;
                if sent >= WARM_UP_NANOS {
                    latencies.push(now.saturating_sub(sent));
                }
            }
        }
    }
    sender.join().map_err(|_| "producer thread panicked")??;
    latencies.sort_unstable();
    let at = |q: f64| {
        latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)] as f64 / 1e6
    };
    println!(
        "end-to-end latency at {rate} msg/s for {seconds} s ({} messages, acks=all, 100 B): p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms",
        latencies.len(),
        at(0.50),
        at(0.99),
        at(0.999),
        at(1.0)
    );
    Ok(())
}
