//! AMQP queue names as engine queue names. AMQP allows any short string ("celery@host.dq2",
//! "amq.gen-…"); engine names follow Kafka's topic rules (letters, digits, `.`, `_`, `-`).
//! A name made of those alone (`_` aside) is used as it is — so a queue declared over AMQP
//! is the HTTP API's queue of the same name — and any other byte is written `_xx` (hex), with
//! `_` itself written `__`. The mapping is one to one, so names never collide.

/// Longest engine name we make: the dead-letter stream adds `.dlq` to it, within 249 bytes.
const ENGINE_NAME_BYTES_MAX: usize = 245;

/// The engine name of an AMQP queue, or `None` when it would be too long.
pub fn to_engine(amqp: &str) -> Option<String> {
    let all_dots = amqp.bytes().all(|b| b == b'.');
    let mut name = String::with_capacity(amqp.len());
    for byte in amqp.bytes() {
        match byte {
            b'_' => name.push_str("__"),
            b'.' if all_dots => name.push_str("_2e"),
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' => name.push(byte as char),
            other => name.push_str(&format!("_{other:02x}")),
        }
    }
    (!name.is_empty() && name.len() <= ENGINE_NAME_BYTES_MAX).then_some(name)
}

/// The AMQP name of an engine queue (the inverse of [`to_engine`]).
pub fn from_engine(engine: &str) -> String {
    let bytes = engine.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'_' {
            if bytes.get(index + 1) == Some(&b'_') {
                out.push(b'_');
                index += 2;
                continue;
            }
            let hex = engine.get(index + 1..index + 3).unwrap_or("");
            if let Ok(value) = u8::from_str_radix(hex, 16) {
                out.push(value);
                index += 3;
                continue;
            }
        }
        out.push(bytes[index]);
        index += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_stay_and_others_round_trip() {
        assert_eq!(to_engine("orders.v1-x").unwrap(), "orders.v1-x");
        for name in [
            "celery@host.dq2",
            "a_b",
            "amq.gen-XyZ",
            ".",
            "..",
            "é/ü",
            "_2e",
        ] {
            let engine = to_engine(name).unwrap();
            assert!(
                omnibus_types::name::validate_stream_name(&engine).is_ok(),
                "{engine}"
            );
            assert_eq!(from_engine(&engine), name);
        }
        assert_ne!(to_engine("a_b"), to_engine("a@b"));
        assert!(to_engine("").is_none());
        assert!(to_engine(&"@".repeat(200)).is_none());
    }
}
