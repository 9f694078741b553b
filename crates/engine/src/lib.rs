//! The Omnibus engine: streams and their partitions, subject routing, live subscriptions
//! (pub/sub with queue groups, `router/`), publishing with durable acknowledgement, fetching
//! with long-poll, consumer-group offsets, and acked consumers over streams (`consumers/`).
//!
//! The engine is the only API the front doors (HTTP, Kafka, AMQP, NATS, Redis) may call. It
//! uses `omnibus-storage` for logs and the state store and `omnibus-types` for the shared
//! vocabulary. It must never import a wire-protocol type: a front door translates its protocol
//! into the types in [`model`] and back.
#![forbid(unsafe_code)]

pub mod alerts;
pub mod config;
pub mod consumers;
mod engine;
pub mod error;
pub mod exchanges;
pub mod groups;
pub mod health;
pub mod jobs;
pub mod keys;
pub mod metrics;
pub mod model;
pub mod producers;
pub mod queue;
pub mod router;
pub mod streams;

pub use alerts::{Alert, AlertKind, AlertRule, AlertState, AlertsConfig, WebhookStatus};
pub use config::{EngineConfig, FsyncPolicy, StreamDefaults};
pub use engine::Engine;
pub use error::{EngineError, Result};
pub use health::{DiskSpace, Health, HealthProblem, HealthProblemKind};
pub use model::*;
