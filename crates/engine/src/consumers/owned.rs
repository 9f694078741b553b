//! The owned-pending mode of an acked consumer (`ConsumerSpec::owned_pending`), which Redis
//! consumer groups are built on: a delivery stays pending with the reader that received it
//! (its *owner*, a name the reader gives) until it is acknowledged or claimed by another
//! owner. Nothing is redelivered by itself: there is no lease expiry.
//!
//! The consumer's queue state machine still decides what comes next (its ack floor is the
//! group's "last delivered" position), but each delivery is settled in the state machine as it
//! is handed out, and the consumer keeps its own list of pending deliveries instead: offset →
//! owner, delivery count, last delivery time. That list and the owners' names are stored in
//! [`OWNED_TABLE`]; the state machine's settlement and the pending entries of one read are one
//! commit, fsynced before the read returns, so after a kill -9 a delivery is either pending
//! with its owner or was never handed out (and comes again). Acks and claims are commits
//! before they return too.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use omnibus_storage::{StateStore, StateWrite};
use omnibus_types::Record;

use super::owned_runs::{self, RUN_OFFSETS_MAX};
use super::Consumer;
use crate::engine::{now_ms, Engine};
use crate::error::{EngineError, Result};
use crate::queue::keys::{push_padded, PADDED_DIGITS};

/// Pending deliveries and owners of owned-pending consumers, under `<stream>␟<consumer>␟`.
pub const OWNED_TABLE: &str = "stream_consumer_owned";
/// Pending deliveries one owned-pending consumer holds at most; a read gets no more.
pub const OWNED_PENDING_MAX: usize = 1_000_000;
/// Owners one consumer may have, and the longest owner name.
pub const OWNERS_MAX: usize = 10_000;
pub const OWNER_NAME_BYTES_MAX: usize = 1_024;

/// One pending delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingEntry {
    pub offset: u64,
    pub owner: String,
    pub deliveries: u64,
    pub last_delivery_ms: i64,
}

/// One owner of an owned-pending consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerInfo {
    pub name: String,
    pub pending: u64,
    /// Its last read or claim attempt (this process; its creation after a restart).
    pub seen_ms: i64,
    /// Its last read or claim that got something.
    pub active_ms: Option<i64>,
}

/// Which pending deliveries [`Engine::owned_pending`] lists: offsets in `[from, to]`, of
/// `owner` if given, idle at least `min_idle_ms`, oldest offset first, at most `limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingQuery<'a> {
    pub from: u64,
    pub to: u64,
    pub owner: Option<&'a str>,
    pub min_idle_ms: u64,
    pub limit: usize,
}

impl PendingQuery<'_> {
    /// Every pending delivery.
    pub fn all() -> PendingQuery<'static> {
        PendingQuery {
            from: 0,
            to: u64::MAX,
            owner: None,
            min_idle_ms: 0,
            limit: usize::MAX,
        }
    }
}

/// How a claim changes the entries it takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ClaimOptions {
    /// Only entries idle at least this long are taken.
    pub min_idle_ms: u64,
    /// The entries' new last delivery time (default: now).
    pub last_delivery_ms: Option<i64>,
    /// The entries' new delivery count (default: one more, or unchanged with `keep_count`).
    pub deliveries: Option<u64>,
    pub keep_count: bool,
    /// Entries of offsets still in the stream but not pending are created.
    pub force: bool,
}

#[derive(Debug, Clone)]
struct Owned {
    /// Shared with the owner's entry in `OwnedPending::owners`: a read of 1,000 entries
    /// allocates no name per entry.
    owner: Arc<str>,
    deliveries: u64,
    last_ms: i64,
    /// The first offset of the run key that stores it (`owned_runs.rs`); `None`: its own key.
    run: Option<u64>,
}

#[derive(Debug, Clone, Default)]
struct Seen {
    seen_ms: i64,
    active_ms: Option<i64>,
}

/// The pending list and owners of one owned-pending consumer.
#[derive(Debug, Default)]
pub(crate) struct OwnedPending {
    pending: BTreeMap<u64, Owned>,
    owners: BTreeMap<Arc<str>, Seen>,
    /// Stored runs by first offset → entries still pending in them.
    runs: BTreeMap<u64, usize>,
}

fn prefix(stream: &str, name: &str) -> String {
    format!("{stream}\u{1f}{name}\u{1f}")
}

fn pending_key(stream: &str, name: &str, offset: u64) -> String {
    // Built by hand: one key per delivery and per ack, and `format!` was most of their cost.
    let mut key = String::with_capacity(stream.len() + name.len() + 3 + PADDED_DIGITS);
    key.push_str(stream);
    key.push('\u{1f}');
    key.push_str(name);
    key.push('\u{1f}');
    key.push('p');
    push_padded(&mut key, offset);
    key
}

fn owner_key(stream: &str, name: &str, owner: &str) -> String {
    format!("{}c{owner}", prefix(stream, name))
}

/// The writes that remove a consumer's pending list and owners.
pub(crate) fn delete_writes(stream: &str, name: &str) -> StateWrite {
    StateWrite::DeletePrefix {
        table: OWNED_TABLE,
        prefix: prefix(stream, name),
    }
}

fn put_pending(stream: &str, name: &str, offset: u64, owned: &Owned) -> StateWrite {
    let mut value = Vec::with_capacity(16 + owned.owner.len());
    value.extend_from_slice(&owned.deliveries.to_be_bytes());
    value.extend_from_slice(&owned.last_ms.to_be_bytes());
    value.extend_from_slice(owned.owner.as_bytes());
    StateWrite::Put {
        table: OWNED_TABLE,
        key: pending_key(stream, name, offset),
        value,
    }
}

fn corrupt(key: &str) -> EngineError {
    EngineError::Storage(omnibus_storage::StorageError::Corrupt(format!(
        "pending entry {key:?}"
    )))
}

impl OwnedPending {
    /// The stored pending list and owners of a consumer.
    pub(crate) fn load(state: &StateStore, stream: &str, name: &str) -> Result<OwnedPending> {
        let prefix = prefix(stream, name);
        let mut owned = OwnedPending::default();
        let now = now_ms();
        let mut runs = BTreeMap::new();
        let mut tombstones: BTreeMap<u64, std::collections::BTreeSet<u64>> = BTreeMap::new();
        for (key, value) in state.scan_prefix(OWNED_TABLE, &prefix)? {
            let rest = &key[prefix.len()..];
            if let Some(run) = rest.strip_prefix('r') {
                match owned_runs::parse_run_key(run).ok_or_else(|| corrupt(&key))? {
                    (first, Some(offset)) => {
                        tombstones.entry(first).or_default().insert(offset);
                    }
                    (first, None) => {
                        let run = owned_runs::decode_run(&value).ok_or_else(|| corrupt(&key))?;
                        runs.insert(first, run);
                    }
                }
            } else if let Some(owner) = rest.strip_prefix('c') {
                owned.owners.insert(
                    Arc::from(owner),
                    Seen {
                        seen_ms: now,
                        active_ms: None,
                    },
                );
            } else if let Some(offset) = rest.strip_prefix('p') {
                let offset: u64 = offset.parse().map_err(|_| corrupt(&key))?;
                if value.len() < 16 {
                    return Err(corrupt(&key));
                }
                let deliveries =
                    u64::from_be_bytes(value[..8].try_into().map_err(|_| corrupt(&key))?);
                let last_ms =
                    i64::from_be_bytes(value[8..16].try_into().map_err(|_| corrupt(&key))?);
                let owner = std::str::from_utf8(&value[16..]).map_err(|_| corrupt(&key))?;
                let owner = owned.shared_name(owner);
                owned.pending.insert(
                    offset,
                    Owned {
                        owner,
                        deliveries,
                        last_ms,
                        run: None,
                    },
                );
            }
        }
        for (first, run) in owned_runs::live_offsets(runs, &tombstones) {
            let owner = owned.shared_name(&run.owner);
            let mut live = 0;
            for offset in run.offsets {
                // An entry's own key, written with its tombstone here, is the newer record.
                if let std::collections::btree_map::Entry::Vacant(slot) =
                    owned.pending.entry(offset)
                {
                    slot.insert(Owned {
                        owner: owner.clone(),
                        deliveries: run.deliveries,
                        last_ms: run.last_ms,
                        run: Some(first),
                    });
                    live += 1;
                }
            }
            owned.runs.insert(first, live);
        }
        Ok(owned)
    }

    /// Makes `offsets` (ascending), just delivered to `owner`, pending with it: one run key
    /// per [`RUN_OFFSETS_MAX`] of them (a lone entry keeps its own key).
    fn add_delivered(
        &mut self,
        (stream, name): (&str, &str),
        owner: &Arc<str>,
        now: i64,
        offsets: &[u64],
        writes: &mut Vec<StateWrite>,
    ) {
        for chunk in offsets.chunks(RUN_OFFSETS_MAX) {
            let run = (chunk.len() > 1).then_some(chunk[0]);
            for &offset in chunk {
                let entry = Owned {
                    owner: owner.clone(),
                    deliveries: 1,
                    last_ms: now,
                    run,
                };
                if run.is_none() {
                    writes.push(put_pending(stream, name, offset, &entry));
                }
                // A pending entry already there (a claim forced it) is replaced: its own key
                // deleted, or its run left.
                let replaced = self.pending.insert(offset, entry);
                if let (Some(Owned { run: None, .. }), Some(_)) = (&replaced, run) {
                    writes.push(StateWrite::Delete {
                        table: OWNED_TABLE,
                        key: pending_key(stream, name, offset),
                    });
                }
                if let Some(Owned { run: Some(old), .. }) = replaced {
                    owned_runs::leave_runs(
                        (stream, name),
                        &mut self.runs,
                        &[(offset, old)],
                        writes,
                    );
                }
            }
            if let Some(first) = run {
                writes.push(owned_runs::put_run((stream, name), owner, 1, now, chunk));
                self.runs.insert(first, chunk.len());
            }
        }
    }

    /// Removes the pending entries at `offsets` (those that are pending) and writes it:
    /// their own keys deleted, or their runs left. Answers how many there were.
    fn remove_entries(
        &mut self,
        (stream, name): (&str, &str),
        offsets: impl IntoIterator<Item = u64>,
        writes: &mut Vec<StateWrite>,
    ) -> u64 {
        let mut leaving = Vec::new();
        let mut removed = 0;
        for offset in offsets {
            match self.pending.remove(&offset) {
                None => continue,
                Some(Owned { run: Some(run), .. }) => leaving.push((offset, run)),
                Some(Owned { run: None, .. }) => writes.push(StateWrite::Delete {
                    table: OWNED_TABLE,
                    key: pending_key(stream, name, offset),
                }),
            }
            removed += 1;
        }
        owned_runs::leave_runs((stream, name), &mut self.runs, &leaving, writes);
        removed
    }

    /// How many deliveries are pending and the lowest pending offset, for the consumer lag
    /// series of `GET /metrics` (`metrics/queues.rs`).
    pub(crate) fn pending_summary(&self) -> (u64, Option<u64>) {
        (
            self.pending.len() as u64,
            self.pending.keys().next().copied(),
        )
    }

    /// The owners' shared copy of `owner` (a new one if it has no entry: a pending entry
    /// stored without its owner's key, which loading tolerates).
    fn shared_name(&self, owner: &str) -> Arc<str> {
        self.owners
            .get_key_value(owner)
            .map_or_else(|| Arc::from(owner), |(name, _)| name.clone())
    }

    fn entry(offset: u64, owned: &Owned) -> PendingEntry {
        PendingEntry {
            offset,
            owner: owned.owner.to_string(),
            deliveries: owned.deliveries,
            last_delivery_ms: owned.last_ms,
        }
    }

    /// Registers `owner` (a write when it is new), noting it was seen now.
    fn touch(
        &mut self,
        stream: &str,
        name: &str,
        owner: &str,
        now: i64,
    ) -> Result<Option<StateWrite>> {
        if let Some(seen) = self.owners.get_mut(owner) {
            seen.seen_ms = now;
            return Ok(None);
        }
        if owner.is_empty() || owner.len() > OWNER_NAME_BYTES_MAX {
            return Err(EngineError::InvalidName(format!(
                "an owner name must be 1 to {OWNER_NAME_BYTES_MAX} bytes"
            )));
        }
        if self.owners.len() >= OWNERS_MAX {
            return Err(EngineError::LimitExceeded(format!(
                "a consumer has at most {OWNERS_MAX} owners"
            )));
        }
        self.owners.insert(
            Arc::from(owner),
            Seen {
                seen_ms: now,
                active_ms: None,
            },
        );
        Ok(Some(StateWrite::Put {
            table: OWNED_TABLE,
            key: owner_key(stream, name, owner),
            value: Vec::new(),
        }))
    }
}

impl Consumer {
    fn owned_state<T>(
        &self,
        work: impl FnOnce(&mut OwnedPending, &mut super::ConsumerState) -> T,
    ) -> Result<T> {
        let mut state = self.lock();
        let mut owned = state.owned.take().ok_or_else(|| {
            EngineError::InvalidConfig(format!(
                "consumer {:?} does not keep owned pending deliveries",
                self.stored.spec.name
            ))
        })?;
        let result = work(&mut owned, &mut state);
        state.owned = Some(owned);
        Ok(result)
    }
}

impl Engine {
    fn owned_consumer(&self, stream: &str, name: &str) -> Result<Arc<Consumer>> {
        self.check_running()?;
        let consumer = self.consumer(stream, name)?;
        if !consumer.stored.spec.owned_pending {
            return Err(EngineError::InvalidConfig(format!(
                "consumer {name:?} does not keep owned pending deliveries"
            )));
        }
        Ok(consumer)
    }

    /// Hands up to `max` new records to `owner`, each pending with it (unless `pending` is
    /// false: delivered and settled at once), durably before it returns.
    ///
    /// Every change is pushed to the consumer's ordered outbox under the lock it is made
    /// under (`ordered.rs`): another read's settlement can complete the range below this
    /// read's records and move the floor over them, and its commit must not be durable before
    /// this read's pending entries are.
    pub async fn owned_next(
        &self,
        stream: &str,
        name: &str,
        owner: &str,
        max: usize,
        pending: bool,
    ) -> Result<Vec<Record>> {
        let consumer = self.owned_consumer(stream, name)?;
        let now = now_ms();
        let (room, mut ticket) = consumer.owned_state(|owned, _| -> Result<_> {
            let touched = owned.touch(stream, name, owner, now)?;
            Ok((
                OWNED_PENDING_MAX.saturating_sub(owned.pending.len()),
                consumer.ordered.push(touched.into_iter().collect()),
            ))
        })??;
        let max = if pending { max.min(room) } else { max };
        let mut out = Vec::new();
        let mut durable = crate::queue::Durable::default();
        let mut floor = 0;
        let mut failed = None;
        for _ in 0..super::delivery::ROUNDS_MAX {
            if out.len() >= max {
                break;
            }
            let round = {
                let mut state = consumer.lock();
                let mut round = self.lease_round_locked(&consumer, &mut state, max - out.len());
                let writes = std::mem::take(&mut round.writes);
                floor = floor.max(consumer.floor_written(&writes));
                ticket = consumer.ordered.push(writes).or(ticket);
                round
            };
            durable.frontiers.extend(round.durable.frontiers);
            durable.prepaid.extend(round.durable.prepaid);
            if round.grants.is_empty() {
                break;
            }
            let offsets: Vec<u64> = round.grants.iter().map(|(offset, _)| *offset).collect();
            let mut records = match super::delivery::read_records(&consumer, offsets).await {
                Ok(records) => records,
                Err(error) => {
                    // The leases stay in memory until they expire; what was settled before
                    // is still made durable below.
                    failed = Some(error);
                    break;
                }
            };
            #[cfg(test)]
            super::ordered::pauses::at(owner, "before settling").await;
            let mut grants = round.grants;
            let delivered = consumer.owned_state(|owned, state| {
                // A lease that expired while the records were read may be another reader's
                // by now (only with an ack wait shorter than a read): it is theirs to hand out.
                grants.retain(|&(offset, attempt)| state.core.holds_lease(offset, attempt));
                let owner_name = owned.shared_name(owner);
                let mut fresh = Vec::new();
                let mut delivered = Vec::new();
                // Settled as handed out: the group's position moves past them all at once.
                let mut writes = state.core.ack_many(&grants);
                super::delivery::settle_sizes(&mut state.core, &grants, &records);
                for (offset, _) in grants {
                    let Some(record) = records.remove(&offset).filter(|r| consumer.wants(r)) else {
                        continue;
                    };
                    state.delivered_count += 1;
                    state.delivered_end = state.delivered_end.max(offset + 1);
                    if pending {
                        fresh.push(offset);
                    }
                    delivered.push(record);
                }
                fresh.sort_unstable();
                owned.add_delivered((stream, name), &owner_name, now, &fresh, &mut writes);
                if !delivered.is_empty() {
                    if let Some(seen) = owned.owners.get_mut(owner) {
                        seen.active_ms = Some(now);
                    }
                }
                floor = floor.max(consumer.floor_written(&writes));
                ticket = consumer.ordered.push(writes).or(ticket);
                delivered
            })?;
            out.extend(delivered);
        }
        #[cfg(test)]
        super::ordered::pauses::at(owner, "before committing").await;
        // Always waited for: a Redis reader is answered once its entries are durable. A
        // failure fails the consumer: its memory already moved past what is on disk.
        consumer.commit_ordered(ticket, durable, floor).await?;
        match failed {
            Some(error) => Err(error),
            None => Ok(out),
        }
    }

    /// Acknowledges pending deliveries; answers how many were pending, once durable.
    pub async fn owned_ack(&self, stream: &str, name: &str, offsets: &[u64]) -> Result<u64> {
        let (count, commit) = self.owned_ack_now(stream, name, offsets)?;
        commit.wait().await?;
        Ok(count)
    }

    /// [`Engine::owned_ack`] in two steps: the deliveries leave the pending list now (what
    /// the next call sees), and the commit resolves once that is durable. Acks made one
    /// after the other share commits: a pipeline of Redis XACKs is not one fsync each.
    pub fn owned_ack_now(
        &self,
        stream: &str,
        name: &str,
        offsets: &[u64],
    ) -> Result<(u64, crate::keys::Commit)> {
        let consumer = self.owned_consumer(stream, name)?;
        let (count, ticket) = consumer.owned_state(|owned, _| {
            let mut writes = Vec::new();
            let count = owned.remove_entries((stream, name), offsets.iter().copied(), &mut writes);
            (count, consumer.ordered.push(writes))
        })?;
        let commit = crate::keys::Commit::elsewhere(async move {
            consumer.commit_ordered(ticket, Default::default(), 0).await
        });
        Ok((count, commit))
    }

    /// The pending deliveries `query` picks.
    pub fn owned_pending(
        &self,
        stream: &str,
        name: &str,
        query: PendingQuery<'_>,
    ) -> Result<Vec<PendingEntry>> {
        let consumer = self.owned_consumer(stream, name)?;
        let now = now_ms();
        consumer.owned_state(|owned, _| {
            if query.from > query.to {
                return Vec::new();
            }
            owned
                .pending
                .range(query.from..=query.to)
                .filter(|(_, o)| query.owner.is_none_or(|wanted| *o.owner == *wanted))
                .filter(|(_, o)| now.saturating_sub(o.last_ms) >= query.min_idle_ms as i64)
                .take(query.limit)
                .map(|(offset, o)| OwnedPending::entry(*offset, o))
                .collect()
        })
    }

    /// How many deliveries are pending in all.
    pub fn owned_pending_count(&self, stream: &str, name: &str) -> Result<u64> {
        let consumer = self.owned_consumer(stream, name)?;
        consumer.owned_state(|owned, _| owned.pending.len() as u64)
    }

    /// Gives the pending deliveries at `offsets` (idle enough) to `owner`; answers the
    /// entries taken, in the order of `offsets`.
    pub async fn owned_claim(
        &self,
        stream: &str,
        name: &str,
        owner: &str,
        offsets: &[u64],
        options: ClaimOptions,
    ) -> Result<Vec<PendingEntry>> {
        let consumer = self.owned_consumer(stream, name)?;
        let (start, end) = (
            consumer.log.log_start_offset(),
            consumer.log.high_watermark(),
        );
        let now = now_ms();
        let (claimed, ticket) = consumer.owned_state(|owned, _| -> Result<_> {
            let mut writes: Vec<StateWrite> =
                owned.touch(stream, name, owner, now)?.into_iter().collect();
            let owner_name = owned.shared_name(owner);
            let mut claimed = Vec::new();
            // Entries taken out of their runs: stored on their own from now on.
            let mut leaving = Vec::new();
            for &offset in offsets {
                let entry = match owned.pending.get_mut(&offset) {
                    Some(entry) => entry,
                    None if options.force && offset >= start && offset < end => {
                        owned.pending.entry(offset).or_insert(Owned {
                            owner: owner_name.clone(),
                            deliveries: 0,
                            last_ms: now,
                            run: None,
                        })
                    }
                    None => continue,
                };
                let idle = now.saturating_sub(entry.last_ms);
                if entry.deliveries > 0 && idle < options.min_idle_ms as i64 {
                    continue;
                }
                entry.owner = owner_name.clone();
                entry.last_ms = options.last_delivery_ms.unwrap_or(now);
                entry.deliveries = match options.deliveries {
                    Some(count) => count,
                    None if options.keep_count => entry.deliveries,
                    None => entry.deliveries + 1,
                };
                if let Some(run) = entry.run.take() {
                    leaving.push((offset, run));
                }
                writes.push(put_pending(stream, name, offset, entry));
                claimed.push(OwnedPending::entry(offset, entry));
            }
            owned_runs::leave_runs((stream, name), &mut owned.runs, &leaving, &mut writes);
            if !claimed.is_empty() {
                if let Some(seen) = owned.owners.get_mut(owner) {
                    seen.active_ms = Some(now);
                }
            }
            Ok((claimed, consumer.ordered.push(writes)))
        })??;
        consumer
            .commit_ordered(ticket, Default::default(), 0)
            .await?;
        Ok(claimed)
    }

    /// Creates `owner` if it does not exist; whether it was created.
    pub async fn owned_create_owner(&self, stream: &str, name: &str, owner: &str) -> Result<bool> {
        let consumer = self.owned_consumer(stream, name)?;
        let ticket = consumer.owned_state(|owned, _| -> Result<_> {
            let write = owned.touch(stream, name, owner, now_ms())?;
            Ok(consumer.ordered.push(write.into_iter().collect()))
        })??;
        consumer
            .commit_ordered(ticket, Default::default(), 0)
            .await?;
        Ok(ticket.is_some())
    }

    /// Sets when `owner` was last seen and last active (a RESTORE carries them over); kept
    /// in memory as those times are (after a restart they start again). False: no such owner.
    pub fn owned_set_seen(
        &self,
        stream: &str,
        name: &str,
        owner: &str,
        (seen_ms, active_ms): (i64, Option<i64>),
    ) -> Result<bool> {
        let consumer = self.owned_consumer(stream, name)?;
        consumer.owned_state(|owned, _| match owned.owners.get_mut(owner) {
            Some(seen) => {
                *seen = Seen { seen_ms, active_ms };
                true
            }
            None => false,
        })
    }

    /// Deletes `owner` and its pending deliveries; answers how many it had (`None`: no such
    /// owner).
    pub async fn owned_delete_owner(
        &self,
        stream: &str,
        name: &str,
        owner: &str,
    ) -> Result<Option<u64>> {
        let consumer = self.owned_consumer(stream, name)?;
        let removed = consumer.owned_state(|owned, _| {
            owned.owners.remove(owner)?;
            let dropped: Vec<u64> = owned
                .pending
                .iter()
                .filter(|(_, o)| &*o.owner == owner)
                .map(|(offset, _)| *offset)
                .collect();
            let mut writes = vec![StateWrite::Delete {
                table: OWNED_TABLE,
                key: owner_key(stream, name, owner),
            }];
            let count = owned.remove_entries((stream, name), dropped, &mut writes);
            Some((count, consumer.ordered.push(writes)))
        })?;
        let Some((count, ticket)) = removed else {
            return Ok(None);
        };
        consumer
            .commit_ordered(ticket, Default::default(), 0)
            .await?;
        Ok(Some(count))
    }

    /// The owners, by name, with their pending counts.
    pub fn owned_owners(&self, stream: &str, name: &str) -> Result<Vec<OwnerInfo>> {
        let consumer = self.owned_consumer(stream, name)?;
        consumer.owned_state(|owned, _| {
            let mut counts: HashMap<&str, u64> = HashMap::new();
            for entry in owned.pending.values() {
                *counts.entry(&*entry.owner).or_insert(0) += 1;
            }
            owned
                .owners
                .iter()
                .map(|(owner, seen)| OwnerInfo {
                    name: owner.to_string(),
                    pending: counts.get(&**owner).copied().unwrap_or(0),
                    seen_ms: seen.seen_ms,
                    active_ms: seen.active_ms,
                })
                .collect()
        })
    }

    /// Moves the consumer's position: the next new delivery is `offset` (or the first record
    /// still in the stream). Pending deliveries stay as they are.
    ///
    /// The state machine is rebuilt in memory and the reset's writes pushed to the ordered
    /// outbox under one lock, so a read racing the move either comes before both or after
    /// both, in memory and on disk alike.
    pub async fn owned_set_position(&self, stream: &str, name: &str, offset: u64) -> Result<()> {
        let consumer = self.owned_consumer(stream, name)?;
        let _change = self.consumer_changes.lock().await;
        let core_name = &consumer.core_name;
        let offset = offset.max(consumer.log.log_start_offset());
        let writes = vec![
            StateWrite::DeletePrefix {
                table: crate::queue::keys::TABLE,
                prefix: crate::queue::keys::prefix(core_name),
            },
            StateWrite::Put {
                table: crate::queue::keys::TABLE,
                key: crate::queue::keys::floor(core_name),
                value: offset.to_be_bytes().to_vec(),
            },
        ];
        let ticket = {
            let mut state = consumer.lock();
            state.core = crate::queue::reset_core(
                core_name,
                super::policy(&consumer.stored.spec),
                offset,
                consumer.log.high_watermark(),
            );
            state.delivered_end = offset;
            consumer.ordered.push(writes)
        };
        consumer.commit_ordered(ticket, Default::default(), 0).await
    }

    /// The records at `offsets` still in the consumer's stream.
    pub async fn owned_records(
        &self,
        stream: &str,
        name: &str,
        offsets: &[u64],
    ) -> Result<HashMap<u64, Record>> {
        let consumer = self.owned_consumer(stream, name)?;
        super::delivery::read_records(&consumer, offsets.to_vec()).await
    }
}
