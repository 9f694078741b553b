//! RESTORE's payload reader on any bytes a client could send (and on those bytes sealed with
//! a valid version and checksum, so the object reader is reached): must never panic, and
//! whatever reads must DUMP and read back as the same value.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    omnibus_redis::fuzzing::dump_payload(data);
});
