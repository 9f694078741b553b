//! Limits of the AMQP front door. The defaults are RabbitMQ's where it has one.

use std::time::Duration;

/// RabbitMQ's default `frame_max` (128 KiB), offered in connection.tune.
pub const FRAME_MAX_DEFAULT: u32 = 128 * 1024;
/// Channels per connection (RabbitMQ's default `channel_max`).
pub const CHANNEL_MAX_DEFAULT: u16 = 2047;
/// Most connections open at once.
pub const CONNECTIONS_DEFAULT: usize = 10_000;
/// Largest message body (RabbitMQ's default `max_message_size` is 128 MiB; we hold a
/// message whole in memory while it arrives, so we bound lower).
pub const MESSAGE_BYTES_MAX_DEFAULT: u64 = 16 * 1024 * 1024;
/// Unacknowledged deliveries one channel may hold when the client set no prefetch (a
/// consumer with prefetch 0 would otherwise take the whole queue into the broker's memory).
pub const UNACKED_PER_CHANNEL_MAX_DEFAULT: u32 = 10_000;

/// Consumers one channel may hold (each is a task).
pub const CONSUMERS_PER_CHANNEL_DEFAULT: usize = 4096;

/// How the AMQP listener behaves. Its address is the `TcpListener` given to [`crate::serve`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmqpConfig {
    /// Offered in connection.tune; a client may ask for less, never more.
    pub frame_max: u32,
    pub channel_max: u16,
    /// Offered in connection.tune (RabbitMQ: 60 s); 0 from the client turns heartbeats off.
    pub heartbeat: Duration,
    pub connections_max: usize,
    pub message_bytes_max: u64,
    pub unacked_per_channel_max: u32,
    /// Consumers one channel may hold; one more is connection.close 530.
    pub consumers_per_channel_max: usize,
    /// How long a client may take for the handshake (protocol header to connection.open).
    pub handshake_timeout: Duration,
}

impl Default for AmqpConfig {
    fn default() -> Self {
        AmqpConfig {
            frame_max: FRAME_MAX_DEFAULT,
            channel_max: CHANNEL_MAX_DEFAULT,
            heartbeat: Duration::from_secs(60),
            connections_max: CONNECTIONS_DEFAULT,
            message_bytes_max: MESSAGE_BYTES_MAX_DEFAULT,
            unacked_per_channel_max: UNACKED_PER_CHANNEL_MAX_DEFAULT,
            consumers_per_channel_max: CONSUMERS_PER_CHANNEL_DEFAULT,
            handshake_timeout: Duration::from_secs(10),
        }
    }
}
