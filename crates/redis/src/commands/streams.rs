//! Stream commands: XADD, XTRIM, XSETID, XDEL (changes, handed to the stream's writer task in
//! order), XLEN, XRANGE, XREVRANGE, XREAD (reads, run when their turn in the pipeline comes).
//!
//! Redis's rules kept here: IDs grow strictly (`streams/id.rs`); XADD creates the stream
//! unless NOMKSTREAM (then nil); `MAXLEN`/`MINID` take `=` or `~` and LIMIT only with `~`;
//! XREAD's `$` means "after the last entry when the command runs", BLOCK 0 waits forever
//! and nil answers a timeout; a key holding a string answers WRONGTYPE. A stream key must be a
//! valid Omnibus stream name (ASCII letters, digits, `.`, `_`, `-`): others are refused
//! rather than renamed out of sight.

use std::time::Duration;

use bytes::Bytes;

use super::arguments::{integer, is, SYNTAX_ERROR};
use crate::clients::Waiting;
use crate::codec::{Protocol, Reply};
use crate::server::Shared;
use crate::session::{Session, Step};
use crate::streams::entry::Entry;
use crate::streams::id::{range_end, range_start, NewId, StreamId};
use crate::streams::read;
use crate::streams::trim::{Trim, TrimBy};
use crate::streams::writer::Change;

/// Entries one XREAD or XREADGROUP answers at most (per stream), COUNT or not: a reader goes
/// on from the last ID it got, so a shorter answer loses it nothing. XRANGE and XREVRANGE
/// answer whole ranges instead (`RedisConfig::range_reply_bytes_max`).
pub(crate) const ENTRIES_REPLY_MAX: usize = 100_000;
/// Redis's words for a key of another type.
pub(crate) const WRONGTYPE: &str =
    "WRONGTYPE Operation against a key holding the wrong kind of value";

pub(super) fn run(session: &mut Session, name: &str, arguments: &[Bytes]) -> Step {
    let result = match name {
        "xadd" => xadd(session, arguments),
        "xtrim" => xtrim(session, arguments),
        "xsetid" => xsetid(session, arguments),
        "xdel" => xdel(session, arguments),
        "xlen" => xlen(session, arguments),
        "xrange" | "xrevrange" => xrange(session, arguments, name == "xrevrange"),
        "xread" => xread(session, arguments),
        _ => Err(Reply::error(format!("ERR unknown command '{name}'"))),
    };
    result.unwrap_or_else(Step::from)
}

/// The Omnibus stream a key names, after the WRONGTYPE check.
pub(crate) fn stream_name(session: &Session, key: &Bytes) -> Result<String, Reply> {
    if session.keys.exists(std::slice::from_ref(key)) == 1 {
        return Err(Reply::error(WRONGTYPE));
    }
    valid_stream_name(key)
}

/// `key` as an Omnibus stream name, or why it cannot be one.
pub(crate) fn valid_stream_name(key: &[u8]) -> Result<String, Reply> {
    let name = std::str::from_utf8(key).map_err(|_| invalid_key(key, "it is not UTF-8"))?;
    omnibus_types::validate_stream_name(name).map_err(|error| invalid_key(key, &error.0))?;
    Ok(name.to_string())
}

/// Whether `key` names an existing Omnibus stream (a Redis stream key) not past its
/// deadline (`streams/expiry.rs`).
pub(crate) fn is_stream(session: &Session, key: &[u8]) -> bool {
    is_stream_in(&session.shared, key)
}

/// [`is_stream`] with what every session shares.
pub(crate) fn is_stream_in(shared: &Shared, key: &[u8]) -> bool {
    let engine = &shared.engine;
    std::str::from_utf8(key).is_ok_and(|name| {
        engine.partition_bounds(name, 0).is_ok() && !shared.streams.deadlines().is_due(engine, name)
    })
}

fn invalid_key(key: &[u8], why: &str) -> Reply {
    Reply::error(format!(
        "ERR stream key '{}' is not a valid Omnibus stream name: {why}",
        super::printable(key, 128)
    ))
}

/// A reply that waits for the stream's writer.
pub(crate) fn answer_later(receiver: tokio::sync::oneshot::Receiver<Reply>) -> Step {
    Step::later(async move {
        receiver
            .await
            .unwrap_or_else(|_| Reply::error("ERR the stream's writer stopped"))
    })
}

/// `[= | ~] threshold [LIMIT count]` after MAXLEN or MINID; returns the trim and the
/// arguments after it.
fn trim_options<'a>(strategy: &Bytes, rest: &'a [Bytes]) -> Result<(Trim, &'a [Bytes]), Reply> {
    let mut rest = rest;
    let mut approximate = false;
    if let Some(first) = rest.first() {
        if first.as_ref() == b"~" || first.as_ref() == b"=" {
            approximate = first.as_ref() == b"~";
            rest = &rest[1..];
        }
    }
    let threshold = rest.first().ok_or_else(|| Reply::error(SYNTAX_ERROR))?;
    rest = &rest[1..];
    let by = if is(strategy, "maxlen") {
        let length = integer(threshold)?;
        if length < 0 {
            return Err(Reply::error("ERR The MAXLEN argument must be >= 0."));
        }
        TrimBy::MaxLength(length as u64)
    } else {
        TrimBy::MinimumId(StreamId::parse_strict(threshold).map_err(Reply::error)?)
    };
    let mut limit = 0;
    if rest.first().is_some_and(|word| is(word, "limit")) {
        let count = rest.get(1).ok_or_else(|| Reply::error(SYNTAX_ERROR))?;
        let count = integer(count)?;
        if count < 0 {
            return Err(Reply::error("ERR The LIMIT argument must be >= 0."));
        }
        if !approximate {
            return Err(Reply::error(
                "ERR syntax error, LIMIT cannot be used without the special ~ option",
            ));
        }
        limit = count as u64;
        rest = &rest[2..];
    }
    Ok((
        Trim {
            by,
            limit,
            approximate,
        },
        rest,
    ))
}

/// XADD key [NOMKSTREAM] [MAXLEN|MINID [=|~] threshold [LIMIT count]] *|id field value …
fn xadd(session: &mut Session, arguments: &[Bytes]) -> Result<Step, Reply> {
    let stream = stream_name(session, &arguments[0])?;
    let mut rest = &arguments[1..];
    let mut make_stream = true;
    let mut trim = None;
    loop {
        let Some(word) = rest.first() else {
            return Err(Reply::error(SYNTAX_ERROR));
        };
        if is(word, "nomkstream") {
            make_stream = false;
            rest = &rest[1..];
        } else if is(word, "maxlen") || is(word, "minid") {
            if trim.is_some() {
                return Err(Reply::error(
                    "ERR syntax error, MAXLEN and MINID options at the same time are not compatible",
                ));
            }
            let (parsed, after) = trim_options(word, &rest[1..])?;
            trim = Some(parsed);
            rest = after;
        } else {
            break;
        }
    }
    let id = NewId::parse(&rest[0]).map_err(Reply::error)?;
    let pairs = &rest[1..];
    if pairs.is_empty() || !pairs.len().is_multiple_of(2) {
        return Err(Reply::error(
            "ERR wrong number of arguments for 'xadd' command",
        ));
    }
    let fields: Vec<(Bytes, Bytes)> = pairs
        .chunks(2)
        .map(|pair| (pair[0].clone(), pair[1].clone()))
        .collect();
    if session.script_appends.is_some() {
        // In a script: the ID given out here when nothing is queued ahead of it, the fsync
        // before the script's reply.
        if let Some(reserved) = session.shared.streams.reserve(&stream, id, &fields, trim) {
            let reserved = reserved?;
            if let Some(appends) = &mut session.script_appends {
                appends.push(reserved.durable);
            }
            return Ok(Reply::Bulk(reserved.id).into());
        }
    }
    let change = Change::Add {
        id,
        fields,
        make_stream,
        trim,
    };
    if session.script_appends.is_some() {
        // In a script: the ID now, the fsync before the script's reply.
        let assigned = session.shared.streams.submit_early(&stream, change);
        if let Some(appends) = &mut session.script_appends {
            appends.push(assigned.durable);
        }
        return Ok(answer_later(assigned.id));
    }
    Ok(answer_later(session.shared.streams.submit(&stream, change)))
}

/// XTRIM key MAXLEN|MINID [=|~] threshold [LIMIT count]
fn xtrim(session: &mut Session, arguments: &[Bytes]) -> Result<Step, Reply> {
    let stream = stream_name(session, &arguments[0])?;
    let strategy = &arguments[1];
    if !is(strategy, "maxlen") && !is(strategy, "minid") {
        return Err(Reply::error(SYNTAX_ERROR));
    }
    let (trim, rest) = trim_options(strategy, &arguments[2..])?;
    if !rest.is_empty() {
        return Err(Reply::error(SYNTAX_ERROR));
    }
    if session.shared.streams.trim_not_due(&stream, trim) {
        return Ok(Reply::Integer(0).into());
    }
    Ok(answer_later(
        session.shared.streams.submit(&stream, Change::Trim(trim)),
    ))
}

/// XSETID key last-id [ENTRIESADDED n] [MAXDELETEDID id] — the options are checked as Redis
/// checks them (ENTRIESADDED not below the length) and otherwise ignored (Omnibus counts
/// entries added by offsets).
fn xsetid(session: &mut Session, arguments: &[Bytes]) -> Result<Step, Reply> {
    let stream = stream_name(session, &arguments[0])?;
    let id = StreamId::parse_strict(&arguments[1]).map_err(Reply::error)?;
    let mut rest = arguments[2..].iter();
    let mut entries_added = None;
    while let Some(option) = rest.next() {
        let value = rest.next().ok_or_else(|| Reply::error(SYNTAX_ERROR))?;
        if is(option, "entriesadded") {
            let added = integer(value)?;
            if added < 0 {
                return Err(Reply::error("ERR entries_added must be positive"));
            }
            entries_added = Some(added as u64);
        } else if is(option, "maxdeletedid") {
            let max_deleted = StreamId::parse_strict(value).map_err(Reply::error)?;
            if id < max_deleted {
                return Err(Reply::error(
                    "ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id",
                ));
            }
        } else {
            return Err(Reply::error(SYNTAX_ERROR));
        }
    }
    Ok(answer_later(
        session
            .shared
            .streams
            .submit(&stream, Change::SetId { id, entries_added }),
    ))
}

/// XDEL key id …
fn xdel(session: &mut Session, arguments: &[Bytes]) -> Result<Step, Reply> {
    let stream = stream_name(session, &arguments[0])?;
    let ids = arguments[1..]
        .iter()
        .map(|id| StreamId::parse_strict(id).map_err(Reply::error))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(answer_later(
        session.shared.streams.submit(&stream, Change::Delete(ids)),
    ))
}

fn xlen(session: &mut Session, arguments: &[Bytes]) -> Result<Step, Reply> {
    let stream = stream_name(session, &arguments[0])?;
    let engine = session.shared.engine.clone();
    let shared = session.shared.clone();
    Ok(Step::later(async move {
        match read::bounds(&engine, &stream) {
            Ok(Some((start, end))) => {
                let deleted = shared
                    .deleted
                    .of(&engine, &stream)
                    .range(start..end)
                    .count();
                Reply::Integer(end.saturating_sub(start).saturating_sub(deleted as u64) as i64)
            }
            Ok(None) => Reply::Integer(0),
            Err(error) => Reply::error(format!("ERR {error}")),
        }
    }))
}

/// XRANGE key start end [COUNT n] / XREVRANGE key end start [COUNT n]
fn xrange(session: &mut Session, arguments: &[Bytes], reverse: bool) -> Result<Step, Reply> {
    let stream = stream_name(session, &arguments[0])?;
    let (start, end) = if reverse {
        (&arguments[2], &arguments[1])
    } else {
        (&arguments[1], &arguments[2])
    };
    let start = range_start(start).map_err(Reply::error)?;
    let end = range_end(end).map_err(Reply::error)?;
    let (Some(start), Some(end)) = (start, end) else {
        let which = if start.is_none() { "start" } else { "end" };
        return Err(Reply::error(format!(
            "ERR invalid {which} ID for the interval"
        )));
    };
    // COUNT may come more than once (the last wins), as Redis parses it. Without it the
    // whole range, as in Redis, within the door's reply budget (an error past it, never a
    // reply cut short: `read::Budget`).
    let mut count = usize::MAX;
    let mut options = arguments[3..].chunks(2);
    for option in options.by_ref() {
        match option {
            [word, value] if is(word, "count") => {
                count = integer(value)?.max(0) as usize;
            }
            _ => return Err(Reply::error(SYNTAX_ERROR)),
        }
    }
    let engine = session.shared.engine.clone();
    let shared = session.shared.clone();
    Ok(Step::later(async move {
        // Redis answers a null array for COUNT 0 (or less) on a stream that exists.
        if count == 0 {
            return if engine.stream_info(&stream).is_ok() {
                Reply::NullArray
            } else {
                Reply::Array(Vec::new())
            };
        }
        let deleted = shared.deleted.of(&engine, &stream);
        let budget = read::Budget {
            entries: count,
            bytes: shared.config.range_reply_bytes_max,
        };
        let entries = if reverse {
            read::reverse(&engine, &stream, (start, end), budget, &deleted).await
        } else {
            read::range(&engine, &stream, (start, end), budget, &deleted).await
        };
        match entries {
            Ok(entries) => entries_reply(entries),
            Err(error) => Reply::error(format!("ERR {error}")),
        }
    }))
}

/// One entry as Redis answers it: `[id, [field, value, …]]`.
pub(crate) fn entry_reply(entry: Entry) -> Reply {
    if entry.deleted {
        return Reply::Array(vec![Reply::Bulk(entry.id_text), Reply::NullArray]);
    }
    let mut flat = Vec::with_capacity(entry.fields.len() * 2);
    for (field, value) in entry.fields {
        flat.push(Reply::Bulk(field));
        flat.push(Reply::Bulk(value));
    }
    Reply::Array(vec![Reply::Bulk(entry.id_text), Reply::Array(flat)])
}

pub(crate) fn entries_reply(entries: Vec<Entry>) -> Reply {
    Reply::Array(entries.into_iter().map(entry_reply).collect())
}

/// `COUNT n` and `BLOCK ms` before `STREAMS`, shared by XREAD and XREADGROUP.
pub(crate) struct ReadOptions {
    pub(crate) count: usize,
    /// `None`: do not block; `Some(0)`: forever.
    pub(crate) block_ms: Option<u64>,
}

pub(crate) fn block_timeout(value: &[u8]) -> Result<u64, Reply> {
    let timeout = integer(value)
        .map_err(|_| Reply::error("ERR timeout is not an integer or out of range"))?;
    if timeout < 0 {
        return Err(Reply::error("ERR timeout is negative"));
    }
    Ok(timeout as u64)
}

/// The keys and IDs after STREAMS, in equal numbers.
pub(crate) fn streams_and_ids<'a>(
    command: &str,
    rest: &'a [Bytes],
) -> Result<(&'a [Bytes], &'a [Bytes]), Reply> {
    if rest.is_empty() || !rest.len().is_multiple_of(2) {
        // Redis names the ID each command is read with: `>` for a group, `$` otherwise.
        let id = if command == "xreadgroup" { '>' } else { '$' };
        return Err(Reply::error(format!(
            "ERR Unbalanced '{command}' list of streams: for each stream key an ID or '{id}' must be specified."
        )));
    }
    Ok(rest.split_at(rest.len() / 2))
}

/// XREAD [COUNT n] [BLOCK ms] STREAMS key … id …
fn xread(session: &mut Session, arguments: &[Bytes]) -> Result<Step, Reply> {
    let mut options = ReadOptions {
        count: ENTRIES_REPLY_MAX,
        block_ms: None,
    };
    let mut index = 0;
    while index < arguments.len() && !is(&arguments[index], "streams") {
        let value = arguments
            .get(index + 1)
            .ok_or_else(|| Reply::error(SYNTAX_ERROR))?;
        if is(&arguments[index], "count") {
            options.count = integer(value)?.clamp(1, ENTRIES_REPLY_MAX as i64) as usize;
        } else if is(&arguments[index], "block") {
            // Inside EXEC or a script a read does not block, as in Redis.
            options.block_ms = Some(block_timeout(value)?).filter(|_| !session.in_exec);
        } else {
            return Err(Reply::error(SYNTAX_ERROR));
        }
        index += 2;
    }
    if index >= arguments.len() {
        return Err(Reply::error(SYNTAX_ERROR));
    }
    let (keys, ids) = streams_and_ids("xread", &arguments[index + 1..])?;
    let mut wanted = Vec::with_capacity(keys.len());
    for (key, id) in keys.iter().zip(ids) {
        let stream = stream_name(session, key)?;
        let after = if id.as_ref() == b"$" {
            ReadFrom::End
        } else if id.as_ref() == b"+" {
            ReadFrom::Last
        } else if id.as_ref() == b">" {
            return Err(Reply::error(
                "ERR The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option.",
            ));
        } else {
            ReadFrom::After(StreamId::parse_strict(id).map_err(Reply::error)?)
        };
        wanted.push((key.clone(), stream, after));
    }
    let shared = session.shared.clone();
    let protocol = session.protocol;
    let mut waiting = Waiting::new(session);
    Ok(Step::later(async move {
        match read_streams(&shared, wanted, options, &mut waiting).await {
            Ok(found) if found.is_empty() => waiting.reply(Reply::NullArray),
            Ok(found) => streams_reply(found, protocol),
            Err(error) => Reply::error(format!("ERR {error}")),
        }
    }))
}

/// XREAD's answer: per stream with entries, its key and entries (a map in RESP3).
pub(crate) fn streams_reply(found: Vec<(Bytes, Vec<Entry>)>, protocol: Protocol) -> Reply {
    match protocol {
        Protocol::Resp3 => Reply::Map(
            found
                .into_iter()
                .map(|(key, entries)| (Reply::Bulk(key), entries_reply(entries)))
                .collect(),
        ),
        Protocol::Resp2 => Reply::Array(
            found
                .into_iter()
                .map(|(key, entries)| Reply::Array(vec![Reply::Bulk(key), entries_reply(entries)]))
                .collect(),
        ),
    }
}

/// Where XREAD starts in one stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReadFrom {
    /// `$`: what comes after the last entry when the command runs.
    End,
    /// `+` (Redis 7.4): the last entry, alone whatever COUNT says; what comes next when the
    /// stream has none.
    Last,
    /// After this ID.
    After(StreamId),
}

/// The entries XREAD answers; none when BLOCK's time ran out or CLIENT UNBLOCK ended the
/// wait (`waiting`).
async fn read_streams(
    shared: &Shared,
    wanted: Vec<(Bytes, String, ReadFrom)>,
    options: ReadOptions,
    waiting: &mut Waiting,
) -> omnibus_engine::Result<Vec<(Bytes, Vec<Entry>)>> {
    let engine = &shared.engine;
    // Offsets to read from (`$` is the end when the command runs), and how many entries at
    // most (`+` answers one).
    let mut positions = Vec::with_capacity(wanted.len());
    for (key, stream, from) in wanted {
        let mut count = options.count;
        // An explicit ID is kept beside the offset: a stream missing or empty now may be
        // given entries at or below it (`XADD x 1-1` after `XREAD … x 1-5`), which the read
        // passes over, as Redis does.
        let after = match from {
            ReadFrom::After(after) => Some(after),
            _ => None,
        };
        let offset = match read::bounds(engine, &stream)? {
            None => 0,
            Some((start, end)) => match from {
                ReadFrom::End => end,
                ReadFrom::Last => {
                    count = 1;
                    // The last entry XDEL left, or the end when none is left.
                    let deleted = shared.deleted.of(engine, &stream);
                    (start..end)
                        .rev()
                        .find(|offset| !deleted.contains(offset))
                        .unwrap_or(end)
                }
                ReadFrom::After(after) => match after.next() {
                    // After the largest ID: only what comes next.
                    None => end,
                    Some(first) => read::offset_of(engine, &stream, first).await?,
                },
            },
        };
        let made = crate::streams::created_ms(engine, &stream);
        positions.push((key, stream, offset, count, after, made));
    }
    let deadline = options
        .block_ms
        .filter(|ms| *ms > 0)
        .map(|ms| tokio::time::Instant::now() + Duration::from_millis(ms));
    loop {
        let mut found = Vec::new();
        let mut passed_over = false;
        for (key, stream, offset, count, after, made) in &mut positions {
            let Some((start, _)) = read::bounds(engine, stream)? else {
                continue;
            };
            // Deleted and made again (or made) since: everything in it is new, read from
            // its start (Redis serves a `$` read blocked on a deleted key the next XADD).
            let now_made = crate::streams::created_ms(engine, stream);
            if now_made != *made {
                *made = now_made;
                *offset = 0;
            }
            *offset = (*offset).max(start);
            let deleted = shared.deleted.of(engine, stream);
            let mut entries = read::forward(
                engine,
                stream,
                *offset,
                StreamId::MAX,
                read::Budget::entries(*count),
                &deleted,
            )
            .await?;
            if let (Some(after), Some(last)) = (*after, entries.last()) {
                let next = last.offset + 1;
                entries.retain(|entry| entry.id > after);
                if entries.is_empty() {
                    *offset = next;
                    passed_over = true;
                }
            }
            if !entries.is_empty() {
                found.push((key.clone(), entries));
            }
        }
        if !found.is_empty() || (options.block_ms.is_none() && !passed_over) {
            return Ok(found);
        }
        if passed_over {
            // Read on from past them before waiting.
            continue;
        }
        let mut wait = Duration::from_millis(omnibus_types::limits::FETCH_WAIT_MS_MAX);
        if let Some(deadline) = deadline {
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(found);
            }
            wait = wait.min(deadline - now);
        }
        let waits: Vec<(String, u32, u64)> = positions
            .iter()
            .map(|(_, stream, offset, ..)| (stream.clone(), 0, *offset))
            .collect();
        // A stream that does not exist yet ends the wait when it is created.
        waiting.blocked();
        tokio::select! {
            () = engine.wait_for_records(&waits, wait.as_millis() as u64) => {}
            () = waiting.unblocked() => return Ok(Vec::new()),
        }
    }
}
