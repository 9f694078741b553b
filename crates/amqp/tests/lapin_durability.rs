//! Queue durability with lapin over a real socket, on a disk whose fsyncs can be held: a
//! non-durable or exclusive queue confirms its messages without an fsync (RabbitMQ confirms
//! them once in memory), a durable queue only after it, whatever the delivery mode; and a
//! direct reply-to round trip through a non-durable request queue needs no fsync at all.

#[allow(dead_code)] // the helpers other test binaries use
mod support;

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use lapin::options::*;
use lapin::types::FieldTable;
use lapin::BasicProperties;
use omnibus_storage::io::{FaultPlan, FaultyIo, FileIo};
use support::client::{consume, next, WAIT};
use support::Broker;

async fn faulty_broker() -> (Broker, Arc<FaultPlan>) {
    let plan = FaultPlan::new();
    let io = Arc::new(FaultyIo::new(Arc::new(FileIo), plan.clone()));
    (Broker::start_with_io(io).await, plan)
}

async fn declare(channel: &lapin::Channel, queue: &str, durable: bool, exclusive: bool) {
    channel
        .queue_declare(
            queue.into(),
            QueueDeclareOptions {
                durable,
                exclusive,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
}

/// Publishes `body` with `delivery_mode`; the confirm's future.
async fn publish(
    channel: &lapin::Channel,
    queue: &str,
    body: &'static [u8],
    delivery_mode: u8,
) -> lapin::PublisherConfirm {
    channel
        .basic_publish(
            "".into(),
            queue.into(),
            BasicPublishOptions::default(),
            body,
            BasicProperties::default().with_delivery_mode(delivery_mode),
        )
        .await
        .unwrap()
}

#[tokio::test]
async fn non_durable_and_exclusive_queues_confirm_without_an_fsync_and_durable_ones_after_it() {
    let (broker, plan) = faulty_broker().await;
    let connection = broker.connect().await;
    let channel = connection.create_channel().await.unwrap();
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    declare(&channel, "rpc", false, false).await;
    declare(&channel, "mine", true, true).await;
    declare(&channel, "kept", true, false).await;
    plan.hold_syncs(true);

    for queue in ["rpc", "mine"] {
        let confirm = publish(&channel, queue, b"persistent", 2).await;
        let confirmation = tokio::time::timeout(WAIT, confirm)
            .await
            .unwrap_or_else(|_| panic!("{queue}: confirmed without waiting for an fsync"))
            .unwrap();
        assert!(confirmation.is_ack(), "{queue}: {confirmation:?}");
        let got = channel
            .basic_get(queue.into(), BasicGetOptions::default())
            .await
            .unwrap()
            .expect("the confirmed message is in the queue");
        assert_eq!(got.delivery.data, b"persistent");
        got.delivery.ack(BasicAckOptions::default()).await.unwrap();
    }

    // A durable queue fsyncs before the confirm, transient messages (delivery mode 1) too.
    let persistent = tokio::spawn(publish(&channel, "kept", b"persistent", 2).await);
    let transient = tokio::spawn(publish(&channel, "kept", b"transient", 1).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!persistent.is_finished(), "confirmed before its fsync");
    assert!(!transient.is_finished(), "confirmed before its fsync");
    plan.hold_syncs(false);
    for confirm in [persistent, transient] {
        let confirmation = tokio::time::timeout(Duration::from_secs(10), confirm)
            .await
            .expect("confirmed once fsyncs resume")
            .unwrap()
            .unwrap();
        assert!(confirmation.is_ack(), "{confirmation:?}");
    }
    connection.close(200, "bye".into()).await.unwrap();
    broker.stop().await;
}

/// pika's RPC tutorial: a non-durable request queue, transient requests, replies through
/// `amq.rabbitmq.reply-to`. Neither the request nor the reply waits for the disk.
#[tokio::test]
async fn a_direct_reply_to_round_trip_through_a_non_durable_queue_needs_no_fsync() {
    let (broker, plan) = faulty_broker().await;
    let responder = broker.connect().await;
    let responder_channel = responder.create_channel().await.unwrap();
    declare(&responder_channel, "rpc_queue", false, false).await;
    let mut requests = consume(&responder_channel, "rpc_queue", "server").await;
    let requester = broker.connect().await;
    let requester_channel = requester.create_channel().await.unwrap();
    let mut replies = requester_channel
        .basic_consume(
            "amq.rabbitmq.reply-to".into(),
            "client".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    plan.hold_syncs(true);

    for number in 0..3u8 {
        requester_channel
            .basic_publish(
                "".into(),
                "rpc_queue".into(),
                BasicPublishOptions::default(),
                &[number],
                BasicProperties::default()
                    .with_reply_to("amq.rabbitmq.reply-to".into())
                    .with_correlation_id(number.to_string().into()),
            )
            .await
            .unwrap();
        let request = next(&mut requests).await;
        let reply_to = request.properties.reply_to().clone().unwrap();
        responder_channel
            .basic_publish(
                "".into(),
                reply_to.as_str().into(),
                BasicPublishOptions::default(),
                &[number + 100],
                BasicProperties::default()
                    .with_correlation_id(request.properties.correlation_id().clone().unwrap()),
            )
            .await
            .unwrap();
        request.ack(BasicAckOptions::default()).await.unwrap();
        let reply = tokio::time::timeout(WAIT, replies.next())
            .await
            .expect("the reply within 5 s while fsyncs are held")
            .unwrap()
            .unwrap();
        assert_eq!(reply.data, vec![number + 100]);
        assert_eq!(
            reply.properties.correlation_id().as_ref().unwrap().as_str(),
            number.to_string()
        );
    }
    plan.hold_syncs(false);
    requester.close(200, "bye".into()).await.unwrap();
    responder.close(200, "bye".into()).await.unwrap();
    broker.stop().await;
}
