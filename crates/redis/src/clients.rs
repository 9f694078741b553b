//! Every connection of the listener, for CLIENT LIST and CLIENT KILL: what each session last
//! published of itself (once per read of commands, not per command), and a switch that
//! closes it.
//!
//! Closing is the session's own stop signal: it finishes writing the replies it decided and
//! closes, as it does when the listener stops (which closes every client through here).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::watch;

use crate::codec::Reply;
use crate::commands::printable;
use crate::server::Shared;
use crate::session::Session;

/// What CLIENT LIST shows of one connection.
#[derive(Debug, Clone)]
pub(crate) struct Shown {
    pub(crate) name: Option<Bytes>,
    pub(crate) library_name: Option<Bytes>,
    pub(crate) library_version: Option<Bytes>,
    /// 2 or 3.
    pub(crate) resp: u8,
    /// Commands queued in MULTI; -1 outside one.
    pub(crate) multi: i64,
    /// Channels, patterns and shard channels subscribed to.
    pub(crate) subscriptions: (usize, usize, usize),
    pub(crate) monitor: bool,
    /// The last command's name as sent (`cmd=`, lowercased when shown).
    pub(crate) command: Option<Bytes>,
    /// When the last command was read (`idle=`).
    pub(crate) active: Instant,
    /// CLIENT TRACKING on: its redirection (0: none) and whether it is BCAST (`flags=t`,
    /// `B`, `redir=`).
    pub(crate) tracking: Option<(u64, bool)>,
    /// Its redirection's target is gone (`flags=R`).
    pub(crate) tracking_broken: bool,
}

/// One connection's entry.
pub(crate) struct Client {
    address: SocketAddr,
    connected: Instant,
    shown: Mutex<Shown>,
    close: watch::Sender<bool>,
    /// Sent by each CLIENT UNBLOCK that found the connection blocked: how the blocked
    /// command is to end.
    unblock: watch::Sender<Unblocked>,
    /// Blocking commands of this connection waiting now ([`Waiting::blocked`]).
    blocked: AtomicUsize,
    /// Its client-side caching messages (`tracking.rs`): its own, and those other
    /// connections redirect to it.
    pub(crate) inbox: Arc<crate::tracking::Inbox>,
}

/// How CLIENT UNBLOCK ends a blocked command: as its timeout would (the default), or with
/// an `-UNBLOCKED` error.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum Unblocked {
    #[default]
    Timeout,
    Error,
}

/// A blocking command's wait, made when the command starts (an unblock asked before that
/// is not its own): counted in INFO's `blocked_clients` while it waits, and ended by CLIENT
/// UNBLOCK.
pub(crate) struct Waiting {
    shared: Arc<Shared>,
    client: Option<Arc<Client>>,
    unblocked: Option<watch::Receiver<Unblocked>>,
    counted: bool,
    how: Option<Unblocked>,
}

impl Waiting {
    pub(crate) fn new(session: &Session) -> Waiting {
        let client = session.client.clone();
        let unblocked = client.as_ref().map(|client| client.unblock.subscribe());
        Waiting {
            shared: session.shared.clone(),
            client,
            unblocked,
            counted: false,
            how: None,
        }
    }

    /// The command waits from now on: INFO counts it and CLIENT UNBLOCK finds it blocked.
    pub(crate) fn blocked(&mut self) {
        if self.counted {
            return;
        }
        self.counted = true;
        self.shared.blocked.fetch_add(1, Ordering::Relaxed);
        if let Some(client) = &self.client {
            client.blocked.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// Resolves when CLIENT UNBLOCK asks this connection's blocked command to end (never,
    /// for a connection without an entry).
    pub(crate) async fn unblocked(&mut self) {
        let Some(receiver) = &mut self.unblocked else {
            return std::future::pending().await;
        };
        if receiver.changed().await.is_err() {
            return std::future::pending().await;
        }
        self.how = Some(*receiver.borrow_and_update());
    }

    /// The reply of a command that ended without what it waited for: `timed_out`, or the
    /// error CLIENT UNBLOCK … ERROR asked for.
    pub(crate) fn reply(&self, timed_out: Reply) -> Reply {
        match self.how {
            Some(Unblocked::Error) => Reply::error("UNBLOCKED client unblocked via CLIENT UNBLOCK"),
            _ => timed_out,
        }
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if !self.counted {
            return;
        }
        self.shared.blocked.fetch_sub(1, Ordering::Relaxed);
        if let Some(client) = &self.client {
            client.blocked.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl Client {
    /// What this connection shows from now on (its own lock: no other connection's).
    pub(crate) fn publish(&self, shown: Shown) {
        *self.shown.lock().unwrap_or_else(|p| p.into_inner()) = shown;
    }
}

#[derive(Default)]
struct Inner {
    by_id: BTreeMap<u64, Arc<Client>>,
    /// The listener stops: a connection that registers now is closed at once.
    closing: bool,
}

/// Which connections a CLIENT LIST or CLIENT KILL is about.
#[derive(Debug, Default)]
pub(crate) struct Filter {
    pub(crate) ids: Option<Vec<u64>>,
    /// `normal` or `pubsub` (Omnibus has no replicas or masters: those match nothing).
    pub(crate) kind: Option<String>,
    pub(crate) address: Option<String>,
    pub(crate) local_address: Option<String>,
    /// CLIENT KILL's SKIPME: the connection asking is left out.
    pub(crate) skip: Option<u64>,
    /// CLIENT KILL's MAXAGE: only connections older than this many seconds.
    pub(crate) older_than_seconds: Option<u64>,
}

#[derive(Default)]
pub(crate) struct Clients {
    inner: Mutex<Inner>,
}

impl Clients {
    /// Registers connection `id`: its entry, and a receiver that turns true when it is to
    /// close.
    pub(crate) fn register(
        &self,
        id: u64,
        address: SocketAddr,
        shown: Shown,
    ) -> (Arc<Client>, watch::Receiver<bool>) {
        let mut inner = self.lock();
        let (close, closed) = watch::channel(inner.closing);
        let client = Arc::new(Client {
            address,
            connected: Instant::now(),
            shown: Mutex::new(shown),
            close,
            unblock: watch::Sender::new(Unblocked::Timeout),
            blocked: AtomicUsize::new(0),
            inbox: Arc::default(),
        });
        inner.by_id.insert(id, client.clone());
        (client, closed)
    }

    /// CLIENT UNBLOCK: ends connection `id`'s blocked command `how`; whether it was blocked.
    pub(crate) fn unblock(&self, id: u64, how: Unblocked) -> bool {
        let Some(client) = self.lock().by_id.get(&id).cloned() else {
            return false;
        };
        if client.blocked.load(Ordering::Acquire) == 0 {
            return false;
        }
        client.unblock.send_replace(how);
        true
    }

    /// Connection `id`'s inbox of client-side caching messages, if it is open.
    pub(crate) fn inbox(&self, id: u64) -> Option<Arc<crate::tracking::Inbox>> {
        self.lock()
            .by_id
            .get(&id)
            .map(|client| client.inbox.clone())
    }

    /// Connections open (INFO's `connected_clients`).
    pub(crate) fn len(&self) -> usize {
        self.lock().by_id.len()
    }

    pub(crate) fn unregister(&self, id: u64) {
        self.lock().by_id.remove(&id);
    }

    /// Closes every connection, and any that registers later (the listener stops).
    pub(crate) fn close_all(&self) {
        let mut inner = self.lock();
        inner.closing = true;
        for client in inner.by_id.values() {
            let _ = client.close.send(true);
        }
    }

    /// CLIENT LIST: a line for each connection `filter` matches, oldest first.
    pub(crate) fn list(&self, filter: &Filter, local_port: u16) -> String {
        let clients: Vec<(u64, Arc<Client>)> = self
            .lock()
            .by_id
            .iter()
            .map(|(id, client)| (*id, client.clone()))
            .collect();
        let mut text = String::new();
        for (id, client) in clients {
            let shown = client
                .shown
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            if matches(filter, id, &client, &shown, local_port) {
                let blocked = client.blocked.load(Ordering::Acquire) > 0;
                text.push_str(&line(
                    id,
                    client.address,
                    local_port,
                    client.connected,
                    &shown,
                    blocked,
                ));
                text.push('\n');
            }
        }
        text
    }

    /// CLIENT KILL: closes every connection `filter` matches; how many.
    pub(crate) fn kill(&self, filter: &Filter, local_port: u16) -> usize {
        let inner = self.lock();
        let mut killed = 0;
        for (id, client) in &inner.by_id {
            let shown = client
                .shown
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            if matches(filter, *id, client, &shown, local_port) {
                let _ = client.close.send(true);
                killed += 1;
            }
        }
        killed
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn matches(filter: &Filter, id: u64, client: &Client, shown: &Shown, local_port: u16) -> bool {
    let pubsub = shown.subscriptions != (0, 0, 0);
    filter.skip != Some(id)
        && filter.ids.as_ref().is_none_or(|ids| ids.contains(&id))
        && filter.kind.as_deref().is_none_or(|kind| match kind {
            "normal" => !pubsub,
            "pubsub" => pubsub,
            _ => false,
        })
        && filter
            .address
            .as_deref()
            .is_none_or(|address| address == client.address.to_string())
        && filter
            .local_address
            .as_deref()
            .is_none_or(|address| address == format!("127.0.0.1:{local_port}"))
        && filter
            .older_than_seconds
            .is_none_or(|seconds| client.connected.elapsed().as_secs() >= seconds)
}

/// One connection as CLIENT LIST and CLIENT INFO show it, in Redis's field order (the
/// fields about its buffers and file descriptor, which Omnibus does not track, as zero);
/// `blocked` while a blocking command of it waits (flag `b`).
pub(crate) fn line(
    id: u64,
    address: SocketAddr,
    local_port: u16,
    connected: Instant,
    shown: &Shown,
    blocked: bool,
) -> String {
    let text = |value: &Option<Bytes>| {
        value
            .as_ref()
            .map(|v| printable(v, 128))
            .unwrap_or_default()
    };
    let (channels, patterns, shards) = shown.subscriptions;
    let mut flags = String::new();
    if shown.monitor {
        flags.push('O');
    }
    if shown.subscriptions != (0, 0, 0) {
        flags.push('P');
    }
    if shown.multi >= 0 {
        flags.push('x');
    }
    if blocked {
        flags.push('b');
    }
    if shown.tracking.is_some() {
        flags.push('t');
    }
    if shown.tracking_broken {
        flags.push('R');
    }
    if shown.tracking.is_some_and(|(_, bcast)| bcast) {
        flags.push('B');
    }
    if flags.is_empty() {
        flags.push('N');
    }
    let command = shown.command.as_ref().map_or_else(
        || "NULL".to_string(),
        |name| String::from_utf8_lossy(name).to_ascii_lowercase(),
    );
    format!(
        "id={id} addr={address} laddr=127.0.0.1:{local_port} fd=0 name={} age={} idle={} \
         flags={flags} db=0 sub={channels} psub={patterns} ssub={shards} multi={} qbuf=0 \
         qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 \
         events=r cmd={command} user=default redir={} resp={} lib-name={} lib-ver={}",
        text(&shown.name),
        connected.elapsed().as_secs(),
        shown.active.elapsed().as_secs(),
        shown.multi,
        shown.tracking.map_or(-1, |(redirect, _)| redirect as i64),
        shown.resp,
        text(&shown.library_name),
        text(&shown.library_version),
    )
}
