//! Transactions (tx.select, commit, rollback) and connection.blocked on a full disk, with
//! lapin over a real socket.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use lapin::options::*;
use lapin::types::FieldTable;
use lapin::BasicProperties;
use omnibus_storage::io::{FaultPlan, FaultyIo, FileIo};
use support::client::declare;
use support::Broker;

/// Publishes without waiting for anything but the frame's write.
async fn publish(channel: &lapin::Channel, queue: &str, body: &[u8]) {
    channel
        .basic_publish(
            "".into(),
            queue.into(),
            BasicPublishOptions::default(),
            body,
            BasicProperties::default().with_delivery_mode(2),
        )
        .await
        .unwrap();
}

/// basic.get bodies until get-empty, acknowledging each.
async fn drain(channel: &lapin::Channel, queue: &str) -> Vec<Vec<u8>> {
    let mut bodies = Vec::new();
    while let Some(message) = channel
        .basic_get(queue.into(), BasicGetOptions { no_ack: true })
        .await
        .unwrap()
    {
        bodies.push(message.delivery.data.clone());
    }
    bodies
}

#[tokio::test]
async fn a_transaction_enqueues_its_publishes_at_commit_and_drops_them_at_rollback() {
    let broker = Broker::start().await;
    let connection = broker.connect().await;
    let publisher = connection.create_channel().await.unwrap();
    let reader = connection.create_channel().await.unwrap();
    declare(&publisher, "tx-publish", FieldTable::default()).await;
    publisher.tx_select().await.unwrap();

    for body in [b"r1", b"r2"] {
        publish(&publisher, "tx-publish", body).await;
    }
    // Not there before the commit; dropped by the rollback.
    assert!(drain(&reader, "tx-publish").await.is_empty());
    publisher.tx_rollback().await.unwrap();
    assert!(drain(&reader, "tx-publish").await.is_empty());

    for body in [b"c1", b"c2", b"c3"] {
        publish(&publisher, "tx-publish", body).await;
    }
    assert!(drain(&reader, "tx-publish").await.is_empty());
    publisher.tx_commit().await.unwrap();
    assert_eq!(
        drain(&reader, "tx-publish").await,
        vec![b"c1".to_vec(), b"c2".to_vec(), b"c3".to_vec()]
    );
    // The channel stays transactional: the next publish waits for the next commit.
    publish(&publisher, "tx-publish", b"later").await;
    assert!(drain(&reader, "tx-publish").await.is_empty());
    publisher.tx_commit().await.unwrap();
    assert_eq!(drain(&reader, "tx-publish").await, vec![b"later".to_vec()]);
    connection.close(200, "bye".into()).await.unwrap();
    broker.stop().await;
}

#[tokio::test]
async fn acks_in_a_transaction_apply_at_commit_and_are_unacknowledged_again_after_rollback() {
    let broker = Broker::start().await;
    let connection = broker.connect().await;
    let setup = connection.create_channel().await.unwrap();
    declare(&setup, "tx-ack", FieldTable::default()).await;
    setup.tx_select().await.unwrap();
    for body in [b"a", b"b"] {
        publish(&setup, "tx-ack", body).await;
    }
    setup.tx_commit().await.unwrap();

    let worker = connection.create_channel().await.unwrap();
    worker.tx_select().await.unwrap();
    let first = worker
        .basic_get("tx-ack".into(), BasicGetOptions { no_ack: false })
        .await
        .unwrap()
        .expect("a message");
    assert_eq!(first.delivery.data, b"a");
    first.ack(BasicAckOptions::default()).await.unwrap();
    // Rolled back: the delivery is unacknowledged again, under its own tag.
    worker.tx_rollback().await.unwrap();
    first.ack(BasicAckOptions::default()).await.unwrap();
    let second = worker
        .basic_get("tx-ack".into(), BasicGetOptions { no_ack: false })
        .await
        .unwrap()
        .expect("a message");
    assert_eq!(second.delivery.data, b"b");
    second
        .nack(BasicNackOptions {
            requeue: true,
            ..Default::default()
        })
        .await
        .unwrap();
    worker.tx_commit().await.unwrap();
    // Committed: "a" is acknowledged for good, "b" requeued and redelivered.
    let reader = connection.create_channel().await.unwrap();
    let again = reader
        .basic_get("tx-ack".into(), BasicGetOptions { no_ack: true })
        .await
        .unwrap()
        .expect("b again");
    assert_eq!(again.delivery.data, b"b");
    assert!(again.delivery.redelivered);
    assert!(drain(&reader, "tx-ack").await.is_empty());
    connection.close(200, "bye".into()).await.unwrap();
    broker.stop().await;
}

#[tokio::test]
async fn an_ack_held_by_an_open_transaction_is_requeued_when_its_channel_closes() {
    let broker = Broker::start().await;
    let connection = broker.connect().await;
    let setup = connection.create_channel().await.unwrap();
    declare(&setup, "tx-close", FieldTable::default()).await;
    publish(&setup, "tx-close", b"kept").await;

    let worker = connection.create_channel().await.unwrap();
    worker.tx_select().await.unwrap();
    let message = worker
        .basic_get("tx-close".into(), BasicGetOptions { no_ack: false })
        .await
        .unwrap()
        .expect("a message");
    message.ack(BasicAckOptions::default()).await.unwrap();
    worker.close(200, "no commit".into()).await.unwrap();

    let again = setup
        .basic_get("tx-close".into(), BasicGetOptions { no_ack: true })
        .await
        .unwrap()
        .expect("the uncommitted ack did not apply");
    assert_eq!(again.delivery.data, b"kept");
    assert!(again.delivery.redelivered);
    connection.close(200, "bye".into()).await.unwrap();
    broker.stop().await;
}

#[tokio::test]
async fn confirm_and_tx_modes_exclude_each_other_and_commit_needs_select() {
    let broker = Broker::start().await;
    let connection = broker.connect().await;

    let confirming = connection.create_channel().await.unwrap();
    confirming
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let error = confirming.tx_select().await.unwrap_err();
    assert!(
        error
            .to_string()
            .contains("cannot switch from confirm to tx mode"),
        "{error}"
    );

    let plain = connection.create_channel().await.unwrap();
    let error = plain.tx_commit().await.unwrap_err();
    assert!(error.to_string().contains("not transactional"), "{error}");

    let transactional = connection.create_channel().await.unwrap();
    transactional.tx_select().await.unwrap();
    let error = transactional
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("cannot switch from tx to confirm mode"),
        "{error}"
    );

    // Only those channels closed: the connection goes on.
    let other = connection.create_channel().await.unwrap();
    declare(&other, "still-open", FieldTable::default()).await;
    connection.close(200, "bye".into()).await.unwrap();
    broker.stop().await;
}

async fn wait_for(what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !condition() {
        assert!(Instant::now() < deadline, "not {what} within 5 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A full disk blocks the connections that publish (connection.blocked, and their frames
/// are no longer read) and leaves a consuming one alone; once there is room again they are
/// unblocked and a publish is confirmed.
#[tokio::test]
async fn a_full_disk_blocks_publishing_connections_until_space_returns() {
    let plan = FaultPlan::new();
    let io = Arc::new(FaultyIo::new(Arc::new(FileIo), plan.clone()));
    let broker = Broker::start_with_io(io).await;
    let publishing = broker.connect().await;
    let channel = publishing.create_channel().await.unwrap();
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    declare(&channel, "disk", FieldTable::default()).await;
    let confirm = |body: &'static [u8]| {
        let channel = channel.clone();
        async move {
            channel
                .basic_publish(
                    "".into(),
                    "disk".into(),
                    BasicPublishOptions::default(),
                    body,
                    BasicProperties::default().with_delivery_mode(2),
                )
                .await
                .unwrap()
                .await
                .unwrap()
        }
    };
    assert!(confirm(b"before").await.is_ack());
    let consuming = broker.connect().await;
    let consumer_channel = consuming.create_channel().await.unwrap();

    plan.as_disk_full(true);
    plan.sticky(true);
    plan.fail_write(1);
    let refused = confirm(b"refused").await;
    assert!(
        refused.is_nack(),
        "a publish the full disk refused: {refused:?}"
    );
    wait_for("blocked", || publishing.status().blocked()).await;
    // A connection that never published is not blocked and goes on working.
    assert!(!consuming.status().blocked());
    let got = consumer_channel
        .basic_get("disk".into(), BasicGetOptions { no_ack: true })
        .await
        .unwrap()
        .expect("the message confirmed before the disk filled");
    assert_eq!(got.delivery.data, b"before");

    plan.sticky(false);
    plan.as_disk_full(false);
    plan.clear();
    wait_for("unblocked", || !publishing.status().blocked()).await;
    assert!(confirm(b"after").await.is_ack());
    let got = consumer_channel
        .basic_get("disk".into(), BasicGetOptions { no_ack: true })
        .await
        .unwrap()
        .expect("the message published after space returned");
    assert_eq!(got.delivery.data, b"after");
    publishing.close(200, "bye".into()).await.unwrap();
    consuming.close(200, "bye".into()).await.unwrap();
    broker.stop().await;
}
