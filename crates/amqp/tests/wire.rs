//! Raw frames over a real socket: what the spec says the server does with bad input, and
//! heartbeats. The codec under test is the client's side here too (it is symmetric).

#[allow(dead_code)]
mod support;

use std::time::Duration;

use amq_protocol::frame::{AMQPContentHeader, AMQPFrame};
use amq_protocol::protocol::{basic, channel, connection, queue, AMQPClass};
use bytes::BytesMut;
use omnibus_amqp::codec;
use support::Broker;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(5);

struct Raw {
    stream: TcpStream,
    input: BytesMut,
}

impl Raw {
    async fn connect(broker: &Broker) -> Raw {
        let stream = TcpStream::connect(broker.address).await.unwrap();
        Raw {
            stream,
            input: BytesMut::new(),
        }
    }

    async fn send(&mut self, frame: AMQPFrame) {
        let mut out = BytesMut::new();
        codec::encode(&mut out, &frame);
        self.stream.write_all(&out).await.unwrap();
    }

    async fn method(&mut self, channel: u16, method: AMQPClass) {
        self.send(AMQPFrame::Method(channel, method)).await;
    }

    /// The next frame, or `None` once the server closed the socket.
    async fn next(&mut self) -> Option<AMQPFrame> {
        loop {
            if let Some(frame) = codec::decode(&mut self.input, 1 << 20).unwrap() {
                return Some(frame);
            }
            let read = tokio::time::timeout(WAIT, self.stream.read_buf(&mut self.input))
                .await
                .expect("the server answers within 5 s");
            if read.unwrap_or(0) == 0 {
                return None;
            }
        }
    }

    /// The next frame that is not a heartbeat.
    async fn next_method(&mut self) -> AMQPFrame {
        loop {
            match self.next().await.expect("a frame, not the end") {
                AMQPFrame::Heartbeat => continue,
                frame => return frame,
            }
        }
    }

    /// Protocol header, start-ok, tune-ok with `heartbeat`, open of `/`.
    async fn handshake(broker: &Broker, heartbeat: u16) -> Raw {
        let mut raw = Raw::connect(broker).await;
        raw.stream.write_all(&codec::PROTOCOL_HEADER).await.unwrap();
        let AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::Start(start))) =
            raw.next_method().await
        else {
            panic!("no connection.start");
        };
        assert_eq!(start.mechanisms.to_string(), "PLAIN AMQPLAIN");
        let capabilities = start.server_properties.inner().get("capabilities");
        let Some(amq_protocol::types::AMQPValue::FieldTable(capabilities)) = capabilities else {
            panic!("no capabilities table: {:?}", start.server_properties);
        };
        for capability in ["publisher_confirms", "exchange_exchange_bindings"] {
            assert_eq!(
                capabilities.inner().get(capability),
                Some(&amq_protocol::types::AMQPValue::Boolean(true)),
                "{capability}"
            );
        }
        raw.method(0, start_ok("guest", "guest")).await;
        let AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::Tune(tune))) =
            raw.next_method().await
        else {
            panic!("no connection.tune");
        };
        assert_eq!(tune.frame_max, 128 * 1024);
        assert_eq!(tune.heartbeat, 60);
        raw.method(
            0,
            AMQPClass::Connection(connection::AMQPMethod::TuneOk(connection::TuneOk {
                channel_max: tune.channel_max,
                frame_max: tune.frame_max,
                heartbeat,
            })),
        )
        .await;
        raw.method(
            0,
            AMQPClass::Connection(connection::AMQPMethod::Open(connection::Open {
                virtual_host: "/".into(),
            })),
        )
        .await;
        assert!(matches!(
            raw.next_method().await,
            AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::OpenOk(_)))
        ));
        raw
    }

    async fn open_channel(&mut self, id: u16) {
        self.method(
            id,
            AMQPClass::Channel(channel::AMQPMethod::Open(channel::Open {})),
        )
        .await;
        assert!(matches!(
            self.next_method().await,
            AMQPFrame::Method(_, AMQPClass::Channel(channel::AMQPMethod::OpenOk(_)))
        ));
    }

    /// The reply code of the connection.close the server sends next.
    async fn connection_close_code(&mut self) -> u16 {
        match self.next_method().await {
            AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::Close(close))) => {
                close.reply_code
            }
            other => panic!("expected connection.close, got {other:?}"),
        }
    }
}

fn start_ok(user: &str, password: &str) -> AMQPClass {
    AMQPClass::Connection(connection::AMQPMethod::StartOk(connection::StartOk {
        client_properties: Default::default(),
        mechanism: "PLAIN".into(),
        response: format!("\0{user}\0{password}").into(),
        locale: "en_US".into(),
    }))
}

fn declare(name: &str) -> AMQPClass {
    AMQPClass::Queue(queue::AMQPMethod::Declare(queue::Declare {
        queue: name.into(),
        passive: false,
        durable: true,
        exclusive: false,
        auto_delete: false,
        nowait: false,
        arguments: Default::default(),
    }))
}

#[tokio::test]
async fn a_wrong_protocol_header_is_answered_with_ours_and_the_socket_closes() {
    let broker = Broker::start().await;
    let mut raw = Raw::connect(&broker).await;
    raw.stream.write_all(b"AMQP\x01\x01\x00\x0a").await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(WAIT, raw.stream.read_to_end(&mut answer))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(answer, codec::PROTOCOL_HEADER);
    broker.stop().await;
}

#[tokio::test]
async fn wrong_credentials_are_refused_with_403() {
    let broker = Broker::start().await;
    let mut raw = Raw::connect(&broker).await;
    raw.stream.write_all(&codec::PROTOCOL_HEADER).await.unwrap();
    raw.next_method().await;
    raw.method(0, start_ok("guest", "wrong")).await;
    assert_eq!(raw.connection_close_code().await, 403);
    broker.stop().await;
}

#[tokio::test]
async fn a_frame_over_frame_max_closes_the_connection_with_501() {
    let broker = Broker::start().await;
    let mut raw = Raw::handshake(&broker, 0).await;
    raw.open_channel(1).await;
    // A body frame announcing 1 MiB: refused from its 7-byte header.
    raw.stream
        .write_all(&[3, 0, 1, 0, 0x10, 0, 0])
        .await
        .unwrap();
    assert_eq!(raw.connection_close_code().await, 501);
    broker.stop().await;
}

#[tokio::test]
async fn a_content_header_without_a_publish_closes_the_connection_with_505() {
    let broker = Broker::start().await;
    let mut raw = Raw::handshake(&broker, 0).await;
    raw.open_channel(1).await;
    raw.send(AMQPFrame::Header(
        1,
        AMQPContentHeader {
            class_id: 60,
            body_size: 1,
            properties: Default::default(),
        },
    ))
    .await;
    assert_eq!(raw.connection_close_code().await, 505);
    broker.stop().await;
}

#[tokio::test]
async fn an_ack_of_an_unknown_tag_closes_that_channel_with_406_and_no_other() {
    let broker = Broker::start().await;
    let mut raw = Raw::handshake(&broker, 0).await;
    raw.open_channel(1).await;
    raw.open_channel(2).await;
    raw.method(
        1,
        AMQPClass::Basic(basic::AMQPMethod::Ack(basic::Ack {
            delivery_tag: 7,
            multiple: false,
        })),
    )
    .await;
    match raw.next_method().await {
        AMQPFrame::Method(1, AMQPClass::Channel(channel::AMQPMethod::Close(close))) => {
            assert_eq!(close.reply_code, 406);
            assert_eq!((close.class_id, close.method_id), (60, 80));
        }
        other => panic!("expected channel.close on channel 1, got {other:?}"),
    }
    // Until the client's close-ok, the channel's other frames are dropped.
    raw.method(1, declare("ignored")).await;
    raw.method(2, declare("works")).await;
    assert!(matches!(
        raw.next_method().await,
        AMQPFrame::Method(2, AMQPClass::Queue(queue::AMQPMethod::DeclareOk(_)))
    ));
    assert!(broker.engine.queue_info("ignored").is_err());
    raw.method(
        1,
        AMQPClass::Channel(channel::AMQPMethod::CloseOk(channel::CloseOk {})),
    )
    .await;
    raw.open_channel(1).await;
    broker.stop().await;
}

#[tokio::test]
async fn heartbeats_are_sent_when_idle_and_a_silent_peer_is_disconnected() {
    let broker = Broker::start().await;
    let mut raw = Raw::handshake(&broker, 1).await;
    // Within a heartbeat interval of silence the server sends one.
    assert_eq!(raw.next().await, Some(AMQPFrame::Heartbeat));
    // The client never sends any: after two intervals the server gives up on it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(4);
    loop {
        match raw.next().await {
            Some(AMQPFrame::Heartbeat) => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "still open after 4 s"
                );
            }
            Some(other) => panic!("unexpected {other:?}"),
            None => break,
        }
    }
    broker.stop().await;
}

#[tokio::test]
async fn a_virtual_host_other_than_slash_is_refused_with_530() {
    let broker = Broker::start().await;
    let mut raw = Raw::connect(&broker).await;
    raw.stream.write_all(&codec::PROTOCOL_HEADER).await.unwrap();
    raw.next_method().await;
    raw.method(0, start_ok("guest", "guest")).await;
    raw.next_method().await;
    raw.method(
        0,
        AMQPClass::Connection(connection::AMQPMethod::TuneOk(connection::TuneOk {
            channel_max: 10,
            frame_max: 4096,
            heartbeat: 0,
        })),
    )
    .await;
    raw.method(
        0,
        AMQPClass::Connection(connection::AMQPMethod::Open(connection::Open {
            virtual_host: "other".into(),
        })),
    )
    .await;
    assert_eq!(raw.connection_close_code().await, 530);
    broker.stop().await;
}

#[tokio::test]
async fn a_connection_dropped_without_close_gives_its_deliveries_back_redelivered() {
    let broker = Broker::start().await;
    let mut raw = Raw::handshake(&broker, 0).await;
    raw.open_channel(1).await;
    raw.method(1, declare("dropped")).await;
    raw.next_method().await;
    raw.method(
        1,
        AMQPClass::Basic(basic::AMQPMethod::Publish(basic::Publish {
            exchange: "".into(),
            routing_key: "dropped".into(),
            mandatory: false,
            immediate: false,
        })),
    )
    .await;
    raw.send(AMQPFrame::Header(
        1,
        AMQPContentHeader {
            class_id: 60,
            body_size: 4,
            properties: Default::default(),
        },
    ))
    .await;
    raw.send(AMQPFrame::Body(1, b"work".to_vec())).await;
    raw.method(
        1,
        AMQPClass::Basic(basic::AMQPMethod::Consume(basic::Consume {
            queue: "dropped".into(),
            consumer_tag: "c".into(),
            no_local: false,
            no_ack: false,
            exclusive: false,
            nowait: false,
            arguments: Default::default(),
        })),
    )
    .await;
    assert!(matches!(
        raw.next_method().await,
        AMQPFrame::Method(1, AMQPClass::Basic(basic::AMQPMethod::ConsumeOk(_)))
    ));
    match raw.next_method().await {
        AMQPFrame::Method(1, AMQPClass::Basic(basic::AMQPMethod::Deliver(deliver))) => {
            assert!(!deliver.redelivered)
        }
        other => panic!("expected basic.deliver, got {other:?}"),
    }
    assert_eq!(broker.engine.queue_info("dropped").unwrap().leased, 1);
    // Gone without connection.close, as Celery's publishers and killed workers go.
    drop(raw);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let info = broker.engine.queue_info("dropped").unwrap();
        if info.leased == 0 && info.ready == 1 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still leased: {info:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let got = broker
        .engine
        .receive("dropped", "check", 1, 0)
        .await
        .unwrap();
    assert_eq!(got[0].attempt, 2, "delivered again as a redelivery");
    broker.stop().await;
}

/// One publish (method, header, body) as bytes.
fn publish_frames(queue: &str, body: &[u8]) -> BytesMut {
    let mut out = BytesMut::new();
    codec::encode(
        &mut out,
        &AMQPFrame::Method(
            1,
            AMQPClass::Basic(basic::AMQPMethod::Publish(basic::Publish {
                exchange: "".into(),
                routing_key: queue.into(),
                mandatory: false,
                immediate: false,
            })),
        ),
    );
    codec::encode(
        &mut out,
        &AMQPFrame::Header(
            1,
            AMQPContentHeader {
                class_id: 60,
                body_size: body.len() as u64,
                properties: Default::default(),
            },
        ),
    );
    codec::encode(&mut out, &AMQPFrame::Body(1, body.to_vec()));
    out
}

#[tokio::test]
async fn publishes_read_together_are_enqueued_together_and_confirmed_with_multiple() {
    let broker = Broker::start().await;
    let mut raw = Raw::handshake(&broker, 0).await;
    raw.open_channel(1).await;
    raw.method(1, declare("window")).await;
    raw.next_method().await;
    raw.method(
        1,
        AMQPClass::Confirm(amq_protocol::protocol::confirm::AMQPMethod::Select(
            amq_protocol::protocol::confirm::Select { nowait: false },
        )),
    )
    .await;
    raw.next_method().await;
    // Ten publishes in one write, as a client with a confirm window sends them.
    let mut window = BytesMut::new();
    for i in 0..10 {
        window.extend_from_slice(&publish_frames("window", format!("m{i}").as_bytes()));
    }
    raw.stream.write_all(&window).await.unwrap();
    let mut confirmed = 0;
    let mut acks = 0;
    while confirmed < 10 {
        match raw.next_method().await {
            AMQPFrame::Method(1, AMQPClass::Basic(basic::AMQPMethod::Ack(ack))) => {
                assert!(ack.delivery_tag > confirmed, "confirms in order");
                assert_eq!(ack.multiple, ack.delivery_tag > confirmed + 1);
                confirmed = ack.delivery_tag;
                acks += 1;
            }
            other => panic!("expected basic.ack, got {other:?}"),
        }
    }
    assert!(
        acks < 10,
        "ten publishes in one read were confirmed one by one"
    );
    let got = broker
        .engine
        .receive("window", "check", 10, 0)
        .await
        .unwrap();
    let bodies: Vec<_> = got
        .iter()
        .map(|d| d.record.value.clone().unwrap())
        .collect();
    let expected: Vec<_> = (0..10)
        .map(|i| bytes::Bytes::from(format!("m{i}")))
        .collect();
    assert_eq!(bodies, expected, "enqueued in publish order");
    broker.stop().await;
}

#[tokio::test]
async fn one_consumer_more_than_a_channel_may_hold_closes_the_connection_with_530() {
    let config = omnibus_amqp::AmqpConfig {
        consumers_per_channel_max: 2,
        ..Default::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start_in(dir.path(), config).await;
    let mut raw = Raw::handshake(&broker, 0).await;
    raw.open_channel(1).await;
    raw.method(1, declare("crowded")).await;
    raw.next_method().await;
    for tag in ["a", "b", "c"] {
        raw.method(
            1,
            AMQPClass::Basic(basic::AMQPMethod::Consume(basic::Consume {
                queue: "crowded".into(),
                consumer_tag: tag.into(),
                no_local: false,
                no_ack: false,
                exclusive: false,
                nowait: true,
                arguments: Default::default(),
            })),
        )
        .await;
    }
    assert_eq!(raw.connection_close_code().await, 530);
    broker.stop().await;
}

/// A method frame written by hand: `payload` is the class id, method id and fields.
fn raw_method_frame(channel: u16, payload: &[u8]) -> Vec<u8> {
    let mut frame = vec![1];
    frame.extend_from_slice(&channel.to_be_bytes());
    frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    frame.extend_from_slice(payload);
    frame.push(codec::FRAME_END);
    frame
}

/// The connection still works: a queue.declare on its channel 1 is answered.
async fn still_serves(raw: &mut Raw, queue_name: &str) {
    raw.method(1, declare(queue_name)).await;
    assert!(matches!(
        raw.next_method().await,
        AMQPFrame::Method(1, AMQPClass::Queue(queue::AMQPMethod::DeclareOk(_)))
    ));
}

fn publish_method(queue_name: &str) -> AMQPClass {
    AMQPClass::Basic(basic::AMQPMethod::Publish(basic::Publish {
        exchange: "".into(),
        routing_key: queue_name.into(),
        mandatory: false,
        immediate: false,
    }))
}

/// The connection.close the server sends next: its code and the ids it names.
async fn connection_close(raw: &mut Raw) -> (u16, u16, u16) {
    match raw.next_method().await {
        AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::Close(close))) => {
            (close.reply_code, close.class_id, close.method_id)
        }
        other => panic!("expected connection.close, got {other:?}"),
    }
}

#[tokio::test]
async fn a_method_on_a_channel_never_opened_closes_the_connection_with_504_and_no_other() {
    let broker = Broker::start().await;
    let mut bystander = Raw::handshake(&broker, 0).await;
    bystander.open_channel(1).await;
    let mut raw = Raw::handshake(&broker, 0).await;
    raw.open_channel(1).await;
    raw.method(3, declare("never-opened")).await;
    assert_eq!(connection_close(&mut raw).await, (504, 50, 10));
    assert!(broker.engine.queue_info("never-opened").is_err());
    // A close on a channel never opened is the same error.
    let mut closer = Raw::handshake(&broker, 0).await;
    closer
        .method(
            5,
            AMQPClass::Channel(channel::AMQPMethod::Close(channel::Close {
                reply_code: 200,
                reply_text: "".into(),
                class_id: 0,
                method_id: 0,
            })),
        )
        .await;
    assert_eq!(closer.connection_close_code().await, 504);
    still_serves(&mut bystander, "bystander-504").await;
    broker.stop().await;
}

#[tokio::test]
async fn an_unknown_class_or_method_closes_the_connection_with_540_and_no_other() {
    let broker = Broker::start().await;
    let mut bystander = Raw::handshake(&broker, 0).await;
    bystander.open_channel(1).await;
    // basic (60) has no method 99; there is no class 99.
    for (class_id, method_id) in [(60u16, 99u16), (99, 10)] {
        let mut raw = Raw::handshake(&broker, 0).await;
        raw.open_channel(1).await;
        let mut payload = class_id.to_be_bytes().to_vec();
        payload.extend_from_slice(&method_id.to_be_bytes());
        payload.extend_from_slice(&[0, 0, 0]);
        raw.stream
            .write_all(&raw_method_frame(1, &payload))
            .await
            .unwrap();
        assert_eq!(connection_close(&mut raw).await, (540, class_id, method_id));
    }
    still_serves(&mut bystander, "bystander-540").await;
    broker.stop().await;
}

#[tokio::test]
async fn a_known_method_with_undecodable_fields_closes_the_connection_with_501() {
    let broker = Broker::start().await;
    let mut bystander = Raw::handshake(&broker, 0).await;
    bystander.open_channel(1).await;
    let mut raw = Raw::handshake(&broker, 0).await;
    raw.open_channel(1).await;
    // queue.declare (50.10) cut short in its queue name: RabbitMQ's "cannot decode", 501.
    raw.stream
        .write_all(&raw_method_frame(1, &[0, 50, 0, 10, 0, 0, 9, b'q']))
        .await
        .unwrap();
    assert_eq!(raw.connection_close_code().await, 501);
    still_serves(&mut bystander, "bystander-501").await;
    broker.stop().await;
}

#[tokio::test]
async fn content_out_of_order_closes_the_connection_with_505_and_no_other() {
    let broker = Broker::start().await;
    let mut bystander = Raw::handshake(&broker, 0).await;
    bystander.open_channel(1).await;
    let body = || AMQPFrame::Body(1, b"orphan".to_vec());
    // A body frame right after basic.publish, with no content header before it.
    let mut raw = Raw::handshake(&broker, 0).await;
    raw.open_channel(1).await;
    raw.method(1, declare("orphans")).await;
    raw.next_method().await;
    raw.method(1, publish_method("orphans")).await;
    raw.send(body()).await;
    assert_eq!(raw.connection_close_code().await, 505);
    // A body frame with no basic.publish at all.
    let mut raw = Raw::handshake(&broker, 0).await;
    raw.open_channel(1).await;
    raw.send(body()).await;
    assert_eq!(raw.connection_close_code().await, 505);
    // A method where the content header was expected.
    let mut raw = Raw::handshake(&broker, 0).await;
    raw.open_channel(1).await;
    raw.method(1, publish_method("orphans")).await;
    raw.method(1, declare("orphans")).await;
    assert_eq!(connection_close(&mut raw).await, (505, 50, 10));
    // Nothing of it was enqueued, and another connection goes on.
    assert_eq!(broker.engine.queue_info("orphans").unwrap().ready, 0);
    still_serves(&mut bystander, "bystander-505").await;
    broker.stop().await;
}

/// Past `connections_max` a connection is closed before the handshake (AMQP has no reply
/// code to send there), while the connection in hand goes on.
#[tokio::test]
async fn a_connection_past_the_bound_is_closed_before_the_handshake() {
    let config = omnibus_amqp::AmqpConfig {
        connections_max: 1,
        ..Default::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start_in(dir.path(), config).await;
    let mut first = Raw::handshake(&broker, 0).await;

    let mut refused = TcpStream::connect(broker.address).await.unwrap();
    let _ = refused.write_all(b"AMQP\x00\x00\x09\x01").await;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), refused.read_to_end(&mut answer))
        .await
        .expect("closed within 5 s");
    // Closed either cleanly or with a reset (the protocol header may arrive after the close).
    assert!(
        read.is_err() || answer.is_empty(),
        "nothing is sent to a refused connection: {answer:?}"
    );

    first.open_channel(1).await;
    broker.stop().await;
}
