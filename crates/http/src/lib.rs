//! The HTTP/JSON front door of Omnibus: streams, publishing, fetching with long-poll, consumer
//! group offsets, queues (messages, leases, dead letters), background jobs with Server-Sent
//! Events, and an OpenAPI document, served with axum.
//!
//! Layers, top to bottom: [`router`] names every route (one table, which the OpenAPI test
//! checks) and bounds request bodies; `extract` wraps axum's extractors so every rejection is a
//! JSON error; `handlers/<area>.rs` holds one file per API area; `json` translates record JSON
//! to and from the engine's types (`json_messages` and `json_jobs` do the same for queue
//! messages and jobs), with `bounded` keeping counted inputs (records, headers) within their
//! limits while they are parsed; `error` renders every failure as
//! `{"error":{"code","message"}}`. This crate calls only `omnibus-engine` (and the shared
//! vocabulary in `omnibus-types`); it must never call storage, and the engine never sees an
//! HTTP type.
#![forbid(unsafe_code)]

mod bounded;
mod counting;
mod dashboard;
mod error;
mod extract;
mod handlers;
mod json;
mod json_jobs;
mod json_messages;
mod metrics;
mod router;
mod threads;

use std::future::Future;
use std::sync::Arc;

use omnibus_engine::Engine;

pub use error::ApiError;
pub use router::router;

/// Limits of the HTTP front door. Everything else (record size, header count, wait time) is
/// bounded by the engine's configuration and `omnibus_types::limits`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpConfig {
    /// Largest request body; larger requests get 413 before the body is read.
    pub body_bytes_max: usize,
    /// Ceiling for `max_records` on a fetch.
    pub fetch_records_max: usize,
    /// Most Server-Sent Event streams open at once; one more gets 503 `unavailable`.
    pub sse_streams_max: usize,
    /// Threads of its own to serve connections on, each with a single-threaded runtime
    /// (`threads.rs`); 0 serves them on the caller's runtime. Default:
    /// [`default_io_threads`].
    pub io_threads: usize,
}

/// Cores per HTTP thread of the default.
pub const CORES_PER_IO_THREAD: usize = 4;

/// The default number of HTTP threads: one per [`CORES_PER_IO_THREAD`] cores, at least one.
///
/// Why threads of their own by default: a worker taking one job at a time makes a small
/// request per job, and on the shared work-stealing runtime most of what such a request cost
/// the broker was waking threads (a futex wake and a context switch when the wake crossed
/// threads, and the other worker parking again). On the 2-core benchmark machine one thread
/// cut the broker's CPU per job by a quarter on the one-request loop and by a tenth on the
/// two-request loop, with batched jobs and enqueues level (docs/benchmarks.md). Several
/// threads on 2 cores were worse than none. Machines with more cores get more threads, so the
/// door is not held to one core; that ratio is a choice, measured on 2 cores only.
pub fn default_io_threads() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |cores| cores.get());
    (cores / CORES_PER_IO_THREAD).max(1)
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            body_bytes_max: 64 * 1024 * 1024,
            fetch_records_max: 10_000,
            sse_streams_max: 10_000,
            io_threads: default_io_threads(),
        }
    }
}

/// Serves the API on `listener` until `shutdown` completes, then stops accepting connections
/// and waits for in-flight requests (a long-poll fetch waits at most its `wait_ms`). Open
/// event streams are ended at that moment, since they would otherwise never finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    engine: Arc<Engine>,
    config: HttpConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (closing, closing_signal) = tokio::sync::watch::channel(false);
    let counters = engine
        .metrics()
        .door(omnibus_engine::metrics::Door::Http)
        .clone();
    let app = router::router_closing_on(engine, config, closing_signal);
    if config.io_threads > 0 {
        return threads::serve(
            listener,
            app,
            config.io_threads,
            shutdown,
            closing,
            counters,
        )
        .await;
    }
    let listener = metrics::CountingListener { listener, counters };
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            let _ = closing.send(true);
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_get_threads_of_their_own_by_default_one_per_four_cores() {
        let cores = std::thread::available_parallelism().map_or(1, |cores| cores.get());
        let threads = HttpConfig::default().io_threads;
        assert!(threads >= 1, "the default shares the broker's runtime");
        assert_eq!(threads, (cores / CORES_PER_IO_THREAD).max(1));
    }
}
