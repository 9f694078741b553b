//! Fuzz bodies, shared by the cargo-fuzz target `fuzz/fuzz_targets/nats_parser.rs` and its
//! proptest twin here.

use bytes::{Bytes, BytesMut};

use crate::codec::{bytes_wanted, headers, parse, ClientOp, CONTROL_LINE_BYTES_MAX};

/// A small `max_payload`, so that inputs reach the limit.
const FUZZ_MAX_PAYLOAD: usize = 4096;

/// Feeds `data` to the parser in two chunks (split where the first byte says), as a socket
/// might deliver it, and parses every header block it yields. Must never panic, and the
/// buffer must never hold more than one control line plus one allowed payload beyond what
/// was fed.
pub fn parser(data: &[u8]) {
    let Some((&split, data)) = data.split_first() else {
        return;
    };
    let split = (split as usize * data.len()) / 255;
    let (first, second) = data.split_at(split.min(data.len()));
    let mut buffer = BytesMut::new();
    for chunk in [first, second] {
        buffer.extend_from_slice(chunk);
        let _ = bytes_wanted(&buffer, FUZZ_MAX_PAYLOAD);
        loop {
            match parse(&mut buffer, FUZZ_MAX_PAYLOAD) {
                Ok(Some(ClientOp::Publish(publish))) => {
                    if let Some(block) = &publish.headers {
                        let _ = headers::parse(block);
                    }
                }
                Ok(Some(ClientOp::Connect(json))) => {
                    let _ = crate::handlers::connect::ConnectOptions::decode(&json);
                }
                Ok(Some(_)) => {}
                Ok(None) => {
                    // What waits for more bytes is one unfinished operation: a control line
                    // under the limit, or a whole line and part of an allowed payload.
                    assert!(buffer.len() <= CONTROL_LINE_BYTES_MAX + FUZZ_MAX_PAYLOAD + 2);
                    break;
                }
                Err(_) => return,
            }
        }
    }
    let _ = headers::parse(&Bytes::copy_from_slice(data));
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn the_parser_never_panics(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            parser(&data);
        }

        /// Operation names followed by random bytes get past the first word more often.
        #[test]
        fn random_arguments_never_panic(
            name in prop::sample::select(vec!["PUB ", "HPUB ", "SUB ", "UNSUB ", "CONNECT ", "ping"]),
            tail in proptest::collection::vec(any::<u8>(), 0..200),
        ) {
            let mut data = vec![128u8];
            data.extend_from_slice(name.as_bytes());
            data.extend_from_slice(&tail);
            parser(&data);
        }
    }
}
