//! Key expiry beyond the lazy check in `Keyspace::live`: the sweep that deletes keys (and
//! hash fields) whose deadline passed without anyone reading them, the task that runs it,
//! the expirations told to listeners, and the counts metrics read.

use std::sync::Weak;

use bytes::Bytes;

use super::field_expiry::Expiration;
use super::{now_ms, stored, Keyspace, SWEEP_BATCH, SWEEP_INTERVAL};

/// [`Keyspace::stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyspaceStats {
    pub keys: u64,
    /// Keys with a deadline.
    pub expiring: u64,
    /// Bytes counted against [`super::KEYSPACE_BYTES_MAX`].
    pub bytes: u64,
    /// Keys deleted at their deadline since the keyspace opened.
    pub expired_keys: u64,
    /// Hash fields deleted at their deadline since the keyspace opened.
    pub expired_fields: u64,
}

impl Keyspace {
    /// Every key (and every hash's fields) deleted from now on because its deadline
    /// passed, in the order deleted: on the first read that finds it expired, or by the
    /// sweep (every [`SWEEP_INTERVAL`]), so up to a sweep after its deadline, as Redis's
    /// `expired` and `hexpired` events. A listener that falls [`super::EXPIRATIONS_BUFFERED`]
    /// behind misses the oldest (and is told how many).
    pub fn expirations(&self) -> tokio::sync::broadcast::Receiver<Expiration> {
        self.expired.subscribe()
    }

    /// What the keyspace holds and has expired, read under one lock (metrics).
    pub fn stats(&self) -> KeyspaceStats {
        let inner = self.lock();
        KeyspaceStats {
            keys: inner.entries.len() as u64,
            expiring: inner.deadlines.len() as u64,
            bytes: inner.bytes,
            expired_keys: self.expired_keys.load(std::sync::atomic::Ordering::Relaxed),
            expired_fields: self
                .expired_fields
                .load(std::sync::atomic::Ordering::Relaxed),
        }
    }

    pub(super) fn tell_expired(&self, key: impl FnOnce() -> Expiration) {
        if self.expired.receiver_count() > 0 {
            let _ = self.expired.send(key());
        }
    }

    /// Deletes up to [`SWEEP_BATCH`] keys whose deadline has passed, then hash fields whose
    /// deadline has, up to as many again; returns how many keys and fields (none while
    /// another thread holds the keyspace: the next sweep does it).
    pub fn sweep(&self) -> usize {
        let Some(mut inner) = self.try_lock() else {
            return 0;
        };
        let now = now_ms();
        let due: Vec<Bytes> = inner
            .deadlines
            .iter()
            .take_while(|(deadline, _)| *deadline <= now)
            .take(SWEEP_BATCH)
            .map(|(_, key)| key.clone())
            .collect();
        if !due.is_empty() {
            let mut writes = Vec::new();
            for key in &due {
                if let Some(old) = inner.remove(key) {
                    writes.extend(stored::delete_entry(key, &old));
                    self.expired_keys
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    self.tell_expired(|| Expiration::Key(key.clone()));
                }
            }
            self.writer.queue_detached(writes);
        }
        // After the keys: a hash at its own deadline goes whole, as `expired`.
        due.len() + self.sweep_fields(&mut inner, now, SWEEP_BATCH)
    }
}

pub(super) fn spawn_sweep(keyspace: Weak<Keyspace>) {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(SWEEP_INTERVAL);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let Some(keyspace) = keyspace.upgrade() else {
                return;
            };
            // A full batch leaves more due: sweep on, a batch at a time (commands take the
            // lock between them), for up to a quarter of the interval — Redis's active
            // expiry takes up to 25 % of a core the same way — so a mass expiry is
            // reclaimed in seconds, not at 10,000 keys a second.
            let started = std::time::Instant::now();
            while keyspace.sweep() >= SWEEP_BATCH && started.elapsed() < SWEEP_INTERVAL / 4 {
                tokio::task::yield_now().await;
            }
        }
    });
}
