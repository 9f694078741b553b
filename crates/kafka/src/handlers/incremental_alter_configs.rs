//! IncrementalAlterConfigs (key 44): changes the named configs of a topic, keeping the others
//! (`kafka-configs --alter --add-config retention.ms=…`, admin clients' `incremental_alter_configs`).
//! SET takes the value, DELETE restores the broker's default; APPEND and SUBTRACT apply only
//! to list configs, of which a topic here has none. The changes of one topic are all applied
//! or none is, in one engine call (`Engine::alter_stream`, durable).

use std::collections::BTreeSet;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::incremental_alter_configs_request::AlterConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse};
use kafka_protocol::protocol::StrBytes;
use omnibus_engine::{EngineError, StreamSettings};

use super::errors::{engine_error_code, NONE};
use super::topic_configs::{self, RESOURCE_BROKER, RESOURCE_TOPIC};
use super::Broker;

const OPERATION_SET: i8 = 0;
const OPERATION_DELETE: i8 = 1;
const OPERATION_APPEND: i8 = 2;
const OPERATION_SUBTRACT: i8 = 3;

pub(crate) async fn handle(
    broker: &Broker,
    request: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let mut response = IncrementalAlterConfigsResponse::default();
    let repeated = repeated_resources(
        request
            .resources
            .iter()
            .map(|r| (r.resource_type, r.resource_name.as_str())),
    );
    for resource in request.resources {
        let key = (resource.resource_type, resource.resource_name.to_string());
        let outcome = if repeated.contains(&key) {
            Err(repeated_error())
        } else {
            alter(broker, &resource, request.validate_only).await
        };
        let mut result = AlterConfigsResourceResponse::default();
        (result.error_code, result.error_message) = error_fields(outcome);
        result.resource_type = resource.resource_type;
        result.resource_name = resource.resource_name;
        response.responses.push(result);
    }
    response
}

async fn alter(
    broker: &Broker,
    resource: &AlterConfigsResource,
    validate_only: bool,
) -> Result<(), (i16, String)> {
    let name = resource.resource_name.to_string();
    check_distinct_configs(resource.configs.iter().map(|c| c.name.as_str()))?;
    let changes: Vec<(i8, String, Option<String>)> = resource
        .configs
        .iter()
        .map(|config| {
            let value = config.value.as_ref().map(|v| v.to_string());
            (config.config_operation, config.name.to_string(), value)
        })
        .collect();
    change_topic(
        broker,
        resource.resource_type,
        name,
        validate_only,
        move |settings, defaults| {
            for (operation, config, value) in &changes {
                let value = match *operation {
                    OPERATION_SET => value.as_deref(),
                    OPERATION_DELETE => None,
                    OPERATION_APPEND | OPERATION_SUBTRACT => {
                        return Err(format!("{config} is not a list; only SET and DELETE apply"))
                    }
                    other => return Err(format!("unknown config operation {other}")),
                };
                topic_configs::alter(settings, defaults, config, value)?;
            }
            Ok(())
        },
    )
    .await
}

/// The resources named more than once in one request. Kafka refuses each of them
/// (INVALID_REQUEST) rather than apply one request's changes to a resource in some order.
pub(crate) fn repeated_resources<'a>(
    resources: impl Iterator<Item = (i8, &'a str)>,
) -> BTreeSet<(i8, String)> {
    let mut seen = BTreeSet::new();
    let mut repeated = BTreeSet::new();
    for (resource_type, name) in resources {
        if !seen.insert((resource_type, name)) {
            repeated.insert((resource_type, name.to_string()));
        }
    }
    repeated
}

pub(crate) fn repeated_error() -> (i16, String) {
    (
        ResponseError::InvalidRequest.code(),
        "the resource is named more than once in the request".into(),
    )
}

/// A config named twice in one resource is INVALID_REQUEST, as in Kafka.
pub(crate) fn check_distinct_configs<'a>(
    names: impl Iterator<Item = &'a str>,
) -> Result<(), (i16, String)> {
    let mut seen = BTreeSet::new();
    for name in names {
        if !seen.insert(name) {
            return Err((
                ResponseError::InvalidRequest.code(),
                format!("config {name} is named more than once"),
            ));
        }
    }
    Ok(())
}

/// A resource's `(error_code, error_message)` for the outcome of [`change_topic`].
pub(crate) fn error_fields(outcome: Result<(), (i16, String)>) -> (i16, Option<StrBytes>) {
    match outcome {
        Ok(()) => (NONE, None),
        Err((code, message)) => (code, Some(StrBytes::from_string(message))),
    }
}

/// Applies `change` to a topic's current settings and stores the result (shared with the
/// older, whole-set AlterConfigs, whose `change` starts from the defaults instead).
pub(crate) async fn change_topic(
    broker: &Broker,
    resource_type: i8,
    name: String,
    validate_only: bool,
    change: impl FnOnce(&mut StreamSettings, &StreamSettings) -> Result<(), String> + Send + 'static,
) -> Result<(), (i16, String)> {
    match resource_type {
        RESOURCE_TOPIC => {}
        RESOURCE_BROKER => {
            return Err((
                ResponseError::InvalidConfig.code(),
                "broker settings are static here: change the broker's configuration file".into(),
            ))
        }
        other => {
            return Err((
                ResponseError::InvalidRequest.code(),
                format!("resource type {other} has no configuration here"),
            ))
        }
    }
    // The engine reopens the stream's logs under the new settings off the async workers.
    let defaults = broker.engine.stream_defaults().settings();
    let altered = broker
        .engine
        .change_stream_settings(&name, validate_only, move |settings| {
            change(settings, &defaults).map_err(EngineError::InvalidConfig)
        })
        .await;
    match altered {
        Ok(info) => {
            if !validate_only {
                tracing::info!(topic = %info.config.name, "topic configuration changed");
            }
            Ok(())
        }
        Err(error) => Err((engine_error_code(&error), error.to_string())),
    }
}
