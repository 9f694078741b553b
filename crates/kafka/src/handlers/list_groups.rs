//! ListGroups (key 16): every group the coordinator knows, including those known only by
//! committed offsets; v4+ may filter by state.

use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};
use kafka_protocol::protocol::StrBytes;

use super::errors::{engine_error_code, NONE};
use super::Broker;

pub(crate) async fn handle(broker: &Broker, request: ListGroupsRequest) -> ListGroupsResponse {
    let mut response = ListGroupsResponse::default();
    match broker.coordinator.list().await {
        Ok(listings) => {
            response.error_code = NONE;
            response.groups = listings
                .into_iter()
                .filter(|listing| {
                    request.states_filter.is_empty()
                        || request
                            .states_filter
                            .iter()
                            .any(|state| state.eq_ignore_ascii_case(listing.state.as_str()))
                })
                .map(|listing| {
                    let mut group = ListedGroup::default();
                    group.group_id = GroupId(StrBytes::from_string(listing.group));
                    group.protocol_type = StrBytes::from_string(listing.protocol_type);
                    group.group_state = StrBytes::from_static_str(listing.state.as_str());
                    group
                })
                .collect();
        }
        Err(error) => response.error_code = engine_error_code(&error),
    }
    response
}
