//! DeleteGroups (key 42): removes empty groups and their committed offsets.

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};

use super::errors::{coordinator_error_code, NONE};
use super::Broker;

pub(crate) fn handle(broker: &Broker, request: DeleteGroupsRequest) -> DeleteGroupsResponse {
    let mut response = DeleteGroupsResponse::default();
    response.results = request
        .groups_names
        .into_iter()
        .map(|group_id| {
            let mut result = DeletableGroupResult::default();
            result.error_code = match broker.coordinator.delete(group_id.as_str()) {
                Ok(()) => NONE,
                Err(error) => coordinator_error_code(&error),
            };
            result.group_id = group_id;
            result
        })
        .collect();
    response
}
