//! End-to-end tests of the `omnibus` binary: a real `omnibus serve` on a loopback port with a
//! temporary data directory, driven by the CLI subcommands as a user would run them.
//!
//! Every wait is bounded and every server is killed when its guard drops (even on panic), so
//! a failing test stops by itself instead of hanging or leaking a process.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_omnibus");
const READY_TIMEOUT: Duration = Duration::from_secs(30);
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// A running `omnibus serve`; killed on drop.
struct Server {
    child: Option<Child>,
    address: String,
    data_dir: PathBuf,
    log_path: PathBuf,
    _directory: Option<tempfile::TempDir>,
}

impl Server {
    fn start() -> Server {
        let directory = tempfile::tempdir().expect("temp dir");
        let data_dir = directory.path().join("data");
        let mut server = Server::start_in(&data_dir, directory.path());
        server._directory = Some(directory);
        server
    }

    /// Starts a server on `data_dir`, logging to a file in `log_dir` (a pipe nobody reads
    /// could fill up and stall the server).
    fn start_in(data_dir: &Path, log_dir: &Path) -> Server {
        let port = free_port();
        let address = format!("127.0.0.1:{port}");
        let log_path = log_dir.join(format!("serve-{port}.log"));
        let log = File::create(&log_path).expect("log file");
        let child = Command::new(BIN)
            .args(["serve", "--data-dir"])
            .arg(data_dir)
            .args(["--http-listen", &address])
            // Tests run side by side: never the default Kafka port.
            .args(["--kafka-listen", &format!("127.0.0.1:{}", free_port())])
            .env_remove("OMNIBUS_CONFIG")
            .env_remove("OMNIBUS_DATA_DIR")
            .env_remove("OMNIBUS_HTTP_LISTEN")
            .env_remove("OMNIBUS_KAFKA_LISTEN")
            .env("OMNIBUS_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn omnibus serve");
        let mut server = Server {
            child: Some(child),
            address,
            data_dir: data_dir.to_path_buf(),
            log_path,
            _directory: None,
        };
        server.wait_until_healthy();
        server
    }

    fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    fn wait_until_healthy(&mut self) {
        let deadline = Instant::now() + READY_TIMEOUT;
        while Instant::now() < deadline {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("omnibus serve exited with {status}:\n{}", self.log());
            }
            if health_ok(&self.address) {
                return;
            }
            thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "omnibus serve was not healthy within {READY_TIMEOUT:?}:\n{}",
            self.log()
        );
    }

    /// Runs a CLI subcommand against this server.
    fn cli(&self, args: &[&str], stdin: &[u8]) -> Outcome {
        let url = self.url();
        let mut all = vec!["--server", url.as_str()];
        all.extend_from_slice(args);
        run(&all, stdin)
    }

    /// Sends SIGTERM and waits (bounded) for the process to exit.
    fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("server is running");
        let pid = libc::pid_t::try_from(child.id()).expect("pid fits");
        // SAFETY: `pid` is our own child, which has not been reaped, so it names that process.
        let sent = unsafe { libc::kill(pid, libc::SIGTERM) };
        assert_eq!(sent, 0, "kill(SIGTERM) failed");
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "omnibus serve ignored SIGTERM for {STOP_TIMEOUT:?}:\n{}",
                    self.log()
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A port nobody listens on right now (the OS picks it; we release it for the server).
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr").port()
}

/// `GET /health` over a raw socket, so the test needs no HTTP client of its own.
fn health_ok(address: &str) -> bool {
    let Ok(mut stream) = TcpStream::connect(address) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = format!("GET /health HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    answer.starts_with(b"HTTP/1.1 200")
}

struct Outcome {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Outcome {
    fn success(self, what: &str) -> Outcome {
        assert!(
            self.status.success(),
            "{what} failed with {}:\nstderr:\n{}",
            self.status,
            self.stderr
        );
        self
    }

    fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }
}

/// Runs `omnibus ARGS` with `stdin`, killing it if it outlives [`COMMAND_TIMEOUT`].
fn run(args: &[&str], stdin: &[u8]) -> Outcome {
    let mut child = Command::new(BIN)
        .args(args)
        .env_remove("OMNIBUS_SERVER")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn omnibus");
    let mut input = child.stdin.take().expect("stdin");
    let stdin = stdin.to_vec();
    let writer = thread::spawn(move || {
        // The command may exit without reading everything (e.g. on an error); that is its
        // business, so a broken pipe here is not a test failure.
        let _ = input.write_all(&stdin);
    });
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let out_reader = thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let err_reader = thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let deadline = Instant::now() + COMMAND_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("omnibus {args:?} did not finish within {COMMAND_TIMEOUT:?}");
        }
        thread::sleep(Duration::from_millis(10));
    };
    writer.join().expect("stdin writer");
    Outcome {
        status,
        stdout: out_reader.join().expect("stdout reader"),
        stderr: err_reader.join().expect("stderr reader"),
    }
}

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

    let directory = server._directory.take().expect("temp dir");
    let restarted = Server::start_in(&server.data_dir, directory.path());
    let consumed = restarted
        .cli(&["consume", "kept"], b"")
        .success("consume after restart");
    assert_eq!(consumed.lines(), ["one", "two"]);
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
            "--kafka-listen",
            &format!("127.0.0.1:{}", free_port()),
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
