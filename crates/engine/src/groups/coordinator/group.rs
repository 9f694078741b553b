//! One group's state machine: membership, generations, protocol choice, rebalance and session
//! deadlines. Synchronous and lock-free by itself: the coordinator calls it under its mutex and
//! it completes waiting joins and syncs by sending on their oneshot channels, which never
//! blocks.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::types::*;
use crate::error::EngineError;

mod join;

pub(super) type JoinResult = Result<JoinResponse, EngineError>;
pub(super) type SyncResult = Result<Bytes, EngineError>;

/// What a join call gets back: an answer now, or one to wait for.
pub(super) enum JoinOutcome {
    Ready(JoinResult),
    Wait(oneshot::Receiver<JoinResult>),
}

/// What a sync call gets back: an answer now, or one to wait for.
pub(super) enum SyncOutcome {
    Ready(SyncResult),
    Wait(oneshot::Receiver<SyncResult>),
}

/// One joined member. Fields are read and written by the join phase in `group/join.rs` too.
struct Member {
    group_instance_id: Option<String>,
    client_id: String,
    client_host: String,
    protocols: Vec<(String, Bytes)>,
    session_timeout: Duration,
    rebalance_timeout: Duration,
    session_deadline: Instant,
    assignment: Bytes,
    /// Join order; the oldest member becomes leader when the leader goes.
    sequence: u64,
    awaiting_join: Option<oneshot::Sender<JoinResult>>,
    awaiting_sync: Option<oneshot::Sender<SyncResult>>,
}

impl Member {
    fn metadata_for(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(name, _)| name == protocol)
            .map(|(_, metadata)| metadata.clone())
            .unwrap_or_default()
    }

    fn same_protocols(&self, protocols: &[(String, Bytes)]) -> bool {
        self.protocols == protocols
    }

    /// A member waiting for a join or sync answer cannot heartbeat; the rebalance deadline,
    /// not its session, bounds its wait.
    fn is_waiting(&self) -> bool {
        self.awaiting_join.is_some() || self.awaiting_sync.is_some()
    }
}

/// A new member's facts, already validated by the coordinator.
pub(super) struct NewMember<'a> {
    pub request: &'a JoinRequest,
    pub member_id: String,
}

pub(super) struct Group {
    name: String,
    state: GroupState,
    generation_id: i32,
    protocol_type: String,
    protocol: String,
    leader: Option<String>,
    members: HashMap<String, Member>,
    /// Ids handed out with MemberIdRequired, with the deadline for their second join.
    pending_members: HashMap<String, Instant>,
    /// group instance id -> the member id holding it.
    static_members: HashMap<String, String>,
    /// PreparingRebalance: when the join phase ends anyway. CompletingRebalance: when members
    /// that have not synced are dropped.
    rebalance_deadline: Option<Instant>,
    /// The first rebalance of an empty group: waits `initial_rebalance_delay_ms` for more
    /// members (extended by each arrival) and never ends early; this is its hard end.
    initial_rebalance_end: Option<Instant>,
    next_sequence: u64,
}

impl Group {
    pub(super) fn new(name: String) -> Group {
        Group {
            name,
            state: GroupState::Empty,
            generation_id: 0,
            protocol_type: String::new(),
            protocol: String::new(),
            leader: None,
            members: HashMap::new(),
            pending_members: HashMap::new(),
            static_members: HashMap::new(),
            rebalance_deadline: None,
            initial_rebalance_end: None,
            next_sequence: 0,
        }
    }

    /// A tombstone: the group is being deleted and refuses every request meanwhile.
    pub(super) fn dead(name: String) -> Group {
        Group {
            state: GroupState::Dead,
            ..Group::new(name)
        }
    }

    pub(super) fn state(&self) -> GroupState {
        self.state
    }

    pub(super) fn protocol_type(&self) -> &str {
        &self.protocol_type
    }

    /// Nothing left worth keeping in memory (its committed offsets, if any, stay in the engine).
    pub(super) fn is_disposable(&self) -> bool {
        self.state == GroupState::Empty
            && self.members.is_empty()
            && self.pending_members.is_empty()
    }

    pub(super) fn size(&self) -> usize {
        self.members.len() + self.pending_members.len()
    }
}

impl Group {
    // ----- sync, heartbeat, commit -----

    /// Kafka's order of checks: fenced instance, unknown member, generation, then state.
    fn check_member(
        &self,
        member_id: &str,
        group_instance_id: Option<&str>,
        generation_id: i32,
    ) -> Result<(), EngineError> {
        if self.state == GroupState::Dead {
            return Err(EngineError::CoordinatorNotAvailable);
        }
        if self.is_fenced(member_id, group_instance_id) {
            return Err(EngineError::FencedInstanceId);
        }
        if !self.members.contains_key(member_id) {
            return Err(EngineError::UnknownMember);
        }
        if generation_id != self.generation_id {
            return Err(EngineError::IllegalGeneration);
        }
        Ok(())
    }

    pub(super) fn sync(&mut self, request: SyncRequest, now: Instant) -> SyncOutcome {
        let member_id = request.member_id.as_str();
        if let Err(error) = self.check_member(
            member_id,
            request.group_instance_id.as_deref(),
            request.generation_id,
        ) {
            return SyncOutcome::Ready(Err(error));
        }
        self.refresh_session(member_id, now);
        match self.state {
            GroupState::PreparingRebalance => {
                SyncOutcome::Ready(Err(EngineError::RebalanceInProgress))
            }
            GroupState::Stable => {
                SyncOutcome::Ready(Ok(self.members[member_id].assignment.clone()))
            }
            GroupState::CompletingRebalance => {
                let (sender, receiver) = oneshot::channel();
                if let Some(member) = self.members.get_mut(member_id) {
                    if let Some(superseded) = member.awaiting_sync.replace(sender) {
                        let _ = superseded.send(Err(EngineError::RebalanceInProgress));
                    }
                }
                if self.leader.as_deref() == Some(member_id) {
                    self.apply_assignments(request.assignments);
                }
                SyncOutcome::Wait(receiver)
            }
            GroupState::Empty | GroupState::Dead => {
                SyncOutcome::Ready(Err(EngineError::UnknownMember))
            }
        }
    }

    /// The leader's assignments: stored, sent to every waiting member, group Stable.
    fn apply_assignments(&mut self, assignments: Vec<(String, Bytes)>) {
        for member in self.members.values_mut() {
            member.assignment = Bytes::new();
        }
        for (member_id, assignment) in assignments {
            if let Some(member) = self.members.get_mut(&member_id) {
                member.assignment = assignment;
            }
        }
        for member in self.members.values_mut() {
            if let Some(waiting) = member.awaiting_sync.take() {
                let _ = waiting.send(Ok(member.assignment.clone()));
            }
        }
        self.state = GroupState::Stable;
        self.rebalance_deadline = None;
        tracing::debug!(group = %self.name, generation = self.generation_id, "group stable");
    }

    pub(super) fn heartbeat(
        &mut self,
        member_id: &str,
        generation_id: i32,
        now: Instant,
    ) -> Result<(), EngineError> {
        self.check_member(member_id, None, generation_id)?;
        self.refresh_session(member_id, now);
        match self.state {
            GroupState::PreparingRebalance => Err(EngineError::RebalanceInProgress),
            GroupState::CompletingRebalance | GroupState::Stable => Ok(()),
            GroupState::Empty | GroupState::Dead => Err(EngineError::UnknownMember),
        }
    }

    /// Kafka's `validateOffsetCommit` plus the state check of `handleCommitOffsets`.
    pub(super) fn validate_commit(
        &mut self,
        member_id: &str,
        generation_id: i32,
        now: Instant,
    ) -> Result<(), EngineError> {
        if self.state == GroupState::Dead {
            return Err(EngineError::CoordinatorNotAvailable);
        }
        if generation_id < 0 && member_id.is_empty() {
            // A commit from a client that only stores offsets here.
            return match self.state {
                GroupState::Empty => Ok(()),
                _ => Err(EngineError::IllegalGeneration),
            };
        }
        self.check_member(member_id, None, generation_id)?;
        self.refresh_session(member_id, now);
        match self.state {
            // The member has its generation but not yet its assignment.
            GroupState::CompletingRebalance => Err(EngineError::RebalanceInProgress),
            // PreparingRebalance is allowed: consumers commit what they processed before
            // giving partitions up, with the generation that is ending.
            _ => Ok(()),
        }
    }

    // ----- leaving and expiry -----

    /// Removes the given members; answers each.
    pub(super) fn leave(
        &mut self,
        member_ids: Vec<String>,
        limits: &CoordinatorLimits,
        now: Instant,
    ) -> Vec<(String, Result<(), EngineError>)> {
        let mut results = Vec::with_capacity(member_ids.len());
        let mut members_removed = false;
        let mut pending_removed = false;
        for member_id in member_ids {
            let result = if self.state == GroupState::Dead {
                Err(EngineError::CoordinatorNotAvailable)
            } else if self.pending_members.remove(&member_id).is_some() {
                pending_removed = true;
                Ok(())
            } else if let Some(mut member) = self.remove_member(&member_id) {
                tracing::debug!(group = %self.name, member = %member_id, "member left");
                if let Some(waiting) = member.awaiting_join.take() {
                    let _ = waiting.send(Err(EngineError::UnknownMember));
                }
                if let Some(waiting) = member.awaiting_sync.take() {
                    let _ = waiting.send(Err(EngineError::UnknownMember));
                }
                members_removed = true;
                Ok(())
            } else {
                Err(EngineError::UnknownMember)
            };
            results.push((member_id, result));
        }
        if members_removed {
            self.members_changed(limits, now);
        } else if pending_removed {
            // An unclaimed id going away never starts a rebalance, but may end one.
            self.maybe_complete_join(now);
        }
        results
    }

    /// After members went away: a settled group rebalances; a rebalancing one may be done.
    fn members_changed(&mut self, limits: &CoordinatorLimits, now: Instant) {
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.prepare_rebalance(limits, now)
            }
            GroupState::PreparingRebalance => self.maybe_complete_join(now),
            GroupState::Empty | GroupState::Dead => {}
        }
    }

    /// Drops expired sessions, unclaimed member ids and members that missed a rebalance
    /// deadline. Called by the timer task.
    pub(super) fn expire(&mut self, limits: &CoordinatorLimits, now: Instant) {
        if self.state == GroupState::Dead {
            return;
        }
        let pending_before = self.pending_members.len();
        self.pending_members.retain(|_, deadline| *deadline > now);
        let expired: Vec<String> = self
            .members
            .iter()
            .filter(|(_, m)| !m.is_waiting() && m.session_deadline <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in &expired {
            tracing::info!(group = %self.name, member = %id, "member session expired");
            self.remove_member(id);
        }
        if !expired.is_empty() {
            self.members_changed(limits, now);
        } else if self.pending_members.len() != pending_before {
            self.maybe_complete_join(now);
        }
        if self
            .rebalance_deadline
            .is_none_or(|deadline| deadline > now)
        {
            return;
        }
        match self.state {
            GroupState::PreparingRebalance => self.complete_join(now),
            GroupState::CompletingRebalance => {
                // The leader never sent assignments in time: drop whoever has not synced.
                let unsynced: Vec<String> = self
                    .members
                    .iter()
                    .filter(|(_, m)| m.awaiting_sync.is_none())
                    .map(|(id, _)| id.clone())
                    .collect();
                for id in &unsynced {
                    tracing::info!(group = %self.name, member = %id, "member did not sync in time");
                    self.remove_member(id);
                }
                self.prepare_rebalance(limits, now);
            }
            _ => self.rebalance_deadline = None,
        }
    }

    fn remove_member(&mut self, member_id: &str) -> Option<Member> {
        let member = self.members.remove(member_id)?;
        if let Some(instance) = &member.group_instance_id {
            if self.static_members.get(instance).map(String::as_str) == Some(member_id) {
                self.static_members.remove(instance);
            }
        }
        if self.leader.as_deref() == Some(member_id) {
            self.leader = self
                .members_in_order()
                .first()
                .map(|(id, _)| id.to_string());
        }
        Some(member)
    }

    fn refresh_session(&mut self, member_id: &str, now: Instant) {
        if let Some(member) = self.members.get_mut(member_id) {
            member.session_deadline = now + member.session_timeout;
        }
    }

    /// Another member holds this instance id (KIP-345 fencing).
    fn is_fenced(&self, member_id: &str, group_instance_id: Option<&str>) -> bool {
        group_instance_id
            .and_then(|instance| self.static_members.get(instance))
            .is_some_and(|holder| holder != member_id)
    }

    // ----- describing -----

    pub(super) fn describe(&self) -> GroupDescription {
        let stable = self.state == GroupState::Stable;
        let members = self
            .members_in_order()
            .into_iter()
            .map(|(id, m)| MemberDescription {
                member_id: id.to_string(),
                group_instance_id: m.group_instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                metadata: if stable {
                    m.metadata_for(&self.protocol)
                } else {
                    Bytes::new()
                },
                assignment: if stable {
                    m.assignment.clone()
                } else {
                    Bytes::new()
                },
            })
            .collect();
        GroupDescription {
            group: self.name.clone(),
            state: self.state,
            protocol_type: self.protocol_type.clone(),
            protocol: if stable {
                self.protocol.clone()
            } else {
                String::new()
            },
            members,
        }
    }
}
