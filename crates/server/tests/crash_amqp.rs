//! AMQP durability under `kill -9` (lapin, publisher confirms): a durable queue takes
//! persistent and transient messages alternately while a non-durable queue takes messages of
//! its own, and the broker is killed at random moments and restarted on the same data.
//!
//! Checks what docs/amqp.md promises: every confirmed message of the durable queue — both
//! delivery modes, each fsynced before its confirm — is there exactly once, in publish order;
//! and every non-durable queue is gone after the restart (RabbitMQ deletes them), however
//! many messages it had confirmed without an fsync.
//!
//! `OMNIBUS_AMQP_CRASH_CYCLES` sets the number of cycles (default 3); `OMNIBUS_CRASH_SEED`
//! replays the kill timing. The last line printed is the summary:
//! `crash summary: crash_amqp [kill -9] cycles=<n> acknowledged=<n> lost=0`.

mod support;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::BasicProperties;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use support::Broker;

const CYCLES_DEFAULT: usize = 3;
const KILL_AFTER_MS: (u64, u64) = (200, 700);
/// Confirms a publisher waits for at a time (a client's confirm window).
const WINDOW: usize = 32;
const DURABLE_QUEUE: &str = "orders";

async fn channel(broker: &Broker) -> (lapin::Connection, lapin::Channel) {
    let address = broker.amqp_address.expect("the AMQP listener");
    let connection = lapin::Connection::connect(
        &format!("amqp://guest:guest@{address}/%2f"),
        lapin::ConnectionProperties::default(),
    )
    .await
    .expect("connect");
    let channel = connection.create_channel().await.expect("a channel");
    (connection, channel)
}

async fn declare(channel: &lapin::Channel, queue: &str, durable: bool) {
    channel
        .queue_declare(
            queue.into(),
            QueueDeclareOptions {
                durable,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("declare");
}

/// Publishes `<prefix><n>` with confirms until the broker goes away; records each body whose
/// confirm arrived. Even numbers are persistent, odd ones transient.
async fn publish(channel: lapin::Channel, queue: String, prefix: String, confirmed: Ledger) {
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirm.select");
    for round in 0u64.. {
        let mut waiting = Vec::with_capacity(WINDOW);
        for slot in 0..WINDOW as u64 {
            let number = round * WINDOW as u64 + slot;
            let body = format!("{prefix}{number:09}");
            let delivery_mode = if number.is_multiple_of(2) { 2 } else { 1 };
            let properties = BasicProperties::default().with_delivery_mode(delivery_mode);
            let Ok(confirm) = channel
                .basic_publish(
                    "".into(),
                    queue.as_str().into(),
                    BasicPublishOptions::default(),
                    body.as_bytes(),
                    properties,
                )
                .await
            else {
                return;
            };
            waiting.push((body, confirm));
        }
        for (body, confirm) in waiting {
            match tokio::time::timeout(Duration::from_secs(5), confirm).await {
                Ok(Ok(confirmation)) if confirmation.is_ack() => {
                    confirmed.lock().unwrap().push(body)
                }
                _ => return,
            }
        }
    }
}

type Ledger = Arc<Mutex<Vec<String>>>;

/// Whether `queue` exists: a passive declare on a fresh channel (404 closes it).
async fn exists(connection: &lapin::Connection, queue: &str) -> bool {
    let channel = connection.create_channel().await.expect("a channel");
    channel
        .queue_declare(
            queue.into(),
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .is_ok()
}

/// Every message of `queue`, consumed without acknowledgement until it is empty.
async fn drain(channel: &lapin::Channel, queue: &str) -> Vec<String> {
    let declared = channel
        .queue_declare(
            queue.into(),
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("the durable queue is there");
    let count = declared.message_count() as usize;
    let mut consumer = channel
        .basic_consume(
            queue.into(),
            "drain".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("consume");
    let mut bodies = Vec::with_capacity(count);
    while bodies.len() < count {
        let delivery = tokio::time::timeout(Duration::from_secs(10), consumer.next())
            .await
            .expect("the next stored message within 10 s")
            .expect("the consumer is open")
            .expect("a delivery");
        bodies.push(String::from_utf8(delivery.data).expect("a text body"));
    }
    bodies
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirmed_messages_of_durable_queues_survive_kill_9_and_non_durable_queues_go() {
    let cycles = std::env::var("OMNIBUS_AMQP_CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(CYCLES_DEFAULT);
    let seed = std::env::var("OMNIBUS_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(rand::random::<u64>);
    println!("crash_amqp seed {seed}");
    let mut random = StdRng::seed_from_u64(seed);
    let directory = tempfile::tempdir().unwrap();
    let data_dir = directory.path().join("data");
    let log = directory.path().join("broker.log");
    let durable: Ledger = Arc::default();
    let mut transient_confirmed = 0;
    for cycle in 0..cycles {
        let mut broker = Broker::start(&data_dir, log.clone()).await;
        let (connection, setup) = channel(&broker).await;
        for earlier in 0..cycle {
            assert!(
                !exists(&connection, &format!("rpc-{earlier}")).await,
                "the non-durable queue of cycle {earlier} is still there after kill -9"
            );
        }
        declare(&setup, DURABLE_QUEUE, true).await;
        let rpc = format!("rpc-{cycle}");
        declare(&setup, &rpc, false).await;
        let transient: Ledger = Arc::default();
        let tasks = [
            tokio::spawn(publish(
                connection.create_channel().await.unwrap(),
                DURABLE_QUEUE.into(),
                format!("c{cycle}-"),
                durable.clone(),
            )),
            tokio::spawn(publish(
                connection.create_channel().await.unwrap(),
                rpc,
                format!("r{cycle}-"),
                transient.clone(),
            )),
        ];
        let kill_after = random.random_range(KILL_AFTER_MS.0..KILL_AFTER_MS.1);
        tokio::time::sleep(Duration::from_millis(kill_after)).await;
        broker.kill_9();
        for task in tasks {
            task.abort();
        }
        transient_confirmed += transient.lock().unwrap().len();
    }
    let broker = Broker::start(&data_dir, log.clone()).await;
    let (connection, reader) = channel(&broker).await;
    for cycle in 0..cycles {
        assert!(
            !exists(&connection, &format!("rpc-{cycle}")).await,
            "the non-durable queue of cycle {cycle} is still there after kill -9"
        );
    }
    let stored = drain(&reader, DURABLE_QUEUE).await;
    let confirmed = durable.lock().unwrap().clone();
    assert!(!confirmed.is_empty(), "nothing was confirmed");
    assert!(
        transient_confirmed > 0,
        "no non-durable publish was confirmed"
    );
    let present: HashSet<&str> = stored.iter().map(String::as_str).collect();
    assert_eq!(present.len(), stored.len(), "a message is stored twice");
    let lost: Vec<&String> = confirmed
        .iter()
        .filter(|body| !present.contains(body.as_str()))
        .collect();
    println!(
        "crash summary: crash_amqp [kill -9] cycles={cycles} acknowledged={} lost={} \
         non_durable_confirmed={transient_confirmed}",
        confirmed.len(),
        lost.len()
    );
    assert!(
        lost.is_empty(),
        "confirmed messages lost: {:?}",
        &lost[..lost.len().min(10)]
    );
    // One publisher per cycle, numbered in publish order: the queue keeps that order.
    let order: Vec<(usize, u64)> = stored.iter().map(|body| position(body)).collect();
    assert!(
        order.windows(2).all(|pair| pair[0] < pair[1]),
        "the durable queue's messages are out of order"
    );
}

/// `(cycle, number)` of a body `c<cycle>-<number>`.
fn position(body: &str) -> (usize, u64) {
    let (cycle, number) = body[1..].split_once('-').expect("c<cycle>-<number>");
    (cycle.parse().unwrap(), number.parse().unwrap())
}
