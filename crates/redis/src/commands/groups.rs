//! Consumer groups: XGROUP, XREADGROUP, XACK. A Redis consumer group is an engine acked
//! consumer over the stream in the owned-pending mode (`engine/src/consumers/owned.rs`),
//! named as the group: its position is the group's last delivered ID, and each delivery stays
//! pending with the Redis consumer that read it until XACK or a claim — Redis's semantics, no
//! redelivery by itself. Every change is a state-store commit made before the reply.
//!
//! A group name must be a valid engine consumer name (no whitespace, `.`, `*` or `>`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use omnibus_engine::consumers::{
    AckMode, ConsumerSpec, ConsumerStart, PendingQuery, ACK_PENDING_MAX,
};
use omnibus_engine::{Engine, EngineError};

use super::arguments::{integer, is, SYNTAX_ERROR};
use super::streams::{
    block_timeout, entry_reply, stream_name, streams_and_ids, streams_reply, ENTRIES_REPLY_MAX,
};
use crate::clients::Waiting;
use crate::codec::Reply;
use crate::server::Shared;
use crate::session::{Session, Step};
use crate::streams::entry::{from_record, Entry, FieldNames};
use crate::streams::id::StreamId;
use crate::streams::read;

/// A group's deliveries never expire; the engine still wants an ack wait (one year).
const GROUP_ACK_WAIT_MS: u64 = 365 * 24 * 3_600 * 1_000;

pub(super) fn run(session: &mut Session, name: &str, arguments: &[Bytes]) -> Step {
    let result = match name {
        "xgroup" => xgroup(session, arguments),
        "xreadgroup" => xreadgroup(session, arguments),
        "xack" => xack(session, arguments),
        _ => Err(Reply::error(format!("ERR unknown command '{name}'"))),
    };
    result.unwrap_or_else(Step::from)
}

pub(super) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub(super) fn engine_error(error: EngineError) -> Reply {
    match error {
        EngineError::LimitExceeded(text) => {
            Reply::error(format!("OOM command not allowed: {text}"))
        }
        other => Reply::error(format!("ERR {other}")),
    }
}

/// Whether `group` is a Redis group of `stream`.
pub(super) fn group_exists(engine: &Engine, stream: &str, group: &str) -> bool {
    engine
        .consumer_info(stream, group)
        .is_ok_and(|info| info.stored.spec.owned_pending)
}

/// NOGROUP as XGROUP SETID/CREATECONSUMER/DELCONSUMER and XINFO CONSUMERS word it.
pub(super) fn no_group(stream: &str, group: &str) -> Reply {
    Reply::error(format!(
        "NOGROUP No such consumer group '{group}' for key name '{stream}'"
    ))
}

/// NOGROUP as XPENDING, XCLAIM and XAUTOCLAIM word it (the key or the group is missing).
pub(super) fn no_key_or_group(stream: &str, group: &str) -> Reply {
    Reply::error(format!(
        "NOGROUP No such key '{stream}' or consumer group '{group}'"
    ))
}

/// Where a group starts: `$` after the last entry, else after the given ID (`-` and `+`
/// too, the smallest and largest IDs, as Redis reads them here).
async fn start_of(engine: &Engine, stream: &str, id: &[u8]) -> Result<ConsumerStart, Reply> {
    let id = match id {
        b"$" => return Ok(ConsumerStart::New),
        b"-" => StreamId::MIN,
        b"+" => StreamId::MAX,
        id => StreamId::parse_strict(id).map_err(Reply::error)?,
    };
    let offset = read::offset_after(engine, stream, id)
        .await
        .map_err(engine_error)?;
    Ok(ConsumerStart::Offset(offset))
}

pub(super) fn group_spec(stream: &str, group: &str, start: ConsumerStart) -> ConsumerSpec {
    let mut door_settings = BTreeMap::new();
    door_settings.insert("redis.group".to_string(), "true".to_string());
    ConsumerSpec {
        stream: stream.to_string(),
        name: group.to_string(),
        filter_subjects: Vec::new(),
        start,
        ack: AckMode::Explicit,
        ack_wait_ms: GROUP_ACK_WAIT_MS,
        max_deliver: None,
        backoff_ms: Vec::new(),
        max_ack_pending: ACK_PENDING_MAX,
        door_settings,
        remove_acked: false,
        owned_pending: true,
    }
}

/// XGROUP CREATE / SETID / DESTROY / CREATECONSUMER / DELCONSUMER
fn xgroup(session: &mut Session, arguments: &[Bytes]) -> Result<Step, Reply> {
    let subcommand = super::lowercase(&arguments[0]);
    let arity_ok = match subcommand.as_str() {
        "create" => (4..=7).contains(&arguments.len()),
        "setid" => (4..=6).contains(&arguments.len()),
        "destroy" => arguments.len() == 3,
        "createconsumer" | "delconsumer" => arguments.len() == 4,
        "help" => {
            return Ok(super::help_reply(&[
                "XGROUP <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "CREATE <key> <group> <id|$> [MKSTREAM] [ENTRIESREAD n]",
                "    Make a consumer group starting after <id> ($: after the last entry).",
                "    MKSTREAM makes the stream when it is missing.",
                "SETID <key> <group> <id|$> [ENTRIESREAD n]",
                "    Move the group's last delivered ID.",
                "DESTROY <key> <group>",
                "    Remove the group and its pending entries.",
                "CREATECONSUMER <key> <group> <consumer>",
                "    Add a consumer to the group.",
                "DELCONSUMER <key> <group> <consumer>",
                "    Remove a consumer; its pending entries go with it.",
                "HELP",
                "    Print this help.",
            ])
            .into())
        }
        _ => {
            return Err(Reply::error(format!(
                "ERR unknown subcommand '{}'. Try XGROUP HELP.",
                super::printable(&arguments[0], 128)
            )))
        }
    };
    if !arity_ok {
        return Err(Reply::error(format!(
            "ERR wrong number of arguments for 'xgroup|{subcommand}' command"
        )));
    }
    let stream = stream_name(session, &arguments[1])?;
    let group = text(&arguments[2]);
    let engine = session.shared.engine.clone();
    let rest: Vec<Bytes> = arguments[3..].to_vec();
    Ok(Step::later(async move {
        xgroup_run(&engine, &subcommand, &stream, &group, &rest)
            .await
            .unwrap_or_else(|reply| reply)
    }))
}

/// XGROUP CREATE's answer to an option it does not take, in Redis's words.
fn create_syntax() -> Reply {
    Reply::error(
        "ERR unknown subcommand or wrong number of arguments for 'CREATE'. Try XGROUP HELP.",
    )
}

async fn xgroup_run(
    engine: &Arc<Engine>,
    subcommand: &str,
    stream: &str,
    group: &str,
    rest: &[Bytes],
) -> Result<Reply, Reply> {
    let exists = read::bounds(engine, stream)
        .map_err(engine_error)?
        .is_some();
    if subcommand == "create" {
        let mut make_stream = false;
        let mut options = rest[1..].iter();
        while let Some(option) = options.next() {
            if is(option, "mkstream") {
                make_stream = true;
            } else if is(option, "entriesread") {
                let value = options.next().ok_or_else(create_syntax)?;
                if integer(value)? < -1 {
                    return Err(Reply::error(
                        "ERR value for ENTRIESREAD must be positive or -1",
                    ));
                }
            } else {
                return Err(create_syntax());
            }
        }
        if !exists {
            if !make_stream {
                return Err(Reply::error("ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically."));
            }
            let spec = crate::streams::new_stream_spec(stream);
            match engine.create_stream(spec).await {
                Ok(_) | Err(EngineError::StreamExists(_)) => {}
                Err(error) => return Err(engine_error(error)),
            }
        }
        if engine.consumer_info(stream, group).is_ok() {
            return Err(Reply::error("BUSYGROUP Consumer Group name already exists"));
        }
        let start = start_of(engine, stream, &rest[0]).await?;
        engine
            .create_consumer(group_spec(stream, group, start))
            .await
            .map_err(engine_error)?;
        return Ok(Reply::ok());
    }
    if !exists {
        return Err(Reply::error("ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically."));
    }
    if !group_exists(engine, stream, group) {
        // Destroying a group that is not there destroys nothing, as in Redis.
        if subcommand == "destroy" {
            return Ok(Reply::Integer(0));
        }
        return Err(no_group(stream, group));
    }
    match subcommand {
        "setid" => {
            let offset = match start_of(engine, stream, &rest[0]).await? {
                ConsumerStart::Offset(offset) => offset,
                _ => engine.partition_bounds(stream, 0).map_err(engine_error)?.1,
            };
            engine
                .owned_set_position(stream, group, offset)
                .await
                .map_err(engine_error)?;
            Ok(Reply::ok())
        }
        "destroy" => {
            engine
                .delete_consumer(stream, group)
                .await
                .map_err(engine_error)?;
            Ok(Reply::Integer(1))
        }
        "createconsumer" => {
            let created = engine
                .owned_create_owner(stream, group, &text(&rest[0]))
                .await
                .map_err(engine_error)?;
            Ok(Reply::Integer(i64::from(created)))
        }
        _ => {
            let dropped = engine
                .owned_delete_owner(stream, group, &text(&rest[0]))
                .await
                .map_err(engine_error)?;
            Ok(Reply::Integer(dropped.unwrap_or(0) as i64))
        }
    }
}

/// What one XREADGROUP asks of one stream.
struct GroupRead {
    key: Bytes,
    stream: String,
    /// `None`: `>`, new entries; else the consumer's pending entries after this ID.
    history_after: Option<StreamId>,
}

/// XREADGROUP GROUP group consumer [COUNT n] [BLOCK ms] [NOACK] STREAMS key … id …
fn xreadgroup(session: &mut Session, arguments: &[Bytes]) -> Result<Step, Reply> {
    if !is(&arguments[0], "group") || arguments.len() < 6 {
        return Err(Reply::error(SYNTAX_ERROR));
    }
    let group = text(&arguments[1]);
    let consumer = text(&arguments[2]);
    let mut count = ENTRIES_REPLY_MAX;
    let mut block_ms = None;
    let mut noack = false;
    let mut index = 3;
    while index < arguments.len() && !is(&arguments[index], "streams") {
        if is(&arguments[index], "noack") {
            noack = true;
            index += 1;
            continue;
        }
        let value = arguments
            .get(index + 1)
            .ok_or_else(|| Reply::error(SYNTAX_ERROR))?;
        if is(&arguments[index], "count") {
            count = integer(value)?.clamp(1, ENTRIES_REPLY_MAX as i64) as usize;
        } else if is(&arguments[index], "block") {
            // Inside EXEC or a script a read does not block, as in Redis.
            block_ms = Some(block_timeout(value)?).filter(|_| !session.in_exec);
        } else {
            return Err(Reply::error(SYNTAX_ERROR));
        }
        index += 2;
    }
    if index >= arguments.len() {
        return Err(Reply::error(SYNTAX_ERROR));
    }
    let (keys, ids) = streams_and_ids("xreadgroup", &arguments[index + 1..])?;
    let mut reads = Vec::with_capacity(keys.len());
    for (key, id) in keys.iter().zip(ids) {
        let stream = stream_name(session, key)?;
        let history_after = if id.as_ref() == b">" {
            None
        } else if id.as_ref() == b"$" {
            return Err(Reply::error(
                "ERR The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just return an empty result set.",
            ));
        } else {
            Some(StreamId::parse_strict(id).map_err(Reply::error)?)
        };
        reads.push(GroupRead {
            key: key.clone(),
            stream,
            history_after,
        });
    }
    let engine = session.shared.engine.clone();
    let shared = session.shared.clone();
    let protocol = session.protocol;
    let mut waiting = Waiting::new(session);
    // First blocked, first served (`streams/turns.rs`).
    let line = match reads.as_slice() {
        [read] if block_ms.is_some() && read.history_after.is_none() => {
            Some(shared.group_lines.line(&read.stream, &group))
        }
        _ => None,
    };
    Ok(Step::later(async move {
        let deadline = block_ms
            .filter(|ms| *ms > 0)
            .map(|ms| tokio::time::Instant::now() + Duration::from_millis(ms));
        let _turn = match line {
            None => None,
            Some(line) => match line.clone().try_lock_owned() {
                Ok(turn) => Some(turn),
                Err(_) => {
                    // Behind another reader of the group: blocked already.
                    waiting.blocked();
                    let expired = async {
                        match deadline {
                            Some(deadline) => tokio::time::sleep_until(deadline).await,
                            None => std::future::pending().await,
                        }
                    };
                    tokio::select! {
                        turn = line.lock_owned() => Some(turn),
                        () = expired => return Reply::NullArray,
                        () = waiting.unblocked() => return waiting.reply(Reply::NullArray),
                    }
                }
            },
        };
        loop {
            // As in Redis, a group destroyed (XGROUP DESTROY, or DEL of its stream key; by
            // any door) while this read waits ends it with NOGROUP: watched before the groups
            // are looked at.
            let destroyed = engine.consumers_removed().notified();
            tokio::pin!(destroyed);
            destroyed.as_mut().enable();
            for read in &reads {
                if !group_exists(&engine, &read.stream, &group) {
                    return Reply::error(format!(
                        "NOGROUP No such key '{}' or consumer group '{group}' in XREADGROUP with GROUP option",
                        read.stream
                    ));
                }
            }
            let mut found = Vec::new();
            let mut history = false;
            let mut positions = Vec::new();
            for read in &reads {
                let deleted = shared.deleted.of(&engine, &read.stream);
                let entries = match read.history_after {
                    Some(after) => {
                        history = true;
                        let pending = (group.as_str(), consumer.as_str());
                        history_entries(&shared, &read.stream, pending, after, count, &deleted)
                            .await
                    }
                    None => {
                        let end = engine.partition_bounds(&read.stream, 0).map_or(0, |b| b.1);
                        positions.push((read.stream.clone(), 0, end));
                        new_entries(
                            &engine,
                            &read.stream,
                            &group,
                            &consumer,
                            (count, noack),
                            &deleted,
                        )
                        .await
                    }
                };
                if let Ok(entries) = &entries {
                    let known = entries.iter().map(|entry| (entry.id, entry.offset));
                    shared.known_ids.remember(&engine, &read.stream, known);
                }
                match entries {
                    Ok(entries) if entries.is_empty() && read.history_after.is_none() => {}
                    Ok(entries) => found.push((read.key.clone(), entries)),
                    Err(error) => return engine_error(error),
                }
            }
            if !found.is_empty() || history || block_ms.is_none() {
                return if found.is_empty() {
                    Reply::NullArray
                } else {
                    streams_reply(found, protocol)
                };
            }
            let mut wait = Duration::from_millis(omnibus_types::limits::FETCH_WAIT_MS_MAX);
            if let Some(deadline) = deadline {
                let now = tokio::time::Instant::now();
                if now >= deadline {
                    return Reply::NullArray;
                }
                wait = wait.min(deadline - now);
            }
            waiting.blocked();
            tokio::select! {
                () = engine.wait_for_records(&positions, wait.as_millis() as u64) => {}
                () = &mut destroyed => {}
                () = waiting.unblocked() => return waiting.reply(Reply::NullArray),
            }
        }
    }))
}

/// `>`: new entries for `consumer`, pending with it unless NOACK. Entries XDEL removed are
/// passed over (acknowledged at once: Redis never delivers them), and the read goes on past
/// them until it has `count` entries or the stream's end: `COUNT 1` over a deleted entry
/// answers the next one, not nil.
async fn new_entries(
    engine: &Engine,
    stream: &str,
    group: &str,
    consumer: &str,
    (count, noack): (usize, bool),
    deleted: &std::collections::BTreeSet<u64>,
) -> omnibus_engine::Result<Vec<Entry>> {
    let mut names = FieldNames::default();
    let mut entries = Vec::new();
    // Each round passes at least one deleted entry, and XDEL keeps a bounded set of them.
    while entries.len() < count {
        let wanted = count - entries.len();
        let records = engine
            .owned_next(stream, group, consumer, wanted, !noack)
            .await?;
        let taken = records.len();
        let (gone, kept): (Vec<_>, Vec<_>) = records
            .into_iter()
            .partition(|record| deleted.contains(&record.offset));
        if !gone.is_empty() && !noack {
            let offsets: Vec<u64> = gone.iter().map(|record| record.offset).collect();
            engine.owned_ack(stream, group, &offsets).await?;
        }
        entries.extend(kept.into_iter().map(|record| names.entry(record)));
        if gone.is_empty() || taken < wanted {
            break;
        }
    }
    Ok(entries)
}

/// A consumer's pending entries after `after` (XREADGROUP with an ID), each counted as
/// delivered once more. An entry gone from the stream — removed by XDEL, or trimmed away
/// while pending — shows its ID with nil fields and is not counted, as in Redis (a trimmed
/// entry's ID is the one the door answered for it lately, else `0-<offset>`).
async fn history_entries(
    shared: &Shared,
    stream: &str,
    (group, consumer): (&str, &str),
    after: StreamId,
    count: usize,
    deleted: &std::collections::BTreeSet<u64>,
) -> omnibus_engine::Result<Vec<Entry>> {
    let engine = &shared.engine;
    // A history read makes its consumer too, as Redis's XREADGROUP does for any read.
    engine.owned_create_owner(stream, group, consumer).await?;
    // Entries trimmed away while pending are met too, from the start or from an ID among
    // theirs.
    let start = if after == StreamId::MIN {
        StreamId::MIN
    } else {
        match after.next() {
            Some(start) => start,
            None => return Ok(Vec::new()),
        }
    };
    let query = PendingQuery {
        owner: Some(consumer),
        limit: count,
        ..PendingQuery::all()
    };
    let pending = super::claims::pending_in_range(shared, stream, group, start, query).await?;
    let offsets: Vec<u64> = pending.iter().map(|entry| entry.offset).collect();
    let mut records = engine.owned_records(stream, group, &offsets).await?;
    // Read again: one more delivery, now (as Redis counts a history read).
    let delivered: Vec<u64> = offsets
        .iter()
        .copied()
        .filter(|offset| records.contains_key(offset) && !deleted.contains(offset))
        .collect();
    if !delivered.is_empty() {
        let same_owner = omnibus_engine::consumers::ClaimOptions::default();
        engine
            .owned_claim(stream, group, consumer, &delivered, same_owner)
            .await?;
    }
    let trimmed: Vec<u64> = offsets
        .iter()
        .copied()
        .filter(|offset| !records.contains_key(offset))
        .collect();
    let known = if trimmed.is_empty() {
        std::collections::HashMap::new()
    } else {
        shared.known_ids.ids_of(engine, stream, &trimmed)
    };
    Ok(offsets
        .iter()
        .map(|offset| match records.remove(offset) {
            Some(record) => Entry {
                deleted: deleted.contains(&record.offset),
                ..from_record(record)
            },
            None => {
                let id = known
                    .get(offset)
                    .copied()
                    .unwrap_or(StreamId::new(0, *offset));
                Entry {
                    id,
                    id_text: Bytes::from(id.to_string()),
                    offset: *offset,
                    fields: Vec::new(),
                    deleted: true,
                }
            }
        })
        .collect())
}

/// The offsets of the entries with these IDs still in the stream: those a group just
/// delivered are known, the others are looked up.
pub(super) async fn offsets_of(
    shared: &Shared,
    stream: &str,
    ids: &[StreamId],
) -> omnibus_engine::Result<Vec<u64>> {
    let engine = &shared.engine;
    let (mut found, missing) = shared.known_ids.lookup(engine, stream, ids);
    if !missing.is_empty() {
        found.extend(read::offsets_of_ids(engine, stream, &missing).await?);
    }
    Ok(ids.iter().filter_map(|id| found.get(id).copied()).collect())
}

pub(super) fn parse_ids(arguments: &[Bytes]) -> Result<Vec<StreamId>, Reply> {
    arguments
        .iter()
        .map(|id| StreamId::parse_strict(id).map_err(Reply::error))
        .collect()
}

/// XACK key group id …
fn xack(session: &mut Session, arguments: &[Bytes]) -> Result<Step, Reply> {
    let stream = stream_name(session, &arguments[0])?;
    let group = text(&arguments[1]);
    let ids = parse_ids(&arguments[2..])?;
    let engine = session.shared.engine.clone();
    if !group_exists(&engine, &stream, &group) {
        return Ok(Reply::Integer(0).into());
    }
    // The IDs the door answered lately (those a consumer read, the usual case): acked now,
    // the reply waiting only for the commit, so a pipeline's XACKs share group commits.
    // (The session ran the reads queued before it first, `commands::waits_for_reads`; a
    // DEL or an XADD that trims, still queued for the stream's writer, goes first.)
    let (found, missing) = session.shared.known_ids.lookup(&engine, &stream, &ids);
    if missing.is_empty() && !session.shared.streams.has_queued(&stream) {
        let offsets: Vec<u64> = ids.iter().filter_map(|id| found.get(id).copied()).collect();
        return Ok(match engine.owned_ack_now(&stream, &group, &offsets) {
            Ok((count, commit)) => Step {
                reply: Reply::Integer(count as i64),
                commits: vec![commit],
                close: false,
                later: None,
            },
            Err(error) => engine_error(error).into(),
        });
    }
    // Otherwise their offsets are looked up in the log first, in the pipeline's turn.
    let shared = session.shared.clone();
    Ok(Step::later(async move {
        if !group_exists(&engine, &stream, &group) {
            return Reply::Integer(0);
        }
        let acked = match offsets_of(&shared, &stream, &ids).await {
            Ok(offsets) => engine.owned_ack(&stream, &group, &offsets).await,
            Err(error) => Err(error),
        };
        match acked {
            Ok(count) => Reply::Integer(count as i64),
            Err(error) => engine_error(error),
        }
    }))
}

/// Entries read back for a list of pending offsets, in that order; trimmed ones left out.
pub(super) async fn entries_at(
    engine: &Engine,
    stream: &str,
    group: &str,
    offsets: &[u64],
) -> omnibus_engine::Result<Vec<Reply>> {
    let mut records = engine.owned_records(stream, group, offsets).await?;
    Ok(offsets
        .iter()
        .filter_map(|offset| records.remove(offset))
        .map(|record| entry_reply(from_record(record)))
        .collect())
}
