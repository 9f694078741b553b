//! One connection's I/O loop. It decodes every complete command in what it has read, runs
//! them in order (each change is visible to the next command at once) and queues their
//! replies; each reply is written, in order, once its writes are durable — they share group
//! commits. A pipeline of a thousand SETs costs a few fsyncs, not a thousand.
//!
//! While replies wait only for durability, the session reads and runs the commands that
//! arrive meanwhile, so a pipelining client's next XADDs join the group commit after the one
//! under way instead of waiting for its replies first (one fsync round trip per pipeline
//! window). It stops running commands at a read still pending (a later command must not
//! overtake it, as in Redis) and at the connection's budget: `PENDING_REPLIES_MAX` replies or
//! `pending_reply_bytes_max` bytes of replies and of the requests still waiting. Behind a
//! pending read it still reads the socket, holding what arrives, to see the client go away.
//! The queue of replies decided and not yet written is `replies.rs`.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use omnibus_engine::keys::{Commit, Keyspace};
use omnibus_listener::Accepted;
use omnibus_types::ReadRoom;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::clients::Shown;
use crate::codec::{decode_request, encode, Protocol, Reply};
use crate::commands;
use crate::error::RedisError;
use crate::pubsub::Subscriptions;
use crate::server::Shared;
use crate::streams::writer::Change;

mod replies;

use replies::{estimated_size, finish, settle, Pending, Waiting};

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

impl Step {
    /// A reply the session awaits, in order with the others, before sending it: a read of
    /// the engine, a stream writer's answer.
    pub(crate) fn later(future: impl Future<Output = Reply> + Send + 'static) -> Step {
        Step {
            reply: Reply::Null,
            commits: Vec::new(),
            close: false,
            later: Some(Box::pin(future)),
        }
    }
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
    /// EXEC is running the queued commands: blocking commands answer at once.
    pub(crate) in_exec: bool,
    /// Inside EXEC: the keys its commands changed, for BCAST tracking's messages, sent
    /// once it has run (`commands/tracking.rs`).
    pub(crate) broadcasts_held: Option<Vec<Bytes>>,
    /// A script or EXEC is running: the fsyncs of the XADDs it made, which its reply waits
    /// for (an XADD there gets its ID at once; `commands/held.rs`).
    pub(crate) script_appends: Option<Vec<tokio::sync::oneshot::Receiver<Reply>>>,
    /// MONITOR: the lines of every client's commands, from `Shared::monitors`.
    pub(crate) monitor: Option<tokio::sync::mpsc::Receiver<Bytes>>,
    /// The name of the command running, as read (a slice of the read's buffer: dropped with
    /// the read, so that an idle connection does not hold the buffer).
    pub(crate) command_now: Option<Bytes>,
    /// The table position of the command that ran last (set by `commands::run`), for an
    /// error its later reply may resolve to (`replies.rs`).
    pub(crate) ran: Option<usize>,
    /// The name of the last command of the last read, a copy (CLIENT LIST's `cmd`), and when
    /// that read came (`idle`).
    pub(crate) last_command: Option<Bytes>,
    pub(crate) active: std::time::Instant,
    /// This connection's entry among the listener's clients (set once registered).
    pub(crate) client: Option<Arc<crate::clients::Client>>,
    /// CLIENT TRACKING's options while it is on (`commands/tracking.rs`).
    pub(crate) tracking: Option<crate::tracking::Options>,
    /// CLIENT CACHING was given for the next command (OPTIN: remember its reads; OPTOUT:
    /// do not).
    pub(crate) caching: bool,
    /// CLIENT REPLY OFF: no reply is written (pushes still are).
    pub(crate) replies_off: bool,
    /// CLIENT REPLY SKIP: the next command's reply is not written (`skip_next` until the
    /// SKIP itself has run, then `skip`).
    pub(crate) reply_skip: bool,
    pub(crate) reply_skip_next: bool,
}

impl Session {
    /// Starts MONITOR mode; false when the connection already monitors.
    pub(crate) fn start_monitoring(&mut self) -> bool {
        if self.monitor.is_some() {
            return false;
        }
        self.monitor = Some(self.shared.monitors.watch(self.id));
        true
    }

    /// What CLIENT LIST shows of this connection now.
    pub(crate) fn shown(&self) -> Shown {
        Shown {
            name: self.name.clone(),
            library_name: self.library_name.clone(),
            library_version: self.library_version.clone(),
            resp: if self.protocol == Protocol::Resp3 {
                3
            } else {
                2
            },
            multi: self
                .transaction
                .as_ref()
                .map_or(-1, |transaction| transaction.queued.len() as i64),
            subscriptions: self.subscriptions.counts(),
            monitor: self.monitor.is_some(),
            command: self.last_command.clone(),
            active: self.active,
            tracking: self
                .tracking
                .as_ref()
                .map(|options| (options.redirect, options.bcast)),
            tracking_broken: self.tracking.is_some()
                && self
                    .shared
                    .tracking
                    .options(self.id)
                    .is_some_and(|(_, broken)| broken),
        }
    }

    /// Hands what CLIENT LIST shows of this connection to the other connections.
    pub(crate) fn publish(&self) {
        if let Some(client) = &self.client {
            client.publish(self.shown());
        }
    }

    /// Ends MONITOR mode (RESET).
    pub(crate) fn stop_monitoring(&mut self) {
        if self.monitor.take().is_some() {
            self.shared.monitors.unwatch(self.id);
        }
    }
}

impl Session {
    /// Queues the client-side caching messages waiting for this connection, as its protocol
    /// and subscriptions let it get them (`tracking.rs`).
    fn take_invalidations(&self, out: &mut Vec<Reply>) {
        let Some(client) = &self.client else {
            return;
        };
        if !client.inbox.has_messages() {
            return;
        }
        let subscribed = self.subscriptions.count() > 0;
        for message in client.inbox.drain() {
            out.extend(message.reply(self.protocol, subscribed));
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if self.tracking.is_some() {
            self.shared.tracking.disable(self.id);
        }
        self.stop_monitoring();
        self.shared.clients.unregister(self.id);
    }
}

/// What the session does after running what it had read.
enum Next {
    /// Read on (or wait for the replies queued).
    Continue,
    /// The connection closes once every reply is written.
    Close,
    /// Writing replies failed: the connection is gone.
    Broken(RedisError),
}

pub(crate) async fn run(accepted: Accepted, shared: Arc<Shared>) -> Result<(), RedisError> {
    let Accepted {
        mut stream,
        address,
        id,
        stopped: listener_stopped,
    } = accepted;
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
        in_exec: false,
        broadcasts_held: None,
        script_appends: None,
        monitor: None,
        command_now: None,
        ran: None,
        last_command: None,
        active: std::time::Instant::now(),
        client: None,
        tracking: None,
        caching: false,
        replies_off: false,
        reply_skip: false,
        reply_skip_next: false,
    };
    // From here the session stops when its entry among the clients is closed: by CLIENT
    // KILL, or by the listener stopping (`Clients::close_all`).
    let (client, mut stopped) = session
        .shared
        .clients
        .register(id, address, session.shown());
    session.client = Some(client);
    if *listener_stopped.borrow() {
        return Ok(());
    }
    let mut deliveries = Vec::new();
    // A pipeline, read in bigger pieces, is appended in bigger batches.
    let mut room = ReadRoom::new();
    let mut input = BytesMut::with_capacity(room.get());
    let mut output = BytesMut::with_capacity(16 * 1024);
    let mut pending = Pending::counting_for(session.shared.clone());
    let bytes_max = session.shared.config.pending_reply_bytes_max;
    loop {
        // Commands that arrived while a read waits (XREAD BLOCK) stay in `input` until it is
        // answered, as a blocked Redis client's do.
        let next = if pending.reads > 0 {
            Ok(Next::Continue)
        } else {
            run_commands(
                &mut session,
                &mut input,
                &limits,
                &mut pending,
                &mut stream,
                &mut output,
                &mut stopped,
            )
            .await
        };
        match next {
            Ok(Next::Continue) => {}
            Ok(Next::Broken(error)) => return Err(error),
            Ok(Next::Close) => {
                finish(
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
            Err(error) => {
                pending.push(Waiting::Ready(Reply::error(format!("ERR {error}"))), 0);
                finish(
                    &mut stream,
                    &mut pending,
                    session.protocol,
                    &mut output,
                    &mut stopped,
                )
                .await?;
                return Err(error.into());
            }
        }
        if !pending.replies.is_empty() {
            // Reading on while replies wait for durability lets a pipeline's next commands
            // join the group commit after the one under way, instead of waiting a round trip
            // for it. Not past a read (a later command must not overtake it, as in Redis),
            // and not past the connection's budget.
            let reading = pending.reads == 0 && !pending.full(bytes_max);
            // While a read waits, the socket is still read (what arrives is held, up to the
            // budget) so that a client going away is seen at once: Redis unblocks a client
            // that disconnects, and a blocked XREADGROUP must not go on to hand the next
            // entry to a consumer nobody is reading for.
            let watching = pending.reads > 0 && input.len() < bytes_max;
            let spare = room.prepare(&mut input, 0);
            let ended = tokio::select! {
                biased;
                reply = pending.head() => {
                    pending.pop();
                    encode(&reply, session.protocol, &mut output);
                    pending.encode_ready(session.protocol, &mut output).await;
                    stream.write_all(&output).await?;
                    output.clear();
                    false
                }
                // At the end of input the client still reads what it was promised.
                read = stream.read_buf(&mut input), if reading || watching => {
                    let count = read?;
                    room.after_read(count, spare);
                    if count == 0 && pending.reads > 0 {
                        // Gone while a read waits: the waiting reads are dropped unanswered
                        // (nothing is delivered to them), the writes before them stay done.
                        return Ok(());
                    }
                    count == 0
                }
                () = async { let _ = stopped.wait_for(|stop| *stop).await; } => true,
            };
            if ended {
                finish(
                    &mut stream,
                    &mut pending,
                    session.protocol,
                    &mut output,
                    &mut stopped,
                )
                .await?;
                return Ok(());
            }
            continue;
        }
        let mailbox = session.subscriptions.mailbox().cloned();
        let spare = room.prepare(&mut input, 0);
        let monitoring = session.monitor.is_some();
        let inbox = session.client.as_ref().map(|client| client.inbox.clone());
        tokio::select! {
            line = next_line(&mut session.monitor), if monitoring => {
                let Some(line) = line else {
                    // Dropped for falling behind (`monitor.rs`): Redis closes such a client.
                    tracing::warn!(peer = %session.address, "closing a slow Redis monitor");
                    return Ok(());
                };
                // Everything waiting goes out in one write.
                output.extend_from_slice(&line);
                while let Some(Ok(line)) = session.monitor.as_mut().map(|lines| lines.try_recv()) {
                    output.extend_from_slice(&line);
                    if output.len() >= bytes_max {
                        break;
                    }
                }
                stream.write_all(&output).await?;
                output.clear();
            }
            read = stream.read_buf(&mut input) => {
                let count = read?;
                if count == 0 {
                    return Ok(());
                }
                room.after_read(count, spare);
            }
            () = invalidations(inbox.as_deref()) => {
                let mut messages = Vec::new();
                session.take_invalidations(&mut messages);
                for message in &messages {
                    encode(message, session.protocol, &mut output);
                }
                if !output.is_empty() {
                    stream.write_all(&output).await?;
                    output.clear();
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
                    mailbox.take(&mut deliveries, bytes_max);
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

/// Resolves when client-side caching messages wait in `inbox` (never without one).
async fn invalidations(inbox: Option<&crate::tracking::Inbox>) {
    match inbox {
        Some(inbox) => inbox.arrived().await,
        None => std::future::pending().await,
    }
}

/// The next MONITOR line; `None` when the feed was closed.
async fn next_line(monitor: &mut Option<tokio::sync::mpsc::Receiver<Bytes>>) -> Option<Bytes> {
    match monitor {
        Some(lines) => lines.recv().await,
        None => std::future::pending().await,
    }
}

/// Runs every complete command in `input`, in order, queueing their replies; stops early at
/// the connection's budget (the rest waits in `input`). A change to a stream after a pending
/// read first waits for every reply before it, so the read never sees the change.
async fn run_commands(
    session: &mut Session,
    input: &mut BytesMut,
    limits: &crate::codec::Limits,
    pending: &mut Pending,
    stream: &mut TcpStream,
    output: &mut BytesMut,
    stopped: &mut watch::Receiver<bool>,
) -> Result<Next, crate::codec::ProtocolError> {
    let mut counted = (0, 0);
    let next = run_counted(
        session,
        (input, limits),
        pending,
        (stream, output),
        stopped,
        &mut counted,
    )
    .await;
    // Counted once per read: the door's shared counters bumped per command were a cache line
    // every connection's core wrote.
    let (requests, errors) = counted;
    let counters = session
        .shared
        .engine
        .metrics()
        .door(omnibus_engine::metrics::Door::Redis);
    if requests > 0 {
        counters.requests(requests);
    }
    if errors > 0 {
        counters.errors(errors);
    }
    if let Some(name) = session.command_now.take() {
        // Copied only when it changes: a connection sending one kind of command copies once.
        if session.last_command.as_deref() != Some(&name[..]) {
            session.last_command = Some(Bytes::copy_from_slice(&name));
        }
        session.active = std::time::Instant::now();
        session.publish();
    }
    next
}

/// [`run_commands`], counting the commands run and those answered with an error.
async fn run_counted(
    session: &mut Session,
    (input, limits): (&mut BytesMut, &crate::codec::Limits),
    pending: &mut Pending,
    (stream, output): (&mut TcpStream, &mut BytesMut),
    stopped: &mut watch::Receiver<bool>,
    (requests, errors): &mut (u64, u64),
) -> Result<Next, crate::codec::ProtocolError> {
    let bytes_max = session.shared.config.pending_reply_bytes_max;
    while !pending.full(bytes_max) {
        let Some(arguments) = decode_request(input, limits)? else {
            break;
        };
        session.command_now = Some(arguments[0].clone());
        // Client-side caching messages that came meanwhile go before this command's reply,
        // as a connection reading them would have had them first.
        queue_invalidations(session, pending);
        let changes_a_stream = commands::changes_a_stream(&arguments[0]);
        let settles_first = commands::settles_first(&arguments[0]);
        let holds = commands::holds_keyspace(&arguments);
        // A script's or EXEC's reply waits only for its writes' fsyncs (each command in it
        // ran to its end): nothing after it waits for it.
        let only_fsyncs = holds && commands::held::answers_in_place(&arguments[0]);
        // A script or EXEC may change a stream too.
        if (commands::waits_for_reads(&arguments[0]) || holds) && pending.reads > 0 {
            if let Err(error) = finish(stream, pending, session.protocol, output, stopped).await {
                return Ok(Next::Broken(error));
            }
        }
        // CLIENT PAUSE holds the command: what was decided before it is written first.
        if session.shared.pause.active() {
            let writes = commands::may_write(session, &arguments);
            if session.shared.pause.holds(writes) {
                if let Err(error) = finish(stream, pending, session.protocol, output, stopped).await
                {
                    return Ok(Next::Broken(error));
                }
                let pause = session.shared.clone();
                tokio::select! {
                    () = pause.pause.released(writes) => {}
                    _ = stopped.wait_for(|stop| *stop) => return Ok(Next::Close),
                }
            }
        }
        // A stream past its deadline goes before a command touches it (`due_streams`).
        for stream in commands::due_streams(session, &arguments) {
            let sweep = session.shared.streams.submit(&stream, Change::Sweep);
            let _ = sweep.await;
        }
        let request_bytes: usize = arguments.iter().map(|argument| argument.len() + 16).sum();
        // The keyspace's gate is passed here, waiting without blocking the thread, so the
        // command never waits for it synchronously: a script holding the keyspace may be
        // waiting for a stream writer that runs on this thread.
        let keys = session.keys.clone();
        let step = if commands::holds_keyspace(&arguments) {
            let _held = keys.exclusive_async().await;
            commands::run(session, arguments)
        } else {
            let _entered = keys.enter().await;
            commands::run(session, arguments)
        };
        *requests += 1;
        let ran = session.ran.take();
        if let Reply::Error(line) = &step.reply {
            *errors += 1;
            session.shared.command_stats.error(line);
        }
        // CLIENT REPLY OFF / SKIP: the reply is not written, but still waited for in its
        // place (what follows is answered only once the silenced writes are durable).
        let silent = session.replies_off || session.reply_skip;
        session.reply_skip = std::mem::take(&mut session.reply_skip_next);
        let size = estimated_size(&step.reply);
        // Only a move that is not one keyspace change settles first: a keyspace RENAME or
        // RESTORE (MIGRATE sends many in a row) shares group commits like any write.
        let step_later = step.later.is_some();
        let waiting = if step.later.is_none() && step.commits.is_empty() {
            Waiting::Ready(step.reply)
        } else {
            let read = step.later.is_some() && !changes_a_stream && !only_fsyncs;
            // An error it resolves to is counted then, unless it was counted above.
            let command = ran.filter(|_| !step.reply.is_error());
            Waiting::Later {
                reply: settle(step.reply, step.commits, step.later),
                read,
                command,
            }
        };
        let waiting = match waiting {
            _ if !silent => waiting,
            Waiting::Ready(reply) => Waiting::Ready(pushes_only(reply)),
            Waiting::Later {
                reply,
                read,
                command,
            } => Waiting::Later {
                reply: Box::pin(async move { pushes_only(reply.await) }),
                read,
                command,
            },
        };
        let held = if matches!(waiting, Waiting::Ready(_)) {
            size
        } else {
            // The request's bytes stay held (in the engine's queues) until it is answered.
            size + request_bytes
        };
        let settles = settles_first && step_later;
        pending.push(waiting, held);
        // A move with a stream on either side is done before the next command runs.
        if settles {
            if let Err(error) = finish(stream, pending, session.protocol, output, stopped).await {
                return Ok(Next::Broken(error));
            }
        }
        // CLIENT CACHING holds for one command (a transaction's until EXEC).
        if session.caching
            && session.transaction.is_none()
            && !session
                .command_now
                .as_deref()
                .is_some_and(|name| name.eq_ignore_ascii_case(b"client"))
        {
            session.caching = false;
        }
        // The messages this command's own changes made follow its reply (redis-server
        // 7.0 sends a connection's own invalidations after the reply).
        queue_invalidations(session, pending);
        if step.close {
            return Ok(Next::Close);
        }
    }
    Ok(Next::Continue)
}

/// Queues the client-side caching messages waiting for the connection behind the replies
/// decided so far.
fn queue_invalidations(session: &Session, pending: &mut Pending) {
    let mut messages = Vec::new();
    session.take_invalidations(&mut messages);
    for message in messages {
        let size = estimated_size(&message);
        pending.push(Waiting::Ready(message), size);
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

/// What a silenced reply (CLIENT REPLY OFF or SKIP) still sends: its RESP3 pushes, as Redis
/// sends a SUBSCRIBE's confirmations and every message whatever the reply mode.
fn pushes_only(reply: Reply) -> Reply {
    match reply {
        Reply::Push(items) => Reply::Push(items),
        Reply::Many(replies) => Reply::Many(
            replies
                .into_iter()
                .map(pushes_only)
                .filter(|reply| !matches!(reply, Reply::Many(inner) if inner.is_empty()))
                .collect(),
        ),
        _ => Reply::Many(Vec::new()),
    }
}
