//! MULTI / EXEC / DISCARD. Commands are checked (known, arity) when queued; one refused
//! makes EXEC answer EXECABORT, as Redis does. EXEC runs the queue back to back and answers
//! once every write in it is durable. WATCH is refused: optimistic locking is not built.

use crate::codec::Reply;
use crate::session::{Session, Step, Transaction};

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
    if transaction.failed {
        return Reply::error("EXECABORT Transaction discarded because of previous errors.").into();
    }
    let mut replies = Vec::with_capacity(transaction.queued.len());
    let mut commits = Vec::new();
    let mut close = false;
    let mut asynchronous = false;
    for arguments in transaction.queued {
        let name = super::lowercase(&arguments[0]);
        let step = super::execute(session, &name, &arguments);
        asynchronous |= step.later.is_some();
        replies.push((step.reply, step.later));
        commits.extend(step.commits);
        close |= step.close;
    }
    if !asynchronous {
        let replies = replies.into_iter().map(|(reply, _)| reply).collect();
        return Step {
            reply: Reply::Array(replies),
            commits,
            close,
            later: None,
        };
    }
    // Replies that need the engine asynchronously (XADD, XRANGE, PUBLISH) are awaited in
    // order; changes were handed to their writers as the commands ran, so XADDs in one
    // transaction share an append.
    Step {
        reply: Reply::Null,
        commits,
        close,
        later: Some(Box::pin(async move {
            let mut answered = Vec::with_capacity(replies.len());
            for (reply, later) in replies {
                answered.push(match later {
                    Some(later) => later.await,
                    None => reply,
                });
            }
            Reply::Array(answered)
        })),
    }
}

pub(super) fn discard(session: &mut Session) -> Step {
    match session.transaction.take() {
        Some(_) => Reply::ok().into(),
        None => Reply::error("ERR DISCARD without MULTI").into(),
    }
}

pub(super) fn watch(session: &mut Session) -> Step {
    if session.transaction.is_some() {
        return Reply::error("ERR WATCH inside MULTI is not allowed").into();
    }
    Reply::error("ERR WATCH is not supported by Omnibus yet").into()
}
