//! One job's command for `omnibus worker`: run `sh -c CMD` with the payload on stdin, capture
//! its output within bounds, and turn the way it ended into what the broker is told — a
//! result (exit 0) or an error (anything else).
//!
//! Output is drained to the end whatever its size, so a chatty command never blocks on a full
//! pipe, but only the first [`RESULT_BYTES_MAX`] bytes of stdout and the last
//! [`ERROR_BYTES_MAX`] bytes of stderr are kept: the beginning of a result, and the end of an
//! error (where the reason usually is).
//!
//! Each command runs in its own process group, so the Ctrl-C meant for the worker does not
//! reach it (running jobs are allowed to finish), and so a kill reaches everything it started.

use std::process::Stdio;
use std::time::Duration;

use base64::Engine as _;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};
use tokio::sync::watch;

use crate::cli::wire_jobs::FetchedJob;

/// Largest result the broker accepts, in bytes of JSON.
pub const RESULT_BYTES_MAX: usize = omnibus_engine::jobs::JOB_DOCUMENT_BYTES_MAX;
/// How much of the end of stderr becomes the error message.
pub const ERROR_BYTES_MAX: usize = 4 * 1024;
/// Room kept at the end of a cut result for the note saying it was cut.
const TRUNCATION_NOTE_BYTES_MAX: usize = 128;
/// After the command exits, how long its output pipes may stay open (held by something it
/// left running in the background) before we stop reading them.
const PIPE_DRAIN_MS_MAX: u64 = 1_000;
const READ_CHUNK_BYTES: usize = 64 * 1024;

/// What runs for each job, and where.
#[derive(Debug, Clone)]
pub struct CommandSpec {
    pub shell_command: String,
    pub queue: String,
}

/// How a command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
    /// It could not be started (or waited for); the text says why.
    NotRun(String),
}

/// Bytes kept from a stream, and how many there were in all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Captured {
    pub bytes: Vec<u8>,
    pub total: u64,
}

impl Captured {
    pub fn truncated(&self) -> bool {
        self.total > self.bytes.len() as u64
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandOutput {
    pub exit: Exit,
    pub stdout: Captured,
    pub stderr: Captured,
}

/// What to tell the broker about an attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Report {
    Complete {
        result: Option<serde_json::Value>,
        /// Set when stdout had to be cut to fit; the result then says so too.
        truncated: bool,
    },
    Fail {
        error: String,
    },
}

impl CommandOutput {
    pub fn report(&self) -> Report {
        match self.exit {
            Exit::Code(0) => {
                let (result, truncated) = result_from_stdout(&self.stdout);
                Report::Complete { result, truncated }
            }
            _ => Report::Fail {
                error: error_from_output(&self.exit, &self.stderr),
            },
        }
    }
}

/// Runs the job's command to the end, or until `kill` turns true (then the whole process group
/// is killed). `kill` is how heartbeats that were refused and a second stop signal get here.
pub async fn run_command(
    spec: &CommandSpec,
    job: &FetchedJob,
    mut kill: watch::Receiver<bool>,
) -> CommandOutput {
    let mut child = match spawn(spec, job) {
        Ok(child) => child,
        Err(error) => return not_run(format!("cannot start sh: {error}")),
    };
    let input = stdin_bytes(job);
    if let Some(mut stdin) = child.stdin.take() {
        // The command may exit without reading its input; that is its business.
        tokio::spawn(async move {
            let _ = stdin.write_all(&input).await;
        });
    }
    let (stop_reading, reading_stopped) = watch::channel(false);
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let readers = tokio::spawn({
        let stop = reading_stopped.clone();
        async move {
            tokio::join!(
                capture(stdout, RESULT_BYTES_MAX, Keep::Head, stop.clone()),
                capture(stderr, ERROR_BYTES_MAX, Keep::Tail, stop),
            )
        }
    });

    let status = loop {
        tokio::select! {
            status = child.wait() => break status,
            changed = kill.changed() => {
                if changed.is_err() {
                    // Nobody can ask for a kill any more; just wait for the command.
                    break child.wait().await;
                }
                if *kill.borrow() {
                    kill_process_group(&mut child).await;
                }
            }
        }
    };
    let exit = match status {
        Ok(status) => exit_of(status),
        Err(error) => Exit::NotRun(format!("cannot wait for the command: {error}")),
    };
    // Background processes it started may hold the pipes open; read what they wrote so far.
    let drained = tokio::time::sleep(Duration::from_millis(PIPE_DRAIN_MS_MAX));
    tokio::pin!(drained);
    let mut readers = readers;
    let captured = tokio::select! {
        captured = &mut readers => captured,
        () = &mut drained => {
            let _ = stop_reading.send(true);
            readers.await
        }
    };
    let (stdout, stderr) = captured.unwrap_or_default();
    CommandOutput {
        exit,
        stdout,
        stderr,
    }
}

fn not_run(reason: String) -> CommandOutput {
    CommandOutput {
        exit: Exit::NotRun(reason),
        stdout: Captured::default(),
        stderr: Captured::default(),
    }
}

fn spawn(spec: &CommandSpec, job: &FetchedJob) -> std::io::Result<Child> {
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(&spec.shell_command)
        .env("OMNIBUS_JOB_ID", &job.id)
        .env("OMNIBUS_JOB_ATTEMPT", job.attempt.to_string())
        .env("OMNIBUS_JOB_NAME", &job.name)
        .env("OMNIBUS_QUEUE", &spec.queue)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // If this task is dropped (the worker is exiting), the command goes with it.
        .kill_on_drop(true);
    #[cfg(unix)]
    command.process_group(0);
    command.spawn()
}

/// Kills the command and everything it started (its process group), falling back to the
/// command alone where process groups are not available.
async fn kill_process_group(child: &mut Child) {
    #[cfg(unix)]
    if let Some(pid) = child.id() {
        // The shell's `kill` reaches a whole group without needing unsafe code here; `pid` is
        // the group's id because the command leads its own group.
        let killed = Command::new("sh")
            .args(["-c", "kill -s KILL -- \"-$1\"", "sh", &pid.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await;
        if matches!(killed, Ok(status) if status.success()) {
            return;
        }
    }
    let _ = child.start_kill();
}

#[cfg(unix)]
fn exit_of(status: std::process::ExitStatus) -> Exit {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => Exit::Code(code),
        (None, Some(signal)) => Exit::Signal(signal),
        (None, None) => Exit::NotRun(format!("the command ended oddly: {status}")),
    }
}

#[cfg(not(unix))]
fn exit_of(status: std::process::ExitStatus) -> Exit {
    match status.code() {
        Some(code) => Exit::Code(code),
        None => Exit::NotRun(format!("the command ended oddly: {status}")),
    }
}

/// The payload as the command reads it: a JSON string as its text, other JSON as JSON text
/// (each with a newline, so line-reading tools see a whole line), bytes exactly as they are.
pub fn stdin_bytes(job: &FetchedJob) -> Vec<u8> {
    match (&job.payload, &job.payload_base64) {
        (Some(serde_json::Value::String(text)), _) => format!("{text}\n").into_bytes(),
        (Some(serde_json::Value::Null), None) | (None, None) => Vec::new(),
        (Some(value), _) => format!("{value}\n").into_bytes(),
        (None, Some(encoded)) => base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .unwrap_or_else(|_| encoded.clone().into_bytes()),
    }
}

/// Which end of a stream [`capture`] keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keep {
    /// The first bytes (a result: its start is what parses).
    Head,
    /// The last bytes (an error: the end of stderr says what went wrong).
    Tail,
}

/// Reads `source` to its end (or until `stop`), keeping `keep` bytes from one end.
async fn capture(
    source: Option<impl AsyncRead + Unpin>,
    keep: usize,
    end: Keep,
    mut stop: watch::Receiver<bool>,
) -> Captured {
    let mut captured = Captured::default();
    let Some(mut source) = source else {
        return captured;
    };
    let mut chunk = vec![0u8; READ_CHUNK_BYTES];
    loop {
        let read = tokio::select! {
            read = source.read(&mut chunk) => read,
            _ = stop.changed() => break,
        };
        let Ok(read) = read else { break };
        if read == 0 {
            break;
        }
        captured.total += read as u64;
        match end {
            Keep::Head => {
                let room = keep.saturating_sub(captured.bytes.len());
                captured.bytes.extend_from_slice(&chunk[..read.min(room)]);
            }
            Keep::Tail => {
                captured.bytes.extend_from_slice(&chunk[..read]);
                let excess = captured.bytes.len().saturating_sub(keep);
                captured.bytes.drain(..excess);
            }
        }
    }
    captured
}

/// The result of a successful attempt: stdout as JSON if it is a JSON document that fits,
/// else as a string (one trailing newline dropped); nothing on stdout is no result. A string
/// too large for the broker is cut, and ends with a note saying so.
pub fn result_from_stdout(stdout: &Captured) -> (Option<serde_json::Value>, bool) {
    if !stdout.truncated() {
        if stdout.bytes.iter().all(u8::is_ascii_whitespace) {
            return (None, false);
        }
        if let Ok(value) = serde_json::from_slice::<serde_json::Value>(&stdout.bytes) {
            if serde_json::to_vec(&value).map_or(0, |json| json.len()) <= RESULT_BYTES_MAX {
                return (Some(value), false);
            }
        }
    }
    let text = String::from_utf8_lossy(&stdout.bytes);
    let text = text
        .strip_suffix('\n')
        .map(|text| text.strip_suffix('\r').unwrap_or(text))
        .unwrap_or(&text);
    // Two bytes for the quotes around the JSON string.
    if !stdout.truncated() && json_string_bytes(text) + 2 <= RESULT_BYTES_MAX {
        return (Some(serde_json::Value::String(text.to_string())), false);
    }
    let budget = RESULT_BYTES_MAX - TRUNCATION_NOTE_BYTES_MAX - 2;
    let mut kept = String::new();
    let mut used = 0;
    for character in text.chars() {
        let size = json_char_bytes(character);
        if used + size > budget {
            break;
        }
        used += size;
        kept.push(character);
    }
    kept.push_str(&format!(
        "\n[omnibus worker: output truncated; kept {} of {} bytes]",
        kept.len(),
        stdout.total
    ));
    (Some(serde_json::Value::String(kept)), true)
}

/// Bytes `text` takes inside a JSON string.
fn json_string_bytes(text: &str) -> usize {
    text.chars().map(json_char_bytes).sum()
}

fn json_char_bytes(character: char) -> usize {
    match character {
        '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 2,
        c if (c as u32) < 0x20 => 6,
        c => c.len_utf8(),
    }
}

/// The error of a failed attempt: the end of stderr, or else how the command ended.
pub fn error_from_output(exit: &Exit, stderr: &Captured) -> String {
    let mut tail = stderr.bytes.as_slice();
    if stderr.truncated() {
        // The cut may have split a character; start at the next whole one.
        while let Some((first, rest)) = tail.split_first() {
            if first & 0b1100_0000 != 0b1000_0000 {
                break;
            }
            tail = rest;
        }
    }
    let text = String::from_utf8_lossy(tail);
    let text = text.trim();
    let ending = match exit {
        Exit::Code(code) => format!("the command exited with status {code}"),
        Exit::Signal(signal) => format!("the command was killed by signal {signal}"),
        Exit::NotRun(reason) => return reason.clone(),
    };
    match (text.is_empty(), stderr.truncated(), exit) {
        (true, _, _) => ending,
        (false, false, Exit::Code(_)) => text.to_string(),
        (false, true, Exit::Code(_)) => format!("…{text}"),
        (false, false, _) => format!("{ending}: {text}"),
        (false, true, _) => format!("{ending}: …{text}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn captured(bytes: &[u8]) -> Captured {
        Captured {
            bytes: bytes.to_vec(),
            total: bytes.len() as u64,
        }
    }

    fn output(exit: Exit, stdout: &[u8], stderr: &[u8]) -> CommandOutput {
        CommandOutput {
            exit,
            stdout: captured(stdout),
            stderr: captured(stderr),
        }
    }

    fn completed(result: serde_json::Value) -> Report {
        Report::Complete {
            result: Some(result),
            truncated: false,
        }
    }

    #[test]
    fn exit_zero_completes_with_json_or_text_from_stdout() {
        let report = |stdout: &[u8]| output(Exit::Code(0), stdout, b"warning").report();
        assert_eq!(report(b"{\"sent\": 3}\n"), completed(json!({"sent": 3})));
        assert_eq!(report(b"42"), completed(json!(42)));
        assert_eq!(report(b"done\n"), completed(json!("done")));
        assert_eq!(report(b"two\nlines\r\n"), completed(json!("two\nlines")));
        assert_eq!(report(b"\xffbinary"), completed(json!("\u{fffd}binary")));
        assert_eq!(
            report(b" \n"),
            Report::Complete {
                result: None,
                truncated: false
            }
        );
    }

    #[test]
    fn a_nonzero_exit_fails_with_stderr() {
        let report = |exit, stderr: &[u8]| output(exit, b"partial output", stderr).report();
        assert_eq!(
            report(Exit::Code(1), b"no such file: a.txt\n"),
            Report::Fail {
                error: "no such file: a.txt".into()
            }
        );
        assert_eq!(
            report(Exit::Code(3), b""),
            Report::Fail {
                error: "the command exited with status 3".into()
            }
        );
        assert_eq!(
            report(Exit::Signal(9), b"half"),
            Report::Fail {
                error: "the command was killed by signal 9: half".into()
            }
        );
        assert_eq!(
            report(Exit::NotRun("cannot start sh: gone".into()), b""),
            Report::Fail {
                error: "cannot start sh: gone".into()
            }
        );
    }

    #[test]
    fn only_the_end_of_a_long_stderr_is_kept_and_starts_on_a_whole_character() {
        // "é" is two bytes; cutting one off its front leaves a continuation byte.
        let stderr = Captured {
            bytes: "\u{a9}é the end".as_bytes()[1..].to_vec(),
            total: 10_000,
        };
        assert_eq!(error_from_output(&Exit::Code(1), &stderr), "…é the end");
    }

    #[test]
    fn output_beyond_the_result_limit_is_cut_with_a_note() {
        let stdout = Captured {
            bytes: vec![b'"'; RESULT_BYTES_MAX],
            total: RESULT_BYTES_MAX as u64 + 10,
        };
        let (result, truncated) = result_from_stdout(&stdout);
        assert!(truncated);
        let text = result.unwrap();
        let json = serde_json::to_vec(&text).unwrap();
        assert!(json.len() <= RESULT_BYTES_MAX, "{} bytes", json.len());
        let text = text.as_str().unwrap();
        assert!(text.starts_with("\"\"\""));
        assert!(text.ends_with(&format!(
            "[omnibus worker: output truncated; kept {} of {} bytes]",
            (RESULT_BYTES_MAX - TRUNCATION_NOTE_BYTES_MAX - 2) / 2,
            RESULT_BYTES_MAX + 10
        )));

        // Text that only grows past the limit once escaped is cut too.
        let (result, truncated) = result_from_stdout(&captured(&b"a\n".repeat(400_000)));
        assert!(truncated);
        assert!(serde_json::to_vec(&result.unwrap()).unwrap().len() <= RESULT_BYTES_MAX);
    }

    #[test]
    fn the_payload_reaches_stdin_as_text_json_or_bytes() {
        let job = |payload: Option<serde_json::Value>, base64: Option<&str>| FetchedJob {
            payload,
            payload_base64: base64.map(str::to_string),
            ..FetchedJob::default()
        };
        assert_eq!(stdin_bytes(&job(Some(json!("hello")), None)), b"hello\n");
        assert_eq!(
            stdin_bytes(&job(Some(json!({"a": [1, 2]})), None)),
            b"{\"a\":[1,2]}\n"
        );
        assert_eq!(stdin_bytes(&job(None, Some("//4="))), b"\xff\xfe");
        assert_eq!(stdin_bytes(&job(None, None)), b"");
    }

    fn spec(shell_command: &str) -> CommandSpec {
        CommandSpec {
            shell_command: shell_command.into(),
            queue: "emails".into(),
        }
    }

    fn job(payload: serde_json::Value) -> FetchedJob {
        FetchedJob {
            id: "01JOB".into(),
            name: "send".into(),
            payload: Some(payload),
            attempt: 2,
            ..FetchedJob::default()
        }
    }

    #[tokio::test]
    async fn a_command_reads_the_payload_and_sees_the_job_in_its_environment() {
        let (_kill, kill_receiver) = watch::channel(false);
        let command = spec(
            "cat; echo \"$OMNIBUS_JOB_ID $OMNIBUS_JOB_ATTEMPT $OMNIBUS_JOB_NAME $OMNIBUS_QUEUE\"; \
             echo oops >&2",
        );
        let output = run_command(&command, &job(json!("payload")), kill_receiver).await;
        assert_eq!(output.exit, Exit::Code(0));
        assert_eq!(output.stdout.bytes, b"payload\n01JOB 2 send emails\n");
        assert_eq!(output.stderr.bytes, b"oops\n");
    }

    #[tokio::test]
    async fn large_output_is_drained_without_blocking_and_bounded() {
        let (_kill, kill_receiver) = watch::channel(false);
        let command = spec("head -c 3000000 /dev/zero; head -c 100000 /dev/zero >&2; exit 4");
        let output = run_command(&command, &job(json!(null)), kill_receiver).await;
        assert_eq!(output.exit, Exit::Code(4));
        assert_eq!(output.stdout.total, 3_000_000);
        assert_eq!(output.stdout.bytes.len(), RESULT_BYTES_MAX);
        assert_eq!(output.stderr.total, 100_000);
        assert_eq!(output.stderr.bytes.len(), ERROR_BYTES_MAX);
    }

    #[tokio::test]
    async fn a_kill_stops_the_command_and_what_it_started() {
        let (kill, kill_receiver) = watch::channel(false);
        let command = spec("sleep 30 & sleep 30; echo never");
        let started = std::time::Instant::now();
        let running =
            tokio::spawn(
                async move { run_command(&command, &job(json!(null)), kill_receiver).await },
            );
        tokio::time::sleep(Duration::from_millis(200)).await;
        kill.send(true).unwrap();
        let output = tokio::time::timeout(Duration::from_secs(10), running)
            .await
            .expect("the command stopped")
            .unwrap();
        assert_eq!(output.exit, Exit::Signal(9));
        assert!(output.stdout.bytes.is_empty());
        // The background sleep was killed too, so its pipes closed without the drain wait.
        assert!(started.elapsed() < Duration::from_millis(200 + PIPE_DRAIN_MS_MAX));
    }

    #[tokio::test]
    async fn a_command_that_cannot_be_found_fails_with_the_shell_error() {
        let (_kill, kill_receiver) = watch::channel(false);
        let output = run_command(
            &spec("no-such-command-omnibus"),
            &job(json!(null)),
            kill_receiver,
        )
        .await;
        assert_eq!(output.exit, Exit::Code(127));
        let Report::Fail { error } = output.report() else {
            panic!("completed")
        };
        assert!(error.contains("no-such-command-omnibus"), "{error}");
    }
}
