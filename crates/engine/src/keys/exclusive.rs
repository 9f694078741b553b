//! Holding the keyspace: every command takes the keyspace's lock behind a shared gate, and
//! a script or a transaction takes the gate whole ([`Keyspace::exclusive`]) so that no
//! other thread's command runs inside it; the holder's own commands pass the gate, and its
//! changes are kept back by the writer and committed together when it lets go.
//!
//! A door waits for the gate without blocking its thread ([`Keyspace::enter`],
//! [`Keyspace::exclusive_async`]): a script that waits for a stream's writer while it holds
//! the keyspace needs that writer's thread to stay free, and a thread blocked at the gate
//! would not be (docs/redis.md, "Lua scripts"). The gate is a plain `RwLock` taken with
//! `try_read`/`try_write`; a door that finds it taken waits for the hold's end
//! ([`Keyspace::released`]) or, while only other commands are in it, yields and tries again
//! (a tokio lock cost ~8 % of pipelined GETs: its release takes a mutex). Callers that did
//! not enter wait at the gate synchronously, as before.

use std::cell::Cell;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{MutexGuard, RwLockReadGuard, RwLockWriteGuard, TryLockError};

use super::entry::Inner;
use super::Keyspace;

/// The keyspace held exclusively by one thread, from [`Keyspace::exclusive`]: until it is
/// dropped, no other thread reads or changes a key, and every change made meanwhile is
/// committed with the others in one commit when it is dropped (each change's [`Durable`]
/// resolves then). Not `Send`: it is let go on the thread that took it.
#[must_use = "the keyspace is held only while this lives"]
pub struct Exclusive<'a> {
    keyspace: &'a Keyspace,
    /// `None` for a hold nested in one this thread already has.
    gate: Option<RwLockWriteGuard<'a, ()>>,
    /// Let go on the thread that took it (the holder is a thread).
    _thread: PhantomData<*const ()>,
}

/// The gate passed shared by one thread, from [`Keyspace::enter`]: the keyspace's commands
/// run on this thread meanwhile without waiting at the gate again. Not `Send`: keep it
/// across no `.await`.
#[must_use = "the gate is passed only while this lives"]
pub struct Entered<'a> {
    _gate: Option<RwLockReadGuard<'a, ()>>,
    /// What [`ENTERED`] held before (a nested entry restores it).
    previous: usize,
    _thread: PhantomData<*const ()>,
}

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        ENTERED.with(|entered| entered.set(self.previous));
    }
}

thread_local! {
    /// The keyspace (its address) whose gate this thread passed with [`Keyspace::enter`].
    static ENTERED: Cell<usize> = const { Cell::new(0) };
}

impl Drop for Exclusive<'_> {
    fn drop(&mut self) {
        let keyspace = self.keyspace;
        if keyspace.depth.fetch_sub(1, Ordering::Relaxed) != 1 {
            return;
        }
        // Still behind the gate: the clients blocked on keys the hold wrote are served from
        // what it left, and what the hold kept back is queued before anyone else's.
        keyspace.holder.store(0, Ordering::Release);
        keyspace.serve_held_back();
        keyspace.writer.release();
        drop(self.gate.take());
        keyspace.released.notify_waiters();
    }
}

/// The keyspace's state under its lock (and, for every thread but a holder's, the shared
/// gate).
pub(super) struct Locked<'a> {
    inner: MutexGuard<'a, Inner>,
    _gate: Option<RwLockReadGuard<'a, ()>>,
}

impl Deref for Locked<'_> {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.inner
    }
}

impl DerefMut for Locked<'_> {
    fn deref_mut(&mut self) -> &mut Inner {
        &mut self.inner
    }
}

/// A number for the calling thread, never 0 (`ThreadId` has no stable number).
pub(super) fn thread_number() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    thread_local! {
        static NUMBER: u64 = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    NUMBER.with(|number| *number)
}

/// The guard if the lock could be taken at once (a poisoned lock is taken as it is).
fn taken<G>(attempt: Result<G, TryLockError<G>>) -> Option<G> {
    match attempt {
        Ok(guard) => Some(guard),
        Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
        Err(TryLockError::WouldBlock) => None,
    }
}

impl Keyspace {
    fn address(&self) -> usize {
        self as *const Keyspace as usize
    }

    /// Whether this thread holds the keyspace exclusively.
    pub(super) fn holds_here(&self) -> bool {
        self.holder.load(Ordering::Acquire) == thread_number()
    }

    /// Whether this thread's commands pass the gate: it holds the keyspace, or entered it.
    fn passed(&self) -> bool {
        self.holder.load(Ordering::Acquire) == thread_number()
            || ENTERED.with(|entered| entered.get()) == self.address()
    }

    pub(super) fn lock(&self) -> Locked<'_> {
        let gate = (!self.passed()).then(|| self.gate.read().unwrap_or_else(|p| p.into_inner()));
        Locked {
            inner: self.inner.lock().unwrap_or_else(|p| p.into_inner()),
            _gate: gate,
        }
    }

    /// The state without the gate: for what no script can observe (a blocked client leaving
    /// its lines), which must not wait out a hold on a thread a holder may need.
    pub(super) fn lock_ungated(&self) -> Locked<'_> {
        Locked {
            inner: self.inner.lock().unwrap_or_else(|p| p.into_inner()),
            _gate: None,
        }
    }

    /// [`Keyspace::lock`] unless another thread holds the keyspace exclusively (`None`):
    /// for the sweep, which runs on the broker's shared runtime, where waiting out a long
    /// script would stall every other door's tasks on that thread.
    pub(super) fn try_lock(&self) -> Option<Locked<'_>> {
        let gate = if self.passed() {
            None
        } else {
            Some(taken(self.gate.try_read())?)
        };
        Some(Locked {
            inner: self.inner.lock().unwrap_or_else(|p| p.into_inner()),
            _gate: gate,
        })
    }

    /// Passes the gate shared, waiting without blocking the thread while another thread
    /// holds the keyspace; the calling thread's commands then run without waiting until the
    /// returned guard is dropped. What a door does before each command.
    pub async fn enter(&self) -> Entered<'_> {
        if self.passed() {
            return self.entered(None);
        }
        // The usual case, without registering to be told of a hold's end.
        if let Some(gate) = self.try_enter() {
            return self.entered(Some(gate));
        }
        let gate = loop {
            let released = self.released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            if let Some(gate) = self.try_enter() {
                break gate;
            }
            self.wait_for_gate(released).await;
        };
        self.entered(Some(gate))
    }

    fn entered<'a>(&'a self, gate: Option<RwLockReadGuard<'a, ()>>) -> Entered<'a> {
        let previous = ENTERED.with(|entered| entered.replace(self.address()));
        Entered {
            _gate: gate,
            previous,
            _thread: PhantomData,
        }
    }

    /// The gate shared, if it can be had at once; a hold waiting for it goes first (else
    /// commands on other threads, one after another, could keep it out for ever).
    fn try_enter(&self) -> Option<RwLockReadGuard<'_, ()>> {
        if self.wanted.load(Ordering::Acquire) != 0 {
            return None;
        }
        taken(self.gate.try_read())
    }

    /// [`Keyspace::exclusive`], waiting for the gate without blocking the thread: what a
    /// door does before EVAL or EXEC. Keep the hold across no `.await`.
    pub async fn exclusive_async(&self) -> Exclusive<'_> {
        if self.passed() {
            return self.exclusive();
        }
        self.wanted.fetch_add(1, Ordering::AcqRel);
        let gate = loop {
            let released = self.released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            if let Some(gate) = taken(self.gate.try_write()) {
                break gate;
            }
            self.wait_for_gate(released).await;
        };
        self.wanted.fetch_sub(1, Ordering::AcqRel);
        self.start_hold(gate)
    }

    /// Waits until the gate may be free: the end of the hold in it, or, while commands are
    /// in it (each runs a few microseconds, synchronously), the next turn of the runtime.
    async fn wait_for_gate(
        &self,
        released: std::pin::Pin<&mut tokio::sync::futures::Notified<'_>>,
    ) {
        if self.holder.load(Ordering::Acquire) != 0 {
            released.await;
        } else {
            tokio::task::yield_now().await;
        }
    }

    fn start_hold<'a>(&'a self, gate: RwLockWriteGuard<'a, ()>) -> Exclusive<'a> {
        self.holder.store(thread_number(), Ordering::Release);
        self.depth.store(1, Ordering::Relaxed);
        self.writer.hold();
        Exclusive {
            keyspace: self,
            gate: Some(gate),
            _thread: PhantomData,
        }
    }

    /// Holds the keyspace for the calling thread until the returned guard is dropped: other
    /// threads' commands wait, and the changes made meanwhile reach the disk in one commit
    /// (all or none after a crash). A hold taken again on the same thread nests in the first.
    /// Keep it short and never across an `.await`: every other caller waits for it.
    pub fn exclusive(&self) -> Exclusive<'_> {
        let me = thread_number();
        if self.holder.load(Ordering::Acquire) == me {
            self.depth.fetch_add(1, Ordering::Relaxed);
            return Exclusive {
                keyspace: self,
                gate: None,
                _thread: PhantomData,
            };
        }
        // A thread that entered shared cannot take the gate whole: it would wait for itself.
        assert!(
            ENTERED.with(|entered| entered.get()) != self.address(),
            "an exclusive hold taken inside an entered command (use exclusive_async first)"
        );
        let gate = self.gate.write().unwrap_or_else(|p| p.into_inner());
        self.start_hold(gate)
    }
}
