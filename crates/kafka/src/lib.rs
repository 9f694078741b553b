//! The Kafka front door of Omnibus: existing Kafka clients (librdkafka, the Java client,
//! kafka-python, kcat) produce to and consume from Omnibus streams unchanged. A Kafka topic is
//! a stream; its partitions are the stream's partitions.
//!
//! Layers, top to bottom (the shape of mini-redis):
//! - [`server`] accepts connections within `connections_max` and runs one session each;
//! - [`session`] is one connection's state machine: it reads frames, answers requests strictly
//!   in the order they arrived (pipelined requests wait their turn, as in Kafka), writes the
//!   responses, and sends nothing back for an `acks=0` produce;
//! - [`codec`] is sans-I/O: frame splitting with the size limit checked before allocating, a
//!   bounds check of each request body (`codec::shape`) and then header and body decoding with
//!   the `kafka-protocol` crate, and response encoding into a caller's buffer;
//! - `handlers/<api>.rs` holds one file per API key, translating the request into engine calls
//!   and the engine's answers (or errors) into the response.
//!
//! This crate may call only `omnibus-engine` (and the shared vocabulary in `omnibus-types`).
//! It must never call storage directly, and the engine never sees a Kafka type.
#![forbid(unsafe_code)]

pub mod codec;
mod config;
mod error;
pub mod fuzzing;
mod handlers;
mod server;
mod session;

pub use config::{KafkaConfig, CONNECTIONS_DEFAULT, FRAME_BYTES_CEILING, FRAME_BYTES_DEFAULT};
pub use error::KafkaError;
pub use server::serve;
pub use session::IN_FLIGHT_MAX;
