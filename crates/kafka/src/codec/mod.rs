//! The Kafka wire codec, sans I/O: nothing here reads or writes a socket.
//!
//! - [`frame`]: splits a byte stream into size-prefixed frames, refusing an oversized length
//!   before allocating for it;
//! - [`request`]: decodes a frame into the request header and body, using the header version
//!   each API key and version calls for and the `kafka-protocol` crate's message types;
//! - `shape`: walks a request body against its schema before `kafka-protocol` decodes it,
//!   because that crate sizes vectors from the array lengths it reads (a few bytes claiming
//!   billions of elements would abort the process);
//! - [`response`]: encodes a response header and body into a caller's buffer;
//! - [`versions`]: the API keys and versions this broker answers.

pub mod frame;
pub mod request;
pub mod response;
#[cfg(test)]
pub(crate) mod samples;
mod shape;
pub mod versions;

pub use frame::FrameDecoder;
pub use request::{decode_request, DecodedRequest, Request};
pub use response::Response;

/// Why a frame could not be turned into a request (or a response into bytes). Any of these
/// closes the connection: the byte stream can no longer be trusted to be in step.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("frame of {bytes} bytes exceeds the limit of {max} (frame_bytes_max)")]
    FrameTooLarge { bytes: usize, max: usize },
    #[error("negative frame length {0}")]
    NegativeLength(i32),
    #[error("frame of {0} bytes is too short for a request header")]
    Truncated(usize),
    #[error("unknown API key {api_key} (correlation id {correlation_id})")]
    UnknownApiKey { api_key: i16, correlation_id: i32 },
    #[error("malformed {api_key:?} v{version} request: {reason}")]
    Malformed {
        api_key: kafka_protocol::messages::ApiKey,
        version: i16,
        reason: String,
    },
    #[error("cannot encode a {api_key:?} v{version} response: {reason}")]
    Encode {
        api_key: kafka_protocol::messages::ApiKey,
        version: i16,
        reason: String,
    },
}
