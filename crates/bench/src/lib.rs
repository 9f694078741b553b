//! `omnibus-bench`: drives Omnibus and its peers (Kafka-protocol brokers, Redis Streams, NATS
//! core and JetStream, RabbitMQ) with the same workloads, over the network, and reports the
//! figures side by side.
//!
//! Layers: [`settings`] (what to run), [`load`] (bounded load generation: a budget of
//! messages and time, windows of in-flight operations, timestamped payloads), [`drivers`] (one
//! file per system, each speaking only that system's client protocol), [`run`] (repeats a run,
//! shows progress, reads the broker's CPU with [`broker_cpu`], writes the human line and the
//! JSON line), then [`report`] and [`chart`]
//! (Markdown and SVG from the JSON lines, with [`stats`] for medians and percentiles).
//!
//! It must never link the broker: every system, Omnibus included, is reached through its
//! network port, so the harness measures what a client on the same host would see.
#![forbid(unsafe_code)]

pub mod broker_cpu;
pub mod chart;
pub mod drivers;
pub mod error;
pub mod load;
pub mod record;
pub mod report;
pub mod run;
pub mod settings;
pub mod stats;

pub use error::BenchError;
