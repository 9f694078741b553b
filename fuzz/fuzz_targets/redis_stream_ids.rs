//! Redis stream ID arguments (`<ms>-<seq>`, `<ms>-*`, `*`, `-`, `+`, `(<id>`, a bare `<ms>`):
//! every parser must never panic, and every ID it reads must print back as an ID that reads
//! the same.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    omnibus_redis::fuzzing::stream_ids(data);
});
