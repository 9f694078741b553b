//! async-nats's JetStream pull consumers against the NATS door: fetch and ack, nak with a
//! delay, term, in-progress, redelivery after the ack wait, consumer info counts, and acks
//! that survive a restart.

mod support;

use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer::pull, message::AckKind, stream, Message};
use bytes::Bytes;
use futures_util::StreamExt;
use omnibus_nats::NatsConfig;
use support::Broker;

const WAIT: Duration = Duration::from_secs(5);

async fn orders(js: &jetstream::Context, count: usize) -> stream::Stream {
    let stream = js
        .create_stream(stream::Config {
            name: "ORDERS".into(),
            subjects: vec!["orders.>".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    for index in 0..count {
        js.publish("orders.new", Bytes::from(format!("m{index}")))
            .await
            .unwrap()
            .await
            .unwrap();
    }
    stream
}

fn pull_config(name: &str) -> pull::Config {
    pull::Config {
        durable_name: Some(name.into()),
        ..Default::default()
    }
}

/// Up to `count` messages within `expires`.
async fn fetch(
    consumer: &jetstream::consumer::PullConsumer,
    count: usize,
    expires: Duration,
) -> Vec<Message> {
    let mut batch = consumer
        .batch()
        .max_messages(count)
        .expires(expires)
        .messages()
        .await
        .unwrap();
    let mut messages = Vec::new();
    let collect = async {
        while let Some(message) = batch.next().await {
            messages.push(message.unwrap());
        }
    };
    tokio::time::timeout(expires + WAIT, collect)
        .await
        .expect("the batch ends");
    messages
}

fn payloads(messages: &[Message]) -> Vec<String> {
    messages
        .iter()
        .map(|m| String::from_utf8_lossy(&m.payload).into_owned())
        .collect()
}

#[tokio::test]
async fn fetch_ack_and_consumer_info_counts() {
    let broker = Broker::start().await;
    let js = jetstream::new(broker.client().await);
    let stream = orders(&js, 3).await;
    let mut consumer: jetstream::consumer::PullConsumer =
        stream.create_consumer(pull_config("worker")).await.unwrap();
    let info = consumer.info().await.unwrap();
    assert_eq!(info.name, "worker");
    assert_eq!(info.num_pending, 3);

    let messages = fetch(&consumer, 2, Duration::from_millis(500)).await;
    assert_eq!(payloads(&messages), vec!["m0", "m1"]);
    assert_eq!(messages[0].subject.as_str(), "orders.new");
    let first = messages[0].info().unwrap();
    assert_eq!((first.stream_sequence, first.delivered), (1, 1));
    messages[0].double_ack().await.unwrap();
    let info = consumer.info().await.unwrap().clone();
    assert_eq!(info.num_ack_pending, 1);
    assert_eq!(info.num_pending, 1);
    assert_eq!(info.delivered.stream_sequence, 2);
    assert_eq!(info.ack_floor.stream_sequence, 1);
    messages[1].double_ack().await.unwrap();

    let rest = fetch(&consumer, 5, Duration::from_millis(300)).await;
    assert_eq!(payloads(&rest), vec!["m2"]);
    rest[0].double_ack().await.unwrap();
    let info = consumer.info().await.unwrap();
    assert_eq!((info.num_ack_pending, info.num_pending), (0, 0));
    assert_eq!(info.ack_floor.stream_sequence, 3);
    // Acknowledged by the consumer, still in the stream (limits retention).
    assert_eq!(broker.engine.partition_bounds("ORDERS", 0).unwrap(), (0, 3));

    let names: Vec<String> = stream.consumer_names().map(|n| n.unwrap()).collect().await;
    assert_eq!(names, vec!["worker".to_string()]);
    assert!(stream.delete_consumer("worker").await.unwrap().success);
    let missing = stream
        .get_consumer::<pull::Config>("worker")
        .await
        .unwrap_err();
    assert!(
        missing.to_string().contains("consumer not found"),
        "{missing}"
    );
}

/// The consumer-info counts as nats-server gives them (each figure was read from nats-server
/// 2.9 running the same steps): a nacked message stays ack-pending and is not pending again,
/// a redelivered one counts in `num_redelivered` until settled, and messages the stream's
/// limits removed are forgotten (neither pending nor ack-pending, and the ack floor moves up
/// to what was delivered).
#[tokio::test]
async fn consumer_info_counts_nacks_redeliveries_and_messages_the_limits_removed() {
    let broker = Broker::start().await;
    let js = jetstream::new(broker.client().await);
    let stream = js
        .create_stream(stream::Config {
            name: "LIM".into(),
            subjects: vec!["lim".into()],
            max_messages: 3,
            ..Default::default()
        })
        .await
        .unwrap();
    let publish = |index: usize| {
        let js = js.clone();
        async move {
            js.publish("lim", Bytes::from(format!("m{index}")))
                .await
                .unwrap()
                .await
                .unwrap();
        }
    };
    for index in 0..2 {
        publish(index).await;
    }
    let mut consumer: jetstream::consumer::PullConsumer =
        stream.create_consumer(pull_config("w")).await.unwrap();
    let counts = |info: &jetstream::consumer::Info| {
        (
            info.num_pending,
            info.num_ack_pending,
            info.num_redelivered,
            info.delivered.stream_sequence,
            info.ack_floor.stream_sequence,
        )
    };
    let first = fetch(&consumer, 1, Duration::from_millis(300)).await;
    first[0].double_ack_with(AckKind::Nak(None)).await.unwrap();
    assert_eq!(counts(consumer.info().await.unwrap()), (1, 1, 0, 1, 0));
    let again = fetch(&consumer, 1, Duration::from_millis(300)).await;
    assert_eq!(payloads(&again), vec!["m0"]);
    assert_eq!(again[0].info().unwrap().delivered, 2);
    assert_eq!(counts(consumer.info().await.unwrap()), (1, 1, 1, 1, 0));
    for index in 2..6 {
        publish(index).await;
    }
    assert_eq!(counts(consumer.info().await.unwrap()), (3, 0, 0, 1, 1));
    let rest = fetch(&consumer, 3, Duration::from_millis(300)).await;
    assert_eq!(payloads(&rest), vec!["m3", "m4", "m5"]);
    for message in &rest {
        message.double_ack().await.unwrap();
    }
    assert_eq!(counts(consumer.info().await.unwrap()), (0, 0, 0, 6, 6));
}

#[tokio::test]
async fn an_empty_fetch_ends_at_its_expiry() {
    let broker = Broker::start().await;
    let js = jetstream::new(broker.client().await);
    let stream = orders(&js, 0).await;
    let consumer: jetstream::consumer::PullConsumer =
        stream.create_consumer(pull_config("idle")).await.unwrap();
    let started = Instant::now();
    assert!(fetch(&consumer, 1, Duration::from_millis(300))
        .await
        .is_empty());
    assert!(started.elapsed() >= Duration::from_millis(250));
    // A message published while a request waits is delivered to it.
    let waiting = tokio::spawn({
        let consumer = consumer.clone();
        async move { fetch(&consumer, 1, Duration::from_secs(3)).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    js.publish("orders.late", "late".into())
        .await
        .unwrap()
        .await
        .unwrap();
    let messages = waiting.await.unwrap();
    assert_eq!(payloads(&messages), vec!["late"]);
}

#[tokio::test]
async fn nak_with_delay_term_and_in_progress() {
    let broker = Broker::start().await;
    let js = jetstream::new(broker.client().await);
    let stream = orders(&js, 2).await;
    let consumer: jetstream::consumer::PullConsumer = stream
        .create_consumer(pull::Config {
            ack_wait: Duration::from_millis(400),
            ..pull_config("worker")
        })
        .await
        .unwrap();
    let messages = fetch(&consumer, 2, Duration::from_millis(300)).await;
    assert_eq!(payloads(&messages), vec!["m0", "m1"]);
    messages[0]
        .double_ack_with(AckKind::Nak(Some(Duration::from_millis(300))))
        .await
        .unwrap();
    messages[1].double_ack_with(AckKind::Term).await.unwrap();
    // Within the delay nothing comes back; after it, m0 again, its second delivery.
    assert!(fetch(&consumer, 1, Duration::from_millis(100))
        .await
        .is_empty());
    let again = fetch(&consumer, 1, Duration::from_secs(1)).await;
    assert_eq!(payloads(&again), vec!["m0"]);
    assert_eq!(again[0].info().unwrap().delivered, 2);
    // Work in progress keeps it from being redelivered past its ack wait.
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        again[0].double_ack_with(AckKind::Progress).await.unwrap();
    }
    assert!(fetch(&consumer, 1, Duration::from_millis(100))
        .await
        .is_empty());
    again[0].double_ack().await.unwrap();
    assert!(fetch(&consumer, 1, Duration::from_millis(600))
        .await
        .is_empty());
}

#[tokio::test]
async fn an_unacknowledged_message_is_redelivered_after_the_ack_wait() {
    let broker = Broker::start().await;
    let js = jetstream::new(broker.client().await);
    let stream = orders(&js, 1).await;
    let mut consumer: jetstream::consumer::PullConsumer = stream
        .create_consumer(pull::Config {
            ack_wait: Duration::from_millis(200),
            max_deliver: 2,
            ..pull_config("worker")
        })
        .await
        .unwrap();
    let first = fetch(&consumer, 1, Duration::from_millis(300)).await;
    assert_eq!(first[0].info().unwrap().delivered, 1);
    let second = fetch(&consumer, 1, Duration::from_secs(1)).await;
    assert_eq!(payloads(&second), vec!["m0"]);
    assert_eq!(second[0].info().unwrap().delivered, 2);
    // max_deliver 2: not a third time.
    assert!(fetch(&consumer, 1, Duration::from_millis(500))
        .await
        .is_empty());
    let info = consumer.info().await.unwrap();
    assert_eq!(info.num_ack_pending, 0);
}

#[tokio::test]
async fn two_consumers_with_filters_read_the_same_stream() {
    let broker = Broker::start().await;
    let js = jetstream::new(broker.client().await);
    let stream = orders(&js, 2).await;
    js.publish("orders.eu.west", "eu".into())
        .await
        .unwrap()
        .await
        .unwrap();
    let everything: jetstream::consumer::PullConsumer =
        stream.create_consumer(pull_config("all")).await.unwrap();
    let europe: jetstream::consumer::PullConsumer = stream
        .create_consumer(pull::Config {
            // A wildcard in the filter, which async-nats puts in the create subject.
            filter_subject: "orders.eu.>".into(),
            ..pull_config("eu")
        })
        .await
        .unwrap();
    let all = fetch(&everything, 10, Duration::from_millis(300)).await;
    assert_eq!(payloads(&all), vec!["m0", "m1", "eu"]);
    let eu = fetch(&europe, 10, Duration::from_millis(300)).await;
    assert_eq!(payloads(&eu), vec!["eu"]);
    assert_eq!(eu[0].info().unwrap().stream_sequence, 3);
}

/// nats-server's refusals of a consumer that could never deliver what it was asked for.
#[tokio::test]
async fn a_filter_outside_the_stream_or_a_start_sequence_left_out_is_refused() {
    let broker = Broker::start().await;
    let js = jetstream::new(broker.client().await);
    let stream = orders(&js, 0).await;
    let error = stream
        .create_consumer(pull::Config {
            filter_subject: "invoices.>".into(),
            ..pull_config("typo")
        })
        .await
        .unwrap_err();
    assert!(error.to_string().contains("10093"), "{error}");
    let error = stream
        .create_consumer(pull::Config {
            deliver_policy: jetstream::consumer::DeliverPolicy::ByStartSequence {
                start_sequence: 0,
            },
            ..pull_config("from")
        })
        .await
        .unwrap_err();
    assert!(error.to_string().contains("10094"), "{error}");
    // A filter inside the stream's subjects is fine.
    let _: jetstream::consumer::PullConsumer = stream
        .create_consumer(pull::Config {
            filter_subject: "orders.*.paid".into(),
            ..pull_config("paid")
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn consumers_and_their_acks_survive_a_restart() {
    let broker = Broker::start().await;
    let js = jetstream::new(broker.client().await);
    let stream = orders(&js, 3).await;
    let consumer: jetstream::consumer::PullConsumer =
        stream.create_consumer(pull_config("worker")).await.unwrap();
    let messages = fetch(&consumer, 2, Duration::from_millis(300)).await;
    messages[0].double_ack().await.unwrap();
    drop(messages);
    drop((consumer, stream, js));
    let folder = broker.stop().await;

    let broker = Broker::in_folder(folder, NatsConfig::default()).await;
    let js = jetstream::new(broker.client().await);
    let stream = js.get_stream("ORDERS").await.unwrap();
    let consumer: jetstream::consumer::PullConsumer = stream.get_consumer("worker").await.unwrap();
    // m0 was acknowledged; m1 was delivered but not acknowledged: it comes again.
    let after = fetch(&consumer, 5, Duration::from_millis(300)).await;
    assert_eq!(payloads(&after), vec!["m1", "m2"]);
    assert_eq!(after[0].info().unwrap().delivered, 2);
}

#[tokio::test]
async fn a_work_queue_stream_removes_what_its_consumer_acked() {
    let broker = Broker::start().await;
    let js = jetstream::new(broker.client().await);
    let mut stream = js
        .create_stream(stream::Config {
            name: "JOBS".into(),
            subjects: vec!["jobs.>".into()],
            retention: stream::RetentionPolicy::WorkQueue,
            duplicate_window: Duration::from_secs(30),
            ..Default::default()
        })
        .await
        .unwrap();
    let config = stream.info().await.unwrap().config.clone();
    assert_eq!(config.retention, stream::RetentionPolicy::WorkQueue);
    assert_eq!(config.duplicate_window, Duration::from_secs(30));
    for index in 0..3 {
        js.publish("jobs.email", Bytes::from(format!("j{index}")))
            .await
            .unwrap()
            .await
            .unwrap();
    }
    let consumer: jetstream::consumer::PullConsumer = stream
        .create_consumer(pull_config("workers"))
        .await
        .unwrap();
    let messages = fetch(&consumer, 2, Duration::from_millis(300)).await;
    assert_eq!(payloads(&messages), vec!["j0", "j1"]);
    for message in &messages {
        message.double_ack().await.unwrap();
    }
    let state = state_eventually(&mut stream, |s| (s.messages, s.first_sequence) == (1, 3)).await;
    assert_eq!((state.messages, state.first_sequence), (1, 3));

    // One consumer per subject: a second unfiltered one is refused (10099), as is one whose
    // filter overlaps (10100).
    let second = stream
        .create_consumer(pull_config("more"))
        .await
        .unwrap_err();
    assert!(second.to_string().contains("10099"), "{second}");
    let overlapping = stream
        .create_consumer(pull::Config {
            filter_subject: "jobs.email".into(),
            ..pull_config("email")
        })
        .await
        .unwrap_err();
    assert!(overlapping.to_string().contains("10100"), "{overlapping}");
    // Changing the retention away from workqueue is refused.
    let update = js
        .update_stream(stream::Config {
            name: "JOBS".into(),
            subjects: vec!["jobs.>".into()],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(update.to_string().contains("retention"), "{update}");
}

#[tokio::test]
async fn an_idle_ephemeral_consumer_ends_after_its_inactive_threshold() {
    let broker = Broker::start().await;
    let js = jetstream::new(broker.client().await);
    let stream = orders(&js, 1).await;
    let durable: jetstream::consumer::PullConsumer =
        stream.create_consumer(pull_config("stays")).await.unwrap();
    let ephemeral: jetstream::consumer::PullConsumer = stream
        .create_consumer(pull::Config {
            inactive_threshold: Duration::from_millis(300),
            ..Default::default()
        })
        .await
        .unwrap();
    let name = ephemeral.cached_info().name.clone();
    assert_eq!(
        fetch(&ephemeral, 1, Duration::from_millis(200)).await.len(),
        1
    );
    let deadline = Instant::now() + WAIT;
    loop {
        let names: Vec<String> = stream.consumer_names().map(|n| n.unwrap()).collect().await;
        if !names.contains(&name) {
            assert_eq!(names, vec!["stays".to_string()]);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the ephemeral consumer is still there"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(durable);
}

#[tokio::test]
async fn an_interest_stream_removes_what_every_consumer_acked() {
    let broker = Broker::start().await;
    let js = jetstream::new(broker.client().await);
    let mut stream = js
        .create_stream(stream::Config {
            name: "EVENTS".into(),
            subjects: vec!["events.>".into()],
            retention: stream::RetentionPolicy::Interest,
            ..Default::default()
        })
        .await
        .unwrap();
    let first: jetstream::consumer::PullConsumer =
        stream.create_consumer(pull_config("first")).await.unwrap();
    let second: jetstream::consumer::PullConsumer =
        stream.create_consumer(pull_config("second")).await.unwrap();
    js.publish("events.one", "e".into())
        .await
        .unwrap()
        .await
        .unwrap();
    // Generous expiries: on a loaded machine a short one can end the pull empty.
    let taken = fetch(&first, 1, Duration::from_secs(3)).await;
    assert_eq!(taken.len(), 1, "the first consumer gets the message");
    for message in taken {
        message.double_ack().await.unwrap();
    }
    // Longer than a removal takes to follow an ack: still there, the second has not acked.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(stream.info().await.unwrap().state.messages, 1);
    let taken = fetch(&second, 1, Duration::from_secs(3)).await;
    assert_eq!(taken.len(), 1, "the second consumer gets the message");
    for message in taken {
        message.double_ack().await.unwrap();
    }
    let state = state_eventually(&mut stream, |s| s.messages == 0).await;
    assert_eq!(state.messages, 0);
}

/// The stream's state once `done` holds (or after 5 s): removal of acknowledged records
/// follows the durable ack floor a few milliseconds later (`consumers/removal.rs`).
async fn state_eventually(
    stream: &mut stream::Stream,
    done: impl Fn(&stream::State) -> bool,
) -> stream::State {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let state = stream.info().await.unwrap().state.clone();
        if done(&state) || tokio::time::Instant::now() >= deadline {
            return state;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
