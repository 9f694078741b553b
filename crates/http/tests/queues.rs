//! End-to-end tests of queues over HTTP: enqueue, receive, ack / nack / extend / term with
//! attempt numbers, priorities and delays, dead letters and redrive, pause and resume, and the
//! errors for bad input.

mod common;

use std::time::{Duration, Instant};

use common::{assert_error, Server};
use omnibus_http::HttpConfig;
use reqwest::StatusCode;
use serde_json::{json, Value};

/// A queue whose failed attempts come back at once.
fn quick_retry_queue(name: &str, max_deliver: u32) -> Value {
    json!({
        "name": name,
        "max_deliver": max_deliver,
        "backoff": {"kind": "fixed", "delay_ms": 0},
        "jitter": 0.0,
    })
}

async fn receive(server: &Server, queue: &str, max: usize, wait_ms: u64) -> Vec<Value> {
    let (status, body) = server
        .post(
            &format!("/v1/queues/{queue}/receive"),
            json!({"worker": "w1", "max": max, "wait_ms": wait_ms}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["messages"].as_array().expect("messages").clone()
}

fn values(messages: &[Value]) -> Vec<&str> {
    messages
        .iter()
        .map(|message| message["value"].as_str().expect("text value"))
        .collect()
}

#[tokio::test]
async fn a_nacked_message_comes_back_as_attempt_2_and_a_stale_ack_is_refused() {
    let server = Server::start().await;
    let created = server.create_queue(quick_retry_queue("work", 3)).await;
    assert_eq!(created["name"], "work");
    assert_eq!(created["dead_letter"], "work.dlq");
    assert_eq!(created["backoff"], json!({"kind": "fixed", "delay_ms": 0}));

    let (status, enqueued) = server
        .post(
            "/v1/queues/work/messages",
            json!({"key": "k1", "value": {"task": 1}, "headers": {"trace": "t1"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{enqueued}");
    assert_eq!(enqueued, json!({"ids": [0]}));

    let first = receive(&server, "work", 10, 0).await;
    assert_eq!(first.len(), 1);
    let message = &first[0];
    assert_eq!(message["id"], 0);
    assert_eq!(message["attempt"], 1);
    assert_eq!(message["key"], "k1");
    assert_eq!(message["value"], r#"{"task":1}"#);
    assert_eq!(message["priority"], 0);
    // The broker's own scheduling headers are not shown.
    assert_eq!(message["headers"], json!({"trace": "t1"}));
    assert!(
        message["lease_deadline_ms"].as_i64().unwrap() > message["timestamp_ms"].as_i64().unwrap()
    );

    let (status, body) = server
        .post(
            "/v1/queues/work/messages/0/nack",
            json!({"attempt": 1, "error": "flaky", "delay_ms": 0}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");

    let second = receive(&server, "work", 10, 2_000).await;
    assert_eq!(second.len(), 1);
    assert_eq!(
        (second[0]["id"].clone(), second[0]["attempt"].clone()),
        (json!(0), json!(2))
    );

    let stale = server
        .post("/v1/queues/work/messages/0/ack", json!({"attempt": 1}))
        .await;
    assert_error(&stale, StatusCode::CONFLICT, "stale_attempt");
    let (status, body) = server
        .post("/v1/queues/work/messages/0/ack", json!({"attempt": 2}))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let again = server
        .post("/v1/queues/work/messages/0/ack", json!({"attempt": 2}))
        .await;
    assert_error(&again, StatusCode::NOT_FOUND, "unknown_delivery");

    let (status, info) = server.get("/v1/queues/work").await;
    assert_eq!(status, StatusCode::OK, "{info}");
    assert_eq!(
        (
            info["ready"].clone(),
            info["leased"].clone(),
            info["ack_floor"].clone()
        ),
        (json!(0), json!(0), json!(1))
    );
    assert!(info["jobs"].is_object(), "{info}");
    assert!(receive(&server, "work", 10, 0).await.is_empty());
    server.stop().await;
}

#[tokio::test]
async fn extend_pushes_the_lease_out_and_term_dead_letters_with_the_reason() {
    let server = Server::start().await;
    server
        .create_queue(json!({"name": "jobs", "lease_ms": 1_000}))
        .await;
    server
        .post("/v1/queues/jobs/messages", json!({"value": "long task"}))
        .await;
    let delivered = receive(&server, "jobs", 1, 0).await;
    let deadline = delivered[0]["lease_deadline_ms"].as_i64().unwrap();

    let (status, extended) = server
        .post(
            "/v1/queues/jobs/messages/0/extend",
            json!({"attempt": 1, "lease_ms": 60_000}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{extended}");
    assert!(extended["lease_deadline_ms"].as_i64().unwrap() >= deadline + 50_000);

    let (status, body) = server
        .post(
            "/v1/queues/jobs/messages/0/term",
            json!({"attempt": 1, "reason": "cannot parse"}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, letters) = server.get("/v1/queues/jobs/dlq").await;
    assert_eq!(status, StatusCode::OK, "{letters}");
    let records = letters["records"].as_array().unwrap();
    assert_eq!(records.len(), 1, "{letters}");
    assert_eq!(records[0]["value"], "long task");
    let reason = records[0]["headers"]["omnibus.dlq.reason"]
        .as_str()
        .unwrap();
    assert!(reason.contains("cannot parse"), "{reason}");
    assert_eq!(records[0]["headers"]["omnibus.dlq.source"], "jobs");
    server.stop().await;
}

#[tokio::test]
async fn higher_priorities_come_first_and_a_delayed_message_waits_until_due() {
    let server = Server::start().await;
    server.create_queue(json!({"name": "ordered"})).await;
    let enqueued_at = Instant::now();
    let (status, body) = server
        .post(
            "/v1/queues/ordered/messages",
            json!({"messages": [
                {"value": "low-1"},
                {"value": "high", "priority": 9},
                {"value": "later", "priority": 9, "delay_ms": 400},
                {"value": "mid", "priority": 5},
                {"value": "low-2", "priority": 0},
            ]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["ids"], json!([0, 1, 2, 3, 4]));

    let ready = receive(&server, "ordered", 10, 0).await;
    assert_eq!(values(&ready), vec!["high", "mid", "low-1", "low-2"]);
    assert_eq!(ready[0]["priority"], 9);
    assert_eq!(ready[1]["priority"], 5);

    let delayed = receive(&server, "ordered", 10, 5_000).await;
    assert_eq!(values(&delayed), vec!["later"]);
    assert!(
        enqueued_at.elapsed() >= Duration::from_millis(400),
        "delivered after {:?}",
        enqueued_at.elapsed()
    );
    server.stop().await;
}

#[tokio::test]
async fn a_poison_message_dead_letters_after_max_deliver_and_redrive_brings_it_back() {
    let server = Server::start().await;
    server.create_queue(quick_retry_queue("orders", 2)).await;
    server
        .post(
            "/v1/queues/orders/messages",
            json!({"value": "poison", "priority": 3}),
        )
        .await;
    for attempt in 1..=2 {
        let delivered = receive(&server, "orders", 1, 2_000).await;
        assert_eq!(delivered.len(), 1, "attempt {attempt}");
        assert_eq!(delivered[0]["attempt"], attempt);
        let (status, body) = server
            .post(
                "/v1/queues/orders/messages/0/nack",
                json!({"attempt": attempt, "error": format!("bad input {attempt}")}),
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    }
    assert!(receive(&server, "orders", 1, 200).await.is_empty());

    let (_, letters) = server.get("/v1/queues/orders/dlq?offset=0&limit=10").await;
    let records = letters["records"].as_array().unwrap();
    assert_eq!(records.len(), 1, "{letters}");
    let headers = &records[0]["headers"];
    assert_eq!(
        headers["omnibus.dlq.last_error"], "bad input 2",
        "{headers}"
    );
    assert_eq!(headers["omnibus.dlq.attempts"], "2", "{headers}");
    let (_, info) = server.get("/v1/queues/orders").await;
    assert_eq!(info["dead_letter_depth"], 1, "{info}");

    let (status, redriven) = server.post_empty("/v1/queues/orders/dlq/redrive").await;
    assert_eq!(status, StatusCode::OK, "{redriven}");
    assert_eq!(redriven, json!({"redriven": 1}));
    let back = receive(&server, "orders", 1, 2_000).await;
    assert_eq!(values(&back), vec!["poison"]);
    assert_eq!(back[0]["attempt"], 1);
    assert_eq!(back[0]["priority"], 3);
    let (_, again) = server
        .post("/v1/queues/orders/dlq/redrive", json!({"max": 5}))
        .await;
    assert_eq!(again, json!({"redriven": 0}));
    server.stop().await;
}

#[tokio::test]
async fn pause_stops_receive_and_resume_wakes_a_waiting_receiver() {
    let server = Server::start().await;
    server.create_queue(json!({"name": "paused"})).await;
    server
        .post("/v1/queues/paused/messages", json!({"value": "held"}))
        .await;
    let (status, body) = server.post_empty("/v1/queues/paused/pause").await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (_, info) = server.get("/v1/queues/paused").await;
    assert_eq!(info["paused"], true, "{info}");
    assert!(receive(&server, "paused", 1, 300).await.is_empty());

    let started = Instant::now();
    let (delivered, resumed) = tokio::join!(receive(&server, "paused", 1, 10_000), async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        server.post_empty("/v1/queues/paused/resume").await
    });
    assert_eq!(resumed.0, StatusCode::NO_CONTENT, "{}", resumed.1);
    assert_eq!(values(&delivered), vec!["held"]);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    server.stop().await;
}

#[tokio::test]
async fn queue_administration_lists_purges_and_deletes() {
    let server = Server::start().await;
    server.create_queue(json!({"name": "a"})).await;
    let keyed = server
        .create_queue(json!({"name": "b", "ttl_ms": 60_000, "mode": "key_shared"}))
        .await;
    assert_eq!(
        (keyed["mode"].clone(), keyed["ttl_ms"].clone()),
        (json!("key_shared"), json!(60_000))
    );
    let again = server.post("/v1/queues", json!({"name": "a"})).await;
    assert_error(&again, StatusCode::CONFLICT, "queue_exists");

    let (_, listed) = server.get("/v1/queues").await;
    let mut names: Vec<&str> = listed["queues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|queue| queue["name"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(names, vec!["a", "b"]);

    server
        .post(
            "/v1/queues/a/messages",
            json!({"messages": [{"value": "1"}, {"value": "2", "delay_ms": 60_000}, {"value": "3"}]}),
        )
        .await;
    let (status, purged) = server.post_empty("/v1/queues/a/purge").await;
    assert_eq!(status, StatusCode::OK, "{purged}");
    assert_eq!(purged, json!({"purged": 3}));
    assert!(receive(&server, "a", 10, 0).await.is_empty());

    let (status, _) = server.delete("/v1/queues/a").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_error(
        &server.get("/v1/queues/a").await,
        StatusCode::NOT_FOUND,
        "queue_not_found",
    );
    server.stop().await;
}

#[tokio::test]
async fn bad_queue_input_gets_stable_error_codes_and_stores_nothing() {
    let server = Server::start_with(HttpConfig {
        body_bytes_max: 8 * 1024 * 1024,
        ..HttpConfig::default()
    })
    .await;
    let bad_backoff = server
        .post(
            "/v1/queues",
            json!({"name": "q", "backoff": {"kind": "exponential", "initial_ms": 1, "max_ms": 10, "multiplier": 0.5}}),
        )
        .await;
    assert_error(&bad_backoff, StatusCode::BAD_REQUEST, "bad_request");
    let unknown_field = server
        .post("/v1/queues", json!({"name": "q", "lease": 5}))
        .await;
    assert_error(&unknown_field, StatusCode::BAD_REQUEST, "bad_request");
    server.create_queue(json!({"name": "q"})).await;

    for path in [
        "/v1/queues/nope/messages",
        "/v1/queues/nope/receive",
        "/v1/queues/nope/messages/0/ack",
        "/v1/queues/nope/pause",
        "/v1/queues/nope/purge",
        "/v1/queues/nope/dlq/redrive",
    ] {
        let body = json!({"value": "x", "worker": "w", "attempt": 1});
        let body = match path {
            p if p.ends_with("/messages") => json!({"value": "x"}),
            p if p.ends_with("/receive") => json!({"worker": "w"}),
            p if p.ends_with("/ack") => json!({"attempt": 1}),
            _ => body,
        };
        let answer = if path.ends_with("/pause") || path.ends_with("/purge") {
            server.post_empty(path).await
        } else if path.ends_with("/redrive") {
            server.post(path, json!({})).await
        } else {
            server.post(path, body).await
        };
        assert_error(&answer, StatusCode::NOT_FOUND, "queue_not_found");
    }
    assert_error(
        &server.get("/v1/queues/nope/dlq").await,
        StatusCode::NOT_FOUND,
        "queue_not_found",
    );

    for bad in [
        json!({"value": "x", "priority": 10}),
        json!({"value": "x", "priority": -1}),
        json!({"value": "x", "delay_ms": -5}),
        json!({"value": "x", "delay_ms": 1u64 << 62}),
        json!({"value": "x", "ttl_ms": u64::MAX}),
        json!({"value": "x", "headers": {"omnibus.priority": "9"}}),
        json!({"messages": [{"value": "fine"}, {"value": "x", "priority": 12}]}),
    ] {
        let answer = server.post("/v1/queues/q/messages", bad.clone()).await;
        assert_error(&answer, StatusCode::BAD_REQUEST, "bad_request");
    }
    let oversized = json!({"value": "x".repeat(2 * 1024 * 1024)});
    let answer = server.post("/v1/queues/q/messages", oversized).await;
    assert_error(&answer, StatusCode::PAYLOAD_TOO_LARGE, "message_too_large");

    let no_worker = server
        .post("/v1/queues/q/receive", json!({"worker": ""}))
        .await;
    assert_error(&no_worker, StatusCode::BAD_REQUEST, "bad_request");
    let bad_id = server
        .post("/v1/queues/q/messages/x/ack", json!({"attempt": 1}))
        .await;
    assert_error(&bad_id, StatusCode::BAD_REQUEST, "bad_request");
    let never_delivered = server
        .post("/v1/queues/q/messages/7/nack", json!({"attempt": 1}))
        .await;
    assert_error(&never_delivered, StatusCode::NOT_FOUND, "unknown_delivery");
    let absurd_nack = server
        .post(
            "/v1/queues/q/messages/7/nack",
            json!({"attempt": 1, "delay_ms": 1u64 << 62}),
        )
        .await;
    assert_error(&absurd_nack, StatusCode::BAD_REQUEST, "bad_request");

    // Nothing above was enqueued.
    let (_, info) = server.get("/v1/queues/q").await;
    assert_eq!(info["enqueued_total"], 0, "{info}");
    server.stop().await;
}

#[tokio::test]
async fn a_repeated_message_id_is_stored_once_and_a_full_queue_refuses_new_messages() {
    let server = Server::start().await;
    server
        .create_queue(json!({"name": "dedup", "max_length": 2, "dedup_window_ms": 60_000}))
        .await;
    let message = json!({"value": "charge order 7", "message_id": "order-7"});
    let (_, first) = server
        .post("/v1/queues/dedup/messages", message.clone())
        .await;
    let (status, second) = server.post("/v1/queues/dedup/messages", message).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    assert_eq!(second, first, "the repeat answers with the first id");
    let (_, info) = server.get("/v1/queues/dedup").await;
    assert_eq!(info["ready"], 1, "{info}");

    server
        .post("/v1/queues/dedup/messages", json!({"value": "two"}))
        .await;
    let full = server
        .post("/v1/queues/dedup/messages", json!({"value": "three"}))
        .await;
    assert_error(&full, StatusCode::TOO_MANY_REQUESTS, "queue_full");
    assert_eq!(
        values(&receive(&server, "dedup", 10, 0).await),
        vec!["charge order 7", "two"]
    );
    let empty_id = server
        .post(
            "/v1/queues/dedup/messages",
            json!({"value": "x", "message_id": ""}),
        )
        .await;
    assert_error(&empty_id, StatusCode::BAD_REQUEST, "bad_request");
    server.stop().await;
}

#[tokio::test]
async fn max_bytes_is_enforced_and_the_stats_show_waiting_bytes_and_rates() {
    let server = Server::start().await;
    let created = server
        .create_queue(json!({"name": "sized", "max_bytes": 250, "overflow": "dead_letter_oldest"}))
        .await;
    assert_eq!(
        (
            created["max_bytes"].clone(),
            created["waiting_bytes"].clone()
        ),
        (json!(250), json!(0))
    );
    for value in ["a".repeat(100), "b".repeat(100), "c".repeat(100)] {
        let (status, body) = server
            .post("/v1/queues/sized/messages", json!({ "value": value }))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    // The third did not fit under 250 bytes: the oldest went to the dead-letter stream.
    let (_, info) = server.get("/v1/queues/sized").await;
    assert_eq!(info["waiting_bytes"], 200, "{info}");
    assert_eq!(info["dead_letter_depth"], 1, "{info}");
    let (_, letters) = server.get("/v1/queues/sized/dlq").await;
    let letter = &letters["records"][0];
    assert_eq!(letter["value"], "a".repeat(100), "{letters}");
    assert_eq!(
        letter["headers"]["omnibus.dlq.reason"],
        "queue full (max_bytes): oldest message dead-lettered"
    );
    let too_big = server
        .post(
            "/v1/queues/sized/messages",
            json!({"value": "x".repeat(251)}),
        )
        .await;
    assert_error(&too_big, StatusCode::PAYLOAD_TOO_LARGE, "message_too_large");

    let delivered = receive(&server, "sized", 1, 0).await;
    assert_eq!(values(&delivered), vec!["b".repeat(100)]);
    let (status, body) = server
        .post("/v1/queues/sized/messages/1/ack", json!({"attempt": 1}))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (_, info) = server.get("/v1/queues/sized").await;
    assert_eq!(info["waiting_bytes"], 100, "{info}");
    let rates = &info["rates"];
    let counts: Vec<&Value> = [
        "enqueued",
        "delivered",
        "completed",
        "failed",
        "dead_lettered",
    ]
    .iter()
    .map(|kind| &rates[kind]["last_minute"])
    .collect();
    assert_eq!(
        counts,
        [&json!(3), &json!(1), &json!(1), &json!(0), &json!(1)],
        "{info}"
    );
    assert!(
        rates["enqueued"]["per_second"].as_f64().unwrap() > 0.0,
        "{info}"
    );

    // Every field of the answer is described in openapi.json.
    let (_, document) = server.get("/openapi.json").await;
    let schemas = &document["components"]["schemas"];
    for (object, schema) in [
        (&info, "QueueInfo"),
        (rates, "QueueRates"),
        (&rates["failed"], "Rate"),
    ] {
        for field in object.as_object().unwrap().keys() {
            let described = schemas[schema]["properties"].get(field).is_some();
            assert!(
                described || field == "jobs",
                "{schema}.{field} is not in openapi.json"
            );
        }
    }

    let strict = server
        .create_queue(json!({"name": "strict", "max_bytes": 100}))
        .await;
    assert_eq!(strict["overflow"], "reject_new");
    server
        .post(
            "/v1/queues/strict/messages",
            json!({"value": "y".repeat(100)}),
        )
        .await;
    let full = server
        .post("/v1/queues/strict/messages", json!({"value": "z"}))
        .await;
    assert_error(&full, StatusCode::TOO_MANY_REQUESTS, "queue_full");
    let zero = server
        .post("/v1/queues", json!({"name": "zero", "max_bytes": 0}))
        .await;
    assert_error(&zero, StatusCode::BAD_REQUEST, "invalid_config");
    server.stop().await;
}

#[tokio::test]
async fn completions_are_fsync_by_default_and_batched_on_request() {
    let server = Server::start().await;
    let default = server.create_queue(json!({"name": "careful"})).await;
    assert_eq!(default["completions"], "fsync", "{default}");
    let batched = server
        .create_queue(json!({"name": "quick", "completions": "batched"}))
        .await;
    assert_eq!(batched["completions"], "batched", "{batched}");
    let (_, info) = server.get("/v1/queues/quick").await;
    assert_eq!(info["completions"], "batched", "{info}");
    let wrong = server
        .post(
            "/v1/queues",
            json!({"name": "odd", "completions": "sometimes"}),
        )
        .await;
    assert_error(&wrong, StatusCode::BAD_REQUEST, "bad_request");

    // A batched ack is answered, and the message is not delivered again.
    server
        .post("/v1/queues/quick/messages", json!({"value": "one"}))
        .await;
    let got = receive(&server, "quick", 1, 0).await;
    let (status, _) = server
        .post(
            &format!("/v1/queues/quick/messages/{}/ack", got[0]["id"]),
            json!({"attempt": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(receive(&server, "quick", 1, 0).await.is_empty());
    server.stop().await;
}
