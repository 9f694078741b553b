//! XINFO STREAM [FULL [COUNT n]] / GROUPS / CONSUMERS, with the fields redis-py and the
//! `redis` crate parse. Omnibus has no radix tree: `radix-tree-keys` answers the nodes
//! Redis would keep the same entries in (100 a node, its `stream-node-max-entries` default;
//! XDEL'd entries count until their node empties, as there), `radix-tree-nodes` one more;
//! `entries-added` counts the offsets ever
//! appended (records from other doors included); `entries-read` is the group's position in
//! offsets, and `lag` the records after it.

use bytes::Bytes;
use omnibus_engine::consumers::{ConsumerInfo, PendingQuery};
use omnibus_engine::Engine;

use super::arguments::{integer, is};
use super::groups::{engine_error, group_exists, no_group, text};
use super::streams::{entry_reply, stream_name};
use crate::codec::Reply;
use crate::session::{Session, Step};
use crate::streams::id::StreamId;
use crate::streams::read;

pub(super) fn run(session: &mut Session, arguments: &[Bytes]) -> Step {
    xinfo(session, arguments).unwrap_or_else(Step::from)
}

fn field(name: &str, value: Reply) -> (Reply, Reply) {
    (Reply::Bulk(Bytes::from(name.to_string())), value)
}

fn id_reply(id: StreamId) -> Reply {
    Reply::Bulk(Bytes::from(id.to_string()))
}

fn xinfo(session: &mut Session, arguments: &[Bytes]) -> Result<Step, Reply> {
    let subcommand = super::lowercase(&arguments[0]);
    let wrong_arity = || {
        Reply::error(format!(
            "ERR wrong number of arguments for 'xinfo|{subcommand}' command"
        ))
    };
    let engine = session.shared.engine.clone();
    match subcommand.as_str() {
        "stream" => {
            let key = arguments.get(1).ok_or_else(wrong_arity)?;
            let stream = stream_name(session, key)?;
            let full = match &arguments[2..] {
                [] => None,
                [word] if is(word, "full") => Some(10),
                [word, count_word, count] if is(word, "full") && is(count_word, "count") => {
                    // 0: every entry and pending entry, as in Redis (the entries within the
                    // reply budget XRANGE has, an error past it; the pending entries are
                    // bounded by a group's own bound).
                    let count = integer(count)?;
                    Some(if count <= 0 {
                        usize::MAX
                    } else {
                        count as usize
                    })
                }
                _ => {
                    return Err(Reply::error(
                        "ERR unknown subcommand or wrong number of arguments for 'STREAM'. Try XINFO HELP.",
                    ))
                }
            };
            let shared = session.shared.clone();
            Ok(Step::later(async move {
                let bytes_max = shared.config.range_reply_bytes_max;
                stream_info(&engine, &shared.deleted, &stream, (full, bytes_max))
                    .await
                    .unwrap_or_else(|r| r)
            }))
        }
        "groups" => {
            if arguments.len() != 2 {
                return Err(wrong_arity());
            }
            let stream = stream_name(session, &arguments[1])?;
            let shared = session.shared.clone();
            Ok(Step::later(async move {
                let deleted = shared.deleted.of(&engine, &stream);
                groups_info(&engine, &stream, &deleted)
                    .await
                    .unwrap_or_else(|r| r)
            }))
        }
        "consumers" => {
            if arguments.len() != 3 {
                return Err(wrong_arity());
            }
            let stream = stream_name(session, &arguments[1])?;
            let group = text(&arguments[2]);
            Ok(Step::later(async move {
                if read::bounds(&engine, &stream).ok().flatten().is_none() {
                    return Reply::error("ERR no such key");
                }
                if !group_exists(&engine, &stream, &group) {
                    return no_group(&stream, &group);
                }
                match consumers_info(&engine, &stream, &group) {
                    Ok(consumers) => Reply::Array(consumers.into_iter().map(Reply::Map).collect()),
                    Err(reply) => reply,
                }
            }))
        }
        "help" => Ok(super::help_reply(&[
            "XINFO <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "CONSUMERS <key> <group>",
            "    The consumers of a group: name, pending entries, idle and inactive times.",
            "GROUPS <key>",
            "    The consumer groups of a stream.",
            "STREAM <key> [FULL [COUNT <count>]]",
            "    The stream's length, IDs and first and last entries; FULL adds its entries",
            "    and every group's pending entries.",
            "HELP",
            "    Print this help.",
        ])
        .into()),
        _ => Err(Reply::error(format!(
            "ERR unknown subcommand '{}'. Try XINFO HELP.",
            super::printable(&arguments[0], 128)
        ))),
    }
}

fn groups_of(engine: &Engine, stream: &str) -> Vec<ConsumerInfo> {
    engine
        .list_consumers(stream)
        .into_iter()
        .filter(|info| info.stored.spec.owned_pending)
        .collect()
}

/// The group's last delivered ID: the entry before its position. When that entry was
/// trimmed away and the group had read to the end, the stream's last ID (kept when its
/// records go); 0-0 when nothing tells it.
pub(super) async fn last_delivered(engine: &Engine, stream: &str, info: &ConsumerInfo) -> StreamId {
    let Some(offset) = info.ack_floor.checked_sub(1) else {
        return StreamId::MIN;
    };
    if let Ok(Some(id)) = read::id_at(engine, stream, offset).await {
        return id;
    }
    let at_end = engine
        .partition_bounds(stream, 0)
        .is_ok_and(|(_, end)| info.ack_floor >= end);
    if at_end {
        return read::last_id(engine, stream).await.unwrap_or(StreamId::MIN);
    }
    StreamId::MIN
}

async fn group_fields(
    engine: &Engine,
    stream: &str,
    info: &ConsumerInfo,
    deleted: &std::collections::BTreeSet<u64>,
) -> Result<Vec<(Reply, Reply)>, Reply> {
    let name = &info.stored.spec.name;
    let (start, end) = engine.partition_bounds(stream, 0).map_err(engine_error)?;
    let pending = engine
        .owned_pending_count(stream, name)
        .map_err(engine_error)?;
    let consumers = engine.owned_owners(stream, name).map_err(engine_error)?;
    Ok(vec![
        field("name", Reply::Bulk(Bytes::from(name.clone()))),
        field("consumers", Reply::Integer(consumers.len() as i64)),
        field("pending", Reply::Integer(pending as i64)),
        field(
            "last-delivered-id",
            id_reply(last_delivered(engine, stream, info).await),
        ),
        field("entries-read", Reply::Integer(info.ack_floor as i64)),
        // The entries still to read: after the group's position and still in the stream
        // (not trimmed away, not removed by XDEL).
        field(
            "lag",
            Reply::Integer(lag(info.ack_floor, (start, end), deleted) as i64),
        ),
    ])
}

/// Entries at or after `position` that a reader of `[start, end)` still sees.
fn lag(position: u64, (start, end): (u64, u64), deleted: &std::collections::BTreeSet<u64>) -> u64 {
    let from = position.max(start).min(end);
    (end - from) - deleted.range(from..end).count() as u64
}

async fn groups_info(
    engine: &Engine,
    stream: &str,
    deleted: &std::collections::BTreeSet<u64>,
) -> Result<Reply, Reply> {
    if read::bounds(engine, stream)
        .map_err(engine_error)?
        .is_none()
    {
        return Err(Reply::error("ERR no such key"));
    }
    let mut groups = Vec::new();
    for info in groups_of(engine, stream) {
        groups.push(Reply::Map(
            group_fields(engine, stream, &info, deleted).await?,
        ));
    }
    Ok(Reply::Array(groups))
}

fn consumers_info(
    engine: &Engine,
    stream: &str,
    group: &str,
) -> Result<Vec<Vec<(Reply, Reply)>>, Reply> {
    let now = crate::streams::now_ms() as i64;
    let owners = engine.owned_owners(stream, group).map_err(engine_error)?;
    Ok(owners
        .into_iter()
        .map(|owner| {
            vec![
                field("name", Reply::Bulk(Bytes::from(owner.name))),
                field("pending", Reply::Integer(owner.pending as i64)),
                field(
                    "idle",
                    Reply::Integer(now.saturating_sub(owner.seen_ms).max(0)),
                ),
                field(
                    "inactive",
                    Reply::Integer(
                        owner
                            .active_ms
                            .map_or(-1, |ms| now.saturating_sub(ms).max(0)),
                    ),
                ),
            ]
        })
        .collect())
}

/// Entries a Redis stream node holds by default (`stream-node-max-entries`).
const STREAM_NODE_ENTRIES: u64 = 100;

/// XINFO STREAM; `full`: FULL's COUNT (`usize::MAX` for all), and the bytes of entries the
/// reply may hold.
async fn stream_info(
    engine: &Engine,
    deleted: &crate::streams::deleted::DeletedEntries,
    stream: &str,
    (full, bytes_max): (Option<usize>, usize),
) -> Result<Reply, Reply> {
    let Some((start, end)) = read::bounds(engine, stream).map_err(engine_error)? else {
        return Err(Reply::error("ERR no such key"));
    };
    let last_id = read::last_id(engine, stream).await.map_err(engine_error)?;
    let deleted = deleted.of(engine, stream);
    let all = (StreamId::MIN, StreamId::MAX);
    let first = read::range(engine, stream, all, read::Budget::entries(1), &deleted)
        .await
        .map_err(engine_error)?;
    let recorded_first = first.first().map_or(StreamId::MIN, |entry| entry.id);
    let groups = groups_of(engine, stream);
    // Tools watch these grow with the stream (Redis's own tests add entries until they do).
    let nodes = end.saturating_sub(start).div_ceil(STREAM_NODE_ENTRIES);
    let mut fields = vec![
        field(
            "length",
            Reply::Integer(
                (end.saturating_sub(start) as usize - deleted.range(start..end).count()) as i64,
            ),
        ),
        field("radix-tree-keys", Reply::Integer(nodes as i64)),
        field("radix-tree-nodes", Reply::Integer(nodes as i64 + 1)),
        field("last-generated-id", id_reply(last_id)),
        field(
            "max-deleted-entry-id",
            id_reply(crate::streams::deleted::max_deleted(engine, stream)),
        ),
        field("entries-added", Reply::Integer(end as i64)),
        field("recorded-first-entry-id", id_reply(recorded_first)),
    ];
    let Some(count) = full else {
        let last = read::reverse(engine, stream, all, read::Budget::entries(1), &deleted)
            .await
            .map_err(engine_error)?;
        fields.push(field("groups", Reply::Integer(groups.len() as i64)));
        fields.push(field(
            "first-entry",
            first.into_iter().next().map_or(Reply::Null, entry_reply),
        ));
        fields.push(field(
            "last-entry",
            last.into_iter().next().map_or(Reply::Null, entry_reply),
        ));
        return Ok(Reply::Map(fields));
    };
    let budget = read::Budget {
        entries: count,
        bytes: bytes_max,
    };
    let entries = read::range(engine, stream, all, budget, &deleted)
        .await
        .map_err(engine_error)?;
    fields.push(field(
        "entries",
        Reply::Array(entries.into_iter().map(entry_reply).collect()),
    ));
    let mut group_replies = Vec::new();
    for info in &groups {
        let mut group = group_fields(engine, stream, info, &deleted).await?;
        // FULL names the pending count `pel-count`, and lists consumers in full.
        group.retain(|(name, _)| !matches!(name, Reply::Bulk(n) if n.as_ref() == b"consumers" || n.as_ref() == b"pending"));
        let name = &info.stored.spec.name;
        let pending = engine
            .owned_pending_count(stream, name)
            .map_err(engine_error)?;
        group.push(field("pel-count", Reply::Integer(pending as i64)));
        // The group's pending entries (at most COUNT), and each consumer's among them.
        let query = PendingQuery {
            limit: count,
            ..PendingQuery::all()
        };
        let entries = engine
            .owned_pending(stream, name, query)
            .map_err(engine_error)?;
        let offsets: Vec<u64> = entries.iter().map(|entry| entry.offset).collect();
        let ids = read::ids_at(engine, stream, &offsets)
            .await
            .map_err(engine_error)?;
        let id_of = |offset: u64| {
            id_reply(
                ids.get(&offset)
                    .copied()
                    .unwrap_or(StreamId::new(0, offset)),
            )
        };
        let group_pending = entries
            .iter()
            .map(|entry| {
                Reply::Array(vec![
                    id_of(entry.offset),
                    Reply::Bulk(Bytes::from(entry.owner.clone())),
                    Reply::Integer(entry.last_delivery_ms),
                    Reply::Integer(entry.deliveries as i64),
                ])
            })
            .collect();
        group.push(field("pending", Reply::Array(group_pending)));
        let now = crate::streams::now_ms() as i64;
        let consumers = engine
            .owned_owners(stream, name)
            .map_err(engine_error)?
            .into_iter()
            .map(|owner| {
                let pending = entries
                    .iter()
                    .filter(|entry| entry.owner == owner.name)
                    .map(|entry| {
                        Reply::Array(vec![
                            id_of(entry.offset),
                            Reply::Integer(entry.last_delivery_ms),
                            Reply::Integer(entry.deliveries as i64),
                        ])
                    })
                    .collect();
                Reply::Map(vec![
                    field("name", Reply::Bulk(Bytes::from(owner.name))),
                    field("seen-time", Reply::Integer(owner.seen_ms)),
                    field("active-time", Reply::Integer(owner.active_ms.unwrap_or(-1))),
                    field("pel-count", Reply::Integer(owner.pending as i64)),
                    field("pending", Reply::Array(pending)),
                    field(
                        "idle",
                        Reply::Integer(now.saturating_sub(owner.seen_ms).max(0)),
                    ),
                ])
            })
            .collect();
        group.push(field("consumers", Reply::Array(consumers)));
        group_replies.push(Reply::Map(group));
    }
    fields.push(field("groups", Reply::Array(group_replies)));
    Ok(Reply::Map(fields))
}

#[cfg(test)]
mod tests {
    use super::lag;

    #[test]
    fn lag_counts_the_entries_still_to_read() {
        let deleted = |offsets: &[u64]| offsets.iter().copied().collect();
        assert_eq!(lag(2, (0, 5), &deleted(&[])), 3);
        assert_eq!(lag(2, (0, 5), &deleted(&[1, 3])), 2);
        // Behind the log's start: only what is left counts.
        assert_eq!(lag(1, (30, 34), &deleted(&[31])), 3);
        assert_eq!(lag(9, (0, 5), &deleted(&[])), 0);
    }
}
