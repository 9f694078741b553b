//! Producer snapshots read at recovery: decoding must never panic, and must be stable.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    omnibus_storage::fuzzing::producer_snapshot(data);
});
