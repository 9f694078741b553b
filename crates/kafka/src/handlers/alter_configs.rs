//! AlterConfigs (key 33), the older form of IncrementalAlterConfigs: the request carries a
//! topic's whole configuration, so every config it does not name returns to the broker's
//! default (Kafka's semantics; kafka-python's `alter_configs` uses it).

use super::incremental_alter_configs::{change_topic, error_fields};
use super::topic_configs;
use super::Broker;
use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse};

pub(crate) async fn handle(broker: &Broker, request: AlterConfigsRequest) -> AlterConfigsResponse {
    let mut response = AlterConfigsResponse::default();
    for resource in request.resources {
        let configs: Vec<(String, Option<String>)> = resource
            .configs
            .iter()
            .map(|c| (c.name.to_string(), c.value.as_ref().map(|v| v.to_string())))
            .collect();
        let outcome = change_topic(
            broker,
            resource.resource_type,
            resource.resource_name.to_string(),
            request.validate_only,
            move |settings, defaults| {
                *settings = defaults.clone();
                for (name, value) in &configs {
                    topic_configs::alter(settings, defaults, name, value.as_deref())?;
                }
                Ok(())
            },
        )
        .await;
        let mut result = AlterConfigsResourceResponse::default();
        (result.error_code, result.error_message) = error_fields(outcome);
        result.resource_type = resource.resource_type;
        result.resource_name = resource.resource_name;
        response.responses.push(result);
    }
    response
}
