//! JetStream under `kill -9`: async-nats publishers send JetStream publishes (each with its
//! own `Nats-Msg-Id`) while the broker is killed at random moments and restarted on the same
//! data. Checks, over all cycles, that every publish whose PubAck arrived is in the stream at
//! the sequence the PubAck named, with its message id — a PubAck means fsynced — and that a
//! consumer's acknowledged position survives too.
//!
//! `OMNIBUS_JETSTREAM_CRASH_CYCLES` sets the number of cycles (default 4);
//! `OMNIBUS_CRASH_SEED` replays the kill timing. The last line printed is the summary:
//! `crash summary: crash_jetstream [kill -9] cycles=<n> acknowledged=<n> lost=0`.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull, message::PublishMessage, stream};
use futures_util::StreamExt;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use support::Broker;

const STREAM: &str = "CRASH";
const CYCLES_DEFAULT: usize = 4;
const PUBLISHERS: usize = 3;
const KILL_AFTER_MS: (u64, u64) = (200, 900);

/// (message id, sequence) of every acknowledged publish.
type Ledger = Arc<Mutex<Vec<(String, u64)>>>;

async fn connect(broker: &Broker) -> jetstream::Context {
    let address = broker.nats_address.expect("the NATS listener");
    let client = async_nats::ConnectOptions::new()
        .max_reconnects(Some(0))
        .connect(address.to_string())
        .await
        .expect("connect");
    jetstream::new(client)
}

/// Publishes until the broker goes away, recording each acknowledged publish.
async fn publish(js: jetstream::Context, cycle: usize, publisher: usize, ledger: Ledger) {
    for number in 0.. {
        let id = format!("c{cycle}-p{publisher}-{number}");
        let message = PublishMessage::build()
            .message_id(&id)
            .payload(id.clone().into());
        let Ok(pending) = js.send_publish("crash.events", message).await else {
            return;
        };
        let Ok(Ok(ack)) = tokio::time::timeout(Duration::from_secs(5), pending).await else {
            return;
        };
        ledger.lock().unwrap().push((id, ack.sequence));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_jetstream_publishes_survive_kill_9() {
    let cycles = std::env::var("OMNIBUS_JETSTREAM_CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(CYCLES_DEFAULT);
    let seed = std::env::var("OMNIBUS_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(rand::random::<u64>);
    println!("crash_jetstream seed {seed}");
    let mut random = StdRng::seed_from_u64(seed);
    let directory = tempfile::tempdir().unwrap();
    let data_dir = directory.path().join("data");
    let log = directory.path().join("broker.log");
    let ledger: Ledger = Arc::default();
    let mut acked_position = 0;
    for cycle in 0..cycles {
        let mut broker = Broker::start(&data_dir, log.clone()).await;
        let js = connect(&broker).await;
        if cycle == 0 {
            js.create_stream(stream::Config {
                name: STREAM.into(),
                subjects: vec!["crash.>".into()],
                ..Default::default()
            })
            .await
            .unwrap();
            js.get_stream(STREAM)
                .await
                .unwrap()
                .create_consumer(pull::Config {
                    durable_name: Some("reader".into()),
                    ..Default::default()
                })
                .await
                .unwrap();
        }
        // What the consumer acknowledged before the last kill is still acknowledged.
        let consumer: jetstream::consumer::PullConsumer = js
            .get_stream(STREAM)
            .await
            .unwrap()
            .get_consumer("reader")
            .await
            .unwrap();
        let floor = consumer.cached_info().ack_floor.stream_sequence;
        assert!(
            floor >= acked_position,
            "cycle {cycle}: the consumer's ack floor went back from {acked_position} to {floor}"
        );
        let mut batch = consumer.fetch().max_messages(20).messages().await.unwrap();
        while let Some(Ok(message)) = batch.next().await {
            let sequence = message.info().unwrap().stream_sequence;
            if message.double_ack().await.is_ok() && sequence == acked_position + 1 {
                acked_position = sequence;
            }
        }
        let tasks: Vec<_> = (0..PUBLISHERS)
            .map(|publisher| tokio::spawn(publish(js.clone(), cycle, publisher, ledger.clone())))
            .collect();
        let kill_after = random.random_range(KILL_AFTER_MS.0..KILL_AFTER_MS.1);
        tokio::time::sleep(Duration::from_millis(kill_after)).await;
        broker.kill_9();
        // A publish in flight at the kill never gets its PubAck; it is not in the ledger.
        for task in tasks {
            task.abort();
        }
    }
    // The last restart: every acknowledged publish is where its PubAck said.
    let broker = Broker::start(&data_dir, log.clone()).await;
    let js = connect(&broker).await;
    let stream = js.get_stream(STREAM).await.unwrap();
    let acknowledged = ledger.lock().unwrap().clone();
    assert!(!acknowledged.is_empty(), "no publish was acknowledged");
    let mut lost = Vec::new();
    for (id, sequence) in &acknowledged {
        match stream.get_raw_message(*sequence).await {
            Ok(message) => {
                let stored = message
                    .headers
                    .get("Nats-Msg-Id")
                    .map(|value| value.to_string());
                if stored.as_deref() != Some(id.as_str()) {
                    lost.push(format!("seq {sequence}: {id} expected, found {stored:?}"));
                }
            }
            Err(error) => lost.push(format!("seq {sequence} ({id}): {error}")),
        }
    }
    println!(
        "crash summary: crash_jetstream [kill -9] cycles={cycles} acknowledged={} lost={}",
        acknowledged.len(),
        lost.len()
    );
    assert!(lost.is_empty(), "acknowledged publishes lost: {lost:?}");
}

/// Messages in the stream of [`double_acked_messages_stay_acked_and_max_deliver_holds_across_kill_9`].
const WORK_MESSAGES: u64 = 12;
/// Its consumer's `max_deliver`.
const WORK_MAX_DELIVER: i64 = 3;

/// Fetches what the `work` consumer delivers until a fetch comes back empty; double-acks
/// the even sequences (recorded once the ack is answered), leaves the odd ones unacked, and
/// counts each sequence's deliveries and the highest attempt number seen.
async fn fetch_round(
    js: &jetstream::Context,
    double_acked: &mut std::collections::BTreeSet<u64>,
    deliveries: &mut std::collections::BTreeMap<u64, (u64, i64)>,
    cycle: usize,
) {
    let consumer: jetstream::consumer::PullConsumer = js
        .get_stream("WORK")
        .await
        .unwrap()
        .get_consumer("work")
        .await
        .unwrap();
    loop {
        let mut batch = consumer
            .fetch()
            .max_messages(WORK_MESSAGES as usize)
            .expires(Duration::from_millis(200))
            .messages()
            .await
            .unwrap();
        let mut fetched = 0;
        while let Some(Ok(message)) = batch.next().await {
            fetched += 1;
            let info = message.info().unwrap();
            let (sequence, attempt) = (info.stream_sequence, info.delivered);
            assert!(
                !double_acked.contains(&sequence),
                "cycle {cycle}: seq {sequence} was double-acked before, and delivered again"
            );
            let entry = deliveries.entry(sequence).or_default();
            entry.0 += 1;
            entry.1 = entry.1.max(attempt);
            if sequence % 2 == 0 {
                message.double_ack().await.unwrap();
                double_acked.insert(sequence);
            }
        }
        if fetched == 0 {
            return;
        }
    }
}

/// kill -9 between deliveries of a pull consumer with `max_deliver` 3: a double-acked
/// message (acknowledged after its ack was durable) is never delivered again, and a message
/// never acked is delivered at most 3 times in all, however many restarts there are — its
/// attempt count is kept conservatively (a delivery that may have happened counts).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn double_acked_messages_stay_acked_and_max_deliver_holds_across_kill_9() {
    let directory = tempfile::tempdir().unwrap();
    let data_dir = directory.path().join("data");
    let log = directory.path().join("broker.log");
    let mut double_acked = std::collections::BTreeSet::new();
    let mut deliveries = std::collections::BTreeMap::new();
    let cycles = 5;
    for cycle in 0..cycles {
        let mut broker = Broker::start(&data_dir, log.clone()).await;
        let js = connect(&broker).await;
        if cycle == 0 {
            js.create_stream(stream::Config {
                name: "WORK".into(),
                subjects: vec!["work.>".into()],
                ..Default::default()
            })
            .await
            .unwrap();
            for index in 0..WORK_MESSAGES {
                js.publish("work.item", format!("item {index}").into())
                    .await
                    .unwrap()
                    .await
                    .unwrap();
            }
            js.get_stream("WORK")
                .await
                .unwrap()
                .create_consumer(pull::Config {
                    durable_name: Some("work".into()),
                    max_deliver: WORK_MAX_DELIVER,
                    ack_wait: Duration::from_secs(60),
                    ..Default::default()
                })
                .await
                .unwrap();
        }
        fetch_round(&js, &mut double_acked, &mut deliveries, cycle).await;
        // Between deliveries: the unacked ones are leased, the acked ones answered.
        broker.kill_9();
    }
    let broker = Broker::start(&data_dir, log.clone()).await;
    let js = connect(&broker).await;
    fetch_round(&js, &mut double_acked, &mut deliveries, cycles).await;
    drop(broker);
    let evens: std::collections::BTreeSet<u64> =
        (1..=WORK_MESSAGES).filter(|s| s % 2 == 0).collect();
    assert_eq!(
        double_acked, evens,
        "every even message was double-acked once"
    );
    for sequence in (1..=WORK_MESSAGES).filter(|s| s % 2 == 1) {
        let (count, attempt) = deliveries.get(&sequence).copied().unwrap_or_default();
        assert!(
            (1..=WORK_MAX_DELIVER as u64).contains(&count),
            "seq {sequence} was delivered {count} times; max_deliver is {WORK_MAX_DELIVER}"
        );
        assert!(
            attempt >= count as i64 && attempt <= WORK_MAX_DELIVER,
            "seq {sequence}: attempt {attempt} after {count} deliveries (counts never undercount)"
        );
    }
}
