//! The join phase of a group: admitting members, starting a rebalance, waiting for every
//! member to rejoin, choosing the protocol and the leader, and answering the waiting joins.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::{Group, JoinOutcome, Member, NewMember};
use crate::error::EngineError;
use crate::groups::coordinator::types::*;

impl Group {
    /// Kafka's `supportsProtocols`: an empty group takes anything; otherwise the protocol type
    /// must match and one of the offered protocols must be supported by every member.
    pub(super) fn supports_protocols(
        &self,
        protocol_type: &str,
        protocols: &[(String, Bytes)],
    ) -> bool {
        if self.members.is_empty() {
            return true;
        }
        protocol_type == self.protocol_type
            && protocols.iter().any(|(name, _)| {
                self.members
                    .values()
                    .all(|m| m.protocols.iter().any(|(n, _)| n == name))
            })
    }

    pub(in crate::groups::coordinator) fn join_new(
        &mut self,
        new: NewMember<'_>,
        limits: &CoordinatorLimits,
        now: Instant,
    ) -> JoinOutcome {
        let request = new.request;
        if self.state == GroupState::Dead {
            return JoinOutcome::Ready(Err(EngineError::CoordinatorNotAvailable));
        }
        if !self.supports_protocols(&request.protocol_type, &request.protocols) {
            return JoinOutcome::Ready(Err(EngineError::InconsistentGroupProtocol));
        }
        if let Some(instance) = &request.group_instance_id {
            if let Some(old_id) = self.static_members.get(instance).cloned() {
                return self.replace_static_member(old_id, new.member_id, request, limits, now);
            }
        }
        if self.size() >= limits.members_per_group_max {
            return JoinOutcome::Ready(Err(EngineError::GroupFull));
        }
        if request.require_known_member_id && request.group_instance_id.is_none() {
            let deadline = now + Duration::from_millis(request.session_timeout_ms);
            self.pending_members.insert(new.member_id.clone(), deadline);
            return JoinOutcome::Ready(Err(EngineError::MemberIdRequired(new.member_id)));
        }
        self.add_member_and_rebalance(new.member_id, request, limits, now)
    }

    pub(in crate::groups::coordinator) fn join_known(
        &mut self,
        request: &JoinRequest,
        limits: &CoordinatorLimits,
        now: Instant,
    ) -> JoinOutcome {
        let member_id = request.member_id.clone();
        if self.state == GroupState::Dead {
            return JoinOutcome::Ready(Err(EngineError::CoordinatorNotAvailable));
        }
        if !self.supports_protocols(&request.protocol_type, &request.protocols) {
            return JoinOutcome::Ready(Err(EngineError::InconsistentGroupProtocol));
        }
        if self.is_fenced(&member_id, request.group_instance_id.as_deref()) {
            return JoinOutcome::Ready(Err(EngineError::FencedInstanceId));
        }
        if self.pending_members.remove(&member_id).is_some() {
            return self.add_member_and_rebalance(member_id, request, limits, now);
        }
        let Some(member) = self.members.get(&member_id) else {
            return JoinOutcome::Ready(Err(EngineError::UnknownMember));
        };
        let unchanged = member.same_protocols(&request.protocols);
        let is_leader = self.leader.as_deref() == Some(member_id.as_str());
        match self.state {
            GroupState::CompletingRebalance if unchanged => {
                self.refresh_session(&member_id, now);
                JoinOutcome::Ready(Ok(self.join_response(&member_id)))
            }
            GroupState::Stable if unchanged && !is_leader => {
                self.refresh_session(&member_id, now);
                JoinOutcome::Ready(Ok(self.join_response(&member_id)))
            }
            GroupState::PreparingRebalance
            | GroupState::CompletingRebalance
            | GroupState::Stable => self.update_member_and_rebalance(request, limits, now),
            GroupState::Empty | GroupState::Dead => {
                JoinOutcome::Ready(Err(EngineError::UnknownMember))
            }
        }
    }

    /// KIP-345: a static member rejoining without its member id takes over its instance id
    /// under a new member id; the old member id is fenced.
    pub(super) fn replace_static_member(
        &mut self,
        old_id: String,
        new_id: String,
        request: &JoinRequest,
        limits: &CoordinatorLimits,
        now: Instant,
    ) -> JoinOutcome {
        let Some(mut member) = self.members.remove(&old_id) else {
            self.static_members
                .remove(request.group_instance_id.as_deref().unwrap_or(""));
            return self.add_member_and_rebalance(new_id, request, limits, now);
        };
        if let Some(waiting) = member.awaiting_join.take() {
            let _ = waiting.send(Err(EngineError::FencedInstanceId));
        }
        if let Some(waiting) = member.awaiting_sync.take() {
            let _ = waiting.send(Err(EngineError::FencedInstanceId));
        }
        let unchanged = member.same_protocols(&request.protocols);
        let was_leader = self.leader.as_deref() == Some(old_id.as_str());
        self.members.insert(new_id.clone(), member);
        if was_leader {
            self.leader = Some(new_id.clone());
        }
        if let Some(instance) = &request.group_instance_id {
            self.static_members.insert(instance.clone(), new_id.clone());
        }
        if self.state == GroupState::Stable && unchanged && !was_leader {
            self.refresh_session(&new_id, now);
            return JoinOutcome::Ready(Ok(self.join_response(&new_id)));
        }
        let request = JoinRequest {
            member_id: new_id,
            ..request.clone()
        };
        self.update_member_and_rebalance(&request, limits, now)
    }

    pub(super) fn add_member_and_rebalance(
        &mut self,
        member_id: String,
        request: &JoinRequest,
        limits: &CoordinatorLimits,
        now: Instant,
    ) -> JoinOutcome {
        let (sender, receiver) = oneshot::channel();
        let member = Member {
            group_instance_id: request.group_instance_id.clone(),
            client_id: request.client_id.clone(),
            client_host: request.client_host.clone(),
            protocols: request.protocols.clone(),
            session_timeout: Duration::from_millis(request.session_timeout_ms),
            rebalance_timeout: rebalance_timeout(request, limits),
            session_deadline: now + Duration::from_millis(request.session_timeout_ms),
            assignment: Bytes::new(),
            sequence: self.next_sequence,
            awaiting_join: Some(sender),
            awaiting_sync: None,
        };
        self.next_sequence += 1;
        if self.members.is_empty() {
            self.protocol_type = request.protocol_type.clone();
        }
        if let Some(instance) = &request.group_instance_id {
            self.static_members
                .insert(instance.clone(), member_id.clone());
        }
        if self.leader.is_none() {
            self.leader = Some(member_id.clone());
        }
        self.members.insert(member_id, member);
        if let Some(end) = self.initial_rebalance_end {
            // Another member arrived during the initial delay: wait a little longer for more.
            let delay = Duration::from_millis(limits.initial_rebalance_delay_ms);
            self.rebalance_deadline = Some((now + delay).min(end));
        } else if self.state == GroupState::PreparingRebalance {
            self.maybe_complete_join(now);
        } else {
            self.prepare_rebalance(limits, now);
        }
        JoinOutcome::Wait(receiver)
    }

    pub(super) fn update_member_and_rebalance(
        &mut self,
        request: &JoinRequest,
        limits: &CoordinatorLimits,
        now: Instant,
    ) -> JoinOutcome {
        let (sender, receiver) = oneshot::channel();
        let Some(member) = self.members.get_mut(&request.member_id) else {
            return JoinOutcome::Ready(Err(EngineError::UnknownMember));
        };
        member.protocols = request.protocols.clone();
        member.client_id = request.client_id.clone();
        member.client_host = request.client_host.clone();
        member.session_timeout = Duration::from_millis(request.session_timeout_ms);
        member.rebalance_timeout = rebalance_timeout(request, limits);
        member.session_deadline = now + member.session_timeout;
        if let Some(superseded) = member.awaiting_join.replace(sender) {
            // The member joined again before its first join was answered (a client retry).
            let _ = superseded.send(Err(EngineError::RebalanceInProgress));
        }
        if self.state == GroupState::PreparingRebalance {
            self.maybe_complete_join(now);
        } else {
            self.prepare_rebalance(limits, now);
        }
        JoinOutcome::Wait(receiver)
    }

    /// Enters PreparingRebalance: waiting syncs learn of it, members must rejoin.
    pub(super) fn prepare_rebalance(&mut self, limits: &CoordinatorLimits, now: Instant) {
        if self.state == GroupState::CompletingRebalance {
            for member in self.members.values_mut() {
                if let Some(waiting) = member.awaiting_sync.take() {
                    let _ = waiting.send(Err(EngineError::RebalanceInProgress));
                }
            }
        }
        let rebalance_timeout = self
            .members
            .values()
            .map(|m| m.rebalance_timeout)
            .max()
            .unwrap_or_default();
        let initial = self.state == GroupState::Empty && limits.initial_rebalance_delay_ms > 0;
        self.state = GroupState::PreparingRebalance;
        if initial {
            let delay = Duration::from_millis(limits.initial_rebalance_delay_ms);
            let end = now + rebalance_timeout.max(delay);
            self.initial_rebalance_end = Some(end);
            self.rebalance_deadline = Some(now + delay);
        } else {
            self.initial_rebalance_end = None;
            self.rebalance_deadline = Some(now + rebalance_timeout);
            self.maybe_complete_join(now);
        }
        tracing::debug!(group = %self.name, generation = self.generation_id, "rebalance started");
    }

    /// Kafka's `hasAllMembersJoined`: every member rejoined and no new member is still
    /// fetching its id. The initial delay never ends early unless nobody is left.
    pub(super) fn maybe_complete_join(&mut self, now: Instant) {
        if self.state != GroupState::PreparingRebalance {
            return;
        }
        let nobody = self.members.is_empty() && self.pending_members.is_empty();
        let all_joined = self.members.values().all(|m| m.awaiting_join.is_some())
            && self.pending_members.is_empty();
        if nobody || (self.initial_rebalance_end.is_none() && all_joined) {
            self.complete_join(now);
        }
    }

    /// Ends the join phase: members that did not rejoin are removed, the generation advances,
    /// a protocol is chosen and every waiting join is answered.
    pub(super) fn complete_join(&mut self, now: Instant) {
        let absent: Vec<String> = self
            .members
            .iter()
            .filter(|(_, m)| m.awaiting_join.is_none())
            .map(|(id, _)| id.clone())
            .collect();
        for id in absent {
            tracing::info!(group = %self.name, member = %id, "member did not rejoin in time");
            self.remove_member(&id);
        }
        self.generation_id = self.generation_id.wrapping_add(1).max(1);
        self.initial_rebalance_end = None;
        if self.members.is_empty() {
            self.state = GroupState::Empty;
            self.protocol.clear();
            self.leader = None;
            self.rebalance_deadline = None;
            return;
        }
        self.protocol = self.select_protocol();
        if !self
            .leader
            .as_ref()
            .is_some_and(|l| self.members.contains_key(l))
        {
            self.leader = self
                .members_in_order()
                .first()
                .map(|(id, _)| id.to_string());
        }
        self.state = GroupState::CompletingRebalance;
        let sync_timeout = self
            .members
            .values()
            .map(|m| m.rebalance_timeout)
            .max()
            .unwrap_or_default();
        self.rebalance_deadline = Some(now + sync_timeout);
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for id in ids {
            let response = self.join_response(&id);
            if let Some(member) = self.members.get_mut(&id) {
                member.assignment = Bytes::new();
                member.session_deadline = now + member.session_timeout;
                if let Some(waiting) = member.awaiting_join.take() {
                    let _ = waiting.send(Ok(response));
                }
            }
        }
        tracing::debug!(group = %self.name, generation = self.generation_id, protocol = %self.protocol,
            members = self.members.len(), "join phase complete");
    }

    pub(super) fn members_in_order(&self) -> Vec<(&str, &Member)> {
        let mut members: Vec<(&str, &Member)> = self
            .members
            .iter()
            .map(|(id, m)| (id.as_str(), m))
            .collect();
        members.sort_by_key(|(_, m)| m.sequence);
        members
    }

    /// Kafka's `selectProtocol`: among the protocols every member supports, each member votes
    /// for its most preferred; most votes wins, ties go to the leader's preference.
    pub(super) fn select_protocol(&self) -> String {
        let members = self.members_in_order();
        let candidates: Vec<&str> = members
            .first()
            .map(|(_, first)| {
                first
                    .protocols
                    .iter()
                    .map(|(name, _)| name.as_str())
                    .filter(|name| {
                        members
                            .iter()
                            .all(|(_, m)| m.protocols.iter().any(|(n, _)| n == name))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mut votes: HashMap<&str, usize> = HashMap::new();
        for (_, member) in &members {
            if let Some((name, _)) = member
                .protocols
                .iter()
                .find(|(name, _)| candidates.contains(&name.as_str()))
            {
                *votes.entry(name.as_str()).or_default() += 1;
            }
        }
        let leader_order: Vec<&str> = self
            .leader
            .as_ref()
            .and_then(|l| self.members.get(l))
            .map(|l| l.protocols.iter().map(|(n, _)| n.as_str()).collect())
            .unwrap_or_default();
        let rank = |name: &str| {
            leader_order
                .iter()
                .position(|n| *n == name)
                .unwrap_or(usize::MAX)
        };
        candidates
            .iter()
            .max_by(|a, b| {
                let by_votes = votes
                    .get(*a)
                    .copied()
                    .unwrap_or(0)
                    .cmp(&votes.get(*b).copied().unwrap_or(0));
                by_votes.then_with(|| rank(b).cmp(&rank(a)))
            })
            .map(|name| name.to_string())
            .unwrap_or_default()
    }

    /// The current generation as `member_id` sees it (members listed for the leader only).
    pub(super) fn join_response(&self, member_id: &str) -> JoinResponse {
        let leader = self.leader.clone().unwrap_or_default();
        let members = if leader == member_id {
            self.members_in_order()
                .into_iter()
                .map(|(id, m)| JoinedMember {
                    member_id: id.to_string(),
                    group_instance_id: m.group_instance_id.clone(),
                    metadata: m.metadata_for(&self.protocol),
                })
                .collect()
        } else {
            Vec::new()
        };
        JoinResponse {
            generation_id: self.generation_id,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol.clone(),
            leader,
            member_id: member_id.to_string(),
            members,
        }
    }
}

fn rebalance_timeout(request: &JoinRequest, limits: &CoordinatorLimits) -> Duration {
    Duration::from_millis(
        request
            .rebalance_timeout_ms
            .min(limits.rebalance_timeout_ms_max),
    )
}
