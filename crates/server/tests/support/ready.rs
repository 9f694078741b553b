//! The bound addresses of a broker started with port 0, read from its ready line.
//!
//! Test harnesses start `omnibus serve` with `127.0.0.1:0` for every listener and read back
//! where it listens. Picking a "free" port first and passing it in races: another test can
//! take the port between the probe and the broker's bind. This module has no dependencies on
//! the rest of `support`, so the crash test binary includes it by path as well.

#![allow(dead_code)]

use std::io::{Read, Seek, SeekFrom};
use std::net::SocketAddr;
use std::path::Path;

/// `--http-listen`, `--kafka-listen`, `--nats-listen`, `--amqp-listen` and `--redis-listen` for a broker that picks its own
/// ports.
pub const LISTEN_ANY_PORT: &str = "127.0.0.1:0";

const READY_PREFIX: &str = "omnibus ready: ";

/// Where a started broker listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Addresses {
    pub http: SocketAddr,
    pub kafka: SocketAddr,
    /// `None` when the broker runs without its NATS listener.
    pub nats: Option<SocketAddr>,
    /// `None` when the broker runs without its AMQP listener.
    pub amqp: Option<SocketAddr>,
    /// `None` when the broker runs without its Redis listener (the default).
    pub redis: Option<SocketAddr>,
}

/// Parses `omnibus ready: http=<addr> kafka=<addr> data_dir=<dir> nats=<addr|off>` (fields
/// after these may be added later and are ignored).
pub fn parse_ready_line(line: &str) -> Option<Addresses> {
    let fields = line.trim_start().strip_prefix(READY_PREFIX)?;
    let mut http = None;
    let mut kafka = None;
    let mut nats = None;
    let mut amqp = None;
    let mut redis = None;
    for field in fields.split_whitespace() {
        if let Some(value) = field.strip_prefix("http=") {
            http = value.parse().ok();
        } else if let Some(value) = field.strip_prefix("kafka=") {
            kafka = value.parse().ok();
        } else if let Some(value) = field.strip_prefix("nats=") {
            nats = value.parse().ok();
        } else if let Some(value) = field.strip_prefix("amqp=") {
            amqp = value.parse().ok();
        } else if let Some(value) = field.strip_prefix("redis=") {
            redis = value.parse().ok();
        }
    }
    Some(Addresses {
        http: http?,
        kafka: kafka?,
        nats,
        amqp,
        redis,
    })
}

/// The addresses in the first ready line written to `log` at or after byte `from` (the log's
/// length before this start, so that an earlier start's line in the same file is not read).
pub fn ready_addresses_in_log(log: &Path, from: u64) -> Option<Addresses> {
    let mut file = std::fs::File::open(log).ok()?;
    file.seek(SeekFrom::Start(from)).ok()?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).ok()?;
    // Whole lines only: one still being written may lack its last fields.
    let whole = bytes
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |end| end + 1);
    String::from_utf8_lossy(&bytes[..whole])
        .lines()
        .find_map(parse_ready_line)
}

/// The length of `log` now (0 when it does not exist yet).
pub fn log_length(log: &Path) -> u64 {
    std::fs::metadata(log).map(|m| m.len()).unwrap_or(0)
}
