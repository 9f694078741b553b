//! Serving connections on threads of their own (`HttpConfig::io_threads` > 0).
//!
//! Why: a worker taking one job at a time makes one small request per job, so the broker's
//! cost per job is mostly waking the task that owns the connection. On tokio's shared,
//! work-stealing runtime that wake often crosses threads (a futex wake and a context switch
//! per request), and the reactor is polled by whichever worker is free. Here each connection
//! lives on one thread for its whole life: that thread's own single-threaded runtime owns its
//! socket, so a readable socket wakes the thread that will serve it, nothing else.
//!
//! The accept loop runs on the caller's runtime and hands each socket to the threads in
//! turn (round robin: a few busy connections spread evenly, which `SO_REUSEPORT` hashing
//! would not guarantee). Engine work started by a request (a commit, a timer, a spawned task)
//! runs on the thread that started it; the engine's own tasks stay where they are. The
//! threads live as long as the process: a task the engine spawned from a request (a lazy
//! commit's timer, say) must outlive the listener, so their runtimes are never dropped.
//!
//! Shutdown is the same as `axum::serve`'s graceful one: no new connections, every connection
//! finishes its request in flight and closes, and `serve` returns once all are gone — and
//! once every thread has dropped its copy of the router, which holds the engine: a caller that
//! shuts the engine down and opens it again in the same process (tests, embedders) would
//! otherwise find its state store still locked by the engine the threads kept alive.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::Router;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use omnibus_engine::metrics::{ConnectionGuard, DoorCounters};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch, Notify};

/// An accepted socket on its way to a thread, counted open in the door's metrics.
type Arrival = (std::net::TcpStream, ConnectionGuard);

/// Connections open on the threads, and a wake-up when the last one closes.
#[derive(Default)]
struct Open {
    count: AtomicUsize,
    all_closed: Notify,
}

/// Held by a connection's task; counts it open until dropped.
struct OpenGuard(Arc<Open>);

impl OpenGuard {
    fn new(open: &Arc<Open>) -> OpenGuard {
        open.count.fetch_add(1, Ordering::SeqCst);
        OpenGuard(open.clone())
    }
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.all_closed.notify_waiters();
        }
    }
}

/// Accepts on `listener` and serves `app` on `threads` threads until `shutdown` completes;
/// `closing` is told first (it ends event streams), then connections finish and close.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    threads: usize,
    shutdown: impl Future<Output = ()> + Send + 'static,
    closing: watch::Sender<bool>,
    counters: Arc<DoorCounters>,
) -> std::io::Result<()> {
    let open = Arc::new(Open::default());
    let (finish, finishing) = watch::channel(false);
    let mut handoffs = Vec::with_capacity(threads);
    let mut released = Vec::with_capacity(threads);
    for index in 0..threads {
        let (handoff, arrivals) = mpsc::unbounded_channel::<Arrival>();
        let (release, on_release) = tokio::sync::oneshot::channel::<()>();
        let app = app.clone();
        let finishing = finishing.clone();
        let open = open.clone();
        std::thread::Builder::new()
            .name(format!("omnibus-http-{index}"))
            .spawn(move || serve_thread(arrivals, app, finishing, open, release))?;
        handoffs.push(handoff);
        released.push(on_release);
    }
    // Only the threads hold the router from here on.
    drop(app);
    tokio::pin!(shutdown);
    let mut next = 0usize;
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(error) => {
                // Out of file descriptors and the like: wait a moment rather than spin.
                tracing::warn!("accepting an HTTP connection failed: {error}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        // Small requests and answers: do not let Nagle hold an answer back for an ACK.
        let _ = stream.set_nodelay(true);
        let Ok(stream) = stream.into_std() else {
            continue;
        };
        // Counted open from here; closed when its connection's task drops the guard.
        let arrival = (stream, counters.open_connection());
        if handoffs[next % threads].send(arrival).is_err() {
            return Err(std::io::Error::other("an HTTP thread has stopped"));
        }
        next = next.wrapping_add(1);
    }
    drop(listener);
    let _ = closing.send(true);
    let _ = finish.send(true);
    loop {
        let all_closed = open.all_closed.notified();
        if open.count.load(Ordering::SeqCst) == 0 {
            break;
        }
        all_closed.await;
    }
    // No more arrivals: each thread drops its router and says so.
    drop(handoffs);
    for on_release in released {
        // An error: that thread has ended, its router with it.
        let _ = on_release.await;
    }
    Ok(())
}

/// One thread: a single-threaded runtime serving the connections handed to it.
fn serve_thread(
    mut arrivals: mpsc::UnboundedReceiver<Arrival>,
    app: Router,
    finishing: watch::Receiver<bool>,
    open: Arc<Open>,
    release: tokio::sync::oneshot::Sender<()>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            // Its receiver is dropped with it: the accept loop sees the send fail.
            tracing::error!("cannot start an HTTP thread's runtime: {error}");
            return;
        }
    };
    runtime.block_on(async move {
        while let Some((stream, counted)) = arrivals.recv().await {
            let Ok(stream) = TcpStream::from_std(stream) else {
                continue;
            };
            let guard = OpenGuard::new(&open);
            tokio::spawn(serve_connection(
                stream,
                app.clone(),
                finishing.clone(),
                (guard, counted),
            ));
        }
        // Connections are closed (their tasks held the other copies).
        drop(app);
        let _ = release.send(());
        // The listener is gone, but tasks the engine spawned from requests may still be
        // running here (see the module comment): the runtime stays up with the process.
        std::future::pending::<()>().await;
    });
}

async fn serve_connection(
    stream: TcpStream,
    app: Router,
    mut finishing: watch::Receiver<bool>,
    _open: (OpenGuard, ConnectionGuard),
) {
    let service = TowerToHyperService::new(app);
    let connection =
        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    let mut finish_asked = false;
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!("HTTP connection ended: {error}");
                }
                return;
            }
            changed = finishing.wait_for(|finish| *finish), if !finish_asked => {
                // Finish the request in flight (if any), then close.
                finish_asked = true;
                if changed.is_ok() {
                    connection.as_mut().graceful_shutdown();
                }
            }
        }
    }
}
