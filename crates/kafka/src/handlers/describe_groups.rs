//! DescribeGroups (key 15): state, protocol and members of each group. An unknown group is
//! `Dead` with no error, as Kafka answers.

use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse};
use kafka_protocol::protocol::StrBytes;

use super::errors::{engine_error_code, NONE};
use super::Broker;

pub(crate) async fn handle(
    broker: &Broker,
    request: DescribeGroupsRequest,
) -> DescribeGroupsResponse {
    let mut response = DescribeGroupsResponse::default();
    for group_id in request.groups {
        {
            let mut group = DescribedGroup::default();
            match broker.coordinator.describe(group_id.as_str()).await {
                Ok(description) => {
                    group.error_code = NONE;
                    group.group_state = StrBytes::from_static_str(description.state.as_str());
                    group.protocol_type = StrBytes::from_string(description.protocol_type);
                    group.protocol_data = StrBytes::from_string(description.protocol);
                    group.members = description
                        .members
                        .into_iter()
                        .map(|member| {
                            let mut entry = DescribedGroupMember::default();
                            entry.member_id = StrBytes::from_string(member.member_id);
                            entry.group_instance_id =
                                member.group_instance_id.map(StrBytes::from_string);
                            entry.client_id = StrBytes::from_string(member.client_id);
                            entry.client_host = StrBytes::from_string(member.client_host);
                            entry.member_metadata = member.metadata;
                            entry.member_assignment = member.assignment;
                            entry
                        })
                        .collect();
                }
                Err(error) => {
                    group.error_code = engine_error_code(&error);
                    group.group_state = StrBytes::from_static_str("Dead");
                }
            }
            group.group_id = group_id;
            response.groups.push(group);
        }
    }
    response
}
