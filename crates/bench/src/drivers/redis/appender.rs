//! A lean pipelining XADD client for the publish workload (`--client lean`, the default).
//!
//! Why: the client shares the bench machine's cores with the broker. The redis crate's
//! multiplexed connection sends each command through a channel to its connection task and
//! each reply back through another, a few µs of CPU per XADD — about what Redis itself spends
//! appending the entry — so on 2 cores a run measured the client as much as the broker, and
//! the broker that uses both cores lost the most. As with the AMQP publisher
//! (`rabbitmq/publisher.rs`), the harness's own client does the same work at a fraction of
//! the CPU: every `XADD key * p <payload>` of a run is the same bytes, built once; up to the
//! window is written at once, and the replies (one bulk string, the new entry's id, per
//! command, in order) are read as they come. An error reply ends the run with its text.
//!
//! RESP2 as any client speaks it before `HELLO`; only the reply types an XADD can get are
//! read (bulk string, simple string, error). Reads and writes take turns on one task: at most
//! the window's commands are written before their replies are read, and the replies of a
//! window (an id each) fit the socket's buffers.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::error::{BenchError, Result};
use crate::load::{self, Budget};

/// Bytes read from the socket at a time.
const READ_BYTES: usize = 64 * 1024;
/// A reply line longer than this is not an XADD reply.
const LINE_BYTES_MAX: usize = 64 * 1024;
/// How long after the budget's deadline outstanding replies are waited for.
const REPLY_GRACE: Duration = Duration::from_secs(10);

/// One connection appending to one stream.
pub struct Appender {
    stream: TcpStream,
    /// Bytes read and not yet taken as replies.
    input: Vec<u8>,
}

/// What one reply was.
#[derive(Debug, PartialEq)]
enum Reply {
    /// A bulk or simple string: an XADD's new id.
    Id,
    Error(String),
}

impl Appender {
    pub async fn connect(address: &str) -> Result<Appender> {
        let stream = TcpStream::connect(address).await?;
        // Commands are written whole; Nagle would only hold the next ones back.
        stream.set_nodelay(true)?;
        Ok(Appender {
            stream,
            input: Vec::with_capacity(READ_BYTES),
        })
    }

    /// `XADD key * field payload` until the budget is spent, `window` commands awaiting
    /// their reply; returns each command's time from its write to its reply.
    pub async fn append_window(
        &mut self,
        budget: &Budget,
        window: usize,
        key: &str,
        field: &str,
        payload: &[u8],
    ) -> Result<Histogram<u64>> {
        let command = xadd_command(key, field, payload);
        let mut latencies = load::histogram();
        let mut sent: VecDeque<Instant> = VecDeque::with_capacity(window);
        let mut out = Vec::with_capacity(window.min(1_024) * command.len());
        let mut exhausted = false;
        let patience = budget.deadline() + REPLY_GRACE;
        loop {
            while !exhausted && sent.len() < window {
                if budget.claim(1) == 0 {
                    exhausted = true;
                    break;
                }
                out.extend_from_slice(&command);
                sent.push_back(Instant::now());
            }
            if !out.is_empty() {
                self.stream.write_all(&out).await?;
                out.clear();
            }
            if sent.is_empty() {
                return Ok(latencies);
            }
            let first = match tokio::time::timeout_at(patience.into(), self.next_reply()).await {
                Ok(reply) => reply?,
                Err(_) => {
                    return Err(BenchError::Incomplete(format!(
                        "{} XADDs were not answered in time",
                        sent.len()
                    )))
                }
            };
            // Every reply already read is taken before the window is refilled, so the next
            // write carries a command per reply instead of one command each.
            let now = Instant::now();
            let mut reply = Some(first);
            let mut answered = 0u64;
            while let Some(this) = reply {
                if let Reply::Error(text) = this {
                    return Err(BenchError::Broker {
                        system: "redis",
                        status: "error reply".into(),
                        body: text,
                    });
                }
                // Replies come in the order the commands were sent.
                let Some(at) = sent.pop_front() else {
                    return Err(broken("a reply to no command"));
                };
                load::record(&mut latencies, now - at);
                answered += 1;
                reply = take_reply(&mut self.input)?;
            }
            budget.finish(answered);
        }
    }

    /// Reads until one whole reply is there and takes it.
    async fn next_reply(&mut self) -> Result<Reply> {
        loop {
            if let Some(reply) = take_reply(&mut self.input)? {
                return Ok(reply);
            }
            if crate::drivers::read_into(&mut self.stream, &mut self.input, READ_BYTES).await? == 0
            {
                return Err(broken("the server closed the connection"));
            }
        }
    }
}

/// `XADD key * field payload` in RESP.
fn xadd_command(key: &str, field: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + key.len() + 64);
    out.extend_from_slice(b"*5\r\n");
    for part in [
        b"XADD".as_slice(),
        key.as_bytes(),
        b"*",
        field.as_bytes(),
        payload,
    ] {
        out.extend_from_slice(format!("${}\r\n", part.len()).as_bytes());
        out.extend_from_slice(part);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Takes one reply off the front of `input`, or `None` until it is whole.
fn take_reply(input: &mut Vec<u8>) -> Result<Option<Reply>> {
    let Some(end) = input.windows(2).position(|pair| pair == b"\r\n") else {
        if input.len() > LINE_BYTES_MAX {
            return Err(broken("a reply line is too long"));
        }
        return Ok(None);
    };
    let line = &input[1..end];
    let (reply, taken) = match input.first() {
        Some(b'+') => (Reply::Id, end + 2),
        Some(b'-') => (
            Reply::Error(String::from_utf8_lossy(line).into_owned()),
            end + 2,
        ),
        Some(b'$') => {
            let length: usize = std::str::from_utf8(line)
                .ok()
                .and_then(|text| text.parse().ok())
                .ok_or_else(|| broken("a bulk string's length is not a number"))?;
            if length > LINE_BYTES_MAX {
                return Err(broken("a bulk string is too long for an entry id"));
            }
            let total = end + 2 + length + 2;
            if input.len() < total {
                return Ok(None);
            }
            (Reply::Id, total)
        }
        _ => return Err(broken("a reply that an XADD does not get")),
    };
    input.drain(..taken);
    Ok(Some(reply))
}

fn broken(why: &str) -> BenchError {
    BenchError::Broker {
        system: "redis",
        status: "protocol".into(),
        body: why.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_is_resp_xadd_with_an_automatic_id() {
        assert_eq!(
            xadd_command("s", "p", b"xyz"),
            b"*5\r\n$4\r\nXADD\r\n$1\r\ns\r\n$1\r\n*\r\n$1\r\np\r\n$3\r\nxyz\r\n".to_vec()
        );
    }

    #[test]
    fn replies_are_taken_whole_and_in_order() {
        let mut input = b"$15\r\n1764000000000-0\r\n-ERR no\r\n$15\r\n17640".to_vec();
        assert_eq!(take_reply(&mut input).unwrap(), Some(Reply::Id));
        assert_eq!(
            take_reply(&mut input).unwrap(),
            Some(Reply::Error("ERR no".into()))
        );
        assert_eq!(take_reply(&mut input).unwrap(), None, "half a reply waits");
        input.extend_from_slice(b"00000000-1\r\n");
        assert_eq!(take_reply(&mut input).unwrap(), Some(Reply::Id));
        assert!(input.is_empty());
        let mut wrong = b":1\r\n".to_vec();
        assert!(take_reply(&mut wrong).is_err());
    }
}
