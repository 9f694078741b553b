//! Dead-letter routes: a queue whose dead letters go through an exchange (AMQP's
//! `x-dead-letter-exchange`) rather than only into its dead-letter stream.
//!
//! The queue machinery is not changed: every dead letter — rejected without requeue, expired
//! (TTL), dropped by overflow, or out of deliveries — is still appended to the queue's
//! dead-letter stream with its `omnibus.dlq.*` headers. A *forwarder* task per routed queue
//! tails that stream from a durable cursor, routes each dead letter through the exchange
//! (with the route's routing key, or the message's own `omnibus.routing_key` header) and
//! enqueues it into every queue that matches, then moves the cursor. So dead-lettering through
//! an exchange is at least once, like the rest of the queue's dead-lettering: a crash between
//! the enqueue and the cursor's commit forwards a message again.
//!
//! The forwarded message keeps its headers, its dead-letter history included
//! (`queue/deaths.rs`): a door renders them in its own terms (the AMQP door as `x-death`).

use std::collections::BTreeMap;
use std::sync::{Arc, Weak};

use bytes::Bytes;
use omnibus_storage::StateWrite;
use omnibus_types::Header;
use serde::{Deserialize, Serialize};

use crate::engine::Engine;
use crate::error::{EngineError, Result};
use crate::queue::{EnqueueMessage, DUE_HEADER, EXPIRES_HEADER, PRIORITY_HEADER};
use crate::streams::registry::off_the_runtime;
use crate::FetchRequest;

const ROUTES_TABLE: &str = "dead_letter_routes";
/// A message's routing key as published, kept so its dead letter can be routed by it.
pub const ROUTING_KEY_HEADER: &str = "omnibus.routing_key";
/// The exchange a message was published to.
pub const EXCHANGE_HEADER: &str = "omnibus.exchange";
/// How long one fetch of the dead-letter stream waits; also how soon a forwarder notices
/// that its route, its queue or the engine is gone.
const FORWARD_WAIT_MS: u64 = 200;
const FORWARD_BATCH: usize = 256;

/// Where a queue's dead letters are routed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetterRoute {
    pub exchange: String,
    /// Replaces the message's own routing key when set.
    pub routing_key: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredRoute {
    route: DeadLetterRoute,
    /// The next offset of the dead-letter stream to forward.
    cursor: u64,
}

/// Routes in memory, by queue.
pub(crate) type Routes = std::sync::Mutex<BTreeMap<String, DeadLetterRoute>>;

impl Engine {
    /// Starts the forwarders of every stored route (at open).
    pub(crate) fn open_dead_letter_routes(self: &Arc<Self>) -> Result<()> {
        for (queue, bytes) in self.state.scan_prefix(ROUTES_TABLE, "")? {
            let stored: StoredRoute = serde_json::from_slice(&bytes)
                .map_err(|e| EngineError::Internal(format!("dead-letter route {queue:?}: {e}")))?;
            self.dead_letter_routes
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(queue.clone(), stored.route);
            spawn_forwarder(Arc::downgrade(self), queue, stored.cursor);
        }
        Ok(())
    }

    /// Routes `queue`'s dead letters through an exchange from now on (`None`: no longer).
    /// Durable. Dead letters already in its dead-letter stream are not forwarded.
    pub async fn set_dead_letter_route(
        self: &Arc<Self>,
        queue: &str,
        route: Option<DeadLetterRoute>,
    ) -> Result<()> {
        let found = self.queue(queue)?;
        let cursor = self
            .stream(&found.config.dead_letter)?
            .partition(0)?
            .high_watermark();
        let engine = self.clone();
        let name = queue.to_string();
        let stored = route.clone().map(|route| StoredRoute { route, cursor });
        off_the_runtime(move || {
            let write = match &stored {
                Some(stored) => StateWrite::Put {
                    table: ROUTES_TABLE,
                    key: name.clone(),
                    value: serde_json::to_vec(stored).expect("route serializes"),
                },
                None => StateWrite::Delete {
                    table: ROUTES_TABLE,
                    key: name.clone(),
                },
            };
            Ok(engine.state.write(&[write])?)
        })
        .await?;
        let mut routes = self
            .dead_letter_routes
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let running = routes.contains_key(queue);
        match route {
            Some(route) => {
                routes.insert(queue.to_string(), route);
                if !running {
                    spawn_forwarder(Arc::downgrade(self), queue.to_string(), cursor);
                }
            }
            None => {
                routes.remove(queue);
            }
        }
        Ok(())
    }

    /// Deletes the stored route of a queue that is not started (a transient queue deleted at
    /// open, before the routes start).
    pub(crate) async fn forget_dead_letter_route(self: &Arc<Self>, queue: &str) -> Result<()> {
        let engine = self.clone();
        let key = queue.to_string();
        off_the_runtime(move || {
            Ok(engine.state.write(&[StateWrite::Delete {
                table: ROUTES_TABLE,
                key,
            }])?)
        })
        .await
    }

    /// The route of `queue`'s dead letters, if it has one.
    pub fn dead_letter_route(&self, queue: &str) -> Option<DeadLetterRoute> {
        self.dead_letter_routes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(queue)
            .cloned()
    }

    /// Forwards one batch; answers the cursor to go on from, or `None` to stop.
    async fn forward_dead_letters(self: &Arc<Self>, queue: &str, cursor: u64) -> Option<u64> {
        let route = self.dead_letter_route(queue)?;
        let stream = self.queue(queue).ok()?.config.dead_letter.clone();
        let fetched = self
            .fetch(FetchRequest {
                stream,
                partition: 0,
                offset: cursor,
                max_records: FORWARD_BATCH,
                max_bytes: 16 << 20,
                wait_ms: FORWARD_WAIT_MS,
            })
            .await;
        let fetched = match fetched {
            Ok(fetched) => fetched,
            Err(error) => {
                tracing::warn!(queue, "reading dead letters to forward failed: {error}");
                tokio::time::sleep(std::time::Duration::from_millis(FORWARD_WAIT_MS)).await;
                return Some(cursor);
            }
        };
        for record in &fetched.records {
            let from_here = header(record, "omnibus.dlq.source").is_none_or(|s| s == queue);
            if !from_here {
                continue;
            }
            let own_key = header(record, ROUTING_KEY_HEADER).unwrap_or_default();
            let key = route.routing_key.clone().unwrap_or(own_key);
            let text_headers = BTreeMap::new();
            let targets = match self.route_exchange(&route.exchange, &key, &text_headers) {
                Ok(targets) => targets,
                // RabbitMQ drops a dead letter whose exchange is missing.
                Err(_) => continue,
            };
            for target in targets {
                let headers = forwarded_headers(record, &route.exchange, &key);
                let message = EnqueueMessage {
                    key: record.key.clone(),
                    value: record.value.clone(),
                    headers,
                    ..Default::default()
                };
                if let Err(error) = self.enqueue(&target, vec![message]).await {
                    tracing::warn!(queue, target, "forwarding a dead letter failed: {error}");
                }
            }
        }
        if fetched.next_offset != cursor {
            let engine = self.clone();
            let name = queue.to_string();
            let stored = StoredRoute {
                route,
                cursor: fetched.next_offset,
            };
            let saved = off_the_runtime(move || {
                Ok(engine.state.write(&[StateWrite::Put {
                    table: ROUTES_TABLE,
                    key: name,
                    value: serde_json::to_vec(&stored).expect("route serializes"),
                }])?)
            })
            .await;
            if let Err(error) = saved {
                tracing::warn!(queue, "saving the dead-letter cursor failed: {error}");
            }
        }
        Some(fetched.next_offset)
    }
}

/// The dead letter's headers as the target queue gets them: the queue's own timing headers
/// dropped, the exchange and routing key it now travels by in place of the old ones (kept as
/// `omnibus.dlq.exchange` and `omnibus.dlq.routing_key`).
fn forwarded_headers(record: &omnibus_types::Record, exchange: &str, key: &str) -> Vec<Header> {
    let mut headers: Vec<Header> = Vec::with_capacity(record.headers.len() + 2);
    for h in &record.headers {
        match h.name.as_str() {
            // The exchange and routing key it had are in its death (`queue/deaths.rs`).
            DUE_HEADER | EXPIRES_HEADER | PRIORITY_HEADER | EXCHANGE_HEADER
            | ROUTING_KEY_HEADER => {}
            _ => headers.push(h.clone()),
        }
    }
    headers.push(Header {
        name: EXCHANGE_HEADER.into(),
        value: Bytes::copy_from_slice(exchange.as_bytes()),
    });
    headers.push(Header {
        name: ROUTING_KEY_HEADER.into(),
        value: Bytes::copy_from_slice(key.as_bytes()),
    });
    headers
}

/// The newest value of header `name` (a dead letter carries one group of `omnibus.dlq.*` per
/// death, oldest first).
fn header(record: &omnibus_types::Record, name: &str) -> Option<String> {
    record
        .headers
        .iter()
        .rev()
        .find(|h| h.name == name)
        .map(|h| String::from_utf8_lossy(&h.value).into_owned())
}

/// One task per routed queue. It holds the engine only while it works, and stops when the
/// route, the queue or the engine is gone.
fn spawn_forwarder(engine: Weak<Engine>, queue: String, mut cursor: u64) {
    tokio::spawn(async move {
        loop {
            let Some(engine) = engine.upgrade() else {
                return;
            };
            if engine
                .shutting_down
                .load(std::sync::atomic::Ordering::Acquire)
            {
                return;
            }
            match engine.forward_dead_letters(&queue, cursor).await {
                Some(next) => cursor = next,
                None => return,
            }
        }
    });
}
