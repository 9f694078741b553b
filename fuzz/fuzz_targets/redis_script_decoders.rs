//! What a Redis script calls on a client's argument: `cmsgpack.unpack` and `cjson.decode` on
//! arbitrary bytes must answer values or an error, never panic or crash the door, and what
//! unpacks must pack and unpack again to as many values.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    omnibus_redis::fuzzing::script_decoders(data);
});
