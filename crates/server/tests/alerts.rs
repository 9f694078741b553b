//! Alarms through the `omnibus` binary: a dead letter raises the default alarm, which is
//! published on `$sys.alerts.dlq_depth` (seen by async-nats through the NATS door and by the
//! redis crate through the Redis door's pub/sub), POSTed
//! to a webhook, listed by `GET /v1/alerts` and `omnibus alerts`, not held up by a webhook
//! that never answers, and still firing — the same alarm — after a kill -9 and restart.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{json, Value};
use support::Broker;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// A webhook receiver on 127.0.0.1: every request's body goes to the channel, answered 200.
async fn webhook_receiver() -> (String, mpsc::Receiver<Value>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks", listener.local_addr().unwrap());
    let (bodies, received) = mpsc::channel(100);
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let bodies = bodies.clone();
            tokio::spawn(async move {
                while let Some(body) = read_request(&mut socket).await {
                    let _ = bodies.send(serde_json::from_slice(&body).unwrap()).await;
                    let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
                    if socket.write_all(answer).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (url, received)
}

/// Reads one HTTP/1.1 request with a `content-length` body; `None` at the end.
async fn read_request(socket: &mut tokio::net::TcpStream) -> Option<Vec<u8>> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buffer[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length:"))
                .map(|value| value.trim().parse().unwrap())
                .unwrap_or(0);
            while buffer.len() < end + 4 + length {
                let read = socket.read(&mut chunk).await.ok()?;
                if read == 0 {
                    return None;
                }
                buffer.extend_from_slice(&chunk[..read]);
            }
            return Some(buffer[end + 4..end + 4 + length].to_vec());
        }
        let read = socket.read(&mut chunk).await.ok()?;
        if read == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..read]);
    }
}

/// A webhook that accepts connections and never answers.
async fn hanging_receiver() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    url
}

async fn call(method: reqwest::Method, url: String, body: Option<Value>) -> Value {
    let mut request = reqwest::Client::new().request(method, &url);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    assert!(
        response.status().is_success(),
        "{url}: {}",
        response.status()
    );
    let bytes = response.bytes().await.unwrap();
    if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap()
    }
}

/// Creates a queue and dead-letters one message of it.
async fn dead_letter_one(broker: &Broker, queue: &str) {
    let base = broker.base();
    let post = |path: String, body: Value| call(reqwest::Method::POST, path, Some(body));
    post(format!("{base}/v1/queues"), json!({"name": queue})).await;
    post(
        format!("{base}/v1/queues/{queue}/messages"),
        json!({"value": "poison"}),
    )
    .await;
    let received = post(
        format!("{base}/v1/queues/{queue}/receive"),
        json!({"worker": "w", "max": 1, "wait_ms": 1000}),
    )
    .await;
    let attempt = received["messages"][0]["attempt"].as_u64().unwrap_or(1);
    post(
        format!("{base}/v1/queues/{queue}/messages/0/term"),
        json!({"attempt": attempt, "reason": "cannot parse"}),
    )
    .await;
}

async fn firing(broker: &Broker) -> Vec<Value> {
    let url = format!("{}/v1/alerts?state=firing", broker.base());
    let body = call(reqwest::Method::GET, url, None).await;
    body["alerts"].as_array().unwrap().clone()
}

async fn wait_for_firing(broker: &Broker, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(8);
    loop {
        if let Some(alert) = firing(broker).await.into_iter().find(|a| a["id"] == id) {
            return alert;
        }
        assert!(Instant::now() < deadline, "{id} never fired");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn write_config(path: &Path, good: &str, hanging: &str) {
    let text = format!(
        r#"
[alerts]
evaluate_interval_ms = 100

# The test machine's own free space must not add an alarm of its own.
[[alerts.rules]]
name = "disk_free_low"
kind = "disk_free"
threshold = 10
enabled = false

[[alerts.webhooks]]
url = "{hanging}"
timeout_ms = 300
retries_max = 1
backoff_ms = 50

[[alerts.webhooks]]
url = "{good}"
"#
    );
    std::fs::write(path, text).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_alarm_reaches_nats_webhooks_the_api_and_the_cli_and_survives_kill_9() {
    let directory = tempfile::tempdir().unwrap();
    let data_dir = directory.path().join("data");
    let config = directory.path().join("omnibus.toml");
    let (good_url, mut posted) = webhook_receiver().await;
    let hanging_url = hanging_receiver().await;
    write_config(&config, &good_url, &hanging_url);
    let config_arg = config.to_str().unwrap().to_string();
    let args = ["--config", config_arg.as_str()];
    let log = directory.path().join("broker.log");
    let mut broker = Broker::start_with_args(&data_dir, log.clone(), &args).await;

    let nats = async_nats::connect(broker.nats_address.unwrap().to_string())
        .await
        .unwrap();
    let mut alarms = nats.subscribe("$sys.alerts.>").await.unwrap();
    nats.flush().await.unwrap();
    let redis_url = format!("redis://{}/", broker.redis_address.unwrap());
    let mut redis = redis::Client::open(redis_url)
        .unwrap()
        .get_async_pubsub()
        .await
        .unwrap();
    redis.subscribe("$sys.alerts.dlq_depth").await.unwrap();

    dead_letter_one(&broker, "work").await;
    let fired = wait_for_firing(&broker, "dlq_not_empty:work").await;
    assert_eq!(
        (fired["kind"].as_str(), fired["value"].as_f64()),
        (Some("dlq_depth"), Some(1.0))
    );

    let message = tokio::time::timeout(Duration::from_secs(5), alarms.next())
        .await
        .expect("a transition on $sys.alerts.>")
        .unwrap();
    assert_eq!(message.subject.as_str(), "$sys.alerts.dlq_depth");
    let published: Value = serde_json::from_slice(&message.payload).unwrap();
    assert_eq!(published["id"], "dlq_not_empty:work");
    assert_eq!(published["state"], "firing");

    let mut redis_messages = redis.on_message();
    let redis_message = tokio::time::timeout(Duration::from_secs(5), redis_messages.next())
        .await
        .expect("a transition on the Redis channel")
        .unwrap();
    let payload: String = redis_message.get_payload().unwrap();
    assert_eq!(serde_json::from_str::<Value>(&payload).unwrap(), published);
    drop(redis_messages);

    let hooked = tokio::time::timeout(Duration::from_secs(5), posted.recv())
        .await
        .expect("the webhook got the transition")
        .unwrap();
    assert_eq!(hooked, published, "the webhook gets the same JSON");

    // The hanging webhook is stuck on its first transition; a second alarm still fires.
    dead_letter_one(&broker, "other").await;
    wait_for_firing(&broker, "dlq_not_empty:other").await;
    let url = format!("{}/v1/alerts/webhooks", broker.base());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let statuses = call(reqwest::Method::GET, url.clone(), None).await;
        let find = |wanted: &str| {
            statuses["webhooks"]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["url"] == wanted)
                .cloned()
                .unwrap()
        };
        let (good, stuck) = (find(&good_url), find(&hanging_url));
        let error = stuck["last_error"].as_str().unwrap_or_default().to_string();
        if good["delivered"] == 2 && error.contains("no answer within 300 ms") {
            assert_eq!(stuck["delivered"], 0, "{stuck}");
            break;
        }
        assert!(Instant::now() < deadline, "webhook statuses: {statuses}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let base = broker.base();
    let cli = move |args: &'static [&'static str]| {
        let base = base.clone();
        tokio::task::spawn_blocking(move || {
            let mut all = vec!["--server", base.as_str()];
            all.extend_from_slice(args);
            support::process::run(&all, b"").success("omnibus alerts")
        })
    };
    let listed = cli(&["alerts", "--firing"]).await.unwrap();
    let lines = listed.lines();
    assert_eq!(
        lines.len(),
        3,
        "a header and two alarms:\n{}",
        listed.stdout
    );
    assert!(
        lines[1].contains("dlq_not_empty:other"),
        "newest first:\n{}",
        listed.stdout
    );
    assert!(lines[2].contains("dlq_not_empty:work"), "{}", listed.stdout);
    let rules = cli(&["alerts", "rules"]).await.unwrap();
    assert!(rules.stdout.contains("disk_free_low"), "{}", rules.stdout);

    broker.kill_9();
    let broker = Broker::start_with_args(&data_dir, log, &args).await;
    // Still firing after several evaluations, from the same transition (same `since`).
    tokio::time::sleep(Duration::from_millis(400)).await;
    let after = firing(&broker).await;
    let work = after
        .iter()
        .find(|a| a["id"] == "dlq_not_empty:work")
        .unwrap();
    assert_eq!(work["since"], fired["since"], "{after:?}");
    assert_eq!(after.len(), 2, "{after:?}");
}
