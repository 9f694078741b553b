//! DeleteTopics (key 20): deletes streams, their data and the offsets groups committed on them.
//! v6 may name topics by id; we have no topic ids, so those are UNKNOWN_TOPIC_ID.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse};
use kafka_protocol::protocol::StrBytes;

use super::errors::{engine_error_code, NONE};
use super::Broker;

pub(crate) async fn handle(broker: &Broker, request: DeleteTopicsRequest) -> DeleteTopicsResponse {
    // Each answer starts as the topic it is for (name, or id alone in v6).
    let seeds: Vec<DeletableTopicResult> = if request.topics.is_empty() {
        request
            .topic_names
            .into_iter()
            .map(|name| {
                let mut result = DeletableTopicResult::default();
                result.name = Some(name);
                result
            })
            .collect()
    } else {
        request
            .topics
            .into_iter()
            .map(|topic| {
                let mut result = DeletableTopicResult::default();
                result.name = topic.name;
                result.topic_id = topic.topic_id;
                result
            })
            .collect()
    };
    let mut response = DeleteTopicsResponse::default();
    for mut result in seeds {
        let Some(name) = result.name.clone() else {
            result.error_code = ResponseError::UnknownTopicId.code();
            response.responses.push(result);
            continue;
        };
        // Deleting closes the logs and removes their files; the engine does that off the
        // async workers.
        match broker.engine.delete_stream(name.as_str()).await {
            Ok(()) => {
                tracing::info!(topic = %name.as_str(), "deleted a topic");
                result.error_code = NONE;
            }
            Err(error) => {
                result.error_code = engine_error_code(&error);
                result.error_message = Some(StrBytes::from_string(error.to_string()));
            }
        }
        response.responses.push(result);
    }
    response
}
