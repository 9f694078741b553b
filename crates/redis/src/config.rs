//! Limits of the Redis front door. Redis's own figure is named where it has one.

use crate::codec::Limits;

/// Largest bulk string (Redis's `proto-max-bulk-len` is 512 MiB; we hold a request whole
/// in memory while it arrives, so we bound lower).
pub const BULK_BYTES_MAX_DEFAULT: usize = 64 * 1024 * 1024;
/// Largest whole request (Redis's `client-query-buffer-limit` is 1 GiB).
pub const REQUEST_BYTES_MAX_DEFAULT: usize = 128 * 1024 * 1024;
/// Most arguments in one command (Redis allows 2^31; MSET of a million keys still fits).
pub const ARGUMENTS_MAX_DEFAULT: usize = 1024 * 1024;
/// Longest inline command (Redis's `PROTO_INLINE_MAX_SIZE`).
pub const INLINE_BYTES_MAX_DEFAULT: usize = 64 * 1024;
/// Most connections open at once (Redis's `maxclients`).
pub const CONNECTIONS_DEFAULT: usize = 10_000;
/// Reply bytes a connection buffers before it stops reading and writes them out.
pub const PENDING_REPLY_BYTES_MAX_DEFAULT: usize = 4 * 1024 * 1024;
/// Bytes of entries one XRANGE or XREVRANGE reply may hold; a longer range is refused with an
/// error saying to page with COUNT (Redis has no such bound: it builds any reply whole).
pub const RANGE_REPLY_BYTES_MAX_DEFAULT: usize = 128 * 1024 * 1024;
/// Channels and patterns one connection may subscribe to.
pub const SUBSCRIPTIONS_MAX_DEFAULT: usize = 10_000;
/// Commands one MULTI may queue.
pub const QUEUED_COMMANDS_MAX_DEFAULT: usize = 100_000;

/// Commands running at least this many microseconds go to the slow log (Redis's
/// `slowlog-log-slower-than`; negative: none).
pub const SLOWLOG_SLOWER_THAN_US_DEFAULT: i64 = 10_000;
/// Entries the slow log keeps (Redis's `slowlog-max-len`).
pub const SLOWLOG_MAX_LEN_DEFAULT: usize = 128;

/// Cores per thread of the door's own in the default.
pub const CORES_PER_IO_THREAD: usize = 4;

/// The default number of the door's threads: one per [`CORES_PER_IO_THREAD`] cores, at least
/// one (the HTTP door's rule). Measured on 2 cores only (docs/benchmarks.md, 2026-12-05): one
/// thread gave pipelined XADDs ~10 % less CPU each and ~10–20 % more XADDs/s than the shared
/// runtime, the read side level within the noise; two threads were the worst for XADDs (a
/// session on the other thread than its stream's writer crosses threads on every commit).
pub fn default_io_threads() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |cores| cores.get());
    (cores / CORES_PER_IO_THREAD).max(1)
}

/// How the Redis listener behaves. Its address is the `TcpListener` given to [`crate::serve`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisConfig {
    pub connections_max: usize,
    pub bulk_bytes_max: usize,
    pub request_bytes_max: usize,
    pub arguments_max: usize,
    pub inline_bytes_max: usize,
    pub pending_reply_bytes_max: usize,
    /// Bytes of entries one XRANGE or XREVRANGE reply may hold (`streams/read.rs`, `Budget`).
    pub range_reply_bytes_max: usize,
    pub queued_commands_max: usize,
    pub subscriptions_max: usize,
    /// FLUSHALL / FLUSHDB delete every key; refused unless turned on.
    pub flushall_enabled: bool,
    /// Commands running at least this long (µs) go to the slow log; negative: none.
    pub slowlog_slower_than_us: i64,
    /// Entries the slow log keeps.
    pub slowlog_max_len: usize,
    /// Keyspace notification classes at start (Redis's `notify-keyspace-events`, e.g. `Ex`;
    /// CONFIG SET changes them while the listener runs).
    pub notify_keyspace_events: String,
    /// Threads of its own the door serves connections on, each a runtime with one worker
    /// (`server.rs`); 0 serves them on the caller's runtime.
    pub io_threads: usize,
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            connections_max: CONNECTIONS_DEFAULT,
            bulk_bytes_max: BULK_BYTES_MAX_DEFAULT,
            request_bytes_max: REQUEST_BYTES_MAX_DEFAULT,
            arguments_max: ARGUMENTS_MAX_DEFAULT,
            inline_bytes_max: INLINE_BYTES_MAX_DEFAULT,
            pending_reply_bytes_max: PENDING_REPLY_BYTES_MAX_DEFAULT,
            range_reply_bytes_max: RANGE_REPLY_BYTES_MAX_DEFAULT,
            queued_commands_max: QUEUED_COMMANDS_MAX_DEFAULT,
            subscriptions_max: SUBSCRIPTIONS_MAX_DEFAULT,
            flushall_enabled: false,
            slowlog_slower_than_us: SLOWLOG_SLOWER_THAN_US_DEFAULT,
            slowlog_max_len: SLOWLOG_MAX_LEN_DEFAULT,
            notify_keyspace_events: String::new(),
            io_threads: default_io_threads(),
        }
    }
}

impl RedisConfig {
    pub fn limits(&self) -> Limits {
        Limits {
            bulk_bytes_max: self.bulk_bytes_max,
            arguments_max: self.arguments_max,
            request_bytes_max: self.request_bytes_max,
            inline_bytes_max: self.inline_bytes_max,
        }
    }
}
