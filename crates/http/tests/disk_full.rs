//! The HTTP door on a full disk: 507 `disk_full` for a refused publish, 503 degraded health
//! with the reason, and both back to normal once the disk has room.

use std::sync::Arc;
use std::time::{Duration, Instant};

use omnibus_engine::{Engine, EngineConfig};
use omnibus_http::{serve, HttpConfig};
use omnibus_storage::io::{FaultPlan, FaultyIo, FileIo};
use reqwest::StatusCode;
use serde_json::{json, Value};

async fn call(request: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let response = request.send().await.unwrap();
    let status = response.status();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_answers_507_and_degrades_health_until_space_returns() {
    let dir = tempfile::tempdir().unwrap();
    let plan = FaultPlan::new();
    let io = Arc::new(FaultyIo::new(Arc::new(FileIo), plan.clone()));
    let mut config = EngineConfig::new(dir.path());
    config.maintenance_interval_ms = 20;
    let engine = Engine::open_with_io(config, io).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(serve(
        listener,
        engine.clone(),
        HttpConfig::default(),
        std::future::pending(),
    ));
    let client = reqwest::Client::new();
    let publish = || {
        client
            .post(format!("{base}/v1/streams/orders/records"))
            .json(&json!({"records": [{"value": "v"}]}))
    };

    let (status, _) = call(
        client
            .post(format!("{base}/v1/streams"))
            .json(&json!({"name": "orders"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = call(publish()).await;
    assert_eq!(status, StatusCode::OK);

    plan.as_disk_full(true);
    // Every write fails until the fault is lifted: with a single failed write the
    // maintenance pass (every 20 ms) could heal the partition before the health check below,
    // which a busy machine showed.
    plan.sticky(true);
    plan.fail_write(1);
    let (status, body) = call(publish()).await;
    assert_eq!(status, StatusCode::INSUFFICIENT_STORAGE, "{body}");
    assert_eq!(body["error"]["code"], "disk_full", "{body}");
    let (status, health) = call(client.get(format!("{base}/health"))).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{health}");
    assert_eq!(health["status"], "degraded");
    // The maintenance pass's own probe of the disk may have failed too (`disk_full`).
    let problem = health["problems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|problem| problem["kind"] == "partition_refusing_writes")
        .unwrap_or_else(|| panic!("no refusing partition: {health}"));
    assert_eq!(problem["stream"], "orders");
    assert_eq!(problem["partition"], 0);
    assert!(
        problem["reason"].as_str().unwrap().contains("disk full"),
        "{health}"
    );

    // The disk has room again (the fault is lifted); no restart.
    plan.clear();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, health) = call(client.get(format!("{base}/health"))).await;
        if status == StatusCode::OK {
            assert_eq!(health, json!({"status": "ok"}));
            break;
        }
        assert!(Instant::now() < deadline, "still degraded: {health}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, body) = call(publish()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["records"][0]["offset"], 1, "{body}");
}
