//! async-nats's JetStream API against the NATS door: streams, publishing with a PubAck,
//! dedup and the expected-sequence checks, and what survives a restart.

mod support;

use std::time::Duration;

use async_nats::jetstream::{self, context::PublishErrorKind, message::PublishMessage, stream};
use bytes::Bytes;
use futures_util::StreamExt;
use omnibus_nats::NatsConfig;
use support::Broker;

fn config(name: &str, subjects: &[&str]) -> stream::Config {
    stream::Config {
        name: name.to_string(),
        subjects: subjects.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

#[tokio::test]
async fn info_advertises_jetstream_and_the_account_answers() {
    let broker = Broker::start().await;
    let client = broker.client().await;
    assert!(client.server_info().jetstream);
    let js = jetstream::new(client);
    let account = js.query_account().await.unwrap();
    assert_eq!(account.streams, 0);
    js.create_stream(config("ORDERS", &["orders.>"]))
        .await
        .unwrap();
    assert_eq!(js.query_account().await.unwrap().streams, 1);
}

/// What every client sends by default (`max_age` 0) means "no age limit", and a service that
/// ensures its stream at each start (the same create again) is answered with the stream.
#[tokio::test]
async fn a_default_stream_keeps_messages_without_age_limit_and_creating_it_again_is_fine() {
    let broker = Broker::start().await;
    let js = jetstream::new(broker.client().await);
    for _ in 0..2 {
        let mut created = js.create_stream(config("APP", &["app.>"])).await.unwrap();
        let info = created.info().await.unwrap();
        assert_eq!(info.config.max_age, Duration::ZERO);
    }
    // Raw, as nats-server words it: the create's own response type.
    let client = broker.client().await;
    let answer = client
        .request(
            "$JS.API.STREAM.CREATE.APP",
            r#"{"name":"APP","subjects":["app.>"]}"#.into(),
        )
        .await
        .unwrap();
    let answer: serde_json::Value = serde_json::from_slice(&answer.payload).unwrap();
    assert_eq!(
        answer["type"],
        "io.nats.jetstream.api.v1.stream_create_response"
    );
    assert_eq!(answer["config"]["max_age"], 0);
}

#[tokio::test]
async fn create_info_names_and_delete_a_stream() {
    let broker = Broker::start().await;
    let js = jetstream::new(broker.client().await);
    let mut created = js
        .create_stream(stream::Config {
            max_age: Duration::from_secs(3600),
            ..config("ORDERS", &["orders.>"])
        })
        .await
        .unwrap();
    let info = created.info().await.unwrap().clone();
    assert_eq!(info.config.name, "ORDERS");
    assert_eq!(info.config.subjects, vec!["orders.>".to_string()]);
    assert_eq!(info.config.max_age, Duration::from_secs(3600));
    assert_eq!(info.state.messages, 0);
    assert_eq!(info.state.first_sequence, 0);
    assert_eq!(info.state.last_sequence, 0);

    // The same config again is answered with the stream; another is refused (10058).
    js.create_stream(stream::Config {
        max_age: Duration::from_secs(3600),
        ..config("ORDERS", &["orders.>"])
    })
    .await
    .unwrap();
    let error = js
        .create_stream(config("ORDERS", &["other.>"]))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("10058"), "{error}");

    // Overlapping subjects of another stream are refused (10065).
    let error = js
        .create_stream(config("MORE", &["orders.eu"]))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("10065"), "{error}");

    let names: Vec<String> = js.stream_names().map(|n| n.unwrap()).collect().await;
    assert_eq!(names, vec!["ORDERS".to_string()]);
    assert_eq!(js.stream_by_subject("orders.eu").await.unwrap(), "ORDERS");
    let listed: Vec<stream::Info> = js.streams().map(|s| s.unwrap()).collect().await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].config.name, "ORDERS");

    assert!(js.delete_stream("ORDERS").await.unwrap().success);
    let error = js.get_stream("ORDERS").await.unwrap_err();
    assert!(error.to_string().contains("10059"), "{error}");
    let Err(error) = js.delete_stream("ORDERS").await else {
        panic!("a deleted stream deleted again");
    };
    assert!(error.to_string().contains("10059"), "{error}");
}

#[tokio::test]
async fn publish_is_acknowledged_with_the_sequence_and_readable_back() {
    let broker = Broker::start().await;
    let js = jetstream::new(broker.client().await);
    let mut orders = js
        .create_stream(config("ORDERS", &["orders.>"]))
        .await
        .unwrap();
    for (index, payload) in ["a", "b", "c"].iter().enumerate() {
        let ack = js
            .publish("orders.new", Bytes::from_static(payload.as_bytes()))
            .await
            .unwrap()
            .await
            .unwrap();
        assert_eq!(ack.stream, "ORDERS");
        assert_eq!(ack.sequence, index as u64 + 1);
        assert!(!ack.duplicate);
    }
    // Acknowledged means stored: the engine's log holds all three.
    assert_eq!(broker.engine.partition_bounds("ORDERS", 0).unwrap(), (0, 3));
    let info = orders.info().await.unwrap();
    assert_eq!(info.state.messages, 3);
    assert_eq!(info.state.first_sequence, 1);
    assert_eq!(info.state.last_sequence, 3);
    assert!(info.state.first_timestamp <= info.state.last_timestamp);

    let message = orders.get_raw_message(2).await.unwrap();
    assert_eq!(message.subject.as_str(), "orders.new");
    assert_eq!(message.payload, "b");
    assert_eq!(message.sequence, 2);
    let last = orders
        .get_last_raw_message_by_subject("orders.new")
        .await
        .unwrap();
    assert_eq!(last.sequence, 3);
    let missing = orders.get_raw_message(9).await.unwrap_err();
    assert!(
        missing.to_string().contains("no message found"),
        "{missing}"
    );

    let purged = orders.purge().await.unwrap();
    assert_eq!(purged.purged, 3);
    let info = orders.info().await.unwrap();
    assert_eq!(info.state.messages, 0);
    assert_eq!(info.state.first_sequence, 4);
    assert_eq!(info.state.last_sequence, 3);
}

#[tokio::test]
async fn a_publish_no_stream_captures_gets_no_responders() {
    let broker = Broker::start().await;
    let js = jetstream::new(broker.client().await);
    let error = js
        .publish("nowhere.at.all", "x".into())
        .await
        .unwrap()
        .await
        .unwrap_err();
    assert_eq!(error.kind(), PublishErrorKind::StreamNotFound, "{error}");
}

#[tokio::test]
async fn a_message_id_seen_within_the_window_is_stored_once() {
    let broker = Broker::start().await;
    let js = jetstream::new(broker.client().await);
    js.create_stream(config("ORDERS", &["orders.>"]))
        .await
        .unwrap();
    let publish = |id: &'static str| {
        js.send_publish(
            "orders.new",
            PublishMessage::build().message_id(id).payload("x".into()),
        )
    };
    let first = publish("order-1").await.unwrap().await.unwrap();
    let again = publish("order-1").await.unwrap().await.unwrap();
    let other = publish("order-2").await.unwrap().await.unwrap();
    assert_eq!((first.sequence, first.duplicate), (1, false));
    assert_eq!((again.sequence, again.duplicate), (1, true));
    assert_eq!((other.sequence, other.duplicate), (2, false));
    assert_eq!(broker.engine.partition_bounds("ORDERS", 0).unwrap(), (0, 2));
}

#[tokio::test]
async fn expected_headers_refuse_what_does_not_hold() {
    let broker = Broker::start().await;
    let js = jetstream::new(broker.client().await);
    js.create_stream(config("ORDERS", &["orders.>"]))
        .await
        .unwrap();
    let send = |message: PublishMessage| async {
        js.send_publish("orders.new", message).await.unwrap().await
    };
    let first = send(
        PublishMessage::build()
            .expected_last_sequence(0)
            .message_id("m1"),
    )
    .await
    .unwrap();
    assert_eq!(first.sequence, 1);
    let wrong = send(PublishMessage::build().expected_last_sequence(0))
        .await
        .unwrap_err();
    assert!(
        wrong.to_string().contains("wrong last sequence: 1"),
        "{wrong}"
    );
    send(PublishMessage::build().expected_last_sequence(1))
        .await
        .unwrap();
    let wrong_stream = send(PublishMessage::build().expected_stream("OTHER"))
        .await
        .unwrap_err();
    assert!(
        wrong_stream
            .to_string()
            .contains("expected stream does not match"),
        "{wrong_stream}"
    );
    let wrong_id = send(PublishMessage::build().expected_last_message_id("nope"))
        .await
        .unwrap_err();
    assert!(
        wrong_id.to_string().contains("wrong last msg ID: m1"),
        "{wrong_id}"
    );
    send(PublishMessage::build().expected_last_message_id("m1"))
        .await
        .unwrap();
    // Per subject: orders.new holds 1, 2 and 3; orders.old nothing.
    send(PublishMessage::build().expected_last_subject_sequence(3))
        .await
        .unwrap();
    let wrong_subject = send(PublishMessage::build().expected_last_subject_sequence(1))
        .await
        .unwrap_err();
    assert!(
        wrong_subject.to_string().contains("wrong last sequence: 4"),
        "{wrong_subject}"
    );
    let old = js
        .send_publish(
            "orders.old",
            PublishMessage::build().expected_last_subject_sequence(0),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    assert_eq!(old.sequence, 5);
    assert_eq!(broker.engine.partition_bounds("ORDERS", 0).unwrap(), (0, 5));
}

#[tokio::test]
async fn streams_and_the_dedup_window_survive_a_restart() {
    let broker = Broker::start().await;
    let js = jetstream::new(broker.client().await);
    js.create_stream(config("ORDERS", &["orders.>"]))
        .await
        .unwrap();
    let ack = js
        .send_publish(
            "orders.new",
            PublishMessage::build()
                .message_id("once")
                .payload("x".into()),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    assert_eq!(ack.sequence, 1);
    drop(js);
    let folder = broker.stop().await;

    let broker = Broker::in_folder(folder, NatsConfig::default()).await;
    let js = jetstream::new(broker.client().await);
    let mut orders = js.get_stream("ORDERS").await.unwrap();
    assert_eq!(orders.info().await.unwrap().state.messages, 1);
    let again = js
        .send_publish(
            "orders.new",
            PublishMessage::build()
                .message_id("once")
                .payload("x".into()),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    assert_eq!((again.sequence, again.duplicate), (1, true));
    let next = js
        .publish("orders.new", "y".into())
        .await
        .unwrap()
        .await
        .unwrap();
    assert_eq!(next.sequence, 2);
}

#[tokio::test]
async fn max_msgs_keeps_the_newest_records() {
    let broker = Broker::start().await;
    let js = jetstream::new(broker.client().await);
    let mut orders = js
        .create_stream(stream::Config {
            max_messages: 3,
            ..config("ORDERS", &["orders.>"])
        })
        .await
        .unwrap();
    for index in 0..5 {
        js.publish("orders.new", format!("m{index}").into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
    let info = orders.info().await.unwrap().clone();
    assert_eq!(info.config.max_messages, 3);
    assert_eq!(
        (
            info.state.messages,
            info.state.first_sequence,
            info.state.last_sequence
        ),
        (3, 3, 5)
    );
    assert_eq!(orders.get_raw_message(3).await.unwrap().payload, "m2");
    // Only discard "old" is served; "new" is refused rather than ignored.
    let error = js
        .create_stream(stream::Config {
            discard: stream::DiscardPolicy::New,
            max_messages: 3,
            ..config("OTHER", &["other.>"])
        })
        .await
        .unwrap_err();
    assert!(error.to_string().contains("10052"), "{error}");
}

#[tokio::test]
async fn direct_get_answers_the_stored_message_itself() {
    let broker = Broker::start().await;
    let js = jetstream::new(broker.client().await);
    let orders = js
        .create_stream(config("ORDERS", &["orders.>"]))
        .await
        .unwrap();
    for payload in ["a", "b"] {
        js.publish("orders.new", payload.into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
    let message = orders.direct_get(2).await.unwrap();
    assert_eq!(message.payload, "b");
    assert_eq!(message.sequence, 2);
    assert_eq!(message.subject.as_str(), "orders.new");
    let missing = orders.direct_get(9).await.unwrap_err();
    assert!(
        missing.to_string().to_lowercase().contains("not found"),
        "{missing}"
    );
    let last = orders
        .direct_get_last_for_subject("orders.new")
        .await
        .unwrap();
    assert_eq!(last.payload, "b");
}

/// STREAM.UPDATE may add and drop subjects, as nats-server allows; one another stream
/// captures is refused (10065), and what was stored stays.
#[tokio::test]
async fn an_update_adds_and_drops_subjects() {
    let broker = Broker::start().await;
    let js = jetstream::new(broker.client().await);
    js.create_stream(config("ORDERS", &["orders.>"]))
        .await
        .unwrap();
    js.create_stream(config("BILLING", &["billing.>"]))
        .await
        .unwrap();
    js.publish("orders.new", "o1".into())
        .await
        .unwrap()
        .await
        .unwrap();
    let updated = js
        .update_stream(config("ORDERS", &["orders.>", "returns.>"]))
        .await
        .unwrap();
    assert_eq!(
        updated.config.subjects,
        vec!["orders.>".to_string(), "returns.>".to_string()]
    );
    let ack = js
        .publish("returns.new", "r1".into())
        .await
        .unwrap()
        .await
        .unwrap();
    assert_eq!((ack.stream.as_str(), ack.sequence), ("ORDERS", 2));

    let error = js
        .update_stream(config("ORDERS", &["orders.>", "billing.eu"]))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("10065"), "{error}");

    // Dropping a subject: its publishes find no stream any more; the records stay.
    js.update_stream(config("ORDERS", &["returns.>"]))
        .await
        .unwrap();
    let error = js
        .publish("orders.new", "o2".into())
        .await
        .unwrap()
        .await
        .unwrap_err();
    assert!(error.to_string().contains("no stream found"), "{error}");
    let mut orders = js.get_stream("ORDERS").await.unwrap();
    assert_eq!(orders.info().await.unwrap().state.messages, 2);
}
