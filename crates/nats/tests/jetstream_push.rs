//! async-nats's JetStream push and ordered consumers against the NATS door: records pushed to
//! a deliver subject as they arrive, acks, a deliver group sharing them, and an ordered
//! consumer reading a stream in order.

mod support;

use std::time::Duration;

use async_nats::jetstream::{self, consumer::push, stream};
use bytes::Bytes;
use futures_util::StreamExt;
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
        publish(js, &format!("m{index}")).await;
    }
    stream
}

async fn publish(js: &jetstream::Context, payload: &str) {
    js.publish("orders.new", Bytes::from(payload.to_string()))
        .await
        .unwrap()
        .await
        .unwrap();
}

#[tokio::test]
async fn a_push_consumer_delivers_existing_and_new_records_and_takes_acks() {
    let broker = Broker::start().await;
    let js = jetstream::new(broker.client().await);
    let stream = orders(&js, 2).await;
    let consumer: jetstream::consumer::PushConsumer = stream
        .create_consumer(push::Config {
            durable_name: Some("pusher".into()),
            deliver_subject: "deliver.pusher".into(),
            ack_wait: Duration::from_secs(30),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut messages = consumer.messages().await.unwrap();
    let mut next = async || {
        tokio::time::timeout(WAIT, messages.next())
            .await
            .expect("a message within 5 s")
            .unwrap()
            .unwrap()
    };
    let first = next().await;
    assert_eq!(first.subject.as_str(), "orders.new");
    assert_eq!(first.payload, "m0");
    first.double_ack().await.unwrap();
    let second = next().await;
    assert_eq!(second.payload, "m1");
    second.double_ack().await.unwrap();
    publish(&js, "later").await;
    let third = next().await;
    assert_eq!(third.payload, "later");
    assert_eq!(third.info().unwrap().stream_sequence, 3);
    third.double_ack().await.unwrap();
    let info = broker.engine.consumer_info("ORDERS", "pusher").unwrap();
    assert_eq!((info.ack_floor, info.ack_pending), (3, 0));
}

#[tokio::test]
async fn a_deliver_group_shares_the_records() {
    let broker = Broker::start().await;
    let client = broker.client().await;
    let js = jetstream::new(client.clone());
    let stream = orders(&js, 0).await;
    let mut first = client
        .queue_subscribe("deliver.group", "workers".into())
        .await
        .unwrap();
    let mut second = client
        .queue_subscribe("deliver.group", "workers".into())
        .await
        .unwrap();
    client.flush().await.unwrap();
    let _consumer: jetstream::consumer::PushConsumer = stream
        .create_consumer(push::Config {
            durable_name: Some("shared".into()),
            deliver_subject: "deliver.group".into(),
            deliver_group: Some("workers".into()),
            ack_policy: jetstream::consumer::AckPolicy::None,
            ..Default::default()
        })
        .await
        .unwrap();
    for index in 0..10 {
        publish(&js, &format!("m{index}")).await;
    }
    let (mut got_first, mut got_second) = (0, 0);
    while got_first + got_second < 10 {
        tokio::select! {
            Some(_) = first.next() => got_first += 1,
            Some(_) = second.next() => got_second += 1,
            _ = tokio::time::sleep(WAIT) => panic!("only {} of 10", got_first + got_second),
        }
    }
    assert!(
        got_first > 0 && got_second > 0,
        "{got_first} and {got_second}"
    );
}

#[tokio::test]
async fn an_ordered_consumer_reads_the_stream_in_order() {
    let broker = Broker::start().await;
    let client = broker.client().await;
    let js = jetstream::new(client.clone());
    let stream = orders(&js, 5).await;
    let consumer: jetstream::consumer::OrderedPushConsumer = stream
        .create_consumer(push::OrderedConfig {
            deliver_subject: client.new_inbox(),
            filter_subject: "orders.>".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut messages = consumer.messages().await.unwrap();
    for index in 0..5 {
        let message = tokio::time::timeout(WAIT, messages.next())
            .await
            .expect("a message within 5 s")
            .unwrap()
            .unwrap();
        // Published concurrently: the stream's order is the sequence's, not the index's.
        let sequence = message.info().unwrap().stream_sequence;
        assert_eq!(sequence, index as u64 + 1);
    }
}

#[tokio::test]
async fn an_idle_push_consumer_sends_heartbeats_naming_the_last_sequences() {
    let broker = Broker::start().await;
    let client = broker.client().await;
    let js = jetstream::new(client.clone());
    let stream = orders(&js, 0).await;
    let mut deliveries = client.subscribe("deliver.beats").await.unwrap();
    client.flush().await.unwrap();
    let _consumer: jetstream::consumer::PushConsumer = stream
        .create_consumer(push::Config {
            durable_name: Some("beats".into()),
            deliver_subject: "deliver.beats".into(),
            idle_heartbeat: Duration::from_millis(200),
            ack_policy: jetstream::consumer::AckPolicy::None,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut next = async || {
        tokio::time::timeout(WAIT, deliveries.next())
            .await
            .expect("a message within 5 s")
            .unwrap()
    };
    let beat = next().await;
    assert_eq!(beat.status, Some(async_nats::StatusCode::IDLE_HEARTBEAT));
    let header = |message: &async_nats::Message, name: &str| {
        message
            .headers
            .as_ref()
            .and_then(|h| h.get(name))
            .map(|v| v.to_string())
    };
    assert_eq!(header(&beat, "Nats-Last-Consumer").as_deref(), Some("0"));
    publish(&js, "m0").await;
    let mut record = next().await;
    while record.status.is_some() {
        record = next().await;
    }
    assert_eq!(record.payload, "m0");
    let beat = next().await;
    assert_eq!(beat.status, Some(async_nats::StatusCode::IDLE_HEARTBEAT));
    assert_eq!(header(&beat, "Nats-Last-Consumer").as_deref(), Some("1"));
    assert_eq!(header(&beat, "Nats-Last-Stream").as_deref(), Some("1"));
}

/// More messages than two flow-control windows (512 each): the consumer stalls after the
/// second window until the first `100 FlowControl Request` is answered, which async-nats does
/// by itself — so every message arrives only if requests are sent and answers are taken.
#[tokio::test]
async fn a_flow_controlled_push_consumer_delivers_everything_to_async_nats() {
    let broker = Broker::start().await;
    let js = jetstream::new(broker.client().await);
    let count = 1_500;
    let stream = js
        .create_stream(stream::Config {
            name: "ORDERS".into(),
            subjects: vec!["orders.>".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    let acks: Vec<_> = futures_util::future::join_all((0..count).map(|index| {
        let js = js.clone();
        async move {
            js.publish("orders.new", Bytes::from(format!("m{index}")))
                .await
                .unwrap()
        }
    }))
    .await;
    for ack in acks {
        ack.await.unwrap();
    }
    let consumer: jetstream::consumer::PushConsumer = stream
        .create_consumer(push::Config {
            durable_name: Some("flow".into()),
            deliver_subject: "deliver.flow".into(),
            flow_control: true,
            idle_heartbeat: Duration::from_secs(5),
            ack_policy: jetstream::consumer::AckPolicy::None,
            ..Default::default()
        })
        .await
        .unwrap();
    let config = consumer.cached_info().config.clone();
    assert!(config.flow_control, "flow_control is answered back");
    let mut messages = consumer.messages().await.unwrap();
    for index in 0..count {
        let message = tokio::time::timeout(WAIT, messages.next())
            .await
            .unwrap_or_else(|_| panic!("message {index} within 5 s"))
            .unwrap()
            .unwrap();
        // Published concurrently: the stream's order is the sequence's, not the index's.
        let sequence = message.info().unwrap().stream_sequence;
        assert_eq!(sequence, index as u64 + 1);
    }
}
