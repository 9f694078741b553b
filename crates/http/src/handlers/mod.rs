//! One file per API area. Handlers parse and bound the request, call the engine, and render
//! its answer; they hold no state of their own.

pub mod dead_letters;
pub mod events;
pub mod fetch;
pub mod groups;
pub mod health;
pub mod jobs;
pub mod messages;
pub mod offsets;
pub mod openapi;
pub mod publish;
pub mod queues;
pub mod streams;

use std::sync::Arc;

use omnibus_engine::Engine;

use crate::error::ApiError;

/// Runs a synchronous engine call on the blocking pool: those calls may touch the disk
/// (creating folders, committing the state store), which must not stall the async workers.
pub async fn run_blocking<T, F>(engine: &Arc<Engine>, work: F) -> Result<T, ApiError>
where
    F: FnOnce(&Engine) -> omnibus_engine::Result<T> + Send + 'static,
    T: Send + 'static,
{
    let engine = Arc::clone(engine);
    let outcome = tokio::task::spawn_blocking(move || work(&engine))
        .await
        .map_err(|error| ApiError::internal(format!("engine call failed: {error}")))?;
    Ok(outcome?)
}
