//! The client subcommands: each talks to a running broker through [`client::Client`], a typed
//! wrapper over the HTTP API, and never touches the engine directly — so they work the same
//! against a local or a remote broker.

pub mod alerts;
pub mod client;
mod client_jobs;
pub mod consume;
pub mod consumer_lag;
pub mod dlq;
pub mod group;
pub mod job;
pub mod lines;
pub mod progress;
pub mod publish;
pub mod queue;
pub mod stream;
pub mod table;
pub mod time;
pub mod top;
pub mod wire;
pub mod wire_jobs;
pub mod worker;
pub mod worker_command;
pub mod worker_job;
