//! Replies, encoded by `redis-protocol` in RESP2 or RESP3.

use bytes::{Bytes, BytesMut};
use redis_protocol::{resp2, resp3};

/// The protocol a connection speaks (`HELLO 2|3`; RESP2 until then).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    #[default]
    Resp2,
    Resp3,
}

/// One reply, independent of the protocol version.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// `+OK` and the like.
    Status(String),
    /// The whole error line, its code first: `ERR …`, `WRONGTYPE …`, `EXECABORT …`.
    Error(String),
    Integer(i64),
    Bulk(Bytes),
    /// A missing value: `$-1` in RESP2, `_` in RESP3.
    Null,
    /// A missing array (EXEC of a discarded transaction, …): `*-1` in RESP2, `_` in RESP3.
    NullArray,
    Array(Vec<Reply>),
    /// A map in RESP3; a flat array of pairs in RESP2.
    Map(Vec<(Reply, Reply)>),
    /// An out-of-band message (pub/sub): `>` in RESP3, an array in RESP2.
    Push(Vec<Reply>),
    /// Several replies to one command, one after the other (SUBSCRIBE a b confirms each).
    Many(Vec<Reply>),
}

impl Reply {
    pub fn ok() -> Reply {
        Reply::Status("OK".into())
    }

    pub fn error(text: impl Into<String>) -> Reply {
        Reply::Error(text.into())
    }

    pub fn bulk(bytes: impl Into<Bytes>) -> Reply {
        Reply::Bulk(bytes.into())
    }

    pub fn text(text: &str) -> Reply {
        Reply::Bulk(Bytes::copy_from_slice(text.as_bytes()))
    }

    pub fn is_error(&self) -> bool {
        matches!(self, Reply::Error(_))
    }
}

/// A line a client reads up to `\r\n` must not contain one (an error echoing a key would
/// otherwise write its own frame into the stream).
fn one_line(text: &str) -> String {
    text.replace(['\r', '\n'], " ")
}

/// Appends `reply` to `out` in `protocol`.
pub fn encode(reply: &Reply, protocol: Protocol, out: &mut BytesMut) {
    // The encoders fail only on frames they cannot represent, which these conversions never
    // build; a failure would mean a bug, and the connection gets an error line instead.
    if let Reply::Many(replies) = reply {
        for reply in replies {
            encode(reply, protocol, out);
        }
        return;
    }
    if let (Reply::NullArray, Protocol::Resp2) = (reply, protocol) {
        out.extend_from_slice(b"*-1\r\n");
        return;
    }
    let encoded = match protocol {
        Protocol::Resp2 => resp2::encode::extend_encode(out, &to_resp2(reply), false).map(|_| ()),
        Protocol::Resp3 => {
            resp3::encode::complete::extend_encode(out, &to_resp3(reply), false).map(|_| ())
        }
    };
    if let Err(error) = encoded {
        out.extend_from_slice(format!("-ERR {}\r\n", one_line(error.details())).as_bytes());
    }
}

fn to_resp2(reply: &Reply) -> resp2::types::BytesFrame {
    use resp2::types::BytesFrame as Frame;
    match reply {
        Reply::Status(text) => Frame::SimpleString(Bytes::from(one_line(text))),
        Reply::Error(text) => Frame::Error(one_line(text).into()),
        Reply::Integer(value) => Frame::Integer(*value),
        Reply::Bulk(bytes) => Frame::BulkString(bytes.clone()),
        Reply::Null => Frame::Null,
        // Only nested ones get here (`encode` writes a top-level `*-1` itself).
        Reply::NullArray => Frame::Null,
        Reply::Array(items) | Reply::Push(items) | Reply::Many(items) => {
            Frame::Array(items.iter().map(to_resp2).collect())
        }
        Reply::Map(pairs) => Frame::Array(
            pairs
                .iter()
                .flat_map(|(key, value)| [to_resp2(key), to_resp2(value)])
                .collect(),
        ),
    }
}

fn to_resp3(reply: &Reply) -> resp3::types::BytesFrame {
    use resp3::types::BytesFrame as Frame;
    match reply {
        Reply::Status(text) => Frame::SimpleString {
            data: Bytes::from(one_line(text)),
            attributes: None,
        },
        Reply::Error(text) => Frame::SimpleError {
            data: one_line(text).into(),
            attributes: None,
        },
        Reply::Integer(value) => Frame::Number {
            data: *value,
            attributes: None,
        },
        Reply::Bulk(bytes) => Frame::BlobString {
            data: bytes.clone(),
            attributes: None,
        },
        Reply::Null | Reply::NullArray => Frame::Null,
        Reply::Array(items) | Reply::Many(items) => Frame::Array {
            data: items.iter().map(to_resp3).collect(),
            attributes: None,
        },
        Reply::Push(items) => Frame::Push {
            data: items.iter().map(to_resp3).collect(),
            attributes: None,
        },
        Reply::Map(pairs) => Frame::Map {
            data: pairs
                .iter()
                .map(|(key, value)| (to_resp3(key), to_resp3(value)))
                .collect(),
            attributes: None,
        },
    }
}
