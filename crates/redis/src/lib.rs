//! The Redis front door of Omnibus: redis-py, the `redis` crate, redis-cli and other RESP
//! clients use durable keys with TTL against Omnibus unchanged. Keys are the engine's
//! keyspace (`omnibus_engine::keys`): every acknowledged write is fsynced first.
//!
//! Layers, top to bottom (the shape of `omnibus-nats` and `omnibus-amqp`):
//! - [`serve`] accepts connections within `connections_max` and runs one session each;
//! - `session` is one connection's I/O loop: it decodes every complete command in what it
//!   read (pipelining), runs them in order, waits for the durability of their writes together
//!   (they share group commits), then writes the replies in order;
//! - [`codec`] is sans-I/O: bounded request decoding and reply encoding, checked against the
//!   `redis-protocol` crate in its tests;
//! - `commands/` holds the commands: `connection.rs` (PING, HELLO, CLIENT, INFO, …),
//!   `strings.rs` (SET, GET, EXPIRE, …) and `keyspace.rs` (DEL, SCAN, TYPE, …);
//! - `pubsub` maps channels onto the engine's live router (PUBLISH, SUBSCRIBE, PSUBSCRIBE);
//! - `streams/` maps Redis streams onto engine streams (IDs, entries ↔ records, reading by
//!   ID, one writer task per stream), used by `commands/streams.rs`.
//!
//! This crate may call only `omnibus-engine` (and the vocabulary in `omnibus-types`). It
//! never calls storage, and the engine never sees a RESP type.
#![forbid(unsafe_code)]

mod clients;
pub mod codec;
mod command_stats;
mod commands;
mod config;
mod error;
pub mod fuzzing;
mod latency_histogram;
mod monitor;
mod notify;
mod pause;
mod pubsub;
mod scripting;
mod server;
mod session;
mod slowlog;
mod streams;
mod tracking;

pub use config::{
    default_io_threads, RedisConfig, BULK_BYTES_MAX_DEFAULT, CONNECTIONS_DEFAULT,
    INLINE_BYTES_MAX_DEFAULT,
};
pub use error::RedisError;
pub use notify::parse as parse_notify_keyspace_events;
pub use server::serve;
