//! FindCoordinator (key 10): this broker coordinates every group. v0–3 ask for one key, v4+
//! for a batch. Transactions are not supported, so a transaction coordinator is refused.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;

use super::errors::NONE;
use super::{Broker, NODE_ID};

const GROUP: i8 = 0;

pub(crate) fn handle(
    broker: &Broker,
    request: FindCoordinatorRequest,
    version: i16,
) -> FindCoordinatorResponse {
    let mut response = FindCoordinatorResponse::default();
    let refusal = (request.key_type != GROUP).then(|| {
        (
            ResponseError::InvalidRequest.code(),
            StrBytes::from_static_str("transactions are not supported by this broker"),
        )
    });
    if version >= 4 {
        response.coordinators = request
            .coordinator_keys
            .into_iter()
            .map(|key| {
                let mut coordinator = Coordinator::default();
                coordinator.key = key;
                match &refusal {
                    Some((code, message)) => {
                        coordinator.error_code = *code;
                        coordinator.error_message = Some(message.clone());
                        coordinator.node_id = (-1).into();
                        coordinator.port = -1;
                    }
                    None => {
                        coordinator.error_code = NONE;
                        coordinator.node_id = NODE_ID;
                        coordinator.host = broker.host();
                        coordinator.port = broker.port;
                    }
                }
                coordinator
            })
            .collect();
        return response;
    }
    match refusal {
        Some((code, message)) => {
            response.error_code = code;
            if version >= 1 {
                response.error_message = Some(message);
            }
            response.node_id = (-1).into();
            response.port = -1;
        }
        None => {
            response.error_code = NONE;
            response.node_id = NODE_ID;
            response.host = broker.host();
            response.port = broker.port;
        }
    }
    response
}
