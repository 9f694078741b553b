//! End-to-end tests of the HTTP front door: a real engine on a temporary folder, the API served
//! on a real socket, and a real HTTP client (raw bytes where the client cannot express it).

mod common;

use std::time::{Duration, Instant};

use common::{assert_error, read, Server};
use omnibus_http::HttpConfig;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

#[tokio::test]
async fn health_and_openapi_are_served_as_json() {
    let server = Server::start().await;
    let (status, body) = server.get("/health").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"status": "ok"}));

    let response = server
        .client
        .get(server.url("/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()["content-type"].to_str().unwrap();
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    let (_, document) = read(response).await;
    assert!(document["openapi"].as_str().unwrap().starts_with("3.1"));
    assert!(document["paths"]["/v1/streams/{stream}/records"]["post"].is_object());
    server.stop().await;
}

#[tokio::test]
async fn patching_a_stream_changes_only_the_settings_named_and_keeps_its_data() {
    let server = Server::start().await;
    let (status, created) = server
        .post(
            "/v1/streams",
            json!({"name": "audit", "retention_bytes": 1000000, "message_bytes_max": 4096}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let (status, _) = server
        .post(
            "/v1/streams/audit/records",
            json!({"records": [{"value": "kept"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    let patch = json!({"retention_ms": 3600000, "retention_bytes": null, "segment_ms": 60000});
    let (status, patched) = server
        .call(Method::PATCH, "/v1/streams/audit", Some(patch))
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["retention_ms"], 3600000);
    assert_eq!(patched["retention_bytes"], Value::Null, "null: no limit");
    assert_eq!(patched["segment_ms"], 60000);
    assert_eq!(patched["message_bytes_max"], 4096, "not named: kept");
    assert_eq!(patched["created_ms"], created["created_ms"]);
    assert_eq!(patched["partition_info"][0]["high_watermark"], 1);
    let (_, info) = server.get("/v1/streams/audit").await;
    assert_eq!(info, patched);

    let bad = server
        .call(
            Method::PATCH,
            "/v1/streams/audit",
            Some(json!({"message_bytes_max": 0})),
        )
        .await;
    assert_error(&bad, StatusCode::BAD_REQUEST, "invalid_config");
    let unknown = server
        .call(
            Method::PATCH,
            "/v1/streams/audit",
            Some(json!({"partitions": 4})),
        )
        .await;
    assert_eq!(unknown.0, StatusCode::BAD_REQUEST, "{}", unknown.1);
    let missing = server
        .call(
            Method::PATCH,
            "/v1/streams/nope",
            Some(json!({"segment_ms": 1000})),
        )
        .await;
    assert_error(&missing, StatusCode::NOT_FOUND, "stream_not_found");
    let (_, info) = server.get("/v1/streams/audit").await;
    assert_eq!(info, patched, "refused patches change nothing");
    server.stop().await;
}

#[tokio::test]
async fn stream_lifecycle_create_list_get_delete() {
    let server = Server::start().await;
    let (status, created) = server
        .post("/v1/streams", json!({"name": "events", "partitions": 3}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["name"], "events");
    assert_eq!(created["partitions"], 3);
    assert_eq!(created["partition_info"].as_array().unwrap().len(), 3);
    assert_eq!(created["partition_info"][2]["high_watermark"], 0);

    let again = server.post("/v1/streams", json!({"name": "events"})).await;
    assert_error(&again, StatusCode::CONFLICT, "stream_exists");

    let (status, listed) = server.get("/v1/streams").await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<&str> = listed["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|stream| stream["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["events"]);

    let (status, info) = server.get("/v1/streams/events").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(info, created);

    let (status, body) = server
        .call(Method::DELETE, "/v1/streams/events", None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(body, Value::Null);

    let gone = server.get("/v1/streams/events").await;
    assert_error(&gone, StatusCode::NOT_FOUND, "stream_not_found");
    let (_, listed) = server.get("/v1/streams").await;
    assert_eq!(listed, json!({"streams": []}));
    let gone = server
        .call(Method::DELETE, "/v1/streams/events", None)
        .await;
    assert_error(&gone, StatusCode::NOT_FOUND, "stream_not_found");
    server.stop().await;
}

/// A stream named as Redis keys are (`orders:eu`) is addressed by that name in paths, raw or
/// percent-encoded.
#[tokio::test]
async fn a_stream_named_with_a_colon_is_served_at_its_path() {
    let server = Server::start().await;
    let (status, created) = server
        .post("/v1/streams", json!({"name": "orders:eu"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let (status, info) = server.get("/v1/streams/orders:eu").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(info["name"], "orders:eu");
    let (status, info) = server.get("/v1/streams/orders%3Aeu").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(info["name"], "orders:eu");
    server.stop().await;
}

#[tokio::test]
async fn stream_spec_errors_are_json_with_stable_codes() {
    let server = Server::start().await;
    let invalid = server
        .post("/v1/streams", json!({"name": "no\ncontrol characters"}))
        .await;
    assert_error(&invalid, StatusCode::BAD_REQUEST, "invalid_name");

    let unknown_field = server
        .post("/v1/streams", json!({"name": "a", "partitons": 2}))
        .await;
    assert_error(&unknown_field, StatusCode::BAD_REQUEST, "bad_request");
    assert!(unknown_field.1["error"]["message"]
        .as_str()
        .unwrap()
        .contains("partitons"));

    server
        .create_stream(json!({"name": "orders", "subjects": ["orders.*"]}))
        .await;
    let overlap = server
        .post(
            "/v1/streams",
            json!({"name": "more", "subjects": ["orders.>"]}),
        )
        .await;
    assert_error(&overlap, StatusCode::CONFLICT, "subjects_overlap");
    server.stop().await;
}

#[tokio::test]
async fn a_published_batch_is_fetched_back_identically() {
    let server = Server::start().await;
    server.create_stream(json!({"name": "mixed"})).await;
    let batch = r#"{"records": [
        {"key": "k1", "value": "héllo wörld", "headers": {"trace": "abc", "empty": ""}},
        {"key_base64": "/wA=", "value_base64": "AAEC/w=="},
        {"value": {"b": 1, "a": [true, null, 2.50]}, "headers": {"content-type": "application/json"}},
        {}
    ]}"#;
    let (status, published) = server.post_text("/v1/streams/mixed/records", batch).await;
    assert_eq!(status, StatusCode::OK, "{published}");
    assert_eq!(
        published,
        json!({"records": [
            {"partition": 0, "offset": 0},
            {"partition": 0, "offset": 1},
            {"partition": 0, "offset": 2},
            {"partition": 0, "offset": 3},
        ]})
    );

    let (status, fetched) = server
        .get("/v1/streams/mixed/partitions/0/records?offset=earliest")
        .await;
    assert_eq!(status, StatusCode::OK, "{fetched}");
    assert_eq!(fetched["next_offset"], 4);
    assert_eq!(fetched["high_watermark"], 4);
    assert_eq!(fetched["log_start_offset"], 0);
    let records = fetched["records"].as_array().unwrap();
    assert_eq!(records.len(), 4);
    for (offset, record) in records.iter().enumerate() {
        assert_eq!(record["offset"], offset);
        assert_eq!(record["partition"], 0);
        assert_eq!(record["subject"], "mixed");
        assert!(record["timestamp_ms"].as_i64().unwrap() > 0);
    }
    assert_eq!(records[0]["key"], "k1");
    assert_eq!(records[0]["value"], "héllo wörld");
    assert_eq!(records[0]["headers"], json!({"trace": "abc", "empty": ""}));
    assert_eq!(records[1]["key_base64"], "/wA=");
    assert_eq!(records[1]["value_base64"], "AAEC/w==");
    assert!(records[1].get("key").is_none() && records[1].get("value").is_none());
    assert_eq!(records[2]["value"], r#"{"b":1,"a":[true,null,2.50]}"#);
    assert_eq!(
        records[2]["headers"],
        json!({"content-type": "application/json"})
    );
    for absent in [
        "key",
        "key_base64",
        "value",
        "value_base64",
        "headers_base64",
    ] {
        assert!(records[3].get(absent).is_none(), "{absent}: {}", records[3]);
    }
    assert_eq!(records[3]["headers"], json!({}));

    // A single record object (no "records" array) is a batch of one.
    let (status, published) = server
        .post(
            "/v1/streams/mixed/records",
            json!({"value": 42, "timestamp_ms": 1234}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        published,
        json!({"records": [{"partition": 0, "offset": 4}]})
    );
    let (_, fetched) = server
        .get("/v1/streams/mixed/partitions/0/records?offset=4&max_records=10")
        .await;
    assert_eq!(fetched["records"][0]["value"], "42");
    assert_eq!(fetched["records"][0]["timestamp_ms"], 1234);
    assert_eq!(fetched["next_offset"], 5);
    server.stop().await;
}

#[tokio::test]
async fn fetch_respects_max_records_and_an_explicit_partition() {
    let server = Server::start().await;
    server
        .create_stream(json!({"name": "wide", "partitions": 2}))
        .await;
    let records: Vec<Value> = (0..5)
        .map(|i| json!({"value": format!("v{i}"), "partition": 1}))
        .collect();
    let (status, published) = server
        .post("/v1/streams/wide/records", json!({"records": records}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(published["records"]
        .as_array()
        .unwrap()
        .iter()
        .all(|position| position["partition"] == 1));

    let (status, fetched) = server
        .get("/v1/streams/wide/partitions/1/records?offset=1&max_records=2")
        .await;
    assert_eq!(status, StatusCode::OK);
    let values: Vec<&str> = fetched["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|record| record["value"].as_str().unwrap())
        .collect();
    assert_eq!(values, vec!["v1", "v2"]);
    assert_eq!(fetched["next_offset"], 3);
    assert_eq!(fetched["records"][0]["partition"], 1);

    let (_, empty) = server.get("/v1/streams/wide/partitions/0/records").await;
    assert_eq!(empty["records"], json!([]));
    assert_eq!(empty["high_watermark"], 0);

    let missing = server.get("/v1/streams/wide/partitions/7/records").await;
    assert_error(&missing, StatusCode::NOT_FOUND, "partition_not_found");
    let bad = server
        .post(
            "/v1/streams/wide/records",
            json!({"value": "x", "partition": 9}),
        )
        .await;
    assert_error(&bad, StatusCode::NOT_FOUND, "partition_not_found");
    server.stop().await;
}

#[tokio::test]
async fn publish_by_subject_routes_to_the_capturing_stream() {
    let server = Server::start().await;
    server
        .create_stream(json!({"name": "orders", "subjects": ["orders.*"]}))
        .await;
    let (status, published) = server
        .post(
            "/v1/subjects/orders.created/records",
            json!({"records": [{"key": "o-1", "value": {"id": 1}}, {"key": "o-2", "value": "two"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{published}");
    assert_eq!(
        published,
        json!({"records": [{"partition": 0, "offset": 0}, {"partition": 0, "offset": 1}]})
    );
    let (_, fetched) = server.get("/v1/streams/orders/partitions/0/records").await;
    let records = fetched["records"].as_array().unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0]["subject"], "orders.created");
    assert_eq!(records[0]["key"], "o-1");
    assert_eq!(records[0]["value"], r#"{"id":1}"#);
    assert_eq!(records[1]["value"], "two");

    let uncaptured = server
        .post(
            "/v1/subjects/payments.settled/records",
            json!({"value": "x"}),
        )
        .await;
    assert_error(&uncaptured, StatusCode::NOT_FOUND, "no_stream_for_subject");

    let contradicting = server
        .post(
            "/v1/subjects/orders.created/records",
            json!({"value": "x", "subject": "orders.deleted"}),
        )
        .await;
    assert_error(&contradicting, StatusCode::BAD_REQUEST, "bad_request");
    let (_, info) = server.get("/v1/streams/orders").await;
    assert_eq!(info["partition_info"][0]["high_watermark"], 2);
    server.stop().await;
}

#[tokio::test]
async fn long_poll_fetch_returns_as_soon_as_a_record_lands() {
    let server = Server::start().await;
    server.create_stream(json!({"name": "live"})).await;
    let client = server.client.clone();
    let publish_url = server.url("/v1/streams/live/records");
    let publisher = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let response = client
            .post(publish_url)
            .json(&json!({"value": "wake up"}))
            .send()
            .await
            .expect("publish is answered");
        assert_eq!(response.status(), StatusCode::OK);
    });
    let started = Instant::now();
    let (status, fetched) = server
        .get("/v1/streams/live/partitions/0/records?offset=latest&wait_ms=20000")
        .await;
    let waited = started.elapsed();
    assert_eq!(status, StatusCode::OK, "{fetched}");
    assert_eq!(fetched["records"][0]["value"], "wake up");
    assert_eq!(fetched["next_offset"], 1);
    assert!(
        waited < Duration::from_secs(10),
        "the fetch waited {waited:?} instead of returning when the record landed"
    );
    publisher.await.expect("publisher task");
    server.stop().await;
}

#[tokio::test]
async fn long_poll_fetch_times_out_empty_after_wait_ms() {
    let server = Server::start().await;
    server.create_stream(json!({"name": "quiet"})).await;
    let started = Instant::now();
    let (status, fetched) = server
        .get("/v1/streams/quiet/partitions/0/records?offset=0&wait_ms=400")
        .await;
    let waited = started.elapsed();
    assert_eq!(status, StatusCode::OK, "{fetched}");
    assert_eq!(fetched["records"], json!([]));
    assert_eq!(fetched["next_offset"], 0);
    assert_eq!(fetched["high_watermark"], 0);
    assert!(
        waited >= Duration::from_millis(350),
        "returned after {waited:?}"
    );
    assert!(waited < Duration::from_secs(5), "returned after {waited:?}");
    server.stop().await;
}

#[tokio::test]
async fn offsets_resolve_by_earliest_latest_and_timestamp() {
    let server = Server::start().await;
    server.create_stream(json!({"name": "timed"})).await;
    let records: Vec<Value> = [1000, 2000, 3000]
        .iter()
        .map(|timestamp| json!({"value": format!("at {timestamp}"), "timestamp_ms": timestamp}))
        .collect();
    let (status, _) = server
        .post("/v1/streams/timed/records", json!({"records": records}))
        .await;
    assert_eq!(status, StatusCode::OK);

    let base = "/v1/streams/timed/partitions/0/offsets";
    for (query, expected) in [
        ("?at=earliest", 0),
        ("?at=latest", 3),
        ("", 3),
        ("?at=2000", 1),
        ("?at=1500", 1),
        ("?at=3000", 2),
        ("?at=99999", 3),
    ] {
        let (status, body) = server.get(&format!("{base}{query}")).await;
        assert_eq!(status, StatusCode::OK, "{query}: {body}");
        assert_eq!(body, json!({"offset": expected}), "{query}");
    }
    let bad = server.get(&format!("{base}?at=yesterday")).await;
    assert_error(&bad, StatusCode::BAD_REQUEST, "bad_request");

    let (status, fetched) = server
        .get("/v1/streams/timed/partitions/0/records?timestamp_ms=1500")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(fetched["records"][0]["offset"], 1);
    assert_eq!(fetched["records"][0]["value"], "at 2000");

    let both = server
        .get("/v1/streams/timed/partitions/0/records?timestamp_ms=1500&offset=0")
        .await;
    assert_error(&both, StatusCode::BAD_REQUEST, "bad_request");
    let unknown = server
        .get("/v1/streams/nope/partitions/0/offsets?at=latest")
        .await;
    assert_error(&unknown, StatusCode::NOT_FOUND, "stream_not_found");
    server.stop().await;
}

#[tokio::test]
async fn group_offsets_commit_read_lag_and_list() {
    let server = Server::start().await;
    server
        .create_stream(json!({"name": "jobs", "partitions": 2}))
        .await;
    let records: Vec<Value> = (0..5)
        .map(|i| json!({"value": format!("{i}"), "partition": 0}))
        .collect();
    server
        .post("/v1/streams/jobs/records", json!({"records": records}))
        .await;

    let (status, body) = server
        .post(
            "/v1/groups/workers/offsets",
            json!({"offsets": [{"stream": "jobs", "partition": 0, "offset": 2, "metadata": "m"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");

    let (status, offsets) = server.get("/v1/groups/workers/offsets").await;
    assert_eq!(status, StatusCode::OK);
    let committed = offsets["offsets"].as_array().unwrap();
    assert_eq!(committed.len(), 1);
    assert_eq!(committed[0]["stream"], "jobs");
    assert_eq!(committed[0]["partition"], 0);
    assert_eq!(committed[0]["offset"], 2);
    assert_eq!(committed[0]["metadata"], "m");
    assert!(committed[0]["committed_ms"].as_i64().unwrap() > 0);

    let (_, filtered) = server.get("/v1/groups/workers/offsets?stream=other").await;
    assert_eq!(filtered, json!({"offsets": []}));

    let (status, mut lag) = server.get("/v1/groups/workers/lag").await;
    assert_eq!(status, StatusCode::OK);
    // The age of the oldest unconsumed record: just published, so a few ms at most.
    let lag_ms = lag["partitions"][0]["lag_ms"].take();
    assert!(
        lag_ms.as_i64().is_some_and(|ms| (0..10_000).contains(&ms)),
        "{lag_ms}"
    );
    assert_eq!(
        lag,
        json!({
            "partitions": [
                {"stream": "jobs", "partition": 0, "committed": 2, "high_watermark": 5, "lag": 3, "lag_ms": null},
                {"stream": "jobs", "partition": 1, "committed": null, "high_watermark": 0, "lag": 0, "lag_ms": null},
            ],
            "total_lag": 3,
        })
    );

    let (status, groups) = server.get("/v1/groups").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(groups, json!({"groups": ["workers"]}));

    let unknown_stream = server
        .post(
            "/v1/groups/workers/offsets",
            json!({"offsets": [{"stream": "nope", "partition": 0, "offset": 1}]}),
        )
        .await;
    assert_error(&unknown_stream, StatusCode::NOT_FOUND, "stream_not_found");
    let missing_field = server
        .post(
            "/v1/groups/workers/offsets",
            json!({"offsets": [{"stream": "jobs", "offset": 1}]}),
        )
        .await;
    assert_error(&missing_field, StatusCode::BAD_REQUEST, "bad_request");
    server.stop().await;
}

#[tokio::test]
async fn request_errors_are_json_with_stable_codes() {
    let server = Server::start().await;
    server.create_stream(json!({"name": "s"})).await;

    let malformed = server
        .client
        .post(server.url("/v1/streams/s/records"))
        .header("content-type", "application/json")
        .body("{\"value\": ")
        .send()
        .await
        .unwrap();
    assert_error(
        &read(malformed).await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    );

    let wrong_type = server
        .client
        .post(server.url("/v1/streams/s/records"))
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_error(
        &read(wrong_type).await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "bad_request",
    );

    let unknown_stream = server
        .post("/v1/streams/nope/records", json!({"value": "x"}))
        .await;
    assert_error(&unknown_stream, StatusCode::NOT_FOUND, "stream_not_found");
    let unknown_fetch = server.get("/v1/streams/nope/partitions/0/records").await;
    assert_error(&unknown_fetch, StatusCode::NOT_FOUND, "stream_not_found");

    let both_values = server
        .post(
            "/v1/streams/s/records",
            json!({"value": "x", "value_base64": "eA=="}),
        )
        .await;
    assert_error(&both_values, StatusCode::BAD_REQUEST, "bad_request");
    let bad_base64 = server
        .post("/v1/streams/s/records", json!({"value_base64": "%%%"}))
        .await;
    assert_error(&bad_base64, StatusCode::BAD_REQUEST, "bad_request");

    let headers: serde_json::Map<String, Value> = (0..=omnibus_types::limits::HEADERS_MAX)
        .map(|i| (format!("h{i}"), json!("v")))
        .collect();
    let too_many_headers = server
        .post("/v1/streams/s/records", json!({"headers": headers}))
        .await;
    assert_error(
        &too_many_headers,
        StatusCode::PAYLOAD_TOO_LARGE,
        "limit_exceeded",
    );

    let bad_partition = server.get("/v1/streams/s/partitions/x/records").await;
    assert_error(&bad_partition, StatusCode::BAD_REQUEST, "bad_request");
    let bad_query = server
        .get("/v1/streams/s/partitions/0/records?max_records=many")
        .await;
    assert_error(&bad_query, StatusCode::BAD_REQUEST, "bad_request");
    let unknown_query = server
        .get("/v1/streams/s/partitions/0/records?ofset=3")
        .await;
    assert_error(&unknown_query, StatusCode::BAD_REQUEST, "bad_request");
    let bad_offset = server
        .get("/v1/streams/s/partitions/0/records?offset=first")
        .await;
    assert_error(&bad_offset, StatusCode::BAD_REQUEST, "bad_request");

    let unknown_route = server.get("/v1/nothing/here").await;
    assert_error(&unknown_route, StatusCode::NOT_FOUND, "not_found");
    let wrong_method = server.call(Method::PUT, "/v1/streams", None).await;
    assert_error(
        &wrong_method,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    );

    // Nothing above was stored.
    let (_, info) = server.get("/v1/streams/s").await;
    assert_eq!(info["partition_info"][0]["high_watermark"], 0);
    server.stop().await;
}

#[tokio::test]
async fn an_oversize_body_is_refused_with_413_json() {
    let server = Server::start_with(HttpConfig {
        body_bytes_max: 1024,
        ..HttpConfig::default()
    })
    .await;
    server.create_stream(json!({"name": "small"})).await;
    let big = json!({"value": "x".repeat(2000)});
    let refused = server.post("/v1/streams/small/records", big).await;
    assert_error(&refused, StatusCode::PAYLOAD_TOO_LARGE, "message_too_large");

    // Without a Content-Length (chunked), the limit cuts the body off while it is read.
    let chunk = format!("{{\"value\":\"{}\"}}", "y".repeat(2000));
    let request = format!(
        "POST /v1/streams/small/records HTTP/1.1\r\nHost: test\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\
         Connection: close\r\n\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
        chunk.len()
    );
    let response = server.raw(request.as_bytes()).await;
    assert!(response.starts_with("HTTP/1.1 413"), "{response}");
    assert!(
        response.contains("\"code\":\"message_too_large\""),
        "{response}"
    );

    let fits = server
        .post("/v1/streams/small/records", json!({"value": "fits"}))
        .await;
    assert_eq!(fits.0, StatusCode::OK, "{}", fits.1);
    let (_, info) = server.get("/v1/streams/small").await;
    assert_eq!(info["partition_info"][0]["high_watermark"], 1);
    server.stop().await;
}
