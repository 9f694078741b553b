//! Entry points for the fuzz targets: the request decoder on arbitrary bytes, with small
//! limits so bounds are hit often (fuzz/fuzz_targets/redis_frames.rs), the stream ID
//! parsers on arbitrary arguments (fuzz/fuzz_targets/redis_stream_ids.rs), and the
//! MessagePack and JSON decoders scripts call on arguments (fuzz/fuzz_targets/redis_script_decoders.rs),
//! the HyperLogLog value reader on any string a client could SET
//! (fuzz/fuzz_targets/redis_hyperloglog.rs), and RESTORE's payload reader
//! (fuzz/fuzz_targets/redis_dump_payload.rs).

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

/// Reads every space-separated word of `data` as each kind of stream ID argument (XADD's,
/// an interval's ends, a plain ID); must never panic, and every ID read prints back as an
/// ID that reads the same.
pub fn stream_ids(data: &[u8]) {
    use crate::streams::id::{range_end, range_start, NewId, StreamId};
    for word in data.split(|byte| *byte == b' ') {
        let parsed = [
            StreamId::parse_strict(word).ok(),
            range_start(word).ok().flatten(),
            range_end(word).ok().flatten(),
            match NewId::parse(word) {
                Ok(NewId::Explicit(id)) => Some(id),
                _ => None,
            },
        ];
        for id in parsed.into_iter().flatten() {
            let printed = id.to_string();
            assert_eq!(StreamId::parse_strict(printed.as_bytes()), Ok(id));
        }
        if let Ok(new_id) = NewId::parse(word) {
            let _ = new_id.resolve(StreamId::new(u64::MAX, u64::MAX - 1), u64::MAX);
            let _ = new_id.resolve(StreamId::MIN, 0);
        }
    }
}

/// Runs Lua's `cmsgpack.unpack` and `cjson.decode` (what a script calls on a client's
/// argument) on `data`; must never panic or crash, only answer values or an error. Whatever
/// unpacks is packed and unpacked again, and must survive the trip.
pub fn script_decoders(data: &[u8]) {
    crate::scripting::decode_for_fuzzing(data);
}

/// Reads `data` as a HyperLogLog value (any string a client SETs can reach PFCOUNT): must
/// never panic; whatever reads is written back dense and reads as the same registers.
pub fn hyperloglog_value(data: &[u8]) {
    crate::commands::hyperloglog_round_trip(data);
}

/// Reads `data` as a RESTORE and a FUNCTION RESTORE payload, as sent and sealed with a valid
/// version and checksum (random bytes would otherwise stop at the checksum): must never
/// panic, and whatever reads must DUMP to a payload that reads back the same.
pub fn dump_payload(data: &[u8]) {
    crate::codec::rdb::round_trip(data);
}
