//! Limits and addressing of the Kafka front door.

/// Kafka's own default for `socket.request.max.bytes`.
pub const FRAME_BYTES_DEFAULT: usize = 100 * 1024 * 1024;
/// No request may claim more than this, whatever the configuration says: a frame is held whole
/// in memory while it is decoded.
pub const FRAME_BYTES_CEILING: usize = 1024 * 1024 * 1024;
/// Kafka's `max.connections` is unbounded by default; we bound it.
pub const CONNECTIONS_DEFAULT: usize = 10_000;

/// How the Kafka listener behaves. The listener's own address is the `TcpListener` given to
/// [`crate::serve`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaConfig {
    /// Host clients are told to connect to (Metadata, FindCoordinator). `None`: the bound IP,
    /// or `localhost` when bound to every interface.
    pub advertised_host: Option<String>,
    /// Port clients are told to connect to. `None`: the bound port.
    pub advertised_port: Option<u16>,
    /// Whether a Metadata request for an unknown topic creates it (when the client allows it).
    pub auto_create_topics: bool,
    /// Largest request frame; a larger length prefix closes the connection before any buffer
    /// for it is allocated.
    pub frame_bytes_max: usize,
    /// Most connections open at once; further ones are closed right after accept.
    pub connections_max: usize,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            advertised_host: None,
            advertised_port: None,
            auto_create_topics: true,
            frame_bytes_max: FRAME_BYTES_DEFAULT,
            connections_max: CONNECTIONS_DEFAULT,
        }
    }
}
