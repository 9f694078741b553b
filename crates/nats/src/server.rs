//! The accept loop: one session task per connection, at most `connections_max` at once, until
//! shutdown — then no new connections, and every session stops.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use omnibus_engine::metrics::Door;
use omnibus_engine::Engine;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

use crate::config::NatsConfig;
use crate::handlers::Shared;
use crate::session;

/// Serves the NATS core protocol on `listener` until `shutdown` completes, then stops
/// accepting and ends every session. Subjects route through the engine's live router, which
/// every front door shares.
pub async fn serve(
    listener: TcpListener,
    engine: Arc<Engine>,
    config: NatsConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let local = listener.local_addr()?;
    let shared = Arc::new(Shared {
        engine,
        server_id: server_id(),
        host: local.ip().to_string(),
        port: local.port(),
        config,
        jetstream: crate::jetstream::JetStream::default(),
    });
    shared.jetstream.resume_push_consumers(&shared.engine);
    tokio::spawn(crate::jetstream::reaper::run(Arc::downgrade(&shared)));
    let slots = Arc::new(Semaphore::new(shared.config.connections_max));
    // Connections, refusals and the errors that end a connection, for /metrics.
    let door = shared.engine.metrics().door(Door::Nats).clone();
    let next_client_id = AtomicU64::new(1);
    let (stop, stopped) = watch::channel(false);
    let mut sessions = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
            // Reap finished sessions so the set does not grow with every connection.
            Some(_) = sessions.join_next(), if !sessions.is_empty() => continue,
        };
        let (mut stream, address) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors and the like: the listener itself is fine.
                tracing::warn!("accepting a NATS connection failed: {error}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            door.refuse_connection();
            tracing::warn!(
                peer = %address,
                "refusing a NATS connection: {} are open (connections_max)",
                shared.config.connections_max
            );
            sessions.spawn(async move {
                let refusal = stream.write_all(b"-ERR 'maximum connections exceeded'\r\n");
                let _ = tokio::time::timeout(Duration::from_secs(1), refusal).await;
            });
            continue;
        };
        // Small messages and PONGs must not wait for Nagle's algorithm.
        let _ = stream.set_nodelay(true);
        let client_id = next_client_id.fetch_add(1, Ordering::Relaxed);
        let shared = shared.clone();
        let stopped = stopped.clone();
        let connection = door.open_connection();
        sessions.spawn(async move {
            if let Err(error) = session::run(stream, shared, client_id, address, stopped).await {
                connection.error();
                tracing::debug!(peer = %address, client_id, "NATS connection closed: {error}");
            }
            drop(permit);
        });
    }
    let _ = stop.send(true);
    while sessions.join_next().await.is_some() {}
    Ok(())
}

/// A server id in nats-server's shape (upper-case letters and digits), unique per start.
fn server_id() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos());
    format!("OMNIBUS{:X}{:X}", nanos, std::process::id())
}
