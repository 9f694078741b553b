//! End-to-end tests of Server-Sent Events: a real HTTP client streams the response body and
//! parses its `event:` / `data:` / `id:` lines while jobs move.

mod common;

use std::time::Duration;

use common::{assert_error, enqueue_one, fetch, job_queue, Server};
use omnibus_http::HttpConfig;
use reqwest::StatusCode;
use serde_json::{json, Value};

/// Longest wait for the next server-sent event before a test fails.
const EVENT_WAIT_MS: u64 = 10_000;

/// One server-sent event: its `event:` name, `data:` parsed as JSON, and `id:`.
#[derive(Debug)]
struct SseEvent {
    kind: String,
    data: Value,
    id: Option<String>,
}

/// Reads `text/event-stream` from a streaming response body, chunk by chunk.
struct SseReader {
    response: reqwest::Response,
    buffer: String,
}

impl SseReader {
    async fn open(server: &Server, path: &str) -> SseReader {
        let response = server
            .client
            .get(server.url(path))
            .header("accept", "text/event-stream")
            .send()
            .await
            .expect("stream opens");
        assert_eq!(response.status(), StatusCode::OK);
        let content_type = response.headers()["content-type"].to_str().unwrap();
        assert!(
            content_type.starts_with("text/event-stream"),
            "{content_type}"
        );
        SseReader {
            response,
            buffer: String::new(),
        }
    }

    /// The next event (comments skipped), or `None` when the server ended the stream.
    async fn next(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                if let Some(event) = parse_event(&block) {
                    return Some(event);
                }
                continue;
            }
            let chunk =
                tokio::time::timeout(Duration::from_millis(EVENT_WAIT_MS), self.response.chunk())
                    .await
                    .expect("an event or the end of the stream in time")
                    .expect("the stream reads");
            match chunk {
                Some(bytes) => self
                    .buffer
                    .push_str(std::str::from_utf8(&bytes).expect("UTF-8 stream")),
                None => {
                    assert!(
                        self.buffer.trim().is_empty(),
                        "left over: {:?}",
                        self.buffer
                    );
                    return None;
                }
            }
        }
    }

    async fn expect(&mut self, kind: &str) -> SseEvent {
        let event = self.next().await.expect("stream still open");
        assert_eq!(event.kind, kind, "{event:?}");
        event
    }
}

/// Parses one event block; `None` for a block of comments only (keep-alives).
fn parse_event(block: &str) -> Option<SseEvent> {
    let mut kind = None;
    let mut data = Vec::new();
    let mut id = None;
    for line in block.lines() {
        if line.starts_with(':') || line.is_empty() {
            continue;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => kind = Some(value.to_owned()),
            "data" => data.push(value.to_owned()),
            "id" => id = Some(value.to_owned()),
            other => panic!("unexpected field {other:?} in {block:?}"),
        }
    }
    if kind.is_none() && data.is_empty() {
        return None;
    }
    let data = serde_json::from_str(&data.join("\n")).expect("data is JSON");
    Some(SseEvent {
        kind: kind.unwrap_or_else(|| "message".into()),
        data,
        id,
    })
}

#[tokio::test]
async fn sse_follows_a_job_from_enqueue_through_progress_to_its_result_and_ends() {
    let server = Server::start().await;
    job_queue(&server, "render").await;
    let id = enqueue_one(
        &server,
        "render",
        json!({"name": "video", "payload": {"file": "a.mp4"}}),
    )
    .await;

    let mut stream = SseReader::open(&server, &format!("/v1/queues/render/jobs/{id}/events")).await;
    let snapshot = stream.expect("snapshot").await;
    assert_eq!(snapshot.data["id"], id.as_str());
    assert_eq!(snapshot.data["status"], "waiting");
    assert_eq!(snapshot.id.as_deref(), Some("0"));

    let fetched = fetch(&server, "render", 1, 0).await;
    assert_eq!(fetched[0]["id"], id.as_str());
    let active = stream.expect("active").await;
    assert_eq!(
        (
            active.data["status"].clone(),
            active.data["attempt"].clone()
        ),
        (json!("active"), json!(1))
    );

    for percent in [25, 75] {
        server
            .post(
                &format!("/v1/queues/render/jobs/{id}/progress"),
                json!({"attempt": 1, "progress": {"percent": percent}}),
            )
            .await;
        let progress = stream.expect("progress").await;
        assert_eq!(progress.data["progress"], json!({"percent": percent}));
        assert_eq!(progress.data["queue"], "render");
    }
    server
        .post(
            &format!("/v1/queues/render/jobs/{id}/complete"),
            json!({"attempt": 1, "result": {"url": "https://cdn/a.mp4"}}),
        )
        .await;
    let completed = stream.expect("completed").await;
    assert_eq!(completed.data["status"], "completed");
    assert_eq!(
        completed.data["result"],
        json!({"url": "https://cdn/a.mp4"})
    );
    assert_eq!(completed.id.as_deref(), Some("4"));
    assert!(
        stream.next().await.is_none(),
        "the stream ends after the final event"
    );

    // A client that connects after the end sees the final snapshot, then the end.
    let mut late = SseReader::open(&server, &format!("/v1/queues/render/jobs/{id}/events")).await;
    let snapshot = late.expect("snapshot").await;
    assert_eq!(snapshot.data["status"], "completed");
    assert_eq!(snapshot.data["result"], json!({"url": "https://cdn/a.mp4"}));
    assert!(late.next().await.is_none());
    server.stop().await;
}

#[tokio::test]
async fn the_queue_stream_carries_only_its_queue_and_ends_at_shutdown() {
    let server = Server::start().await;
    job_queue(&server, "mine").await;
    job_queue(&server, "other").await;
    let mut stream = SseReader::open(&server, "/v1/queues/mine/events").await;
    enqueue_one(&server, "other", json!({"name": "elsewhere"})).await;
    let id = enqueue_one(&server, "mine", json!({"name": "here"})).await;
    let enqueued = stream.expect("enqueued").await;
    assert_eq!(enqueued.data["id"], id.as_str());
    assert_eq!(enqueued.data["queue"], "mine");
    let cancelled = server
        .post_empty(&format!("/v1/queues/mine/jobs/{id}/cancel"))
        .await;
    assert_eq!(cancelled.0, StatusCode::OK);
    stream.expect("cancelled").await;

    // The server stops (within the harness's deadline) although the stream is open.
    let reading = tokio::spawn(async move { stream.next().await.map(|event| event.kind) });
    server.stop().await;
    assert_eq!(reading.await.unwrap(), None);
}

#[tokio::test]
async fn event_streams_beyond_the_limit_are_refused_with_503() {
    let server = Server::start_with(HttpConfig {
        sse_streams_max: 1,
        ..HttpConfig::default()
    })
    .await;
    job_queue(&server, "q").await;
    let first = SseReader::open(&server, "/v1/queues/q/events").await;
    let refused = server.get("/v1/queues/q/events").await;
    assert_error(&refused, StatusCode::SERVICE_UNAVAILABLE, "unavailable");

    // Closing the first stream frees its place.
    drop(first);
    let mut reopened = false;
    for _ in 0..50 {
        let response = server
            .client
            .get(server.url("/v1/queues/q/events"))
            .send()
            .await
            .unwrap();
        if response.status() == StatusCode::OK {
            reopened = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(reopened, "the place of a closed stream is never freed");
    server.stop().await;
}
