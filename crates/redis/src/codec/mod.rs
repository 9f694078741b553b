//! Sans-I/O RESP: requests in (RESP arrays of bulk strings, or inline commands as
//! `redis-cli` and health checks send them), replies out in RESP2 or RESP3.
//!
//! Requests are checked against the limits before anything is buffered for them: a header
//! scan reads each length line and refuses an array or bulk string over its bound (so a
//! `$999999999999` costs nothing) and notes where each argument lies, then the complete frame
//! is cut into its arguments without copying. Replies are built as [`Reply`] values and
//! encoded in the connection's protocol version. Both directions are written by hand for
//! speed (one parse per command, no frame tree per reply) and checked against the
//! `redis-protocol` crate's decoder and encoders in `tests.rs`.

pub mod rdb;
mod reply;
mod request;

pub use reply::{double_text, encode, Protocol, Reply};
pub use request::{decode_request, Limits, ProtocolError};

#[cfg(test)]
mod tests;
