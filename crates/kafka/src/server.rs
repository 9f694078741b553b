//! The accept loop: one session task per connection, at most `connections_max` at once, until
//! shutdown — then no new connections, and each session finishes the request it is handling.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use omnibus_engine::metrics::Door;
use omnibus_engine::Engine;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

use crate::config::KafkaConfig;
use crate::handlers::{Broker, Peer};
use crate::session::Session;

/// Serves the Kafka protocol on `listener` until `shutdown` completes, then stops accepting
/// and waits for every session to finish the request it is handling (a long-poll fetch waits
/// at most its `max_wait_ms`). Groups and idempotent producers use the engine's coordinator
/// and producer registry, which every front door shares.
pub async fn serve(
    listener: TcpListener,
    engine: Arc<Engine>,
    config: KafkaConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let local = listener.local_addr()?;
    let host = advertised_host(&config, local);
    let port = config.advertised_port.unwrap_or(local.port()) as i32;
    let broker = Arc::new(Broker {
        coordinator: engine.coordinator().clone(),
        producers: engine.producers().clone(),
        engine,
        host,
        port,
        config,
    });
    let slots = Arc::new(Semaphore::new(broker.config.connections_max));
    // Connections, refusals and the errors that end a connection, for /metrics.
    let door = broker.engine.metrics().door(Door::Kafka).clone();
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
        let (stream, address) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors and the like: the listener itself is fine.
                tracing::warn!("accepting a Kafka connection failed: {error}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            door.refuse_connection();
            tracing::warn!(
                peer = %address,
                "refusing a Kafka connection: {} are open (connections_max)",
                broker.config.connections_max
            );
            continue;
        };
        // Small responses (acks, heartbeats) must not wait for Nagle's algorithm.
        let _ = stream.set_nodelay(true);
        let peer = Peer {
            client_host: format!("/{}", address.ip()),
        };
        let session = Session::new(stream, broker.clone(), peer);
        let stopped = stopped.clone();
        let connection = door.open_connection();
        sessions.spawn(async move {
            if let Err(error) = session.run(stopped).await {
                connection.error();
                tracing::debug!(peer = %address, "Kafka connection closed: {error}");
            }
            drop(permit);
        });
    }
    let _ = stop.send(true);
    while sessions.join_next().await.is_some() {}
    Ok(())
}

fn advertised_host(config: &KafkaConfig, local: SocketAddr) -> String {
    if let Some(host) = &config.advertised_host {
        return host.clone();
    }
    match local.ip() {
        ip if ip.is_unspecified() => {
            tracing::warn!(
                "the Kafka listener is bound to every interface; advertising \"localhost\" \
                 (set kafka.advertised_host for remote clients)"
            );
            "localhost".to_string()
        }
        IpAddr::V6(ip) => ip.to_string(),
        IpAddr::V4(ip) => ip.to_string(),
    }
}
