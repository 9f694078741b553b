//! AlterConfigs (key 33), the older form of IncrementalAlterConfigs: the request carries a
//! topic's whole configuration, so every config it does not name returns to the broker's
//! default (Kafka's semantics; kafka-python's `alter_configs` uses it).

use super::incremental_alter_configs::{
    change_topic, check_distinct_configs, error_fields, repeated_error, repeated_resources,
};
use super::topic_configs;
use super::Broker;
use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse};

pub(crate) async fn handle(broker: &Broker, request: AlterConfigsRequest) -> AlterConfigsResponse {
    let mut response = AlterConfigsResponse::default();
    let repeated = repeated_resources(
        request
            .resources
            .iter()
            .map(|r| (r.resource_type, r.resource_name.as_str())),
    );
    for resource in request.resources {
        let configs: Vec<(String, Option<String>)> = resource
            .configs
            .iter()
            .map(|c| (c.name.to_string(), c.value.as_ref().map(|v| v.to_string())))
            .collect();
        let key = (resource.resource_type, resource.resource_name.to_string());
        let checked = if repeated.contains(&key) {
            Err(repeated_error())
        } else {
            check_distinct_configs(configs.iter().map(|(name, _)| name.as_str()))
        };
        let outcome = match checked {
            Err(error) => Err(error),
            Ok(()) => {
                change_topic(
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
                .await
            }
        };
        let mut result = AlterConfigsResourceResponse::default();
        (result.error_code, result.error_message) = error_fields(outcome);
        result.resource_type = resource.resource_type;
        result.resource_name = resource.resource_name;
        response.responses.push(result);
    }
    response
}
