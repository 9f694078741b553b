//! The client subcommands: each talks to a running broker through [`client::Client`], a typed
//! wrapper over the HTTP API, and never touches the engine directly — so they work the same
//! against a local or a remote broker.

pub mod client;
pub mod consume;
pub mod group;
pub mod progress;
pub mod publish;
pub mod stream;
pub mod time;
pub mod wire;
