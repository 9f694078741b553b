//! LeaveGroup (key 13): v0–2 name one member; v3+ a batch, answered member by member.

use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};

use super::errors::{engine_error_code, NONE};
use super::Broker;

pub(crate) async fn handle(
    broker: &Broker,
    request: LeaveGroupRequest,
    version: i16,
) -> LeaveGroupResponse {
    let mut response = LeaveGroupResponse::default();
    let group = request.group_id.as_str();
    if version <= 2 {
        let results = broker
            .coordinator
            .leave(group, vec![request.member_id.to_string()])
            .await;
        response.error_code = match results.first() {
            Some((_, Err(error))) => engine_error_code(error),
            _ => NONE,
        };
        return response;
    }
    let ids = request
        .members
        .iter()
        .map(|m| m.member_id.to_string())
        .collect();
    let results = broker.coordinator.leave(group, ids).await;
    response.error_code = NONE;
    response.members = request
        .members
        .into_iter()
        .zip(results)
        .map(|(member, (_, result))| {
            let mut answer = MemberResponse::default();
            answer.member_id = member.member_id;
            answer.group_instance_id = member.group_instance_id;
            answer.error_code = match result {
                Ok(()) => NONE,
                Err(error) => engine_error_code(&error),
            };
            answer
        })
        .collect();
    response
}
