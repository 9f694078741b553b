//! JoinGroup (key 11): the classic group protocol through the engine's coordinator. From v4 a
//! new member first gets MEMBER_ID_REQUIRED with its id and joins again with it (KIP-394).
//! The answer waits until the rebalance completes; the leader's carries every member's
//! metadata.

use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse};
use kafka_protocol::protocol::StrBytes;
use omnibus_engine::groups::coordinator::JoinRequest;
use omnibus_engine::EngineError;

use super::errors::{engine_error_code, NONE};
use super::{Broker, Peer};

pub(crate) async fn handle(
    broker: &Broker,
    peer: &Peer,
    client_id: &str,
    request: JoinGroupRequest,
    version: i16,
) -> JoinGroupResponse {
    let session_timeout_ms = request.session_timeout_ms.max(0) as u64;
    // v0 has no rebalance timeout: Kafka uses the session timeout.
    let rebalance_timeout_ms = if version >= 1 && request.rebalance_timeout_ms >= 0 {
        request.rebalance_timeout_ms as u64
    } else {
        session_timeout_ms
    };
    let join = JoinRequest {
        group: request.group_id.to_string(),
        member_id: request.member_id.to_string(),
        group_instance_id: request.group_instance_id.map(|id| id.to_string()),
        client_id: client_id.to_string(),
        client_host: peer.client_host.clone(),
        protocol_type: request.protocol_type.to_string(),
        protocols: request
            .protocols
            .into_iter()
            .map(|p| (p.name.to_string(), p.metadata))
            .collect(),
        session_timeout_ms,
        rebalance_timeout_ms,
        require_known_member_id: version >= 4,
    };
    let mut response = JoinGroupResponse::default();
    response.protocol_name = Some(StrBytes::default());
    match broker.coordinator.join(join).await {
        Ok(joined) => {
            response.error_code = NONE;
            response.generation_id = joined.generation_id;
            response.protocol_type = Some(StrBytes::from_string(joined.protocol_type));
            response.protocol_name = Some(StrBytes::from_string(joined.protocol_name));
            response.leader = StrBytes::from_string(joined.leader);
            response.member_id = StrBytes::from_string(joined.member_id);
            response.members = joined
                .members
                .into_iter()
                .map(|member| {
                    let mut entry = JoinGroupResponseMember::default();
                    entry.member_id = StrBytes::from_string(member.member_id);
                    if version >= 5 {
                        entry.group_instance_id =
                            member.group_instance_id.map(StrBytes::from_string);
                    }
                    entry.metadata = member.metadata;
                    entry
                })
                .collect();
        }
        Err(error) => {
            response.error_code = engine_error_code(&error);
            response.generation_id = -1;
            response.member_id = match error {
                EngineError::MemberIdRequired(id) => StrBytes::from_string(id),
                _ => request.member_id,
            };
        }
    }
    response
}
