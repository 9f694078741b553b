//! DescribeConfigs (key 32): a topic's real settings (its stream's configuration under Kafka's
//! names) and a few broker settings; optionally only the keys asked for.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::protocol::StrBytes;

use super::errors::{engine_error_code, NONE};
use super::topic_configs::{self, ConfigEntry, TYPE_INT, TYPE_STRING};
use super::Broker;

const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;
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
                .map(|info| (topic_configs::describe(&info.config), SOURCE_TOPIC))
                .map_err(|error| (engine_error_code(&error), error.to_string())),
            RESOURCE_BROKER => Ok((broker_configs(broker), SOURCE_STATIC_BROKER)),
            other => Err((
                ResponseError::InvalidRequest.code(),
                format!("resource type {other} has no configuration here"),
            )),
        };
        match entries {
            Ok((entries, source)) => {
                result.error_code = NONE;
                result.configs = entries
                    .into_iter()
                    .filter(|entry| {
                        resource
                            .configuration_keys
                            .as_ref()
                            .is_none_or(|keys| keys.iter().any(|k| k.as_str() == entry.name))
                    })
                    .map(|entry| config_result(entry, source))
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
    result.config_source = if entry.from_stream {
        source
    } else {
        SOURCE_DEFAULT
    };
    result.is_sensitive = false;
    result.config_type = entry.config_type;
    result
}
