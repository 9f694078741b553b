//! Synchronous harness for the CLI tests: a `omnibus serve` process on loopback ports it
//! picks itself (port 0, read back from its ready line), CLI commands run to their end with a
//! bounded wait, and child processes killed on drop.

use std::fs::File;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use super::ready::{ready_addresses_in_log, LISTEN_ANY_PORT};
use super::BIN;

/// Numbers the servers started by this test binary, so each writes a log of its own.
static STARTS: AtomicUsize = AtomicUsize::new(0);

const READY_TIMEOUT: Duration = Duration::from_secs(30);
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// A process we started, logging to a file; killed on drop.
pub struct Guard {
    child: Option<Child>,
    log_path: PathBuf,
}

impl Guard {
    pub fn new(child: Child, log_path: PathBuf) -> Guard {
        Guard {
            child: Some(child),
            log_path,
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    pub fn pid(&self) -> libc::pid_t {
        let child = self.child.as_ref().expect("running");
        libc::pid_t::try_from(child.id()).expect("pid fits")
    }

    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.as_mut()?.try_wait().expect("try_wait")
    }

    /// Waits (bounded by `timeout`) for the process to exit by itself; `None` if it did not.
    pub fn wait_for(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.exited() {
                self.child = None;
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits (bounded) for the process to exit by itself.
    pub fn wait(&mut self, what: &str) -> ExitStatus {
        match self.wait_for(COMMAND_TIMEOUT) {
            Some(status) => status,
            None => panic!(
                "{what} did not exit within {COMMAND_TIMEOUT:?}:\n{}",
                self.log()
            ),
        }
    }

    pub fn signal(&self, signal: libc::c_int) {
        // SAFETY: the pid is our own child, not yet reaped, so it names that process.
        let sent = unsafe { libc::kill(self.pid(), signal) };
        assert_eq!(sent, 0, "kill({signal}) failed");
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A running `omnibus serve`; killed on drop.
pub struct Server {
    pub process: Guard,
    /// The HTTP listener's bound address (`127.0.0.1:PORT`).
    pub address: String,
    /// The Kafka listener's bound address.
    pub kafka_address: String,
    /// The NATS listener's bound address.
    pub nats_address: String,
    pub data_dir: PathBuf,
    log_dir: PathBuf,
    _directory: Option<tempfile::TempDir>,
}

impl Server {
    /// A server on a fresh temporary folder (data in `data/`, logs beside it).
    pub fn start() -> Server {
        let directory = tempfile::tempdir().expect("temp dir");
        let data_dir = directory.path().join("data");
        let mut server = Server::start_in(&data_dir, directory.path());
        server._directory = Some(directory);
        server
    }

    /// Starts a server on `data_dir`, logging to a file in `log_dir` (a pipe nobody reads
    /// could fill up and stall the server). Every listener binds port 0, so a restart on the
    /// same data gets new addresses: callers take them from the returned server.
    pub fn start_in(data_dir: &Path, log_dir: &Path) -> Server {
        let start = STARTS.fetch_add(1, Ordering::Relaxed);
        let log_path = log_dir.join(format!("serve-{start}.log"));
        let log = File::create(&log_path).expect("log file");
        let child = Command::new(BIN)
            .args(["serve", "--data-dir"])
            .arg(data_dir)
            .args(["--http-listen", LISTEN_ANY_PORT])
            .args(["--kafka-listen", LISTEN_ANY_PORT])
            .args(["--nats-listen", LISTEN_ANY_PORT])
            .args(["--amqp-listen", LISTEN_ANY_PORT])
            .args(["--redis-listen", LISTEN_ANY_PORT])
            .env_remove("OMNIBUS_CONFIG")
            .env_remove("OMNIBUS_DATA_DIR")
            .env_remove("OMNIBUS_HTTP_LISTEN")
            .env_remove("OMNIBUS_KAFKA_LISTEN")
            .env_remove("OMNIBUS_NATS_LISTEN")
            .env_remove("OMNIBUS_AMQP_LISTEN")
            .env_remove("OMNIBUS_REDIS_LISTEN")
            .env("OMNIBUS_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn omnibus serve");
        let mut server = Server {
            process: Guard::new(child, log_path),
            address: String::new(),
            kafka_address: String::new(),
            nats_address: String::new(),
            data_dir: data_dir.to_path_buf(),
            log_dir: log_dir.to_path_buf(),
            _directory: None,
        };
        server.wait_until_healthy();
        server
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    pub fn log(&self) -> String {
        self.process.log()
    }

    /// Where this server's log (and its workers' logs) are written.
    pub fn log_dir(&self) -> &Path {
        &self.log_dir
    }

    /// Waits for the ready line (which names the bound addresses), then for `/health`.
    fn wait_until_healthy(&mut self) {
        let deadline = Instant::now() + READY_TIMEOUT;
        while Instant::now() < deadline {
            if let Some(status) = self.process.exited() {
                panic!("omnibus serve exited with {status}:\n{}", self.log());
            }
            if self.address.is_empty() {
                if let Some(addresses) = ready_addresses_in_log(&self.process.log_path, 0) {
                    self.address = addresses.http.to_string();
                    self.kafka_address = addresses.kafka.to_string();
                    self.nats_address = addresses.nats.map(|a| a.to_string()).unwrap_or_default();
                }
            }
            if !self.address.is_empty() && health_ok(&self.address) {
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "omnibus serve was not healthy within {READY_TIMEOUT:?}:\n{}",
            self.log()
        );
    }

    /// Runs a CLI subcommand against this server to its end.
    pub fn cli(&self, args: &[&str], stdin: &[u8]) -> Outcome {
        let url = self.url();
        let mut all = vec!["--server", url.as_str()];
        all.extend_from_slice(args);
        run(&all, stdin)
    }

    /// Sends SIGTERM and waits (bounded) for the process to exit.
    pub fn terminate(&mut self) -> ExitStatus {
        self.process.signal(libc::SIGTERM);
        match self.process.wait_for(STOP_TIMEOUT) {
            Some(status) => status,
            None => panic!(
                "omnibus serve ignored SIGTERM for {STOP_TIMEOUT:?}:\n{}",
                self.log()
            ),
        }
    }
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

/// What a finished CLI command printed.
pub struct Outcome {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    pub fn success(self, what: &str) -> Outcome {
        assert!(
            self.status.success(),
            "{what} failed with {}:\nstdout:\n{}\nstderr:\n{}",
            self.status,
            self.stdout,
            self.stderr
        );
        self
    }

    pub fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }
}

/// Runs `omnibus ARGS` with `stdin`, killing it if it outlives [`COMMAND_TIMEOUT`].
pub fn run(args: &[&str], stdin: &[u8]) -> Outcome {
    let mut child = Command::new(BIN)
        .args(args)
        .env_remove("OMNIBUS_SERVER")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn omnibus");
    let mut input = child.stdin.take().expect("stdin");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let mut guard = Guard::new(child, PathBuf::new());
    let stdin = stdin.to_vec();
    let writer = thread::spawn(move || {
        // The command may exit without reading everything (e.g. on an error); that is its
        // business, so a broken pipe here is not a test failure.
        let _ = input.write_all(&stdin);
    });
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
    let Some(status) = guard.wait_for(COMMAND_TIMEOUT) else {
        drop(guard);
        panic!("omnibus {args:?} did not finish within {COMMAND_TIMEOUT:?}");
    };
    writer.join().expect("stdin writer");
    Outcome {
        status,
        stdout: out_reader.join().expect("stdout reader"),
        stderr: err_reader.join().expect("stderr reader"),
    }
}
