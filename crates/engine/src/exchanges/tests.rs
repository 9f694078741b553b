use std::collections::BTreeMap;
use std::sync::Arc;

use super::*;
use crate::queue::QueueSpec;
use crate::EngineConfig;

async fn engine(dir: &std::path::Path) -> Arc<Engine> {
    Engine::open(EngineConfig::new(dir)).await.unwrap()
}

fn exchange(name: &str, kind: ExchangeKind, durable: bool) -> ExchangeSpec {
    ExchangeSpec {
        name: name.into(),
        kind,
        durable,
        auto_delete: false,
        internal: false,
        alternate_exchange: None,
    }
}

fn binding(exchange: &str, queue: &str, key: &str, durable: bool) -> Binding {
    Binding {
        exchange: exchange.into(),
        queue: queue.into(),
        routing_key: key.into(),
        arguments: BTreeMap::new(),
        durable,
        to_exchange: false,
    }
}

async fn queue(engine: &Arc<Engine>, name: &str) {
    engine
        .create_queue(QueueSpec {
            name: name.into(),
            ..Default::default()
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn each_kind_routes_as_amqp_says_and_the_default_exchange_names_the_queue() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    for name in ["q1", "q2"] {
        queue(&engine, name).await;
    }
    let none = BTreeMap::new();
    assert_eq!(engine.route_exchange("", "q1", &none).unwrap(), vec!["q1"]);
    assert!(engine.route_exchange("", "nope", &none).unwrap().is_empty());

    engine
        .declare_exchange(exchange("logs", ExchangeKind::Topic, false))
        .await
        .unwrap();
    engine
        .bind_queue(binding("logs", "q1", "a.*", false))
        .await
        .unwrap();
    engine
        .bind_queue(binding("logs", "q2", "#.error", false))
        .await
        .unwrap();
    assert_eq!(
        engine.route_exchange("logs", "a.b", &none).unwrap(),
        vec!["q1"]
    );
    assert_eq!(
        engine.route_exchange("logs", "a.error", &none).unwrap(),
        vec!["q1", "q2"]
    );
    assert_eq!(
        engine.route_exchange("logs", "error", &none).unwrap(),
        vec!["q2"]
    );

    engine
        .bind_queue(binding("amq.fanout", "q1", "", false))
        .await
        .unwrap();
    engine
        .bind_queue(binding("amq.fanout", "q2", "", false))
        .await
        .unwrap();
    assert_eq!(
        engine.route_exchange("amq.fanout", "x", &none).unwrap(),
        vec!["q1", "q2"]
    );

    engine
        .bind_queue(binding("amq.direct", "q2", "k", false))
        .await
        .unwrap();
    assert_eq!(
        engine.route_exchange("amq.direct", "k", &none).unwrap(),
        vec!["q2"]
    );
    assert!(engine
        .route_exchange("amq.direct", "other", &none)
        .unwrap()
        .is_empty());
    engine
        .unbind_queue(binding("amq.direct", "q2", "k", false))
        .await
        .unwrap();
    assert!(engine
        .route_exchange("amq.direct", "k", &none)
        .unwrap()
        .is_empty());

    let mut arguments = BTreeMap::new();
    arguments.insert("x-match".to_string(), "any".to_string());
    arguments.insert("format".to_string(), "pdf".to_string());
    let mut headers_binding = binding("amq.headers", "q1", "", false);
    headers_binding.arguments = arguments;
    engine.bind_queue(headers_binding).await.unwrap();
    let mut headers = BTreeMap::new();
    headers.insert("format".to_string(), "pdf".to_string());
    assert_eq!(
        engine.route_exchange("amq.headers", "", &headers).unwrap(),
        vec!["q1"]
    );
    assert!(engine
        .route_exchange("amq.headers", "", &none)
        .unwrap()
        .is_empty());

    assert!(matches!(
        engine.route_exchange("missing", "k", &none),
        Err(EngineError::ExchangeNotFound(_))
    ));
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn redeclaring_with_another_kind_is_refused_and_built_ins_cannot_be_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    let first = engine
        .declare_exchange(exchange("e", ExchangeKind::Direct, true))
        .await;
    assert_eq!(first.unwrap(), Declared::Created);
    let again = engine
        .declare_exchange(exchange("e", ExchangeKind::Direct, true))
        .await;
    assert_eq!(again.unwrap(), Declared::Existing);
    let other = engine
        .declare_exchange(exchange("e", ExchangeKind::Fanout, true))
        .await;
    assert!(matches!(other, Err(EngineError::InvalidConfig(_))));
    assert!(engine.delete_exchange("amq.topic", false).await.is_err());
    assert!(engine
        .declare_exchange(exchange("amq.mine", ExchangeKind::Direct, true))
        .await
        .is_err());
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn durable_exchanges_and_bindings_survive_a_restart_and_transient_ones_do_not() {
    let dir = tempfile::tempdir().unwrap();
    {
        let engine = engine(dir.path()).await;
        queue(&engine, "q").await;
        engine
            .declare_exchange(exchange("kept", ExchangeKind::Topic, true))
            .await
            .unwrap();
        engine
            .declare_exchange(exchange("gone", ExchangeKind::Topic, false))
            .await
            .unwrap();
        engine
            .bind_queue(binding("kept", "q", "a.#", true))
            .await
            .unwrap();
        engine
            .bind_queue(binding("kept", "q", "b.#", false))
            .await
            .unwrap();
        engine.shutdown().await.unwrap();
    }
    let engine = engine(dir.path()).await;
    assert!(engine.exchange("kept").is_some());
    assert!(engine.exchange("gone").is_none());
    let none = BTreeMap::new();
    assert_eq!(
        engine.route_exchange("kept", "a.x", &none).unwrap(),
        vec!["q"]
    );
    assert!(engine
        .route_exchange("kept", "b.x", &none)
        .unwrap()
        .is_empty());
    engine.unbind_queue_everywhere("q").await.unwrap();
    assert!(engine
        .route_exchange("kept", "a.x", &none)
        .unwrap()
        .is_empty());
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_routed_queues_dead_letters_reach_the_queues_bound_to_its_exchange() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    queue(&engine, "work").await;
    queue(&engine, "dead").await;
    engine
        .declare_exchange(exchange("dlx", ExchangeKind::Direct, true))
        .await
        .unwrap();
    engine
        .bind_queue(binding("dlx", "dead", "failed", true))
        .await
        .unwrap();
    engine
        .set_dead_letter_route(
            "work",
            Some(DeadLetterRoute {
                exchange: "dlx".into(),
                routing_key: Some("failed".into()),
            }),
        )
        .await
        .unwrap();
    let message = crate::queue::EnqueueMessage {
        value: Some(bytes::Bytes::from_static(b"poison")),
        ..Default::default()
    };
    engine.enqueue("work", vec![message]).await.unwrap();
    let got = engine.receive("work", "w", 1, 0).await.unwrap();
    engine
        .term("work", got[0].offset, got[0].attempt, "rejected")
        .await
        .unwrap();
    let forwarded = engine.receive("dead", "w", 1, 5_000).await.unwrap();
    assert_eq!(forwarded.len(), 1);
    let record = &forwarded[0].record;
    assert_eq!(record.value.as_deref(), Some(&b"poison"[..]));
    assert!(record
        .headers
        .iter()
        .any(|h| h.name == "omnibus.dlq.source" && h.value.as_ref() == b"work"));
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_transient_queue_is_deleted_with_its_bindings_at_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    {
        let engine = engine(dir.path()).await;
        queue(&engine, "kept").await;
        queue(&engine, "passing").await;
        queue(&engine, "unmarked").await;
        engine.set_queue_transient("passing", true).await.unwrap();
        engine.set_queue_transient("unmarked", true).await.unwrap();
        engine.set_queue_transient("unmarked", false).await.unwrap();
        engine
            .bind_queue(binding("amq.fanout", "passing", "", true))
            .await
            .unwrap();
        engine
            .bind_queue(binding("amq.fanout", "kept", "", true))
            .await
            .unwrap();
        engine.shutdown().await.unwrap();
    }
    let engine = engine(dir.path()).await;
    assert!(engine.queue_info("kept").is_ok());
    assert!(engine.queue_info("unmarked").is_ok());
    assert!(engine.queue_info("passing").is_err());
    let none = BTreeMap::new();
    assert_eq!(
        engine.route_exchange("amq.fanout", "", &none).unwrap(),
        vec!["kept"]
    );
    engine.shutdown().await.unwrap();
}

/// Exchange-to-exchange bindings route on through the destination's bindings, a cycle of
/// them ends, an alternate exchange takes what no binding matched, and deleting an
/// exchange removes the bindings to it; durable ones come back after a restart.
#[tokio::test]
async fn exchange_bindings_and_alternate_exchanges_route_on() {
    let dir = tempfile::tempdir().unwrap();
    let none = BTreeMap::new();
    {
        let engine = engine(dir.path()).await;
        for name in ["audit", "orders", "unrouted"] {
            queue(&engine, name).await;
        }
        engine
            .declare_exchange(ExchangeSpec {
                alternate_exchange: Some("leftovers".into()),
                ..exchange("front", ExchangeKind::Topic, true)
            })
            .await
            .unwrap();
        for (name, kind) in [
            ("everything", ExchangeKind::Fanout),
            ("leftovers", ExchangeKind::Fanout),
        ] {
            engine
                .declare_exchange(exchange(name, kind, true))
                .await
                .unwrap();
        }
        let to_exchange = |source: &str, destination: &str, key: &str| Binding {
            to_exchange: true,
            ..binding(source, destination, key, true)
        };
        engine
            .bind_queue(to_exchange("front", "everything", "order.*"))
            .await
            .unwrap();
        // A cycle: everything -> front -> everything.
        engine
            .bind_queue(to_exchange("everything", "front", ""))
            .await
            .unwrap();
        engine
            .bind_queue(binding("everything", "audit", "", true))
            .await
            .unwrap();
        engine
            .bind_queue(binding("front", "orders", "order.created", true))
            .await
            .unwrap();
        engine
            .bind_queue(binding("leftovers", "unrouted", "", true))
            .await
            .unwrap();
        assert!(matches!(
            engine.bind_queue(to_exchange("front", "missing", "")).await,
            Err(EngineError::ExchangeNotFound(_))
        ));
        engine.shutdown().await.unwrap();
    }
    let engine = engine(dir.path()).await;
    assert_eq!(
        engine
            .route_exchange("front", "order.created", &none)
            .unwrap(),
        vec!["audit", "orders"]
    );
    assert_eq!(
        engine.route_exchange("front", "order.paid", &none).unwrap(),
        vec!["audit"]
    );
    assert_eq!(
        engine
            .route_exchange("front", "user.created", &none)
            .unwrap(),
        vec!["unrouted"]
    );
    engine.delete_exchange("everything", false).await.unwrap();
    assert_eq!(
        engine.route_exchange("front", "order.paid", &none).unwrap(),
        vec!["unrouted"],
        "the binding to the deleted exchange went with it"
    );
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_dead_letter_routed_round_a_retry_loop_keeps_every_death_oldest_first() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    queue(&engine, "work").await;
    engine
        .create_queue(crate::queue::QueueSpec {
            name: "retry".into(),
            ttl_ms: Some(50),
            ..Default::default()
        })
        .await
        .unwrap();
    for (from, to) in [("work", "retry"), ("retry", "work")] {
        engine
            .set_dead_letter_route(
                from,
                Some(DeadLetterRoute {
                    exchange: String::new(),
                    routing_key: Some(to.into()),
                }),
            )
            .await
            .unwrap();
    }
    let message = crate::queue::EnqueueMessage {
        value: Some(bytes::Bytes::from_static(b"flaky")),
        ..Default::default()
    };
    engine.enqueue("work", vec![message]).await.unwrap();
    for _ in 0..2 {
        let got = engine.receive("work", "w", 1, 5_000).await.unwrap();
        engine
            .term("work", got[0].offset, got[0].attempt, "rejected")
            .await
            .unwrap();
    }
    let got = engine.receive("work", "w", 1, 5_000).await.unwrap();
    let field = |death: &crate::queue::deaths::Death, name: &str| {
        String::from_utf8_lossy(death.field(name).unwrap_or(b"-")).into_owned()
    };
    let history: Vec<(String, String, String, u64)> =
        crate::queue::deaths::deaths(&got[0].record.headers)
            .iter()
            .map(|d| {
                (
                    field(d, "source"),
                    field(d, "reason"),
                    field(d, "routing_key"),
                    d.count,
                )
            })
            .collect();
    let expected: Vec<(String, String, String, u64)> = [
        ("retry", "message expired (TTL)", "retry", 1),
        ("work", "terminated: rejected", "-", 2),
        ("retry", "message expired (TTL)", "retry", 1),
    ]
    .iter()
    .map(|(s, r, k, c)| (s.to_string(), r.to_string(), k.to_string(), *c))
    .collect();
    assert_eq!(history, expected);
    // The newest death is under the plain names, once.
    let sources: Vec<_> = got[0]
        .record
        .headers
        .iter()
        .filter(|h| h.name == "omnibus.dlq.source")
        .collect();
    assert_eq!(sources.len(), 1);
    assert_eq!(sources[0].value.as_ref(), b"retry");
    engine.shutdown().await.unwrap();
}

#[test]
fn headers_with_x_compare_the_x_arguments_too() {
    let text = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect()
    };
    let binding = |matching: &str| text(&[("x-match", matching), ("x-h", "1"), ("h", "v")]);
    let plain = text(&[("h", "v")]);
    let with_x = text(&[("h", "v"), ("x-h", "1")]);
    let only_x = text(&[("x-h", "1")]);
    assert!(super::headers_match(&binding("all"), &plain));
    assert!(!super::headers_match(&binding("all-with-x"), &plain));
    assert!(super::headers_match(&binding("all-with-x"), &with_x));
    assert!(!super::headers_match(&binding("any"), &only_x));
    assert!(super::headers_match(&binding("any-with-x"), &only_x));
}
