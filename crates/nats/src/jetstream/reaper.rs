//! Ephemeral pull consumers end after their `inactive_threshold` (5 s by default, as in
//! nats-server) without a pull request waiting, a new pull request or an ack — otherwise every
//! `pull_subscribe` without a durable name would leave a consumer behind until the stream's
//! consumer bound refused new ones. Durable consumers stay until deleted; ephemeral push
//! consumers are ended by their own task (`push.rs`).

use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::time::Instant;

use super::consumers::door_config;
use crate::handlers::Shared;

/// How often the consumers are looked at.
const SWEEP_EVERY: Duration = Duration::from_secs(1);
/// nats-server's default `inactive_threshold` of an ephemeral consumer.
const INACTIVE_DEFAULT: Duration = Duration::from_secs(5);

/// Sweeps until the listener's shared state is gone.
pub(crate) async fn run(shared: Weak<Shared>) {
    loop {
        tokio::time::sleep(SWEEP_EVERY).await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        sweep(&shared).await;
    }
}

async fn sweep(shared: &Arc<Shared>) {
    let engine = &shared.engine;
    let jetstream = &shared.jetstream;
    let now = Instant::now();
    for stream in engine.list_streams() {
        let stream = stream.config.name;
        for info in engine.list_consumers(&stream) {
            let config = door_config(&info);
            let text = |field: &str| {
                config
                    .get(field)
                    .and_then(|v| v.as_str())
                    .is_some_and(|s| !s.is_empty())
            };
            // Only JetStream's own ephemeral pull consumers: durable, push, and consumers
            // made by another door (no JetStream config) are not ours to end.
            if text("durable_name") || text("deliver_subject") || config.get("ack_wait").is_none() {
                continue;
            }
            let name = info.stored.spec.name.clone();
            let threshold = config
                .get("inactive_threshold")
                .and_then(|v| v.as_u64())
                .filter(|ns| *ns > 0)
                .map_or(INACTIVE_DEFAULT, Duration::from_nanos);
            if jetstream.waiting(&stream, &name) > 0 {
                jetstream.touch(&stream, &name);
                continue;
            }
            let last = jetstream.last_active(&stream, &name, now);
            if now.duration_since(last) >= threshold {
                if let Err(error) = engine.delete_consumer(&stream, &name).await {
                    tracing::debug!(stream, name, "inactive consumer not deleted: {error}");
                }
                jetstream.forget_activity(&stream, &name);
            }
        }
    }
}
