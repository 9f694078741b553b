//! The protocol-neutral record: what every front door's message becomes inside the engine.

use bytes::Bytes;

/// One header of a record. Values are bytes because Kafka headers are bytes; names are text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub name: String,
    pub value: Bytes,
}

/// A record as stored in a stream partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Position in its partition; assigned by the log on append.
    pub offset: u64,
    /// Milliseconds since the Unix epoch (the producer's create time, or append time).
    pub timestamp_ms: i64,
    /// The subject the record was published on (`order.created.v1`).
    pub subject: String,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    /// User headers, in the order they were given. The subject is not repeated here.
    pub headers: Vec<Header>,
}
