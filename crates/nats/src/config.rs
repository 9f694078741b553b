//! Limits of the NATS front door. The defaults are nats-server's where it has one.

use std::time::Duration;

/// nats-server's default `max_payload` (1 MiB).
pub const MAX_PAYLOAD_DEFAULT: usize = 1024 * 1024;
/// No configuration may allow more: a payload is held whole in memory while it is parsed.
pub const MAX_PAYLOAD_CEILING: usize = 64 * 1024 * 1024;
/// nats-server allows 64K connections; we bound at the Kafka door's default.
pub const CONNECTIONS_DEFAULT: usize = 10_000;
/// nats-server's subscriptions per connection are unbounded by default; we bound them.
pub const SUBSCRIPTIONS_DEFAULT: usize = 10_000;
/// nats-server's `MAX_PENDING_SIZE` (64 MiB): what a connection may have waiting to be
/// written before it is a slow consumer.
pub const PENDING_BYTES_DEFAULT: usize = 64 * 1024 * 1024;
/// Messages a connection may have waiting before it is a slow consumer.
pub const PENDING_MESSAGES_DEFAULT: usize = 100_000;

/// How the NATS listener behaves. Its address is the `TcpListener` given to [`crate::serve`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatsConfig {
    /// `server_name` in INFO.
    pub server_name: String,
    /// Largest payload (headers included) a client may publish; sent in INFO.
    pub max_payload: usize,
    /// Most connections open at once; further ones get `-ERR 'maximum connections exceeded'`.
    pub connections_max: usize,
    /// Most subscriptions one connection may hold (`-ERR 'Maximum Subscriptions Exceeded'`).
    pub subscriptions_max: usize,
    /// Bytes waiting for one connection (in its mailbox, and again in its write buffer)
    /// before it is disconnected as a slow consumer.
    pub pending_bytes_max: usize,
    /// Messages waiting in one connection's mailbox before it is a slow consumer.
    pub pending_messages_max: usize,
    /// How often the server PINGs a client (nats-server: 2 minutes).
    pub ping_interval: Duration,
    /// PINGs left unanswered before the connection is closed as stale (nats-server: 2).
    pub pings_outstanding_max: u32,
}

impl Default for NatsConfig {
    fn default() -> Self {
        NatsConfig {
            server_name: "omnibus".to_string(),
            max_payload: MAX_PAYLOAD_DEFAULT,
            connections_max: CONNECTIONS_DEFAULT,
            subscriptions_max: SUBSCRIPTIONS_DEFAULT,
            pending_bytes_max: PENDING_BYTES_DEFAULT,
            pending_messages_max: PENDING_MESSAGES_DEFAULT,
            ping_interval: Duration::from_secs(120),
            pings_outstanding_max: 2,
        }
    }
}
