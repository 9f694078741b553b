//! One file per API area. Handlers parse and bound the request, call the engine, and render
//! its answer; they hold no state of their own. Engine methods that touch the disk are async
//! and move their blocking part off the runtime themselves, so a handler simply awaits them.

pub mod alerts;
pub mod dead_letters;
pub mod events;
pub mod fetch;
pub mod groups;
pub mod health;
pub mod jobs;
pub mod messages;
pub mod metrics;
pub mod offsets;
pub mod openapi;
pub mod overview;
pub mod publish;
pub mod queues;
pub mod streams;
