//! The HTTP door serving connections on threads of its own (`HttpConfig::io_threads`): the
//! same answers as on the shared runtime, work started by requests (lazy commits, long polls,
//! event streams) carried out on those threads, and a graceful shutdown.

mod common;

use std::time::Duration;

use common::{enqueue_one, job_queue, Server};
use omnibus_http::HttpConfig;
use reqwest::StatusCode;
use serde_json::{json, Value};

fn threaded() -> HttpConfig {
    HttpConfig {
        io_threads: 2,
        ..HttpConfig::default()
    }
}

/// Four workers, each on its own connection (so both threads serve some), take jobs one at a
/// time and complete them; every job ends completed exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_on_their_own_connections_complete_every_job_once() {
    let server = Server::start_with(threaded()).await;
    job_queue(&server, "work").await;
    let mut ids = Vec::new();
    for index in 0..40 {
        ids.push(
            enqueue_one(
                &server,
                "work",
                json!({"name": "send", "payload": {"n": index}}),
            )
            .await,
        );
    }
    let base = server.url("");
    let mut workers = Vec::new();
    for worker in 0..4 {
        let base = base.clone();
        workers.push(tokio::spawn(async move {
            // A client of its own: its own keep-alive connection.
            let client = reqwest::Client::new();
            let mut done = Vec::new();
            loop {
                let fetched: Value = client
                    .post(format!("{base}/v1/queues/work/jobs/fetch"))
                    .json(&json!({"worker": format!("w{worker}"), "max": 1, "wait_ms": 0}))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                let Some(job) = fetched["jobs"].as_array().and_then(|jobs| jobs.first()) else {
                    return done;
                };
                let id = job["id"].as_str().unwrap().to_string();
                let status = client
                    .post(format!("{base}/v1/queues/work/jobs/{id}/complete"))
                    .json(&json!({"attempt": job["attempt"], "result": {"ok": true}}))
                    .send()
                    .await
                    .unwrap()
                    .status();
                assert_eq!(status, StatusCode::OK, "completing {id}");
                done.push(id);
            }
        }));
    }
    let mut done = Vec::new();
    for worker in workers {
        done.extend(worker.await.unwrap());
    }
    done.sort();
    ids.sort();
    assert_eq!(done, ids, "every job completed exactly once");
    for id in &ids {
        let (status, job) = server.get(&format!("/v1/queues/work/jobs/{id}")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(job["status"], "completed", "{job}");
    }
    server.stop().await;
}

/// A long poll waiting on one thread is woken by an enqueue arriving on another connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_poll_is_woken_by_an_enqueue_from_another_connection() {
    let server = Server::start_with(threaded()).await;
    job_queue(&server, "wake").await;
    let url = server.url("/v1/queues/wake/jobs/fetch");
    let waiting = tokio::spawn(async move {
        reqwest::Client::new()
            .post(url)
            .json(&json!({"worker": "w", "max": 1, "wait_ms": 5000}))
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let id = enqueue_one(&server, "wake", json!({"name": "send", "payload": "late"})).await;
    let fetched = tokio::time::timeout(Duration::from_secs(3), waiting)
        .await
        .expect("the long poll answers once the job is there")
        .unwrap();
    assert_eq!(fetched["jobs"][0]["id"], id.as_str(), "{fetched}");
    server.stop().await;
}

/// At shutdown an open event stream ends and `serve` returns once connections are gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_event_streams_and_returns() {
    let server = Server::start_with(threaded()).await;
    job_queue(&server, "events").await;
    let mut stream = server
        .client
        .get(server.url("/v1/queues/events/events"))
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    let (status, _) = server.get("/health").await;
    assert_eq!(status, StatusCode::OK);
    // `stop` fails the test if serve does not return within 10 s.
    server.stop().await;
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        while let Ok(Some(_)) = stream.chunk().await {}
    })
    .await;
    assert!(ended.is_ok(), "the event stream ended at shutdown");
}

/// Once `serve` has returned, the threads hold nothing of the engine: a caller can shut it
/// down and open the same data folder again in this process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_shutdown_the_threads_hold_no_engine() {
    let server = Server::start_with(threaded()).await;
    job_queue(&server, "held").await;
    let (status, _) = server.get("/health").await;
    assert_eq!(status, StatusCode::OK);
    let engine = server.engine.clone();
    server.stop().await;
    assert_eq!(
        std::sync::Arc::strong_count(&engine),
        1,
        "only this test holds the engine"
    );
}
