//! `GET /metrics` after known traffic, parsed with a real Prometheus text parser
//! (`prometheus-parse`): counters, gauges, group lag in records and seconds, queue depth and
//! events, the HTTP door's own counters, and the storage and process gauges.

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use common::Server;
use prometheus_parse::{Scrape, Value};
use reqwest::StatusCode;
use serde_json::json;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// The scrape parsed, and its text (`prometheus-parse` cuts label values at a `}`, so the
/// route-template labels are checked in the text).
async fn scrape(server: &Server) -> Scrape {
    scrape_with_text(server).await.0
}

async fn scrape_with_text(server: &Server) -> (Scrape, String) {
    let response = server
        .client
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    let text = response.text().await.unwrap();
    assert!(text.ends_with("# EOF\n"), "OpenMetrics text ends in # EOF");
    let scrape =
        Scrape::parse(text.lines().map(|line| Ok(line.to_string()))).expect("the scrape parses");
    (scrape, text)
}

/// How many samples named `metric` have labels that include `labels`.
fn count(scrape: &Scrape, metric: &str, labels: &[(&str, &str)]) -> usize {
    scrape
        .samples
        .iter()
        .filter(|sample| sample.metric == metric)
        .filter(|sample| labels.iter().all(|(k, v)| sample.labels.get(k) == Some(*v)))
        .count()
}

/// The value of the one sample named `metric` whose labels include `labels`.
fn value(scrape: &Scrape, metric: &str, labels: &[(&str, &str)]) -> f64 {
    let found: Vec<f64> = scrape
        .samples
        .iter()
        .filter(|sample| sample.metric == metric)
        .filter(|sample| labels.iter().all(|(k, v)| sample.labels.get(k) == Some(*v)))
        .filter_map(|sample| match sample.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => Some(v),
            _ => None,
        })
        .collect();
    assert_eq!(found.len(), 1, "{metric} {labels:?}: {found:?}");
    found[0]
}

#[tokio::test]
async fn metrics_after_known_traffic_count_records_lag_queues_and_requests() {
    let server = Server::start().await;
    let (status, _) = server
        .post("/v1/streams", json!({"name": "orders", "partitions": 2}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    // Five records on partition 0, two minutes old by their timestamps.
    let old = now_ms() - 120_000;
    for index in 0..5 {
        let (status, body) = server
            .post(
                "/v1/streams/orders/records",
                json!({"records": [{"value": index, "partition": 0, "timestamp_ms": old + index}]}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (status, _) = server
        .post(
            "/v1/groups/billing/offsets",
            json!({"offsets": [{"stream": "orders", "partition": 0, "offset": 2}]}),
        )
        .await;
    assert!(status.is_success(), "{status}");

    server.create_queue(json!({"name": "emails"})).await;
    let (status, _) = server
        .post(
            "/v1/queues/emails/messages",
            json!({"messages": [{"value": "a"}, {"value": "b"}, {"value": "c"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, received) = server
        .post(
            "/v1/queues/emails/receive",
            json!({"worker": "w1", "max": 2}),
        )
        .await;
    let first = &received["messages"][0];
    let (status, _) = server
        .post(
            &format!("/v1/queues/emails/messages/{}/ack", first["id"]),
            json!({"attempt": first["attempt"]}),
        )
        .await;
    assert!(status.is_success());
    let (status, _) = server.get("/v1/no-such-route").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (scrape, text) = scrape_with_text(&server).await;
    let p0 = [("stream", "orders"), ("partition", "0")];
    let p1 = [("stream", "orders"), ("partition", "1")];
    assert_eq!(value(&scrape, "omnibus_stream_records_in_total", &p0), 5.0);
    assert!(value(&scrape, "omnibus_stream_bytes_in_total", &p0) > 0.0);
    assert_eq!(value(&scrape, "omnibus_stream_high_watermark", &p0), 5.0);
    assert_eq!(value(&scrape, "omnibus_stream_high_watermark", &p1), 0.0);
    assert!(value(&scrape, "omnibus_stream_log_bytes", &p0) > 0.0);
    // Left out while zero: an idle partition's traffic, a healthy partition's failure flag.
    assert_eq!(count(&scrape, "omnibus_stream_records_in_total", &p1), 0);
    assert_eq!(count(&scrape, "omnibus_stream_write_failed", &p0), 0);

    let billing = [
        ("group", "billing"),
        ("stream", "orders"),
        ("partition", "0"),
    ];
    assert_eq!(
        value(&scrape, "omnibus_group_committed_offset", &billing),
        2.0
    );
    assert_eq!(value(&scrape, "omnibus_group_lag_records", &billing), 3.0);
    let lag_seconds = value(&scrape, "omnibus_group_lag_seconds", &billing);
    assert!(
        (119.0..600.0).contains(&lag_seconds),
        "the oldest unconsumed record is two minutes old: {lag_seconds}"
    );

    let emails = |state: &'static str| [("queue", "emails"), ("state", state)];
    assert_eq!(value(&scrape, "omnibus_queue_depth", &emails("ready")), 1.0);
    assert_eq!(
        value(&scrape, "omnibus_queue_depth", &emails("leased")),
        1.0
    );
    assert_eq!(count(&scrape, "omnibus_queue_depth", &emails("delayed")), 0);
    let event = |event: &'static str| [("queue", "emails"), ("event", event)];
    assert_eq!(
        value(&scrape, "omnibus_queue_messages_total", &event("enqueued")),
        3.0
    );
    assert_eq!(
        value(&scrape, "omnibus_queue_messages_total", &event("delivered")),
        2.0
    );
    assert_eq!(
        value(&scrape, "omnibus_queue_messages_total", &event("completed")),
        1.0
    );
    assert_eq!(
        value(
            &scrape,
            "omnibus_queue_dead_letter_depth",
            &[("queue", "emails")]
        ),
        0.0
    );
    assert!(value(&scrape, "omnibus_queue_log_bytes", &[("queue", "emails")]) > 0.0);
    // The live job statuses repeated queue_depth; the queue's own streams are covered by
    // its series; the rare events are left out until they happen.
    assert_eq!(count(&scrape, "omnibus_jobs", &[("queue", "emails")]), 0);
    for stream in ["emails", "emails.dlq"] {
        assert_eq!(
            count(
                &scrape,
                "omnibus_stream_high_watermark",
                &[("stream", stream)]
            ),
            0
        );
    }
    assert_eq!(
        count(&scrape, "omnibus_queue_messages_total", &event("dropped")),
        0
    );

    // By route template, never by concrete path: five publishes, one series.
    let publish = "omnibus_http_requests_total{method=\"POST\",route=\"/v1/streams/{stream}/records\",status=\"2xx\"} 5\n";
    assert!(text.contains(publish), "{text}");
    assert!(
        !text.contains("/v1/streams/orders"),
        "no concrete path is a label"
    );
    assert!(
        !text.contains("no-such-route"),
        "unknown routes get no series"
    );
    let http = [("door", "http")];
    // Everything above, the 404 and this scrape itself.
    assert!(value(&scrape, "omnibus_requests_total", &http) >= 13.0);
    assert!(value(&scrape, "omnibus_request_errors_total", &http) >= 1.0);
    assert!(value(&scrape, "omnibus_connections_opened_total", &http) >= 1.0);
    assert!(value(&scrape, "omnibus_connections_open", &http) >= 1.0);
    assert_eq!(
        value(
            &scrape,
            "omnibus_connections_opened_total",
            &[("door", "kafka")]
        ),
        0.0
    );

    assert!(value(&scrape, "omnibus_fsync_seconds_count", &[]) >= 5.0);
    assert!(value(&scrape, "omnibus_state_commit_seconds_count", &[]) >= 1.0);
    assert!(value(&scrape, "omnibus_process_resident_memory_bytes", &[]) > 0.0);
    assert!(value(&scrape, "omnibus_process_open_fds", &[]) > 0.0);
    assert!(value(&scrape, "omnibus_disk_free_bytes", &[]) > 0.0);
    every_documented_metric_is_exported(&text);
    server.stop().await;
}

/// Every metric name docs/operations.md and the Grafana dashboard use is in a scrape that
/// has streams, a group, a queue and traffic, so neither document names a metric that
/// does not exist.
fn every_documented_metric_is_exported(text: &str) {
    let docs = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs");
    for file in ["operations.md", "grafana/omnibus.json"] {
        let document = std::fs::read_to_string(format!("{docs}/{file}")).unwrap();
        let mut names: Vec<&str> = document
            .match_indices("omnibus_")
            .map(|(start, _)| {
                let rest = &document[start..];
                let end = rest
                    .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
                    .unwrap_or(rest.len());
                &rest[..end]
            })
            .collect();
        names.sort_unstable();
        names.dedup();
        assert!(names.len() > 20, "{file} names {names:?}");
        for name in names {
            // A family with no sample now (a flag that is 0) still has its `# TYPE` line.
            let family = name.strip_suffix("_total").unwrap_or(name);
            assert!(
                text.contains(&format!("\n{name}")) || text.contains(&format!("# TYPE {family} ")),
                "{file} names {name}, which the scrape does not have"
            );
        }
    }
}

#[tokio::test]
async fn the_keyspace_is_counted_once_used_with_its_expirations() {
    use bytes::Bytes;
    use omnibus_engine::keys::{ExpireCondition, SetExpiry, SetOptions};
    let server = Server::start().await;
    // Not loaded by a scrape: all zero until a client uses keys.
    let before = scrape(&server).await;
    assert_eq!(value(&before, "omnibus_keys", &[]), 0.0);
    assert!(value(&before, "omnibus_keys_bytes_limit", &[]) > 1e9);
    let keys = server.engine.keyspace().await.unwrap();
    let soon = SetOptions {
        expiry: SetExpiry::At(now_ms() + 50),
        ..SetOptions::default()
    };
    for (key, options) in [("kept", SetOptions::default()), ("gone", soon)] {
        let set = keys
            .set(Bytes::from(key), Bytes::from("v"), options)
            .unwrap();
        set.wait().await.unwrap();
    }
    let (session, fields) = (Bytes::from("session"), [Bytes::from("token")]);
    keys.hash_set(&session, vec![(fields[0].clone(), Bytes::from("t"))], false)
        .unwrap()
        .wait()
        .await
        .unwrap();
    keys.hash_set(
        &session,
        vec![(Bytes::from("user"), Bytes::from("u"))],
        false,
    )
    .unwrap()
    .wait()
    .await
    .unwrap();
    let expire = keys.hash_expire(&session, &fields, now_ms() + 50, ExpireCondition::Always);
    expire.unwrap().wait().await.unwrap();
    let during = scrape(&server).await;
    assert_eq!(value(&during, "omnibus_keys", &[]), 3.0);
    assert_eq!(value(&during, "omnibus_keys_expiring", &[]), 1.0);
    assert!(value(&during, "omnibus_keys_bytes", &[]) > 0.0);
    // The sweep deletes both at their deadlines.
    let after = scrape_until(&server, |scrape| {
        value(scrape, "omnibus_keys_expired_total", &[]) == 1.0
            && value(scrape, "omnibus_hash_fields_expired_total", &[]) == 1.0
    })
    .await;
    assert_eq!(value(&after, "omnibus_keys", &[]), 2.0);
    assert_eq!(value(&after, "omnibus_keys_expiring", &[]), 0.0);
    server.stop().await;
}

#[tokio::test]
async fn a_second_scrape_sees_counters_grow_and_lag_shrink_after_a_commit() {
    let server = Server::start().await;
    server.post("/v1/streams", json!({"name": "events"})).await;
    let records: Vec<_> = (0..10).map(|i| json!({"value": i})).collect();
    server
        .post("/v1/streams/events/records", json!({"records": records}))
        .await;
    server
        .post(
            "/v1/groups/audit/offsets",
            json!({"offsets": [{"stream": "events", "partition": 0, "offset": 0}]}),
        )
        .await;
    let labels = [("group", "audit"), ("stream", "events"), ("partition", "0")];
    let before = scrape(&server).await;
    assert_eq!(value(&before, "omnibus_group_lag_records", &labels), 10.0);
    server
        .get("/v1/streams/events/partitions/0/records?offset=0")
        .await;
    server
        .post(
            "/v1/groups/audit/offsets",
            json!({"offsets": [{"stream": "events", "partition": 0, "offset": 10}]}),
        )
        .await;
    let after = scrape(&server).await;
    assert_eq!(value(&after, "omnibus_group_lag_records", &labels), 0.0);
    assert_eq!(value(&after, "omnibus_group_lag_seconds", &labels), 0.0);
    let partition = [("stream", "events"), ("partition", "0")];
    assert!(value(&after, "omnibus_stream_records_out_total", &partition) >= 10.0);
    server.stop().await;
}

fn consumer_spec(name: &str, owned_pending: bool) -> omnibus_engine::consumers::ConsumerSpec {
    use omnibus_engine::consumers::{AckMode, ConsumerSpec, ConsumerStart};
    ConsumerSpec {
        stream: "ticks".into(),
        name: name.into(),
        filter_subjects: Vec::new(),
        start: ConsumerStart::Earliest,
        ack: AckMode::Explicit,
        ack_wait_ms: 60_000,
        max_deliver: None,
        backoff_ms: Vec::new(),
        max_ack_pending: 1_000,
        door_settings: Default::default(),
        remove_acked: false,
        owned_pending,
    }
}

#[tokio::test]
async fn acked_consumers_lag_in_records_ack_pending_and_age() {
    let server = Server::start().await;
    server.post("/v1/streams", json!({"name": "ticks"})).await;
    let old = now_ms() - 120_000;
    let records: Vec<_> = (0..5)
        .map(|i| json!({"value": i, "timestamp_ms": old + i}))
        .collect();
    let (status, _) = server
        .post("/v1/streams/ticks/records", json!({"records": records}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let engine = &server.engine;
    // A JetStream-style consumer: two delivered, the first acknowledged.
    engine
        .create_consumer(consumer_spec("pull", false))
        .await
        .unwrap();
    let delivered = engine.consumer_next("ticks", "pull", 2, 0).await.unwrap();
    assert_eq!(delivered.len(), 2);
    engine
        .consumer_ack(
            "ticks",
            "pull",
            delivered[0].record.offset,
            delivered[0].attempt,
        )
        .await
        .unwrap();
    // A Redis-style group: three read by one reader, the second acknowledged.
    engine
        .create_consumer(consumer_spec("group", true))
        .await
        .unwrap();
    let read = engine
        .owned_next("ticks", "group", "alice", 3, true)
        .await
        .unwrap();
    assert_eq!(read.len(), 3);
    engine
        .owned_ack("ticks", "group", &[read[1].offset])
        .await
        .unwrap();
    // One consumer with nothing left: no lag, no age.
    engine
        .create_consumer(consumer_spec("idle", false))
        .await
        .unwrap();
    let all = engine.consumer_next("ticks", "idle", 5, 0).await.unwrap();
    for delivery in &all {
        engine
            .consumer_ack("ticks", "idle", delivery.record.offset, delivery.attempt)
            .await
            .unwrap();
    }

    let scrape = scrape(&server).await;
    let labels = |name| [("stream", "ticks"), ("consumer", name)];
    // Three not delivered, one delivered and not acknowledged.
    assert_eq!(
        value(&scrape, "omnibus_consumer_lag_records", &labels("pull")),
        4.0
    );
    assert_eq!(
        value(&scrape, "omnibus_consumer_ack_pending", &labels("pull")),
        1.0
    );
    // Two not read, two read and pending.
    assert_eq!(
        value(&scrape, "omnibus_consumer_lag_records", &labels("group")),
        4.0
    );
    assert_eq!(
        value(&scrape, "omnibus_consumer_ack_pending", &labels("group")),
        2.0
    );
    for name in ["pull", "group"] {
        let age = value(&scrape, "omnibus_consumer_lag_seconds", &labels(name));
        assert!((119.0..600.0).contains(&age), "{name}: {age}");
    }
    assert_eq!(
        value(&scrape, "omnibus_consumer_lag_records", &labels("idle")),
        0.0
    );
    assert_eq!(
        value(&scrape, "omnibus_consumer_lag_seconds", &labels("idle")),
        0.0
    );
    server.stop().await;
}

/// Scrapes until `ready` holds for the scrape (the maintenance pass and retention run on
/// their own clock), at most 5 s.
async fn scrape_until(server: &Server, ready: impl Fn(&Scrape) -> bool) -> Scrape {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let scrape = scrape(server).await;
        if ready(&scrape) {
            return scrape;
        }
        assert!(std::time::Instant::now() < deadline, "never ready");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// The series that are left out while zero carry the right values once something happens:
/// a dead job, a delayed and a waiting message, a group commit, segments deleted by
/// retention.
#[tokio::test]
async fn dead_letters_delays_ages_group_commits_and_retention_have_values() {
    let server = Server::start_with_engine(Default::default(), |config| {
        config.maintenance_interval_ms = 20;
    })
    .await;
    // A job that fails its only attempt: dead, and dead-lettered.
    common::job_queue(&server, "risky").await;
    let id = common::enqueue_one(&server, "risky", json!({"name": "x", "max_attempts": 1})).await;
    let (status, fetched) = server
        .post(
            "/v1/queues/risky/jobs/fetch",
            json!({"worker": "w", "max": 1, "wait_ms": 2000}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{fetched}");
    let (status, failed) = server
        .post(
            &format!("/v1/queues/risky/jobs/{id}/fail"),
            json!({"attempt": 1, "error": "boom", "retry_delay_ms": 0}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{failed}");
    assert_eq!(failed["status"], "dead");
    // One message delayed for an hour, one ready since ~300 ms before the scrape.
    server.create_queue(json!({"name": "later"})).await;
    let (status, body) = server
        .post(
            "/v1/queues/later/messages",
            json!({"messages": [{"value": "d", "delay_ms": 3_600_000}, {"value": "r"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // A stream of 1 KiB segments keeping 2 KiB: 40 records of 100 bytes roll and delete.
    let (status, body) = server
        .post(
            "/v1/streams",
            json!({"name": "logs", "partitions": 1, "segment_bytes": 1024, "retention_bytes": 2048}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    for _ in 0..40 {
        let (status, body) = server
            .post(
                "/v1/streams/logs/records",
                json!({"records": [{"value": "x".repeat(100)}]}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;

    let logs = [("stream", "logs"), ("partition", "0")];
    let scrape = scrape_until(&server, |scrape| {
        count(
            scrape,
            "omnibus_stream_retention_deleted_segments_total",
            &logs,
        ) == 1
    })
    .await;
    assert!(
        value(
            &scrape,
            "omnibus_stream_retention_deleted_segments_total",
            &logs
        ) >= 1.0
    );
    assert!(
        value(
            &scrape,
            "omnibus_stream_retention_deleted_bytes_total",
            &logs
        ) >= 1024.0
    );
    assert!(value(&scrape, "omnibus_stream_log_start_offset", &logs) > 0.0);

    let risky = [("queue", "risky")];
    assert_eq!(
        value(&scrape, "omnibus_queue_dead_letter_depth", &risky),
        1.0
    );
    let event = |event: &'static str| [("queue", "risky"), ("event", event)];
    assert_eq!(
        value(
            &scrape,
            "omnibus_queue_messages_total",
            &event("dead_lettered")
        ),
        1.0
    );
    assert_eq!(
        value(
            &scrape,
            "omnibus_jobs",
            &[("queue", "risky"), ("status", "dead")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &scrape,
            "omnibus_queue_depth",
            &[("queue", "risky"), ("state", "ready")]
        ),
        0.0
    );

    let later = |state: &'static str| [("queue", "later"), ("state", state)];
    assert_eq!(
        value(&scrape, "omnibus_queue_depth", &later("delayed")),
        1.0
    );
    assert_eq!(value(&scrape, "omnibus_queue_depth", &later("ready")), 1.0);
    let oldest = value(
        &scrape,
        "omnibus_queue_oldest_ready_seconds",
        &[("queue", "later")],
    );
    assert!(
        (0.25..60.0).contains(&oldest),
        "the ready message waited ~300 ms: {oldest}"
    );
    assert!(
        value(
            &scrape,
            "omnibus_queue_waiting_bytes",
            &[("queue", "later")]
        ) >= 2.0
    );

    // Every publish above was one group commit or more, each of one append or more.
    let commits = value(&scrape, "omnibus_group_commit_appends_count", &[]);
    assert!(commits >= 40.0, "{commits}");
    assert!(value(&scrape, "omnibus_group_commit_appends_sum", &[]) >= commits);
    server.stop().await;
}

/// Every answer the door gives is counted: a request no route matched (404), a method the
/// route does not serve (405) and a body declared over the limit (413) count as requests and
/// errors of the door but under no route; a `HEAD` of a `GET` route counts under `HEAD`.
#[tokio::test]
async fn fallbacks_refusals_and_head_are_counted_as_the_door_answered_them() {
    let server = Server::start_with(omnibus_http::HttpConfig {
        body_bytes_max: 1024,
        ..omnibus_http::HttpConfig::default()
    })
    .await;
    let http = [("door", "http")];
    let before = scrape(&server).await;
    let requests = value(&before, "omnibus_requests_total", &http);
    let errors = value(&before, "omnibus_request_errors_total", &http);

    let (status, _) = server.get("/v1/no-such-route").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = server.delete("/v1/streams").await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    let answer = server
        .client
        .post(server.url("/v1/streams"))
        .header("content-type", "application/json")
        .body(vec![b' '; 2000])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let (status, _) = server.call(reqwest::Method::HEAD, "/health", None).await;
    assert_eq!(status, StatusCode::OK);

    let (after, text) = scrape_with_text(&server).await;
    // The four above and this scrape, counted when it arrived (the first is in `before`).
    assert_eq!(
        value(&after, "omnibus_requests_total", &http),
        requests + 5.0
    );
    assert_eq!(
        value(&after, "omnibus_request_errors_total", &http),
        errors + 3.0
    );
    assert!(
        text.contains(
            "omnibus_http_requests_total{method=\"HEAD\",route=\"/health\",status=\"2xx\"} 1\n"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "omnibus_http_requests_total{method=\"GET\",route=\"/metrics\",status=\"2xx\"} 1\n"
        ),
        "{text}"
    );
    for absent in ["method=\"DELETE\"", "no-such-route", "4xx"] {
        assert!(
            !text.lines().any(
                |line| line.starts_with("omnibus_http_requests_total") && line.contains(absent)
            ),
            "{absent} counted under a route: {text}"
        );
    }
}
