//! Commands on keys whatever their value: DEL, EXISTS, TOUCH, EXPIRE and its kin, TTL,
//! EXPIRETIME, PERSIST, TYPE, DBSIZE, KEYS, SCAN, FLUSHALL. (TOUCH counts like EXISTS: Omnibus
//! keeps no access times to update.)
//!
//! Stream keys are the engine's streams, beside the string keys of the keyspace: DEL and
//! UNLINK delete a stream (through its writer, after the XADDs queued before them), KEYS,
//! SCAN and DBSIZE count streams after the string keys. EXPIRE and PERSIST on a stream key
//! go through its writer too, which keeps the deadline with the stream; TTL reads it
//! (`streams/expiry.rs`), and a stream past its deadline is gone to every command here.
//! FLUSHALL and FLUSHDB (when the configuration allows them) delete every key, stream keys
//! included, as in Redis.

use bytes::Bytes;
use omnibus_engine::keys::{
    glob_match, scan_hash, ExpireCondition, KeyKind, Keyspace, Renamed, TimeToLive,
};

use super::arguments::{integer, is, lowercase, SYNTAX_ERROR};
use super::stream_moves::Move;
use super::streams::is_stream_in;
use super::strings::{map, now_ms, step};
use crate::codec::Reply;
use crate::server::Shared;
use crate::session::{Session, Step};

/// Most keys KEYS answers with: more matches are refused with an error saying to use SCAN (a
/// reply cut short would look like all of them). Every key is looked at, however many.
const KEYS_REPLY_MAX: usize = 1_000_000;
/// Keys KEYS looks at per hold of the keyspace's lock, so that writers on other threads get
/// it between steps.
const KEYS_STEP: usize = 65_536;
/// SCAN cursors at or above this walk the stream keys (the cursor minus this is the SCAN
/// place, `keys::scan_hash`, to go on from among them); below it, the keyspace's keys, whose
/// places are below 2^62.
const STREAM_CURSOR_BASE: u64 = 1 << 62;

fn too_many_keys() -> Step {
    Reply::error(format!(
        "ERR KEYS would answer more than {KEYS_REPLY_MAX} keys; use SCAN"
    ))
    .into()
}

/// The names of every stream (each a Redis stream key) not past its deadline, in name order.
pub(super) fn stream_keys(session: &Session) -> Vec<Bytes> {
    let engine = &session.shared.engine;
    let deadlines = session.shared.streams.deadlines();
    let mut names = engine.stream_names();
    if deadlines.len() > 0 {
        names.retain(|name| !deadlines.is_due(engine, name));
    }
    names.into_iter().map(Bytes::from).collect()
}

/// The stream `key` names, if the command goes to a stream's writer: a stream key, or a key
/// XADDs queued before are about to make one (only then: a writer per missing key would
/// grow without bound).
fn stream_with_writer<'a>(session: &Session, key: &'a [u8]) -> Option<&'a str> {
    let name = std::str::from_utf8(key).ok()?;
    (super::streams::is_stream(session, key) || session.shared.streams.has_writer(name))
        .then_some(name)
}

/// The deadline of stream key `key`: `None` if it is not one, `Some(None)` without one.
fn stream_deadline(shared: &Shared, key: &[u8]) -> Option<Option<i64>> {
    if !is_stream_in(shared, key) {
        return None;
    }
    let name = std::str::from_utf8(key).ok()?;
    Some(shared.streams.deadlines().of(&shared.engine, name))
}

/// A key command's reply: computed now, or, when one of `keys` is a stream whose writer
/// still has changes queued (the XADD making it, an EXPIRE, a DEL of the same pipeline),
/// once the replies before it are sent, so that it sees them as the next command of a
/// pipeline does in Redis. (Commands on keyspace keys see every change at once.)
fn after_queued_changes(
    session: &Session,
    keys: &[Bytes],
    answer: impl FnOnce(&Keyspace, &Shared) -> Reply + Send + 'static,
) -> Step {
    let writers = &session.shared.streams;
    let queued = keys
        .iter()
        .any(|key| std::str::from_utf8(key).is_ok_and(|name| writers.has_queued(name)));
    if !queued {
        return answer(&session.keys, &session.shared).into();
    }
    let (keys, shared) = (session.keys.clone(), session.shared.clone());
    Step::later(async move { answer(&keys, &shared) })
}

/// EXPIRE or PERSIST on a stream key, answered by its writer. The session waits for it
/// before the commands after it (a read, to the session), so a TTL pipelined after an
/// EXPIRE sees the deadline.
fn expire_stream(
    session: &Session,
    stream: &str,
    at: Option<i64>,
    condition: ExpireCondition,
) -> Step {
    let change = crate::streams::writer::Change::Expire { at, condition };
    super::streams::answer_later(session.shared.streams.submit(stream, change))
}

/// DEL / UNLINK: string keys leave the keyspace, stream keys are deleted by their writers (so
/// XADDs queued before the DEL land first, then go with the stream). Answers how many keys
/// were there.
fn delete(session: &mut Session, arguments: &[Bytes]) -> Step {
    let (strings, commit) = match session.keys.delete(arguments) {
        Ok(durable) => durable.split(),
        Err(error) => return step(Err(error)),
    };
    let mut answers = Vec::new();
    for key in arguments {
        // A stream, or one XADDs queued before this DEL are about to make: its writer decides.
        if let Some(name) = stream_with_writer(session, key) {
            let change = crate::streams::writer::Change::Destroy;
            answers.push(session.shared.streams.submit(name, change));
        }
    }
    if answers.is_empty() {
        return Step {
            reply: Reply::Integer(strings as i64),
            commits: vec![commit],
            close: false,
            later: None,
        };
    }
    Step {
        reply: Reply::Null,
        commits: vec![commit],
        close: false,
        later: Some(Box::pin(async move {
            match streams_destroyed(answers).await {
                Ok(streams) => Reply::Integer(strings as i64 + streams),
                Err(error) => error,
            }
        })),
    }
}

/// The writers' answers to [`Change::Destroy`](crate::streams::writer::Change::Destroy):
/// how many of the streams were there, or the first refusal.
async fn streams_destroyed(
    answers: Vec<tokio::sync::oneshot::Receiver<Reply>>,
) -> Result<i64, Reply> {
    let mut count = 0;
    for answer in answers {
        match answer.await {
            Ok(Reply::Integer(deleted)) => count += deleted,
            Ok(error @ Reply::Error(_)) => return Err(error),
            _ => return Err(Reply::error("ERR the stream's writer stopped")),
        }
    }
    Ok(count)
}

/// FLUSHALL / FLUSHDB: the keyspace cleared, and every stream key deleted by its writer (so
/// XADDs queued before land first and go with it) — every Omnibus stream, as each is a Redis
/// stream key, whichever door made it. Answered once all of it is durable.
fn flush(session: &mut Session, keys: &Keyspace) -> Step {
    let (_, commit) = match keys.clear() {
        Ok(durable) => durable.split(),
        Err(error) => return step(Err(error)),
    };
    // Streams past their deadline too (their writer reports them expired), and those XADDs
    // queued before are about to make.
    let writers = &session.shared.streams;
    let mut names = session.shared.engine.stream_names();
    names.extend(writers.names());
    names.sort_unstable();
    names.dedup();
    let answers: Vec<_> = names
        .iter()
        .map(|name| writers.submit(name, crate::streams::writer::Change::Destroy))
        .collect();
    Step {
        reply: Reply::Null,
        commits: vec![commit],
        close: false,
        later: Some(Box::pin(async move {
            streams_destroyed(answers)
                .await
                .map_or_else(|error| error, |_| Reply::ok())
        })),
    }
}

pub(super) fn run(session: &mut Session, name: &str, arguments: &[Bytes]) -> Step {
    let keys = session.keys.clone();
    match name {
        "del" | "unlink" => delete(session, arguments),
        "expiretime" | "pexpiretime" => {
            let (key, seconds) = (arguments[0].clone(), name == "expiretime");
            after_queued_changes(session, &arguments[..1], move |keys, shared| {
                let deadline = keys
                    .deadline(&key)
                    .or_else(|| stream_deadline(shared, &key));
                Reply::Integer(match deadline {
                    None => -2,
                    Some(None) => -1,
                    // Rounded to the nearest second, as Redis does (and TTL below).
                    Some(Some(at)) if seconds => (at + 500) / 1000,
                    Some(Some(at)) => at,
                })
            })
        }
        "exists" | "touch" => {
            let keys_given = arguments.to_vec();
            after_queued_changes(session, arguments, move |keys, shared| {
                // A stream key exists too (each argument counts, repeated ones as often as
                // given).
                let count = keys_given
                    .iter()
                    .filter(|key| {
                        keys.exists(std::slice::from_ref(*key)) == 1 || is_stream_in(shared, key)
                    })
                    .count();
                Reply::Integer(count as i64)
            })
        }
        "expire" | "pexpire" | "expireat" | "pexpireat" => expire(session, name, arguments),
        "persist" => {
            if keys.exists(&arguments[..1]) == 0 {
                if let Some(stream) = stream_with_writer(session, &arguments[0]) {
                    return expire_stream(session, stream, None, ExpireCondition::Always);
                }
            }
            step(
                keys.expire(&arguments[0], None, ExpireCondition::Always)
                    .map(|d| map(d, |changed| Reply::Integer(i64::from(changed)))),
            )
        }
        "ttl" | "pttl" => {
            let (key, seconds) = (arguments[0].clone(), name == "ttl");
            after_queued_changes(session, &arguments[..1], move |keys, shared| {
                let mut time_to_live = keys.time_to_live(&key);
                if time_to_live == TimeToLive::Missing {
                    time_to_live = match stream_deadline(shared, &key) {
                        None => TimeToLive::Missing,
                        Some(None) => TimeToLive::Forever,
                        Some(Some(at)) => {
                            TimeToLive::Milliseconds((at - crate::streams::expiry::now_ms()).max(0))
                        }
                    };
                }
                Reply::Integer(match time_to_live {
                    TimeToLive::Missing => -2,
                    TimeToLive::Forever => -1,
                    TimeToLive::Milliseconds(ms) if seconds => (ms + 500) / 1000,
                    TimeToLive::Milliseconds(ms) => ms,
                })
            })
        }
        "type" => {
            let key = arguments[0].clone();
            after_queued_changes(session, &arguments[..1], move |keys, shared| {
                let kind = match keys.kind(&key) {
                    Some(KeyKind::String) => "string",
                    Some(KeyKind::List) => "list",
                    Some(KeyKind::Hash) => "hash",
                    Some(KeyKind::Set) => "set",
                    Some(KeyKind::SortedSet) => "zset",
                    None if is_stream_in(shared, &key) => "stream",
                    None => "none",
                };
                Reply::Status(kind.into())
            })
        }
        "dbsize" => {
            let streams = session.shared.engine.stream_count();
            // Streams past their deadline, not yet deleted by the sweeper, are gone.
            let due = (session.shared.streams.deadlines())
                .due(&session.shared.engine)
                .len();
            Reply::Integer((keys.len() + streams.saturating_sub(due)) as i64).into()
        }
        "keys" => {
            let pattern = &arguments[0];
            let mut found = Vec::new();
            let mut cursor = 0;
            loop {
                let (next, keys) = keys.scan(cursor, Some(pattern), None, KEYS_STEP);
                found.extend(keys);
                if found.len() > KEYS_REPLY_MAX {
                    return too_many_keys();
                }
                if next == 0 {
                    break;
                }
                cursor = next;
            }
            found.extend(
                stream_keys(session)
                    .into_iter()
                    .filter(|name| glob_match(pattern, name)),
            );
            if found.len() > KEYS_REPLY_MAX {
                return too_many_keys();
            }
            Reply::Array(found.into_iter().map(Reply::Bulk).collect()).into()
        }
        "scan" => scan(session, arguments),
        "rename" | "renamenx" => rename(session, name == "renamenx", arguments),
        "copy" => copy(session, arguments),
        "flushall" | "flushdb" => {
            if !session.shared.config.flushall_enabled {
                return Reply::error(format!(
                    "ERR {} is turned off on this server (set redis.flushall_enabled = true)",
                    name.to_ascii_uppercase()
                ))
                .into();
            }
            if arguments.len() > 1
                || arguments
                    .first()
                    .is_some_and(|mode| !is(mode, "sync") && !is(mode, "async"))
            {
                return Reply::error(SYNTAX_ERROR).into();
            }
            flush(session, &keys)
        }
        _ => Reply::error(format!("ERR unknown command '{name}'")).into(),
    }
}

/// Whether `key` names a stream rather than a keyspace value.
fn names_stream(session: &Session, key: &Bytes) -> bool {
    session.keys.exists(std::slice::from_ref(key)) == 0 && super::streams::is_stream(session, key)
}

/// RENAME, RENAMENX or COPY with a stream key on either side (`stream_moves.rs`); `None`
/// when neither is one.
fn stream_move(
    session: &mut Session,
    source: &Bytes,
    destination: &Bytes,
    how: Move,
) -> Option<Step> {
    if names_stream(session, source) {
        let names = super::streams::valid_stream_name(source)
            .and_then(|source| Ok((source, super::streams::valid_stream_name(destination)?)));
        return Some(match names {
            Ok((source, destination)) => {
                super::stream_moves::from_stream(session, source, destination, how)
            }
            Err(refusal) => refusal.into(),
        });
    }
    if names_stream(session, destination) {
        return Some(super::stream_moves::onto_stream(
            session,
            source,
            destination,
            how,
        ));
    }
    None
}

/// RENAME key newkey (`ERR no such key` for a missing key) and RENAMENX key newkey (1 when
/// renamed, 0 when newkey exists).
fn rename(session: &mut Session, only_if_absent: bool, arguments: &[Bytes]) -> Step {
    let (source, destination) = (&arguments[0], &arguments[1]);
    let how = if only_if_absent {
        Move::RenameIfAbsent
    } else {
        Move::Rename
    };
    if let Some(moved) = stream_move(session, source, destination, how) {
        return moved;
    }
    step(
        session
            .keys
            .rename(source, destination, only_if_absent)
            .map(|d| {
                map(d, move |renamed| match (renamed, only_if_absent) {
                    (Renamed::Missing, _) => Reply::error("ERR no such key"),
                    (Renamed::Done, false) => Reply::ok(),
                    (Renamed::Done, true) => Reply::Integer(1),
                    (Renamed::DestinationExists, _) => Reply::Integer(0),
                })
            }),
    )
}

/// COPY source destination [DB 0] [REPLACE]: 1 when copied, 0 when the source is missing or
/// the destination exists without REPLACE.
fn copy(session: &mut Session, arguments: &[Bytes]) -> Step {
    let (source, destination) = (&arguments[0], &arguments[1]);
    let mut replace = false;
    let mut options = arguments[2..].iter();
    while let Some(option) = options.next() {
        if is(option, "replace") {
            replace = true;
        } else if is(option, "db") {
            let Some(database) = options.next() else {
                return Reply::error(SYNTAX_ERROR).into();
            };
            match integer(database) {
                Ok(0) => {}
                Ok(_) => return Reply::error("ERR DB index is out of range").into(),
                Err(reply) => return reply.into(),
            }
        } else {
            return Reply::error(SYNTAX_ERROR).into();
        }
    }
    if source == destination {
        return Reply::error("ERR source and destination objects are the same").into();
    }
    if let Some(moved) = stream_move(session, source, destination, Move::Copy { replace }) {
        return moved;
    }
    step(session.keys.copy(source, destination, replace).map(|d| {
        map(d, |copied| {
            Reply::Integer(i64::from(copied == omnibus_engine::keys::Copied::Done))
        })
    }))
}

/// EXPIRE key seconds [NX | XX | GT | LT], and PEXPIRE, EXPIREAT, PEXPIREAT.
fn expire(session: &mut Session, name: &str, arguments: &[Bytes]) -> Step {
    let amount = match integer(&arguments[1]) {
        Ok(amount) => amount,
        Err(reply) => return reply.into(),
    };
    let unit = if name.starts_with('p') { 1 } else { 1000 };
    let absolute = name.ends_with("at");
    let deadline = amount.checked_mul(unit).and_then(|ms| {
        if absolute {
            Some(ms)
        } else {
            ms.checked_add(now_ms())
        }
    });
    let Some(deadline) = deadline else {
        return Reply::error(format!("ERR invalid expire time in '{name}' command")).into();
    };
    let mut condition = ExpireCondition::Always;
    for option in &arguments[2..] {
        let wanted = match lowercase(option).as_str() {
            "nx" => ExpireCondition::IfNone,
            "xx" => ExpireCondition::IfSome,
            "gt" => ExpireCondition::IfLater,
            "lt" => ExpireCondition::IfEarlier,
            _ => {
                return Reply::error(format!(
                    "ERR Unsupported option {}",
                    super::arguments::printable(option, 128)
                ))
                .into()
            }
        };
        // As Redis: NX goes with none of the others, GT not with LT; XX with GT or LT is both.
        condition = match (condition, wanted) {
            (ExpireCondition::Always, wanted) => wanted,
            (current, wanted) if current == wanted => wanted,
            (ExpireCondition::IfSome, ExpireCondition::IfLater)
            | (ExpireCondition::IfLater, ExpireCondition::IfSome) => ExpireCondition::IfLater,
            (ExpireCondition::IfSome, ExpireCondition::IfEarlier)
            | (ExpireCondition::IfEarlier, ExpireCondition::IfSome)
            | (
                ExpireCondition::IfSomeAndEarlier,
                ExpireCondition::IfSome | ExpireCondition::IfEarlier,
            ) => ExpireCondition::IfSomeAndEarlier,
            (ExpireCondition::IfSomeAndEarlier, ExpireCondition::IfLater) => {
                return Reply::error("ERR GT and LT options at the same time are not compatible")
                    .into()
            }
            (ExpireCondition::IfLater, ExpireCondition::IfEarlier)
            | (ExpireCondition::IfEarlier, ExpireCondition::IfLater) => {
                return Reply::error("ERR GT and LT options at the same time are not compatible")
                    .into()
            }
            _ => {
                return Reply::error(
                    "ERR NX and XX, GT or LT options at the same time are not compatible",
                )
                .into()
            }
        };
    }
    if session.keys.exists(&arguments[..1]) == 0 {
        if let Some(stream) = stream_with_writer(session, &arguments[0]) {
            return expire_stream(session, stream, Some(deadline), condition);
        }
    }
    step(
        session
            .keys
            .expire(&arguments[0], Some(deadline), condition)
            .map(|d| map(d, |changed| Reply::Integer(i64::from(changed)))),
    )
}

/// SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]
fn scan(session: &mut Session, arguments: &[Bytes]) -> Step {
    let Some(cursor) = std::str::from_utf8(&arguments[0])
        .ok()
        .and_then(|text| text.parse::<u64>().ok())
    else {
        return Reply::error("ERR invalid cursor").into();
    };
    let mut pattern = None;
    let mut count = 10usize;
    // Which kinds of key: strings, lists, hashes, streams (`TYPE` names one; others have no keys).
    let (mut kind, mut streams) = (None, true);
    let mut keyspace = true;
    let mut options = arguments[1..].iter();
    while let Some(option) = options.next() {
        if is(option, "novalues") {
            return Reply::error(super::sets::NOVALUES_REFUSED).into();
        }
        let Some(value) = options.next() else {
            return Reply::error(SYNTAX_ERROR).into();
        };
        if is(option, "match") {
            pattern = Some(value.clone());
        } else if is(option, "count") {
            match integer(value) {
                Ok(n) if n >= 1 => count = n.min(100_000) as usize,
                Ok(_) => return Reply::error(SYNTAX_ERROR).into(),
                Err(reply) => return reply.into(),
            }
        } else if is(option, "type") {
            kind = if is(value, "string") {
                Some(KeyKind::String)
            } else if is(value, "list") {
                Some(KeyKind::List)
            } else if is(value, "hash") {
                Some(KeyKind::Hash)
            } else if is(value, "set") {
                Some(KeyKind::Set)
            } else if is(value, "zset") {
                Some(KeyKind::SortedSet)
            } else {
                None
            };
            keyspace = kind.is_some();
            streams = is(value, "stream");
        } else {
            return Reply::error(SYNTAX_ERROR).into();
        }
    }
    let mut found = Vec::new();
    let mut position = cursor;
    if position < STREAM_CURSOR_BASE && keyspace {
        let (next, keys) = session.keys.scan(position, pattern.as_deref(), kind, count);
        found = keys;
        if next != 0 {
            return scan_reply(next, found);
        }
    }
    // The string keys are done (or not wanted): the streams come next, in the same call, so
    // a SCAN whose COUNT covers everything answers cursor 0 at once, as Redis does.
    position = position.max(STREAM_CURSOR_BASE);
    let mut next = 0;
    if streams {
        // By SCAN place too (`keys::scan_hash`), so streams deleted during a scan move none
        // of the others.
        let from = position - STREAM_CURSOR_BASE;
        let mut names: Vec<(u64, Bytes)> = stream_keys(session)
            .into_iter()
            .map(|name| (scan_hash(&name), name))
            .filter(|(place, _)| *place >= from)
            .collect();
        names.sort_unstable();
        let mut names = names.into_iter();
        for (place, name) in names.by_ref().take(count) {
            debug_assert!(place < STREAM_CURSOR_BASE);
            if pattern.as_ref().is_none_or(|p| glob_match(p, &name)) {
                found.push(name);
            }
        }
        if let Some((place, _)) = names.next() {
            next = STREAM_CURSOR_BASE + place;
        }
    }
    scan_reply(next, found)
}

fn scan_reply(next: u64, found: Vec<Bytes>) -> Step {
    Reply::Array(vec![
        Reply::text(&next.to_string()),
        Reply::Array(found.into_iter().map(Reply::Bulk).collect()),
    ])
    .into()
}
