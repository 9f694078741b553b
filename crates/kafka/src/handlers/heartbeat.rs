//! Heartbeat (key 12): keeps a member's session alive and tells it when to rejoin.

use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};

use super::errors::{engine_error_code, NONE};
use super::Broker;

pub(crate) fn handle(broker: &Broker, request: HeartbeatRequest) -> HeartbeatResponse {
    let mut response = HeartbeatResponse::default();
    response.error_code = match broker.coordinator.heartbeat(
        request.group_id.as_str(),
        request.member_id.as_str(),
        request.generation_id,
    ) {
        Ok(()) => NONE,
        Err(error) => engine_error_code(&error),
    };
    response
}
