//! The NATS listener: the shared accept loop (`omnibus-listener`: at most `connections_max`
//! connections, a connection past it told nats-server's `-ERR 'maximum connections
//! exceeded'`) with a session per connection; at shutdown every session stops.

use std::future::Future;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use omnibus_engine::{metrics, Engine};
use omnibus_listener::Door;
use tokio::net::TcpListener;

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
    let door = Door::new(
        "NATS",
        shared.config.connections_max,
        shared.engine.metrics().door(metrics::Door::Nats).clone(),
    )
    .refusal(b"-ERR 'maximum connections exceeded'\r\n");
    omnibus_listener::serve(listener, door, shutdown, |accepted| {
        session::run(accepted, shared.clone())
    })
    .await;
    Ok(())
}

/// A server id in nats-server's shape (upper-case letters and digits), unique per start.
fn server_id() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos());
    format!("OMNIBUS{:X}{:X}", nanos, std::process::id())
}
