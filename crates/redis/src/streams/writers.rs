//! The sessions' side of the stream writers (`writer.rs`): one queue per stream, made with
//! its task the first time a session hands that stream a change, and the stream's ID clock
//! that scripts give IDs out of (`clock.rs`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use omnibus_engine::Engine;
use tokio::sync::{mpsc, oneshot};

use super::clock::Clock;
use super::deleted::DeletedEntries;
use super::expiry::Deadlines;
use super::writer::{refuse, run, Change, Request};
use crate::codec::Reply;
use crate::notify::Notifications;

/// A stream's writer as the sessions see it: its queue and its ID clock.
pub(super) struct Handle {
    pub(super) sender: mpsc::UnboundedSender<Request>,
    pub(super) clock: Arc<Mutex<Clock>>,
}

/// An XADD handed over by a script: its ID (or refusal) as soon as the writer gives it
/// out, and the outcome once it is durable (a closed channel when nothing was appended).
pub(crate) struct Assigned {
    pub(crate) id: oneshot::Receiver<Reply>,
    pub(crate) durable: oneshot::Receiver<Reply>,
}

/// Whom the writers tell of the changes they make: keyspace notifications (the classes on),
/// client-side caches and INFO's count (a stream deleted at its deadline).
pub(crate) struct Observers {
    pub(crate) notifications: Arc<Notifications>,
    pub(crate) tracking: Arc<crate::tracking::Tracking>,
    pub(crate) clients: Arc<crate::clients::Clients>,
    /// INFO's `expired_keys` (stream keys count there too).
    pub(crate) expired_keys: Arc<std::sync::atomic::AtomicU64>,
}

/// The writers of every stream a session changed.
pub(crate) struct Writers {
    engine: Arc<Engine>,
    deleted: Arc<DeletedEntries>,
    deadlines: Arc<Deadlines>,
    /// Whom the writers tell of changes (`Observers`).
    observers: Arc<Observers>,
    senders: Mutex<HashMap<String, Handle>>,
    tasks: Mutex<tokio::task::JoinSet<()>>,
    /// Requests queued for every writer (see [`Writers::has_queued`]).
    queued: Arc<AtomicUsize>,
}

impl Writers {
    pub(crate) fn new(
        engine: Arc<Engine>,
        deleted: Arc<DeletedEntries>,
        deadlines: Arc<Deadlines>,
        observers: Observers,
    ) -> Writers {
        Writers {
            engine,
            deleted,
            deadlines,
            observers: Arc::new(observers),
            senders: Mutex::new(HashMap::new()),
            tasks: Mutex::new(tokio::task::JoinSet::new()),
            queued: Arc::default(),
        }
    }

    pub(super) fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The deadlines of stream keys (`expiry.rs`).
    pub(crate) fn deadlines(&self) -> &Deadlines {
        &self.deadlines
    }

    pub(super) fn handles(&self) -> std::sync::MutexGuard<'_, HashMap<String, Handle>> {
        self.senders.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Ends every writer once it has done what it was given (at shutdown, after the
    /// sessions), so none outlives the listener holding the engine.
    pub(crate) async fn close(&self) {
        self.senders
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        let mut tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|p| p.into_inner()));
        while tasks.join_next().await.is_some() {}
    }

    /// The streams that have a writer (some may not exist yet: XADDs queued to make them).
    pub(crate) fn names(&self) -> Vec<String> {
        self.handles().keys().cloned().collect()
    }

    /// Whether `stream` has a writer: changes may be queued for it even before the stream
    /// exists (a DEL after XADDs of the same pipeline must reach it).
    pub(crate) fn has_writer(&self, stream: &str) -> bool {
        self.senders
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(stream)
    }

    /// Whether `stream`'s writer has changes queued or being applied (an XADD about to make
    /// the stream, an EXPIRE, a DEL): a key command reading the key waits for them.
    pub(crate) fn has_queued(&self, stream: &str) -> bool {
        // Nothing queued anywhere (the usual case for key commands): no lock taken.
        if self.queued.load(Ordering::Acquire) == 0 {
            return false;
        }
        self.handles().get(stream).is_some_and(|handle| {
            handle
                .clock
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .queued
                > 0
        })
    }

    /// Nothing when every change to `stream` queued through its writer is in the log and
    /// durable (the usual case, found without a hop to the writer); otherwise the answer to
    /// a [`Change::Flush`] queued behind them. A held run (EXEC, a script) waits for it
    /// before it reads the stream, so that it sees what was queued before the hold began
    /// (other clients queue nothing during it) and its own XADDs. Appends from other doors
    /// are not waited for unless the writer has work of its own.
    pub(crate) fn flush(&self, stream: &str) -> Option<oneshot::Receiver<Reply>> {
        let idle = {
            let senders = self.handles();
            let handle = senders.get(stream)?;
            let clock = handle.clock.lock().unwrap_or_else(|p| p.into_inner());
            clock.queued == 0 && clock.unenqueued == 0
        };
        // Enqueued and not yet acknowledged: the writer's acknowledgement is still running.
        let acknowledged = || {
            let durable = self.engine().partition_bounds(stream, 0).ok()?.1;
            let given = self.engine().partition_next_offset(stream, 0).ok()?;
            Some(durable >= given)
        };
        if idle && acknowledged().unwrap_or(true) {
            return None;
        }
        Some(self.submit(stream, Change::Flush))
    }

    /// Queues a change to `stream`; the receiver has its reply once it is durable. The queue
    /// is unbounded, but each session waits for its replies after at most
    /// `session/replies.rs`'s `PENDING_REPLIES_MAX` commands, which bounds it by the connection count.
    pub(crate) fn submit(&self, stream: &str, change: Change) -> oneshot::Receiver<Reply> {
        let (answer, reply) = oneshot::channel();
        self.send(
            stream,
            Request {
                change,
                answer,
                assigned: None,
            },
        );
        reply
    }

    /// Queues an XADD whose ID is wanted before it is durable (a script's: it goes on at
    /// once, and its reply waits for the fsync).
    pub(crate) fn submit_early(&self, stream: &str, change: Change) -> Assigned {
        let (answer, durable) = oneshot::channel();
        let (assigned, id) = oneshot::channel();
        self.send(
            stream,
            Request {
                change,
                answer,
                assigned: Some(assigned),
            },
        );
        Assigned { id, durable }
    }

    fn send(&self, stream: &str, mut request: Request) {
        let mut senders = self.handles();
        // The usual case, without allocating the stream's name for a map entry.
        if let Some(handle) = senders.get(stream) {
            match handle.queue(request) {
                None => return,
                Some(returned) => {
                    request = returned;
                    senders.remove(stream);
                }
            }
        }
        for _ in 0..2 {
            let handle = senders.entry(stream.to_string()).or_insert_with(|| {
                let (sender, receiver) = mpsc::unbounded_channel();
                let clock = Arc::new(Mutex::new(Clock {
                    all_queued: self.queued.clone(),
                    ..Clock::default()
                }));
                self.tasks
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .spawn(run(
                        self.engine.clone(),
                        self.deleted.clone(),
                        self.deadlines.clone(),
                        self.observers.clone(),
                        stream.to_string(),
                        clock.clone(),
                        receiver,
                    ));
                Handle { sender, clock }
            });
            match handle.queue(request) {
                None => return,
                // The task ended (a panic): start another.
                Some(returned) => {
                    request = returned;
                    senders.remove(stream);
                }
            }
        }
        let refusal = Reply::error("ERR the stream's writer is not running");
        refuse(request.assigned, request.answer, refusal);
    }
}

impl Handle {
    /// Puts a request in the writer's queue, counted as queued (a script gives out no ID
    /// itself while one is ahead of it); the request back if the writer ended (a panic).
    fn queue(&self, request: Request) -> Option<Request> {
        let mut clock = self.clock.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(mpsc::error::SendError(returned)) = self.sender.send(request) {
            return Some(returned);
        }
        clock.queued += 1;
        clock.all_queued.fetch_add(1, Ordering::Release);
        None
    }
}
