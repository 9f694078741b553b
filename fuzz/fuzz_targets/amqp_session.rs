//! AMQP 0-9-1 client bytes after a successful handshake and channel.open, fed to one
//! connection's state machines (connection, channels, content assembly, the engine calls
//! behind them) without a socket: they must never panic nor stall, and everything the server
//! writes must decode.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    omnibus_amqp::fuzzing::session(data);
});
