//! The client side of the NATS core protocol, parsed from a byte buffer: no I/O, no async.
//!
//! A client operation is a control line (`OP args…\r\n`) and, for `PUB` and `HPUB`, a payload
//! of the size the line declares followed by `\r\n`. The parser takes one whole operation off
//! the front of the buffer, or leaves the buffer untouched and says it needs more bytes. What
//! nats-server's parser tolerates and real clients rely on, we tolerate too: operation names in
//! any case, arguments split by any run of spaces or tabs (nats-py writes `PUB subj  7` and
//! `UNSUB 2 `), and a control line ended by `\n` alone (telnet users).
//!
//! Bounds are checked before anything is allocated: a control line longer than
//! [`CONTROL_LINE_BYTES_MAX`] and a declared payload over the connection's `max_payload` are
//! errors at once, so a client can never make the buffer grow past one control line plus one
//! allowed payload.

use bytes::{Buf, Bytes, BytesMut};

/// nats-server's `MAX_CONTROL_LINE_SIZE`.
pub const CONTROL_LINE_BYTES_MAX: usize = 4096;

/// One operation a client sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientOp {
    /// `CONNECT {json}`: the JSON, not yet decoded.
    Connect(Bytes),
    Ping,
    Pong,
    /// `PUB` or `HPUB`.
    Publish(PublishOp),
    /// `SUB <subject> [queue group] <sid>`.
    Subscribe {
        subject: String,
        queue_group: Option<String>,
        sid: String,
    },
    /// `UNSUB <sid> [max]`.
    Unsubscribe {
        sid: String,
        max: Option<u64>,
    },
    /// `+OK`, `-ERR …` and `INFO …` from a client mean nothing to a server; they are read and
    /// ignored, as nats-server does.
    Ignored,
}

/// A message a client published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishOp {
    pub subject: String,
    pub reply: Option<String>,
    /// The raw header block of an `HPUB` (`NATS/1.0\r\n…\r\n\r\n`); `None` for `PUB`.
    pub headers: Option<Bytes>,
    pub payload: Bytes,
}

/// Why the bytes are not a valid operation. Every one closes the connection after the
/// `-ERR` [`ParseError::client_text`] names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("control line longer than {CONTROL_LINE_BYTES_MAX} bytes")]
    ControlLineTooLong,
    #[error("unknown protocol operation")]
    UnknownOperation,
    #[error("malformed {operation} arguments")]
    Arguments { operation: &'static str },
    #[error("payload of {declared} bytes over max_payload {max}")]
    PayloadTooLarge { declared: u64, max: usize },
    #[error("payload not followed by CRLF")]
    PayloadNotTerminated,
}

impl ParseError {
    /// The text of the `-ERR '…'` nats-server sends for this error.
    pub fn client_text(&self) -> &'static str {
        match self {
            ParseError::ControlLineTooLong => "Maximum Control Line Exceeded",
            // nats-server reads what follows a payload that is not ended by CRLF as the next
            // operation, and names that.
            ParseError::UnknownOperation | ParseError::PayloadNotTerminated => {
                "Unknown Protocol Operation"
            }
            ParseError::Arguments { .. } => "Parser Error",
            ParseError::PayloadTooLarge { .. } => "Maximum Payload Violation",
        }
    }
}

/// Takes one operation off the front of `buffer`. `Ok(None)`: more bytes are needed and the
/// buffer is as it was; the caller may reserve [`bytes_wanted`] more before reading again.
pub fn parse(buffer: &mut BytesMut, max_payload: usize) -> Result<Option<ClientOp>, ParseError> {
    let Some(line_end) = find_line_end(buffer)? else {
        return Ok(None);
    };
    let line = trim_line(&buffer[..line_end]);
    let (name, rest) = split_first_word(line);
    let operation = operation_of(name)?;
    let consumed_line = line_end + 1;
    let op = match operation {
        Operation::Ping => ClientOp::Ping,
        Operation::Pong => ClientOp::Pong,
        Operation::Ignored => ClientOp::Ignored,
        Operation::Connect => {
            let json = Bytes::copy_from_slice(rest);
            buffer.advance(consumed_line);
            return Ok(Some(ClientOp::Connect(json)));
        }
        Operation::Subscribe => parse_subscribe(rest)?,
        Operation::Unsubscribe => parse_unsubscribe(rest)?,
        Operation::Publish | Operation::HeaderPublish => {
            let header = parse_publish_line(rest, operation == Operation::HeaderPublish)?;
            if header.total > max_payload as u64 {
                return Err(ParseError::PayloadTooLarge {
                    declared: header.total,
                    max: max_payload,
                });
            }
            let total = header.total as usize;
            if buffer.len() < consumed_line + total + 2 {
                return Ok(None);
            }
            if &buffer[consumed_line + total..consumed_line + total + 2] != b"\r\n" {
                return Err(ParseError::PayloadNotTerminated);
            }
            buffer.advance(consumed_line);
            let mut body = buffer.split_to(total).freeze();
            buffer.advance(2);
            let headers = header.header_bytes.map(|size| body.split_to(size));
            return Ok(Some(ClientOp::Publish(PublishOp {
                subject: header.subject,
                reply: header.reply,
                headers,
                payload: body,
            })));
        }
    };
    buffer.advance(consumed_line);
    Ok(Some(op))
}

/// How many bytes the operation at the front of `buffer` needs in all, when its control line
/// is complete and declares a payload within bounds; the session reserves that much once
/// instead of growing the buffer read by read.
pub fn bytes_wanted(buffer: &[u8], max_payload: usize) -> Option<usize> {
    let line_end = find_line_end(buffer).ok()??;
    let line = trim_line(&buffer[..line_end]);
    let (name, rest) = split_first_word(line);
    let operation = operation_of(name).ok()?;
    if !matches!(operation, Operation::Publish | Operation::HeaderPublish) {
        return None;
    }
    let header = parse_publish_line(rest, operation == Operation::HeaderPublish).ok()?;
    (header.total <= max_payload as u64).then(|| line_end + 1 + header.total as usize + 2)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operation {
    Connect,
    Ping,
    Pong,
    Publish,
    HeaderPublish,
    Subscribe,
    Unsubscribe,
    Ignored,
}

fn operation_of(name: &[u8]) -> Result<Operation, ParseError> {
    const NAMES: [(&[u8], Operation); 10] = [
        (b"PUB", Operation::Publish),
        (b"HPUB", Operation::HeaderPublish),
        (b"SUB", Operation::Subscribe),
        (b"UNSUB", Operation::Unsubscribe),
        (b"PING", Operation::Ping),
        (b"PONG", Operation::Pong),
        (b"CONNECT", Operation::Connect),
        (b"INFO", Operation::Ignored),
        (b"+OK", Operation::Ignored),
        (b"-ERR", Operation::Ignored),
    ];
    NAMES
        .iter()
        .find(|(known, _)| known.eq_ignore_ascii_case(name))
        .map(|(_, operation)| *operation)
        .ok_or(ParseError::UnknownOperation)
}

/// The index of the `\n` ending the control line at the front of `buffer`.
fn find_line_end(buffer: &[u8]) -> Result<Option<usize>, ParseError> {
    let window = &buffer[..buffer.len().min(CONTROL_LINE_BYTES_MAX)];
    match memchr::memchr(b'\n', window) {
        Some(end) => Ok(Some(end)),
        None if buffer.len() >= CONTROL_LINE_BYTES_MAX => Err(ParseError::ControlLineTooLong),
        None => Ok(None),
    }
}

/// The line without its `\r` and surrounding blanks.
fn trim_line(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    line.trim_ascii()
}

fn split_first_word(line: &[u8]) -> (&[u8], &[u8]) {
    match line.iter().position(|&byte| is_blank(byte)) {
        Some(space) => (&line[..space], line[space..].trim_ascii_start()),
        None => (line, &[]),
    }
}

fn is_blank(byte: u8) -> bool {
    byte == b' ' || byte == b'\t'
}

/// The arguments of a control line, split on runs of blanks; at most `N` of them.
fn arguments<'a, const N: usize>(
    rest: &'a [u8],
    operation: &'static str,
) -> Result<([&'a str; N], usize), ParseError> {
    let invalid = ParseError::Arguments { operation };
    let mut found = [""; N];
    let mut count = 0;
    for word in rest.split(|&byte| is_blank(byte)).filter(|w| !w.is_empty()) {
        if count == N {
            return Err(invalid);
        }
        found[count] = std::str::from_utf8(word).map_err(|_| invalid.clone())?;
        count += 1;
    }
    Ok((found, count))
}

fn parse_size(text: &str, operation: &'static str) -> Result<u64, ParseError> {
    let invalid = ParseError::Arguments { operation };
    if text.is_empty() || text.len() > 19 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid);
    }
    text.parse().map_err(|_| invalid)
}

struct PublishLine {
    subject: String,
    reply: Option<String>,
    header_bytes: Option<usize>,
    total: u64,
}

fn parse_publish_line(rest: &[u8], with_headers: bool) -> Result<PublishLine, ParseError> {
    let operation = if with_headers { "HPUB" } else { "PUB" };
    let invalid = ParseError::Arguments { operation };
    let (words, count) = arguments::<4>(rest, operation)?;
    let sizes = if with_headers { 2 } else { 1 };
    let (subject, reply) = match count.checked_sub(sizes) {
        Some(1) => (words[0], None),
        Some(2) => (words[0], Some(words[1].to_string())),
        _ => return Err(invalid),
    };
    let total = parse_size(words[count - 1], operation)?;
    let header_bytes = if with_headers {
        let header_bytes = parse_size(words[count - 2], operation)?;
        if header_bytes > total {
            return Err(invalid);
        }
        Some(header_bytes as usize)
    } else {
        None
    };
    Ok(PublishLine {
        subject: subject.to_string(),
        reply,
        header_bytes,
        total,
    })
}

fn parse_subscribe(rest: &[u8]) -> Result<ClientOp, ParseError> {
    let (words, count) = arguments::<3>(rest, "SUB")?;
    let (subject, queue_group, sid) = match count {
        2 => (words[0], None, words[1]),
        3 => (words[0], Some(words[1].to_string()), words[2]),
        _ => return Err(ParseError::Arguments { operation: "SUB" }),
    };
    Ok(ClientOp::Subscribe {
        subject: subject.to_string(),
        queue_group,
        sid: sid.to_string(),
    })
}

fn parse_unsubscribe(rest: &[u8]) -> Result<ClientOp, ParseError> {
    let (words, count) = arguments::<2>(rest, "UNSUB")?;
    let max = match count {
        1 => None,
        2 => Some(parse_size(words[1], "UNSUB")?),
        _ => return Err(ParseError::Arguments { operation: "UNSUB" }),
    };
    Ok(ClientOp::Unsubscribe {
        sid: words[0].to_string(),
        max,
    })
}

#[cfg(test)]
#[path = "parser_tests.rs"]
mod tests;
