//! A poison job under `kill -9`: its worker dies every time it runs it (the job is fetched
//! and never finished), and the broker is killed between attempts — right after the fetch
//! was answered (before the lease's lazily written state could reach the disk), or after the
//! lease expired. Leases do not wait for an fsync, yet `max_deliver` must still hold: the job
//! is handed out at most `max_deliver` times in all and then sits in the dead-letter stream.
//! Jobs completed along the way (with `fsync` completions) never run again.

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::Broker;

const QUEUE: &str = "poison";
const MAX_DELIVER: usize = 4;
const LEASE_MS: u64 = 400;
/// Bounded: the job must be dead long before this many broker starts.
const STARTS_MAX: usize = 3 * MAX_DELIVER;

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .no_proxy()
        .build()
        .expect("http client")
}

async fn post(base: &str, path: &str, body: Value) -> (u16, Value) {
    let response = client()
        .post(format!("{base}{path}"))
        .json(&body)
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

async fn get(base: &str, path: &str) -> Value {
    client()
        .get(format!("{base}{path}"))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_job_reaches_the_dead_letters_within_max_deliver_across_kill_9() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let mut poison_id = None;
    let mut handed_out = 0;
    let mut completed: Vec<String> = Vec::new();
    for start in 0..STARTS_MAX {
        let mut broker = Broker::start(&data, dir.path().join(format!("broker-{start}.log"))).await;
        let base = broker.base();
        if start == 0 {
            let (status, _) = post(
                &base,
                "/v1/queues",
                json!({"name": QUEUE, "lease_ms": LEASE_MS, "max_deliver": MAX_DELIVER,
                       "backoff": {"kind": "fixed", "delay_ms": 0}}),
            )
            .await;
            assert_eq!(status, 201);
            let (status, body) = post(
                &base,
                &format!("/v1/queues/{QUEUE}/jobs"),
                json!({"name": "poison", "payload": {"crash": true}}),
            )
            .await;
            assert_eq!(status, 201, "{body}");
            poison_id = Some(body["jobs"][0]["id"].as_str().expect("id").to_string());
        }
        let poison_id = poison_id.clone().expect("enqueued");
        let job = get(&base, &format!("/v1/queues/{QUEUE}/jobs/{poison_id}")).await;
        if job["status"] == "dead" {
            break;
        }
        // A healthy job each start, completed with fsync: it must never come back.
        let (status, _) = post(
            &base,
            &format!("/v1/queues/{QUEUE}/jobs"),
            json!({"name": format!("good-{start}"), "payload": {}}),
        )
        .await;
        assert_eq!(status, 201);
        // Take jobs until the poison one comes (the queue may first dead-letter it: a count
        // that reached max_deliver before the kill).
        let mut got_poison = false;
        for _ in 0..10 {
            let (status, body) = post(
                &base,
                &format!("/v1/queues/{QUEUE}/jobs/fetch"),
                json!({"worker": format!("w{start}"), "max": 1, "wait_ms": 2 * LEASE_MS}),
            )
            .await;
            assert_eq!(status, 200, "{body}");
            let Some(job) = body["jobs"]
                .as_array()
                .and_then(|jobs| jobs.first())
                .cloned()
            else {
                break;
            };
            let id = job["id"].as_str().expect("id").to_string();
            assert!(!completed.contains(&id), "completed job {id} ran again");
            if id == poison_id {
                handed_out += 1;
                got_poison = true;
                break;
            }
            let attempt = job["attempt"].as_u64().expect("attempt");
            let (status, body) = post(
                &base,
                &format!("/v1/queues/{QUEUE}/jobs/{id}/complete"),
                json!({"attempt": attempt}),
            )
            .await;
            assert_eq!(status, 200, "{body}");
            completed.push(id);
        }
        if !got_poison {
            continue;
        }
        // The worker running it dies. Even starts: the broker is killed at once; odd ones:
        // after the lease expired and the failure was recorded.
        if start % 2 == 1 {
            tokio::time::sleep(Duration::from_millis(LEASE_MS * 3)).await;
        }
        broker.kill_9();
    }
    let broker = Broker::start(&data, dir.path().join("broker-final.log")).await;
    let base = broker.base();
    let poison_id = poison_id.expect("enqueued");
    // A recovered count that reached max_deliver is dead-lettered at the next delivery.
    let _ = post(
        &base,
        &format!("/v1/queues/{QUEUE}/jobs/fetch"),
        json!({"worker": "last", "max": 10, "wait_ms": 2 * LEASE_MS}),
    )
    .await;
    let job = get(&base, &format!("/v1/queues/{QUEUE}/jobs/{poison_id}")).await;
    assert_eq!(job["status"], "dead", "{job}");
    assert!(
        handed_out <= MAX_DELIVER,
        "handed out {handed_out} times with max_deliver {MAX_DELIVER}"
    );
    assert!(handed_out >= 1);
    let dead = get(&base, &format!("/v1/queues/{QUEUE}/dlq?limit=10")).await;
    let letters = dead["records"].as_array().expect("records");
    assert_eq!(letters.len(), 1, "{dead}");
    assert_eq!(
        letters[0]["headers"]["omnibus.dlq.source_offset"], poison_id,
        "{dead}"
    );
    println!(
        "crash summary: crash_poison [kill -9] handed_out={handed_out} max_deliver={MAX_DELIVER} completed={} rerun=0",
        completed.len()
    );
}
