//! Keyspace notifications (`notify-keyspace-events`), published as redis-server publishes
//! them, on `__keyspace@0__:<key>` (the message is the event) with `K` and on
//! `__keyevent@0__:<event>` (the message is the key) with `E`. Served classes: `x`, a key
//! deleted because its deadline passed (`expired`, from the keyspace's own list of
//! expirations, [`publish_expirations`], which also sends `hexpired` for a hash's fields
//! at their deadlines, Redis 7.4's, and `del` when that took the last); `g`, `$`, `l`, `s`, `h`, `z`, `n`, what each
//! command changes (`set`, `expire`, `del`, `lpush`, `hset`, `zadd`, `new`, …; `events.rs`);
//! and `t`, what changes a stream: its entries (`xadd`, `xtrim`, `xdel`, `xsetid`, sent by
//! the stream's writer, `streams/writer.rs`, which also sends a stream key's `new`, `del`,
//! `expire`, `persist` and `expired`) and its groups (`xgroup-create`, …,
//! `stream_events.rs`); and `m`, a key a command looked up to read and did not find
//! (`keymiss`, `misses.rs`). The messages go through the engine's live router like any
//! PUBLISH, so NATS subscribers of those subjects get them too.
//!
//! The classes are read and written as Redis spells them (`CONFIG SET notify-keyspace-events
//! KEA`, `CONFIG GET` answering `AKE`). `e` (evicted) and `d` (module) are accepted and never
//! fire, as nothing is evicted and there are no modules.

pub(crate) mod events;
pub(crate) mod misses;
pub(crate) mod stream_events;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use omnibus_engine::keys::Expiration;
use tokio::sync::{broadcast, watch};

use crate::server::Shared;

const KEYSPACE: u32 = 1 << 0;
const KEYEVENT: u32 = 1 << 1;
pub(crate) const GENERIC: u32 = 1 << 2;
const STRING: u32 = 1 << 3;
const LIST: u32 = 1 << 4;
const SET: u32 = 1 << 5;
const HASH: u32 = 1 << 6;
const ZSET: u32 = 1 << 7;
pub(crate) const EXPIRED: u32 = 1 << 8;
const EVICTED: u32 = 1 << 9;
pub(crate) const STREAM: u32 = 1 << 10;
pub(crate) const KEY_MISS: u32 = 1 << 11;
const MODULE: u32 = 1 << 13;
pub(crate) const NEW: u32 = 1 << 14;
const ALL: u32 = GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE;
/// The classes of the changes commands make ([`events`], [`stream_events`]).
const CHANGES: u32 = GENERIC | STRING | LIST | SET | HASH | ZSET | STREAM | NEW;
/// The classes a stream's writer sends (`streams/writer.rs`).
pub(crate) const STREAM_WRITES: u32 = STREAM | NEW | GENERIC | EXPIRED;

/// One event: its class, its name, its key.
pub(crate) type Event = (u32, &'static str, Bytes);

/// The classes turned on, shared by the listener's sessions and its publisher.
#[derive(Debug, Default)]
pub(crate) struct Notifications {
    flags: AtomicU32,
}

impl Notifications {
    /// Starts with the configured classes (checked at start by [`parse`]).
    pub(crate) fn new(classes: &str) -> Notifications {
        Notifications {
            flags: AtomicU32::new(parse(classes).unwrap_or(0)),
        }
    }

    /// CONFIG SET notify-keyspace-events: `Err` with why, when refused ([`parse`]).
    pub(crate) fn set(&self, classes: &[u8]) -> Result<(), String> {
        let text = std::str::from_utf8(classes).unwrap_or("\u{fffd}");
        let flags = parse(text)?;
        self.flags.store(flags, Ordering::Relaxed);
        Ok(())
    }

    /// CONFIG GET notify-keyspace-events, spelled as Redis spells it.
    pub(crate) fn text(&self) -> String {
        spelled(self.flags.load(Ordering::Relaxed))
    }

    fn flags(&self) -> u32 {
        self.flags.load(Ordering::Relaxed)
    }

    /// Whether a command's changes or key misses are published: a class of them and `K`
    /// or `E` on.
    pub(crate) fn changes_wanted(&self) -> bool {
        self.sends(CHANGES | KEY_MISS)
    }

    /// Whether an event of one of `classes` would be published now (the class on, and `K`
    /// or `E`): what is checked before any event is made.
    pub(crate) fn sends(&self, classes: u32) -> bool {
        let flags = self.flags();
        flags & classes != 0 && flags & (KEYSPACE | KEYEVENT) != 0
    }

    /// Publishes `events` for the classes on now ([`events::publish`]).
    pub(crate) fn send(&self, engine: &Arc<omnibus_engine::Engine>, events: Vec<Event>) {
        if !events.is_empty() {
            events::publish(engine, self.flags(), events);
        }
    }
}

/// The flags of a class string, as Redis reads one, or why it cannot be read (the words
/// after CONFIG SET's `ERR CONFIG SET failed (…) - `).
pub fn parse(classes: &str) -> Result<u32, String> {
    let mut flags = 0;
    for class in classes.chars() {
        flags |= match class {
            'A' => ALL,
            'g' => GENERIC,
            '$' => STRING,
            'l' => LIST,
            's' => SET,
            'h' => HASH,
            'z' => ZSET,
            'x' => EXPIRED,
            'e' => EVICTED,
            'K' => KEYSPACE,
            'E' => KEYEVENT,
            't' => STREAM,
            'm' => KEY_MISS,
            'd' => MODULE,
            'n' => NEW,
            _ => return Err("Invalid event class character. Use 'Ag$lshzxeKEtmdn'.".into()),
        };
    }
    Ok(flags)
}

fn spelled(flags: u32) -> String {
    let mut text = String::new();
    if flags & ALL == ALL {
        text.push('A');
    } else {
        for (flag, letter) in [
            (GENERIC, 'g'),
            (STRING, '$'),
            (LIST, 'l'),
            (SET, 's'),
            (HASH, 'h'),
            (ZSET, 'z'),
            (EXPIRED, 'x'),
            (EVICTED, 'e'),
            (STREAM, 't'),
            (MODULE, 'd'),
            (NEW, 'n'),
        ] {
            if flags & flag != 0 {
                text.push(letter);
            }
        }
    }
    for (flag, letter) in [(KEYSPACE, 'K'), (KEYEVENT, 'E'), (KEY_MISS, 'm')] {
        if flags & flag != 0 {
            text.push(letter);
        }
    }
    text
}

/// Publishes the keyspace's expirations while the listener runs, for the classes turned on
/// at the time of each, invalidates them in tracking connections' caches, and counts them
/// (INFO's `expired_keys`). A key that is not a valid subject (a space, `*` or `>` in it) gets
/// only its `__keyevent` message; a publisher that falls behind the keyspace by
/// [`omnibus_engine::keys::EXPIRATIONS_BUFFERED`] misses the oldest (Redis's pub/sub drops
/// too, for slow subscribers).
pub(crate) async fn publish_expirations(shared: Arc<Shared>, mut stopped: watch::Receiver<bool>) {
    let Ok(keys) = shared.engine.keyspace().await else {
        return;
    };
    let mut expirations = keys.expirations();
    drop(keys);
    loop {
        let expiration = tokio::select! {
            received = expirations.recv() => match received {
                Ok(expiration) => expiration,
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    shared.expired_keys.fetch_add(missed, Ordering::Relaxed);
                    continue;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            _ = stopped.wait_for(|stop| *stop) => return,
        };
        // A key at its deadline is `expired`; a hash's fields at theirs are `hexpired`
        // (class `h`), then `del` when they were its last, as Redis 7.4 sends them.
        let events: Vec<Event> = match expiration {
            Expiration::Key(key) => {
                shared.expired_keys.fetch_add(1, Ordering::Relaxed);
                vec![(EXPIRED, "expired", key)]
            }
            Expiration::Fields {
                key,
                fields,
                emptied,
            } => {
                shared
                    .expired_subkeys
                    .fetch_add(fields as u64, Ordering::Relaxed);
                let mut events = vec![(HASH, "hexpired", key.clone())];
                if emptied {
                    events.push((GENERIC, "del", key));
                }
                events
            }
        };
        // A key gone or changed at a deadline changed for client-side caches too
        // (`tracking.rs`).
        if shared.tracking.active() {
            let key = &events[0].2;
            let tracking = &shared.tracking;
            tracking.invalidate(&shared.clients, 0, std::slice::from_ref(key));
        }
        events::publish(&shared.engine, shared.notifications.flags(), events);
    }
}

/// Publishes at once when no stream captures the channel (the live router delivers in
/// place), so a subscriber sees the event before anything its command's client does next;
/// a capturing stream's append finishes on its own task.
pub(crate) fn publish_now(engine: &Arc<omnibus_engine::Engine>, channel: Bytes, payload: Bytes) {
    let engine = engine.clone();
    // A key's own channel is seldom published again; an event's is, over and over.
    let once = channel.starts_with(b"__keyspace@");
    let mut publish = Box::pin(async move {
        crate::pubsub::publish_with(&engine, &channel, &payload, once).await;
    });
    use std::future::Future;
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    if publish.as_mut().poll(&mut context).is_pending() {
        tokio::spawn(publish);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_are_read_and_spelled_as_redis_does() {
        assert_eq!(parse("").unwrap(), 0);
        assert_eq!(spelled(parse("Ex").unwrap()), "xE");
        assert_eq!(spelled(parse("xKE").unwrap()), "xKE");
        assert_eq!(spelled(parse("Kxed").unwrap()), "xedK");
        assert!(parse("Eq")
            .unwrap_err()
            .contains("Invalid event class character"));
        assert_eq!(spelled(parse("KEA").unwrap()), "AKE");
        assert_eq!(spelled(parse("Kt").unwrap()), "tK");
        assert_eq!(spelled(parse("Em").unwrap()), "Em");
        assert_eq!(spelled(parse("KEAm").unwrap()), "AKEm");
        assert_eq!(spelled(parse("Egx").unwrap()), "gxE");
        assert_eq!(spelled(parse("K$lshzn").unwrap()), "$lshznK");
        assert_eq!(spelled(ALL | KEYSPACE), "AK");
        let notifications = Notifications::new("Ex");
        assert_eq!(notifications.text(), "xE");
        assert!(notifications.set(b"Kq").is_err());
        assert_eq!(notifications.text(), "xE", "a refused SET changes nothing");
        notifications.set(b"").unwrap();
        assert_eq!(notifications.text(), "");
    }
}
