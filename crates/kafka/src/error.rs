//! The Kafka front door's one error type: what can end a connection or the listener. Errors a
//! client should see travel as Kafka error codes inside responses instead.

use crate::codec::CodecError;

#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    #[error(transparent)]
    Codec(#[from] CodecError),
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}
