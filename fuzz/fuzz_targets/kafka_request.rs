//! Kafka request bytes, delivered in two chunks: framing, the bounds check and request
//! decoding must never panic or allocate beyond the frame limit.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    omnibus_kafka::fuzzing::request_decoding(data);
});
