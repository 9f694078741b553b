//! The accept loop every TCP front door shares (Kafka, NATS, AMQP and Redis; the HTTP door is
//! served by axum): one session task per connection, at most `connections_max` at once,
//! until shutdown — then no new connections, and each session finishes what it is handling.
//!
//! What the four loops had each written for themselves, and now do the same way:
//! - a connection past `connections_max` is counted as refused and closed, after the
//!   protocol's own words when it has any before a handshake (`Door::refusal`);
//! - an error from `accept` (out of file descriptors and the like) is logged and retried
//!   after 10 ms: the listener itself is fine;
//! - every accepted socket gets `TCP_NODELAY` (acks, heartbeats and small replies must not
//!   wait for Nagle's algorithm), an id (1, 2, 3… per listener) and a guard that counts it
//!   open and closed, and an error it ends with, in the door's counters (/metrics);
//! - sessions may be handed, in turn by id, to runtimes of the door's own (`threads`);
//! - finished sessions are reaped as the loop goes, so its task set does not grow with every
//!   connection; at shutdown every session sees `stopped` turn true and is waited for.

use std::fmt::Display;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use omnibus_engine::metrics::DoorCounters;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Handle;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

/// How long a refused connection is given to take the refusal's bytes before it is closed.
const REFUSAL_WRITE_MAX: Duration = Duration::from_secs(1);

/// One front door's listener: what the accept loop needs to know about it.
pub struct Door {
    /// The protocol's name in log lines ("Kafka", "AMQP"…).
    name: &'static str,
    connections_max: usize,
    counters: Arc<DoorCounters>,
    refusal: &'static [u8],
    threads: Vec<Handle>,
    stop: watch::Sender<bool>,
}

impl Door {
    /// A door called `name` in log lines, holding at most `connections_max` connections,
    /// counted in `counters`.
    pub fn new(name: &'static str, connections_max: usize, counters: Arc<DoorCounters>) -> Door {
        Door {
            name,
            connections_max,
            counters,
            refusal: b"",
            threads: Vec::new(),
            stop: watch::channel(false).0,
        }
    }

    /// Bytes written to a connection refused at `connections_max` before it is closed: the
    /// protocol's error, for protocols that can say one before a handshake (NATS's `-ERR`,
    /// Redis's). Without them the socket is closed at once.
    pub fn refusal(mut self, bytes: &'static [u8]) -> Door {
        self.refusal = bytes;
        self
    }

    /// Runtimes the sessions are handed to in turn, by connection id (see [`threads`]);
    /// none: they run on the runtime `serve` runs on.
    pub fn threads(mut self, threads: Vec<Handle>) -> Door {
        self.threads = threads;
        self
    }

    /// Turns true when the listener stops: for the door's own background tasks, which end
    /// with its sessions.
    pub fn stopped(&self) -> watch::Receiver<bool> {
        self.stop.subscribe()
    }
}

/// A connection the door took, for its session.
pub struct Accepted {
    pub stream: TcpStream,
    pub address: SocketAddr,
    /// 1, 2, 3… in the order the listener accepted them.
    pub id: u64,
    /// Turns true when the listener stops: finish the request in hand, then end.
    pub stopped: watch::Receiver<bool>,
}

/// Accepts connections on `listener` until `shutdown` completes, running `session(accepted)`
/// for each as a task of its own (on the door's threads, if it has any); then stops
/// accepting, tells every session (`stopped`), and returns once they have all ended. A
/// session that ends with an error counts one in the door's counters and logs it (debug:
/// clients that go away are ordinary).
pub async fn serve<S, F, E>(
    listener: TcpListener,
    door: Door,
    shutdown: impl Future<Output = ()>,
    mut session: S,
) where
    S: FnMut(Accepted) -> F,
    F: Future<Output = Result<(), E>> + Send + 'static,
    E: Display,
{
    let slots = Arc::new(Semaphore::new(door.connections_max));
    let mut next_id = 1u64;
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
                tracing::warn!("accepting a {} connection failed: {error}", door.name);
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            door.counters.refuse_connection();
            tracing::warn!(
                peer = %address,
                "refusing a {} connection: {} are open (connections_max)",
                door.name,
                door.connections_max
            );
            sessions.spawn(refuse(stream, door.refusal));
            continue;
        };
        let _ = stream.set_nodelay(true);
        let id = next_id;
        next_id += 1;
        let thread =
            (!door.threads.is_empty()).then(|| &door.threads[id as usize % door.threads.len()]);
        let stream = match thread {
            None => stream,
            Some(thread) => match moved_to(stream, thread) {
                Ok(stream) => stream,
                Err(error) => {
                    tracing::warn!(peer = %address, "cannot hand a {} connection over: {error}", door.name);
                    continue;
                }
            },
        };
        let connection = door.counters.open_connection();
        let name = door.name;
        let run = session(Accepted {
            stream,
            address,
            id,
            stopped: door.stop.subscribe(),
        });
        let task = async move {
            if let Err(error) = run.await {
                connection.error();
                tracing::debug!(peer = %address, id, "{name} connection closed: {error}");
            }
            drop(permit);
        };
        match thread {
            None => sessions.spawn(task),
            Some(thread) => sessions.spawn_on(task, thread),
        };
    }
    let _ = door.stop.send(true);
    while sessions.join_next().await.is_some() {}
}

/// Closes a refused connection, after `refusal`'s bytes if there are any (given at most
/// [`REFUSAL_WRITE_MAX`]: a client that does not read must not hold the task).
async fn refuse(mut stream: TcpStream, refusal: &'static [u8]) {
    if !refusal.is_empty() {
        let _ = tokio::time::timeout(REFUSAL_WRITE_MAX, stream.write_all(refusal)).await;
    }
    let _ = stream.shutdown().await;
}

/// `stream` registered with `thread`'s reactor instead of the current one's, so its
/// wake-ups stay on the thread its session runs on.
fn moved_to(stream: TcpStream, thread: &Handle) -> std::io::Result<TcpStream> {
    let stream = stream.into_std()?;
    let _entered = thread.enter();
    TcpStream::from_std(stream)
}

/// Starts `count` runtimes of one worker thread each, named `{prefix}-0`, `{prefix}-1`…,
/// kept for the life of the process, and returns their handles; none when `count` is 0.
///
/// Kept for ever because a task the engine spawned from a command (a lazy commit's timer)
/// may outlive the listener. One-worker multi-thread runtimes rather than current-thread
/// ones: the latter, driven by a thread parked in `block_on`, came back slower from the
/// fsync thread's wake-ups (the Redis door measured both, docs/benchmarks.md).
pub fn threads(prefix: &str, count: usize) -> std::io::Result<Vec<Handle>> {
    let mut handles = Vec::with_capacity(count);
    for index in 0..count {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name(format!("{prefix}-{index}"))
            .enable_all()
            .build()?;
        handles.push(runtime.handle().clone());
        std::mem::forget(runtime);
    }
    Ok(handles)
}
