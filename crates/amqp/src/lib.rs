//! The AMQP 0-9-1 front door of Omnibus: pika, lapin, kombu/Celery and other AMQP clients
//! declare exchanges and queues, publish with confirms, and consume with acks against Omnibus
//! unchanged. AMQP queues *are* engine queues (acked consumers with leases), and exchanges and
//! bindings are the engine's (`omnibus_engine::exchanges`), so a message published here is
//! the same message the HTTP jobs API and other doors see.
//!
//! Layers, top to bottom (the shape of `omnibus-nats` and `omnibus-kafka`):
//! - [`serve`] accepts connections within `connections_max` and runs one session each;
//! - `session` is one connection's I/O loop: it reads frames, hands them to the connection
//!   state machine, writes what it answers, moves deliveries from the consumer tasks into the
//!   write buffer, and sends and checks heartbeats;
//! - [`codec`] is sans-I/O: framing with `frame_max` checked before buffering, and the
//!   `amq-protocol` crate's generated parser and serialiser for every method;
//! - `handlers/<class>.rs` holds one file per method family (connection, channel, exchange,
//!   queue, basic, confirm, tx), and `handlers/consumer.rs` the per-consumer delivery task.
//!
//! This crate may call only `omnibus-engine` (and the vocabulary in `omnibus-types`). It
//! never calls storage, and the engine never sees an AMQP type.
#![forbid(unsafe_code)]

pub mod codec;
mod config;
mod error;
pub mod fuzzing;
mod handlers;
mod names;
mod server;
mod session;

pub use config::{
    AmqpConfig, CONNECTIONS_DEFAULT, CONSUMERS_PER_CHANNEL_DEFAULT, FRAME_MAX_DEFAULT,
    MESSAGE_BYTES_MAX_DEFAULT,
};
pub use error::AmqpError;
pub use server::serve;
