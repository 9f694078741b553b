//! NATS client bytes, delivered in two chunks: the hand-written parser (control lines, payload
//! sizes, header blocks, CONNECT JSON) must never panic, and must never buffer more than one
//! control line plus one allowed payload.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    omnibus_nats::fuzzing::parser(data);
});
