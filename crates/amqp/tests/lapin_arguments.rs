//! Queue arguments through lapin: TTL (queue and message) with dead-lettering, max length
//! with each overflow, priorities, auto-delete.

#[allow(dead_code)]
mod support;

use std::time::Duration;

use futures_util::StreamExt;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable};
use lapin::BasicProperties;
use support::Broker;

async fn declare(channel: &lapin::Channel, name: &str, arguments: &[(&str, AMQPValue)]) {
    let mut table = FieldTable::default();
    for (key, value) in arguments {
        table.insert((*key).into(), value.clone());
    }
    channel
        .queue_declare(name.into(), QueueDeclareOptions::default(), table)
        .await
        .unwrap();
}

async fn publish(channel: &lapin::Channel, queue: &str, body: &str, properties: BasicProperties) {
    channel
        .basic_publish(
            "".into(),
            queue.into(),
            BasicPublishOptions::default(),
            body.as_bytes(),
            properties,
        )
        .await
        .unwrap()
        .await
        .unwrap();
}

async fn get(channel: &lapin::Channel, queue: &str) -> Option<lapin::message::BasicGetMessage> {
    channel
        .basic_get(queue.into(), BasicGetOptions { no_ack: true })
        .await
        .unwrap()
}

async fn get_within(channel: &lapin::Channel, queue: &str) -> lapin::message::BasicGetMessage {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(message) = get(channel, queue).await {
            return message;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "nothing on {queue} within 5 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn text(value: &str) -> AMQPValue {
    AMQPValue::LongString(value.into())
}

#[tokio::test]
async fn expired_messages_are_dead_lettered_with_reason_expired() {
    let broker = Broker::start().await;
    let connection = broker.connect().await;
    let channel = connection.create_channel().await.unwrap();
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    declare(&channel, "expired", &[]).await;
    declare(
        &channel,
        "short",
        &[
            ("x-message-ttl", AMQPValue::LongInt(100)),
            ("x-dead-letter-exchange", text("")),
            ("x-dead-letter-routing-key", text("expired")),
        ],
    )
    .await;
    publish(&channel, "short", "queue ttl", BasicProperties::default()).await;
    declare(
        &channel,
        "per-message",
        &[
            ("x-dead-letter-exchange", text("")),
            ("x-dead-letter-routing-key", text("expired")),
        ],
    )
    .await;
    publish(
        &channel,
        "per-message",
        "message ttl",
        BasicProperties::default().with_expiration("100".into()),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(get(&channel, "short").await.is_none());
    assert!(get(&channel, "per-message").await.is_none());
    let mut bodies = Vec::new();
    for _ in 0..2 {
        let letter = get_within(&channel, "expired").await;
        let headers = letter.delivery.properties.headers().clone().unwrap();
        assert_eq!(
            headers.inner().get("x-first-death-reason"),
            Some(&text("expired"))
        );
        bodies.push(String::from_utf8(letter.delivery.data).unwrap());
    }
    bodies.sort();
    assert_eq!(bodies, vec!["message ttl", "queue ttl"]);
    broker.stop().await;
}

#[tokio::test]
async fn max_length_drops_the_head_or_rejects_the_publish() {
    let broker = Broker::start().await;
    let connection = broker.connect().await;
    let channel = connection.create_channel().await.unwrap();
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    declare(&channel, "head", &[("x-max-length", AMQPValue::LongInt(2))]).await;
    for body in ["m1", "m2", "m3"] {
        publish(&channel, "head", body, BasicProperties::default()).await;
    }
    assert_eq!(get(&channel, "head").await.unwrap().delivery.data, b"m2");
    assert_eq!(get(&channel, "head").await.unwrap().delivery.data, b"m3");
    declare(
        &channel,
        "refuse",
        &[
            ("x-max-length", AMQPValue::LongInt(1)),
            ("x-overflow", text("reject-publish")),
        ],
    )
    .await;
    publish(&channel, "refuse", "kept", BasicProperties::default()).await;
    let refused = channel
        .basic_publish(
            "".into(),
            "refuse".into(),
            BasicPublishOptions::default(),
            b"refused",
            BasicProperties::default(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    assert!(refused.is_nack());
    assert_eq!(
        get(&channel, "refuse").await.unwrap().delivery.data,
        b"kept"
    );
    broker.stop().await;
}

#[tokio::test]
async fn higher_priorities_are_delivered_first() {
    let broker = Broker::start().await;
    let connection = broker.connect().await;
    let channel = connection.create_channel().await.unwrap();
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    declare(
        &channel,
        "ranked",
        &[("x-max-priority", AMQPValue::ShortShortUInt(10))],
    )
    .await;
    for (body, priority) in [("low", 1), ("high", 9), ("middle", 5), ("none", 0)] {
        publish(
            &channel,
            "ranked",
            body,
            BasicProperties::default().with_priority(priority),
        )
        .await;
    }
    let mut order = Vec::new();
    while let Some(message) = get(&channel, "ranked").await {
        order.push(String::from_utf8(message.delivery.data).unwrap());
    }
    assert_eq!(order, vec!["high", "middle", "low", "none"]);
    broker.stop().await;
}

#[tokio::test]
async fn an_auto_delete_queue_goes_when_its_last_consumer_cancels() {
    let broker = Broker::start().await;
    let connection = broker.connect().await;
    let channel = connection.create_channel().await.unwrap();
    channel
        .queue_declare(
            "temporary".into(),
            QueueDeclareOptions {
                auto_delete: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    let mut consumer = channel
        .basic_consume(
            "temporary".into(),
            "only".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    channel
        .basic_publish(
            "".into(),
            "temporary".into(),
            BasicPublishOptions::default(),
            b"one",
            BasicProperties::default(),
        )
        .await
        .unwrap();
    let delivery = tokio::time::timeout(Duration::from_secs(5), consumer.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    delivery.ack(BasicAckOptions::default()).await.unwrap();
    channel
        .basic_cancel("only".into(), BasicCancelOptions::default())
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while broker.engine.queue_info("temporary").is_ok() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the auto-delete queue outlived its consumer"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    broker.stop().await;
}

#[tokio::test]
async fn a_redeclaration_with_a_different_argument_is_refused_and_the_same_one_is_not() {
    let broker = Broker::start().await;
    let connection = broker.connect().await;
    let channel = connection.create_channel().await.unwrap();
    let ttl = [
        ("x-message-ttl", AMQPValue::LongInt(1000)),
        ("x-dead-letter-exchange", text("dlx")),
    ];
    declare(&channel, "strict", &ttl).await;
    // The same arguments again (kombu re-declares before publishing): fine.
    declare(&channel, "strict", &ttl).await;
    // An argument left out is compared too, as RabbitMQ does.
    let refused = channel
        .queue_declare(
            "strict".into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        )
        .await;
    assert!(
        format!("{refused:?}").contains(
            "PRECONDITION_FAILED - inequivalent arg 'x-message-ttl' for queue 'strict' in vhost '/': received none but current is the value '1000' of type 'signedint'"
        ),
        "{refused:?}"
    );
    let channel = connection.create_channel().await.unwrap();
    let mut other = FieldTable::default();
    other.insert("x-message-ttl".into(), AMQPValue::LongInt(5000));
    let refused = channel
        .queue_declare("strict".into(), QueueDeclareOptions::default(), other)
        .await;
    assert!(
        format!("{refused:?}").contains("inequivalent arg 'x-message-ttl'"),
        "{refused:?}"
    );
    let channel = connection.create_channel().await.unwrap();
    let mut other_exchange = FieldTable::default();
    other_exchange.insert("x-message-ttl".into(), AMQPValue::LongInt(1000));
    other_exchange.insert("x-dead-letter-exchange".into(), text("elsewhere"));
    let refused = channel
        .queue_declare(
            "strict".into(),
            QueueDeclareOptions::default(),
            other_exchange,
        )
        .await;
    assert!(
        format!("{refused:?}").contains(
            "inequivalent arg 'x-dead-letter-exchange' for queue 'strict' in vhost '/': received 'elsewhere' but current is 'dlx'"
        ),
        "{refused:?}"
    );
    broker.stop().await;
}

/// The flags are compared too: a durable queue declared again as transient, or an
/// auto-delete one declared again without it, is 406 with RabbitMQ's wording. A queue made
/// through another door (the engine directly here, as the HTTP API does) is compared only on
/// the arguments sent, so it can be declared by name.
#[tokio::test]
async fn a_redeclaration_with_other_flags_is_refused_and_a_foreign_queue_is_declared_by_name() {
    let broker = Broker::start().await;
    let connection = broker.connect().await;
    let durable = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    let channel = connection.create_channel().await.unwrap();
    channel
        .queue_declare("kept".into(), durable, FieldTable::default())
        .await
        .unwrap();
    let refused = channel
        .queue_declare(
            "kept".into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        )
        .await;
    assert!(
        format!("{refused:?}").contains(
            "PRECONDITION_FAILED - inequivalent arg 'durable' for queue 'kept' in vhost '/': received 'false' but current is 'true'"
        ),
        "{refused:?}"
    );
    let channel = connection.create_channel().await.unwrap();
    let auto_delete = QueueDeclareOptions {
        auto_delete: true,
        ..Default::default()
    };
    channel
        .queue_declare("passing".into(), auto_delete, FieldTable::default())
        .await
        .unwrap();
    channel
        .queue_declare("passing".into(), auto_delete, FieldTable::default())
        .await
        .unwrap();
    let refused = channel
        .queue_declare(
            "passing".into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        )
        .await;
    assert!(
        format!("{refused:?}").contains("inequivalent arg 'auto_delete' for queue 'passing'"),
        "{refused:?}"
    );

    broker
        .engine
        .create_queue(omnibus_engine::queue::QueueSpec {
            name: "from-http".into(),
            ttl_ms: Some(60_000),
            max_length: Some(10),
            ..Default::default()
        })
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    channel
        .queue_declare("from-http".into(), durable, FieldTable::default())
        .await
        .unwrap();
    let mut other = FieldTable::default();
    other.insert("x-max-length".into(), AMQPValue::LongInt(5));
    let refused = channel
        .queue_declare("from-http".into(), durable, other)
        .await;
    assert!(
        format!("{refused:?}").contains(
            "inequivalent arg 'x-max-length' for queue 'from-http' in vhost '/': received '5' but current is '10'"
        ),
        "{refused:?}"
    );
    broker.stop().await;
}

#[tokio::test]
async fn a_declared_queue_maps_onto_an_engine_queue_as_rabbitmq_behaves() {
    let broker = Broker::start().await;
    let connection = broker.connect().await;
    let channel = connection.create_channel().await.unwrap();
    declare(&channel, "classic", &[]).await;
    declare(
        &channel,
        "limited",
        &[("x-delivery-limit", AMQPValue::LongInt(3))],
    )
    .await;
    let classic = broker.engine.queue_info("classic").unwrap().config;
    // Redelivered without bound, at once, held by a consumer up to RabbitMQ's
    // consumer_timeout; acks ride the next group commit (RabbitMQ does not sync them).
    assert_eq!(classic.max_deliver, u32::MAX);
    assert_eq!(classic.lease_ms, 30 * 60 * 1000);
    assert_eq!(
        classic.backoff,
        omnibus_engine::queue::Backoff::Fixed { delay_ms: 0 }
    );
    assert_eq!(
        classic.completions,
        omnibus_engine::queue::Completions::Batched
    );
    assert_eq!(
        broker
            .engine
            .queue_info("limited")
            .unwrap()
            .config
            .max_deliver,
        4
    );
    broker.stop().await;
}
