//! The web dashboard's serving (the page, its assets, the 404 page) and the API it added:
//! `GET /v1/overview`, `POST …/jobs/{id}/retry`, `POST …/dlq/{offset}/redrive`. The pages
//! themselves are tested in a real browser by tests/clients/test_dashboard.py.

mod common;

use common::{assert_error, enqueue_one, job_queue, Server};
use reqwest::header::{
    ACCEPT, CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, IF_NONE_MATCH,
};
use reqwest::StatusCode;
use serde_json::json;

async fn text(
    server: &Server,
    path: &str,
    accept: &str,
) -> (StatusCode, String, reqwest::header::HeaderMap) {
    let response = server
        .client
        .get(server.url(path))
        .header(ACCEPT, accept)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    (status, response.text().await.unwrap(), headers)
}

fn content_type(headers: &reqwest::header::HeaderMap) -> &str {
    headers[CONTENT_TYPE].to_str().unwrap()
}

#[tokio::test]
async fn the_page_is_served_at_the_root_and_at_every_page_path() {
    let server = Server::start().await;
    let (status, root, headers) = text(&server, "/", "text/html").await;
    assert_eq!(status, StatusCode::OK);
    assert!(content_type(&headers).starts_with("text/html"));
    assert!(root.contains("/ui/assets/app.js"), "{root}");
    let policy = headers[CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(policy.contains("script-src 'self'"), "{policy}");
    assert_eq!(headers[CACHE_CONTROL], "no-cache");
    for path in [
        "/ui",
        "/ui/overview",
        "/ui/queues/emails/jobs/3",
        "/ui/queues/emails/dlq",
        "/ui/groups/billing",
    ] {
        let (status, body, _) = text(&server, path, "text/html").await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(body, root, "{path} is the same document");
    }
    server.stop().await;
}

#[tokio::test]
async fn assets_have_their_content_type_and_revalidate_by_etag() {
    let server = Server::start().await;
    let (status, script, headers) = text(&server, "/ui/assets/app.js", "*/*").await;
    assert_eq!(status, StatusCode::OK);
    assert!(content_type(&headers).starts_with("text/javascript"));
    assert!(script.contains("POLL_MS"));
    assert_eq!(headers[CACHE_CONTROL], "no-cache");
    let etag = headers[ETAG].clone();
    let revalidated = server
        .client
        .get(server.url("/ui/assets/app.js"))
        .header(IF_NONE_MATCH, etag.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(revalidated.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(revalidated.headers()[ETAG], etag);
    assert!(revalidated.bytes().await.unwrap().is_empty());

    let (status, _, headers) = text(&server, "/ui/assets/style.css", "text/css").await;
    assert_eq!(status, StatusCode::OK);
    assert!(content_type(&headers).starts_with("text/css"));
    let (status, _, headers) = text(&server, "/ui/assets/missing.js", "*/*").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(content_type(&headers).starts_with("text/html"));
    server.stop().await;
}

#[tokio::test]
async fn unknown_ui_paths_get_the_404_page_and_api_paths_keep_json_errors() {
    let server = Server::start().await;
    for path in ["/ui/nope", "/ui/queues/emails/jobs", "/ui/streams/a/b/c"] {
        let (status, body, headers) = text(&server, path, "application/json").await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert!(content_type(&headers).starts_with("text/html"), "{path}");
        assert!(body.contains("404"), "{path}: {body}");
    }
    // A browser following a stale link outside /ui gets the page too...
    let (status, body, headers) = text(&server, "/dashboard", "text/html,*/*").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(content_type(&headers).starts_with("text/html"));
    assert!(body.contains("no such page"));
    // ...an API client, and any path of the API, the JSON error.
    let (status, body, headers) = text(&server, "/dashboard", "application/json").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        content_type(&headers).starts_with("application/json"),
        "{body}"
    );
    let (status, body, headers) = text(&server, "/v1/nope", "text/html").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        content_type(&headers).starts_with("application/json"),
        "{body}"
    );
    let (status, _, headers) = text(&server, "/health", "text/html").await;
    assert_eq!(status, StatusCode::OK);
    assert!(content_type(&headers).starts_with("application/json"));
    server.stop().await;
}

#[tokio::test]
async fn the_overview_sums_streams_queues_and_groups() {
    let server = Server::start().await;
    server
        .create_stream(json!({"name": "orders", "partitions": 2}))
        .await;
    let (status, _) = server
        .post(
            "/v1/streams/orders/records",
            json!({"records": [{"value": "a"}, {"value": "b"}, {"value": "c"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    server.create_queue(json!({"name": "emails"})).await;
    let (status, _) = server
        .post("/v1/queues/emails/messages", json!({"value": "hello"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, overview) = server.get("/v1/overview").await;
    assert_eq!(status, StatusCode::OK, "{overview}");
    assert_eq!(overview["health"], "ok");
    // The queue's own streams may be listed too; orders' three records are in any case.
    assert!(
        overview["streams"]["count"].as_u64().unwrap() >= 1,
        "{overview}"
    );
    assert!(
        overview["streams"]["partitions"].as_u64().unwrap() >= 2,
        "{overview}"
    );
    assert!(
        overview["streams"]["high_watermarks_total"]
            .as_u64()
            .unwrap()
            >= 3,
        "{overview}"
    );
    assert_eq!(overview["queues"]["count"], 1);
    assert_eq!(overview["queues"]["ready"], 1);
    assert!(overview["disk"]["total_bytes"].as_u64().unwrap() > 0);
    assert!(
        overview["disk"]["available_bytes"].as_u64().unwrap()
            <= overview["disk"]["total_bytes"].as_u64().unwrap()
    );
    server.stop().await;
}

#[tokio::test]
async fn a_dead_job_is_retried_as_a_new_job_and_a_waiting_one_is_refused() {
    let server = Server::start().await;
    job_queue(&server, "work").await;
    let id = enqueue_one(
        &server,
        "work",
        json!({"name": "resize", "payload": {"n": 1}, "max_attempts": 1}),
    )
    .await;
    let refused = server
        .post_empty(&format!("/v1/queues/work/jobs/{id}/retry"))
        .await;
    assert_error(&refused, StatusCode::BAD_REQUEST, "bad_request");
    let (status, fetched) = server
        .post(
            "/v1/queues/work/jobs/fetch",
            json!({"worker": "w", "max": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{fetched}");
    let (status, dead) = server
        .post(
            &format!("/v1/queues/work/jobs/{id}/fail"),
            json!({"attempt": 1, "error": "boom"}),
        )
        .await;
    assert_eq!(
        (status, dead["status"].as_str()),
        (StatusCode::OK, Some("dead")),
        "{dead}"
    );
    let (status, retried) = server
        .post_empty(&format!("/v1/queues/work/jobs/{id}/retry"))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{retried}");
    let new_id = retried["jobs"][0]["id"].as_str().unwrap();
    assert_ne!(new_id, id);
    let (_, job) = server.get(&format!("/v1/queues/work/jobs/{new_id}")).await;
    assert_eq!(
        (job["status"].as_str(), &job["payload"]),
        (Some("waiting"), &json!({"n": 1}))
    );
    let unknown = server.post_empty("/v1/queues/work/jobs/12345/retry").await;
    assert_error(&unknown, StatusCode::NOT_FOUND, "job_not_found");
    server.stop().await;
}

#[tokio::test]
async fn one_dead_letter_is_redriven_once_and_the_listing_says_so() {
    let server = Server::start().await;
    server
        .create_queue(json!({"name": "work", "max_deliver": 1}))
        .await;
    let (status, _) = server
        .post(
            "/v1/queues/work/messages",
            json!({"messages": [{"value": "a"}, {"value": "b"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, received) = server
        .post("/v1/queues/work/receive", json!({"worker": "w", "max": 2}))
        .await;
    for delivery in received["messages"].as_array().unwrap() {
        let path = format!("/v1/queues/work/messages/{}/term", delivery["id"]);
        let (status, body) = server
            .post(&path, json!({"attempt": delivery["attempt"]}))
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    }
    let (status, redriven) = server.post_empty("/v1/queues/work/dlq/1/redrive").await;
    assert_eq!(status, StatusCode::OK, "{redriven}");
    assert_eq!(redriven, json!({"redriven": 1}));
    let again = server.post_empty("/v1/queues/work/dlq/1/redrive").await;
    assert_error(&again, StatusCode::BAD_REQUEST, "bad_request");
    let (_, listing) = server.get("/v1/queues/work/dlq").await;
    assert_eq!(listing["records"].as_array().unwrap().len(), 2);
    assert_eq!(
        (
            listing["redriven_below"].as_u64(),
            &listing["redriven_offsets"]
        ),
        (Some(0), &json!([1]))
    );
    let (_, info) = server.get("/v1/queues/work").await;
    assert_eq!(
        (info["ready"].as_u64(), info["dead_letter_depth"].as_u64()),
        (Some(1), Some(1))
    );
    server.stop().await;
}
