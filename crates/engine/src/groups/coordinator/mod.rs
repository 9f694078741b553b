//! Consumer-group coordination, Kafka's classic protocol as the Java broker's
//! `GroupCoordinator` behaves: members join, one of them (the leader) is handed everyone's
//! metadata and computes assignments, the coordinator distributes them, and session timeouts,
//! joins and leaves trigger rebalances.
//!
//! Protocol-neutral: the engine never imports a Kafka type. Protocol metadata and assignments
//! are opaque bytes; errors are [`EngineError`] variants named after the Kafka errors a
//! front door answers with. Membership lives in memory only (after a restart members simply
//! rejoin, as with Kafka); committed offsets are the engine's, durable.
//!
//! Concurrency: one `std::sync::Mutex` over every group. Each operation is a few in-memory
//! map updates on one group, so contention is negligible next to the network round trip, and
//! one lock means no lock ordering and an atomic view for `list` and the timer. The lock is
//! never held across an `.await` or during state-store I/O: a join or sync that must wait gets
//! a `oneshot` receiver, which the group completes (under the lock, without blocking) when the
//! rebalance or the leader's sync arrives. A background task ticks every `tick_ms` to expire
//! sessions and end rebalances whose deadline passed; it holds only a `Weak` reference and
//! stops when the coordinator is dropped.

mod group;
mod types;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use omnibus_storage::StateWrite;
use omnibus_types::validate_group_name;
use tokio::time::Instant;

use crate::engine::Engine;
use crate::error::{EngineError, Result as EngineResult};
use crate::groups;
use crate::streams::registry::off_the_runtime;
use group::{Group, JoinOutcome, NewMember, SyncOutcome};
pub use types::*;

/// Longest client id prefix kept in a generated member id.
const MEMBER_ID_PREFIX_BYTES_MAX: usize = 128;

/// The group coordinator. The engine owns one ([`Engine::coordinator`]), so every front door
/// that offers groups shares it.
pub struct GroupCoordinator {
    /// The engine that owns this coordinator (weak: the engine holds the coordinator).
    engine: Weak<Engine>,
    limits: CoordinatorLimits,
    groups: Mutex<HashMap<String, Group>>,
    member_id_seed: u64,
    member_id_counter: AtomicU64,
}

impl GroupCoordinator {
    /// A coordinator with chosen limits (tests use a ~100 ms session timeout floor), for
    /// `engine` while it is being built. Must be called inside a Tokio runtime.
    pub(crate) fn with_limits(engine: Weak<Engine>, limits: CoordinatorLimits) -> Arc<Self> {
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let coordinator = Arc::new(GroupCoordinator {
            engine,
            limits,
            groups: Mutex::new(HashMap::new()),
            member_id_seed: seed,
            member_id_counter: AtomicU64::new(0),
        });
        spawn_timer(Arc::downgrade(&coordinator), coordinator.limits.tick_ms);
        coordinator
    }

    pub fn limits(&self) -> &CoordinatorLimits {
        &self.limits
    }

    /// The engine, unless it is gone (then the coordinator is stopping).
    fn engine(&self) -> Result<Arc<Engine>, EngineError> {
        self.engine
            .upgrade()
            .ok_or(EngineError::CoordinatorNotAvailable)
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Group>> {
        self.groups.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// JoinGroup. Resolves when the group's join phase completes: at once if every known member
    /// has (re)joined, otherwise when they have or the largest rebalance timeout passes
    /// (members that did not rejoin are removed). An empty group's first rebalance also waits
    /// `initial_rebalance_delay_ms` for more members.
    ///
    /// Errors: [`EngineError::MemberIdRequired`] (new member with
    /// `require_known_member_id`; join again with that id), `UnknownMember` (the id is not
    /// a member; join with `""`), `InvalidSessionTimeout`, `InconsistentGroupProtocol`,
    /// `FencedInstanceId`, `InvalidGroupId`, `GroupFull`, `GroupLimitExceeded`,
    /// `CoordinatorNotAvailable` (group being deleted, or the coordinator stopped), and
    /// `RebalanceInProgress` when the same member joined again before this join was answered.
    ///
    /// A known member rejoining with unchanged protocols while the group is
    /// `CompletingRebalance`, or as a follower while `Stable`, gets the current generation at
    /// once without a rebalance; the leader rejoining or changed protocols start a rebalance.
    pub async fn join(&self, request: JoinRequest) -> Result<JoinResponse, EngineError> {
        self.check_join(&request)?;
        let outcome = {
            let now = Instant::now();
            let mut groups = self.lock();
            if !groups.contains_key(&request.group) {
                if !request.member_id.is_empty() {
                    return Err(EngineError::UnknownMember);
                }
                if groups.len() >= self.limits.groups_max {
                    return Err(EngineError::GroupLimitExceeded(format!(
                        "the coordinator holds {} groups, its limit",
                        groups.len()
                    )));
                }
            }
            let group = groups
                .entry(request.group.clone())
                .or_insert_with(|| Group::new(request.group.clone()));
            let outcome = if request.member_id.is_empty() {
                let member_id = self.new_member_id(
                    request
                        .group_instance_id
                        .as_deref()
                        .unwrap_or(&request.client_id),
                );
                let new = NewMember {
                    request: &request,
                    member_id,
                };
                group.join_new(new, &self.limits, now)
            } else {
                group.join_known(&request, &self.limits, now)
            };
            if group.is_disposable() {
                groups.remove(&request.group);
            }
            outcome
        };
        match outcome {
            JoinOutcome::Ready(result) => result,
            JoinOutcome::Wait(receiver) => receiver
                .await
                .unwrap_or(Err(EngineError::CoordinatorNotAvailable)),
        }
    }

    /// Checks a join's own fields before the group is touched.
    fn check_join(&self, request: &JoinRequest) -> Result<(), EngineError> {
        validate_group_name(&request.group)
            .map_err(|e| EngineError::InvalidGroupId(e.to_string()))?;
        let limits = &self.limits;
        if !(limits.session_timeout_ms_min..=limits.session_timeout_ms_max)
            .contains(&request.session_timeout_ms)
        {
            return Err(EngineError::InvalidSessionTimeout);
        }
        if request.protocol_type.is_empty() || request.protocols.is_empty() {
            return Err(EngineError::InconsistentGroupProtocol);
        }
        if request.protocols.len() > limits.protocols_per_member_max {
            return Err(EngineError::GroupLimitExceeded(format!(
                "{} protocols offered; the limit is {}",
                request.protocols.len(),
                limits.protocols_per_member_max
            )));
        }
        let instance_bytes = request.group_instance_id.as_ref().map_or(0, String::len);
        if instance_bytes > GROUP_INSTANCE_ID_BYTES_MAX {
            return Err(EngineError::GroupLimitExceeded(format!(
                "group instance id is {instance_bytes} bytes; the limit is \
                 {GROUP_INSTANCE_ID_BYTES_MAX}"
            )));
        }
        let member_bytes: usize = request
            .protocols
            .iter()
            .map(|(name, metadata)| name.len() + metadata.len())
            .sum::<usize>()
            + request.client_id.len()
            + request.client_host.len()
            + request.protocol_type.len()
            + instance_bytes;
        if member_bytes > limits.member_metadata_bytes_max {
            return Err(EngineError::GroupLimitExceeded(format!(
                "member metadata is {member_bytes} bytes; the limit is {}",
                limits.member_metadata_bytes_max
            )));
        }
        Ok(())
    }

    /// `<prefix>-<uuid-shaped hex>`, as Kafka names members (`client.id` or, for static
    /// members, `group.instance.id`). Unique: the first half is a bijection of a counter.
    fn new_member_id(&self, prefix: &str) -> String {
        let count = self.member_id_counter.fetch_add(1, Ordering::Relaxed);
        let high = mix(self.member_id_seed.wrapping_add(count));
        let low = mix(high ^ self.member_id_seed);
        let mut end = prefix.len().min(MEMBER_ID_PREFIX_BYTES_MAX);
        while !prefix.is_char_boundary(end) {
            end -= 1;
        }
        format!(
            "{}-{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            &prefix[..end],
            high >> 32,
            (high >> 16) & 0xffff,
            high & 0xffff,
            low >> 48,
            low & 0xffff_ffff_ffff
        )
    }

    /// SyncGroup. The leader's call stores its assignments, makes the group `Stable` and
    /// resolves every waiting member's sync with that member's assignment (empty if the leader
    /// gave it none). A follower's call waits for the leader's. In `Stable`, any member gets
    /// its current assignment at once.
    ///
    /// Errors: `UnknownMember` (unknown member or group), `IllegalGeneration`,
    /// `RebalanceInProgress` (the group is `PreparingRebalance`, or a rebalance started while
    /// waiting), `FencedInstanceId`, `GroupLimitExceeded` (an assignment over
    /// `assignment_bytes_max`, or more assignments than `members_per_group_max`),
    /// `CoordinatorNotAvailable`.
    pub async fn sync(&self, request: SyncRequest) -> Result<Bytes, EngineError> {
        let limits = &self.limits;
        if request.assignments.len() > limits.members_per_group_max {
            return Err(EngineError::GroupLimitExceeded(format!(
                "{} assignments; the limit is {}",
                request.assignments.len(),
                limits.members_per_group_max
            )));
        }
        if let Some((member, assignment)) = request
            .assignments
            .iter()
            .find(|(_, a)| a.len() > limits.assignment_bytes_max)
        {
            return Err(EngineError::GroupLimitExceeded(format!(
                "the assignment of {member:?} is {} bytes; the limit is {}",
                assignment.len(),
                limits.assignment_bytes_max
            )));
        }
        let outcome = {
            let mut groups = self.lock();
            let Some(group) = groups.get_mut(&request.group) else {
                return Err(EngineError::UnknownMember);
            };
            group.sync(request, Instant::now())
        };
        match outcome {
            SyncOutcome::Ready(result) => result,
            SyncOutcome::Wait(receiver) => receiver
                .await
                .unwrap_or(Err(EngineError::CoordinatorNotAvailable)),
        }
    }

    /// Heartbeat; refreshes the member's session. `Ok` while `Stable` or
    /// `CompletingRebalance`; `RebalanceInProgress` while `PreparingRebalance` (the member
    /// must rejoin); `UnknownMember` for an unknown member or group (e.g. expired);
    /// `IllegalGeneration` for a stale generation; `CoordinatorNotAvailable` while deleting.
    pub fn heartbeat(
        &self,
        group: &str,
        member_id: &str,
        generation_id: i32,
    ) -> Result<(), EngineError> {
        let mut groups = self.lock();
        let group = groups.get_mut(group).ok_or(EngineError::UnknownMember)?;
        group.heartbeat(member_id, generation_id, Instant::now())
    }

    /// LeaveGroup: removes each member (or a new member's unclaimed id), answering each in
    /// order with `Ok` or `UnknownMember`. A `Stable` or `CompletingRebalance` group starts
    /// a rebalance; a group left with no members becomes `Empty` (and is forgotten unless it
    /// has committed offsets).
    pub async fn leave(
        &self,
        group: &str,
        member_ids: Vec<String>,
    ) -> Vec<(String, Result<(), EngineError>)> {
        let mut groups = self.lock();
        let Some(entry) = groups.get_mut(group) else {
            return member_ids
                .into_iter()
                .map(|id| (id, Err(EngineError::UnknownMember)))
                .collect();
        };
        let results = entry.leave(member_ids, &self.limits, Instant::now());
        if entry.is_disposable() {
            groups.remove(group);
        }
        results
    }

    /// Checks an OffsetCommit before the front door calls [`Engine::commit_offsets`], as
    /// Kafka does; refreshes the member's session.
    ///
    /// `generation_id < 0` with an empty `member_id` is a client that only stores offsets
    /// here (no group membership): allowed when the group has no members, else
    /// `IllegalGeneration`. Otherwise the member must exist (`UnknownMember`) and the
    /// generation match (`IllegalGeneration`); while `CompletingRebalance` the answer is
    /// `RebalanceInProgress` (the member has no assignment yet). `PreparingRebalance` is
    /// allowed, as in Kafka: consumers commit what they processed before rejoining. A
    /// non-negative generation for an unknown group is `IllegalGeneration` (Kafka's answer;
    /// the client rejoins); a member id with a negative generation there is
    /// `UnknownMember`.
    pub fn validate_commit(
        &self,
        group: &str,
        member_id: &str,
        generation_id: i32,
    ) -> Result<(), EngineError> {
        let mut groups = self.lock();
        match groups.get_mut(group) {
            Some(group) => group.validate_commit(member_id, generation_id, Instant::now()),
            None if generation_id >= 0 => Err(EngineError::IllegalGeneration),
            None if member_id.is_empty() => Ok(()),
            None => Err(EngineError::UnknownMember),
        }
    }

    /// DescribeGroups for one group. A group without members but with committed offsets is
    /// `Empty` with protocol type `"consumer"`; an unknown (or invalid) group is `Dead` with
    /// empty strings and no members, which is what Kafka answers (with no error).
    pub async fn describe(&self, group: &str) -> Result<GroupDescription, EngineError> {
        if let Some(entry) = self.lock().get(group) {
            return Ok(entry.describe());
        }
        let state = if validate_group_name(group).is_ok()
            && !self
                .engine()?
                .committed_offsets(group, None)
                .await?
                .is_empty()
        {
            GroupState::Empty
        } else {
            GroupState::Dead
        };
        Ok(GroupDescription {
            group: group.to_string(),
            state,
            protocol_type: if state == GroupState::Empty {
                "consumer".to_string()
            } else {
                String::new()
            },
            protocol: String::new(),
            members: Vec::new(),
        })
    }

    /// ListGroups: every group in memory (except ones being deleted) and every group known
    /// only by committed offsets (`Empty`, `"consumer"`), sorted by name.
    pub async fn list(&self) -> Result<Vec<GroupListing>, EngineError> {
        let with_offsets = self.engine()?.list_groups().await?;
        let mut listings: BTreeMap<String, GroupListing> = BTreeMap::new();
        for group in with_offsets {
            listings.insert(
                group.clone(),
                GroupListing {
                    group,
                    protocol_type: "consumer".to_string(),
                    state: GroupState::Empty,
                },
            );
        }
        for (name, group) in self.lock().iter() {
            if group.state() == GroupState::Dead {
                listings.remove(name);
                continue;
            }
            let protocol_type = match group.protocol_type() {
                "" => "consumer",
                other => other,
            };
            listings.insert(
                name.clone(),
                GroupListing {
                    group: name.clone(),
                    protocol_type: protocol_type.to_string(),
                    state: group.state(),
                },
            );
        }
        Ok(listings.into_values().collect())
    }

    /// DeleteGroups for one group: only an `Empty` group (`GroupNotEmpty` otherwise); deletes
    /// its committed offsets. `GroupNotFound` if there is neither a group nor offsets (or
    /// another delete of it is under way). Joins meanwhile get `CoordinatorNotAvailable`.
    pub async fn delete(&self, group: &str) -> Result<(), EngineError> {
        let engine = self.engine()?;
        validate_group_name(group).map_err(|e| EngineError::InvalidGroupId(e.to_string()))?;
        let in_memory = {
            let mut groups = self.lock();
            let in_memory = match groups.get(group).map(Group::state) {
                Some(GroupState::Dead) => return Err(EngineError::GroupNotFound),
                Some(GroupState::Empty) => true,
                Some(_) => return Err(EngineError::GroupNotEmpty),
                None => false,
            };
            // A tombstone while the offsets go, so nobody joins a half-deleted group.
            groups.insert(group.to_string(), Group::dead(group.to_string()));
            in_memory
        };
        let deleted = engine.delete_group_offsets(group).await;
        self.lock().remove(group);
        if deleted? == 0 && !in_memory {
            return Err(EngineError::GroupNotFound);
        }
        Ok(())
    }

    /// One timer pass: expire sessions, end overdue rebalances, forget empty groups.
    fn tick(&self) {
        let now = Instant::now();
        let mut groups = self.lock();
        groups.retain(|_, group| {
            group.expire(&self.limits, now);
            !group.is_disposable()
        });
    }
}

impl Engine {
    /// Deletes every committed offset of `group` durably; returns how many there were.
    pub(crate) async fn delete_group_offsets(&self, group: &str) -> EngineResult<usize> {
        self.check_running()?;
        let prefix = groups::group_prefix(group);
        let state = self.state.clone();
        let scanned = prefix.clone();
        let count =
            off_the_runtime(move || Ok(state.scan_prefix(groups::TABLE, &scanned)?.len())).await?;
        if count > 0 {
            self.state
                .commit(vec![StateWrite::DeletePrefix {
                    table: groups::TABLE,
                    prefix,
                }])
                .await?;
            self.committed.remove_group(group);
        }
        Ok(count)
    }
}

/// splitmix64's finalizer: a bijection on u64 that scatters a counter's bits.
fn mix(value: u64) -> u64 {
    let mut z = value.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Ticks every `tick_ms` until the coordinator is dropped.
fn spawn_timer(coordinator: Weak<GroupCoordinator>, tick_ms: u64) {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(Duration::from_millis(tick_ms.max(1)));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let Some(coordinator) = coordinator.upgrade() else {
                return;
            };
            coordinator.tick();
        }
    });
}
