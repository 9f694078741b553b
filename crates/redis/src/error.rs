//! The Redis front door's one error type: what ends a connection. Errors a command answers
//! with (`-ERR …`) are replies, not this.

use crate::codec::ProtocolError;

#[derive(Debug, thiserror::Error)]
pub enum RedisError {
    /// Answered with `-ERR Protocol error: …`, then the connection closes.
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    #[error("the engine failed: {0}")]
    Engine(#[from] omnibus_engine::EngineError),
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}
