//! The AMQP listener: the shared accept loop (`omnibus-listener`: at most `connections_max`
//! connections) with a session per connection; at shutdown, no new connections, and every
//! session is closed with 320 CONNECTION_FORCED.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use omnibus_engine::{metrics, Engine};
use omnibus_listener::Door;
use tokio::net::TcpListener;

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
    let door = Door::new(
        "AMQP",
        shared.config.connections_max,
        shared.engine.metrics().door(metrics::Door::Amqp).clone(),
    );
    // Past the bound the socket closes: before the handshake there is no channel for a reply
    // code.
    omnibus_listener::serve(listener, door, shutdown, |accepted| {
        session::run(accepted, shared.clone())
    })
    .await;
    Ok(())
}
