//! Metrics for `GET /metrics` (OpenMetrics text, written by the `prometheus-client` crate's
//! encoder from one collector per scrape: `text.rs`),
//! designed to stay cheap with thousands of partitions and queues.
//!
//! Two kinds of numbers, kept apart:
//! - **Counters on hot paths are plain atomics.** Storage owns the partition traffic
//!   counters and the fsync / group-commit / state-commit histograms
//!   (`omnibus_storage::metrics`); queues count their events in the rate ring they already
//!   keep (`queue/rates.rs`); front doors count connections, requests and errors through
//!   [`Metrics`], which the engine owns and which names a door only by its label ([`Door`]):
//!   no wire type enters the engine.
//! - **Gauges are computed at scrape time** from what is already in memory (`collect.rs`):
//!   high watermarks, segment sizes, queue counts, the committed offsets mirrored in
//!   `groups/committed.rs`, the sparse time index for ages. A scrape never reads the log;
//!   it touches the state store only once per queue per process (the finished-jobs counts,
//!   `jobs/query.rs`), and reads `/proc/self` and the data folder's file system for the
//!   process gauges (`process.rs`).
//!
//! Labels are bounded: stream, partition, group, queue, consumer, door, HTTP route
//! *template*, method and status class. Nothing is labelled per message, per client or per
//! connection. Series that are zero and say nothing are left out (`collect.rs`,
//! `queues.rs`).

mod collect;
mod process;

pub use process::{resources as process_resources, ProcessResources};
mod queues;
mod text;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

/// The front doors, as metric labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Door {
    Http,
    Kafka,
    Nats,
    Amqp,
    Redis,
}

impl Door {
    pub const ALL: [Door; 5] = [Door::Http, Door::Kafka, Door::Nats, Door::Amqp, Door::Redis];

    pub fn as_str(self) -> &'static str {
        match self {
            Door::Http => "http",
            Door::Kafka => "kafka",
            Door::Nats => "nats",
            Door::Amqp => "amqp",
            Door::Redis => "redis",
        }
    }
}

/// One door's counters. Each is a relaxed atomic add: no lock, nothing allocated.
#[derive(Debug, Default)]
pub struct DoorCounters {
    connections_opened: AtomicU64,
    connections_closed: AtomicU64,
    /// Connections turned away at the door's `connections_max`.
    connections_refused: AtomicU64,
    /// Requests (HTTP requests, Kafka API calls, NATS/Redis commands, AMQP methods) read.
    requests: AtomicU64,
    /// Requests answered with an error, or connections ended by one.
    errors: AtomicU64,
}

/// A copy of a door's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DoorTraffic {
    pub connections_opened: u64,
    pub connections_closed: u64,
    pub connections_refused: u64,
    pub requests: u64,
    pub errors: u64,
}

/// Counts a connection as closed when dropped: hold it for the connection's life.
#[derive(Debug)]
pub struct ConnectionGuard {
    counters: Arc<DoorCounters>,
}

impl ConnectionGuard {
    /// Counts an error on this connection's door (the connection ended with one).
    pub fn error(&self) {
        self.counters.error();
    }

    /// Counts a request read on this connection.
    pub fn request(&self) {
        self.counters.request();
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.counters
            .connections_closed
            .fetch_add(1, Ordering::Relaxed);
    }
}

impl DoorCounters {
    /// Counts an accepted connection; the guard counts its close.
    pub fn open_connection(self: &Arc<Self>) -> ConnectionGuard {
        self.connections_opened.fetch_add(1, Ordering::Relaxed);
        ConnectionGuard {
            counters: self.clone(),
        }
    }

    pub fn refuse_connection(&self) {
        self.connections_refused.fetch_add(1, Ordering::Relaxed);
    }

    pub fn request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    pub fn requests(&self, count: u64) {
        self.requests.fetch_add(count, Ordering::Relaxed);
    }

    pub fn error(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts `count` errors at once (a door that tallies a read's errors).
    pub fn errors(&self, count: u64) {
        self.errors.fetch_add(count, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> DoorTraffic {
        DoorTraffic {
            connections_opened: self.connections_opened.load(Ordering::Relaxed),
            connections_closed: self.connections_closed.load(Ordering::Relaxed),
            connections_refused: self.connections_refused.load(Ordering::Relaxed),
            requests: self.requests.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
        }
    }
}

/// Most distinct (method, route) pairs tracked; more share the `other` series. An API's
/// route table is far smaller: the bound only guards against a caller passing raw paths.
pub const API_ROUTES_MAX: usize = 512;

/// Status classes an API request is counted under: 1xx … 5xx.
const STATUS_CLASSES: usize = 5;

/// Requests to one API route template with one method, by status class.
#[derive(Debug, Default)]
pub struct RouteCounters {
    by_class: [AtomicU64; STATUS_CLASSES],
}

impl RouteCounters {
    /// Counts one answered request with HTTP `status`.
    pub fn answered(&self, status: u16) {
        let class = (status / 100).clamp(1, STATUS_CLASSES as u16) as usize - 1;
        self.by_class[class].fetch_add(1, Ordering::Relaxed);
    }

    /// (status class label, count) for every class seen.
    pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
        const LABELS: [&str; STATUS_CLASSES] = ["1xx", "2xx", "3xx", "4xx", "5xx"];
        LABELS
            .iter()
            .zip(&self.by_class)
            .map(|(label, count)| (*label, count.load(Ordering::Relaxed)))
            .filter(|(_, count)| *count > 0)
            .collect()
    }
}

/// The counters front doors record into; owned by the engine (`Engine::metrics`).
#[derive(Debug)]
pub struct Metrics {
    doors: [Arc<DoorCounters>; 5],
    /// (method, route template) → counters. Read-locked on every API request (a hash
    /// lookup); written only the first time a route is seen.
    routes: RwLock<HashMap<(String, String), Arc<RouteCounters>>>,
    /// The last scrape's size: the next one's buffer starts that large (plus a margin), so
    /// it is allocated once instead of grown by copying megabytes.
    last_scrape_bytes: AtomicUsize,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            doors: std::array::from_fn(|_| Arc::default()),
            routes: RwLock::default(),
            last_scrape_bytes: AtomicUsize::new(64 * 1024),
        }
    }
}

impl Metrics {
    pub fn door(&self, door: Door) -> &Arc<DoorCounters> {
        &self.doors[door as usize]
    }

    /// The counters of one API route template (`/v1/queues/{queue}`, never a concrete path)
    /// and method. Past [`API_ROUTES_MAX`] pairs, new ones share `("other", "other")`.
    pub fn api_route(&self, method: &str, route: &str) -> Arc<RouteCounters> {
        let key = (method.to_string(), route.to_string());
        if let Some(counters) = self
            .routes
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return counters.clone();
        }
        let mut routes = self.routes.write().unwrap_or_else(|p| p.into_inner());
        let key = if routes.len() >= API_ROUTES_MAX && !routes.contains_key(&key) {
            ("other".to_string(), "other".to_string())
        } else {
            key
        };
        routes.entry(key).or_default().clone()
    }

    /// Every API route's counters, sorted by route then method.
    pub fn api_routes(&self) -> Vec<(String, String, Arc<RouteCounters>)> {
        let mut routes: Vec<_> = self
            .routes
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|((method, route), counters)| (method.clone(), route.clone(), counters.clone()))
            .collect();
        routes.sort_by(|a, b| (&a.1, &a.0).cmp(&(&b.1, &b.0)));
        routes
    }
}

/// Turns recording of the storage metrics (partition traffic, fsync and commit
/// histograms) on or off for the whole process: `[metrics] enabled = false`, and the
/// benchmark that measures what recording costs.
pub fn set_recording(on: bool) {
    omnibus_storage::metrics::set_recording(on);
}

/// Whether storage metrics are recorded (and `/metrics` is served).
pub fn recording() -> bool {
    omnibus_storage::metrics::recording()
}

impl crate::Engine {
    /// The counters front doors record into.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Every metric, in the OpenMetrics text format. Gauges are computed now from memory
    /// (see the module doc); the work is moved off the async runtime, since it reads
    /// `/proc` and asks the file system for free space.
    pub async fn render_metrics(self: &Arc<Self>) -> crate::Result<String> {
        let engine = self.clone();
        tokio::task::spawn_blocking(move || {
            let last = &engine.metrics.last_scrape_bytes;
            let capacity = last.load(Ordering::Relaxed);
            let text = collect::render(engine.clone(), capacity + capacity / 8).map_err(|_| {
                crate::EngineError::Internal("metrics could not be encoded".to_owned())
            })?;
            last.store(text.len(), Ordering::Relaxed);
            Ok(text)
        })
        .await
        .map_err(|e| crate::EngineError::Internal(format!("metrics task failed: {e}")))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_guard_counts_the_close_when_dropped() {
        let metrics = Metrics::default();
        let kafka = metrics.door(Door::Kafka);
        let first = kafka.open_connection();
        let second = kafka.open_connection();
        drop(first);
        kafka.request();
        kafka.error();
        let traffic = kafka.snapshot();
        assert_eq!(traffic.connections_opened, 2);
        assert_eq!(traffic.connections_closed, 1);
        assert_eq!((traffic.requests, traffic.errors), (1, 1));
        drop(second);
        assert_eq!(metrics.door(Door::Http).snapshot(), DoorTraffic::default());
    }

    #[test]
    fn api_routes_are_counted_by_status_class_and_bounded() {
        let metrics = Metrics::default();
        metrics.api_route("GET", "/v1/queues/{queue}").answered(200);
        metrics.api_route("GET", "/v1/queues/{queue}").answered(404);
        metrics.api_route("GET", "/v1/queues/{queue}").answered(204);
        let routes = metrics.api_routes();
        assert_eq!(routes.len(), 1);
        assert_eq!(routes[0].2.snapshot(), vec![("2xx", 2), ("4xx", 1)]);
        for index in 0..API_ROUTES_MAX + 10 {
            metrics
                .api_route("GET", &format!("/raw/{index}"))
                .answered(200);
        }
        let routes = metrics.api_routes();
        assert_eq!(routes.len(), API_ROUTES_MAX + 1, "the rest share 'other'");
        let other = routes
            .iter()
            .find(|(_, route, _)| route == "other")
            .unwrap();
        assert_eq!(other.2.snapshot(), vec![("2xx", 11)]);
    }
}
