//! RENAME, RENAMENX and COPY where a stream key is the source or the destination
//! (`keyspace.rs` has the other keys'). A stream is the engine's log, which has no rename:
//! a stream source is copied as DUMP and RESTORE copy it (`stream_dump.rs`: its entries
//! under their own IDs, its last and largest deleted IDs, its groups with their consumers
//! and pending entries, its TTL) into the destination, and for RENAME deleted afterwards
//! through its writer, only if nothing was appended to it meanwhile (else the copy is
//! undone and made again, a few times, then refused). So it takes time in the stream's size,
//! and the session answers it before it runs the next command of a pipeline
//! ([`super::settles_first`]). A keyspace source over a stream destination is renamed at once and
//! the stream deleted behind it.
//!
//! As Redis: the destination, of any kind, is replaced by RENAME (and by COPY with
//! REPLACE); RENAMENX and COPY without REPLACE answer 0 when it exists; RENAME of a key to
//! itself answers OK. The keyspace events are the session's, once the move is done
//! (`notify/events.rs`).

use bytes::Bytes;

use super::groups::engine_error;
use super::stream_dump::{put, snapshot, submit_put};
use crate::codec::Reply;
use crate::server::Shared;
use crate::session::{Session, Step};
use crate::streams::change::Change;

/// Attempts at a RENAME whose source keeps being appended to.
const RENAME_ATTEMPTS: usize = 3;

/// What a move does with the destination.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Move {
    Rename,
    RenameIfAbsent,
    Copy { replace: bool },
}

impl Move {
    /// Whether an existing destination is replaced (else the move answers 0).
    fn replaces(self) -> bool {
        matches!(self, Move::Rename | Move::Copy { replace: true })
    }

    fn done(self) -> Reply {
        match self {
            Move::Rename => Reply::ok(),
            _ => Reply::Integer(1),
        }
    }
}

/// The move of stream key `source` to `destination` (both valid names, the source a
/// stream; the destination any key or none).
pub(super) fn from_stream(
    session: &mut Session,
    source: String,
    destination: String,
    how: Move,
) -> Step {
    if source == destination {
        return match how {
            Move::Rename => Reply::ok(),
            _ => Reply::Integer(0),
        }
        .into();
    }
    let key = Bytes::from(destination.clone());
    let in_keyspace = session.keys.kind(&key).is_some();
    let exists = in_keyspace || super::streams::is_stream(session, &key);
    if exists && !how.replaces() {
        return Reply::Integer(0).into();
    }
    // A keyspace key at the destination goes once the stream is there (until then it hides
    // the stream being made, as keyspace keys come first): a move that fails keeps it.
    let (shared, keys) = (session.shared.clone(), session.keys.clone());
    let later = async move {
        let reply = copy_stream(&shared, &source, &destination, how).await;
        if matches!(reply, Reply::Error(_)) || !in_keyspace {
            return reply;
        }
        let deleted = match keys.delete(std::slice::from_ref(&key)) {
            Ok(durable) => durable.wait().await.map(|_| ()),
            Err(error) => Err(error),
        };
        match deleted {
            Ok(()) => reply,
            Err(error) => Reply::error(format!("ERR {error}")),
        }
    };
    Step {
        reply: Reply::Null,
        commits: Vec::new(),
        close: false,
        later: Some(Box::pin(later)),
    }
}

async fn copy_stream(shared: &Shared, source: &str, destination: &str, how: Move) -> Reply {
    let writers = &shared.streams;
    let deadline = writers.deadlines().of(&shared.engine, source);
    for _ in 0..RENAME_ATTEMPTS {
        let _ = writers.submit(destination, Change::Destroy).await;
        let (value, end) = match snapshot(shared, source).await {
            Ok(Some(read)) => read,
            Ok(None) => return Reply::error("ERR no such key"),
            Err(reply) => return reply,
        };
        let (submitted, groups) = submit_put(shared, destination, value);
        let reply = put(shared, destination, submitted, &groups, deadline).await;
        if matches!(reply, Reply::Error(_)) {
            return reply;
        }
        if let Move::Copy { .. } = how {
            return how.done();
        }
        let change = Change::DestroyIfUnchanged { end, event: "" };
        match writers.submit(source, change).await {
            Ok(Reply::Integer(1)) => return how.done(),
            // Appended to meanwhile: made again from what it holds now.
            Ok(Reply::Integer(_)) => continue,
            Ok(refused) => return refused,
            Err(_) => return Reply::error("ERR the stream's writer stopped"),
        }
    }
    let _ = writers.submit(destination, Change::Destroy).await;
    Reply::error(format!(
        "ERR the stream '{source}' was appended to during every attempt to rename it; try again"
    ))
}

/// The move of keyspace key `source` over stream key `destination`: renamed (or copied)
/// in the keyspace at once, the stream deleted behind it.
pub(super) fn onto_stream(
    session: &mut Session,
    source: &Bytes,
    destination: &Bytes,
    how: Move,
) -> Step {
    if !how.replaces() {
        // The destination exists; a missing source answers as the keyspace's move would.
        if session.keys.kind(source).is_none() && how == Move::RenameIfAbsent {
            return Reply::error("ERR no such key").into();
        }
        return Reply::Integer(0).into();
    }
    if session.keys.kind(source).is_none() {
        return match how {
            Move::Copy { .. } => Reply::Integer(0),
            _ => Reply::error("ERR no such key"),
        }
        .into();
    }
    let Ok(stream) = std::str::from_utf8(destination) else {
        return Reply::error("ERR no such key").into();
    };
    let destroyed = session.shared.streams.submit(stream, Change::Destroy);
    let moved = match how {
        Move::Copy { .. } => session
            .keys
            .copy(source, destination, true)
            .map(|durable| durable.split().1),
        _ => session
            .keys
            .rename(source, destination, false)
            .map(|durable| durable.split().1),
    };
    let commit = match moved {
        Ok(commit) => commit,
        Err(error) => return engine_error(error).into(),
    };
    Step {
        reply: Reply::Null,
        commits: vec![commit],
        close: false,
        later: Some(Box::pin(async move {
            let _ = destroyed.await;
            how.done()
        })),
    }
}
