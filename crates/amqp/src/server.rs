//! The accept loop: one session task per connection, at most `connections_max` at once, until
//! shutdown — then no new connections, and every session is closed with 320
//! CONNECTION_FORCED.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use omnibus_engine::metrics::Door;
use omnibus_engine::Engine;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

use crate::config::AmqpConfig;
use crate::handlers::Shared;
use crate::session;

/// Serves AMQP 0-9-1 on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    engine: Arc<Engine>,
    config: AmqpConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let alarm = crate::handlers::watch_alarm(engine.clone());
    let shared = Arc::new(Shared {
        engine,
        alarm,
        rotations: Default::default(),
        config,
        owners: Mutex::new(HashMap::new()),
        replies: Mutex::new(HashMap::new()),
    });
    // Durable queues this door declared before a restart: their flags and door-kept
    // arguments (single active consumer, the x-expires clock) come back.
    crate::handlers::declared::restore_all(&shared);
    let slots = Arc::new(Semaphore::new(shared.config.connections_max));
    // Connections, refusals and the errors that end a connection, for /metrics.
    let door = shared.engine.metrics().door(Door::Amqp).clone();
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
                tracing::warn!("accepting an AMQP connection failed: {error}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            door.refuse_connection();
            tracing::warn!(
                peer = %address,
                "refusing an AMQP connection: {} are open (connections_max)",
                shared.config.connections_max
            );
            // Before the handshake there is no channel for a reply code: the socket closes.
            sessions.spawn(async move {
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
            if let Err(error) = session::run(stream, shared, id, address, stopped).await {
                connection.error();
                tracing::debug!(peer = %address, id, "AMQP connection closed: {error}");
            }
            drop(permit);
        });
    }
    let _ = stop.send(true);
    while sessions.join_next().await.is_some() {}
    Ok(())
}
