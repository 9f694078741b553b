//! The NATS front door's one error type: what ends a connection. Errors a client should see
//! are sent as `-ERR '…'` first; [`NatsError::client_text`] is that text.

use crate::codec::ParseError;

#[derive(Debug, thiserror::Error)]
pub enum NatsError {
    #[error(transparent)]
    Parse(#[from] ParseError),
    #[error("invalid CONNECT: {0}")]
    InvalidConnect(String),
    #[error("slow consumer: more was pending for the client than its bound")]
    SlowConsumer,
    #[error("stale connection: PINGs went unanswered")]
    StaleConnection,
    #[error("the client closed the connection")]
    ClientClosed,
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

impl NatsError {
    /// The `-ERR` text sent before closing, if any: nats-server disconnects a slow consumer
    /// without one.
    pub fn client_text(&self) -> Option<&'static str> {
        match self {
            NatsError::Parse(error) => Some(error.client_text()),
            NatsError::InvalidConnect(_) => Some("Invalid Connect Options"),
            NatsError::StaleConnection => Some("Stale Connection"),
            NatsError::SlowConsumer | NatsError::ClientClosed | NatsError::Io(_) => None,
        }
    }
}
