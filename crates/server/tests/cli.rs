//! End-to-end tests of the `omnibus` binary: a real `omnibus serve` on a loopback port with a
//! temporary data directory, driven by the CLI subcommands as a user would run them.
//!
//! Every wait is bounded and every server is killed when its guard drops (even on panic), so
//! a failing test stops by itself instead of hanging or leaking a process.

mod support;

use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use support::process::{run, Server};
use support::ready::{parse_ready_line, LISTEN_ANY_PORT};

#[test]
fn publish_from_stdin_then_consume_returns_every_line_in_order() {
    let server = Server::start();
    server
        .cli(&["stream", "create", "events"], b"")
        .success("stream create");

    let lines: Vec<String> = (0..100_000)
        .map(|n| format!("event-{n:06}-{:016x}", rand::random::<u64>()))
        .collect();
    let input = lines.join("\n") + "\n";
    let published = server
        .cli(&["publish", "events", "-"], input.as_bytes())
        .success("publish");
    assert!(
        published.stderr.contains("published 100000 records"),
        "summary: {}",
        published.stderr
    );

    let consumed = server
        .cli(&["consume", "events", "--count", "100000"], b"")
        .success("consume --count");
    assert_eq!(consumed.lines().len(), lines.len());
    assert!(
        consumed.lines() == lines,
        "consumed lines differ from published lines"
    );

    // Without --count, consume stops at the end it saw at start.
    let to_end = server
        .cli(&["consume", "events"], b"")
        .success("consume to end");
    assert!(to_end.lines() == lines, "consume to the end differs");

    let listed = server.cli(&["stream", "list"], b"").success("stream list");
    let row = listed
        .lines()
        .into_iter()
        .find(|line| line.starts_with("events "))
        .unwrap_or_else(|| panic!("no events row in:\n{}", listed.stdout));
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cells[1], "1", "partitions in {row:?}");
    assert_eq!(cells[3], "100000", "records in {row:?}");
}

#[test]
fn a_group_resumes_from_its_committed_offset() {
    let server = Server::start();
    server
        .cli(&["stream", "create", "jobs", "--partitions", "1"], b"")
        .success("stream create");
    let input: String = (0..30).map(|n| format!("job-{n}\n")).collect();
    server
        .cli(&["publish", "jobs"], input.as_bytes())
        .success("publish");

    let first = server
        .cli(&["consume", "jobs", "--group", "g", "--count", "10"], b"")
        .success("first consume");
    let expected: Vec<String> = (0..10).map(|n| format!("job-{n}")).collect();
    assert_eq!(first.lines(), expected);

    let second = server
        .cli(&["consume", "jobs", "--group", "g", "--count", "10"], b"")
        .success("second consume");
    let expected: Vec<String> = (10..20).map(|n| format!("job-{n}")).collect();
    assert_eq!(second.lines(), expected);

    // A single value prints where it landed; JSON output carries the offsets.
    let single = server
        .cli(&["publish", "jobs", "job-30"], b"")
        .success("publish one value");
    assert_eq!(single.stdout.trim(), "0 30");
    let json = server
        .cli(
            &[
                "consume", "jobs", "--from", "29", "--count", "2", "--format", "json",
            ],
            b"",
        )
        .success("consume --format json");
    let records: Vec<serde_json::Value> = json
        .lines()
        .iter()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0]["offset"], 29);
    assert_eq!(records[1]["value"], "job-30");
}

#[test]
fn stream_alter_changes_only_the_settings_given() {
    let server = Server::start();
    server
        .cli(
            &["stream", "create", "audit", "--message-bytes-max", "4096"],
            b"",
        )
        .success("stream create");
    let altered = server
        .cli(
            &[
                "stream",
                "alter",
                "audit",
                "--retention-ms",
                "unlimited",
                "--segment-ms",
                "60000",
            ],
            b"",
        )
        .success("stream alter");
    let info: serde_json::Value = serde_json::from_str(&altered.stdout).expect("JSON");
    assert_eq!(info["retention_ms"], serde_json::Value::Null);
    assert_eq!(info["segment_ms"], 60000);
    assert_eq!(info["message_bytes_max"], 4096, "not given: kept");
    let shown = server
        .cli(&["stream", "info", "audit"], b"")
        .success("stream info");
    let shown: serde_json::Value = serde_json::from_str(&shown.stdout).expect("JSON");
    assert_eq!(shown, info);
    let refused = server.cli(
        &["stream", "alter", "audit", "--message-bytes-max", "0"],
        b"",
    );
    assert_eq!(refused.status.code(), Some(1), "stderr: {}", refused.stderr);
    assert!(
        refused.stderr.starts_with("error: invalid_config: "),
        "stderr: {}",
        refused.stderr
    );
}

#[test]
fn publishing_to_an_unknown_stream_fails_with_its_code() {
    let server = Server::start();
    let outcome = server.cli(&["publish", "nowhere", "hello"], b"");
    assert_eq!(outcome.status.code(), Some(1), "stderr: {}", outcome.stderr);
    assert!(
        outcome.stderr.starts_with("error: stream_not_found: "),
        "stderr: {}",
        outcome.stderr
    );
}

#[test]
fn sigterm_stops_serve_cleanly_and_keeps_the_data() {
    let mut server = Server::start();
    server
        .cli(&["stream", "create", "kept"], b"")
        .success("stream create");
    server
        .cli(&["publish", "kept"], b"one\ntwo\n")
        .success("publish");

    let started = Instant::now();
    let status = server.terminate();
    assert!(status.success(), "exit {status}:\n{}", server.log());
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(
        server.log().contains("omnibus ready: http="),
        "{}",
        server.log()
    );

    // The stopped server still owns the temporary folder; restart on its data.
    let restarted = Server::start_in(&server.data_dir, server.log_dir());
    let consumed = restarted
        .cli(&["consume", "kept"], b"")
        .success("consume after restart");
    assert_eq!(consumed.lines(), ["one", "two"]);
}

#[test]
fn serve_on_port_zero_writes_its_bound_addresses_to_listeners_json_until_it_stops() {
    // The harness starts every listener on 127.0.0.1:0 and reads the ready line.
    let mut server = Server::start();
    let file = server.data_dir.join("listeners.json");
    let text = std::fs::read_to_string(&file).expect("listeners.json while serving");
    let listeners: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(listeners["http"], server.address.as_str(), "{text}");
    assert_eq!(listeners["kafka"], server.kafka_address.as_str(), "{text}");
    assert_eq!(listeners["pid"], server.process.pid(), "{text}");
    for address in [&server.address, &server.kafka_address] {
        assert!(!address.ends_with(":0"), "a bound port, not 0: {address}");
        TcpStream::connect(address.as_str()).expect("the listener named in the file accepts");
    }

    let status = server.terminate();
    assert!(status.success(), "exit {status}:\n{}", server.log());
    assert!(
        !file.exists(),
        "a clean shutdown removes listeners.json:\n{}",
        server.log()
    );
}

#[test]
fn serve_reports_a_taken_address_and_exits_nonzero() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = taken.local_addr().expect("addr").to_string();
    let directory = tempfile::tempdir().expect("temp dir");
    let data_dir = directory.path().join("data");
    let outcome = run(
        &[
            "serve",
            "--data-dir",
            data_dir.to_str().expect("utf-8 path"),
            "--http-listen",
            &address,
            // The Kafka listener takes any free port, so only the held HTTP address fails.
            "--kafka-listen",
            LISTEN_ANY_PORT,
            "--nats-listen",
            LISTEN_ANY_PORT,
            "--amqp-listen",
            LISTEN_ANY_PORT,
        ],
        b"",
    );
    assert_eq!(outcome.status.code(), Some(1), "stderr: {}", outcome.stderr);
    assert!(
        outcome
            .stderr
            .contains(&format!("cannot listen for HTTP on {address}")),
        "stderr: {}",
        outcome.stderr
    );
}

#[test]
fn usage_errors_exit_with_status_2() {
    let outcome = run(&["consume", "s", "--from", "next-tuesday"], b"");
    assert_eq!(outcome.status.code(), Some(2), "stderr: {}", outcome.stderr);
}

#[test]
fn the_ready_line_gives_both_bound_addresses_and_may_grow_fields() {
    let line = "omnibus ready: http=127.0.0.1:40001 kafka=127.0.0.1:40002 data_dir=/tmp/x later=1";
    let addresses = parse_ready_line(line).expect("a ready line");
    assert_eq!(addresses.http.to_string(), "127.0.0.1:40001");
    assert_eq!(addresses.kafka.to_string(), "127.0.0.1:40002");
    assert_eq!(parse_ready_line("omnibus ready: http=127.0.0.1:1"), None);
    assert_eq!(parse_ready_line("INFO starting"), None);
}
