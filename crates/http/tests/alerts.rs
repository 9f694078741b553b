//! End-to-end tests of alarms over HTTP: a dead letter raises a firing alarm in `/v1/alerts`,
//! rules are created, listed, refused when invalid and deleted over `/v1/alerts/rules`.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{assert_error, Server};
use omnibus_engine::alerts::DiskProbe;
use omnibus_http::HttpConfig;
use reqwest::StatusCode;
use serde_json::{json, Value};

/// A broker evaluating alarms every 20 ms, on a disk that is half free.
async fn alarmed_server() -> Server {
    Server::start_with_engine(HttpConfig::default(), |config| {
        config.alerts.enabled = true;
        config.alerts.evaluate_interval_ms = 20;
        config.alerts.disk_probe = DiskProbe(Arc::new(|_| Ok((50, 100))));
    })
    .await
}

async fn wait_for_firing(server: &Server, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (status, body) = server.get("/v1/alerts?state=firing").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let found = body["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|alert| alert["id"] == id)
            .cloned();
        if let Some(alert) = found {
            return alert;
        }
        assert!(Instant::now() < deadline, "{id} never fired: {body}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_dead_lettered_message_raises_a_firing_alarm_in_the_api() {
    let server = alarmed_server().await;
    let (_, quiet) = server.get("/v1/alerts").await;
    assert_eq!(quiet, json!({"alerts": []}));
    server.create_queue(json!({"name": "work"})).await;
    server
        .post("/v1/queues/work/messages", json!({"value": "poison"}))
        .await;
    let (status, received) = server
        .post(
            "/v1/queues/work/receive",
            json!({"worker": "w1", "max": 1, "wait_ms": 1000}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{received}");
    let (status, body) = server
        .post(
            "/v1/queues/work/messages/0/term",
            json!({"attempt": 1, "reason": "cannot parse"}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");

    let alert = wait_for_firing(&server, "dlq_not_empty:work").await;
    assert_eq!(alert["rule"], "dlq_not_empty");
    assert_eq!(alert["kind"], "dlq_depth");
    assert_eq!(alert["target"], "work");
    assert_eq!(alert["state"], "firing");
    assert_eq!(
        (alert["value"].as_f64(), alert["threshold"].as_f64()),
        (Some(1.0), Some(0.0))
    );
    assert!(alert["since"].as_str().unwrap().ends_with('Z'), "{alert}");
    assert!(alert["resolved_at"].is_null(), "{alert}");
    assert!(
        alert["message"].as_str().unwrap().contains("work"),
        "{alert}"
    );

    // Redriven, the dead-letter queue is empty again and the alarm resolves.
    let (status, body) = server.post("/v1/queues/work/dlq/redrive", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_, body) = server.get("/v1/alerts?state=resolved").await;
        if body["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["id"] == "dlq_not_empty:work")
        {
            break;
        }
        assert!(Instant::now() < deadline, "never resolved: {body}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (_, firing) = server.get("/v1/alerts?state=firing").await;
    assert_eq!(firing, json!({"alerts": []}));
    server.stop().await;
}

#[tokio::test]
async fn rules_are_created_listed_and_deleted_and_invalid_ones_name_the_problem() {
    let server = Server::start().await;
    let (status, listed) = server.get("/v1/alerts/rules").await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    let names: Vec<&str> = listed["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|rule| rule["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        vec![
            "disk_free_low",
            "dlq_not_empty",
            "io_poisoned",
            "keyspace_nearly_full"
        ]
    );
    assert!(listed["rules"][0]["target"].is_null());
    assert_eq!(listed["rules"][0]["source"], "default");

    let rule = json!({
        "name": "billing_behind", "kind": "consumer_lag", "target": "orders/billing",
        "threshold": 300, "unit": "seconds", "for_seconds": 60,
    });
    let (status, stored) = server.post("/v1/alerts/rules", rule).await;
    assert_eq!(status, StatusCode::OK, "{stored}");
    assert_eq!(stored["source"], "api");
    assert_eq!(stored["enabled"], true);
    let (_, listed) = server.get("/v1/alerts/rules").await;
    let billing = listed["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|rule| rule["name"] == "billing_behind")
        .cloned()
        .unwrap();
    assert_eq!(billing["for_seconds"], 60);

    let invalid = [
        (
            json!({"name": "x", "kind": "disk_free", "threshold": 120}),
            "percentage",
        ),
        (
            json!({"name": "no spaces", "kind": "dlq_depth"}),
            "rule name",
        ),
        (
            json!({"name": "x", "kind": "dlq_depth", "threshold": -1}),
            "threshold",
        ),
        (
            json!({"name": "x", "kind": "dlq_depth", "unit": "seconds"}),
            "unit",
        ),
    ];
    for (body, problem) in invalid {
        let answer = server.post("/v1/alerts/rules", body.clone()).await;
        assert_error(&answer, StatusCode::BAD_REQUEST, "invalid_config");
        let message = answer.1["error"]["message"].as_str().unwrap();
        assert!(message.contains(problem), "{body}: {message}");
    }
    let answer = server
        .post("/v1/alerts/rules", json!({"name": "x", "kind": "lag"}))
        .await;
    assert_error(&answer, StatusCode::BAD_REQUEST, "bad_request");
    let answer = server
        .post(
            "/v1/alerts/rules",
            json!({"name": "x", "kind": "dlq_depth", "colour": 1}),
        )
        .await;
    assert_error(&answer, StatusCode::BAD_REQUEST, "bad_request");

    let (status, _) = server.delete("/v1/alerts/rules/billing_behind").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = server.delete("/v1/alerts/rules/billing_behind").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = server.get("/v1/alerts/webhooks").await;
    assert_eq!((status, body), (StatusCode::OK, json!({"webhooks": []})));
    server.stop().await;
}
