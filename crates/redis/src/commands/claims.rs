//! Pending entries of consumer groups: XPENDING (summary and extended), XCLAIM, XAUTOCLAIM.
//!
//! Redis's rules kept: an entry is claimed only when idle at least `min-idle-time`; a claim
//! counts a delivery unless JUSTID; FORCE creates an entry not pending yet (if the ID is in the
//! stream); XAUTOCLAIM scans COUNT pending entries from `start` and answers the cursor where
//! the next scan begins (`0-0` when it went through them all). An entry trimmed from the
//! stream while pending, or removed by XDEL, is dropped from the pending list without being
//! claimed (XAUTOCLAIM reports it among the deleted), as Redis does; a trimmed entry's ID is
//! the one the door answered for it lately (`KnownIds`), `0-<offset>` after a restart.

use bytes::Bytes;
use omnibus_engine::consumers::{ClaimOptions, PendingEntry, PendingQuery};

use super::arguments::{integer, is, SYNTAX_ERROR};
use super::groups::{engine_error, entries_at, group_exists, no_key_or_group, offsets_of, text};
use super::streams::stream_name;
use crate::codec::Reply;
use crate::server::Shared;
use crate::session::{Session, Step};
use crate::streams::id::{range_end, range_start, StreamId};
use crate::streams::read;

pub(super) fn run(session: &mut Session, name: &str, arguments: &[Bytes]) -> Step {
    let result = match name {
        "xpending" => xpending(session, arguments),
        "xclaim" => xclaim(session, arguments),
        "xautoclaim" => xautoclaim(session, arguments),
        _ => Err(Reply::error(format!("ERR unknown command '{name}'"))),
    };
    result.unwrap_or_else(Step::from)
}

fn bulk(text: String) -> Reply {
    Reply::Bulk(Bytes::from(text))
}

/// The IDs of the entries at `offsets`, in that order: read from the stream, or for
/// entries trimmed away, the IDs the door answered for them lately; `0-<offset>` when
/// neither knows.
async fn ids_or_offsets(
    shared: &Shared,
    stream: &str,
    offsets: &[u64],
) -> omnibus_engine::Result<Vec<StreamId>> {
    let engine = &shared.engine;
    let mut found = read::ids_at(engine, stream, offsets).await?;
    let missing: Vec<u64> = offsets
        .iter()
        .copied()
        .filter(|offset| !found.contains_key(offset))
        .collect();
    if !missing.is_empty() {
        found.extend(shared.known_ids.ids_of(engine, stream, &missing));
    }
    Ok(offsets
        .iter()
        .map(|offset| {
            found
                .get(offset)
                .copied()
                .unwrap_or(StreamId::new(0, *offset))
        })
        .collect())
}

fn id_replies(ids: Vec<StreamId>) -> Vec<Reply> {
    ids.into_iter().map(|id| bulk(id.to_string())).collect()
}

/// Pending entries trimmed away looked at when a scan starts among them (below the log's
/// start, at an ID other than `0-0`): their IDs come from memory, so this many at most.
const TRIMMED_PENDING_SCANNED_MAX: usize = 100_000;

/// The pending entries of `query` whose IDs are at least `start`. The query's `from` is
/// replaced: a scan from `-`/`0-0` takes in entries trimmed away while pending (they are
/// before the log's start); a scan from an ID at or below the stream's first entry takes in
/// those of them whose IDs, as the door remembers them, are at least `start` (Redis keeps
/// them in the pending list under their IDs); a scan from a later ID begins at its offset.
pub(super) async fn pending_in_range(
    shared: &Shared,
    stream: &str,
    group: &str,
    start: StreamId,
    mut query: PendingQuery<'_>,
) -> omnibus_engine::Result<Vec<PendingEntry>> {
    let engine = &shared.engine;
    if start == StreamId::MIN {
        query.from = 0;
        return engine.owned_pending(stream, group, query);
    }
    let from = read::offset_of(engine, stream, start).await?;
    let (log_start, _) = engine.partition_bounds(stream, 0)?;
    let mut found = Vec::new();
    if from <= log_start && log_start > 0 && query.to > 0 {
        let trimmed = PendingQuery {
            from: 0,
            to: (log_start - 1).min(query.to),
            limit: TRIMMED_PENDING_SCANNED_MAX,
            ..query
        };
        let below = engine.owned_pending(stream, group, trimmed)?;
        let offsets: Vec<u64> = below.iter().map(|entry| entry.offset).collect();
        let ids = ids_or_offsets(shared, stream, &offsets).await?;
        found.extend(
            below
                .into_iter()
                .zip(ids)
                .filter(|(_, id)| *id >= start)
                .map(|(entry, _)| entry)
                .take(query.limit),
        );
    }
    if found.len() < query.limit {
        query.from = from.max(log_start);
        query.limit -= found.len();
        found.extend(engine.owned_pending(stream, group, query)?);
    }
    Ok(found)
}

/// `offsets` split into those gone from the stream (trimmed away, or removed by XDEL) and the
/// others, in order.
fn split_gone(
    shared: &Shared,
    stream: &str,
    offsets: Vec<u64>,
) -> omnibus_engine::Result<(Vec<u64>, Vec<u64>)> {
    let deleted = shared.deleted.of(&shared.engine, stream);
    let (start, _) = shared.engine.partition_bounds(stream, 0)?;
    Ok(offsets
        .into_iter()
        .partition(|offset| *offset < start || deleted.contains(offset)))
}

/// `min-idle-time`, refused in Redis's words for `command`; a negative one counts as 0.
fn min_idle(value: &[u8], command: &str) -> Result<u64, Reply> {
    let number = integer(value)
        .map_err(|_| Reply::error(format!("ERR Invalid min-idle-time argument for {command}")))?;
    Ok(number.max(0) as u64)
}

/// XCLAIM's IDLE and TIME, refused in Redis's words; a negative one counts as 0.
fn option_ms(value: &[u8], option: &str) -> Result<u64, Reply> {
    let number = integer(value)
        .map_err(|_| Reply::error(format!("ERR Invalid {option} option argument for XCLAIM")))?;
    Ok(number.max(0) as u64)
}

fn milliseconds(value: &[u8]) -> Result<u64, Reply> {
    let number = integer(value)?;
    Ok(number.max(0) as u64)
}

/// XPENDING key group [[IDLE min-idle] start end count [consumer]]
fn xpending(session: &mut Session, arguments: &[Bytes]) -> Result<Step, Reply> {
    let stream = stream_name(session, &arguments[0])?;
    let group = text(&arguments[1]);
    let mut rest = &arguments[2..];
    let mut min_idle = 0;
    if rest.first().is_some_and(|word| is(word, "idle")) {
        min_idle = milliseconds(rest.get(1).ok_or_else(|| Reply::error(SYNTAX_ERROR))?)?;
        rest = &rest[2..];
        if rest.is_empty() {
            return Err(Reply::error(SYNTAX_ERROR));
        }
    }
    let extended = match rest {
        [] => None,
        [start, end, count, owner @ ..] if owner.len() <= 1 => {
            let start = range_start(start).map_err(Reply::error)?;
            let end = range_end(end).map_err(Reply::error)?;
            let count = integer(count)?.clamp(0, super::streams::ENTRIES_REPLY_MAX as i64) as usize;
            Some((start, end, count, owner.first().map(|o| text(o))))
        }
        _ => return Err(Reply::error(SYNTAX_ERROR)),
    };
    let engine = session.shared.engine.clone();
    let shared = session.shared.clone();
    Ok(Step::later(async move {
        if !group_exists(&engine, &stream, &group) {
            return no_key_or_group(&stream, &group);
        }
        let result = match extended {
            None => summary(&shared, &stream, &group).await,
            Some((Some(start), Some(end), count, owner)) => {
                extended_pending(
                    &shared,
                    &stream,
                    &group,
                    (start, end),
                    count,
                    owner,
                    min_idle,
                )
                .await
            }
            Some(_) => Ok(Reply::Array(Vec::new())),
        };
        result.unwrap_or_else(engine_error)
    }))
}

async fn summary(shared: &Shared, stream: &str, group: &str) -> omnibus_engine::Result<Reply> {
    let engine = &shared.engine;
    let pending = engine.owned_pending(stream, group, PendingQuery::all())?;
    let (Some(first), Some(last)) = (pending.first(), pending.last()) else {
        return Ok(Reply::Array(vec![
            Reply::Integer(0),
            Reply::Null,
            Reply::Null,
            Reply::NullArray,
        ]));
    };
    let ends = ids_or_offsets(shared, stream, &[first.offset, last.offset]).await?;
    let (first_id, last_id) = (ends[0], ends[1]);
    let mut per_owner = std::collections::BTreeMap::new();
    for entry in &pending {
        *per_owner.entry(entry.owner.clone()).or_insert(0u64) += 1;
    }
    Ok(Reply::Array(vec![
        Reply::Integer(pending.len() as i64),
        bulk(first_id.to_string()),
        bulk(last_id.to_string()),
        Reply::Array(
            per_owner
                .into_iter()
                .map(|(owner, count)| Reply::Array(vec![bulk(owner), bulk(count.to_string())]))
                .collect(),
        ),
    ]))
}

async fn extended_pending(
    shared: &Shared,
    stream: &str,
    group: &str,
    (start, end): (StreamId, StreamId),
    count: usize,
    owner: Option<String>,
    min_idle: u64,
) -> omnibus_engine::Result<Reply> {
    let engine = &shared.engine;
    let to = read::offset_after(engine, stream, end).await?;
    if to == 0 || count == 0 {
        return Ok(Reply::Array(Vec::new()));
    }
    let query = PendingQuery {
        from: 0,
        to: to - 1,
        owner: owner.as_deref(),
        min_idle_ms: min_idle,
        limit: count,
    };
    let pending = pending_in_range(shared, stream, group, start, query).await?;
    let now = crate::streams::now_ms() as i64;
    let offsets: Vec<u64> = pending.iter().map(|entry| entry.offset).collect();
    let ids = ids_or_offsets(shared, stream, &offsets).await?;
    let mut replies = Vec::with_capacity(pending.len());
    for (entry, id) in pending.into_iter().zip(ids) {
        replies.push(Reply::Array(vec![
            bulk(id.to_string()),
            bulk(entry.owner),
            Reply::Integer(now.saturating_sub(entry.last_delivery_ms).max(0)),
            Reply::Integer(entry.deliveries as i64),
        ]));
    }
    Ok(Reply::Array(replies))
}

/// XCLAIM key group consumer min-idle-time id … [IDLE ms] [TIME ms] [RETRYCOUNT n] [FORCE]
/// [JUSTID] [LASTID id]
fn xclaim(session: &mut Session, arguments: &[Bytes]) -> Result<Step, Reply> {
    let stream = stream_name(session, &arguments[0])?;
    let group = text(&arguments[1]);
    let owner = text(&arguments[2]);
    let mut options = ClaimOptions {
        min_idle_ms: min_idle(&arguments[3], "XCLAIM")?,
        ..ClaimOptions::default()
    };
    let mut ids = Vec::new();
    let mut justid = false;
    let mut rest = arguments[4..].iter();
    let now = crate::streams::now_ms() as i64;
    while let Some(argument) = rest.next() {
        if let Ok(id) = StreamId::parse_strict(argument) {
            ids.push(id);
            continue;
        }
        let mut value = || rest.next().ok_or_else(|| Reply::error(SYNTAX_ERROR));
        if is(argument, "idle") {
            let idle = option_ms(value()?, "IDLE")?;
            options.last_delivery_ms = Some(now - idle as i64);
        } else if is(argument, "time") {
            options.last_delivery_ms = Some(option_ms(value()?, "TIME")? as i64);
        } else if is(argument, "retrycount") {
            // A negative count is Redis's "not given": the count stays as it is.
            let count = integer(value()?)?;
            options.deliveries = u64::try_from(count).ok();
        } else if is(argument, "force") {
            options.force = true;
        } else if is(argument, "justid") {
            justid = true;
            options.keep_count = true;
        } else if is(argument, "lastid") {
            StreamId::parse_strict(value()?).map_err(Reply::error)?;
        } else {
            return Err(Reply::error(format!(
                "ERR Unrecognized XCLAIM option '{}'",
                super::printable(argument, 128)
            )));
        }
    }
    if ids.is_empty() {
        return Err(Reply::error(
            "ERR Invalid stream ID specified as stream command argument",
        ));
    }
    let engine = session.shared.engine.clone();
    let shared = session.shared.clone();
    Ok(Step::later(async move {
        if !group_exists(&engine, &stream, &group) {
            return no_key_or_group(&stream, &group);
        }
        let claimed = async {
            let offsets = offsets_of(&shared, &stream, &ids).await?;
            // An entry gone from the stream leaves the pending list instead of being claimed,
            // as in Redis.
            let (gone, offsets) = split_gone(&shared, &stream, offsets)?;
            if !gone.is_empty() {
                engine.owned_ack(&stream, &group, &gone).await?;
            }
            let claimed = engine
                .owned_claim(&stream, &group, &owner, &offsets, options)
                .await?;
            let offsets: Vec<u64> = claimed.iter().map(|entry| entry.offset).collect();
            if justid {
                return Ok(id_replies(
                    ids_or_offsets(&shared, &stream, &offsets).await?,
                ));
            }
            entries_at(&engine, &stream, &group, &offsets).await
        };
        match claimed.await {
            Ok(replies) => Reply::Array(replies),
            Err(error) => engine_error(error),
        }
    }))
}

/// XAUTOCLAIM key group consumer min-idle-time start [COUNT n] [JUSTID]
fn xautoclaim(session: &mut Session, arguments: &[Bytes]) -> Result<Step, Reply> {
    if arguments.len() < 5 {
        return Err(Reply::error(
            "ERR wrong number of arguments for 'xautoclaim' command",
        ));
    }
    let stream = stream_name(session, &arguments[0])?;
    let group = text(&arguments[1]);
    let owner = text(&arguments[2]);
    let min_idle_ms = min_idle(&arguments[3], "XAUTOCLAIM")?;
    let start = range_start(&arguments[4])
        .map_err(Reply::error)?
        .unwrap_or(StreamId::MAX);
    let mut count = 100usize;
    let mut justid = false;
    let mut rest = arguments[5..].iter();
    while let Some(option) = rest.next() {
        if is(option, "count") {
            let value = integer(rest.next().ok_or_else(|| Reply::error(SYNTAX_ERROR))?)?;
            if !(1..=i64::MAX / 10).contains(&value) {
                return Err(Reply::error("ERR COUNT must be > 0"));
            }
            count = (value as usize).min(super::streams::ENTRIES_REPLY_MAX);
        } else if is(option, "justid") {
            justid = true;
        } else {
            return Err(Reply::error(SYNTAX_ERROR));
        }
    }
    let engine = session.shared.engine.clone();
    let shared = session.shared.clone();
    Ok(Step::later(async move {
        if !group_exists(&engine, &stream, &group) {
            return no_key_or_group(&stream, &group);
        }
        let scanned = async {
            let query = PendingQuery {
                limit: count + 1,
                ..PendingQuery::all()
            };
            let scanned = pending_in_range(&shared, &stream, &group, start, query).await?;
            let next = scanned.get(count).map(|entry| entry.offset);
            let scanned = &scanned[..scanned.len().min(count)];
            // Entries gone from the stream leave the pending list and are reported as deleted.
            let scanned_offsets = scanned.iter().map(|entry| entry.offset).collect();
            let (gone, present) = split_gone(&shared, &stream, scanned_offsets)?;
            engine.owned_ack(&stream, &group, &gone).await?;
            let options = ClaimOptions {
                min_idle_ms,
                keep_count: justid,
                ..ClaimOptions::default()
            };
            let claimed = engine
                .owned_claim(&stream, &group, &owner, &present, options)
                .await?;
            let offsets: Vec<u64> = claimed.iter().map(|entry| entry.offset).collect();
            let entries = if justid {
                id_replies(ids_or_offsets(&shared, &stream, &offsets).await?)
            } else {
                entries_at(&engine, &stream, &group, &offsets).await?
            };
            let cursor = match next {
                Some(offset) => ids_or_offsets(&shared, &stream, &[offset]).await?[0],
                None => StreamId::MIN,
            };
            let deleted = id_replies(ids_or_offsets(&shared, &stream, &gone).await?);
            Ok::<_, omnibus_engine::EngineError>(Reply::Array(vec![
                bulk(cursor.to_string()),
                Reply::Array(entries),
                Reply::Array(deleted),
            ]))
        };
        scanned.await.unwrap_or_else(engine_error)
    }))
}
