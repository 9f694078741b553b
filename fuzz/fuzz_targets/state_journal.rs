//! A state-store journal file: reading it never panics, and a run read back encodes to the
//! bytes it came from.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    omnibus_storage::fuzzing::state_journal(data);
});
