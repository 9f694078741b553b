//! NATS header blocks (`HPUB`, `HMSG`): a first line `NATS/1.0` with an optional status
//! (`NATS/1.0 503`), then `Name: value` lines, then an empty line — HTTP's shape. Inside the
//! engine a message's headers are plain (name, value) pairs in order, so they are stored in a
//! stream as record headers and read back by Kafka and HTTP clients; the block is written anew
//! for each NATS subscriber.

use bytes::{BufMut, Bytes, BytesMut};
use omnibus_types::Header;

const VERSION_LINE: &[u8] = b"NATS/1.0";

/// The block of the no-responders status nats-server sends for a request nobody received.
pub const NO_RESPONDERS: &[u8] = b"NATS/1.0 503\r\n\r\n";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid header block: {0}")]
pub struct HeaderError(&'static str);

/// The headers of a block. A status on the first line is not kept: clients publish none, and
/// the engine's headers have no place for one.
pub fn parse(block: &Bytes) -> Result<Vec<Header>, HeaderError> {
    let mut lines = block.split(|&byte| byte == b'\n');
    let first = lines.next().map(strip_cr).unwrap_or_default();
    if !first.starts_with(VERSION_LINE) {
        return Err(HeaderError("it does not start with NATS/1.0"));
    }
    let mut headers = Vec::new();
    for line in lines.map(strip_cr) {
        if line.is_empty() {
            continue;
        }
        let colon = line
            .iter()
            .position(|&byte| byte == b':')
            .ok_or(HeaderError("a header line has no colon"))?;
        let name = std::str::from_utf8(line[..colon].trim_ascii())
            .map_err(|_| HeaderError("a header name is not UTF-8"))?;
        if name.is_empty() {
            return Err(HeaderError("a header name is empty"));
        }
        let value = line[colon + 1..].trim_ascii();
        headers.push(Header {
            name: name.to_string(),
            value: Bytes::copy_from_slice(value),
        });
    }
    Ok(headers)
}

fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Writes the block of `headers` into `out`.
pub fn encode(headers: &[Header], out: &mut BytesMut) {
    encode_with_status(None, headers, out);
}

/// Writes a block whose first line carries a status (`NATS/1.0 100 Idle Heartbeat`), when
/// one is given, then `headers`.
pub fn encode_with_status(status: Option<(u16, &str)>, headers: &[Header], out: &mut BytesMut) {
    out.put_slice(VERSION_LINE);
    if let Some((code, text)) = status {
        out.put_slice(format!(" {code} ").as_bytes());
        // The status text is one line.
        out.extend(text.bytes().map(|byte| {
            if byte == b'\r' || byte == b'\n' {
                b' '
            } else {
                byte
            }
        }));
    }
    out.put_slice(b"\r\n");
    for header in headers {
        out.put_slice(header.name.as_bytes());
        out.put_slice(b": ");
        // A value read back from a stream may hold bytes a header line cannot: line breaks
        // become spaces so the block stays well-formed.
        for &byte in header.value.iter() {
            out.put_u8(if byte == b'\r' || byte == b'\n' {
                b' '
            } else {
                byte
            });
        }
        out.put_slice(b"\r\n");
    }
    out.put_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_round_trips_and_repeated_names_keep_their_order() {
        let block = Bytes::from_static(b"NATS/1.0\r\nA: 1\r\nB:two words \r\nA: 3\r\n\r\n");
        let headers = parse(&block).unwrap();
        let pairs: Vec<(&str, &[u8])> = headers
            .iter()
            .map(|h| (h.name.as_str(), &h.value[..]))
            .collect();
        assert_eq!(
            pairs,
            vec![("A", &b"1"[..]), ("B", b"two words"), ("A", b"3")]
        );
        let mut out = BytesMut::new();
        encode(&headers, &mut out);
        assert_eq!(
            &out[..],
            b"NATS/1.0\r\nA: 1\r\nB: two words\r\nA: 3\r\n\r\n"
        );
        out.clear();
        encode_with_status(Some((100, "Idle Heartbeat")), &headers[..1], &mut out);
        assert_eq!(&out[..], b"NATS/1.0 100 Idle Heartbeat\r\nA: 1\r\n\r\n");
        assert!(parse(&Bytes::from_static(b"NATS/1.0 503\r\n\r\n"))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn malformed_blocks_are_refused() {
        assert!(parse(&Bytes::from_static(b"HTTP/1.1\r\n\r\n")).is_err());
        assert!(parse(&Bytes::from_static(b"NATS/1.0\r\nno colon\r\n\r\n")).is_err());
        assert!(parse(&Bytes::from_static(b"NATS/1.0\r\n: empty\r\n\r\n")).is_err());
    }
}
