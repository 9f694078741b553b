//! The NATS front door of Omnibus: NATS clients (nats-py, async-nats, nats.go, the `nats` CLI)
//! publish, subscribe, use queue groups and request-reply against Omnibus unchanged. Subjects
//! route through the engine's live subject router; a subject a stream captures is also
//! appended to that stream, durably, so it is readable from Kafka and HTTP too.
//!
//! Layers, top to bottom (the shape of mini-redis and of `omnibus-kafka`):
//! - [`server`] accepts connections within `connections_max` and runs one session each;
//! - `session` is one connection: it reads and parses operations, hands each to its handler,
//!   moves deliveries from the connection's engine mailbox into one write buffer, and writes
//!   that buffer in as few system calls as it can, while reads go on;
//! - [`codec`] is sans-I/O: the hand-written parser of client operations (bounded control
//!   lines and payloads) and the encoders of server operations;
//! - `handlers/<operation>.rs` holds one file per client operation;
//! - `jetstream/` answers the `$JS.API.*` requests and JetStream publishes (PubAck, dedup,
//!   expected-sequence checks) over engine streams.
//!
//! This crate may call only `omnibus-engine` (and the vocabulary in `omnibus-types`). It
//! never calls storage, and the engine never sees a NATS type. JetStream streams are engine streams;
//! what JetStream keeps beside them is rebuilt from their records.
#![forbid(unsafe_code)]

pub mod codec;
mod config;
mod error;
pub mod fuzzing;
mod handlers;
mod jetstream;
mod server;
mod session;

pub use config::{
    NatsConfig, CONNECTIONS_DEFAULT, MAX_PAYLOAD_CEILING, MAX_PAYLOAD_DEFAULT,
    PENDING_BYTES_DEFAULT, PENDING_MESSAGES_DEFAULT, SUBSCRIPTIONS_DEFAULT,
};
pub use error::NatsError;
pub use server::serve;
