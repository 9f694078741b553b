//! Stream keys with a time to live: `EXPIRE` (and its kin) on a stream key gives the stream
//! a deadline, at which the stream goes with its groups, as a Redis key does
//! (docs/redis.md, "Stream keys with a time to live").
//!
//! The deadline is a door setting of the stream (`redis.expires-at`, milliseconds since the
//! epoch), so it is durable with the stream and deleted with it, and it is set and cleared
//! by the stream's writer (`writer.rs`) in order with the stream's other changes. Here it is
//! kept in memory too, with the stream's creation time (a stream deleted and made again
//! through another door does not inherit a deadline), and by time for the sweeper: one task
//! that sleeps until the earliest deadline and hands the stream's writer a
//! [`Change::Sweep`](super::writer::Change::Sweep). No key is ever scanned for expiry.
//!
//! From its deadline on, a stream is gone to the key commands (EXISTS, TYPE, TTL, KEYS,
//! SCAN, DBSIZE, DEL answers 0), even before the sweeper has deleted it, and any other
//! command naming it waits until its writer has (`commands::due_streams`), so XADD makes a
//! new stream and no read answers the old entries.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use omnibus_engine::{Engine, EngineError};
use tokio::sync::{watch, Notify};

use super::created_ms;
use super::writer::Change;
use crate::server::Shared;

pub(crate) const EXPIRES_AT_SETTING: &str = "redis.expires-at";

/// How long the sweeper waits before trying again a stream whose deletion failed.
const RETRY_AFTER_MS: i64 = 1_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Deadline {
    at: i64,
    /// The creation time of the stream the deadline was set on.
    created_ms: i64,
}

#[derive(Default)]
struct Inner {
    by_stream: HashMap<String, Deadline>,
    by_time: BTreeSet<(i64, String)>,
}

impl Inner {
    fn remove(&mut self, stream: &str) -> Option<Deadline> {
        let removed = self.by_stream.remove(stream)?;
        self.by_time.remove(&(removed.at, stream.to_string()));
        Some(removed)
    }

    fn insert(&mut self, stream: &str, deadline: Deadline) {
        self.remove(stream);
        self.by_stream.insert(stream.to_string(), deadline);
        self.by_time.insert((deadline.at, stream.to_string()));
    }
}

/// The deadlines of the stream keys that have one.
#[derive(Default)]
pub(crate) struct Deadlines {
    inner: Mutex<Inner>,
    /// How many streams have a deadline: none is the usual case, checked without the lock.
    count: AtomicUsize,
    /// Wakes the sweeper when a deadline is set.
    changed: Notify,
}

pub(crate) fn now_ms() -> i64 {
    super::now_ms() as i64
}

impl Deadlines {
    /// The deadlines stored with the streams (at the listener's start).
    pub(crate) fn load(engine: &Engine) -> Deadlines {
        let deadlines = Deadlines::default();
        {
            let mut inner = deadlines.lock();
            for stream in engine.stream_names() {
                let Ok(settings) = engine.stream_door_settings(&stream) else {
                    continue;
                };
                let Some(at) = settings
                    .get(EXPIRES_AT_SETTING)
                    .and_then(|text| text.parse::<i64>().ok())
                else {
                    continue;
                };
                if let Some(created_ms) = created_ms(engine, &stream) {
                    inner.insert(&stream, Deadline { at, created_ms });
                }
            }
            deadlines
                .count
                .store(inner.by_stream.len(), Ordering::Release);
        }
        deadlines
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The deadline of `stream`, if it has one (a deadline left by a stream deleted through
    /// another door is forgotten here).
    pub(crate) fn of(&self, engine: &Engine, stream: &str) -> Option<i64> {
        if self.count.load(Ordering::Acquire) == 0 {
            return None;
        }
        let found = self.lock().by_stream.get(stream).copied()?;
        if created_ms(engine, stream) == Some(found.created_ms) {
            return Some(found.at);
        }
        self.forget(stream);
        None
    }

    /// Whether `stream` has a deadline that has passed: it is gone to the key commands.
    pub(crate) fn is_due(&self, engine: &Engine, stream: &str) -> bool {
        self.of(engine, stream).is_some_and(|at| at <= now_ms())
    }

    /// How many streams have a deadline (INFO's `expires`).
    pub(crate) fn len(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    /// The streams whose deadline has passed (DBSIZE leaves them out).
    pub(crate) fn due(&self, engine: &Engine) -> Vec<String> {
        if self.len() == 0 {
            return Vec::new();
        }
        let now = now_ms();
        let candidates: Vec<String> = self
            .lock()
            .by_time
            .range(..(now + 1, String::new()))
            .map(|(_, stream)| stream.clone())
            .collect();
        candidates
            .into_iter()
            .filter(|stream| self.is_due(engine, stream))
            .collect()
    }

    /// Sets (`Some`) or clears (`None`) the deadline of `stream`, durably: the writer's
    /// part of EXPIRE and PERSIST, after it checked that the stream exists.
    pub(crate) async fn store(
        &self,
        engine: &Engine,
        stream: &str,
        at: Option<i64>,
    ) -> Result<(), EngineError> {
        let mut settings = engine.stream_door_settings(stream)?;
        match at {
            Some(at) => settings.insert(EXPIRES_AT_SETTING.to_string(), at.to_string()),
            None => settings.remove(EXPIRES_AT_SETTING),
        };
        engine.set_stream_door_settings(stream, settings).await?;
        match (at, created_ms(engine, stream)) {
            (Some(at), Some(created_ms)) => {
                let mut inner = self.lock();
                inner.insert(stream, Deadline { at, created_ms });
                self.count.store(inner.by_stream.len(), Ordering::Release);
                drop(inner);
                self.changed.notify_one();
            }
            _ => self.forget(stream),
        }
        Ok(())
    }

    /// Forgets the deadline of `stream` (it was deleted).
    pub(crate) fn forget(&self, stream: &str) {
        let mut inner = self.lock();
        if inner.remove(stream).is_some() {
            self.count.store(inner.by_stream.len(), Ordering::Release);
        }
    }

    /// Puts a deadline whose stream could not be deleted [`RETRY_AFTER_MS`] later, in memory
    /// only, so the sweeper does not spin on it.
    pub(crate) fn postpone(&self, stream: &str) {
        let mut inner = self.lock();
        if let Some(deadline) = inner.by_stream.get(stream).copied() {
            let at = now_ms() + RETRY_AFTER_MS;
            inner.insert(stream, Deadline { at, ..deadline });
        }
    }

    /// The earliest deadline and its stream.
    fn earliest(&self) -> Option<(i64, String)> {
        self.lock().by_time.first().cloned()
    }
}

/// The sweeper: deletes each stream at its deadline, through the stream's writer, until the
/// listener stops.
pub(crate) async fn sweep(shared: Arc<Shared>, mut stopped: watch::Receiver<bool>) {
    let writers = &shared.streams;
    let deadlines = writers.deadlines();
    loop {
        // Taken before looking, so a deadline set meanwhile is not missed.
        let changed = deadlines.changed.notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        let wait = match deadlines.earliest() {
            Some((at, stream)) if at <= now_ms() => {
                let answer = writers.submit(&stream, Change::Sweep);
                // The writer forgets the deadline (deleted) or postpones it (failed).
                let _ = answer.await;
                if deadlines.earliest() == Some((at, stream.clone())) {
                    // Still first and due: the writer stopped. Try again later.
                    deadlines.postpone(&stream);
                }
                continue;
            }
            Some((at, _)) => Duration::from_millis((at - now_ms()).max(1) as u64),
            // A deadline set later wakes it.
            None => Duration::from_secs(3_600),
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = &mut changed => {}
            _ = stopped.wait_for(|stop| *stop) => return,
        }
    }
}
