//! Decoding requests: a bounded scan of each array's length lines, which also notes where
//! every argument lies, so the complete frame is cut into its arguments without a second
//! parse or a copy; inline commands by hand. `redis-protocol`'s RESP2 decoder is the oracle
//! the tests compare this with (`codec/tests.rs`): one parse per command instead of two
//! matters on a pipeline of small XADDs.

use bytes::{Buf, Bytes, BytesMut};

/// Bounds on one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest bulk string (Redis: `proto-max-bulk-len`, 512 MiB).
    pub bulk_bytes_max: usize,
    /// Most arguments in one command.
    pub arguments_max: usize,
    /// Largest whole request, headers included.
    pub request_bytes_max: usize,
    /// Longest inline command line (Redis: 64 KiB).
    pub inline_bytes_max: usize,
}

/// A request that can never become valid; Redis answers `-ERR Protocol error: …` and closes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Protocol error: {0}")]
pub struct ProtocolError(pub String);

fn error(text: impl Into<String>) -> ProtocolError {
    ProtocolError(text.into())
}

/// Longest length line (`*<n>` or `$<n>`); Redis refuses longer ones too.
const LENGTH_LINE_MAX: usize = 32;

/// Takes one complete command off the front of `buffer`: `Ok(None)` when more bytes are
/// needed. Empty commands (`*0`, blank inline lines) are skipped, as Redis does.
pub fn decode_request(
    buffer: &mut BytesMut,
    limits: &Limits,
) -> Result<Option<Vec<Bytes>>, ProtocolError> {
    loop {
        let Some(&first) = buffer.first() else {
            return Ok(None);
        };
        let command = if first == b'*' {
            decode_multibulk(buffer, limits)?
        } else {
            decode_inline(buffer, limits)?
        };
        match command {
            Scan::Incomplete => return Ok(None),
            Scan::Empty => continue,
            Scan::Command(arguments) => return Ok(Some(arguments)),
        }
    }
}

enum Scan {
    Incomplete,
    /// An empty command was consumed.
    Empty,
    Command(Vec<Bytes>),
}

/// Reads the length line at `at` (after its type byte): the number and where the next line
/// starts, or `None` when the line is not complete yet.
fn length_line(
    buffer: &[u8],
    at: usize,
    what: &str,
) -> Result<Option<(i64, usize)>, ProtocolError> {
    let window = &buffer[at..buffer.len().min(at + LENGTH_LINE_MAX)];
    let Some(end) = window.iter().position(|&b| b == b'\r') else {
        if window.len() >= LENGTH_LINE_MAX {
            return Err(error(format!("invalid {what} length")));
        }
        return Ok(None);
    };
    if at + end + 1 >= buffer.len() {
        return Ok(None);
    }
    if buffer[at + end + 1] != b'\n' {
        return Err(error(format!("invalid {what} length")));
    }
    let number = std::str::from_utf8(&window[..end])
        .ok()
        .and_then(|text| text.parse::<i64>().ok())
        .ok_or_else(|| error(format!("invalid {what} length")))?;
    Ok(Some((number, at + end + 2)))
}

/// Arguments whose positions are noted before the frame is complete, without allocating for
/// the count a header claims (a `*1000000` header costs nothing until its bytes arrive).
const SPANS_RESERVED_MAX: usize = 64;

fn decode_multibulk(buffer: &mut BytesMut, limits: &Limits) -> Result<Scan, ProtocolError> {
    let Some((count, mut at)) = length_line(buffer, 1, "multibulk")? else {
        return Ok(Scan::Incomplete);
    };
    if count <= 0 {
        buffer.advance(at);
        return Ok(Scan::Empty);
    }
    if count as u64 > limits.arguments_max as u64 {
        return Err(error("invalid multibulk length"));
    }
    // Where each argument's bytes are, so the complete frame is cut into arguments without a
    // second parse (this scan already checked every length and terminator).
    let mut spans = Vec::with_capacity((count as usize).min(SPANS_RESERVED_MAX));
    for _ in 0..count {
        let Some(&kind) = buffer.get(at) else {
            return Ok(Scan::Incomplete);
        };
        if kind != b'$' {
            return Err(error(format!(
                "expected '$', got '{}'",
                char::from(kind).escape_default()
            )));
        }
        let Some((length, next)) = length_line(buffer, at + 1, "bulk")? else {
            return Ok(Scan::Incomplete);
        };
        if length < 0 || length as u64 > limits.bulk_bytes_max as u64 {
            return Err(error("invalid bulk length"));
        }
        at = next + length as usize + 2;
        if at > limits.request_bytes_max {
            return Err(error("request too large"));
        }
        if at > buffer.len() {
            return Ok(Scan::Incomplete);
        }
        if &buffer[at - 2..at] != b"\r\n" {
            return Err(error("bulk string not terminated by CRLF"));
        }
        spans.push((next, length as usize));
    }
    // The frame is complete and within bounds: its arguments share its bytes, no copy.
    let frame = buffer.split_to(at).freeze();
    Ok(Scan::Command(
        spans
            .into_iter()
            .map(|(start, length)| frame.slice(start..start + length))
            .collect(),
    ))
}

fn decode_inline(buffer: &mut BytesMut, limits: &Limits) -> Result<Scan, ProtocolError> {
    let Some(end) = buffer.iter().position(|&b| b == b'\n') else {
        if buffer.len() > limits.inline_bytes_max {
            return Err(error("too big inline request"));
        }
        return Ok(Scan::Incomplete);
    };
    if end > limits.inline_bytes_max {
        return Err(error("too big inline request"));
    }
    let line = buffer.split_to(end + 1);
    let line = line.strip_suffix(b"\n").unwrap_or(&line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let arguments = split_arguments(line)?;
    if arguments.is_empty() {
        return Ok(Scan::Empty);
    }
    if arguments.len() > limits.arguments_max {
        return Err(error("invalid multibulk length"));
    }
    Ok(Scan::Command(arguments))
}

/// Splits an inline line as Redis's `sdssplitargs` does: spaces separate, `"…"` with
/// `\n`/`\r`/`\t`/`\xHH`/`\"` escapes, `'…'` with only `\'`.
fn split_arguments(line: &[u8]) -> Result<Vec<Bytes>, ProtocolError> {
    let unbalanced = || error("unbalanced quotes in request");
    let mut arguments = Vec::new();
    let mut i = 0;
    loop {
        while i < line.len() && line[i].is_ascii_whitespace() {
            i += 1;
        }
        if i == line.len() {
            return Ok(arguments);
        }
        let mut current = Vec::new();
        match line[i] {
            b'"' => {
                i += 1;
                loop {
                    match line.get(i) {
                        None => return Err(unbalanced()),
                        Some(b'"') => {
                            i += 1;
                            break;
                        }
                        Some(b'\\') => {
                            let escaped = *line.get(i + 1).ok_or_else(unbalanced)?;
                            let hex = line
                                .get(i + 2..i + 4)
                                .and_then(|h| std::str::from_utf8(h).ok())
                                .and_then(|h| u8::from_str_radix(h, 16).ok());
                            match (escaped, hex) {
                                (b'x', Some(byte)) => {
                                    current.push(byte);
                                    i += 4;
                                    continue;
                                }
                                (b'n', _) => current.push(b'\n'),
                                (b'r', _) => current.push(b'\r'),
                                (b't', _) => current.push(b'\t'),
                                (b'b', _) => current.push(8),
                                (b'a', _) => current.push(7),
                                (other, _) => current.push(other),
                            }
                            i += 2;
                        }
                        Some(&byte) => {
                            current.push(byte);
                            i += 1;
                        }
                    }
                }
                if line.get(i).is_some_and(|b| !b.is_ascii_whitespace()) {
                    return Err(unbalanced());
                }
            }
            b'\'' => {
                i += 1;
                loop {
                    match line.get(i) {
                        None => return Err(unbalanced()),
                        Some(b'\'') => {
                            i += 1;
                            break;
                        }
                        Some(b'\\') if line.get(i + 1) == Some(&b'\'') => {
                            current.push(b'\'');
                            i += 2;
                        }
                        Some(&byte) => {
                            current.push(byte);
                            i += 1;
                        }
                    }
                }
                if line.get(i).is_some_and(|b| !b.is_ascii_whitespace()) {
                    return Err(unbalanced());
                }
            }
            _ => {
                while i < line.len() && !line[i].is_ascii_whitespace() {
                    current.push(line[i]);
                    i += 1;
                }
            }
        }
        arguments.push(Bytes::from(current));
    }
}
