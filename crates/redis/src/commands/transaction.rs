//! MULTI / EXEC / DISCARD / WATCH / UNWATCH. Commands are checked (known, arity) when
//! queued; one refused makes EXEC answer EXECABORT, as Redis does. EXEC runs the queue back
//! to back holding the keyspace exclusively (no other client's command runs in between,
//! stream commands included; the key changes are committed together), each command to its
//! end before the next (`held.rs`), and answers once every write in it is durable.
//!
//! WATCH is optimistic, as in Redis: it keeps what each watched key was (for a string or a
//! list, the keyspace's count of writes to it; for a stream, its start, end and deleted
//! entries), and EXEC answers nil without running anything when one of them differs. Any
//! write to a string or list key aborts, as in Redis, even one that leaves it as it was; a
//! stream changed and changed back (not possible by appending) would go unnoticed.

use crate::codec::Reply;
use crate::session::{Later, Session, Step, Transaction};

pub(super) fn multi(session: &mut Session) -> Step {
    if session.transaction.is_some() {
        return Reply::error("ERR MULTI calls can not be nested").into();
    }
    session.transaction = Some(Transaction::default());
    Reply::ok().into()
}

pub(super) fn queue(session: &mut Session, arguments: Vec<bytes::Bytes>) -> Step {
    let limit = session.shared.config.queued_commands_max;
    let Some(transaction) = &mut session.transaction else {
        return Reply::error("ERR queueing outside MULTI").into();
    };
    if transaction.queued.len() >= limit {
        transaction.failed = true;
        return Reply::error(format!(
            "ERR MULTI may queue at most {limit} commands (queued_commands_max)"
        ))
        .into();
    }
    transaction.queued.push(arguments);
    Reply::Status("QUEUED".into()).into()
}

pub(super) fn exec(session: &mut Session) -> Step {
    let Some(transaction) = session.transaction.take() else {
        return Reply::error("ERR EXEC without MULTI").into();
    };
    let watched = std::mem::take(&mut session.watched);
    if transaction.failed {
        return Reply::error("EXECABORT Transaction discarded because of previous errors.").into();
    }
    session.watched = watched;
    // The keyspace is held from the WATCH check to the last command: no other client's
    // command runs in between, and the transaction's key changes reach the disk in one
    // commit (all or none after a crash).
    let keys = session.keys.clone();
    let hold = keys.exclusive();
    let changed = watched_changed(session);
    session.watched.clear();
    if changed {
        return Reply::NullArray.into();
    }
    if !super::held::can_wait_here() {
        return exec_deferred(session, transaction.queued);
    }
    // Each command runs to its end before the next (`held.rs`), as in Redis: a stream read
    // sees the XADDs before it and none after. The XADDs' fsyncs are left for the reply.
    let outer = session.script_appends.replace(Vec::new());
    let broadcasts = super::tracking::hold_broadcasts(session);
    let mut replies = Vec::with_capacity(transaction.queued.len());
    let mut commits = Vec::new();
    let mut close = false;
    for arguments in transaction.queued {
        let name = super::lowercase(&arguments[0]);
        // Each command is timed for the slow log, as Redis times them (EXEC itself is not),
        // and counted for commandstats.
        let started = std::time::Instant::now();
        let step = super::held::run(session, &name, &arguments);
        // Queued commands were found in the table when queued.
        if let Some(position) = super::table::position(&name) {
            super::observed(session, position, &arguments, started, &step.reply);
        }
        replies.push(step.reply);
        commits.extend(step.commits);
        close |= step.close;
    }
    let appends = std::mem::replace(&mut session.script_appends, outer).unwrap_or_default();
    drop(hold);
    super::tracking::send_held_broadcasts(session, broadcasts);
    let (reply, later) = super::held::after_appends(Reply::Array(replies), appends);
    Step {
        reply,
        commits,
        close,
        later,
    }
}

/// EXEC where this thread cannot wait for the engine (a current-thread runtime, which no
/// door uses: an embedding's test): the commands run back to back, handing their changes to
/// the stream writers in order, and the replies that need the engine are awaited after the
/// hold, in order — so a stream read in the queue sees the stream as the whole
/// transaction left it.
fn exec_deferred(session: &mut Session, queued: Vec<Vec<bytes::Bytes>>) -> Step {
    let mut replies = Vec::with_capacity(queued.len());
    let mut commits = Vec::new();
    let mut close = false;
    let mut asynchronous = false;
    session.in_exec = true;
    for arguments in queued {
        let name = super::lowercase(&arguments[0]);
        let step = super::execute(session, &name, &arguments);
        asynchronous |= step.later.is_some();
        replies.push((step.reply, step.later));
        commits.extend(step.commits);
        close |= step.close;
    }
    session.in_exec = false;
    let (reply, later): (Reply, Option<Later>) = match asynchronous {
        false => (
            Reply::Array(replies.into_iter().map(|(reply, _)| reply).collect()),
            None,
        ),
        true => (
            Reply::Null,
            Some(Box::pin(async move {
                let mut answered = Vec::with_capacity(replies.len());
                for (reply, later) in replies {
                    answered.push(match later {
                        Some(later) => later.await,
                        None => reply,
                    });
                }
                Reply::Array(answered)
            })),
        ),
    };
    Step {
        reply,
        commits,
        close,
        later,
    }
}

pub(super) fn discard(session: &mut Session) -> Step {
    session.watched.clear();
    match session.transaction.take() {
        Some(_) => Reply::ok().into(),
        None => Reply::error("ERR DISCARD without MULTI").into(),
    }
}

/// What a watched key held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Watched {
    Missing,
    /// A string or list key, by the keyspace's count of its writes.
    Key {
        version: u64,
    },
    Stream {
        start: u64,
        end: u64,
        deleted: usize,
        /// Its deadline: EXPIRE and PERSIST touch a key.
        deadline: Option<i64>,
    },
}

fn state_of(session: &Session, key: &bytes::Bytes) -> Watched {
    if let Some(version) = session.keys.version(key) {
        return Watched::Key { version };
    }
    let engine = &session.shared.engine;
    let Some(stream) = std::str::from_utf8(key).ok() else {
        return Watched::Missing;
    };
    match engine.partition_bounds(stream, 0) {
        Ok((start, end)) => Watched::Stream {
            start,
            end,
            deleted: session.shared.deleted.of(engine, stream).len(),
            deadline: session.shared.streams.deadlines().of(engine, stream),
        },
        Err(_) => Watched::Missing,
    }
}

/// WATCH key …: remembers what each key holds now.
pub(super) fn watch(session: &mut Session, keys: &[bytes::Bytes]) -> Step {
    if session.transaction.is_some() {
        return Reply::error("ERR WATCH inside MULTI is not allowed").into();
    }
    if session.watched.len() + keys.len() > WATCHED_MAX {
        return Reply::error(format!(
            "ERR a connection may watch at most {WATCHED_MAX} keys"
        ))
        .into();
    }
    for key in keys {
        let state = state_of(session, key);
        session.watched.push((key.clone(), state));
    }
    Reply::ok().into()
}

/// Keys one connection may watch at once.
pub(crate) const WATCHED_MAX: usize = 10_000;

/// Whether a watched key changed since WATCH (EXEC then aborts).
fn watched_changed(session: &Session) -> bool {
    session
        .watched
        .iter()
        .any(|(key, state)| state_of(session, key) != *state)
}
