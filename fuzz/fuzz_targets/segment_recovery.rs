//! A crashed segment file: recovery yields a readable clean prefix and accepts appends.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    omnibus_storage::fuzzing::segment_recovery(data);
});
