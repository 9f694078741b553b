//! The Rust AMQP client, lapin, against the AMQP door over a real socket.

mod support;

use std::time::Duration;

use futures_util::StreamExt;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, ExchangeKind};
use support::client::{bind, consume, declare, exchange, next, WAIT};
use support::Broker;

async fn quiet(consumer: &mut lapin::Consumer) {
    let more = tokio::time::timeout(Duration::from_millis(400), consumer.next()).await;
    assert!(more.is_err(), "unexpected delivery: {more:?}");
}

#[tokio::test]
async fn a_topic_binding_routes_and_properties_arrive_as_published() {
    let broker = Broker::start().await;
    let connection = broker.connect().await;
    let channel = connection.create_channel().await.unwrap();
    exchange(&channel, "events", ExchangeKind::Topic).await;
    declare(&channel, "orders", FieldTable::default()).await;
    bind(&channel, "orders", "events", "order.#").await;
    let mut headers = FieldTable::default();
    headers.insert("tenant".into(), AMQPValue::LongString("acme".into()));
    headers.insert("attempt".into(), AMQPValue::LongLongInt(-3));
    let properties = BasicProperties::default()
        .with_content_type("application/json".into())
        .with_correlation_id("c-1".into())
        .with_delivery_mode(2)
        .with_headers(headers.clone());
    for key in ["order.created.eu", "user.created"] {
        channel
            .basic_publish(
                "events".into(),
                key.into(),
                BasicPublishOptions::default(),
                b"{\"id\":1}",
                properties.clone(),
            )
            .await
            .unwrap();
    }
    let mut consumer = consume(&channel, "orders", "c1").await;
    let delivery = next(&mut consumer).await;
    assert_eq!(delivery.data, b"{\"id\":1}");
    assert_eq!(delivery.exchange.as_str(), "events");
    assert_eq!(delivery.routing_key.as_str(), "order.created.eu");
    assert!(!delivery.redelivered);
    assert_eq!(
        delivery
            .properties
            .content_type()
            .as_ref()
            .unwrap()
            .as_str(),
        "application/json"
    );
    assert_eq!(
        delivery
            .properties
            .correlation_id()
            .as_ref()
            .unwrap()
            .as_str(),
        "c-1"
    );
    assert_eq!(delivery.properties.headers().as_ref(), Some(&headers));
    delivery.ack(BasicAckOptions::default()).await.unwrap();
    quiet(&mut consumer).await;
    connection.close(200, "done".into()).await.unwrap();
    broker.stop().await;
}

#[tokio::test]
async fn confirms_ack_publishes_and_an_unroutable_mandatory_message_comes_back_first() {
    let broker = Broker::start().await;
    let connection = broker.connect().await;
    let channel = connection.create_channel().await.unwrap();
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    declare(&channel, "jobs", FieldTable::default()).await;
    let confirm = channel
        .basic_publish(
            "".into(),
            "jobs".into(),
            BasicPublishOptions::default(),
            b"one",
            BasicProperties::default(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    assert!(confirm.is_ack());
    assert!(broker.engine.queue_info("jobs").unwrap().ready == 1);
    let returned = channel
        .basic_publish(
            "".into(),
            "nowhere".into(),
            BasicPublishOptions {
                mandatory: true,
                ..Default::default()
            },
            b"lost",
            BasicProperties::default(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    assert!(returned.is_ack());
    let message = returned
        .take_message()
        .expect("the message came back with basic.return");
    assert_eq!(message.reply_code, 312);
    assert_eq!(message.delivery.data, b"lost");
    broker.stop().await;
}

#[tokio::test]
async fn a_nack_with_requeue_comes_back_redelivered() {
    let broker = Broker::start().await;
    let connection = broker.connect().await;
    let channel = connection.create_channel().await.unwrap();
    declare(&channel, "retry", FieldTable::default()).await;
    channel
        .basic_publish(
            "".into(),
            "retry".into(),
            BasicPublishOptions::default(),
            b"again",
            BasicProperties::default(),
        )
        .await
        .unwrap();
    let mut consumer = consume(&channel, "retry", "c").await;
    let first = next(&mut consumer).await;
    assert!(!first.redelivered);
    first
        .nack(BasicNackOptions {
            requeue: true,
            ..Default::default()
        })
        .await
        .unwrap();
    let second = next(&mut consumer).await;
    assert!(second.redelivered);
    assert_eq!(second.data, b"again");
    second.ack(BasicAckOptions::default()).await.unwrap();
    broker.stop().await;
}

#[tokio::test]
async fn a_reject_without_requeue_goes_to_the_dead_letter_exchange_with_x_death() {
    let broker = Broker::start().await;
    let connection = broker.connect().await;
    let channel = connection.create_channel().await.unwrap();
    exchange(&channel, "dlx", ExchangeKind::Fanout).await;
    declare(&channel, "dead", FieldTable::default()).await;
    bind(&channel, "dead", "dlx", "").await;
    let mut arguments = FieldTable::default();
    arguments.insert(
        "x-dead-letter-exchange".into(),
        AMQPValue::LongString("dlx".into()),
    );
    declare(&channel, "work", arguments).await;
    channel
        .basic_publish(
            "".into(),
            "work".into(),
            BasicPublishOptions::default(),
            b"poison",
            BasicProperties::default(),
        )
        .await
        .unwrap();
    let mut work = consume(&channel, "work", "w").await;
    next(&mut work)
        .await
        .reject(BasicRejectOptions { requeue: false })
        .await
        .unwrap();
    let mut dead = consume(&channel, "dead", "d").await;
    let letter = next(&mut dead).await;
    assert_eq!(letter.data, b"poison");
    assert_eq!(letter.exchange.as_str(), "dlx");
    let headers = letter
        .properties
        .headers()
        .clone()
        .expect("x-death headers");
    let Some(AMQPValue::FieldArray(deaths)) = headers.inner().get("x-death") else {
        panic!("no x-death in {headers:?}");
    };
    let AMQPValue::FieldTable(death) = &deaths.as_slice()[0] else {
        panic!("x-death holds tables");
    };
    let field = |name: &str| death.inner().get(name).cloned();
    assert_eq!(field("count"), Some(AMQPValue::LongLongInt(1)));
    assert_eq!(
        field("reason"),
        Some(AMQPValue::LongString("rejected".into()))
    );
    assert_eq!(field("queue"), Some(AMQPValue::LongString("work".into())));
    assert_eq!(
        headers.inner().get("x-first-death-reason"),
        Some(&AMQPValue::LongString("rejected".into()))
    );
    broker.stop().await;
}

#[tokio::test]
async fn prefetch_bounds_unacknowledged_deliveries() {
    let broker = Broker::start().await;
    let connection = broker.connect().await;
    let channel = connection.create_channel().await.unwrap();
    declare(&channel, "bounded", FieldTable::default()).await;
    for i in 0..5 {
        channel
            .basic_publish(
                "".into(),
                "bounded".into(),
                BasicPublishOptions::default(),
                format!("m{i}").as_bytes(),
                BasicProperties::default(),
            )
            .await
            .unwrap();
    }
    channel
        .basic_qos(2, BasicQosOptions::default())
        .await
        .unwrap();
    let mut consumer = consume(&channel, "bounded", "c").await;
    let first = next(&mut consumer).await;
    let second = next(&mut consumer).await;
    quiet(&mut consumer).await;
    first.ack(BasicAckOptions::default()).await.unwrap();
    let third = next(&mut consumer).await;
    assert_eq!(third.data, b"m2");
    quiet(&mut consumer).await;
    second
        .ack(BasicAckOptions { multiple: false })
        .await
        .unwrap();
    third.ack(BasicAckOptions::default()).await.unwrap();
    assert_eq!(next(&mut consumer).await.data, b"m3");
    broker.stop().await;
}

#[tokio::test]
async fn basic_get_answers_get_ok_then_get_empty() {
    let broker = Broker::start().await;
    let connection = broker.connect().await;
    let channel = connection.create_channel().await.unwrap();
    declare(&channel, "pull", FieldTable::default()).await;
    channel
        .basic_publish(
            "".into(),
            "pull".into(),
            BasicPublishOptions::default(),
            b"only",
            BasicProperties::default(),
        )
        .await
        .unwrap();
    let got = channel
        .basic_get("pull".into(), BasicGetOptions::default())
        .await
        .unwrap()
        .expect("get-ok");
    assert_eq!(got.delivery.data, b"only");
    assert_eq!(got.message_count, 0);
    got.delivery.ack(BasicAckOptions::default()).await.unwrap();
    let empty = channel
        .basic_get("pull".into(), BasicGetOptions::default())
        .await
        .unwrap();
    assert!(empty.is_none());
    broker.stop().await;
}

#[tokio::test]
async fn unacked_messages_of_a_dropped_connection_are_redelivered() {
    let broker = Broker::start().await;
    let first = broker.connect().await;
    let channel = first.create_channel().await.unwrap();
    declare(&channel, "held", FieldTable::default()).await;
    channel
        .basic_publish(
            "".into(),
            "held".into(),
            BasicPublishOptions::default(),
            b"x",
            BasicProperties::default(),
        )
        .await
        .unwrap();
    let mut consumer = consume(&channel, "held", "c").await;
    let held = next(&mut consumer).await;
    assert!(!held.redelivered);
    // Gone without acking (close also ends the TCP connection).
    first.close(200, "bye".into()).await.unwrap();
    let second = broker.connect().await;
    let channel = second.create_channel().await.unwrap();
    let mut consumer = consume(&channel, "held", "c").await;
    let again = next(&mut consumer).await;
    assert!(again.redelivered);
    broker.stop().await;
}

#[tokio::test]
async fn an_unknown_delivery_tag_closes_only_its_channel_with_406() {
    let broker = Broker::start().await;
    let connection = broker.connect().await;
    let bad = connection.create_channel().await.unwrap();
    let good = connection.create_channel().await.unwrap();
    bad.basic_ack(99, BasicAckOptions::default()).await.unwrap();
    // The channel exception arrives asynchronously; the next call on the channel fails.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let error = bad
        .queue_declare(
            "x".into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap_err();
    // The server closed the channel (the 406 itself is checked on raw frames in wire.rs).
    assert!(format!("{error:?}").contains("Closed"), "{error:?}");
    good.queue_declare(
        "still-fine".into(),
        QueueDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    let missing = good
        .queue_declare(
            "absent".into(),
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap_err();
    assert!(
        format!("{missing:?}").contains("NOT_FOUND") || format!("{missing:?}").contains("404"),
        "{missing:?}"
    );
    assert!(connection.status().connected());
    broker.stop().await;
}

#[tokio::test]
async fn a_durable_queue_and_its_persistent_messages_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let broker = Broker::start_in(dir.path(), Default::default()).await;
        let connection = broker.connect().await;
        let channel = connection.create_channel().await.unwrap();
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .unwrap();
        declare(&channel, "kept", FieldTable::default()).await;
        channel
            .queue_declare(
                "transient".into(),
                QueueDeclareOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
        channel
            .exchange_declare(
                "routes".into(),
                ExchangeKind::Direct,
                ExchangeDeclareOptions {
                    durable: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap();
        bind(&channel, "kept", "routes", "k").await;
        let confirm = channel
            .basic_publish(
                "routes".into(),
                "k".into(),
                BasicPublishOptions::default(),
                b"durable",
                BasicProperties::default().with_delivery_mode(2),
            )
            .await
            .unwrap()
            .await
            .unwrap();
        assert!(confirm.is_ack());
        drop(connection);
        broker.stop().await;
    }
    let broker = Broker::start_in(dir.path(), Default::default()).await;
    let connection = broker.connect().await;
    let channel = connection.create_channel().await.unwrap();
    let declared = channel
        .queue_declare(
            "kept".into(),
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    assert_eq!(declared.message_count(), 1);
    // A non-durable queue does not outlive the broker (RabbitMQ's rule).
    assert!(broker.engine.queue_info("transient").is_err());
    let got = channel
        .basic_get("kept".into(), BasicGetOptions { no_ack: true })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.delivery.data, b"durable");
    channel
        .basic_publish(
            "routes".into(),
            "k".into(),
            BasicPublishOptions::default(),
            b"after",
            BasicProperties::default(),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let got = channel
        .basic_get("kept".into(), BasicGetOptions { no_ack: true })
        .await
        .unwrap();
    assert_eq!(got.expect("the binding survived").delivery.data, b"after");
    broker.stop().await;
}

#[tokio::test]
async fn a_global_prefetch_bounds_all_consumers_of_the_channel_together() {
    let broker = Broker::start().await;
    let connection = broker.connect().await;
    let channel = connection.create_channel().await.unwrap();
    declare(&channel, "shared-a", FieldTable::default()).await;
    declare(&channel, "shared-b", FieldTable::default()).await;
    for queue in ["shared-a", "shared-b"] {
        for i in 0..3 {
            channel
                .basic_publish(
                    "".into(),
                    queue.into(),
                    BasicPublishOptions::default(),
                    format!("{queue}-{i}").as_bytes(),
                    BasicProperties::default(),
                )
                .await
                .unwrap();
        }
    }
    channel
        .basic_qos(2, BasicQosOptions { global: true })
        .await
        .unwrap();
    let mut a = consume(&channel, "shared-a", "a").await;
    let mut b = consume(&channel, "shared-b", "b").await;
    let mut held = Vec::new();
    // Two deliveries in all, whichever consumers they go to.
    let deadline = tokio::time::Instant::now() + WAIT;
    while held.len() < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "fewer than 2 deliveries"
        );
        tokio::select! {
            Some(Ok(delivery)) = a.next() => held.push(delivery),
            Some(Ok(delivery)) = b.next() => held.push(delivery),
            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
        }
    }
    quiet(&mut a).await;
    quiet(&mut b).await;
    held.remove(0)
        .ack(BasicAckOptions::default())
        .await
        .unwrap();
    let more = tokio::select! {
        Some(Ok(delivery)) = a.next() => delivery,
        Some(Ok(delivery)) = b.next() => delivery,
        _ = tokio::time::sleep(WAIT) => panic!("no delivery after an ack freed the channel's prefetch"),
    };
    assert!(!more.redelivered);
    broker.stop().await;
}

#[tokio::test]
async fn basic_recover_requeues_every_unacknowledged_delivery() {
    let broker = Broker::start().await;
    let connection = broker.connect().await;
    let channel = connection.create_channel().await.unwrap();
    declare(&channel, "recover", FieldTable::default()).await;
    channel
        .basic_publish(
            "".into(),
            "recover".into(),
            BasicPublishOptions::default(),
            b"again",
            BasicProperties::default(),
        )
        .await
        .unwrap();
    let mut consumer = consume(&channel, "recover", "c").await;
    assert!(!next(&mut consumer).await.redelivered);
    channel
        .basic_recover(BasicRecoverOptions { requeue: true })
        .await
        .unwrap();
    let again = next(&mut consumer).await;
    assert!(again.redelivered);
    assert_eq!(again.data, b"again");
    broker.stop().await;
}

#[tokio::test]
async fn an_exclusive_consumer_holds_its_queue_and_internal_exchanges_refuse_publishes() {
    let broker = Broker::start().await;
    let connection = broker.connect().await;
    let first = connection.create_channel().await.unwrap();
    declare(&first, "sole", FieldTable::default()).await;
    // Kept: lapin cancels a consumer it drops.
    let _owner = first
        .basic_consume(
            "sole".into(),
            "owner".into(),
            BasicConsumeOptions {
                exclusive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    let second = connection.create_channel().await.unwrap();
    let refused = second
        .basic_consume(
            "sole".into(),
            "other".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await;
    assert!(
        format!("{refused:?}").contains("ACCESS_REFUSED"),
        "{refused:?}"
    );
    first
        .basic_cancel("owner".into(), BasicCancelOptions::default())
        .await
        .unwrap();
    let third = connection.create_channel().await.unwrap();
    let _next = third
        .basic_consume(
            "sole".into(),
            "next".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();

    third
        .exchange_declare(
            "inner".into(),
            ExchangeKind::Fanout,
            ExchangeDeclareOptions {
                internal: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    // The channel.close's reason reaches lapin's connection events whatever the timing.
    let mut events = connection.events_listener();
    third
        .basic_publish(
            "inner".into(),
            "".into(),
            BasicPublishOptions::default(),
            b"x",
            BasicProperties::default(),
        )
        .await
        .unwrap();
    let closed = tokio::time::timeout(WAIT, async {
        while let Some(event) = events.next().await {
            if let lapin::Event::Error(error) = event {
                return format!("{error:?}");
            }
        }
        String::new()
    })
    .await
    .expect("the channel is closed with an error");
    assert!(
        closed.contains("ACCESS_REFUSED - cannot publish to internal exchange"),
        "the channel was closed with 403: {closed}"
    );
    assert!(connection.status().connected());
    broker.stop().await;
}

#[tokio::test]
async fn direct_reply_to_carries_a_reply_straight_to_the_requester() {
    let broker = Broker::start().await;
    let connection = broker.connect().await;
    let requester = connection.create_channel().await.unwrap();
    declare(&requester, "rpc", FieldTable::default()).await;
    let mut replies = requester
        .basic_consume(
            "amq.rabbitmq.reply-to".into(),
            "replies".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    requester
        .basic_publish(
            "".into(),
            "rpc".into(),
            BasicPublishOptions::default(),
            b"ping",
            BasicProperties::default()
                .with_reply_to("amq.rabbitmq.reply-to".into())
                .with_correlation_id("c-7".into()),
        )
        .await
        .unwrap();
    let responder = broker.connect().await;
    let channel = responder.create_channel().await.unwrap();
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    let request = loop {
        if let Some(got) = channel
            .basic_get("rpc".into(), BasicGetOptions { no_ack: true })
            .await
            .unwrap()
        {
            break got;
        }
        assert!(tokio::time::Instant::now() < deadline, "no request");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let reply_to = request.delivery.properties.reply_to().clone().unwrap();
    assert!(
        reply_to.as_str().starts_with("amq.rabbitmq.reply-to."),
        "{reply_to:?}"
    );
    let confirm = channel
        .basic_publish(
            "".into(),
            reply_to.clone(),
            BasicPublishOptions {
                mandatory: true,
                ..Default::default()
            },
            b"pong",
            BasicProperties::default().with_correlation_id("c-7".into()),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    assert!(
        confirm.is_ack() && confirm.take_message().is_none(),
        "the reply was routed"
    );
    let reply = next(&mut replies).await;
    assert_eq!(reply.data, b"pong");
    assert_eq!(reply.routing_key.as_str(), reply_to.as_str());
    assert_eq!(
        reply.properties.correlation_id().as_ref().unwrap().as_str(),
        "c-7"
    );
    // Nobody waits on an unknown token: a mandatory reply comes back.
    let lost = channel
        .basic_publish(
            "".into(),
            "amq.rabbitmq.reply-to.nobody".into(),
            BasicPublishOptions {
                mandatory: true,
                ..Default::default()
            },
            b"lost",
            BasicProperties::default(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    assert!(lost.take_message().is_some());
    broker.stop().await;
}
