//! Live subscriptions through the engine: a live publish to a captured subject is stored and
//! then delivered; the HTTP-style publish and Kafka-style raw appends reach live subscribers.

use std::sync::Arc;

use bytes::Bytes;
use omnibus_engine::router::{
    CaptureCache, Delivery, LiveMessage, LivePublish, Mailbox, MailboxLimits,
};
use omnibus_engine::*;
use omnibus_types::{Header, Record};

const LIMITS: MailboxLimits = MailboxLimits {
    messages_max: 1000,
    bytes_max: 1 << 20,
};

async fn engine_with_stream() -> (tempfile::TempDir, Arc<Engine>) {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(EngineConfig::new(dir.path())).await.unwrap();
    engine
        .create_stream(StreamSpec {
            name: "orders".into(),
            partitions: Some(1),
            subjects: vec!["orders.>".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    (dir, engine)
}

fn message(subject: &str, payload: &'static str) -> LiveMessage {
    LiveMessage {
        subject: subject.into(),
        reply: None,
        headers: vec![Header {
            name: "kind".into(),
            value: Bytes::from_static(b"test"),
        }],
        payload: Bytes::from_static(payload.as_bytes()),
        status: None,
        appended: false,
    }
}

fn taken(mailbox: &Mailbox) -> Vec<Delivery> {
    let mut out = Vec::new();
    mailbox.take(&mut out, usize::MAX);
    out
}

async fn stored_values(engine: &Engine) -> Vec<(String, Bytes)> {
    let result = engine
        .fetch(FetchRequest {
            stream: "orders".into(),
            partition: 0,
            offset: 0,
            max_records: 100,
            max_bytes: 1 << 20,
            wait_ms: 0,
        })
        .await
        .unwrap();
    result
        .records
        .into_iter()
        .map(|record| (record.subject, record.value.unwrap_or_default()))
        .collect()
}

#[tokio::test]
async fn a_live_publish_to_a_captured_subject_is_stored_then_delivered() {
    let (_dir, engine) = engine_with_stream().await;
    let router = engine.live_router();
    let mailbox = router.mailbox(true, LIMITS);
    let _subscription = router.subscribe(&mailbox, "orders.*", None, 7).unwrap();
    let LivePublish::Captured(pending) = engine
        .publish_live(message("orders.created", "one"), None)
        .await
        .unwrap()
    else {
        panic!("orders.> captures orders.created");
    };
    let (position, routed) = pending.durable().await.unwrap();
    assert_eq!(position.offset, 0);
    assert_eq!(routed.matched, 1);
    let deliveries = taken(&mailbox);
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].token, 7);
    assert_eq!(deliveries[0].message.payload, "one");
    assert_eq!(deliveries[0].message.headers[0].name, "kind");
    assert_eq!(
        stored_values(&engine).await,
        vec![("orders.created".to_string(), Bytes::from_static(b"one"))]
    );
}

#[tokio::test]
async fn a_live_publish_to_an_uncaptured_subject_is_delivered_at_once_and_not_stored() {
    let (_dir, engine) = engine_with_stream().await;
    let router = engine.live_router();
    let mailbox = router.mailbox(true, LIMITS);
    let _subscription = router.subscribe(&mailbox, "chat.>", None, 1).unwrap();
    let outcome = engine
        .publish_live(message("chat.room", "hi"), None)
        .await
        .unwrap();
    assert!(matches!(outcome, LivePublish::Delivered(routed) if routed.matched == 1));
    assert_eq!(taken(&mailbox).len(), 1);
    let nobody = engine
        .publish_live(message("nobody.listens", "hi"), None)
        .await
        .unwrap();
    assert!(matches!(nobody, LivePublish::Delivered(routed) if routed.matched == 0));
    assert!(stored_values(&engine).await.is_empty());
    assert!(engine
        .publish_live(message("bad..subject", "x"), None)
        .await
        .is_err());
}

#[tokio::test]
async fn an_ordinary_publish_to_a_captured_subject_reaches_live_subscribers() {
    let (_dir, engine) = engine_with_stream().await;
    let router = engine.live_router();
    let mailbox = router.mailbox(true, LIMITS);
    let _subscription = router.subscribe(&mailbox, "orders.>", None, 3).unwrap();
    engine
        .publish(
            PublishTarget::Subject("orders.paid".into()),
            vec![PublishRecord {
                value: Some(Bytes::from_static(b"paid")),
                ..Default::default()
            }],
        )
        .await
        .unwrap();
    let deliveries = taken(&mailbox);
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].message.subject, "orders.paid");
    assert_eq!(deliveries[0].message.payload, "paid");
}

#[tokio::test]
async fn a_raw_append_reaches_live_subscribers_under_the_stream_name_or_stored_subject() {
    let (_dir, engine) = engine_with_stream().await;
    let router = engine.live_router();
    let mailbox = router.mailbox(true, LIMITS);
    let _all = router.subscribe(&mailbox, ">", None, 1).unwrap();
    let records: Vec<Record> = ["", "orders.shipped"]
        .into_iter()
        .map(|subject| Record {
            offset: 0,
            timestamp_ms: 1_000,
            subject: subject.to_string(),
            key: None,
            value: Some(Bytes::from_static(b"raw")),
            headers: Vec::new(),
        })
        .collect();
    let batch = omnibus_storage::batch::encode_batch(&records).unwrap();
    engine.append_raw("orders", 0, batch).await.unwrap();
    let subjects: Vec<String> = taken(&mailbox)
        .iter()
        .map(|delivery| delivery.message.subject.clone())
        .collect();
    assert_eq!(subjects, vec!["orders", "orders.shipped"]);
}

/// A subscriber that declines appended copies (the Redis door's) hears what is published to
/// a subject, captured or not, but not records written to a stream by its name; a subscriber
/// that does not decline (the NATS door's) hears both.
#[tokio::test]
async fn a_mailbox_may_decline_records_written_to_a_stream_by_name() {
    let (_dir, engine) = engine_with_stream().await;
    let router = engine.live_router();
    let hears_all = router.mailbox(true, LIMITS);
    let _all = router.subscribe(&hears_all, ">", None, 1).unwrap();
    let publishes_only = router.mailbox(true, LIMITS);
    publishes_only.set_receives_appended(false);
    let _published = router.subscribe(&publishes_only, ">", None, 2).unwrap();
    let record = |value: &'static str| PublishRecord {
        value: Some(Bytes::from_static(value.as_bytes())),
        ..Default::default()
    };

    engine
        .publish(
            PublishTarget::Stream("orders".into()),
            vec![record("by-name")],
        )
        .await
        .unwrap();
    let raw = Record {
        offset: 0,
        timestamp_ms: 1_000,
        subject: String::new(),
        key: None,
        value: Some(Bytes::from_static(b"produced")),
        headers: Vec::new(),
    };
    let batch = omnibus_storage::batch::encode_batch(&[raw]).unwrap();
    engine.append_raw("orders", 0, batch).await.unwrap();
    engine
        .publish(
            PublishTarget::Subject("orders.paid".into()),
            vec![record("to-subject")],
        )
        .await
        .unwrap();
    let captured = engine
        .publish_live(message("orders.shipped", "captured"), None)
        .await
        .unwrap();
    if let LivePublish::Captured(pending) = captured {
        pending.durable().await.unwrap();
    } else {
        panic!("orders.shipped is captured by the stream");
    }
    engine
        .publish_live(message("chat.room", "live"), None)
        .await
        .unwrap();

    let payloads = |mailbox: &Mailbox| -> Vec<Bytes> {
        taken(mailbox)
            .iter()
            .map(|delivery| delivery.message.payload.clone())
            .collect()
    };
    assert_eq!(
        payloads(&hears_all),
        vec!["by-name", "produced", "to-subject", "captured", "live"]
    );
    assert_eq!(
        payloads(&publishes_only),
        vec!["to-subject", "captured", "live"]
    );
}

#[tokio::test]
async fn without_live_subscriptions_the_router_is_idle() {
    let (_dir, engine) = engine_with_stream().await;
    assert!(!engine.live_router().is_active());
    let mailbox = engine.live_router().mailbox(true, LIMITS);
    let subscription = engine
        .live_router()
        .subscribe(&mailbox, "x", None, 1)
        .unwrap();
    assert!(engine.live_router().is_active());
    drop(subscription);
    assert!(!engine.live_router().is_active());
}

/// Whether a live publish through `cache` was captured by a stream.
async fn captured(engine: &Engine, cache: &mut CaptureCache, subject: &str) -> bool {
    let outcome = engine
        .publish_live_cached(message(subject, "x"), None, cache)
        .await
        .unwrap();
    match outcome {
        LivePublish::Captured(pending) => pending.durable().await.is_ok(),
        LivePublish::Delivered(_) | LivePublish::Enqueued { .. } => false,
    }
}

#[tokio::test]
async fn a_cached_capture_lookup_follows_streams_created_and_deleted() {
    let (_dir, engine) = engine_with_stream().await;
    let cache = &mut CaptureCache::default();
    // A run on one subject, then another subject: each looked up for what it is.
    assert!(!captured(&engine, cache, "audit.login").await);
    assert!(!captured(&engine, cache, "audit.login").await);
    assert!(captured(&engine, cache, "orders.created").await);
    assert!(!captured(&engine, cache, "audit.login").await);
    // A stream created after the lookup captures the very next publish of the same subject.
    engine
        .create_stream(StreamSpec {
            name: "audit".into(),
            partitions: Some(1),
            subjects: vec!["audit.>".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(captured(&engine, cache, "audit.login").await);
    assert!(captured(&engine, cache, "audit.login").await);
    // And once it is deleted, the next one is no longer captured.
    engine.delete_stream("audit").await.unwrap();
    assert!(!captured(&engine, cache, "audit.login").await);
}

#[tokio::test]
async fn a_cached_lookup_still_refuses_invalid_subjects() {
    let (_dir, engine) = engine_with_stream().await;
    let cache = &mut CaptureCache::default();
    assert!(captured(&engine, cache, "orders.created").await);
    assert!(cache.holds("orders.created"));
    for invalid in ["orders..created", "orders.*", "orders.>", "", "orders. x"] {
        let refused = engine
            .publish_live_cached(message(invalid, "x"), None, cache)
            .await;
        assert!(
            matches!(refused, Err(EngineError::InvalidSubject(_))),
            "{invalid:?}"
        );
        assert!(!cache.holds(invalid), "{invalid:?}");
        assert_eq!(engine.stream_capturing_cached(invalid, cache), None);
    }
    assert_eq!(stored_values(&engine).await.len(), 1);
}

#[tokio::test]
async fn a_streams_subjects_can_change_and_the_change_survives_a_restart() {
    let (dir, engine) = engine_with_stream().await;
    engine
        .create_stream(StreamSpec {
            name: "billing".into(),
            partitions: Some(1),
            subjects: vec!["billing.>".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    let info = engine
        .set_stream_subjects("orders", vec!["orders.>".into(), "returns.*".into()])
        .await
        .unwrap();
    assert_eq!(info.config.subjects, ["orders.>", "returns.*"]);
    assert_eq!(
        engine.stream_capturing("returns.eu").as_deref(),
        Some("orders")
    );
    // Another stream's subjects, and invalid patterns, are refused and change nothing.
    assert!(matches!(
        engine
            .set_stream_subjects("orders", vec!["billing.eu".into()])
            .await,
        Err(EngineError::SubjectsOverlap { .. })
    ));
    assert!(engine
        .set_stream_subjects("orders", vec!["a..b".into()])
        .await
        .is_err());
    assert!(engine
        .set_stream_subjects("orders", Vec::new())
        .await
        .is_err());
    // The refused change left no hold on its patterns: once billing is gone, another
    // stream may capture billing.eu.
    engine.delete_stream("billing").await.unwrap();
    engine
        .create_stream(StreamSpec {
            name: "eu-billing".into(),
            partitions: Some(1),
            subjects: vec!["billing.eu".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    engine.shutdown().await.unwrap();
    drop(engine);

    let engine = Engine::open(EngineConfig::new(dir.path())).await.unwrap();
    assert_eq!(
        engine.stream_capturing("returns.eu").as_deref(),
        Some("orders")
    );
    assert_eq!(
        engine.stream_capturing("orders.new").as_deref(),
        Some("orders")
    );
    engine.shutdown().await.unwrap();
}
