//! End-to-end tests of the queue, job, dead-letter and worker subcommands: a real
//! `omnibus serve` on a loopback port with a temporary data directory, driven by the CLI as a
//! user would run it, with `omnibus worker` running real shell commands.
//!
//! Every wait is bounded, and every process we start is killed when its guard drops (even on
//! panic), so a failing test stops by itself instead of hanging or leaking a process.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::process::{Guard, Server};

const WAIT_TIMEOUT: Duration = Duration::from_secs(30);

/// Starts `omnibus worker ARGS` against `server` in the background, logging to a file.
fn start_worker(server: &Server, name: &str, args: &[&str]) -> Guard {
    let log_path = server.log_dir().join(format!("worker-{name}.log"));
    let log = File::create(&log_path).expect("log file");
    let child = Command::new(support::BIN)
        .args(["--server", &server.url(), "worker", "--name", name])
        .args(args)
        .env_remove("OMNIBUS_SERVER")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn omnibus worker");
    Guard::new(child, log_path)
}

fn job(server: &Server, queue: &str, id: &str) -> Value {
    let got = server
        .cli(&["job", "get", queue, id], b"")
        .success("job get");
    serde_json::from_str(&got.stdout).expect("job get prints JSON")
}

/// Every job of `queue` with `status`, by id.
fn jobs(server: &Server, queue: &str, status: &str) -> BTreeMap<String, Value> {
    let listed = server
        .cli(
            &[
                "job", "list", queue, "--status", status, "--limit", "10000", "--format", "json",
            ],
            b"",
        )
        .success("job list --format json");
    listed
        .stdout
        .lines()
        .map(|line| {
            let job: Value = serde_json::from_str(line).expect("a JSON line");
            (job["id"].as_str().expect("an id").to_string(), job)
        })
        .collect()
}

/// Polls until `job`'s status is `status`.
fn wait_for_status(server: &Server, queue: &str, id: &str, status: &str) -> Value {
    let deadline = Instant::now() + WAIT_TIMEOUT;
    loop {
        let job = job(server, queue, id);
        if job["status"] == status {
            return job;
        }
        assert!(
            Instant::now() < deadline,
            "job {id} never became {status}: {job}"
        );
        thread::sleep(Duration::from_millis(50));
    }
}

fn enqueue_lines(server: &Server, queue: &str, lines: &[String]) -> Vec<String> {
    let input = lines.join("\n") + "\n";
    let enqueued = server
        .cli(&["job", "enqueue", queue, "-"], input.as_bytes())
        .success("job enqueue -");
    let ids: Vec<String> = enqueued.stdout.lines().map(str::to_string).collect();
    assert_eq!(
        ids.len(),
        lines.len(),
        "one id per line:\n{}",
        enqueued.stdout
    );
    assert_eq!(
        ids.iter().collect::<BTreeSet<_>>().len(),
        ids.len(),
        "ids are unique"
    );
    ids
}

#[test]
fn a_cat_worker_completes_every_job_with_its_payload_as_the_result() {
    let server = Server::start();
    let created = server
        .cli(&["queue", "create", "work"], b"")
        .success("queue create");
    assert!(
        created.stdout.starts_with("created queue work"),
        "{}",
        created.stdout
    );

    // JSON lines stay JSON; other lines become strings; both come back through `cat`.
    let lines: Vec<String> = (0..200)
        .map(|n| match n % 3 {
            0 => json!({"n": n, "to": format!("user-{n}@example.test")}).to_string(),
            1 => format!("plain text job {n}"),
            _ => format!("[{n}, \"x\", null]"),
        })
        .collect();
    let ids = enqueue_lines(&server, "work", &lines);

    let worker = server
        .cli(
            &[
                "worker",
                "work",
                "--exec",
                "cat",
                "--concurrency",
                "4",
                "--max-jobs",
                "200",
            ],
            b"",
        )
        .success("worker");
    assert!(
        worker.stderr.contains("200 completed, 0 failed"),
        "{}",
        worker.stderr
    );

    let completed = jobs(&server, "work", "completed");
    assert_eq!(completed.len(), 200, "completed jobs");
    for (id, line) in ids.iter().zip(&lines) {
        let expected = serde_json::from_str(line).unwrap_or_else(|_| Value::String(line.clone()));
        let job = &completed[id];
        assert_eq!(job["result"], expected, "result of job {id}");
        assert_eq!(job["attempts"], 1, "attempts of job {id}");
    }

    let table = server
        .cli(&["job", "list", "work", "--limit", "5"], b"")
        .success("job list");
    let rows: Vec<&str> = table.stdout.lines().collect();
    assert_eq!(rows.len(), 6, "a header and five jobs:\n{}", table.stdout);
    assert!(rows[0].starts_with("ID "), "{}", table.stdout);
    assert!(rows[1].contains(" completed "), "{}", table.stdout);

    let queues = server.cli(&["queue", "list"], b"").success("queue list");
    let row = queues
        .stdout
        .lines()
        .find(|line| line.starts_with("work "))
        .unwrap_or_else(|| panic!("no work row in:\n{}", queues.stdout));
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cells, ["work", "0", "0", "0", "0"], "{}", queues.stdout);

    let info = server
        .cli(&["queue", "info", "work"], b"")
        .success("queue info");
    let info: Value = serde_json::from_str(&info.stdout).expect("queue info prints JSON");
    assert_eq!(info["jobs"]["completed"], 200, "{info}");

    let unknown = server.cli(&["job", "enqueue", "nowhere", "x"], b"");
    assert_eq!(unknown.status.code(), Some(1), "{}", unknown.stderr);
    assert!(
        unknown.stderr.starts_with("error: queue_not_found: "),
        "{}",
        unknown.stderr
    );
}

#[test]
fn queue_create_max_bytes_refuses_the_job_that_does_not_fit_and_info_shows_bytes_and_rates() {
    let server = Server::start();
    let zero = server.cli(&["queue", "create", "none", "--max-bytes", "0"], b"");
    assert!(!zero.status.success(), "{}", zero.stdout);
    assert!(zero.stderr.contains("at least 1 byte"), "{}", zero.stderr);
    server
        .cli(&["queue", "create", "small", "--max-bytes", "1KiB"], b"")
        .success("queue create --max-bytes");
    // Each job counts its 128-byte payload alone (not its name header): eight fill 1,024
    // bytes exactly, a ninth does not fit.
    let lines: Vec<String> = (0..8).map(|_| "a".repeat(128)).collect();
    enqueue_lines(&server, "small", &lines);
    let ninth = "b".repeat(128);
    let full = server.cli(&["job", "enqueue", "small", &ninth], b"");
    assert_eq!(full.status.code(), Some(1), "{}", full.stderr);
    assert!(
        full.stderr.starts_with("error: queue_full: "),
        "{}",
        full.stderr
    );

    let info = server
        .cli(&["queue", "info", "small"], b"")
        .success("queue info");
    let info: Value = serde_json::from_str(&info.stdout).expect("queue info prints JSON");
    assert_eq!(info["max_bytes"], 1024, "{info}");
    assert_eq!(info["waiting_bytes"], 8 * 128, "{info}");
    assert_eq!(info["rates"]["enqueued"]["last_minute"], 8, "{info}");
    assert_eq!(info["jobs"]["waiting"], 8, "{info}");
}

#[test]
fn a_failing_job_is_retried_then_dead_lettered_with_its_stderr_while_others_complete() {
    let server = Server::start();
    server
        .cli(
            &[
                "queue",
                "create",
                "mixed",
                "--max-deliver",
                "3",
                "--backoff",
                "fixed:50",
                "--jitter",
                "0",
            ],
            b"",
        )
        .success("queue create");
    let mut lines: Vec<String> = (0..40).map(|n| format!("ok-{n}")).collect();
    lines.insert(17, "poison".to_string());
    let ids = enqueue_lines(&server, "mixed", &lines);
    let poison_id = &ids[17];

    let script = r#"read -r line
if [ "$line" = poison ]; then
  echo "cannot digest $line on attempt $OMNIBUS_JOB_ATTEMPT" >&2
  exit 1
fi
echo "done $line""#;
    // 40 jobs that complete, and the poison's 3 attempts.
    let worker = server
        .cli(
            &[
                "worker",
                "mixed",
                "--exec",
                script,
                "--concurrency",
                "3",
                "--max-jobs",
                "43",
            ],
            b"",
        )
        .success("worker");
    assert!(
        worker.stderr.contains("40 completed, 3 failed"),
        "{}",
        worker.stderr
    );

    let completed = jobs(&server, "mixed", "completed");
    assert_eq!(completed.len(), 40);
    assert_eq!(completed[&ids[0]]["result"], "done ok-0");
    let dead = wait_for_status(&server, "mixed", poison_id, "dead");
    assert_eq!(dead["attempts"], 3, "{dead}");
    let errors: Vec<&str> = dead["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|error| error["message"].as_str().expect("message"))
        .collect();
    assert_eq!(
        errors,
        [
            "cannot digest poison on attempt 1",
            "cannot digest poison on attempt 2",
            "cannot digest poison on attempt 3"
        ]
    );

    let letters = server
        .cli(&["dlq", "list", "mixed", "--format", "json"], b"")
        .success("dlq list --format json");
    let letters: Vec<Value> = letters
        .stdout
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect();
    assert_eq!(letters.len(), 1, "{letters:?}");
    let headers = &letters[0]["headers"];
    assert_eq!(headers["omnibus.dlq.attempts"], "3", "{headers}");
    assert_eq!(
        headers["omnibus.dlq.last_error"], "cannot digest poison on attempt 3",
        "{headers}"
    );

    let table = server
        .cli(&["dlq", "list", "mixed"], b"")
        .success("dlq list");
    let rows: Vec<&str> = table.stdout.lines().collect();
    assert_eq!(rows.len(), 2, "{}", table.stdout);
    assert!(
        rows[1].contains("cannot digest poison on attempt 3") && rows[1].ends_with("poison"),
        "{}",
        table.stdout
    );

    let redriven = server
        .cli(&["dlq", "redrive", "mixed"], b"")
        .success("dlq redrive");
    assert_eq!(
        redriven.stdout.trim(),
        "redrove 1 dead letters back to queue mixed"
    );
    let info = server
        .cli(&["queue", "info", "mixed"], b"")
        .success("queue info");
    let info: Value = serde_json::from_str(&info.stdout).expect("JSON");
    assert_eq!(info["ready"], 1, "{info}");
    assert_eq!(info["dead_letter_depth"], 0, "{info}");
}

#[test]
fn a_job_whose_worker_is_killed_is_redelivered_after_its_lease_and_completed_once() {
    let server = Server::start();
    server
        .cli(
            &[
                "queue",
                "create",
                "fragile",
                "--lease-ms",
                "1000",
                "--max-deliver",
                "5",
            ],
            b"",
        )
        .success("queue create");
    let ids = enqueue_lines(&server, "fragile", &["precious".to_string()]);
    let id = &ids[0];

    // The first worker's command would run for 30 s. It writes to stdout now and then, so once
    // its worker is gone a broken pipe ends it too instead of leaving it behind.
    let mut first = start_worker(
        &server,
        "first",
        &[
            "fragile",
            "--exec",
            "for tick in $(seq 150); do echo tick || exit 1; sleep 0.2; done",
        ],
    );
    let active = wait_for_status(&server, "fragile", id, "active");
    assert_eq!(active["attempts"], 1, "{active}");
    // Heartbeats keep the lease (1 s) alive well past its length.
    thread::sleep(Duration::from_millis(2_500));
    let still = job(&server, "fragile", id);
    assert_eq!(still["status"], "active", "{still}\n{}", first.log());
    assert_eq!(still["attempts"], 1, "{still}");
    assert_eq!(still["progress"], json!({"heartbeat": true}), "{still}");

    first.signal(libc::SIGKILL);
    let status = first.wait("the first worker");
    assert!(!status.success());

    let second = server
        .cli(
            &[
                "worker",
                "fragile",
                "--name",
                "second",
                "--exec",
                "cat",
                "--max-jobs",
                "1",
            ],
            b"",
        )
        .success("second worker");
    assert!(
        second.stderr.contains("1 completed, 0 failed"),
        "{}",
        second.stderr
    );

    let job = job(&server, "fragile", id);
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(job["attempts"], 2, "{job}");
    assert_eq!(job["result"], "precious", "{job}");
    let completed = jobs(&server, "fragile", "completed");
    assert_eq!(completed.len(), 1);
}

#[test]
fn sigterm_lets_the_running_job_finish_then_the_worker_exits_cleanly() {
    let server = Server::start();
    server
        .cli(&["queue", "create", "graceful"], b"")
        .success("queue create");
    let ids = enqueue_lines(
        &server,
        "graceful",
        &["slow".to_string(), "next".to_string()],
    );

    let mut worker = start_worker(
        &server,
        "graceful",
        &["graceful", "--exec", "sleep 1; echo \"finished $(cat)\""],
    );
    wait_for_status(&server, "graceful", &ids[0], "active");
    worker.signal(libc::SIGTERM);
    let status = worker.wait("the worker after SIGTERM");
    assert!(status.success(), "{status}:\n{}", worker.log());

    let first = job(&server, "graceful", &ids[0]);
    assert_eq!(first["status"], "completed", "{first}");
    assert_eq!(first["result"], "finished slow", "{first}");
    // Nothing was fetched after the signal.
    let second = job(&server, "graceful", &ids[1]);
    assert_eq!(second["status"], "waiting", "{second}");
}

#[test]
fn a_second_signal_kills_the_running_command_and_fails_its_job() {
    let server = Server::start();
    server
        .cli(&["queue", "create", "impatient"], b"")
        .success("queue create");
    let ids = enqueue_lines(&server, "impatient", &["long".to_string()]);

    let mut worker = start_worker(&server, "impatient", &["impatient", "--exec", "sleep 30"]);
    wait_for_status(&server, "impatient", &ids[0], "active");
    let started = Instant::now();
    worker.signal(libc::SIGINT);
    thread::sleep(Duration::from_millis(300));
    assert!(
        worker.exited().is_none(),
        "the first signal waits for the job"
    );
    worker.signal(libc::SIGINT);
    let status = worker.wait("the worker after a second SIGINT");
    assert!(status.success(), "{status}:\n{}", worker.log());
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );

    let job = job(&server, "impatient", &ids[0]);
    assert_eq!(
        job["errors"][0]["message"], "the worker was stopped and killed the command",
        "{job}"
    );
    assert_ne!(job["status"], "active", "{job}");
}

/// The lines of `path` (every job's command appends its id there), or none yet.
fn ran(path: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// `ids` as a set, asserting there are no repeats.
fn distinct(ids: &[String], what: &str) -> BTreeSet<String> {
    let set: BTreeSet<String> = ids.iter().cloned().collect();
    assert_eq!(set.len(), ids.len(), "{what} has repeats: {ids:?}");
    set
}

#[test]
fn a_worker_fetching_ahead_runs_every_job_exactly_once_one_at_a_time() {
    let server = Server::start();
    server
        .cli(&["queue", "create", "ahead"], b"")
        .success("queue create");
    let lines: Vec<String> = (0..50).map(|n| format!("job {n}")).collect();
    let ids = enqueue_lines(&server, "ahead", &lines);
    let log = server.log_dir().join("ahead-ran");
    let lock = server.log_dir().join("ahead-lock");
    // The lock directory fails the job if two commands ever run at once.
    let command = format!(
        "mkdir {lock} || exit 1; echo $OMNIBUS_JOB_ID >> {log}; rmdir {lock}",
        lock = lock.display(),
        log = log.display()
    );
    let worker = server
        .cli(
            &[
                "worker",
                "ahead",
                "--exec",
                &command,
                "--concurrency",
                "1",
                "--prefetch",
                "8",
                "--max-jobs",
                "50",
            ],
            b"",
        )
        .success("worker");
    assert!(
        worker.stderr.contains("(1 at once, 8 held,"),
        "{}",
        worker.stderr
    );
    assert!(
        worker
            .stderr
            .contains("50 completed, 0 failed, 0 not recorded"),
        "{}",
        worker.stderr
    );
    let ran = ran(&log);
    assert_eq!(ran.len(), 50, "{ran:?}");
    // One at a time, in the order the broker handed them out (oldest first).
    assert_eq!(ran, ids, "the order the commands ran in");
    assert_eq!(
        distinct(&ran, "the commands run"),
        ids.iter().cloned().collect()
    );
    let completed = jobs(&server, "ahead", "completed");
    assert_eq!(completed.len(), 50);
    assert!(
        completed.values().all(|job| job["attempts"] == 1),
        "{completed:?}"
    );
}

#[test]
fn a_stop_signal_runs_the_jobs_fetched_ahead_and_fetches_no_more() {
    let server = Server::start();
    server
        .cli(&["queue", "create", "buffered"], b"")
        .success("queue create");
    let lines: Vec<String> = (0..6).map(|n| format!("job {n}")).collect();
    let ids = enqueue_lines(&server, "buffered", &lines);
    // Every command waits for the go file, so the worker holds 1 running and 3 fetched ahead
    // for as long as the test needs.
    let go = server.log_dir().join("buffered-go");
    let command = format!(
        "while [ ! -e {go} ]; do sleep 0.02; done; echo \"done $(cat)\"",
        go = go.display()
    );
    let mut worker = start_worker(
        &server,
        "buffered",
        &[
            "buffered",
            "--exec",
            &command,
            "--concurrency",
            "1",
            "--prefetch",
            "4",
        ],
    );
    let deadline = Instant::now() + WAIT_TIMEOUT;
    while jobs(&server, "buffered", "active").len() < 4 {
        assert!(
            Instant::now() < deadline,
            "never 4 active:\n{}",
            worker.log()
        );
        thread::sleep(Duration::from_millis(50));
    }
    worker.signal(libc::SIGTERM);
    thread::sleep(Duration::from_millis(300));
    assert!(
        worker.exited().is_none(),
        "the worker waits for the jobs it holds:\n{}",
        worker.log()
    );
    std::fs::write(&go, b"").expect("go file");
    let status = worker.wait("the worker after SIGTERM");
    assert!(status.success(), "{status}:\n{}", worker.log());
    assert!(
        worker
            .log()
            .contains("4 completed, 0 failed, 0 not recorded"),
        "{}",
        worker.log()
    );

    // The four it held (the first four, in order) ran; the other two were never fetched.
    let completed = jobs(&server, "buffered", "completed");
    let waiting = jobs(&server, "buffered", "waiting");
    assert_eq!(
        completed.keys().collect::<BTreeSet<_>>(),
        ids[..4].iter().collect::<BTreeSet<_>>(),
        "{completed:?}"
    );
    assert_eq!(
        waiting.keys().collect::<BTreeSet<_>>(),
        ids[4..].iter().collect::<BTreeSet<_>>()
    );
    for (id, line) in ids.iter().zip(&lines).take(4) {
        assert_eq!(completed[id]["result"], format!("done {line}"), "job {id}");
    }
}

#[test]
fn max_jobs_with_prefetch_never_runs_more_than_the_max() {
    let server = Server::start();
    server
        .cli(&["queue", "create", "capped"], b"")
        .success("queue create");
    let lines: Vec<String> = (0..30).map(|n| format!("job {n}")).collect();
    enqueue_lines(&server, "capped", &lines);
    let log = server.log_dir().join("capped-ran");
    let command = format!("echo $OMNIBUS_JOB_ID >> {}", log.display());
    let worker = server
        .cli(
            &[
                "worker",
                "capped",
                "--exec",
                &command,
                "--concurrency",
                "2",
                "--prefetch",
                "20",
                "--max-jobs",
                "7",
            ],
            b"",
        )
        .success("worker");
    assert!(
        worker
            .stderr
            .contains("7 completed, 0 failed, 0 not recorded"),
        "{}",
        worker.stderr
    );
    let ran = ran(&log);
    assert_eq!(distinct(&ran, "the commands run").len(), 7, "{ran:?}");
    assert_eq!(jobs(&server, "capped", "completed").len(), 7);
    // Nothing beyond the max was leased either: the rest wait for the next worker.
    assert_eq!(jobs(&server, "capped", "waiting").len(), 23);
}

#[test]
fn a_second_signal_leaves_the_jobs_fetched_ahead_to_their_lease() {
    let server = Server::start();
    server
        .cli(&["queue", "create", "hurried", "--lease-ms", "1000"], b"")
        .success("queue create");
    let lines: Vec<String> = (0..3).map(|n| format!("job {n}")).collect();
    let ids = enqueue_lines(&server, "hurried", &lines);
    let mut worker = start_worker(
        &server,
        "hurried",
        &[
            "hurried",
            "--exec",
            "sleep 30",
            "--concurrency",
            "1",
            "--prefetch",
            "3",
        ],
    );
    let deadline = Instant::now() + WAIT_TIMEOUT;
    while jobs(&server, "hurried", "active").len() < 3 {
        assert!(
            Instant::now() < deadline,
            "never 3 active:\n{}",
            worker.log()
        );
        thread::sleep(Duration::from_millis(50));
    }
    // Held past their lease: the heartbeats keep the waiting ones leased too.
    thread::sleep(Duration::from_millis(1_500));
    assert_eq!(
        jobs(&server, "hurried", "active").len(),
        3,
        "{}",
        worker.log()
    );
    worker.signal(libc::SIGINT);
    thread::sleep(Duration::from_millis(300));
    worker.signal(libc::SIGINT);
    let status = worker.wait("the worker after a second SIGINT");
    assert!(status.success(), "{status}:\n{}", worker.log());
    assert!(
        worker
            .log()
            .contains("0 completed, 1 failed, 0 not recorded, 2 never started"),
        "{}",
        worker.log()
    );
    let killed = job(&server, "hurried", &ids[0]);
    assert_eq!(
        killed["errors"][0]["message"],
        "the worker was stopped and killed the command",
        "{killed}\n{}\n{}",
        worker.log(),
        server.log()
    );
    // The two never started go back to the queue once their lease runs out, no attempt lost
    // to a failure.
    for id in &ids[1..] {
        let back = wait_for_status(&server, "hurried", id, "waiting");
        assert_eq!(back["errors"], json!([]), "{back}");
    }
}
