//! The NATS core protocol as bytes, sans I/O: [`parser`] takes client operations off a
//! buffer, [`encode`] writes server operations into one, [`headers`] reads and writes header
//! blocks. Nothing here awaits, reads a socket or calls the engine.

pub mod encode;
pub mod headers;
pub mod parser;

pub use parser::{bytes_wanted, parse, ClientOp, ParseError, PublishOp, CONTROL_LINE_BYTES_MAX};
