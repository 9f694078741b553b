//! DUMP and RESTORE of stream keys (`dump.rs` has the other kinds'): a stream's entries with
//! their IDs, its last and largest deleted IDs, and its consumer groups — each group's last
//! delivered ID, its consumers and their pending entries with delivery times and counts —
//! in Redis's serialization (`codec/rdb/stream.rs`). So a stream with its groups moves from
//! a redis-server to Omnibus (its DUMP, or its MIGRATE pointed at the door) and back.
//!
//! RESTORE hands the entries to the stream's writer (`streams/writer/restore.rs`), then
//! makes the groups at the positions their last delivered IDs give, their consumers, and
//! each pending entry with its owner, delivery time and count (an engine claim that creates
//! it), and the consumers' seen and active times. A failure part way deletes the stream
//! again. What is not kept: a group's read counter (Omnibus counts offsets), and pending
//! entries whose entry is no longer in the stream.

use std::collections::BTreeMap;

use bytes::Bytes;
use omnibus_engine::consumers::{ClaimOptions, ConsumerStart, PendingQuery};
use omnibus_engine::keys::ExpireCondition;

use super::groups::{engine_error, group_spec};
use super::info::last_delivered;
use crate::codec::rdb::{self, Consumer, Group, Pending, StreamEntry, StreamValue};
use crate::codec::Reply;
use crate::server::Shared;
use crate::session::{Session, Step};
use crate::streams::change::{Change, Restored};
use crate::streams::deleted::max_deleted;
use crate::streams::id::StreamId;
use crate::streams::read::{self, Budget};

/// DUMP of stream key `stream`: its payload, once the changes queued for it are in.
pub(super) fn dump(session: &Session, stream: String) -> Step {
    let shared = session.shared.clone();
    Step::later(async move {
        match snapshot(&shared, &stream).await {
            Ok(Some((value, _))) => Reply::Bulk(Bytes::from(rdb::encode_stream(&value))),
            Ok(None) => Reply::Null,
            Err(reply) => reply,
        }
    })
}

/// What DUMP, MIGRATE and the stream moves read of stream key `stream`, once the changes
/// queued for it are in, with the end of its log then (the moves delete the source only if
/// it still ends there); `None` when it is gone.
pub(super) async fn snapshot(
    shared: &Shared,
    stream: &str,
) -> Result<Option<(StreamValue, u64)>, Reply> {
    if let Some(queued) = shared.streams.flush(stream) {
        let _ = queued.await;
    }
    let Ok(end) = shared.engine.partition_next_offset(stream, 0) else {
        return Ok(None);
    };
    let value = gather(shared, stream).await?;
    Ok(value.map(|value| (value, end)))
}

/// Everything a payload holds about the stream; `None` when it is gone.
async fn gather(shared: &Shared, stream: &str) -> Result<Option<StreamValue>, Reply> {
    let engine = &shared.engine;
    let Some((_, end)) = read::bounds(engine, stream).map_err(engine_error)? else {
        return Ok(None);
    };
    let deleted = shared.deleted.of(engine, stream);
    // The entries within the bytes an XRANGE may answer: past them, an error saying so.
    let budget = Budget {
        entries: usize::MAX,
        bytes: shared.config.range_reply_bytes_max,
    };
    let all = (StreamId::MIN, StreamId::MAX);
    let entries = read::range(engine, stream, all, budget, &deleted)
        .await
        .map_err(engine_error)?
        .into_iter()
        .map(|entry| StreamEntry {
            id: entry.id,
            fields: entry.fields,
        })
        .collect();
    let mut groups = Vec::new();
    for info in engine.list_consumers(stream) {
        if !info.stored.spec.owned_pending {
            continue;
        }
        let name = info.stored.spec.name.clone();
        let pending = engine
            .owned_pending(stream, &name, PendingQuery::all())
            .map_err(engine_error)?;
        let offsets: Vec<u64> = pending.iter().map(|entry| entry.offset).collect();
        let ids = read::ids_at(engine, stream, &offsets)
            .await
            .map_err(engine_error)?;
        let mut owned: BTreeMap<String, Vec<Pending>> = BTreeMap::new();
        for entry in &pending {
            // An entry trimmed away while pending has no ID to write.
            if let Some(&id) = ids.get(&entry.offset) {
                owned.entry(entry.owner.clone()).or_default().push(Pending {
                    id,
                    delivery_ms: entry.last_delivery_ms,
                    deliveries: entry.deliveries,
                });
            }
        }
        let mut consumers: Vec<Consumer> = engine
            .owned_owners(stream, &name)
            .map_err(engine_error)?
            .into_iter()
            .map(|owner| Consumer {
                pending: owned.remove(&owner.name).unwrap_or_default(),
                name: Bytes::from(owner.name),
                seen_ms: owner.seen_ms,
                active_ms: Some(owner.active_ms.unwrap_or(-1)),
            })
            .collect();
        consumers.sort_by(|a, b| a.name.cmp(&b.name));
        groups.push(Group {
            name: Bytes::from(name),
            last_id: last_delivered(engine, stream, &info).await,
            entries_read: Some(info.ack_floor),
            consumers,
        });
    }
    groups.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Some(StreamValue {
        entries,
        last_id: read::last_id(engine, stream).await.map_err(engine_error)?,
        max_deleted_id: max_deleted(engine, stream),
        entries_added: end,
        groups,
    }))
}

/// RESTORE of a stream payload under `stream` (checked by the caller: a valid stream name,
/// and no key there unless `replace`); `deadline` in ms since the epoch.
pub(super) fn restore(
    session: &mut Session,
    stream: String,
    value: StreamValue,
    replace: bool,
    deadline: Option<i64>,
) -> Step {
    let key = Bytes::from(stream.clone());
    let replaced = (replace && session.keys.kind(&key).is_some()).then_some(&key);
    let destroyed = replace.then(|| session.shared.streams.submit(&stream, Change::Destroy));
    let (made, groups) = submit_put(&session.shared, &stream, value);
    let shared = session.shared.clone();
    replacing(session, replaced, async move {
        if let Some(destroyed) = destroyed {
            let _ = destroyed.await;
        }
        put(&shared, &stream, made, &groups, deadline).await
    })
}

/// A stream key's restore: `replaced`, a keyspace key of the destination's name,
/// deleted at once (durably with the reply), then `later`.
pub(super) fn replacing(
    session: &mut Session,
    replaced: Option<&Bytes>,
    later: impl std::future::Future<Output = Reply> + Send + 'static,
) -> Step {
    let mut commits = Vec::new();
    if let Some(key) = replaced {
        match session.keys.delete(std::slice::from_ref(key)) {
            Ok(durable) => commits.push(durable.split().1),
            Err(error) => return Reply::error(format!("ERR {error}")).into(),
        }
    }
    Step {
        reply: Reply::Null,
        commits,
        close: false,
        later: Some(Box::pin(later)),
    }
}

/// Hands `value`'s entries and IDs to the writer of `stream`, which makes it with them
/// (answering BUSYKEY if a stream is there); gives back its groups, made once it did.
pub(super) fn submit_put(
    shared: &Shared,
    stream: &str,
    value: StreamValue,
) -> (tokio::sync::oneshot::Receiver<Reply>, Vec<Group>) {
    let restored = Restored {
        entries: value.entries,
        last_id: value.last_id,
        max_deleted_id: value.max_deleted_id,
    };
    let made = shared
        .streams
        .submit(stream, Change::Restore(Box::new(restored)));
    (made, value.groups)
}

/// Once the writer made the stream ([`submit_put`]): its groups, then its deadline; OK, or
/// the refusal (a failure after the stream was made deletes it again).
pub(super) async fn put(
    shared: &Shared,
    stream: &str,
    made: tokio::sync::oneshot::Receiver<Reply>,
    groups: &[Group],
    deadline: Option<i64>,
) -> Reply {
    match made.await {
        Ok(Reply::Status(_)) => {}
        Ok(refused) => return refused,
        Err(_) => return Reply::error("ERR the stream's writer stopped"),
    }
    if let Err(reply) = make_groups(shared, stream, groups).await {
        let _ = shared.streams.submit(stream, Change::Destroy).await;
        return reply;
    }
    if let Some(at) = deadline {
        let condition = ExpireCondition::Always;
        let change = Change::Expire {
            at: Some(at),
            condition,
        };
        let _ = shared.streams.submit(stream, change).await;
    }
    Reply::ok()
}

/// One consumer of group `name` with its pending entries, each batch of them (one delivery
/// time and count: what one read handed out) one claim that creates them; a consumer with
/// none is made on its own.
async fn make_consumer(
    shared: &Shared,
    stream: &str,
    name: &str,
    consumer: &Consumer,
) -> Result<(), Reply> {
    let engine = &shared.engine;
    let owner = String::from_utf8_lossy(&consumer.name).into_owned();
    let ids: Vec<StreamId> = consumer.pending.iter().map(|p| p.id).collect();
    let offsets = read::offsets_of_ids(engine, stream, &ids)
        .await
        .map_err(engine_error)?;
    let mut batches: BTreeMap<(i64, u64), Vec<u64>> = BTreeMap::new();
    for pending in &consumer.pending {
        if let Some(&offset) = offsets.get(&pending.id) {
            let batch = (pending.delivery_ms, pending.deliveries);
            batches.entry(batch).or_default().push(offset);
        }
    }
    if batches.is_empty() {
        engine
            .owned_create_owner(stream, name, &owner)
            .await
            .map_err(engine_error)?;
        return Ok(());
    }
    let claims = batches
        .into_iter()
        .map(|((delivery_ms, deliveries), offsets)| {
            let options = ClaimOptions {
                min_idle_ms: 0,
                last_delivery_ms: Some(delivery_ms),
                deliveries: Some(deliveries),
                keep_count: false,
                force: true,
            };
            let owner = owner.clone();
            async move {
                engine
                    .owned_claim(stream, name, &owner, &offsets, options)
                    .await
                    .map_err(engine_error)
            }
        });
    futures_util::future::try_join_all(claims).await?;
    Ok(())
}

/// The consumers' seen and active times as the payload has them (a type-19 payload has no
/// active time: its seen time stands for it, as redis-server reads it), so XINFO's idle
/// times go on from where they were.
fn carry_times(
    shared: &Shared,
    stream: &str,
    name: &str,
    consumers: &[Consumer],
) -> Result<(), Reply> {
    for consumer in consumers {
        let owner = String::from_utf8_lossy(&consumer.name);
        let active = match consumer.active_ms {
            Some(ms) if ms >= 0 => Some(ms),
            Some(_) => None,
            None => Some(consumer.seen_ms),
        };
        shared
            .engine
            .owned_set_seen(stream, name, &owner, (consumer.seen_ms, active))
            .map_err(engine_error)?;
    }
    Ok(())
}

/// The payload's groups on the restored stream: each at the position after its last
/// delivered ID, its consumers, and its pending entries given to their owners.
async fn make_groups(shared: &Shared, stream: &str, groups: &[Group]) -> Result<(), Reply> {
    let engine = &shared.engine;
    for group in groups {
        let name = String::from_utf8_lossy(&group.name).into_owned();
        let offset = read::offset_after(engine, stream, group.last_id)
            .await
            .map_err(engine_error)?;
        engine
            .create_consumer(group_spec(stream, &name, ConsumerStart::Offset(offset)))
            .await
            .map_err(engine_error)?;
        // The consumers at once: their commits share group commits.
        let made = group
            .consumers
            .iter()
            .map(|consumer| make_consumer(shared, stream, &name, consumer));
        futures_util::future::try_join_all(made).await?;
        carry_times(shared, stream, &name, &group.consumers)?;
    }
    Ok(())
}
