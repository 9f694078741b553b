//! Sans-I/O RESP: requests in (RESP arrays of bulk strings, or inline commands as
//! `redis-cli` and health checks send them), replies out in RESP2 or RESP3.
//!
//! Requests are checked against the limits before anything is buffered for them: a header
//! scan reads each length line and refuses an array or bulk string over its bound (so a
//! `$999999999999` costs nothing), then the `redis-protocol` crate decodes the complete
//! frame without copying the arguments. Replies are built as [`Reply`] values and encoded by
//! `redis-protocol` in the connection's protocol version.

mod reply;
mod request;

pub use reply::{encode, Protocol, Reply};
pub use request::{decode_request, Limits, ProtocolError};

#[cfg(test)]
mod tests;
