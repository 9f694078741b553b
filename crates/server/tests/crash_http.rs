//! Crash recovery of the real `omnibus` binary, driven over HTTP.
//!
//! One data directory lives through many cycles of: start `omnibus serve`, verify everything
//! the earlier cycles left behind, put the broker under a load of concurrent publishes, then
//! stop it abruptly (`kill -9`) at a random moment. After every restart:
//!
//! 1. every record whose publish was acknowledged (HTTP 200) is present at exactly the
//!    partition and offset the acknowledgement named, with the same value;
//! 2. no value appears twice anywhere (unacknowledged publishes may be lost, never doubled);
//! 3. offsets are dense: 0, 1, ... up to the high watermark;
//! 4. within a partition, one producer's records appear in the order it sent them;
//! 5. every stored value is one the test sent (nothing corrupt, nothing invented), in the
//!    partition it was sent to when the publish named one;
//! 6. what a reader saw after the previous restart is still there, unchanged (recovery never
//!    rewrites records it already served).
//!
//! The checks are cumulative: the set of acknowledged records grows over the whole run.
//! A second, smaller test does the same with SIGTERM and also wants exit status 0.
//!
//! Randomness (kill moments, batch shapes) comes from one printed seed; rerun a failure with
//! `OMNIBUS_CRASH_SEED=<seed>`. `OMNIBUS_CRASH_CYCLES=<n>` raises the number of kill cycles
//! for a longer run. Only 127.0.0.1 is used; every wait is bounded; the server is killed when
//! its guard drops, even when an assertion fails.

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::net::TcpListener;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use tokio::task::JoinSet;

const BIN: &str = env!("CARGO_BIN_EXE_omnibus");
const STREAM: &str = "crash";
const PARTITIONS: u32 = 4;
/// Small segments, so that kills also land while a partition rolls to a new segment.
const SEGMENT_BYTES: u64 = 128 * 1024;
const PRODUCERS: usize = 4;
const BATCH_RECORDS_MAX: usize = 50;
/// Padding added to a value, so batches vary in size.
const PADDING_BYTES_MAX: usize = 200;
const KILL_CYCLES_DEFAULT: usize = 20;
/// A longer run starts over on a fresh data directory after this many cycles, so that the
/// full read-back after every restart stays cheap and the run time grows linearly.
const CYCLES_PER_DATA_DIR: usize = 20;
const TERM_CYCLES: usize = 3;
/// The load runs this long (a random pick, inclusive) before the server is stopped.
const STOP_DELAY_MS: (u64, u64) = (5, 400);

const READY_TIMEOUT: Duration = Duration::from_secs(20);
const READY_POLL: Duration = Duration::from_millis(50);
const START_ATTEMPTS: usize = 5;
/// `omnibus serve` drains requests for at most 10 s after SIGTERM, then flushes.
const EXIT_TIMEOUT: Duration = Duration::from_secs(30);
const PRODUCER_STOP_TIMEOUT: Duration = Duration::from_secs(20);
/// A producer never runs longer than this in one cycle, whatever happens to the stop signal.
const LOAD_TIME_MAX: Duration = Duration::from_secs(10);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
const FETCH_REQUESTS_MAX: usize = 100_000;
const FAILURES_SHOWN_MAX: usize = 40;
/// Lost or replaced records listed one by one per partition; the rest are summarized.
const DETAILS_PER_PARTITION: usize = 3;
const LOG_TAIL_BYTES: u64 = 6 * 1024;

// ---------------------------------------------------------------------------------------------
// The tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_records_survive_repeated_kill_9_under_load() {
    let cycles = match std::env::var("OMNIBUS_CRASH_CYCLES") {
        Ok(text) => text
            .trim()
            .parse::<usize>()
            .unwrap_or_else(|_| panic!("OMNIBUS_CRASH_CYCLES={text:?} is not a count"))
            .max(KILL_CYCLES_DEFAULT),
        Err(_) => KILL_CYCLES_DEFAULT,
    };
    run_crash_test(StopMode::Kill, cycles).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_records_survive_sigterm_under_load_and_exit_is_clean() {
    run_crash_test(StopMode::Term, TERM_CYCLES).await;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StopMode {
    /// SIGKILL: no chance to flush anything.
    Kill,
    /// SIGTERM: the broker drains, flushes and must exit 0.
    Term,
}

async fn run_crash_test(mode: StopMode, cycles: usize) {
    let seed = seed();
    let started = Instant::now();
    let name = match mode {
        StopMode::Kill => "kill -9",
        StopMode::Term => "SIGTERM",
    };
    println!(
        "crash_http [{name}]: seed={seed} cycles={cycles}, a fresh data directory every \
         {CYCLES_PER_DATA_DIR} cycles (rerun with OMNIBUS_CRASH_SEED={seed})"
    );
    let mut rng = StdRng::seed_from_u64(seed);
    let admin = http_client();
    let (mut acked, mut stored) = (0, 0);
    let mut first = 0;
    while first < cycles {
        let end = (first + CYCLES_PER_DATA_DIR).min(cycles);
        let mut run = Run {
            mode,
            seed,
            directory: tempfile::tempdir().expect("create a temp dir"),
            starts: 0,
        };
        let ledger = run_cycles(&mut run, &mut rng, &admin, first..end).await;
        acked += ledger.acked.len();
        stored += ledger.observed.iter().map(Vec::len).sum::<usize>();
        first = end;
    }
    println!(
        "crash_http [{name}]: seed={seed}: {cycles} cycles, {acked} records acknowledged, \
         {stored} stored, all verified in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(
        acked > 0,
        "seed {seed}: no publish was ever acknowledged, so nothing was tested"
    );
}

/// Runs `cycles` on one fresh data directory; returns what was verified.
async fn run_cycles(
    run: &mut Run,
    rng: &mut StdRng,
    admin: &reqwest::Client,
    cycles: std::ops::Range<usize>,
) -> Ledger {
    let mode = run.mode;
    let seed = run.seed;
    let data_dir = run.directory.path().join("data");
    let mut ledger = Ledger::new();

    let mut server = run.start(&data_dir, admin, None).await;
    create_stream(admin, &server, true)
        .await
        .unwrap_or_else(|message| run.fail(None, &[message], &[&server.log]));

    for cycle in cycles {
        let delay = Duration::from_millis(rng.random_range(STOP_DELAY_MS.0..=STOP_DELAY_MS.1));

        // Load, then stop the server abruptly (or politely) in the middle of it.
        let stop = Arc::new(AtomicBool::new(false));
        let load_deadline = Instant::now() + LOAD_TIME_MAX;
        let mut producers = JoinSet::new();
        for producer in 0..PRODUCERS {
            producers.spawn(produce(Producer {
                client: http_client(),
                base: server.base(),
                producer,
                cycle,
                seed: producer_seed(seed, cycle, producer),
                stop: Arc::clone(&stop),
                deadline: load_deadline,
            }));
        }
        tokio::time::sleep(delay).await;
        let crashed_log = server.log.clone();
        let stop_failures = match mode {
            StopMode::Kill => server.kill_9(),
            StopMode::Term => server.terminate().await,
        };
        stop.store(true, Ordering::SeqCst);
        let reports = join_producers(&mut producers).await;
        drop(server);
        if !stop_failures.is_empty() {
            run.fail(Some(cycle), &stop_failures, &[&crashed_log]);
        }
        let reports = match reports {
            Ok(reports) => reports,
            Err(message) => run.fail(Some(cycle), &[message], &[&crashed_log]),
        };
        let load = ledger.record_load(mode, &reports);

        // Restart on the same data and check everything acknowledged so far.
        let restart = Instant::now();
        server = run.start(&data_dir, admin, Some(cycle)).await;
        let ready_ms = restart.elapsed().as_millis();
        let mut notes = warnings_in(&server.log);
        if load.turned_away > 0 {
            notes.push_str(&format!("; {} publishes answered 503", load.turned_away));
        }
        let mut failures = load.failures.clone();
        if let Err(message) = create_stream(admin, &server, false).await {
            failures.push(message);
        }
        let reading = Instant::now();
        let logs = match read_stream(admin, &server).await {
            Ok(logs) => logs,
            Err(message) => {
                failures.push(message);
                run.fail(Some(cycle), &failures, &[&crashed_log, &server.log]);
            }
        };
        let read_ms = reading.elapsed().as_millis();
        let verifying = Instant::now();
        let verified = ledger.verify(&logs, cycle);
        let verify_ms = verifying.elapsed().as_millis();
        failures.extend(verified.failures);
        if !failures.is_empty() {
            run.fail(Some(cycle), &failures, &[&crashed_log, &server.log]);
        }
        println!(
            "cycle {cycle:>3}: stopped after {:>3} ms; sent {:>5} records in {:>3} requests, \
             {:>5} acknowledged; restart: ready in {ready_ms} ms, read in {read_ms} ms, \
             checked in {verify_ms} ms: high watermarks {:?}, \
             {} unacknowledged present, {} unacknowledged lost{}",
            delay.as_millis(),
            load.records_sent,
            load.requests,
            load.records_acked,
            verified.high_watermarks,
            verified.unacked_present_this_cycle,
            load.records_sent
                .saturating_sub(load.records_acked + verified.unacked_present_this_cycle),
            notes,
        );
    }

    // Leave politely; the guard would SIGKILL otherwise.
    let final_log = server.log.clone();
    let failures = server.terminate().await;
    if !failures.is_empty() {
        run.fail(None, &failures, &[&final_log]);
    }
    ledger
}

// ---------------------------------------------------------------------------------------------
// The server process

/// A running `omnibus serve`; SIGKILLed and reaped when dropped.
struct Server {
    child: Option<Child>,
    port: u16,
    log: PathBuf,
}

impl Server {
    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn pid(&self) -> Option<libc::pid_t> {
        self.child
            .as_ref()
            .and_then(|child| libc::pid_t::try_from(child.id()).ok())
    }

    /// A server that exited on its own before we stopped it has crashed: report that.
    fn check_alive(&mut self) -> Result<(), String> {
        match self.child.as_mut().map(Child::try_wait) {
            Some(Ok(None)) => Ok(()),
            Some(Ok(Some(status))) => Err(format!(
                "the server exited by itself ({}) before it was stopped",
                describe(status)
            )),
            Some(Err(error)) => Err(format!("cannot check the server process: {error}")),
            None => Err("the server was already stopped".to_owned()),
        }
    }

    /// SIGKILL and reap; returns what went wrong, if anything.
    fn kill_9(&mut self) -> Vec<String> {
        let mut failures = Vec::new();
        if let Err(message) = self.check_alive() {
            failures.push(message);
        }
        if let Some(mut child) = self.child.take() {
            // Child::kill is SIGKILL on Unix.
            if let Err(error) = child.kill() {
                failures.push(format!("cannot SIGKILL the server: {error}"));
            }
            if let Err(error) = child.wait() {
                failures.push(format!("cannot reap the killed server: {error}"));
            }
        }
        failures
    }

    /// SIGTERM, then wait (bounded) for a clean exit with status 0.
    async fn terminate(&mut self) -> Vec<String> {
        let mut failures = Vec::new();
        if let Err(message) = self.check_alive() {
            failures.push(message);
            return failures;
        }
        let Some(pid) = self.pid() else {
            failures.push("the server has no usable process id".to_owned());
            return failures;
        };
        // SAFETY: kill(2) on the process id of a child we have not reaped yet, so the id
        // cannot have been reused by another process.
        if unsafe { libc::kill(pid, libc::SIGTERM) } != 0 {
            failures.push(format!(
                "cannot SIGTERM the server: {}",
                std::io::Error::last_os_error()
            ));
            return failures;
        }
        let deadline = Instant::now() + EXIT_TIMEOUT;
        loop {
            match self.child.as_mut().map(Child::try_wait) {
                Some(Ok(Some(status))) => {
                    self.child = None;
                    if status.code() != Some(0) {
                        failures.push(format!(
                            "the server should exit 0 on SIGTERM, but {}",
                            describe(status)
                        ));
                    }
                    return failures;
                }
                Some(Ok(None)) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Some(Ok(None)) => {
                    failures.push(format!(
                        "the server did not exit within {EXIT_TIMEOUT:?} of SIGTERM"
                    ));
                    return failures;
                }
                Some(Err(error)) => {
                    failures.push(format!("cannot wait for the server: {error}"));
                    return failures;
                }
                None => return failures,
            }
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

fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(signal)) => format!("was killed by signal {signal}"),
        (None, None) => format!("ended with {status}"),
    }
}

/// The context of one test run, for starting servers and for failure reports.
struct Run {
    mode: StopMode,
    seed: u64,
    /// Holds `data/` and the servers' logs; kept on disk when the test fails.
    directory: tempfile::TempDir,
    starts: usize,
}

impl Run {
    /// Starts a server on `data_dir` and waits until `/health` answers 200. A port taken by
    /// someone else between our probe and the server's bind is retried with another port.
    async fn start(
        &mut self,
        data_dir: &Path,
        client: &reqwest::Client,
        cycle: Option<usize>,
    ) -> Server {
        let mut problems = Vec::new();
        let mut logs = Vec::new();
        for attempt in 0..START_ATTEMPTS {
            self.starts += 1;
            let log = self
                .directory
                .path()
                .join(format!("serve-{:03}.log", self.starts));
            logs.push(log.clone());
            match start_once(data_dir, &log, client).await {
                Ok(server) => return server,
                Err(StartError::PortTaken(message)) => {
                    problems.push(format!("attempt {attempt}: {message}"));
                }
                Err(StartError::Failed(message)) => {
                    problems.push(format!("attempt {attempt}: {message}"));
                    break;
                }
            }
        }
        let logs: Vec<&Path> = logs.iter().map(PathBuf::as_path).collect();
        self.fail(cycle, &problems, &logs)
    }

    fn fail(&mut self, cycle: Option<usize>, failures: &[String], logs: &[&Path]) -> ! {
        // Keep the data and logs for a post-mortem.
        self.directory.disable_cleanup(true);
        let mut report = String::new();
        let phase = match cycle {
            Some(cycle) => format!("after stopping the server in cycle {cycle}"),
            None => "outside the stop cycles".to_owned(),
        };
        report.push_str(&format!(
            "crash test ({:?}) failed {phase}; seed {} (rerun with OMNIBUS_CRASH_SEED={}); \
             {} problem(s):\n",
            self.mode,
            self.seed,
            self.seed,
            failures.len()
        ));
        for failure in failures.iter().take(FAILURES_SHOWN_MAX) {
            report.push_str("  - ");
            report.push_str(failure);
            report.push('\n');
        }
        if failures.len() > FAILURES_SHOWN_MAX {
            report.push_str(&format!(
                "  ... and {} more\n",
                failures.len() - FAILURES_SHOWN_MAX
            ));
        }
        report.push_str(&format!(
            "data directory and server logs kept in {}\n",
            self.directory.path().display()
        ));
        for log in logs {
            report.push_str(&format!(
                "--- tail of {} ---\n{}\n",
                log.display(),
                log_tail(log)
            ));
        }
        panic!("{report}");
    }
}

enum StartError {
    PortTaken(String),
    Failed(String),
}

async fn start_once(
    data_dir: &Path,
    log: &Path,
    client: &reqwest::Client,
) -> Result<Server, StartError> {
    let port = free_port();
    let log_file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|error| StartError::Failed(format!("cannot create {}: {error}", log.display())))?;
    let log_err = log_file
        .try_clone()
        .map_err(|error| StartError::Failed(format!("cannot clone the log handle: {error}")))?;
    let child = Command::new(BIN)
        .arg("serve")
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--http-listen")
        .arg(format!("127.0.0.1:{port}"))
        // Tests run side by side: never the default Kafka port.
        .arg("--kafka-listen")
        .arg(format!("127.0.0.1:{}", free_port()))
        .env_remove("OMNIBUS_KAFKA_LISTEN")
        .env_remove("OMNIBUS_CONFIG")
        .env_remove("OMNIBUS_DATA_DIR")
        .env_remove("OMNIBUS_HTTP_LISTEN")
        .stdin(Stdio::null())
        .stdout(log_file)
        .stderr(log_err)
        .spawn()
        .map_err(|error| StartError::Failed(format!("cannot start {BIN}: {error}")))?;
    let mut server = Server {
        child: Some(child),
        port,
        log: log.to_path_buf(),
    };
    let health = format!("{}/health", server.base());
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if let Err(message) = server.check_alive() {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            return Err(if text.contains("cannot listen") {
                StartError::PortTaken(format!("port {port}: {message}"))
            } else {
                StartError::Failed(format!("port {port}: {message}"))
            });
        }
        if let Ok(response) = client.get(&health).send().await {
            if response.status() == reqwest::StatusCode::OK {
                // A 200 from a process that is not ours would fool us; ours must be alive.
                return match server.check_alive() {
                    Ok(()) => Ok(server),
                    Err(message) => Err(StartError::PortTaken(format!("port {port}: {message}"))),
                };
            }
        }
        if Instant::now() >= deadline {
            return Err(StartError::Failed(format!(
                "GET {health} did not answer 200 within {READY_TIMEOUT:?}"
            )));
        }
        tokio::time::sleep(READY_POLL).await;
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    listener.local_addr().expect("read the bound port").port()
}

/// The warnings and errors a server logged (while recovering, since it was just started),
/// for the cycle's summary line; empty when there were none.
fn warnings_in(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text
        .lines()
        .filter(|line| line.contains(" WARN ") || line.contains(" ERROR "))
        .collect();
    match lines.as_slice() {
        [] => String::new(),
        [first, ..] => format!("; {} recovery warning(s), first: {first}", lines.len()),
    }
}

fn log_tail(path: &Path) -> String {
    let Ok(mut file) = File::open(path) else {
        return "(no log)".to_owned();
    };
    let length = file.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = file.seek(SeekFrom::Start(length.saturating_sub(LOG_TAIL_BYTES)));
    let mut bytes = Vec::new();
    let _ = file.read_to_end(&mut bytes);
    String::from_utf8_lossy(&bytes).into_owned()
}

// ---------------------------------------------------------------------------------------------
// HTTP

fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(REQUEST_TIMEOUT)
        .connect_timeout(Duration::from_secs(2))
        .build()
        .expect("build an HTTP client")
}

/// Creates the stream on the first start; afterwards the stream must already exist (it was
/// acknowledged with 201, so it is durable too).
async fn create_stream(
    client: &reqwest::Client,
    server: &Server,
    first: bool,
) -> Result<(), String> {
    let spec = json!({
        "name": STREAM,
        "partitions": PARTITIONS,
        "fsync": "always",
        "segment_bytes": SEGMENT_BYTES,
    });
    let response = client
        .post(format!("{}/v1/streams", server.base()))
        .json(&spec)
        .send()
        .await
        .map_err(|error| format!("POST /v1/streams failed: {error}"))?;
    let status = response.status().as_u16();
    let body = response.text().await.unwrap_or_default();
    match (first, status) {
        (true, 201) => Ok(()),
        (false, 409) if body.contains("stream_exists") => Ok(()),
        (false, 201) => Err(format!(
            "stream {STREAM:?} was lost: creating it again after a restart answered 201"
        )),
        _ => Err(format!(
            "POST /v1/streams answered {status} (first start: {first}): {body}"
        )),
    }
}

/// Reads every partition from offset 0 to its high watermark.
async fn read_stream(
    client: &reqwest::Client,
    server: &Server,
) -> Result<Vec<Vec<String>>, String> {
    let mut logs = Vec::new();
    for partition in 0..PARTITIONS {
        logs.push(read_partition(client, server, partition).await?);
    }
    Ok(logs)
}

async fn read_partition(
    client: &reqwest::Client,
    server: &Server,
    partition: u32,
) -> Result<Vec<String>, String> {
    let mut values: Vec<String> = Vec::new();
    let mut high_watermark = None;
    for _ in 0..FETCH_REQUESTS_MAX {
        let start = values.len() as u64;
        if high_watermark.is_some_and(|high| start >= high) {
            return Ok(values);
        }
        let url = format!(
            "{}/v1/streams/{STREAM}/partitions/{partition}/records\
             ?offset={start}&max_records=10000&max_bytes=8388608",
            server.base()
        );
        let context = format!("partition {partition}, fetch at offset {start}");
        let response = client
            .get(&url)
            .send()
            .await
            .map_err(|error| format!("{context}: request failed: {error}"))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|error| format!("{context}: cannot read the body: {error}"))?;
        if status != reqwest::StatusCode::OK {
            return Err(format!("{context}: status {status}: {text}"));
        }
        let body: Value = serde_json::from_str(&text)
            .map_err(|error| format!("{context}: invalid JSON ({error}): {text:.300}"))?;
        let number = |field: &str| {
            body[field]
                .as_u64()
                .ok_or_else(|| format!("{context}: no {field} in {text:.300}"))
        };
        let (high, next, log_start) = (
            number("high_watermark")?,
            number("next_offset")?,
            number("log_start_offset")?,
        );
        if log_start != 0 {
            return Err(format!(
                "{context}: log_start_offset is {log_start}; nothing should have been deleted"
            ));
        }
        match high_watermark {
            None => high_watermark = Some(high),
            Some(first) if first != high => {
                return Err(format!(
                    "{context}: the high watermark moved from {first} to {high} on an idle broker"
                ))
            }
            Some(_) => {}
        }
        let records = body["records"]
            .as_array()
            .ok_or_else(|| format!("{context}: no records array in {text:.300}"))?;
        for record in records {
            let offset = record["offset"]
                .as_u64()
                .ok_or_else(|| format!("{context}: a record without an offset: {record}"))?;
            if offset < start {
                // A fetch may start inside a stored batch; those were read already.
                continue;
            }
            if offset != values.len() as u64 {
                return Err(format!(
                    "partition {partition}: offsets are not dense: expected offset {}, got \
                     {offset} (fetch at {start})",
                    values.len()
                ));
            }
            let value = record["value"].as_str().ok_or_else(|| {
                format!("partition {partition} offset {offset}: no text value: {record}")
            })?;
            values.push(value.to_owned());
        }
        if next != values.len() as u64 {
            return Err(format!(
                "{context}: next_offset {next} but the records end before offset {}",
                values.len()
            ));
        }
        if values.len() as u64 == start && start < high {
            return Err(format!(
                "{context}: no progress below the high watermark {high}"
            ));
        }
    }
    match high_watermark {
        Some(high) if values.len() as u64 >= high => {
            if values.len() as u64 > high {
                return Err(format!(
                    "partition {partition}: read {} records past the high watermark {high}",
                    values.len()
                ));
            }
            Ok(values)
        }
        _ => Err(format!(
            "partition {partition}: not done after {FETCH_REQUESTS_MAX} fetches"
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// Load

struct Producer {
    client: reqwest::Client,
    base: String,
    producer: usize,
    cycle: usize,
    seed: u64,
    stop: Arc<AtomicBool>,
    deadline: Instant,
}

/// A record as sent: its value and, when the publish named one, its partition.
struct Sent {
    value: String,
    partition: Option<u32>,
}

struct Ack {
    partition: u32,
    offset: u64,
    value: String,
}

#[derive(Default)]
struct ProducerReport {
    producer: usize,
    sent: Vec<Sent>,
    acked: Vec<Ack>,
    requests: usize,
    requests_acked: usize,
    /// Answers a running broker must not give (non-200 statuses, malformed 200s).
    unexpected: Vec<String>,
}

/// Publishes batches one request at a time until told to stop or until a request fails
/// (after a failure the server is gone, or going; stopping there also keeps each producer's
/// records strictly ordered, which check 4 relies on).
async fn produce(task: Producer) -> ProducerReport {
    let mut rng = StdRng::seed_from_u64(task.seed);
    let mut report = ProducerReport {
        producer: task.producer,
        ..ProducerReport::default()
    };
    let url = format!("{}/v1/streams/{STREAM}/records", task.base);
    let mut seq = 0usize;
    while !task.stop.load(Ordering::SeqCst) && Instant::now() < task.deadline {
        let count = rng.random_range(1..=BATCH_RECORDS_MAX);
        let shape = rng.random_range(0..4u32);
        let batch_partition = rng.random_range(0..PARTITIONS);
        let mut records = Vec::with_capacity(count);
        let first = report.sent.len();
        for _ in 0..count {
            let padding_char = char::from(b'a' + (seq % 26) as u8);
            let padding = padding_char
                .to_string()
                .repeat(rng.random_range(0..=PADDING_BYTES_MAX));
            let value = format!("p{}-c{}-n{seq}|{padding}", task.producer, task.cycle);
            seq += 1;
            let (record, partition) = match shape {
                // The whole batch to one partition (the common case), twice as likely.
                0 | 1 => (
                    json!({"value": value, "partition": batch_partition}),
                    Some(batch_partition),
                ),
                // Each record to its own partition.
                2 => {
                    let partition = rng.random_range(0..PARTITIONS);
                    (
                        json!({"value": value, "partition": partition}),
                        Some(partition),
                    )
                }
                // Keyed: the broker picks the partition.
                _ => {
                    let key = format!("key-{}", rng.random_range(0..64u32));
                    (json!({"key": key, "value": value}), None)
                }
            };
            records.push(record);
            report.sent.push(Sent { value, partition });
        }
        report.requests += 1;
        let response = match task
            .client
            .post(&url)
            .json(&json!({ "records": records }))
            .send()
            .await
        {
            Ok(response) => response,
            Err(_) => break, // not acknowledged: the server is gone
        };
        let status = response.status();
        let Ok(text) = response.text().await else {
            break; // the acknowledgement never fully arrived: not acknowledged
        };
        if status != reqwest::StatusCode::OK {
            report.unexpected.push(format!(
                "producer {}: status {status}: {text:.300}",
                task.producer
            ));
            break;
        }
        let positions = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|body| body["records"].as_array().cloned())
            .unwrap_or_default();
        if positions.len() != count {
            report.unexpected.push(format!(
                "producer {}: 200 for {count} records but {} positions: {text:.300}",
                task.producer,
                positions.len()
            ));
            break;
        }
        let mut acks = Vec::with_capacity(count);
        for (index, position) in positions.iter().enumerate() {
            match (position["partition"].as_u64(), position["offset"].as_u64()) {
                (Some(partition), Some(offset)) => acks.push(Ack {
                    partition: u32::try_from(partition).unwrap_or(u32::MAX),
                    offset,
                    value: report.sent[first + index].value.clone(),
                }),
                _ => break,
            }
        }
        if acks.len() != count {
            report.unexpected.push(format!(
                "producer {}: malformed positions in a 200: {text:.300}",
                task.producer
            ));
            break;
        }
        report.acked.extend(acks);
        report.requests_acked += 1;
    }
    report
}

fn producer_seed(seed: u64, cycle: usize, producer: usize) -> u64 {
    seed ^ (cycle as u64)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add((producer as u64 + 1).wrapping_mul(0xBF58_476D_1CE4_E5B9))
}

async fn join_producers(
    producers: &mut JoinSet<ProducerReport>,
) -> Result<Vec<ProducerReport>, String> {
    let all = async {
        let mut reports = Vec::new();
        while let Some(joined) = producers.join_next().await {
            match joined {
                Ok(report) => reports.push(report),
                Err(error) => return Err(format!("a producer task failed: {error}")),
            }
        }
        reports.sort_by_key(|report| report.producer);
        Ok(reports)
    };
    match tokio::time::timeout(PRODUCER_STOP_TIMEOUT, all).await {
        Ok(result) => result,
        Err(_) => {
            producers.abort_all();
            Err(format!(
                "the producers did not stop within {PRODUCER_STOP_TIMEOUT:?} of the server stop"
            ))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Bookkeeping and verification

/// What the test knows across cycles.
struct Ledger {
    /// Every value ever sent → who sent it, in which order, to which partition.
    sent: HashMap<String, SentInfo>,
    /// Every acknowledged position → its value. Only grows.
    acked: BTreeMap<(u32, u64), String>,
    /// Every acknowledged value → its position.
    acked_values: HashMap<String, (u32, u64)>,
    /// Each partition as read after the previous restart.
    observed: Vec<Vec<String>>,
}

#[derive(Clone, Copy)]
struct SentInfo {
    producer: usize,
    /// (cycle, sequence number): the order in which that producer sent its records.
    order: (usize, usize),
    partition: Option<u32>,
    acked: bool,
}

struct LoadSummary {
    records_sent: usize,
    records_acked: usize,
    requests: usize,
    /// Publishes answered 503 while a SIGTERMed broker drained (allowed, not acknowledged).
    turned_away: usize,
    failures: Vec<String>,
}

struct Verified {
    failures: Vec<String>,
    high_watermarks: Vec<usize>,
    unacked_present_this_cycle: usize,
}

impl Ledger {
    fn new() -> Ledger {
        Ledger {
            sent: HashMap::new(),
            acked: BTreeMap::new(),
            acked_values: HashMap::new(),
            observed: vec![Vec::new(); PARTITIONS as usize],
        }
    }

    fn record_load(&mut self, mode: StopMode, reports: &[ProducerReport]) -> LoadSummary {
        let mut summary = LoadSummary {
            records_sent: 0,
            records_acked: 0,
            requests: 0,
            turned_away: 0,
            failures: Vec::new(),
        };
        for report in reports {
            summary.records_sent += report.sent.len();
            summary.records_acked += report.acked.len();
            summary.requests += report.requests;
            for message in &report.unexpected {
                // While draining after SIGTERM a broker may turn requests away with 503.
                if mode == StopMode::Term && message.contains("status 503") {
                    summary.turned_away += 1;
                } else {
                    summary
                        .failures
                        .push(format!("unexpected answer to a publish: {message}"));
                }
            }
            for (seq, sent) in report.sent.iter().enumerate() {
                let info = SentInfo {
                    producer: report.producer,
                    order: parse_order(&sent.value).unwrap_or((usize::MAX, seq)),
                    partition: sent.partition,
                    acked: false,
                };
                if self.sent.insert(sent.value.clone(), info).is_some() {
                    summary.failures.push(format!(
                        "harness bug: value {} sent twice",
                        short(&sent.value)
                    ));
                }
            }
            for ack in &report.acked {
                let position = (ack.partition, ack.offset);
                let context = format!(
                    "acknowledged {} at partition {} offset {}",
                    short(&ack.value),
                    ack.partition,
                    ack.offset
                );
                if let Some(info) = self.sent.get_mut(&ack.value) {
                    info.acked = true;
                    if info.partition.is_some_and(|wanted| wanted != ack.partition) {
                        summary.failures.push(format!(
                            "{context}, but it was published to partition {}",
                            info.partition.unwrap_or_default()
                        ));
                    }
                }
                if ack.partition >= PARTITIONS {
                    summary
                        .failures
                        .push(format!("{context}: no such partition"));
                }
                if let Some(previous) = self.acked.insert(position, ack.value.clone()) {
                    summary.failures.push(format!(
                        "{context}, a position already acknowledged for {}",
                        short(&previous)
                    ));
                }
                if let Some((p, o)) = self.acked_values.insert(ack.value.clone(), position) {
                    summary.failures.push(format!(
                        "{context}, but it was already acknowledged at partition {p} offset {o}"
                    ));
                }
            }
        }
        summary
    }

    /// Checks the stream as read after a restart against everything known, then remembers it.
    fn verify(&mut self, logs: &[Vec<String>], cycle: usize) -> Verified {
        let mut failures = Vec::new();
        let mut unacked_present_this_cycle = 0;

        // (1) every acknowledged record is where its acknowledgement said. Summarized per
        // partition (a lost tail can be thousands of records), with the first few in detail.
        let mut lost_total = 0usize;
        let mut lost: BTreeMap<u32, Vec<(u64, &String)>> = BTreeMap::new();
        let mut replaced: BTreeMap<u32, Vec<(u64, &String, &String)>> = BTreeMap::new();
        for (&(partition, offset), value) in &self.acked {
            let log = &logs[partition as usize];
            match usize::try_from(offset)
                .ok()
                .and_then(|index| log.get(index))
            {
                Some(found) if found == value => {}
                Some(found) => replaced
                    .entry(partition)
                    .or_default()
                    .push((offset, value, found)),
                None => {
                    lost_total += 1;
                    lost.entry(partition).or_default().push((offset, value));
                }
            }
        }
        if lost_total > 0 {
            failures.push(format!(
                "{lost_total} ACKNOWLEDGED RECORD(S) LOST after the restart"
            ));
        }
        for (partition, records) in &lost {
            let (first, last) = (records[0].0, records[records.len() - 1].0);
            failures.push(format!(
                "partition {partition}: {} acknowledged record(s) lost, offsets {first}..={last}; \
                 the partition now has {} records",
                records.len(),
                logs[*partition as usize].len()
            ));
            for (offset, value) in records.iter().take(DETAILS_PER_PARTITION) {
                failures.push(format!(
                    "ACKNOWLEDGED RECORD LOST: {} at partition {partition} offset {offset}{}",
                    short(value),
                    self.whereabouts(logs, value)
                ));
            }
        }
        for (partition, records) in &replaced {
            failures.push(format!(
                "partition {partition}: {} acknowledged record(s) replaced by other values",
                records.len()
            ));
            for (offset, value, found) in records.iter().take(DETAILS_PER_PARTITION) {
                failures.push(format!(
                    "ACKNOWLEDGED RECORD REPLACED: partition {partition} offset {offset} should \
                     hold {} but holds {}{}",
                    short(value),
                    short(found),
                    self.whereabouts(logs, value)
                ));
            }
        }

        // (2) no duplicates, (4) per-producer order, (5) only values we sent, where we sent them.
        let mut seen: HashMap<&str, (u32, usize)> = HashMap::new();
        for (partition, log) in logs.iter().enumerate() {
            let partition = partition as u32;
            let mut last_order: HashMap<usize, ((usize, usize), usize)> = HashMap::new();
            for (offset, value) in log.iter().enumerate() {
                if let Some((p, o)) = seen.insert(value.as_str(), (partition, offset)) {
                    failures.push(format!(
                        "DUPLICATE: {} (acknowledged: {}) at partition {p} offset {o} and again \
                         at partition {partition} offset {offset}",
                        short(value),
                        self.sent.get(value).is_some_and(|info| info.acked)
                    ));
                }
                let Some(info) = self.sent.get(value) else {
                    failures.push(format!(
                        "UNKNOWN VALUE at partition {partition} offset {offset}: {} was never sent",
                        short(value)
                    ));
                    continue;
                };
                if info.order.0 == cycle && !info.acked {
                    unacked_present_this_cycle += 1;
                }
                if info.partition.is_some_and(|wanted| wanted != partition) {
                    failures.push(format!(
                        "WRONG PARTITION: {} was published to partition {} but is at partition \
                         {partition} offset {offset}",
                        short(value),
                        info.partition.unwrap_or_default()
                    ));
                }
                if let Some((previous, previous_offset)) =
                    last_order.insert(info.producer, (info.order, offset))
                {
                    if previous >= info.order {
                        failures.push(format!(
                            "OUT OF ORDER in partition {partition}: producer {} sent \
                             (cycle {}, seq {}) before (cycle {}, seq {}), but they are at \
                             offsets {offset} and {previous_offset}",
                            info.producer, info.order.0, info.order.1, previous.0, previous.1
                        ));
                    }
                }
            }
        }

        // (6) what readers saw after the previous restart is still there, unchanged.
        for (partition, (before, now)) in self.observed.iter().zip(logs).enumerate() {
            if now.len() < before.len() {
                failures.push(format!(
                    "PARTITION SHRANK: partition {partition} had {} records after the previous \
                     restart and has {} now",
                    before.len(),
                    now.len()
                ));
            }
            if let Some(offset) = before.iter().zip(now).position(|(a, b)| a != b) {
                failures.push(format!(
                    "RECORD REWRITTEN: partition {partition} offset {offset} was {} after the \
                     previous restart and is {} now",
                    short(&before[offset]),
                    short(&now[offset])
                ));
            }
        }

        self.observed = logs.to_vec();
        Verified {
            failures,
            high_watermarks: logs.iter().map(Vec::len).collect(),
            unacked_present_this_cycle,
        }
    }

    /// Where else a value turned up, for a lost or replaced record's report.
    fn whereabouts(&self, logs: &[Vec<String>], value: &str) -> String {
        let places: Vec<String> = logs
            .iter()
            .enumerate()
            .flat_map(|(p, log)| {
                log.iter()
                    .enumerate()
                    .filter(move |(_, v)| v.as_str() == value)
                    .map(move |(o, _)| format!("partition {p} offset {o}"))
            })
            .collect();
        if places.is_empty() {
            " (not found anywhere)".to_owned()
        } else {
            format!(" (found at {})", places.join(", "))
        }
    }
}

/// `p{producer}-c{cycle}-n{seq}|padding` → (cycle, seq).
fn parse_order(value: &str) -> Option<(usize, usize)> {
    let id = value.split('|').next()?;
    let mut parts = id.split('-');
    let _producer = parts.next()?;
    let cycle = parts.next()?.strip_prefix('c')?.parse().ok()?;
    let seq = parts.next()?.strip_prefix('n')?.parse().ok()?;
    Some((cycle, seq))
}

/// A value without its padding, for messages.
fn short(value: &str) -> String {
    match value.split_once('|') {
        Some((id, padding)) => format!("{id:?} (+{} padding bytes)", padding.len()),
        None => format!("{:?}", value.chars().take(80).collect::<String>()),
    }
}

fn seed() -> u64 {
    match std::env::var("OMNIBUS_CRASH_SEED") {
        Ok(text) => text
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("OMNIBUS_CRASH_SEED={text:?} is not a u64")),
        Err(_) => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|elapsed| elapsed.as_nanos() as u64)
            .unwrap_or(0x5EED),
    }
}

#[test]
fn value_order_parses() {
    assert_eq!(parse_order("p3-c12-n456|xxxx"), Some((12, 456)));
    assert_eq!(parse_order("p0-c0-n0|"), Some((0, 0)));
    assert_eq!(parse_order("garbage"), None);
    assert_eq!(short("p1-c2-n3|aaa"), "\"p1-c2-n3\" (+3 padding bytes)");
}
