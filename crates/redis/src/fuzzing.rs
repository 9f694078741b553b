//! Entry points for the fuzz targets (fuzz/fuzz_targets/redis_frames.rs): the request
//! decoder on arbitrary bytes, with small limits so bounds are hit often.

use bytes::BytesMut;

use crate::codec::{decode_request, encode, Limits, Protocol, Reply};

/// Decodes every command in `data` and re-encodes each argument list as a reply in both
/// protocols; must never panic, and never buffer past the limits.
pub fn decode_frames(data: &[u8]) {
    let limits = Limits {
        bulk_bytes_max: 4096,
        arguments_max: 64,
        request_bytes_max: 16 * 1024,
        inline_bytes_max: 1024,
    };
    let mut buffer = BytesMut::from(data);
    let mut out = BytesMut::new();
    while let Ok(Some(arguments)) = decode_request(&mut buffer, &limits) {
        assert!(!arguments.is_empty());
        assert!(arguments.len() <= limits.arguments_max);
        let reply = Reply::Array(arguments.into_iter().map(Reply::Bulk).collect());
        encode(&reply, Protocol::Resp2, &mut out);
        encode(&reply, Protocol::Resp3, &mut out);
        out.clear();
    }
}
