//! What the server sends, written into the caller's buffer: no I/O, no allocation beyond the
//! buffer's own growth.

use bytes::{BufMut, BytesMut};

/// `MSG <subject> <sid> [reply] <size>\r\n<payload>\r\n`, or with a header block
/// `HMSG <subject> <sid> [reply] <header size> <total size>\r\n<headers><payload>\r\n`.
pub fn message(
    out: &mut BytesMut,
    subject: &str,
    sid: &str,
    reply: Option<&str>,
    headers: Option<&[u8]>,
    payload: &[u8],
) {
    let header_bytes = headers.map_or(0, <[u8]>::len);
    out.reserve(
        subject.len() + sid.len() + reply.map_or(0, str::len) + 48 + header_bytes + payload.len(),
    );
    out.put_slice(if headers.is_some() { b"HMSG " } else { b"MSG " });
    out.put_slice(subject.as_bytes());
    out.put_u8(b' ');
    out.put_slice(sid.as_bytes());
    out.put_u8(b' ');
    if let Some(reply) = reply {
        out.put_slice(reply.as_bytes());
        out.put_u8(b' ');
    }
    if let Some(headers) = headers {
        put_decimal(out, headers.len() as u64);
        out.put_u8(b' ');
    }
    put_decimal(out, (header_bytes + payload.len()) as u64);
    out.put_slice(b"\r\n");
    if let Some(headers) = headers {
        out.put_slice(headers);
    }
    out.put_slice(payload);
    out.put_slice(b"\r\n");
}

/// `INFO {json}\r\n`.
pub fn info(out: &mut BytesMut, json: &[u8]) {
    out.put_slice(b"INFO ");
    out.put_slice(json);
    out.put_slice(b"\r\n");
}

pub fn ping(out: &mut BytesMut) {
    out.put_slice(b"PING\r\n");
}

pub fn pong(out: &mut BytesMut) {
    out.put_slice(b"PONG\r\n");
}

pub fn ok(out: &mut BytesMut) {
    out.put_slice(b"+OK\r\n");
}

/// `-ERR '<text>'\r\n`; quotes in `text` become spaces so the line stays parseable.
pub fn error(out: &mut BytesMut, text: &str) {
    out.put_slice(b"-ERR '");
    for byte in text.bytes() {
        out.put_u8(match byte {
            b'\'' | b'\r' | b'\n' => b' ',
            other => other,
        });
    }
    out.put_slice(b"'\r\n");
}

fn put_decimal(out: &mut BytesMut, value: u64) {
    let mut digits = [0u8; 20];
    out.put_slice(decimal(value, &mut digits));
}

/// `value`'s decimal digits, written into the end of `digits` (a u64 has at most 20):
/// without the formatting machinery, for numbers written once per message.
pub(crate) fn decimal(mut value: u64, digits: &mut [u8; 20]) -> &[u8] {
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    &digits[start..]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(build: impl FnOnce(&mut BytesMut)) -> String {
        let mut out = BytesMut::new();
        build(&mut out);
        String::from_utf8(out.to_vec()).unwrap()
    }

    #[test]
    fn messages_are_framed_as_nats_server_frames_them() {
        assert_eq!(
            text(|out| message(out, "a.b", "7", None, None, b"hello")),
            "MSG a.b 7 5\r\nhello\r\n"
        );
        assert_eq!(
            text(|out| message(out, "a", "1", Some("_INBOX.x.y"), None, b"")),
            "MSG a 1 _INBOX.x.y 0\r\n\r\n"
        );
        assert_eq!(
            text(|out| message(
                out,
                "_INBOX.x.y",
                "3",
                None,
                Some(b"NATS/1.0 503\r\n\r\n"),
                b""
            )),
            "HMSG _INBOX.x.y 3 16 16\r\nNATS/1.0 503\r\n\r\n\r\n"
        );
        assert_eq!(
            text(|out| error(out, "it's\r\nbad")),
            "-ERR 'it s  bad'\r\n"
        );
        assert_eq!(text(|out| put_decimal(out, 0)), "0");
        assert_eq!(text(|out| put_decimal(out, u64::MAX)), u64::MAX.to_string());
    }
}
