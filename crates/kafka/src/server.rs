//! The Kafka listener: the shared accept loop (`omnibus-listener`: at most `connections_max`
//! connections; at shutdown each session finishes the request it is handling) with a
//! session per connection.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use omnibus_engine::{metrics, Engine};
use omnibus_listener::Door;
use tokio::net::TcpListener;

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
    let door = Door::new(
        "Kafka",
        broker.config.connections_max,
        broker.engine.metrics().door(metrics::Door::Kafka).clone(),
    );
    // Past the bound the socket closes: Kafka has no error to send before a request.
    omnibus_listener::serve(listener, door, shutdown, |accepted| {
        let peer = Peer {
            client_host: format!("/{}", accepted.address.ip()),
        };
        Session::new(accepted.stream, broker.clone(), peer).run(accepted.stopped)
    })
    .await;
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
