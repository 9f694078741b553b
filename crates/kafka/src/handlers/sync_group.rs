//! SyncGroup (key 14): the leader hands in every member's assignment; each member gets its own.

use kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};
use omnibus_engine::groups::coordinator::SyncRequest;

use super::errors::{engine_error_code, NONE};
use super::Broker;

pub(crate) async fn handle(
    broker: &Broker,
    request: SyncGroupRequest,
    version: i16,
) -> SyncGroupResponse {
    let sync = SyncRequest {
        group: request.group_id.to_string(),
        member_id: request.member_id.to_string(),
        generation_id: request.generation_id,
        group_instance_id: request.group_instance_id.map(|id| id.to_string()),
        assignments: request
            .assignments
            .into_iter()
            .map(|a| (a.member_id.to_string(), a.assignment))
            .collect(),
    };
    let mut response = SyncGroupResponse::default();
    match broker.coordinator.sync(sync).await {
        Ok(assignment) => {
            response.error_code = NONE;
            response.assignment = assignment;
            if version >= 5 {
                // The chosen protocol is the one the member synced for (it checks they agree).
                response.protocol_type = request.protocol_type;
                response.protocol_name = request.protocol_name;
            }
        }
        Err(error) => response.error_code = engine_error_code(&error),
    }
    response
}
