//! DescribeConfigs (key 32): a topic's real settings (its stream's configuration under Kafka's
//! names) and a few broker settings; optionally only the keys asked for.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::protocol::StrBytes;
use omnibus_engine::StreamConfig;

use super::errors::{engine_error_code, NONE};
use super::topic_configs::{
    self, ConfigEntry, RESOURCE_BROKER, RESOURCE_TOPIC, TYPE_INT, TYPE_STRING,
};
use super::Broker;

/// Kafka's `ConfigSource` values.
const SOURCE_TOPIC: i8 = 1;
const SOURCE_STATIC_BROKER: i8 = 4;
const SOURCE_DEFAULT: i8 = 5;
const TYPE_BOOLEAN: i8 = 1;

pub(crate) fn handle(broker: &Broker, request: DescribeConfigsRequest) -> DescribeConfigsResponse {
    let mut response = DescribeConfigsResponse::default();
    for resource in request.resources {
        let mut result = DescribeConfigsResult::default();
        result.resource_type = resource.resource_type;
        let entries = match resource.resource_type {
            RESOURCE_TOPIC => broker
                .engine
                .stream_info(resource.resource_name.as_str())
                .map(|info| topic_entries(broker, &info.config))
                .map_err(|error| (engine_error_code(&error), error.to_string())),
            RESOURCE_BROKER => Ok(broker_configs(broker)
                .into_iter()
                .map(|entry| (entry, SOURCE_STATIC_BROKER))
                .collect()),
            other => Err((
                ResponseError::InvalidRequest.code(),
                format!("resource type {other} has no configuration here"),
            )),
        };
        match entries {
            Ok(entries) => {
                result.error_code = NONE;
                result.configs = entries
                    .into_iter()
                    .filter(|(entry, _)| {
                        resource
                            .configuration_keys
                            .as_ref()
                            .is_none_or(|keys| keys.iter().any(|k| k.as_str() == entry.name))
                    })
                    .map(|(entry, source)| config_result(entry, source))
                    .collect();
            }
            Err((code, message)) => {
                result.error_code = code;
                result.error_message = Some(StrBytes::from_string(message));
            }
        }
        result.resource_name = resource.resource_name;
        response.results.push(result);
    }
    response
}

/// A topic's configs with where each value comes from: set on the topic (a dynamic topic
/// config, in Kafka's terms) or the broker's default — which is what admin tools' "modified
/// only" views and kafka-python's AlterConfigs fill-in rely on.
fn topic_entries(broker: &Broker, config: &StreamConfig) -> Vec<(ConfigEntry, i8)> {
    let defaults =
        topic_configs::describe(&config.with_settings(broker.engine.stream_defaults().settings()));
    topic_configs::describe(config)
        .into_iter()
        .map(|entry| {
            let is_default = defaults.contains(&entry);
            let source = if entry.from_stream && !is_default {
                SOURCE_TOPIC
            } else {
                SOURCE_DEFAULT
            };
            (entry, source)
        })
        .collect()
}

fn broker_configs(broker: &Broker) -> Vec<ConfigEntry> {
    let entry = |name, value: String, config_type| ConfigEntry {
        name,
        value,
        config_type,
        from_stream: true,
    };
    vec![
        entry(
            "auto.create.topics.enable",
            broker.config.auto_create_topics.to_string(),
            TYPE_BOOLEAN,
        ),
        entry("broker.id", "0".into(), TYPE_INT),
        entry(
            "socket.request.max.bytes",
            broker.config.frame_bytes_max.to_string(),
            TYPE_INT,
        ),
        entry(
            "max.connections",
            broker.config.connections_max.to_string(),
            TYPE_INT,
        ),
        entry(
            "advertised.listeners",
            format!("PLAINTEXT://{}:{}", broker.host, broker.port),
            TYPE_STRING,
        ),
    ]
}

fn config_result(entry: ConfigEntry, source: i8) -> DescribeConfigsResourceResult {
    let mut result = DescribeConfigsResourceResult::default();
    result.name = StrBytes::from_static_str(entry.name);
    result.value = Some(StrBytes::from_string(entry.value));
    result.read_only = !entry.from_stream;
    result.config_source = source;
    result.is_sensitive = false;
    result.config_type = entry.config_type;
    result
}
