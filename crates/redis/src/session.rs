//! One connection's I/O loop. It decodes every complete command in what it has read, runs
//! them in order (each change is visible to the next command at once), then waits for the
//! durability of all their writes — they share group commits — and writes the replies in
//! order. A pipeline of a thousand SETs costs a few fsyncs, not a thousand.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use omnibus_engine::keys::{Commit, Keyspace};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::codec::{decode_request, encode, Protocol, Reply};
use crate::commands;
use crate::error::RedisError;
use crate::pubsub::Subscriptions;
use crate::server::Shared;

/// A reply that needs the engine asynchronously (a PUBLISH to a captured subject).
pub(crate) type Later = Pin<Box<dyn Future<Output = Reply> + Send>>;

/// What running one command gives: its reply, the writes it waits on before the reply may be
/// sent, and whether the connection closes after it.
pub(crate) struct Step {
    pub(crate) reply: Reply,
    pub(crate) commits: Vec<Commit>,
    pub(crate) close: bool,
    /// Replaces `reply` once it resolves.
    pub(crate) later: Option<Later>,
}

impl From<Reply> for Step {
    fn from(reply: Reply) -> Step {
        Step {
            reply,
            commits: Vec::new(),
            close: false,
            later: None,
        }
    }
}

/// A MULTI in progress.
#[derive(Default)]
pub(crate) struct Transaction {
    pub(crate) queued: Vec<Vec<Bytes>>,
    /// A queued command was refused (unknown, wrong arity): EXEC answers EXECABORT.
    pub(crate) failed: bool,
}

/// The state of one connection that commands read and change.
pub(crate) struct Session {
    pub(crate) shared: Arc<Shared>,
    pub(crate) keys: Arc<Keyspace>,
    pub(crate) id: u64,
    pub(crate) address: SocketAddr,
    pub(crate) protocol: Protocol,
    pub(crate) name: Option<Bytes>,
    pub(crate) library_name: Option<Bytes>,
    pub(crate) library_version: Option<Bytes>,
    pub(crate) transaction: Option<Transaction>,
    /// Keys under WATCH, with what they held then.
    pub(crate) watched: Vec<(Bytes, crate::commands::Watched)>,
    pub(crate) subscriptions: Subscriptions,
}

/// Replies decided but not yet written, with the writes each waits on.
#[derive(Default)]
struct Pending {
    replies: Vec<(Reply, Vec<Commit>, Option<Later>)>,
    bytes: usize,
    /// A reply that reads asynchronously (XRANGE, XREAD, …) waits among them.
    reads: bool,
}

/// Commands run before their replies are waited for and written: this bounds what one
/// connection can queue in the engine (a stream's writer queue among it).
pub(crate) const PENDING_REPLIES_MAX: usize = 16_384;

pub(crate) async fn run(
    mut stream: TcpStream,
    shared: Arc<Shared>,
    id: u64,
    address: SocketAddr,
    mut stopped: watch::Receiver<bool>,
) -> Result<(), RedisError> {
    let keys = shared.engine.keyspace().await?;
    let shared_pubsub = shared.pubsub.clone();
    let limits = shared.config.limits();
    let mut session = Session {
        shared,
        keys,
        id,
        address,
        protocol: Protocol::Resp2,
        name: None,
        library_name: None,
        library_version: None,
        transaction: None,
        watched: Vec::new(),
        subscriptions: Subscriptions::new(shared_pubsub),
    };
    let mut deliveries = Vec::new();
    let mut input = BytesMut::with_capacity(16 * 1024);
    let mut output = BytesMut::with_capacity(16 * 1024);
    let mut pending = Pending::default();
    loop {
        loop {
            let arguments = match decode_request(&mut input, &limits) {
                Ok(Some(arguments)) => arguments,
                Ok(None) => break,
                Err(error) => {
                    pending.push(Reply::error(format!("ERR {error}")), Vec::new(), None);
                    flush(
                        &mut stream,
                        &mut pending,
                        session.protocol,
                        &mut output,
                        &mut stopped,
                    )
                    .await?;
                    return Err(error.into());
                }
            };
            let changes_a_stream = commands::changes_a_stream(&arguments[0]);
            if changes_a_stream && pending.reads {
                flush(
                    &mut stream,
                    &mut pending,
                    session.protocol,
                    &mut output,
                    &mut stopped,
                )
                .await?;
            }
            let step = commands::run(&mut session, arguments);
            pending.reads |= step.later.is_some() && !changes_a_stream;
            let counters = session
                .shared
                .engine
                .metrics()
                .door(omnibus_engine::metrics::Door::Redis);
            counters.request();
            if matches!(step.reply, Reply::Error(_)) {
                counters.error();
            }
            pending.push(step.reply, step.commits, step.later);
            if step.close {
                flush(
                    &mut stream,
                    &mut pending,
                    session.protocol,
                    &mut output,
                    &mut stopped,
                )
                .await?;
                let _ = stream.shutdown().await;
                return Ok(());
            }
            // Bounds the replies a pipeline of large GETs can pile up before reading on.
            if pending.bytes >= session.shared.config.pending_reply_bytes_max
                || pending.replies.len() >= PENDING_REPLIES_MAX
            {
                flush(
                    &mut stream,
                    &mut pending,
                    session.protocol,
                    &mut output,
                    &mut stopped,
                )
                .await?;
            }
        }
        flush(
            &mut stream,
            &mut pending,
            session.protocol,
            &mut output,
            &mut stopped,
        )
        .await?;
        let mailbox = session.subscriptions.mailbox().cloned();
        tokio::select! {
            read = stream.read_buf(&mut input) => {
                if read? == 0 {
                    return Ok(());
                }
            }
            Some(mailbox) = ready(mailbox) => {
                if mailbox.is_slow() {
                    // Redis closes a subscriber over its output limit too.
                    tracing::warn!(peer = %session.address, "closing a slow Redis subscriber");
                    return Ok(());
                }
                // A budget at a time, written out before the next, until nothing waits.
                while mailbox.pending().0 > 0 {
                    mailbox.take(&mut deliveries, session.shared.config.pending_reply_bytes_max);
                    for delivery in deliveries.drain(..) {
                        if let Some(message) = session.subscriptions.message(&delivery) {
                            encode(&message, session.protocol, &mut output);
                        }
                    }
                    stream.write_all(&output).await?;
                    output.clear();
                }
            }
            // Mapped to (): the guard `wait_for` returns must not live across the awaits of
            // the other branches.
            () = async { let _ = stopped.wait_for(|stop| *stop).await; } => {
                // Every reply decided so far is written; Redis closes without a word too.
                return Ok(());
            }
        }
    }
}

impl Pending {
    fn push(&mut self, reply: Reply, commits: Vec<Commit>, later: Option<Later>) {
        self.bytes += estimated_size(&reply);
        self.replies.push((reply, commits, later));
    }
}

/// Resolves with the mailbox once deliveries may wait in it; never without one.
async fn ready(
    mailbox: Option<Arc<omnibus_engine::router::Mailbox>>,
) -> Option<Arc<omnibus_engine::router::Mailbox>> {
    match mailbox {
        Some(mailbox) => {
            mailbox.ready().await;
            Some(mailbox)
        }
        None => std::future::pending().await,
    }
}

/// Waits for the writes behind each pending reply (in order: an error replaces its reply),
/// then writes all the replies.
async fn flush(
    stream: &mut TcpStream,
    pending: &mut Pending,
    protocol: Protocol,
    output: &mut BytesMut,
    stopped: &mut watch::Receiver<bool>,
) -> Result<(), RedisError> {
    if pending.replies.is_empty() {
        return Ok(());
    }
    for (reply, commits, later) in pending.replies.drain(..) {
        let reply = match later {
            // A blocked read (XREAD BLOCK 0) must not hold up a shutdown.
            Some(later) => tokio::select! {
                reply = later => reply,
                _ = stopped.wait_for(|stop| *stop) => return Ok(()),
            },
            None => reply,
        };
        let mut failure = None;
        for commit in commits {
            if let Err(error) = commit.wait().await {
                failure.get_or_insert(error);
            }
        }
        let reply = match failure {
            Some(error) => Reply::error(format!("ERR {error}")),
            None => reply,
        };
        encode(&reply, protocol, output);
    }
    pending.bytes = 0;
    pending.reads = false;
    stream.write_all(output).await?;
    output.clear();
    Ok(())
}

fn estimated_size(reply: &Reply) -> usize {
    match reply {
        Reply::Bulk(bytes) => bytes.len() + 16,
        Reply::Array(items) | Reply::Push(items) | Reply::Many(items) => {
            16 + items.iter().map(estimated_size).sum::<usize>()
        }
        Reply::Map(pairs) => {
            16 + pairs
                .iter()
                .map(|(key, value)| estimated_size(key) + estimated_size(value))
                .sum::<usize>()
        }
        Reply::Status(text) | Reply::Error(text) => text.len() + 3,
        Reply::Integer(_) | Reply::Null | Reply::NullArray => 24,
    }
}
