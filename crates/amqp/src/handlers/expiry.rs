//! `x-expires`: a queue left unused for that many milliseconds is deleted, as RabbitMQ does.
//! Unused means no consumer, and no queue.declare (passive or not) or basic.get of it, for
//! the whole period; publishing to it does not count. The argument must be a positive
//! integer (406 otherwise, from `arguments.rs`).
//!
//! Our choice: the clock is the door's, in memory, like exclusive ownership — one task per
//! expiring queue sleeps until the queue may expire and looks again; after a broker restart
//! a durable queue's clock starts again from zero (`declared.rs`), as RabbitMQ's does. The task stops when the queue
//! is deleted by other means (its owner record goes, or is replaced by a newer declaration).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use amq_protocol::types::FieldTable;

use super::queue::delete_queue_everywhere;
use super::Shared;
use crate::codec::properties::integer;

/// The `x-expires` argument of a new queue, already checked (`arguments.rs`: a positive
/// integer): `None` when absent.
pub(crate) fn argument(arguments: &FieldTable) -> Option<u64> {
    arguments
        .inner()
        .get("x-expires")
        .and_then(integer)
        .and_then(|ms| u64::try_from(ms).ok())
}

/// Starts the clock of a queue just declared with `x-expires`.
pub(crate) fn watch(shared: &Arc<Shared>, queue: &str, expires_ms: u64) {
    static NEXT_TOKEN: AtomicU64 = AtomicU64::new(1);
    let token = NEXT_TOKEN.fetch_add(1, Ordering::Relaxed);
    {
        let mut owners = shared.owners.lock().unwrap_or_else(|p| p.into_inner());
        let owner = owners.entry(queue.to_string()).or_default();
        owner.expires_ms = Some(expires_ms);
        owner.expiry_token = token;
        owner.used_at = Some(Instant::now());
    }
    tokio::spawn(run(
        shared.clone(),
        queue.to_string(),
        Duration::from_millis(expires_ms),
        token,
    ));
}

/// The queue was used now (declared again, read by basic.get, a consumer came or went).
pub(crate) fn touch(shared: &Shared, queue: &str) {
    let mut owners = shared.owners.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(owner) = owners.get_mut(queue) {
        if owner.expires_ms.is_some() {
            owner.used_at = Some(Instant::now());
        }
    }
}

async fn run(shared: Arc<Shared>, queue: String, expires: Duration, token: u64) {
    loop {
        let now = Instant::now();
        let deadline = {
            let owners = shared.owners.lock().unwrap_or_else(|p| p.into_inner());
            let Some(owner) = owners.get(&queue) else {
                return;
            };
            if owner.expiry_token != token {
                return;
            }
            if owner.consumers > 0 {
                // In use; the last consumer leaving starts the clock again (`touch`).
                now + expires
            } else {
                owner.used_at.unwrap_or(now) + expires
            }
        };
        if deadline > now {
            tokio::time::sleep_until(deadline.into()).await;
            continue;
        }
        tracing::debug!(queue, "an AMQP queue expired (x-expires)");
        delete_queue_everywhere(&shared, &queue).await;
        return;
    }
}
