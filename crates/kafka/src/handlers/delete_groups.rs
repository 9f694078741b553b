//! DeleteGroups (key 42): removes empty groups and their committed offsets.

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};

use super::errors::{engine_error_code, NONE};
use super::Broker;

pub(crate) async fn handle(broker: &Broker, request: DeleteGroupsRequest) -> DeleteGroupsResponse {
    let mut response = DeleteGroupsResponse::default();
    for group_id in request.groups_names {
        let mut result = DeletableGroupResult::default();
        result.error_code = match broker.coordinator.delete(group_id.as_str()).await {
            Ok(()) => NONE,
            Err(error) => engine_error_code(&error),
        };
        result.group_id = group_id;
        response.results.push(result);
    }
    response
}
