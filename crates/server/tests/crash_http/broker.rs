//! Starting, stopping and reading the broker under test.

use serde_json::{json, Value};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::net::SocketAddr;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::ready::{ready_addresses_in_log, LISTEN_ANY_PORT};
use super::*;

/// A running `omnibus serve`; SIGKILLed and reaped when dropped.
pub struct Server {
    pub child: Option<Child>,
    /// Bound by this start (port 0): every restart listens somewhere new, and the producers
    /// of the next cycle are given the new address, so no start can race for a port.
    pub http_address: SocketAddr,
    pub log: PathBuf,
}

impl Server {
    pub fn base(&self) -> String {
        format!("http://{}", self.http_address)
    }

    pub fn pid(&self) -> Option<libc::pid_t> {
        self.child
            .as_ref()
            .and_then(|child| libc::pid_t::try_from(child.id()).ok())
    }

    /// A server that exited on its own before we stopped it has crashed: report that.
    pub fn check_alive(&mut self) -> Result<(), String> {
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
    pub fn kill_9(&mut self) -> Vec<String> {
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
    pub async fn terminate(&mut self) -> Vec<String> {
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

pub fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(signal)) => format!("was killed by signal {signal}"),
        (None, None) => format!("ended with {status}"),
    }
}

/// The context of one test run, for starting servers and for failure reports.
pub struct Run {
    pub mode: StopMode,
    pub seed: u64,
    /// Holds `data/` and the servers' logs; kept on disk when the test fails.
    pub directory: tempfile::TempDir,
    pub starts: usize,
}

impl Run {
    /// Starts a server on `data_dir` and waits until `/health` answers 200.
    pub async fn start(
        &mut self,
        data_dir: &Path,
        client: &reqwest::Client,
        cycle: Option<usize>,
    ) -> Server {
        self.starts += 1;
        let log = self
            .directory
            .path()
            .join(format!("serve-{:03}.log", self.starts));
        match start_once(data_dir, &log, client).await {
            Ok(server) => server,
            Err(message) => self.fail(cycle, &[message], &[&log]),
        }
    }

    pub fn fail(&mut self, cycle: Option<usize>, failures: &[String], logs: &[&Path]) -> ! {
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

pub async fn start_once(
    data_dir: &Path,
    log: &Path,
    client: &reqwest::Client,
) -> Result<Server, String> {
    let log_file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|error| format!("cannot create {}: {error}", log.display()))?;
    let log_err = log_file
        .try_clone()
        .map_err(|error| format!("cannot clone the log handle: {error}"))?;
    let child = Command::new(BIN)
        .arg("serve")
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--http-listen", LISTEN_ANY_PORT])
        .args(["--kafka-listen", LISTEN_ANY_PORT])
        .args(["--nats-listen", LISTEN_ANY_PORT])
        .args(["--amqp-listen", LISTEN_ANY_PORT])
        .env_remove("OMNIBUS_KAFKA_LISTEN")
        .env_remove("OMNIBUS_NATS_LISTEN")
        .env_remove("OMNIBUS_AMQP_LISTEN")
        .env_remove("OMNIBUS_CONFIG")
        .env_remove("OMNIBUS_DATA_DIR")
        .env_remove("OMNIBUS_HTTP_LISTEN")
        .stdin(Stdio::null())
        .stdout(log_file)
        .stderr(log_err)
        .spawn()
        .map_err(|error| format!("cannot start {BIN}: {error}"))?;
    // Until the ready line names the bound address, there is nothing to ask.
    let mut server = Server {
        child: Some(child),
        http_address: SocketAddr::from(([127, 0, 0, 1], 0)),
        log: log.to_path_buf(),
    };
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        server.check_alive()?;
        if server.http_address.port() == 0 {
            if let Some(addresses) = ready_addresses_in_log(log, 0) {
                server.http_address = addresses.http;
            }
        }
        if server.http_address.port() != 0 {
            let health = format!("{}/health", server.base());
            if let Ok(response) = client.get(&health).send().await {
                if response.status() == reqwest::StatusCode::OK {
                    return Ok(server);
                }
            }
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "the server was not ready (ready line, then GET /health answering 200) within \
                 {READY_TIMEOUT:?}"
            ));
        }
        tokio::time::sleep(READY_POLL).await;
    }
}

/// The warnings and errors a server logged (while recovering, since it was just started),
/// for the cycle's summary line; empty when there were none.
pub fn warnings_in(log: &Path) -> String {
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

pub fn log_tail(path: &Path) -> String {
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

pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(REQUEST_TIMEOUT)
        .connect_timeout(Duration::from_secs(2))
        .build()
        .expect("build an HTTP client")
}

/// Creates the stream on the first start; afterwards the stream must already exist (it was
/// acknowledged with 201, so it is durable too).
pub async fn create_stream(
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
pub async fn read_stream(
    client: &reqwest::Client,
    server: &Server,
) -> Result<Vec<Vec<String>>, String> {
    let mut logs = Vec::new();
    for partition in 0..PARTITIONS {
        logs.push(read_partition(client, server, partition).await?);
    }
    Ok(logs)
}

pub async fn read_partition(
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
