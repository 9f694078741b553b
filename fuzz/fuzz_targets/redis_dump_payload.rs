//! RESTORE's and FUNCTION RESTORE's payload readers on any bytes a client could send (and on
//! those bytes sealed with a valid version and checksum, so the object and library readers
//! are reached): must never panic, and whatever reads must DUMP and read back the same.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    omnibus_redis::fuzzing::dump_payload(data);
});
