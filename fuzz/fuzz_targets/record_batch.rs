//! Producer buffers: header parsing, CRC validation and record decoding must never panic.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    omnibus_storage::fuzzing::batch_decoding(data);
});
