//! Holding the keyspace: every command takes the keyspace's lock behind a shared gate, and
//! a script or a transaction takes the gate whole ([`Keyspace::exclusive`]) so that no
//! other thread's command runs inside it; the holder's own commands pass the gate, and its
//! changes are kept back by the writer and committed together when it lets go.

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{MutexGuard, RwLockReadGuard, RwLockWriteGuard};

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
    _gate: Option<RwLockWriteGuard<'a, ()>>,
}

impl Drop for Exclusive<'_> {
    fn drop(&mut self) {
        let keyspace = self.keyspace;
        if keyspace.depth.fetch_sub(1, Ordering::Relaxed) != 1 {
            return;
        }
        // Still behind the gate: what the hold kept back is queued before anyone else's.
        keyspace.writer.release();
        keyspace.holder.store(0, Ordering::Release);
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

impl Keyspace {
    pub(super) fn lock(&self) -> Locked<'_> {
        let gate = (self.holder.load(Ordering::Acquire) != thread_number())
            .then(|| self.gate.read().unwrap_or_else(|p| p.into_inner()));
        Locked {
            inner: self.inner.lock().unwrap_or_else(|p| p.into_inner()),
            _gate: gate,
        }
    }

    /// [`Keyspace::lock`] unless another thread holds the keyspace exclusively (`None`):
    /// for the sweep, which runs on the broker's shared runtime, where waiting out a long
    /// script would stall every other door's tasks on that thread.
    pub(super) fn try_lock(&self) -> Option<Locked<'_>> {
        let gate = match self.gate.try_read() {
            Ok(gate) => gate,
            Err(std::sync::TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return None,
        };
        Some(Locked {
            inner: self.inner.lock().unwrap_or_else(|p| p.into_inner()),
            _gate: Some(gate),
        })
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
                _gate: None,
            };
        }
        let gate = self.gate.write().unwrap_or_else(|p| p.into_inner());
        self.holder.store(me, Ordering::Release);
        self.depth.store(1, Ordering::Relaxed);
        self.writer.hold();
        Exclusive {
            keyspace: self,
            _gate: Some(gate),
        }
    }
}
