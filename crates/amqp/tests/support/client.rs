//! lapin calls the AMQP tests make over and over, each written once.
#![allow(dead_code)] // each test binary uses its own share of these

use std::time::Duration;

use futures_util::StreamExt;
use lapin::options::*;
use lapin::types::FieldTable;
use lapin::ExchangeKind;

/// How long a test waits for a delivery it expects.
pub const WAIT: Duration = Duration::from_secs(5);

/// The next delivery, within [`WAIT`].
pub async fn next(consumer: &mut lapin::Consumer) -> lapin::message::Delivery {
    tokio::time::timeout(WAIT, consumer.next())
        .await
        .expect("a delivery within 5 s")
        .expect("the consumer is open")
        .expect("a delivery, not an error")
}

/// Declares a durable queue with `arguments`.
pub async fn declare(channel: &lapin::Channel, name: &str, arguments: FieldTable) {
    channel
        .queue_declare(
            name.into(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            arguments,
        )
        .await
        .unwrap();
}

/// Starts a consumer with default options.
pub async fn consume(channel: &lapin::Channel, queue: &str, tag: &str) -> lapin::Consumer {
    channel
        .basic_consume(
            queue.into(),
            tag.into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap()
}

/// Declares an exchange with default options and no arguments.
pub async fn exchange(channel: &lapin::Channel, name: &str, kind: ExchangeKind) {
    channel
        .exchange_declare(
            name.into(),
            kind,
            ExchangeDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
}

/// Binds `queue` to `exchange` with `key` and no arguments.
pub async fn bind(channel: &lapin::Channel, queue: &str, exchange: &str, key: &str) {
    channel
        .queue_bind(
            queue.into(),
            exchange.into(),
            key.into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
}
