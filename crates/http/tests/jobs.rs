//! End-to-end tests of background jobs over HTTP: enqueue, fetch, progress, complete, fail,
//! cancel, unique keys, listing by status with paging, and the errors for bad input.

mod common;

use common::{assert_error, enqueue, enqueue_one, fetch, job_queue, Server};
use reqwest::StatusCode;
use serde_json::{json, Value};

#[tokio::test]
async fn a_job_goes_from_enqueue_through_fetch_and_progress_to_completed_with_its_result() {
    let server = Server::start().await;
    job_queue(&server, "email").await;
    let (status, body) = enqueue(
        &server,
        "email",
        json!({"name": "send", "payload": {"to": "a@example.org", "n": 1.50}, "priority": 4}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let enqueued = &body["jobs"][0];
    assert_eq!(
        (enqueued["created"].clone(), enqueued["status"].clone()),
        (json!(true), json!("waiting"))
    );
    let id = enqueued["id"].as_str().unwrap();

    let (_, waiting) = server.get(&format!("/v1/queues/email/jobs/{id}")).await;
    assert_eq!(waiting["status"], "waiting", "{waiting}");
    assert_eq!(waiting["name"], "send");
    assert_eq!(waiting["payload"], json!({"to": "a@example.org", "n": 1.5}));

    let fetched = fetch(&server, "email", 5, 0).await;
    assert_eq!(fetched.len(), 1);
    let job = &fetched[0];
    assert_eq!(job["id"], id);
    assert_eq!(job["status"], "active");
    assert_eq!(job["attempt"], 1);
    assert_eq!(job["payload"], json!({"to": "a@example.org", "n": 1.5}));
    assert!(job["lease_deadline_ms"].as_i64().unwrap() > 0);

    let (status, progressed) = server
        .post(
            &format!("/v1/queues/email/jobs/{id}/progress"),
            json!({"attempt": 1, "progress": {"percent": 50}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{progressed}");
    assert!(progressed["lease_deadline_ms"].as_i64().unwrap() > 0);
    let (_, active) = server.get(&format!("/v1/queues/email/jobs/{id}")).await;
    assert_eq!(active["status"], "active");
    assert_eq!(active["progress"], json!({"percent": 50}));

    let (status, completed) = server
        .post(
            &format!("/v1/queues/email/jobs/{id}/complete"),
            json!({"attempt": 1, "result": {"message_id": "m-1"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{completed}");
    assert_eq!(completed["status"], "completed");

    let (status, read) = server.get(&format!("/v1/queues/email/jobs/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(read["status"], "completed", "{read}");
    assert_eq!(read["result"], json!({"message_id": "m-1"}));
    assert!(read["finished_ms"].as_i64().is_some(), "{read}");

    let late = server
        .post(
            &format!("/v1/queues/email/jobs/{id}/complete"),
            json!({"attempt": 1}),
        )
        .await;
    assert!(late.0.is_client_error(), "{} {}", late.0, late.1);
    let (_, info) = server.get("/v1/queues/email").await;
    assert_eq!(info["jobs"]["completed"], 1, "{info}");
    server.stop().await;
}

#[tokio::test]
async fn many_attempts_complete_in_one_call_each_judged_on_its_own() {
    let server = Server::start().await;
    job_queue(&server, "batch").await;
    let mut ids = Vec::new();
    for n in 0..3 {
        ids.push(enqueue_one(&server, "batch", json!({"name": "resize", "payload": n})).await);
    }
    let fetched = fetch(&server, "batch", 3, 0).await;
    assert_eq!(fetched.len(), 3);
    let (status, body) = server
        .post(
            "/v1/queues/batch/jobs/complete",
            json!({"completions": [
                {"id": ids[0], "attempt": 1, "result": {"done": 0}},
                {"id": ids[1], "attempt": 7},
                {"id": "not-a-job", "attempt": 1},
                {"id": ids[2], "attempt": 1, "result": "two"},
            ]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let results = body["results"].as_array().unwrap();
    assert_eq!(results.len(), 4, "one answer per completion, in order");
    assert_eq!(results[0]["job"]["status"], "completed");
    assert_eq!(results[0]["job"]["result"], json!({"done": 0}));
    assert_eq!(results[1]["error"]["code"], "stale_attempt", "{body}");
    assert_eq!(results[2]["error"]["code"], "bad_request", "{body}");
    assert_eq!(results[3]["job"]["result"], "two");
    let (_, refused) = server
        .get(&format!("/v1/queues/batch/jobs/{}", ids[1]))
        .await;
    assert_eq!(
        refused["status"], "active",
        "the stale completion changed nothing"
    );
    let (_, done) = server
        .get(&format!("/v1/queues/batch/jobs/{}", ids[2]))
        .await;
    assert_eq!(done["status"], "completed");
    // An unknown queue fails the whole call.
    let answer = server
        .post("/v1/queues/nope/jobs/complete", json!({"completions": []}))
        .await;
    assert_error(&answer, StatusCode::NOT_FOUND, "queue_not_found");
}

#[tokio::test]
async fn a_worker_completes_its_batch_and_gets_the_next_in_one_call() {
    let server = Server::start().await;
    job_queue(&server, "flow").await;
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(enqueue_one(&server, "flow", json!({"name": "step", "payload": n})).await);
    }
    let fetched = fetch(&server, "flow", 2, 0).await;
    let completions: Vec<Value> = fetched
        .iter()
        .map(|job| json!({"id": job["id"], "attempt": job["attempt"], "result": "ok"}))
        .collect();
    let (status, body) = server
        .post(
            "/v1/queues/flow/jobs/complete",
            json!({"completions": completions, "fetch": {"worker": "w1", "max": 2}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let results = body["results"].as_array().unwrap();
    assert!(
        results.iter().all(|r| r["job"]["status"] == "completed"),
        "{body}"
    );
    let next = body["next"].as_array().expect("next jobs");
    let next_ids: Vec<&Value> = next.iter().map(|job| &job["id"]).collect();
    assert_eq!(next_ids, [&ids[2], &ids[3]], "{body}");
    assert_eq!(next[0]["attempt"], 1);
    assert_eq!(next[0]["payload"], 2);
    assert!(next[0]["lease_deadline_ms"].as_i64().unwrap() > 0);
    // Without fetch the answer has no `next`; a bad worker name is refused up front.
    let answer = server
        .post(
            "/v1/queues/flow/jobs/complete",
            json!({"completions": [], "fetch": {"worker": ""}}),
        )
        .await;
    assert_error(&answer, StatusCode::BAD_REQUEST, "bad_request");
    let (_, body) = server
        .post("/v1/queues/flow/jobs/complete", json!({"completions": []}))
        .await;
    assert!(body.get("next").is_none(), "{body}");
}

/// Posts `body` with `Prefer: return=minimal`; the status, the preference-applied header and
/// the JSON answer (`Null` when empty).
async fn post_minimal(server: &Server, path: &str, body: Value) -> (StatusCode, String, Value) {
    let response = reqwest::Client::new()
        .post(server.url(path))
        .header("prefer", "return=minimal")
        .json(&body)
        .send()
        .await
        .expect("request is answered");
    let applied = response
        .headers()
        .get("preference-applied")
        .map(|value| value.to_str().unwrap().to_string())
        .unwrap_or_default();
    let (status, body) = common::read(response).await;
    (status, applied, body)
}

#[tokio::test]
async fn prefer_return_minimal_answers_settled_jobs_without_their_records() {
    let server = Server::start().await;
    job_queue(&server, "lean").await;
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(enqueue_one(&server, "lean", json!({"name": "step", "payload": n})).await);
    }
    let fetched = fetch(&server, "lean", 3, 0).await;
    assert_eq!(fetched.len(), 3);

    let one = format!("/v1/queues/lean/jobs/{}/complete", ids[0]);
    let answer = post_minimal(&server, &one, json!({"attempt": 1, "result": "r0"})).await;
    assert_eq!(
        answer,
        (StatusCode::NO_CONTENT, "return=minimal".into(), Value::Null)
    );
    let (_, done) = server
        .get(&format!("/v1/queues/lean/jobs/{}", ids[0]))
        .await;
    assert_eq!(
        (done["status"].clone(), done["result"].clone()),
        (json!("completed"), json!("r0"))
    );
    // Errors are answered in full whatever the preference.
    let (status, _, error) = post_minimal(&server, &one, json!({"attempt": 1})).await;
    assert!(status.is_client_error(), "{status} {error}");
    assert!(error["error"]["code"].is_string(), "{error}");

    let fail = format!("/v1/queues/lean/jobs/{}/fail", ids[1]);
    let answer = post_minimal(&server, &fail, json!({"attempt": 1, "error": "boom"})).await;
    assert_eq!(answer.0, StatusCode::NO_CONTENT, "{}", answer.2);
    let (_, failed) = server
        .get(&format!("/v1/queues/lean/jobs/{}", ids[1]))
        .await;
    assert_eq!(failed["errors"][0]["message"], "boom", "{failed}");

    let (status, applied, body) = post_minimal(
        &server,
        "/v1/queues/lean/jobs/complete",
        json!({
            "completions": [{"id": ids[2], "attempt": 1}, {"id": "not-a-job", "attempt": 1}],
            "fetch": {"worker": "w1", "max": 1},
        }),
    )
    .await;
    assert_eq!(
        (status, applied.as_str()),
        (StatusCode::OK, "return=minimal"),
        "{body}"
    );
    assert_eq!(body["results"][0], json!({"status": "completed"}), "{body}");
    assert_eq!(body["results"][1]["error"]["code"], "bad_request", "{body}");
    // The next jobs come with everything a worker reads, null fields and empty errors left
    // out. Here it is the job that failed, back for its second attempt with its error.
    let next = &body["next"][0];
    assert_eq!(next["id"].as_str(), Some(ids[1].as_str()), "{body}");
    assert!(next["payload"].is_number(), "{body}");
    assert_eq!(next["name"], "step", "{body}");
    assert_eq!(next["attempt"], 2, "{body}");
    assert_eq!(next["errors"][0]["message"], "boom", "{body}");
    assert!(next["lease_deadline_ms"].is_i64(), "{body}");
    for absent in ["result", "progress", "finished_ms", "unique_key"] {
        assert!(next.get(absent).is_none(), "{absent}: {body}");
    }

    // A fetch on its own is rendered the same way.
    let (status, applied, fetched) = post_minimal(
        &server,
        "/v1/queues/lean/jobs/fetch",
        json!({"worker": "w2", "max": 1}),
    )
    .await;
    assert_eq!(
        (status, applied.as_str()),
        (StatusCode::OK, "return=minimal")
    );
    assert_eq!(fetched["jobs"][0]["name"], "step", "{fetched}");
    assert!(fetched["jobs"][0].get("finished_ms").is_none(), "{fetched}");
    assert!(fetched["jobs"][0].get("errors").is_none(), "{fetched}");
    assert_eq!(
        fetched["jobs"][0]["id"].as_str(),
        Some(ids[3].as_str()),
        "{fetched}"
    );

    // Without the preference the answers are unchanged.
    let (status, full) = server
        .post(
            "/v1/queues/lean/jobs/complete",
            json!({"completions": [{"id": body["next"][0]["id"], "attempt": body["next"][0]["attempt"]}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{full}");
    assert_eq!(full["results"][0]["job"]["status"], "completed", "{full}");
}

#[tokio::test]
async fn the_same_unique_key_twice_makes_one_job() {
    let server = Server::start().await;
    job_queue(&server, "reports").await;
    let job = json!({"name": "build", "payload": "r-17", "unique_key": "report-17"});
    let (first_status, first) = enqueue(&server, "reports", job.clone()).await;
    assert_eq!(first_status, StatusCode::CREATED, "{first}");
    let (second_status, second) = enqueue(&server, "reports", job).await;
    assert_eq!(second_status, StatusCode::OK, "{second}");
    assert_eq!(second["jobs"][0]["created"], false);
    assert_eq!(second["jobs"][0]["id"], first["jobs"][0]["id"]);

    let (_, page) = server.get("/v1/queues/reports/jobs").await;
    assert_eq!(page["jobs"].as_array().unwrap().len(), 1, "{page}");
    let fetched = fetch(&server, "reports", 10, 0).await;
    assert_eq!(fetched.len(), 1);
    assert_eq!(fetched[0]["payload"], "r-17");
    server.stop().await;
}

#[tokio::test]
async fn a_waiting_job_can_be_cancelled_and_is_never_fetched() {
    let server = Server::start().await;
    job_queue(&server, "q").await;
    let id = enqueue_one(&server, "q", json!({"name": "noop"})).await;
    let (status, cancelled) = server
        .post_empty(&format!("/v1/queues/q/jobs/{id}/cancel"))
        .await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled");
    assert!(fetch(&server, "q", 10, 200).await.is_empty());
    let (_, read) = server.get(&format!("/v1/queues/q/jobs/{id}")).await;
    assert_eq!(read["status"], "cancelled");
    let twice = server
        .post_empty(&format!("/v1/queues/q/jobs/{id}/cancel"))
        .await;
    assert_error(&twice, StatusCode::CONFLICT, "job_finished");
    server.stop().await;
}

#[tokio::test]
async fn a_failing_job_retries_then_dies_with_its_errors() {
    let server = Server::start().await;
    job_queue(&server, "fragile").await;
    let id = enqueue_one(
        &server,
        "fragile",
        json!({"name": "flaky", "max_attempts": 2}),
    )
    .await;
    for attempt in 1..=2u32 {
        let fetched = fetch(&server, "fragile", 1, 2_000).await;
        assert_eq!(fetched.len(), 1, "attempt {attempt}");
        assert_eq!(fetched[0]["attempt"], attempt);
        let (status, failed) = server
            .post(
                &format!("/v1/queues/fragile/jobs/{id}/fail"),
                json!({"attempt": attempt, "error": format!("timeout {attempt}"), "retry_delay_ms": 0}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{failed}");
        let expected = if attempt == 1 { "failed" } else { "dead" };
        assert_eq!(failed["status"], expected, "{failed}");
    }
    let (_, dead) = server.get(&format!("/v1/queues/fragile/jobs/{id}")).await;
    assert_eq!(dead["status"], "dead");
    let errors: Vec<&str> = dead["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|error| error["message"].as_str().unwrap())
        .collect();
    assert_eq!(errors, vec!["timeout 1", "timeout 2"]);
    server.stop().await;
}

#[tokio::test]
async fn jobs_list_by_status_in_pages() {
    let server = Server::start().await;
    job_queue(&server, "batch").await;
    let jobs: Vec<Value> = (0..5).map(|n| json!({"name": "n", "payload": n})).collect();
    let (status, body) = enqueue(&server, "batch", json!({"jobs": jobs})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let ids: Vec<String> = body["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|job| job["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 5);

    let fetched = fetch(&server, "batch", 1, 0).await;
    let first = fetched[0]["id"].as_str().unwrap();
    assert_eq!(first, ids[0]);
    server
        .post(
            &format!("/v1/queues/batch/jobs/{first}/complete"),
            json!({"attempt": 1}),
        )
        .await;

    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &after {
            Some(after) => format!("/v1/queues/batch/jobs?status=waiting&limit=2&after={after}"),
            None => "/v1/queues/batch/jobs?status=waiting&limit=2".to_owned(),
        };
        let (status, page) = server.get(&path).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        pages += 1;
        for job in page["jobs"].as_array().unwrap() {
            assert_eq!(job["status"], "waiting", "{job}");
            assert!(
                job.get("payload").is_none(),
                "listings leave payloads out: {job}"
            );
            seen.push(job["id"].as_str().unwrap().to_owned());
        }
        match page["next"].as_str() {
            Some(next) => after = Some(next.to_owned()),
            None => break,
        }
        assert!(pages < 10, "paging does not end");
    }
    assert_eq!(seen, ids[1..].to_vec());
    assert!(pages >= 2);

    let (_, completed) = server.get("/v1/queues/batch/jobs?status=completed").await;
    let completed: Vec<&str> = completed["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|job| job["id"].as_str().unwrap())
        .collect();
    assert_eq!(completed, vec![ids[0].as_str()]);
    let (_, all) = server.get("/v1/queues/batch/jobs?limit=1000").await;
    assert_eq!(all["jobs"].as_array().unwrap().len(), 5);
    assert_eq!(all["next"], Value::Null);
    server.stop().await;
}

#[tokio::test]
async fn bad_job_input_gets_stable_error_codes() {
    let server = Server::start().await;
    job_queue(&server, "q").await;
    let unknown_queue = enqueue(&server, "nope", json!({"name": "x"})).await;
    assert_error(&unknown_queue, StatusCode::NOT_FOUND, "queue_not_found");
    let unknown_stream = server.get("/v1/queues/nope/events").await;
    assert_error(&unknown_stream, StatusCode::NOT_FOUND, "queue_not_found");
    let unknown_job = server.get("/v1/queues/q/jobs/424242").await;
    assert_error(&unknown_job, StatusCode::NOT_FOUND, "job_not_found");
    let unknown_job_stream = server.get("/v1/queues/q/jobs/424242/events").await;
    assert_error(&unknown_job_stream, StatusCode::NOT_FOUND, "job_not_found");
    let bad_status = server.get("/v1/queues/q/jobs?status=finished").await;
    assert_error(&bad_status, StatusCode::BAD_REQUEST, "bad_request");

    for bad in [
        json!({"payload": 1}),
        json!({"name": "x", "priority": 10}),
        json!({"name": "x", "delay_ms": -1}),
        json!({"name": "x", "delay_ms": 1u64 << 60}),
        json!({"name": "x", "max_attempts": 0}),
        json!({"name": "x", "payload_base64": "***"}),
        json!({"jobs": [{"name": "x"}], "name": "y"}),
    ] {
        let answer = enqueue(&server, "q", bad.clone()).await;
        assert_error(&answer, StatusCode::BAD_REQUEST, "bad_request");
    }
    let oversized = json!({"name": "x", "payload": "x".repeat(2 * 1024 * 1024)});
    assert_error(
        &enqueue(&server, "q", oversized).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "message_too_large",
    );

    let id = enqueue_one(&server, "q", json!({"name": "x"})).await;
    fetch(&server, "q", 1, 0).await;
    let stale = server
        .post(
            &format!("/v1/queues/q/jobs/{id}/complete"),
            json!({"attempt": 2}),
        )
        .await;
    assert_error(&stale, StatusCode::CONFLICT, "stale_attempt");
    let big_progress = json!({"attempt": 1, "progress": "p".repeat(1024 * 1024 + 1)});
    let answer = server
        .post(&format!("/v1/queues/q/jobs/{id}/progress"), big_progress)
        .await;
    assert_error(&answer, StatusCode::PAYLOAD_TOO_LARGE, "message_too_large");
    let (_, page) = server.get("/v1/queues/q/jobs").await;
    assert_eq!(page["jobs"].as_array().unwrap().len(), 1, "{page}");
    server.stop().await;
}
