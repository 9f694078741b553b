//! Re-declarations compared as RabbitMQ compares them (`handlers/equivalence.rs`): an
//! exchange on its type, flags and `alternate-exchange`; a queue also on the arguments only
//! the door keeps (`x-expires`, `x-max-priority`, `x-queue-type`,
//! `x-single-active-consumer`). Each difference is 406 on that channel, in RabbitMQ's words.

#[allow(dead_code)]
mod support;

use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable};
use lapin::ExchangeKind;
use support::Broker;

fn table(entries: &[(&str, AMQPValue)]) -> FieldTable {
    let mut table = FieldTable::default();
    for (key, value) in entries {
        table.insert((*key).into(), value.clone());
    }
    table
}

async fn declare_exchange(
    connection: &lapin::Connection,
    kind: ExchangeKind,
    options: ExchangeDeclareOptions,
    arguments: FieldTable,
) -> String {
    let channel = connection.create_channel().await.unwrap();
    let outcome = channel
        .exchange_declare("orders".into(), kind, options, arguments)
        .await;
    format!("{outcome:?}")
}

#[tokio::test]
async fn an_exchange_redeclared_with_another_type_flag_or_alternate_is_refused_in_rabbitmq_words() {
    let broker = Broker::start().await;
    let connection = broker.connect().await;
    let durable = ExchangeDeclareOptions {
        durable: true,
        ..Default::default()
    };
    let alternate = || table(&[("alternate-exchange", AMQPValue::LongString("spill".into()))]);
    let first = declare_exchange(&connection, ExchangeKind::Direct, durable, alternate()).await;
    assert!(first.starts_with("Ok"), "{first}");
    // The same declaration again is fine.
    let again = declare_exchange(&connection, ExchangeKind::Direct, durable, alternate()).await;
    assert!(again.starts_with("Ok"), "{again}");
    let cases = [
        (
            ExchangeKind::Fanout,
            durable,
            alternate(),
            "inequivalent arg 'type' for exchange 'orders' in vhost '/': received 'fanout' but current is 'direct'",
        ),
        (
            ExchangeKind::Direct,
            ExchangeDeclareOptions::default(),
            alternate(),
            "inequivalent arg 'durable' for exchange 'orders' in vhost '/': received 'false' but current is 'true'",
        ),
        (
            ExchangeKind::Direct,
            ExchangeDeclareOptions {
                auto_delete: true,
                ..durable
            },
            alternate(),
            "inequivalent arg 'auto_delete' for exchange 'orders' in vhost '/': received 'true' but current is 'false'",
        ),
        (
            ExchangeKind::Direct,
            ExchangeDeclareOptions {
                internal: true,
                ..durable
            },
            alternate(),
            "inequivalent arg 'internal' for exchange 'orders' in vhost '/': received 'true' but current is 'false'",
        ),
        (
            ExchangeKind::Direct,
            durable,
            FieldTable::default(),
            "inequivalent arg 'alternate-exchange' for exchange 'orders' in vhost '/': received none but current is the value 'spill' of type 'longstr'",
        ),
    ];
    for (kind, options, arguments, expected) in cases {
        let refused = declare_exchange(&connection, kind, options, arguments).await;
        assert!(refused.contains("PRECONDITION_FAILED"), "{refused}");
        assert!(refused.contains(expected), "{refused}");
    }
    // A passive declare of a missing exchange is 404.
    let channel = connection.create_channel().await.unwrap();
    let missing = channel
        .exchange_declare(
            "nowhere".into(),
            ExchangeKind::Direct,
            ExchangeDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await;
    assert!(format!("{missing:?}").contains("NOT_FOUND"), "{missing:?}");
    // Only the channels were closed: the connection still declares.
    assert!(connection.status().connected());
    broker.stop().await;
}

#[tokio::test]
async fn a_queue_redeclared_with_other_door_kept_arguments_is_refused_in_rabbitmq_words() {
    let broker = Broker::start().await;
    let connection = broker.connect().await;
    let arguments = || {
        table(&[
            ("x-expires", AMQPValue::LongInt(60_000)),
            ("x-max-priority", AMQPValue::ShortShortUInt(5)),
            ("x-single-active-consumer", AMQPValue::Boolean(true)),
        ])
    };
    let channel = connection.create_channel().await.unwrap();
    channel
        .queue_declare("work".into(), QueueDeclareOptions::default(), arguments())
        .await
        .unwrap();
    // The same again, and with x-queue-type classic (left out means classic): fine.
    let mut classic = arguments();
    classic.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("classic".into()),
    );
    for same in [arguments(), classic] {
        channel
            .queue_declare("work".into(), QueueDeclareOptions::default(), same)
            .await
            .unwrap();
    }
    let replaced = |key: &str, value: Option<AMQPValue>| {
        let mut table = arguments();
        let mut entries: Vec<(String, AMQPValue)> = table
            .inner()
            .iter()
            .filter(|(name, _)| name.as_str() != key)
            .map(|(name, value)| (name.as_str().to_string(), value.clone()))
            .collect();
        if let Some(value) = value {
            entries.push((key.to_string(), value));
        }
        table = FieldTable::default();
        for (name, value) in entries {
            table.insert(name.into(), value);
        }
        table
    };
    let cases = [
        (
            replaced("x-expires", Some(AMQPValue::LongInt(1_000))),
            "inequivalent arg 'x-expires' for queue 'work' in vhost '/': received '1000' but current is '60000'",
        ),
        (
            replaced("x-max-priority", None),
            "inequivalent arg 'x-max-priority' for queue 'work' in vhost '/': received none but current is the value '5' of type 'signedint'",
        ),
        (
            replaced(
                "x-queue-type",
                Some(AMQPValue::LongString("quorum".into())),
            ),
            "inequivalent arg 'x-queue-type' for queue 'work' in vhost '/': received the value 'quorum' of type 'longstr' but current is none",
        ),
        (
            replaced("x-single-active-consumer", Some(AMQPValue::Boolean(false))),
            "inequivalent arg 'x-single-active-consumer' for queue 'work' in vhost '/': received 'false' but current is 'true'",
        ),
    ];
    for (arguments, expected) in cases {
        let channel = connection.create_channel().await.unwrap();
        let refused = channel
            .queue_declare("work".into(), QueueDeclareOptions::default(), arguments)
            .await;
        let refused = format!("{refused:?}");
        assert!(refused.contains("PRECONDITION_FAILED"), "{refused}");
        assert!(refused.contains(expected), "{refused}");
    }
    // A passive declare of a missing queue is 404; of the queue, whatever the arguments, fine.
    let channel = connection.create_channel().await.unwrap();
    let missing = channel
        .queue_declare(
            "absent".into(),
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await;
    assert!(format!("{missing:?}").contains("NOT_FOUND"), "{missing:?}");
    let channel = connection.create_channel().await.unwrap();
    channel
        .queue_declare(
            "work".into(),
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    broker.stop().await;
}
