//! Redis client bytes: RESP arrays and inline commands through the bounded header scan that
//! also cuts each frame into its arguments must never panic, never yield more arguments than
//! allowed, and every decoded command must re-encode as a reply in RESP2 and RESP3.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    omnibus_redis::fuzzing::decode_frames(data);
});
