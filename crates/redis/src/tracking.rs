//! Client-side caching (`CLIENT TRACKING`, Redis 6+): the keys each tracking connection read,
//! and the `invalidate` messages sent when one of them changes — what redis-py's
//! `cache_config`, node-redis's client-side cache and rueidis (which turns tracking on for
//! every connection) rely on to keep a local copy of values.
//!
//! Two modes, as in Redis. By default the door remembers, per key, the connections that read
//! it with tracking on (`keys`); a change to the key sends each of them one message naming it
//! and forgets them (a connection is told once per read). With `BCAST` nothing is
//! remembered: a change to any key under one of the connection's prefixes is sent to it.
//! `OPTIN`/`OPTOUT` (with `CLIENT CACHING yes|no` before a read) choose which reads are
//! remembered, `NOLOOP` leaves out the connection's own changes, and `REDIRECT id` sends the
//! messages to another connection (in RESP2, one subscribed to `__redis__:invalidate`).
//!
//! A connection's messages wait in its [`Inbox`] until the session writes them: between
//! commands, after the reply of the command that made them (redis-server 7.0's order for a
//! connection's own changes), or at once when it is idle. The inbox is bounded: past
//! [`INBOX_MESSAGES_MAX`] what waits is replaced by one message invalidating everything (the
//! client empties its cache), so a connection that does not read cannot grow the broker's
//! memory. The table of remembered keys is bounded by [`KEYS_MAX`] (Redis's
//! `tracking-table-max-keys` default): past it the oldest-found keys are invalidated and
//! forgotten, as Redis does.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::Notify;

use crate::clients::Clients;
use crate::codec::{Protocol, Reply};

/// Keys remembered for default-mode tracking, over every connection (Redis's
/// `tracking-table-max-keys` default).
pub(crate) const KEYS_MAX: usize = 1_000_000;
/// Messages waiting for one connection before they are replaced by one that invalidates
/// everything.
pub(crate) const INBOX_MESSAGES_MAX: usize = 16_384;
/// BCAST prefixes over every connection.
pub(crate) const PREFIXES_MAX: usize = 10_000;

/// One message for a connection.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Message {
    /// `invalidate` with these keys (`None`: every key: FLUSHALL, or messages lost to the
    /// inbox's bound). `redirected`: sent for another connection's tracking (RESP2 gets it
    /// only this way, as a `__redis__:invalidate` pub/sub message).
    Invalidate {
        keys: Option<Vec<Bytes>>,
        redirected: bool,
    },
    /// The connection the messages were redirected to is gone (`tracking-redir-broken`).
    RedirectBroken(u64),
}

impl Message {
    /// The message as connection with `protocol` gets it, `subscribed` or not; `None` when
    /// it gets nothing (RESP2 has no push messages outside pub/sub).
    pub(crate) fn reply(self, protocol: Protocol, subscribed: bool) -> Option<Reply> {
        match self {
            Message::Invalidate { keys, redirected } => {
                let keys = keys.map_or(Reply::Null, |keys| {
                    Reply::Array(keys.into_iter().map(Reply::Bulk).collect())
                });
                if protocol == Protocol::Resp3 {
                    Some(Reply::Push(vec![Reply::text("invalidate"), keys]))
                } else if redirected && subscribed {
                    Some(Reply::Push(vec![
                        Reply::text("message"),
                        Reply::text("__redis__:invalidate"),
                        keys,
                    ]))
                } else {
                    None
                }
            }
            Message::RedirectBroken(id) => (protocol == Protocol::Resp3).then(|| {
                Reply::Push(vec![
                    Reply::text("tracking-redir-broken"),
                    Reply::Integer(id as i64),
                ])
            }),
        }
    }
}

/// The messages waiting for one connection.
#[derive(Default)]
pub(crate) struct Inbox {
    messages: Mutex<VecDeque<Message>>,
    /// Messages were dropped at the bound: the next drain ends with "invalidate everything".
    overflowed: AtomicBool,
    /// Set when a message arrives, so the session can look without the lock.
    waiting: AtomicBool,
    arrived: Notify,
}

impl Inbox {
    fn push(&self, message: Message) {
        {
            let mut messages = self.messages.lock().unwrap_or_else(|p| p.into_inner());
            if messages.len() >= INBOX_MESSAGES_MAX {
                messages.clear();
                self.overflowed.store(true, Ordering::Release);
            } else {
                messages.push_back(message);
            }
        }
        self.waiting.store(true, Ordering::Release);
        self.arrived.notify_one();
    }

    /// Whether messages wait (one atomic load).
    pub(crate) fn has_messages(&self) -> bool {
        self.waiting.load(Ordering::Acquire)
    }

    /// Resolves when a message arrives (at once if one arrived since the last drain).
    pub(crate) async fn arrived(&self) {
        while !self.has_messages() {
            self.arrived.notified().await;
        }
    }

    /// Takes every message waiting, in order.
    pub(crate) fn drain(&self) -> Vec<Message> {
        self.waiting.store(false, Ordering::Release);
        let mut out: Vec<Message> = self
            .messages
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
            .collect();
        if self.overflowed.swap(false, Ordering::AcqRel) {
            out.push(Message::Invalidate {
                keys: None,
                redirected: false,
            });
        }
        out
    }
}

/// How a connection tracks (CLIENT TRACKING ON's options).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Options {
    /// 0: no redirection.
    pub(crate) redirect: u64,
    pub(crate) bcast: bool,
    pub(crate) optin: bool,
    pub(crate) optout: bool,
    pub(crate) noloop: bool,
    /// BCAST's prefixes (none given: every key, the empty prefix).
    pub(crate) prefixes: Vec<Bytes>,
}

struct Tracker {
    options: Options,
    inbox: Arc<Inbox>,
    /// The redirection's target was found gone.
    broken: bool,
}

#[derive(Default)]
struct State {
    trackers: HashMap<u64, Tracker>,
    /// Default mode: each key read with tracking on, and the connections that read it.
    keys: HashMap<Bytes, Vec<u64>>,
    /// Pairs in `keys` (INFO's `tracking_total_items`).
    items: usize,
    /// BCAST: each prefix and the connections registered for it.
    prefixes: BTreeMap<Bytes, Vec<u64>>,
}

/// Every tracking connection of the listener.
pub(crate) struct Tracking {
    /// Connections with tracking on: a command pays one atomic load when there are none.
    on: AtomicUsize,
    /// Keys remembered plus BCAST prefixes: a write with nothing to invalidate pays one
    /// atomic load (rueidis turns tracking on for every connection, OPTIN).
    watched: AtomicUsize,
    state: Mutex<State>,
    /// [`KEYS_MAX`] until CONFIG SET tracking-table-max-keys changes it (0: up to
    /// [`KEYS_CAP`]).
    keys_max: AtomicUsize,
}

/// The most keys the table remembers whatever `tracking-table-max-keys` says (its 0 means
/// no limit to Redis): a bound on the door's memory.
pub(crate) const KEYS_CAP: usize = 10_000_000;

impl Default for Tracking {
    fn default() -> Tracking {
        Tracking {
            on: AtomicUsize::new(0),
            watched: AtomicUsize::new(0),
            state: Mutex::default(),
            keys_max: AtomicUsize::new(KEYS_MAX),
        }
    }
}

impl Tracking {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether any connection tracks.
    pub(crate) fn active(&self) -> bool {
        self.on.load(Ordering::Acquire) > 0
    }

    /// Whether a change to some key could be sent to anyone: keys remembered, or BCAST
    /// prefixes. Set under the table's lock by every change to it, so a read remembered
    /// before its key changes is seen by the change.
    pub(crate) fn watching(&self) -> bool {
        self.watched.load(Ordering::Acquire) > 0
    }

    fn settle(&self, state: &State) {
        let watched = state.keys.len() + state.prefixes.len();
        self.watched.store(watched, Ordering::Release);
    }

    /// CLIENT TRACKING ON for connection `id`, whose messages go to `inbox` (or to its
    /// redirection). Turning it on again replaces the options, BCAST prefixes added to those
    /// it had. The caller checked the options against each other.
    pub(crate) fn enable(
        &self,
        id: u64,
        inbox: Arc<Inbox>,
        mut options: Options,
    ) -> Result<(), String> {
        let mut state = self.state();
        let had: Vec<Bytes> = state
            .trackers
            .get(&id)
            .map(|tracker| tracker.options.prefixes.clone())
            .unwrap_or_default();
        if options.bcast {
            // No prefix given: every key (the empty prefix), unchecked, as Redis adds it.
            if options.prefixes.is_empty() {
                options.prefixes.push(Bytes::new());
            } else {
                check_prefixes(&had, &options.prefixes)?;
            }
            let new = options.prefixes.iter().filter(|p| !had.contains(p)).count();
            let total: usize = state.prefixes.len();
            if total + new > PREFIXES_MAX {
                return Err(format!(
                    "ERR too many tracking prefixes: the door keeps at most {PREFIXES_MAX}"
                ));
            }
            for prefix in &options.prefixes {
                let ids = state.prefixes.entry(prefix.clone()).or_default();
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
            let mut all = had;
            for prefix in std::mem::take(&mut options.prefixes) {
                if !all.contains(&prefix) {
                    all.push(prefix);
                }
            }
            all.sort();
            options.prefixes = all;
        }
        let tracker = Tracker {
            options,
            inbox,
            broken: false,
        };
        if state.trackers.insert(id, tracker).is_none() {
            self.on.fetch_add(1, Ordering::AcqRel);
        }
        self.settle(&state);
        Ok(())
    }

    /// CLIENT TRACKING OFF, RESET, or the connection closing. The keys it read stay in the
    /// table until changed (a message for a connection no longer tracking is not sent).
    pub(crate) fn disable(&self, id: u64) {
        let mut state = self.state();
        let Some(tracker) = state.trackers.remove(&id) else {
            return;
        };
        self.on.fetch_sub(1, Ordering::AcqRel);
        for prefix in &tracker.options.prefixes {
            if let Some(ids) = state.prefixes.get_mut(prefix) {
                ids.retain(|other| *other != id);
                if ids.is_empty() {
                    state.prefixes.remove(prefix);
                }
            }
        }
        self.settle(&state);
    }

    /// Connection `id`'s options and whether its redirection broke, if it tracks.
    pub(crate) fn options(&self, id: u64) -> Option<(Options, bool)> {
        let state = self.state();
        let tracker = state.trackers.get(&id)?;
        Some((tracker.options.clone(), tracker.broken))
    }

    /// The most keys remembered before the oldest-found are invalidated (CONFIG GET
    /// tracking-table-max-keys answers it as set; 0 means [`KEYS_CAP`]).
    pub(crate) fn keys_max(&self) -> usize {
        match self.keys_max.load(Ordering::Relaxed) {
            0 => KEYS_CAP,
            max => max.min(KEYS_CAP),
        }
    }

    /// CONFIG GET tracking-table-max-keys: the value set.
    pub(crate) fn keys_max_set(&self) -> usize {
        self.keys_max.load(Ordering::Relaxed)
    }

    /// CONFIG SET tracking-table-max-keys: from the next read remembered on.
    pub(crate) fn set_keys_max(&self, max: usize) {
        self.keys_max.store(max, Ordering::Relaxed);
    }

    /// Connection `id` read `keys` with tracking on: each change to one of them sends it a
    /// message (once).
    pub(crate) fn remember(&self, clients: &Clients, id: u64, keys: &[&Bytes]) {
        let mut state = self.state();
        for key in keys {
            let ids = match state.keys.get_mut(*key) {
                Some(ids) => ids,
                None => state.keys.entry((*key).clone()).or_default(),
            };
            if !ids.contains(&id) {
                ids.push(id);
                state.items += 1;
            }
        }
        let keys_max = self.keys_max();
        if state.keys.len() > keys_max {
            let excess = state.keys.len() - keys_max;
            let evicted: Vec<Bytes> = state.keys.keys().take(excess.max(64)).cloned().collect();
            for key in &evicted {
                invalidate_key(&mut state, clients, 0, key);
            }
        }
        self.settle(&state);
    }

    /// `keys` changed, by connection `writer` (0: by nobody's command, an expiry): each
    /// connection that read one with tracking on, or registered a prefix of one, is sent
    /// its message.
    pub(crate) fn invalidate(&self, clients: &Clients, writer: u64, keys: &[Bytes]) {
        self.invalidate_readers(clients, writer, keys);
        self.broadcast(clients, writer, keys);
    }

    /// The default mode's half of [`Tracking::invalidate`]: each connection that read one
    /// of `keys` with tracking on is sent its message.
    pub(crate) fn invalidate_readers(&self, clients: &Clients, writer: u64, keys: &[Bytes]) {
        let mut state = self.state();
        for key in keys {
            invalidate_key(&mut state, clients, writer, key);
        }
        self.settle(&state);
    }

    /// BCAST's half of [`Tracking::invalidate`]: one message per prefix, to each connection
    /// registered for it, with the changed keys under it. A transaction's keys are sent
    /// together once EXEC has run them, as Redis sends them after the command.
    pub(crate) fn broadcast(&self, clients: &Clients, writer: u64, keys: &[Bytes]) {
        let mut state = self.state();
        if state.prefixes.is_empty() || keys.is_empty() {
            return;
        }
        // BCAST, as Redis sends it: per prefix (in order), the changed keys under it (in
        // order, once each) to each connection registered for it.
        let mut batches: Vec<(u64, Vec<Bytes>)> = Vec::new();
        for (prefix, ids) in &state.prefixes {
            let mut under: Vec<&Bytes> = keys.iter().filter(|k| k.starts_with(prefix)).collect();
            if under.is_empty() {
                continue;
            }
            under.sort();
            under.dedup();
            for id in ids {
                batches.push((*id, under.iter().map(|key| (*key).clone()).collect()));
            }
        }
        for (id, batch) in batches {
            send(&mut state, clients, writer, id, Some(batch));
        }
    }

    /// FLUSHALL / FLUSHDB: every tracking connection is told to drop everything.
    pub(crate) fn flush(&self, clients: &Clients) {
        let mut state = self.state();
        state.keys.clear();
        state.items = 0;
        self.settle(&state);
        let ids: Vec<u64> = state.trackers.keys().copied().collect();
        for id in ids {
            send(&mut state, clients, 0, id, None);
        }
    }

    /// INFO: connections tracking, keys remembered, (key, connection) pairs, prefixes.
    pub(crate) fn counts(&self) -> (usize, usize, usize, usize) {
        let state = self.state();
        (
            state.trackers.len(),
            state.keys.len(),
            state.items,
            state.prefixes.len(),
        )
    }
}

/// Sends the default-mode message for `key` to each connection that read it, and forgets it.
fn invalidate_key(state: &mut State, clients: &Clients, writer: u64, key: &Bytes) {
    let Some(ids) = state.keys.remove(key) else {
        return;
    };
    state.items -= ids.len();
    for id in ids {
        let bcast = state
            .trackers
            .get(&id)
            .is_none_or(|tracker| tracker.options.bcast);
        if !bcast {
            send(state, clients, writer, id, Some(vec![key.clone()]));
        }
    }
}

/// Hands connection `id` (if it still tracks) its message about `keys`, unless it made the
/// change itself with NOLOOP; to its redirection's inbox if it has one.
fn send(state: &mut State, clients: &Clients, writer: u64, id: u64, keys: Option<Vec<Bytes>>) {
    let Some(tracker) = state.trackers.get_mut(&id) else {
        return;
    };
    if tracker.options.noloop && id == writer {
        return;
    }
    if tracker.options.redirect == 0 {
        let message = Message::Invalidate {
            keys,
            redirected: false,
        };
        tracker.inbox.push(message);
        return;
    }
    match clients.inbox(tracker.options.redirect) {
        Some(inbox) => inbox.push(Message::Invalidate {
            keys,
            redirected: true,
        }),
        None => {
            tracker.broken = true;
            let message = Message::RedirectBroken(tracker.options.redirect);
            tracker.inbox.push(message);
        }
    }
}

/// Redis's rule: a connection's prefixes must not overlap (none a prefix of another), among
/// those it had and those given.
fn check_prefixes(had: &[Bytes], given: &[Bytes]) -> Result<(), String> {
    let overlap = |a: &Bytes, b: &Bytes| a.starts_with(b) || b.starts_with(a);
    for (at, prefix) in given.iter().enumerate() {
        if let Some(existing) = had.iter().find(|old| overlap(old, prefix)) {
            return Err(format!(
                "ERR Prefix '{}' overlaps with an existing prefix '{}'. Prefixes for a single \
                 client must not overlap.",
                String::from_utf8_lossy(prefix),
                String::from_utf8_lossy(existing)
            ));
        }
        if let Some(other) = given[at + 1..].iter().find(|other| overlap(other, prefix)) {
            return Err(format!(
                "ERR Prefix '{}' overlaps with another provided prefix '{}'. Prefixes for a \
                 single client must not overlap.",
                String::from_utf8_lossy(prefix),
                String::from_utf8_lossy(other)
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registered(clients: &Clients, id: u64) -> Arc<Inbox> {
        let address = "127.0.0.1:1".parse().unwrap();
        let shown = crate::clients::Shown {
            name: None,
            library_name: None,
            library_version: None,
            resp: 3,
            multi: -1,
            subscriptions: (0, 0, 0),
            monitor: false,
            command: None,
            active: std::time::Instant::now(),
            tracking: None,
            tracking_broken: false,
        };
        let (client, _) = clients.register(id, address, shown);
        client.inbox.clone()
    }

    fn keys(message: &Message) -> Option<Vec<&[u8]>> {
        match message {
            Message::Invalidate { keys, .. } => keys
                .as_ref()
                .map(|keys| keys.iter().map(|key| &key[..]).collect()),
            Message::RedirectBroken(_) => None,
        }
    }

    #[test]
    fn a_read_key_is_invalidated_once_and_noloop_skips_the_own_changes() {
        let (clients, tracking) = (Clients::default(), Tracking::default());
        let (one, two) = (registered(&clients, 1), registered(&clients, 2));
        tracking.enable(1, one.clone(), Options::default()).unwrap();
        let noloop = Options {
            noloop: true,
            ..Options::default()
        };
        tracking.enable(2, two.clone(), noloop).unwrap();
        assert!(tracking.active());
        let k = Bytes::from_static(b"k");
        tracking.remember(&clients, 1, &[&k]);
        tracking.remember(&clients, 2, &[&k]);
        assert_eq!(tracking.counts(), (2, 1, 2, 0));
        tracking.invalidate(&clients, 2, std::slice::from_ref(&k));
        let got = one.drain();
        assert_eq!(got.len(), 1);
        assert_eq!(keys(&got[0]), Some(vec![&b"k"[..]]));
        assert!(two.drain().is_empty(), "NOLOOP: not told of its own change");
        // Forgotten once told.
        tracking.invalidate(&clients, 2, std::slice::from_ref(&k));
        assert!(one.drain().is_empty());
        tracking.disable(1);
        tracking.disable(2);
        assert!(!tracking.active());
    }

    #[test]
    fn bcast_sends_per_prefix_the_keys_under_it_sorted_once_each() {
        let (clients, tracking) = (Clients::default(), Tracking::default());
        let inbox = registered(&clients, 7);
        let options = Options {
            bcast: true,
            prefixes: vec![Bytes::from_static(b"user:"), Bytes::from_static(b"order:")],
            ..Options::default()
        };
        tracking.enable(7, inbox.clone(), options).unwrap();
        let changed: Vec<Bytes> = ["user:2", "order:9", "x", "user:1", "user:2"]
            .into_iter()
            .map(Bytes::from)
            .collect();
        tracking.invalidate(&clients, 1, &changed);
        let got = inbox.drain();
        let got: Vec<_> = got.iter().map(keys).collect();
        assert_eq!(
            got,
            vec![
                Some(vec![&b"order:9"[..]]),
                Some(vec![&b"user:1"[..], &b"user:2"[..]])
            ]
        );
        let overlapping = Options {
            bcast: true,
            prefixes: vec![Bytes::from_static(b"use")],
            ..Options::default()
        };
        let refused = tracking.enable(7, inbox, overlapping).unwrap_err();
        assert!(
            refused.contains("overlaps with an existing prefix 'user:'"),
            "{refused}"
        );
        assert!(check_prefixes(&[], &[Bytes::from("a"), Bytes::from("ab")])
            .unwrap_err()
            .contains("overlaps with another provided prefix 'ab'"));
    }

    #[test]
    fn a_full_inbox_ends_with_invalidate_everything_and_a_full_table_evicts() {
        let inbox = Inbox::default();
        for n in 0..INBOX_MESSAGES_MAX + 5 {
            inbox.push(Message::Invalidate {
                keys: Some(vec![Bytes::from(n.to_string())]),
                redirected: false,
            });
        }
        let drained = inbox.drain();
        assert_eq!(keys(drained.last().unwrap()), None, "{:?}", drained.last());
        assert!(drained.len() < INBOX_MESSAGES_MAX);
        assert!(!inbox.has_messages());

        let clients = Clients::default();
        let tracking = Tracking {
            keys_max: AtomicUsize::new(100),
            ..Tracking::default()
        };
        // Redis's 0 (no limit) is the cap here; another value is itself.
        assert_eq!(Tracking::default().keys_max(), KEYS_MAX);
        let unlimited = Tracking::default();
        unlimited.set_keys_max(0);
        assert_eq!(
            (unlimited.keys_max(), unlimited.keys_max_set()),
            (KEYS_CAP, 0)
        );
        let mine = registered(&clients, 3);
        tracking
            .enable(3, mine.clone(), Options::default())
            .unwrap();
        let many: Vec<Bytes> = (0..150).map(|n| Bytes::from(format!("k{n}"))).collect();
        for key in &many {
            tracking.remember(&clients, 3, &[key]);
        }
        let (_, remembered, items, _) = tracking.counts();
        assert!(
            remembered <= 100 && items == remembered,
            "{remembered} {items}"
        );
        // Every key forgotten was invalidated: the client drops what it can no longer hear of.
        assert_eq!(mine.drain().len(), 150 - remembered);
    }

    #[test]
    fn messages_are_shaped_for_the_connection_that_gets_them() {
        let keys = Some(vec![Bytes::from_static(b"k")]);
        let own = Message::Invalidate {
            keys: keys.clone(),
            redirected: false,
        };
        let redirected = Message::Invalidate {
            keys,
            redirected: true,
        };
        assert!(matches!(
            own.clone().reply(Protocol::Resp3, false),
            Some(Reply::Push(items)) if items[0] == Reply::text("invalidate")
        ));
        assert_eq!(
            own.reply(Protocol::Resp2, true),
            None,
            "RESP2 needs a redirection"
        );
        assert!(matches!(
            redirected.clone().reply(Protocol::Resp2, true),
            Some(Reply::Push(items)) if items[1] == Reply::text("__redis__:invalidate")
        ));
        assert_eq!(redirected.reply(Protocol::Resp2, false), None);
        assert_eq!(
            Message::RedirectBroken(4).reply(Protocol::Resp2, false),
            None
        );
    }
}
