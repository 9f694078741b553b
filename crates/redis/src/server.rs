//! The accept loop: one session task per connection, at most `connections_max` at once,
//! until shutdown.

use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use omnibus_engine::metrics::Door;
use omnibus_engine::Engine;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

use crate::config::RedisConfig;
use crate::session;

/// What every session of one listener shares.
pub(crate) struct Shared {
    pub(crate) engine: Arc<Engine>,
    pub(crate) config: RedisConfig,
    pub(crate) started: Instant,
    pub(crate) connected: AtomicUsize,
    pub(crate) tcp_port: u16,
    /// One writer task per Redis stream changed through this listener.
    pub(crate) streams: crate::streams::writer::Writers,
    /// The entries XDEL removed, per stream.
    pub(crate) deleted: Arc<crate::streams::deleted::DeletedEntries>,
    /// The channels and patterns Redis clients subscribe to (PUBSUB).
    pub(crate) pubsub: Arc<crate::pubsub::Registry>,
    /// Offsets of the IDs groups just delivered or claimed, for XACK.
    pub(crate) known_ids: crate::streams::known_ids::KnownIds,
}

/// Serves RESP on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    engine: Arc<Engine>,
    config: RedisConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let tcp_port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    let deleted = Arc::new(crate::streams::deleted::DeletedEntries::default());
    let shared = Arc::new(Shared {
        streams: crate::streams::writer::Writers::new(engine.clone(), deleted.clone()),
        deleted,
        known_ids: Default::default(),
        pubsub: Default::default(),
        engine,
        config,
        started: Instant::now(),
        connected: AtomicUsize::new(0),
        tcp_port,
    });
    let slots = Arc::new(Semaphore::new(shared.config.connections_max));
    // Connections, refusals and the errors that end a connection, for /metrics.
    let door = shared.engine.metrics().door(Door::Redis).clone();
    let next_connection = AtomicU64::new(1);
    let (stop, stopped) = watch::channel(false);
    let mut sessions = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
            Some(_) = sessions.join_next(), if !sessions.is_empty() => continue,
        };
        let (mut stream, address) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!("accepting a Redis connection failed: {error}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            door.refuse_connection();
            tracing::warn!(
                peer = %address,
                "refusing a Redis connection: {} are open (connections_max)",
                shared.config.connections_max
            );
            // Redis's words when maxclients is reached.
            sessions.spawn(async move {
                let _ = stream
                    .write_all(b"-ERR max number of clients reached\r\n")
                    .await;
                let _ = stream.shutdown().await;
            });
            continue;
        };
        let _ = stream.set_nodelay(true);
        let id = next_connection.fetch_add(1, Ordering::Relaxed);
        let shared = shared.clone();
        let stopped = stopped.clone();
        let connection = door.open_connection();
        sessions.spawn(async move {
            shared.connected.fetch_add(1, Ordering::Relaxed);
            if let Err(error) = session::run(stream, shared.clone(), id, address, stopped).await {
                connection.error();
                tracing::debug!(peer = %address, id, "Redis connection closed: {error}");
            }
            shared.connected.fetch_sub(1, Ordering::Relaxed);
            drop(permit);
        });
    }
    let _ = stop.send(true);
    while sessions.join_next().await.is_some() {}
    // The stream writers hold the engine: they finish what they were given, then end.
    shared.streams.close().await;
    Ok(())
}
