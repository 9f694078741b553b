//! The Redis listener: the shared accept loop (`omnibus-listener`: at most `connections_max`
//! connections, a connection past it told Redis's `-ERR max number of clients reached`) with a
//! session per connection, until shutdown.
//!
//! Sessions run on runtimes of the door's own (`RedisConfig::io_threads`), each with one
//! worker thread, handed out in turn; a session's stream writers and their
//! acknowledgements, which it spawns, run there too. Why: a pipelined XADD's reply waits for
//! its group commit, and on the broker's shared work-stealing runtime the wake-ups between
//! the session, the stream's writer and the acknowledgement crossed threads (a futex wake and
//! a context switch each) several times per commit. On threads of its own the door spent
//! ~15 % less CPU per XADD, and its replies came back sooner, so more XADDs shared each fsync
//! (docs/benchmarks.md, 2026-12-05). A one-worker multi-thread runtime,
//! not a current-thread one: the latter, driven by a thread parked in `block_on`, saved the
//! CPU but not the time (its wake-ups from the fsync thread came back slower). As for the HTTP
//! door's threads, the runtimes live as long as the process: a task the engine spawned from a
//! command (a lazy commit's timer) must outlive the listener.

use std::future::Future;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Instant;

use omnibus_engine::{metrics, Engine};
use omnibus_listener::Door;
use tokio::net::TcpListener;

use crate::config::RedisConfig;
use crate::session;

/// What every session of one listener shares.
pub(crate) struct Shared {
    pub(crate) engine: Arc<Engine>,
    pub(crate) config: RedisConfig,
    pub(crate) started: Instant,
    pub(crate) tcp_port: u16,
    /// The address the listener is bound to (CONFIG GET bind).
    pub(crate) bind: String,
    /// One writer task per Redis stream changed through this listener.
    pub(crate) streams: crate::streams::writers::Writers,
    /// The entries XDEL removed, per stream.
    pub(crate) deleted: Arc<crate::streams::deleted::DeletedEntries>,
    /// The channels and patterns Redis clients subscribe to (PUBSUB).
    pub(crate) pubsub: Arc<crate::pubsub::Registry>,
    /// Offsets of the IDs groups just delivered or claimed, for XACK.
    pub(crate) known_ids: crate::streams::known_ids::KnownIds,
    /// Blocked XREADGROUP readers in line per group, served first blocked, first served.
    pub(crate) group_lines: crate::streams::turns::GroupLines,
    /// INFO's `run_id`: 40 hex digits, new each time the listener starts.
    pub(crate) run_id: String,
    /// Connections waiting in a BLOCK read (INFO's `blocked_clients`).
    pub(crate) blocked: AtomicUsize,
    /// Lua scripts by SHA-1 (SCRIPT LOAD, EVALSHA).
    pub(crate) scripts: crate::scripting::Scripts,
    /// The connections in MONITOR mode.
    pub(crate) monitors: crate::monitor::Monitors,
    /// Every connection (CLIENT LIST, CLIENT KILL).
    pub(crate) clients: Arc<crate::clients::Clients>,
    /// The commands that ran long (SLOWLOG).
    pub(crate) slowlog: crate::slowlog::SlowLog,
    /// Calls, time and errors per command (INFO commandstats, errorstats).
    pub(crate) command_stats: crate::command_stats::CommandStats,
    /// The keyspace notification classes turned on.
    pub(crate) notifications: Arc<crate::notify::Notifications>,
    /// The script libraries' functions (FUNCTION LOAD, FCALL).
    pub(crate) functions: crate::scripting::Functions,
    /// The keys tracking connections read (CLIENT TRACKING).
    pub(crate) tracking: Arc<crate::tracking::Tracking>,
    /// CLIENT PAUSE's hold on commands.
    pub(crate) pause: crate::pause::Pause,
    /// Keys deleted at their deadline since the start or CONFIG RESETSTAT (INFO's
    /// `expired_keys`): the keyspace's, counted by the expirations' publisher, and streams',
    /// by their writers.
    pub(crate) expired_keys: Arc<std::sync::atomic::AtomicU64>,
    /// Hash fields deleted at their deadline since the start or CONFIG RESETSTAT (INFO's
    /// `expired_subkeys`, Redis 7.4), counted by the expirations' publisher.
    pub(crate) expired_subkeys: std::sync::atomic::AtomicU64,
    /// CONFIG SET list-compress-depth: kept and answered, changes nothing (`tuning.rs`).
    pub(crate) list_compress_depth: std::sync::atomic::AtomicI64,
}

/// A run id as Redis makes one: 40 random hex digits (from the standard library's random
/// hash keys, which the OS seeds).
fn new_run_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut id = String::with_capacity(48);
    for part in 0..3u64 {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u64(part);
        id.push_str(&format!("{:016x}", hasher.finish()));
    }
    id.truncate(40);
    id
}

/// Serves RESP on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    engine: Arc<Engine>,
    config: RedisConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let tcp_port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    let bind = listener
        .local_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_default();
    let deleted = Arc::new(crate::streams::deleted::DeletedEntries::default());
    let deadlines = Arc::new(crate::streams::expiry::Deadlines::load(&engine));
    let slowlog =
        crate::slowlog::SlowLog::new(config.slowlog_slower_than_us, config.slowlog_max_len);
    let notifications = Arc::new(crate::notify::Notifications::new(
        &config.notify_keyspace_events,
    ));
    let tracking = Arc::new(crate::tracking::Tracking::default());
    let clients = Arc::new(crate::clients::Clients::default());
    let expired_keys = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let shared = Arc::new(Shared {
        slowlog,
        command_stats: Default::default(),
        notifications: notifications.clone(),
        functions: Default::default(),
        tracking: tracking.clone(),
        pause: Default::default(),
        expired_keys: expired_keys.clone(),
        expired_subkeys: Default::default(),
        list_compress_depth: Default::default(),
        streams: crate::streams::writers::Writers::new(
            engine.clone(),
            deleted.clone(),
            deadlines,
            crate::streams::writers::Observers {
                notifications,
                tracking,
                clients: clients.clone(),
                expired_keys,
            },
        ),
        deleted,
        known_ids: Default::default(),
        group_lines: Default::default(),
        pubsub: Default::default(),
        engine,
        config,
        started: Instant::now(),
        tcp_port,
        bind,
        run_id: new_run_id(),
        blocked: AtomicUsize::new(0),
        scripts: Default::default(),
        monitors: Default::default(),
        clients,
    });
    let door = Door::new(
        "Redis",
        shared.config.connections_max,
        shared.engine.metrics().door(metrics::Door::Redis).clone(),
    )
    // Redis's words when maxclients is reached.
    .refusal(b"-ERR max number of clients reached\r\n")
    .threads(omnibus_listener::threads(
        "omnibus-redis",
        shared.config.io_threads,
    )?);
    // Deletes stream keys at their deadlines (string keys expire in the engine's keyspace).
    let sweeper = tokio::spawn(crate::streams::expiry::sweep(
        shared.clone(),
        door.stopped(),
    ));
    // Publishes expired keys for the notification classes turned on.
    let notifier = tokio::spawn(crate::notify::publish_expirations(
        shared.clone(),
        door.stopped(),
    ));
    // Sessions stop through their entry among the clients (CLIENT KILL closes one there).
    let closer = tokio::spawn({
        let (shared, mut stopped) = (shared.clone(), door.stopped());
        async move {
            let _ = stopped.wait_for(|stop| *stop).await;
            shared.clients.close_all();
        }
    });
    omnibus_listener::serve(listener, door, shutdown, |accepted| {
        session::run(accepted, shared.clone())
    })
    .await;
    let _ = sweeper.await;
    let _ = notifier.await;
    let _ = closer.await;
    // The stream writers hold the engine: they finish what they were given, then end.
    shared.streams.close().await;
    Ok(())
}
