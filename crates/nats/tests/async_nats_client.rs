//! The Rust NATS client, async-nats, against the NATS door: what services do with it.

mod support;

use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use omnibus_engine::StreamSpec;
use omnibus_nats::NatsConfig;
use support::Broker;

const WAIT: Duration = Duration::from_secs(5);

async fn next(subscriber: &mut async_nats::Subscriber) -> async_nats::Message {
    tokio::time::timeout(WAIT, subscriber.next())
        .await
        .expect("a message within 5 s")
        .expect("the subscription is open")
}

/// Nothing more arrives within a short while.
async fn assert_quiet(subscriber: &mut async_nats::Subscriber) {
    let more = tokio::time::timeout(Duration::from_millis(200), subscriber.next()).await;
    assert!(more.is_err(), "unexpected message: {more:?}");
}

#[tokio::test]
async fn wildcard_subscriptions_receive_what_they_match() {
    let broker = Broker::start().await;
    let client = broker.client().await;
    let mut one_token = client.subscribe("orders.*").await.unwrap();
    let mut the_rest = client.subscribe("orders.>").await.unwrap();
    client.flush().await.unwrap();
    client.publish("orders.created", "a".into()).await.unwrap();
    client
        .publish("orders.created.eu", "b".into())
        .await
        .unwrap();
    client.publish("users.created", "c".into()).await.unwrap();
    client.flush().await.unwrap();
    let message = next(&mut one_token).await;
    assert_eq!(message.subject.as_str(), "orders.created");
    assert_eq!(message.payload, "a");
    assert_quiet(&mut one_token).await;
    assert_eq!(next(&mut the_rest).await.payload, "a");
    assert_eq!(next(&mut the_rest).await.payload, "b");
    assert_quiet(&mut the_rest).await;
}

#[tokio::test]
async fn a_queue_group_splits_the_load_between_its_members() {
    let broker = Broker::start().await;
    let first = broker.client().await;
    let second = broker.client().await;
    let publisher = broker.client().await;
    let mut a = first
        .queue_subscribe("work", "workers".into())
        .await
        .unwrap();
    let mut b = second
        .queue_subscribe("work", "workers".into())
        .await
        .unwrap();
    let mut watcher = publisher.subscribe("work").await.unwrap();
    first.flush().await.unwrap();
    second.flush().await.unwrap();
    for index in 0..100 {
        publisher
            .publish("work", index.to_string().into())
            .await
            .unwrap();
    }
    publisher.flush().await.unwrap();
    let mut seen = Vec::new();
    for _ in 0..100 {
        seen.push(next(&mut watcher).await.payload);
    }
    let mut received = (0, 0);
    let mut group_payloads = Vec::new();
    while received.0 + received.1 < 100 {
        tokio::select! {
            Some(message) = a.next() => { received.0 += 1; group_payloads.push(message.payload) }
            Some(message) = b.next() => { received.1 += 1; group_payloads.push(message.payload) }
            () = tokio::time::sleep(WAIT) => panic!("only {received:?} of 100 reached the group"),
        }
    }
    assert!(
        received.0 > 20 && received.1 > 20,
        "unfair split {received:?}"
    );
    group_payloads.sort();
    seen.sort();
    assert_eq!(
        group_payloads, seen,
        "each message went to exactly one member"
    );
    assert_quiet(&mut a).await;
    assert_quiet(&mut b).await;
}

#[tokio::test]
async fn headers_travel_with_the_message() {
    let broker = Broker::start().await;
    let client = broker.client().await;
    let mut subscriber = client.subscribe("with.headers").await.unwrap();
    client.flush().await.unwrap();
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Trace-Id", "abc123");
    headers.append("Multi", "one");
    headers.append("Multi", "two");
    client
        .publish_with_headers("with.headers", headers, "body".into())
        .await
        .unwrap();
    let message = next(&mut subscriber).await;
    let received = message.headers.expect("headers");
    assert_eq!(received.get("Trace-Id").map(|v| v.as_str()), Some("abc123"));
    let multi: Vec<&str> = received
        .get_all("Multi")
        .map(|value| value.as_str())
        .collect();
    assert_eq!(multi, vec!["one", "two"]);
    assert_eq!(message.payload, "body");
}

#[tokio::test]
async fn request_reply_through_the_muxed_inbox() {
    let broker = Broker::start().await;
    let responder = broker.client().await;
    let mut service = responder.subscribe("user.profile").await.unwrap();
    responder.flush().await.unwrap();
    tokio::spawn(async move {
        while let Some(request) = service.next().await {
            let reply = request.reply.expect("a request has a reply subject");
            let answer = format!("profile of {}", String::from_utf8_lossy(&request.payload));
            responder.publish(reply, answer.into()).await.unwrap();
        }
    });
    let client = broker.client().await;
    for user in ["ada", "grace", "linus"] {
        let response = tokio::time::timeout(WAIT, client.request("user.profile", user.into()))
            .await
            .expect("an answer within 5 s")
            .unwrap();
        assert_eq!(response.payload, Bytes::from(format!("profile of {user}")));
    }
}

#[tokio::test]
async fn a_request_nobody_listens_to_fails_with_no_responders() {
    let broker = Broker::start().await;
    let client = broker.client().await;
    let error = tokio::time::timeout(WAIT, client.request("nobody.home", "?".into()))
        .await
        .expect("an answer within 5 s, not a timeout")
        .unwrap_err();
    assert_eq!(error.kind(), async_nats::RequestErrorKind::NoResponders);
}

#[tokio::test]
async fn echo_off_keeps_a_client_from_its_own_messages() {
    let broker = Broker::start().await;
    let quiet = async_nats::ConnectOptions::new()
        .no_echo()
        .connect(broker.url())
        .await
        .unwrap();
    let other = broker.client().await;
    let mut own = quiet.subscribe("room").await.unwrap();
    let mut theirs = other.subscribe("room").await.unwrap();
    quiet.flush().await.unwrap();
    other.flush().await.unwrap();
    quiet.publish("room", "from quiet".into()).await.unwrap();
    quiet.flush().await.unwrap();
    other.publish("room", "from other".into()).await.unwrap();
    other.flush().await.unwrap();
    assert_eq!(next(&mut own).await.payload, "from other");
    assert_quiet(&mut own).await;
    assert_eq!(next(&mut theirs).await.payload, "from quiet");
    assert_eq!(next(&mut theirs).await.payload, "from other");
}

#[tokio::test]
async fn an_oversized_payload_is_refused() {
    let broker = Broker::with_config(NatsConfig {
        max_payload: 1024,
        ..NatsConfig::default()
    })
    .await;
    let client = broker.client().await;
    assert_eq!(client.server_info().max_payload, 1024);
    // async-nats checks INFO's max_payload itself.
    let refused = client.publish("big", vec![0u8; 2048].into()).await;
    assert!(refused.is_err());
    // A client that does not check gets the protocol's error and is disconnected.
    let mut raw = broker.raw().await;
    raw.send("PUB big 2048\r\n").await;
    assert_eq!(raw.line().await, "-ERR 'Maximum Payload Violation'");
    raw.until_closed().await;
    // The well-behaved client is unaffected.
    let mut subscriber = client.subscribe("small").await.unwrap();
    client.publish("small", "ok".into()).await.unwrap();
    assert_eq!(next(&mut subscriber).await.payload, "ok");
}

/// A subscriber that stops reading is cut off once its bound is reached; another subscriber
/// of the same subject keeps receiving everything.
#[tokio::test]
async fn a_slow_consumer_is_cut_off_while_another_keeps_receiving() {
    let broker = Broker::with_config(NatsConfig {
        pending_bytes_max: 1024 * 1024,
        ..NatsConfig::default()
    })
    .await;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stalled = support::Raw::new(socket.connect(broker.nats).await.unwrap());
    stalled
        .send("CONNECT {\"verbose\":false}\r\nSUB feed 1\r\nPING\r\n")
        .await;
    let healthy = broker.client().await;
    let mut subscriber = healthy.subscribe("feed").await.unwrap();
    healthy.flush().await.unwrap();
    let publisher = broker.client().await;
    let payload = Bytes::from(vec![b'x'; 4096]);
    let router = broker.engine.live_router().clone();
    // Both subscriptions exist before the load starts (the stalled one is not confirmed).
    let deadline = std::time::Instant::now() + WAIT;
    while router.subscription_count() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the stalled SUB never arrived"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut sent = 0;
    // Round by round, so the healthy subscriber never falls behind: until the stalled
    // connection's subscription is gone.
    while router.subscription_count() == 2 {
        assert!(sent < 50_000, "the stalled connection was never cut off");
        for _ in 0..100 {
            publisher.publish("feed", payload.clone()).await.unwrap();
        }
        publisher.flush().await.unwrap();
        for _ in 0..100 {
            next(&mut subscriber).await;
        }
        sent += 100;
    }
    publisher.publish("feed", "after".into()).await.unwrap();
    assert_eq!(next(&mut subscriber).await.payload, "after");
    let everything = stalled.until_closed().await;
    assert!(
        !everything.contains("-ERR"),
        "nats-server cuts slow consumers off without -ERR"
    );
}

#[tokio::test]
async fn publishes_cross_between_http_and_nats_on_a_captured_subject() {
    let broker = Broker::start().await;
    broker
        .engine
        .create_stream(StreamSpec {
            name: "orders".into(),
            partitions: Some(1),
            subjects: vec!["orders.>".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    let client = broker.client().await;
    let mut subscriber = client.subscribe("orders.*").await.unwrap();
    client.flush().await.unwrap();
    let http = reqwest::Client::new();
    let answer = http
        .post(format!(
            "http://{}/v1/subjects/orders.paid/records",
            broker.http
        ))
        .json(&serde_json::json!({"value": "from http", "headers": {"source": "web"}}))
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_success(), "{answer:?}");
    let message = next(&mut subscriber).await;
    assert_eq!(message.subject.as_str(), "orders.paid");
    assert_eq!(message.payload, "from http");
    assert_eq!(
        message
            .headers
            .expect("headers")
            .get("source")
            .map(|v| v.as_str()),
        Some("web")
    );
    client
        .publish("orders.created", "from nats".into())
        .await
        .unwrap();
    assert_eq!(next(&mut subscriber).await.payload, "from nats");
    let fetched: serde_json::Value = http
        .get(format!(
            "http://{}/v1/streams/orders/partitions/0/records?offset=0",
            broker.http
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let records = fetched["records"].as_array().unwrap();
    let stored: Vec<(&str, &str)> = records
        .iter()
        .map(|r| (r["subject"].as_str().unwrap(), r["value"].as_str().unwrap()))
        .collect();
    assert_eq!(
        stored,
        vec![
            ("orders.paid", "from http"),
            ("orders.created", "from nats")
        ]
    );
}

#[tokio::test]
async fn core_publishes_read_together_keep_their_order_and_precede_a_later_subscription() {
    // Many core publishes arrive in one read: runs on one subject, subject changes, headers,
    // and a SUB after them on the same connection behave as if each came on its own.
    let broker = Broker::start().await;
    let subscriber = broker.client().await;
    let mut everything = subscriber.subscribe("batch.>").await.unwrap();
    subscriber.flush().await.unwrap();
    let publisher = broker.client().await;
    for index in 0..300u32 {
        let subject = if (index / 7) % 2 == 0 {
            "batch.a"
        } else {
            "batch.b"
        };
        let payload = Bytes::from(index.to_string());
        if index % 5 == 0 {
            let mut headers = async_nats::HeaderMap::new();
            headers.insert("index", index.to_string().as_str());
            publisher
                .publish_with_headers(subject, headers, payload)
                .await
                .unwrap();
        } else {
            publisher.publish(subject, payload).await.unwrap();
        }
    }
    let mut late = publisher.subscribe("batch.a").await.unwrap();
    publisher.flush().await.unwrap();
    for index in 0..300u32 {
        let message = next(&mut everything).await;
        let subject = if (index / 7) % 2 == 0 {
            "batch.a"
        } else {
            "batch.b"
        };
        assert_eq!(message.subject.as_str(), subject, "message {index}");
        assert_eq!(message.payload, index.to_string(), "in the order published");
        let header = message
            .headers
            .as_ref()
            .and_then(|headers| headers.get("index"))
            .map(|value| value.as_str().to_string());
        assert_eq!(
            header,
            (index % 5 == 0).then(|| index.to_string()),
            "message {index}"
        );
    }
    assert_quiet(&mut everything).await;
    assert_quiet(&mut late).await;
}
