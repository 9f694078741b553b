//! AMQP 0-9-1 client bytes, delivered in two chunks: the framing (sizes checked against
//! frame_max before buffering) and the amq-protocol generated parser behind it must never
//! panic, and must never hold more than one allowed frame waiting.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    omnibus_amqp::fuzzing::frames(data);
});
