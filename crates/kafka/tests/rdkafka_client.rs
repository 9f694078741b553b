//! The Rust Kafka client (`rdkafka`, the bundled librdkafka) against an engine and the Kafka
//! front door started in-process on an ephemeral port: admin topic creation, idempotent
//! `acks=all` produce, group consumption with a commit, and a second consumer of the group
//! resuming after that commit.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use omnibus_engine::{Engine, EngineConfig};
use omnibus_kafka::KafkaConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio::sync::oneshot;

const TOPIC: &str = "rust-events";
const PARTITIONS: i32 = 3;
const KEYS: usize = 7;

struct Broker {
    bootstrap: String,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    engine: Arc<Engine>,
    _dir: tempfile::TempDir,
}

async fn start() -> Broker {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(EngineConfig::new(dir.path())).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let bootstrap = listener.local_addr().unwrap().to_string();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(omnibus_kafka::serve(
        listener,
        engine.clone(),
        KafkaConfig::default(),
        async move {
            let _ = stopped.await;
        },
    ));
    Broker {
        bootstrap,
        stop: Some(stop),
        task,
        engine,
        _dir: dir,
    }
}

impl Broker {
    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(30), &mut self.task)
            .await
            .expect("the listener drains")
            .unwrap()
            .unwrap();
        self.engine.shutdown().await.unwrap();
    }

    fn client(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.bootstrap);
        config
    }
}

fn consumer(broker: &Broker, group: &str) -> StreamConsumer {
    broker
        .client()
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("session.timeout.ms", "10000")
        .create()
        .unwrap()
}

/// Receives until `count` messages arrived (or `wait` passes): (key, value, partition, offset).
async fn receive(
    consumer: &StreamConsumer,
    count: usize,
    wait: Duration,
) -> Vec<(String, String, i32, i64)> {
    let mut received = Vec::new();
    let deadline = tokio::time::Instant::now() + wait;
    while received.len() < count {
        let message = match tokio::time::timeout_at(deadline, consumer.recv()).await {
            Ok(message) => message.expect("no consumer error"),
            Err(_) => break,
        };
        let text = |bytes: Option<&[u8]>| String::from_utf8(bytes.unwrap().to_vec()).unwrap();
        received.push((
            text(message.key()),
            text(message.payload()),
            message.partition(),
            message.offset(),
        ));
    }
    received
}

async fn produce(broker: &Broker, range: std::ops::Range<usize>) -> Vec<(i32, i64)> {
    produce_paced(broker, range, usize::MAX, None).await
}

/// [`produce`], pausing 5 ms after every `burst` messages so the stream lasts a while.
async fn produce_paced(
    broker: &Broker,
    range: std::ops::Range<usize>,
    burst: usize,
    halfway: Option<&tokio::sync::Notify>,
) -> Vec<(i32, i64)> {
    let producer: FutureProducer = broker
        .client()
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "2")
        .create()
        .unwrap();
    let mut deliveries = Vec::new();
    let middle = range.start + range.len() / 2;
    for i in range {
        if i == middle {
            if let Some(go_on) = halfway {
                go_on.notified().await;
            }
        }
        let key = format!("key-{}", i % KEYS);
        let value = format!("{i}");
        let record = FutureRecord::to(TOPIC).key(&key).payload(&value);
        deliveries.push(producer.send_result(record).expect("queued"));
        if i % burst == burst - 1 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let mut positions = Vec::new();
    for delivery in deliveries {
        let delivered = delivery.await.unwrap().expect("delivered");
        positions.push((delivered.partition, delivered.offset));
    }
    positions
}

/// Creates `TOPIC` through the admin API; returns the admin client.
async fn create_topic(broker: &Broker) -> AdminClient<DefaultClientContext> {
    let admin: AdminClient<DefaultClientContext> = broker.client().create().unwrap();
    let created = admin
        .create_topics(
            &[NewTopic::new(TOPIC, PARTITIONS, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        )
        .await
        .unwrap();
    assert!(created.iter().all(Result::is_ok), "{created:?}");
    admin
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rdkafka_produces_idempotently_and_consumes_with_a_group() {
    let broker = start().await;

    create_topic(&broker).await;
    assert_eq!(
        broker.engine.stream_info(TOPIC).unwrap().config.partitions,
        PARTITIONS as u32
    );

    // Every acknowledged message has its own position: nothing was written twice.
    let positions = produce(&broker, 0..300).await;
    let unique: BTreeSet<_> = positions.iter().collect();
    assert_eq!(unique.len(), 300);
    let stored: u64 = broker
        .engine
        .stream_info(TOPIC)
        .unwrap()
        .partition_info
        .iter()
        .map(|p| p.high_watermark)
        .sum();
    assert_eq!(stored, 300);

    let first = consumer(&broker, "rust-group");
    first.subscribe(&[TOPIC]).unwrap();
    let received = receive(&first, 300, Duration::from_secs(60)).await;
    assert_eq!(received.len(), 300);
    let values: BTreeSet<&str> = received.iter().map(|(_, v, _, _)| v.as_str()).collect();
    assert_eq!(values.len(), 300, "every message exactly once");
    // Per key, values arrive in the order they were produced.
    let mut per_key: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (key, value, _, _) in &received {
        per_key.entry(key).or_default().push(value.parse().unwrap());
    }
    for (key, values) in &per_key {
        assert!(values.windows(2).all(|w| w[0] < w[1]), "{key}: {values:?}");
    }
    first.commit_consumer_state(CommitMode::Sync).unwrap();
    drop(first);

    // A new member of the group starts after the commit.
    produce(&broker, 300..310).await;
    let second = consumer(&broker, "rust-group");
    second.subscribe(&[TOPIC]).unwrap();
    let resumed = receive(&second, 10, Duration::from_secs(60)).await;
    let mut values: Vec<usize> = resumed
        .iter()
        .map(|(_, v, _, _)| v.parse().unwrap())
        .collect();
    values.sort_unstable();
    assert_eq!(values, (300..310).collect::<Vec<_>>());
    let extra = receive(&second, 1, Duration::from_secs(2)).await;
    assert!(
        extra.is_empty(),
        "nothing before the commit again: {extra:?}"
    );
    drop(second);

    broker.stop().await;
}

/// Changing a topic's configuration reopens its logs; producers writing at that moment get
/// a retriable error for the batches in flight and retry them. Idempotence must make that
/// invisible: every message exactly once, nothing lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn altering_a_topic_while_an_idempotent_producer_writes_loses_and_duplicates_nothing() {
    use rdkafka::admin::{AlterConfig, ResourceSpecifier};

    const MESSAGES: usize = 20_000;
    let broker = start().await;
    let admin = create_topic(&broker).await;

    // Paced, so the stream lasts long enough for the changes to land in its middle: one
    // unpaced burst of 20,000 small messages can fit in a batch or two. And held halfway
    // until the first change is answered, so at least one change lands mid-stream however
    // slow the admin client is to connect on a loaded machine.
    let first_change_done = tokio::sync::Notify::new();
    let producing = produce_paced(&broker, 0..MESSAGES, 200, Some(&first_change_done));
    let stored = || -> u64 {
        let info = broker.engine.stream_info(TOPIC).unwrap();
        info.partition_info.iter().map(|p| p.high_watermark).sum()
    };
    let altering = async {
        // Start once records flow, so the changes land in the middle of the stream.
        while stored() == 0 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let mut mid_stream = 0;
        for round in 0..5u64 {
            if stored() < MESSAGES as u64 {
                mid_stream += 1;
            }
            let retention = (3_600_000 + round).to_string();
            let change =
                AlterConfig::new(ResourceSpecifier::Topic(TOPIC)).set("retention.ms", &retention);
            let altered = admin
                .alter_configs(&[change], &AdminOptions::new())
                .await
                .unwrap();
            assert!(altered.iter().all(Result::is_ok), "{altered:?}");
            if round == 0 {
                first_change_done.notify_one();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        mid_stream
    };
    let (positions, mid_stream) = tokio::join!(producing, altering);
    assert!(mid_stream > 0, "no change landed while the producer wrote");

    let info = broker.engine.stream_info(TOPIC).unwrap();
    assert_eq!(
        info.config.retention_ms,
        Some(3_600_004),
        "the last change holds"
    );
    let unique: BTreeSet<_> = positions.iter().collect();
    assert_eq!(
        unique.len(),
        MESSAGES,
        "every acknowledged message has its own offset"
    );
    assert_eq!(stored(), MESSAGES as u64, "nothing written twice");

    let reader = consumer(&broker, "alter-readers");
    reader.subscribe(&[TOPIC]).unwrap();
    let received = receive(&reader, MESSAGES, Duration::from_secs(60)).await;
    let values: BTreeSet<&str> = received.iter().map(|(_, v, _, _)| v.as_str()).collect();
    assert_eq!(values.len(), MESSAGES, "every message readable once");
    drop(reader);
    broker.stop().await;
}
