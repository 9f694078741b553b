//! The AMQP door's queue behaviours beyond the first pass, with lapin over a real socket:
//! push delivery to an idle consumer, exchange-to-exchange bindings, alternate exchanges,
//! and the queue arguments added later.

mod support;

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, ExchangeKind};
use support::client::{bind, consume, declare, next};
use support::Broker;

async fn publish(channel: &lapin::Channel, exchange: &str, key: &str, body: &[u8]) {
    channel
        .basic_publish(
            exchange.into(),
            key.into(),
            BasicPublishOptions::default(),
            body,
            BasicProperties::default(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
}

/// An idle consumer is woken by the publish itself, not by a poll: each of several
/// publishes, sent after the consumer has been idle for longer than any poll interval,
/// arrives well under 50 ms after its publisher confirm (a loose bound: a behaviour test,
/// not a benchmark). Measured from the confirm, which comes once the message is fsynced and
/// ready, so the disk's fsync time on a busy machine is not counted.
#[tokio::test]
async fn an_idle_consumer_receives_a_publish_at_once() {
    let broker = Broker::start().await;
    let connection = broker.connect().await;
    let channel = connection.create_channel().await.unwrap();
    declare(&channel, "idle", FieldTable::default()).await;
    let mut consumer = consume(&channel, "idle", "c1").await;
    let publisher = connection.create_channel().await.unwrap();
    publisher
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let mut slowest = Duration::ZERO;
    for round in 0..5u8 {
        // Idle long enough that a polling consumer would be mid-sleep.
        tokio::time::sleep(Duration::from_millis(120 + 37 * u64::from(round))).await;
        publish(&publisher, "", "idle", &[round]).await;
        let confirmed = Instant::now();
        let delivery = next(&mut consumer).await;
        slowest = slowest.max(confirmed.elapsed());
        assert_eq!(delivery.data, vec![round]);
        delivery.ack(BasicAckOptions::default()).await.unwrap();
    }
    assert!(
        slowest < Duration::from_millis(50),
        "an idle consumer received a publish {slowest:?} after its confirm"
    );
    connection.close(200, "bye".into()).await.unwrap();
    broker.stop().await;
}

/// A consumer cancelled while idle takes no message with it: the next publish is there for
/// basic.get at once, first attempt (not leased by the stopping consumer and requeued
/// `redelivered`, as a consumer in a long poll would).
#[tokio::test]
async fn a_consumer_cancelled_while_idle_leaves_the_next_message_untouched() {
    let broker = Broker::start().await;
    let connection = broker.connect().await;
    let channel = connection.create_channel().await.unwrap();
    declare(&channel, "cancelled", FieldTable::default()).await;
    for round in 0..3u8 {
        let tag = format!("c{round}");
        let _consumer = consume(&channel, "cancelled", &tag).await;
        // Idle, waiting for a message.
        tokio::time::sleep(Duration::from_millis(30)).await;
        channel
            .basic_cancel(tag.as_str().into(), BasicCancelOptions::default())
            .await
            .unwrap();
        publish(&channel, "", "cancelled", &[round]).await;
        // Time for a stopping consumer to lease it, if it still could.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let got = channel
            .basic_get("cancelled".into(), BasicGetOptions::default())
            .await
            .unwrap()
            .expect("the message is ready, not leased by the cancelled consumer");
        assert_eq!(got.delivery.data, vec![round]);
        assert!(
            !got.delivery.redelivered,
            "no client saw it before: it must not be flagged redelivered"
        );
        got.delivery.ack(BasicAckOptions::default()).await.unwrap();
    }
    connection.close(200, "bye".into()).await.unwrap();
    broker.stop().await;
}

async fn exchange(channel: &lapin::Channel, name: &str, kind: ExchangeKind, arguments: FieldTable) {
    channel
        .exchange_declare(
            name.into(),
            kind,
            ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            },
            arguments,
        )
        .await
        .unwrap();
}

async fn get(channel: &lapin::Channel, queue: &str) -> Option<Vec<u8>> {
    let got = channel
        .basic_get(queue.into(), BasicGetOptions { no_ack: true })
        .await
        .unwrap();
    got.map(|message| message.delivery.data)
}

/// exchange.bind routes what reaches the source on through the destination's bindings
/// (a cycle of bindings delivers once), exchange.unbind stops it, a missing end is 404
/// (the capability is checked in `wire.rs`).
#[tokio::test]
async fn exchange_to_exchange_bindings_route_on_and_unbind() {
    let broker = Broker::start().await;
    let connection = broker.connect().await;
    let channel = connection.create_channel().await.unwrap();
    exchange(
        &channel,
        "front",
        ExchangeKind::Topic,
        FieldTable::default(),
    )
    .await;
    exchange(
        &channel,
        "audit-all",
        ExchangeKind::Fanout,
        FieldTable::default(),
    )
    .await;
    declare(&channel, "audit", FieldTable::default()).await;
    bind(&channel, "audit", "audit-all", "").await;
    channel
        .exchange_bind(
            "audit-all".into(),
            "front".into(),
            "order.*".into(),
            ExchangeBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    // And back: a cycle.
    channel
        .exchange_bind(
            "front".into(),
            "audit-all".into(),
            "".into(),
            ExchangeBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    publish(&channel, "front", "order.created", b"one").await;
    publish(&channel, "front", "user.created", b"not an order").await;
    assert_eq!(get(&channel, "audit").await, Some(b"one".to_vec()));
    assert_eq!(
        get(&channel, "audit").await,
        None,
        "delivered once, and only orders"
    );

    channel
        .exchange_unbind(
            "audit-all".into(),
            "front".into(),
            "order.*".into(),
            ExchangeUnbindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    publish(&channel, "front", "order.created", b"two").await;
    assert_eq!(get(&channel, "audit").await, None, "unbound");

    let missing = channel
        .exchange_bind(
            "nowhere".into(),
            "front".into(),
            "".into(),
            ExchangeBindOptions::default(),
            FieldTable::default(),
        )
        .await;
    assert!(
        format!("{missing:?}").contains("NOT_FOUND - no exchange 'nowhere'"),
        "{missing:?}"
    );
    assert!(connection.status().connected());
    broker.stop().await;
}

/// A message no binding of an exchange matches goes to its `alternate-exchange`; a
/// `mandatory` one routed there is not returned; one matched by a binding does not go there.
#[tokio::test]
async fn an_alternate_exchange_takes_what_no_binding_matched() {
    let broker = Broker::start().await;
    let connection = broker.connect().await;
    let channel = connection.create_channel().await.unwrap();
    exchange(
        &channel,
        "leftovers",
        ExchangeKind::Fanout,
        FieldTable::default(),
    )
    .await;
    let mut arguments = FieldTable::default();
    arguments.insert(
        "alternate-exchange".into(),
        AMQPValue::LongString("leftovers".into()),
    );
    exchange(&channel, "orders", ExchangeKind::Direct, arguments).await;
    declare(&channel, "created", FieldTable::default()).await;
    declare(&channel, "unrouted", FieldTable::default()).await;
    bind(&channel, "created", "orders", "created").await;
    bind(&channel, "unrouted", "leftovers", "").await;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    for (key, body) in [("created", &b"routed"[..]), ("shipped", b"leftover")] {
        let confirm = channel
            .basic_publish(
                "orders".into(),
                key.into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..Default::default()
                },
                body,
                BasicProperties::default(),
            )
            .await
            .unwrap()
            .await
            .unwrap();
        assert!(confirm.is_ack(), "{confirm:?}");
        assert!(confirm.take_message().is_none(), "not returned: {key}");
    }
    assert_eq!(get(&channel, "created").await, Some(b"routed".to_vec()));
    assert_eq!(get(&channel, "created").await, None);
    assert_eq!(get(&channel, "unrouted").await, Some(b"leftover".to_vec()));
    assert_eq!(get(&channel, "unrouted").await, None);
    broker.stop().await;
}

async fn exists(connection: &lapin::Connection, queue: &str) -> bool {
    // A passive declare that fails closes its channel: a fresh channel each time.
    let channel = connection.create_channel().await.unwrap();
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

/// `x-expires`: a queue with a consumer does not expire however long it is held; once the
/// consumer goes and nothing uses the queue for the period, it is deleted. A declaration
/// in between restarts the clock. `x-expires: 0` is refused with 406.
#[tokio::test]
async fn a_queue_unused_for_x_expires_is_deleted() {
    let broker = Broker::start().await;
    let connection = broker.connect().await;
    let channel = connection.create_channel().await.unwrap();
    let mut arguments = FieldTable::default();
    arguments.insert("x-expires".into(), AMQPValue::LongInt(300));
    declare(&channel, "short-lived", arguments.clone()).await;
    let consumer = consume(&channel, "short-lived", "holder").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        exists(&connection, "short-lived").await,
        "held by a consumer"
    );
    channel
        .basic_cancel("holder".into(), BasicCancelOptions::default())
        .await
        .unwrap();
    drop(consumer);
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Used again (a declaration) 200 ms after the consumer left: the clock restarts.
    declare(&channel, "short-lived", arguments.clone()).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        broker.engine.queue_info("short-lived").is_ok(),
        "400 ms after the consumer left, 200 ms after a declaration"
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        broker.engine.queue_info("short-lived").is_err(),
        "unused for 600 ms with x-expires 300"
    );
    assert!(!exists(&connection, "short-lived").await);

    let mut zero = FieldTable::default();
    zero.insert("x-expires".into(), AMQPValue::LongInt(0));
    let refused = channel
        .queue_declare("zero".into(), QueueDeclareOptions::default(), zero)
        .await;
    assert!(
        format!("{refused:?}").contains("PRECONDITION_FAILED - invalid arg 'x-expires'"),
        "{refused:?}"
    );
    broker.stop().await;
}

/// `x-single-active-consumer`: only the first consumer receives while it is there, the
/// second (on another connection) gets nothing; once the first is cancelled the second
/// takes over.
#[tokio::test]
async fn a_single_active_consumer_queue_delivers_to_one_consumer_at_a_time() {
    let broker = Broker::start().await;
    let first_connection = broker.connect().await;
    let second_connection = broker.connect().await;
    let first = first_connection.create_channel().await.unwrap();
    let second = second_connection.create_channel().await.unwrap();
    let mut arguments = FieldTable::default();
    arguments.insert("x-single-active-consumer".into(), AMQPValue::Boolean(true));
    declare(&first, "one-at-a-time", arguments.clone()).await;
    declare(&second, "one-at-a-time", arguments).await;
    let mut active = consume(&first, "one-at-a-time", "first").await;
    let mut waiting = consume(&second, "one-at-a-time", "second").await;
    for round in 0..4u8 {
        publish(&first, "", "one-at-a-time", &[round]).await;
    }
    for round in 0..4u8 {
        let delivery = next(&mut active).await;
        assert_eq!(delivery.data, vec![round]);
        delivery.ack(BasicAckOptions::default()).await.unwrap();
    }
    let nothing = tokio::time::timeout(Duration::from_millis(300), waiting.next()).await;
    assert!(nothing.is_err(), "the waiting consumer got {nothing:?}");

    first
        .basic_cancel("first".into(), BasicCancelOptions::default())
        .await
        .unwrap();
    publish(&first, "", "one-at-a-time", b"after").await;
    let delivery = next(&mut waiting).await;
    assert_eq!(delivery.data, b"after".to_vec());
    delivery.ack(BasicAckOptions::default()).await.unwrap();
    broker.stop().await;
}

/// A durable queue's door-kept declaration comes back after a restart: single active
/// consumer still holds, a re-declaration with another argument is still refused, and the
/// x-expires clock runs again.
#[tokio::test]
async fn a_durable_queue_keeps_its_single_active_consumer_and_x_expires_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut sac = FieldTable::default();
    sac.insert("x-single-active-consumer".into(), AMQPValue::Boolean(true));
    let mut expiring = FieldTable::default();
    expiring.insert("x-expires".into(), AMQPValue::LongInt(800));
    {
        let broker = Broker::start_in(dir.path(), Default::default()).await;
        let connection = broker.connect().await;
        let channel = connection.create_channel().await.unwrap();
        declare(&channel, "kept-sac", sac.clone()).await;
        declare(&channel, "kept-expiring", expiring.clone()).await;
        drop(connection);
        broker.stop().await;
    }
    let broker = Broker::start_in(dir.path(), Default::default()).await;
    let first_connection = broker.connect().await;
    let second_connection = broker.connect().await;
    let first = first_connection.create_channel().await.unwrap();
    let second = second_connection.create_channel().await.unwrap();
    // Consumers that do not declare the queue again: the flag came back with the queue.
    let mut active = consume(&first, "kept-sac", "first").await;
    let mut waiting = consume(&second, "kept-sac", "second").await;
    for round in 0..3u8 {
        publish(&first, "", "kept-sac", &[round]).await;
    }
    for round in 0..3u8 {
        let delivery = next(&mut active).await;
        assert_eq!(delivery.data, vec![round]);
        delivery.ack(BasicAckOptions::default()).await.unwrap();
    }
    let nothing = tokio::time::timeout(Duration::from_millis(300), waiting.next()).await;
    assert!(nothing.is_err(), "the waiting consumer got {nothing:?}");
    // Re-declared without the argument: inequivalent, as before the restart.
    let third = first_connection.create_channel().await.unwrap();
    let refused = third
        .queue_declare(
            "kept-sac".into(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await;
    assert!(
        format!("{refused:?}").contains("x-single-active-consumer"),
        "{refused:?}"
    );
    // Nobody uses the expiring queue after the restart (a passive declare would count as a
    // use): its clock runs again and deletes it.
    tokio::time::sleep(Duration::from_millis(1_600)).await;
    assert!(
        !exists(&first_connection, "kept-expiring").await,
        "x-expires did not run after the restart"
    );
    broker.stop().await;
}
