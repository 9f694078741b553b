//! Commands run while the keyspace is held whole — EXEC's queue, a script's `redis.call`s —
//! each to its end before the next starts, as Redis runs them: a command sees the effects
//! of the ones before it and none after, and (the keyspace being held) no other client's in
//! between.
//!
//! Most commands end synchronously. Those the door answers asynchronously (a stream's
//! writer, a consumer group's commit, the router) are waited for on this thread
//! ([`wait_here`]). An XADD is the exception: its ID is given out at once and only its fsync
//! is left for the end (the run's reply waits for it, [`after_appends`]), so the XADDs of
//! one run share group commits. A command that reads a stream's log, which holds what is
//! durable, first waits for every change queued for that stream ([`settle_streams`]): it
//! sees the run's entries, and other clients' queued before the hold began.

use bytes::Bytes;

use crate::codec::Reply;
use crate::session::{Later, Session, Step};

/// Runs one command of a held run to its end: its reply is final (`later` is `None`); its
/// key changes are left in `commits` for the run's one commit.
pub(crate) fn run(session: &mut Session, name: &str, arguments: &[Bytes]) -> Step {
    // A stream command that reads the log (which holds what is durable) sees every change
    // queued before it: the run's XADDs, and other clients' queued before the hold.
    // (XADD, XTRIM, XDEL and XSETID go through the writer, behind them, by themselves.)
    if name.starts_with('x') && !matches!(name, "xadd" | "xtrim" | "xdel" | "xsetid") {
        settle_streams(session, &arguments[1..]);
    }
    // A blocking command answers at once, as Redis runs it inside EXEC or a script.
    let was_in_exec = std::mem::replace(&mut session.in_exec, true);
    let mut step = super::execute(session, name, arguments);
    session.in_exec = was_in_exec;
    if let Some(later) = step.later.take() {
        step.reply = wait_here(later);
    }
    step
}

/// Whether a script or EXEC (`name`) runs its commands to their ends here, leaving its
/// reply only fsyncs to wait for: always, but for EXEC where this thread cannot wait.
pub(crate) fn answers_in_place(name: &[u8]) -> bool {
    super::is_script(name) || can_wait_here()
}

/// Whether the door answers the command asynchronously (what [`run`] must wait for on this
/// thread): stream commands, PUBLISH, and DEL/UNLINK/EXPIRE…/DUMP/RESTORE/RENAME/COPY of a
/// stream key, which its writer answers.
pub(crate) fn asynchronous(session: &Session, name: &str, arguments: &[Bytes]) -> bool {
    name.starts_with('x')
        || name == "publish"
        || (matches!(name, "del" | "unlink")
            && arguments[1..]
                .iter()
                .any(|key| super::is_stream(session, key)))
        || (matches!(
            name,
            "expire"
                | "pexpire"
                | "expireat"
                | "pexpireat"
                | "persist"
                | "dump"
                | "restore"
                | "restore-asking"
        ) && arguments
            .get(1)
            .is_some_and(|key| super::is_stream(session, key)))
        || (matches!(name, "rename" | "renamenx" | "copy")
            && arguments[1..]
                .iter()
                .take(2)
                .any(|key| super::is_stream(session, key)))
}

/// A run's reply: `reply` at once when it made no XADD, else once their fsyncs are done
/// (the first failure among them instead, if any).
pub(crate) fn after_appends(
    reply: Reply,
    appends: Vec<tokio::sync::oneshot::Receiver<Reply>>,
) -> (Reply, Option<Later>) {
    if appends.is_empty() {
        return (reply, None);
    }
    let later: Later = Box::pin(async move { first_failure(appends).await.unwrap_or(reply) });
    (Reply::Null, Some(later))
}

/// The first error among the outcomes of a run's XADDs, once every one is known.
async fn first_failure(appends: Vec<tokio::sync::oneshot::Receiver<Reply>>) -> Option<Reply> {
    let mut failure = None;
    for append in appends {
        match append.await {
            Ok(Reply::Error(text)) => {
                failure.get_or_insert(Reply::Error(text));
            }
            // Durable, or refused before anything was appended (its refusal was the ID).
            Ok(_) => {}
            Err(_) => {
                failure.get_or_insert(Reply::error("ERR the stream's writer stopped"));
            }
        }
    }
    failure
}

/// Waits until every change queued for the streams among `words` is in the log and
/// durable ([`Writers::flush`](crate::streams::writers::Writers::flush)); a word that names
/// no stream with a writer costs a lookup.
fn settle_streams(session: &Session, words: &[Bytes]) {
    let writers = &session.shared.streams;
    let flushes: Vec<_> = words
        .iter()
        .filter_map(|word| std::str::from_utf8(word).ok())
        .filter_map(|stream| writers.flush(stream))
        .collect();
    if flushes.is_empty() {
        return;
    }
    // A failed XADD among them is answered by the run's reply (`after_appends`).
    wait_here(Box::pin(async move {
        for flush in flushes {
            let _ = flush.await;
        }
        Reply::ok()
    }));
}

/// Waits on this thread for a reply the door produces asynchronously (a stream command's,
/// PUBLISH's): the run needs it before it goes on. The thread is handed over to the runtime
/// meanwhile (`block_in_place`), so the other connections and stream writers on it keep
/// running; the keyspace stays held, and they wait for it without blocking a thread
/// (`Keyspace::enter`). Refused where that cannot be done (a runtime of one thread; EXEC
/// does not come here then, and a script refuses such commands first).
fn wait_here(later: Later) -> Reply {
    if !can_wait_here() {
        return Reply::error("ERR This Redis command is not allowed from script");
    }
    let handle = tokio::runtime::Handle::current();
    tokio::task::block_in_place(|| handle.block_on(later))
}

/// Whether this thread can wait for an asynchronous reply: a thread of a multi-thread
/// runtime (every door thread is one; a test's current-thread runtime is not).
pub(crate) fn can_wait_here() -> bool {
    tokio::runtime::Handle::try_current()
        .is_ok_and(|handle| handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread)
}
