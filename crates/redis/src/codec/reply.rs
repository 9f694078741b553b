//! Replies, encoded in RESP2 or RESP3 (checked against `redis-protocol`'s encoders).

use bytes::{Bytes, BytesMut};

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
    /// A set in RESP3 (`~`, SMEMBERS); an array in RESP2.
    Set(Vec<Reply>),
    /// A double in RESP3 (`,`, ZSCORE); its text as a bulk string in RESP2, written as
    /// [`double_text`] writes it.
    Double(f64),
    /// A double given as its text, for the replies redis-server writes with more digits than
    /// the shortest (GEOPOS's `13.36138933897018433`): `,text` in RESP3, a bulk string in
    /// RESP2.
    DoubleText(String),
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

/// Appends `reply` to `out` in `protocol`. Written by hand rather than through
/// `redis-protocol`'s frames: building a frame tree beside the reply tree cost an allocation
/// per element of every XREADGROUP reply. `codec/tests.rs` checks every reply shape against
/// `redis-protocol`'s encoders (proptest), which stay the reference.
pub fn encode(reply: &Reply, protocol: Protocol, out: &mut BytesMut) {
    match reply {
        Reply::Many(replies) => {
            for reply in replies {
                encode(reply, protocol, out);
            }
        }
        Reply::Status(text) => line(b'+', text, out),
        Reply::Error(text) => line(b'-', text, out),
        Reply::Integer(value) => header(b':', *value, out),
        Reply::Bulk(bytes) => {
            header(b'$', bytes.len() as i64, out);
            out.extend_from_slice(bytes);
            out.extend_from_slice(b"\r\n");
        }
        Reply::Null => match protocol {
            Protocol::Resp2 => out.extend_from_slice(b"$-1\r\n"),
            Protocol::Resp3 => out.extend_from_slice(b"_\r\n"),
        },
        Reply::NullArray => match protocol {
            Protocol::Resp2 => out.extend_from_slice(b"*-1\r\n"),
            Protocol::Resp3 => out.extend_from_slice(b"_\r\n"),
        },
        Reply::Array(items) => items_with(b'*', items, protocol, out),
        Reply::Set(items) => match protocol {
            Protocol::Resp2 => items_with(b'*', items, protocol, out),
            Protocol::Resp3 => items_with(b'~', items, protocol, out),
        },
        Reply::Double(value) => {
            let text = double_text(*value);
            match protocol {
                Protocol::Resp2 => {
                    header(b'$', text.len() as i64, out);
                    out.extend_from_slice(text.as_bytes());
                    out.extend_from_slice(b"\r\n");
                }
                Protocol::Resp3 => line(b',', &text, out),
            }
        }
        Reply::DoubleText(text) => match protocol {
            Protocol::Resp2 => {
                header(b'$', text.len() as i64, out);
                out.extend_from_slice(text.as_bytes());
                out.extend_from_slice(b"\r\n");
            }
            Protocol::Resp3 => line(b',', text, out),
        },
        Reply::Push(items) => match protocol {
            Protocol::Resp2 => items_with(b'*', items, protocol, out),
            Protocol::Resp3 => items_with(b'>', items, protocol, out),
        },
        Reply::Map(pairs) => {
            match protocol {
                Protocol::Resp2 => header(b'*', 2 * pairs.len() as i64, out),
                Protocol::Resp3 => header(b'%', pairs.len() as i64, out),
            }
            for (key, value) in pairs {
                nested(key, protocol, out);
                nested(value, protocol, out);
            }
        }
    }
}

/// A double as Redis writes a score: `inf` and `-inf`; otherwise the shortest digits that
/// read back as the same double, in `%g`'s layout (plain up to 17 digits before the point,
/// `1e+20` and `1e-05` beyond), so 1.5 is `1.5` and 3.0 is `3`. Redis 7.2 writes the same;
/// 7.0 wrote 17 significant digits (1.1 as `1.1000000000000001`), which reads back as the
/// same double.
pub fn double_text(value: f64) -> String {
    if value.is_infinite() {
        return if value > 0.0 { "inf" } else { "-inf" }.into();
    }
    if value.is_nan() {
        return "nan".into();
    }
    // `{:e}` gives the shortest digits that round-trip: `1.5e0`, `-2e20`, `1.25e-7`.
    let scientific = format!("{value:e}");
    let (mantissa, exponent) = scientific
        .split_once('e')
        .expect("`{:e}` always writes an exponent");
    let exponent: i32 = exponent.parse().expect("an integer exponent");
    if (-4..17).contains(&exponent) {
        return format!("{value}");
    }
    let sign = if exponent < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", exponent.unsigned_abs())
}

/// An aggregate's header and items.
fn items_with(kind: u8, items: &[Reply], protocol: Protocol, out: &mut BytesMut) {
    header(kind, items.len() as i64, out);
    for item in items {
        nested(item, protocol, out);
    }
}

/// One element of an aggregate: a `Many` there is one array — or its only reply, as Redis
/// writes an `UNSUBSCRIBE x` inside MULTI into EXEC's answer (Redis writes each reply of a
/// `SUBSCRIBE a b` as an element of its own, which breaks the array's count, redis/redis#12207;
/// one array keeps it well formed). A missing array stays `*-1` in
/// RESP2 (EXEC's BLPOP that found nothing, XPENDING's empty consumers, XREADGROUP's deleted
/// entry), as redis-server sends it; `redis-protocol`'s frames cannot say that.
fn nested(item: &Reply, protocol: Protocol, out: &mut BytesMut) {
    match item {
        Reply::Many(inner) if inner.len() == 1 => nested(&inner[0], protocol, out),
        Reply::Many(inner) => items_with(b'*', inner, protocol, out),
        other => encode(other, protocol, out),
    }
}

/// `<kind><number>\r\n`.
fn header(kind: u8, number: i64, out: &mut BytesMut) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut rest = number.unsigned_abs();
    loop {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    out.reserve(24);
    out.extend_from_slice(&[kind]);
    if number < 0 {
        out.extend_from_slice(b"-");
    }
    out.extend_from_slice(&digits[at..]);
    out.extend_from_slice(b"\r\n");
}

/// A status or error line: a client reads it up to `\r\n`, so it must not contain one (an
/// error echoing a key would otherwise write its own frame into the stream).
fn line(kind: u8, text: &str, out: &mut BytesMut) {
    out.reserve(text.len() + 3);
    out.extend_from_slice(&[kind]);
    if text.bytes().any(|byte| byte == b'\r' || byte == b'\n') {
        out.extend_from_slice(text.replace(['\r', '\n'], " ").as_bytes());
    } else {
        out.extend_from_slice(text.as_bytes());
    }
    out.extend_from_slice(b"\r\n");
}
