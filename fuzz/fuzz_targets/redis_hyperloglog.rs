//! A string value read as a HyperLogLog (a client can SET any bytes, then PFCOUNT or PFADD
//! them): the dense and sparse readers must never panic, and whatever reads must write back
//! and read as the same registers.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    omnibus_redis::fuzzing::hyperloglog_value(data);
});
