//! Changing topic configs: IncrementalAlterConfigs and AlterConfigs, read back through
//! DescribeConfigs and the engine.

use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use super::{fixture, Fixture};

fn text(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_string())
}

/// (name, operation, value) → one IncrementalAlterConfigs resource.
fn incremental(
    resource_type: i8,
    topic: &str,
    configs: &[(&str, i8, Option<&str>)],
) -> incremental_alter_configs_request::AlterConfigsResource {
    let mut resource = incremental_alter_configs_request::AlterConfigsResource::default();
    resource.resource_type = resource_type;
    resource.resource_name = text(topic);
    resource.configs = configs
        .iter()
        .map(|(name, operation, value)| {
            let mut config = incremental_alter_configs_request::AlterableConfig::default();
            config.name = text(name);
            config.config_operation = *operation;
            config.value = value.map(text);
            config
        })
        .collect();
    resource
}

/// Error codes, one per resource, of an IncrementalAlterConfigs request.
async fn alter_incrementally(
    fixture: &Fixture,
    resources: Vec<incremental_alter_configs_request::AlterConfigsResource>,
    validate_only: bool,
) -> Vec<i16> {
    let mut request = IncrementalAlterConfigsRequest::default();
    request.resources = resources;
    request.validate_only = validate_only;
    let ResponseKind::IncrementalAlterConfigs(response) = fixture
        .respond(ApiKey::IncrementalAlterConfigs, request, 1)
        .await
    else {
        panic!("not an IncrementalAlterConfigs response")
    };
    response.responses.iter().map(|r| r.error_code).collect()
}

/// A topic's configs as DescribeConfigs reports them.
async fn describe(fixture: &Fixture, topic: &str) -> Vec<(String, String)> {
    let mut resource = describe_configs_request::DescribeConfigsResource::default();
    resource.resource_type = 2;
    resource.resource_name = text(topic);
    resource.configuration_keys = None;
    let mut request = DescribeConfigsRequest::default();
    request.resources = vec![resource];
    let ResponseKind::DescribeConfigs(response) =
        fixture.respond(ApiKey::DescribeConfigs, request, 4).await
    else {
        panic!("not a DescribeConfigs response")
    };
    assert_eq!(response.results[0].error_code, 0);
    assert!(response.results[0].configs.len() > 5);
    response.results[0]
        .configs
        .iter()
        .map(|c| {
            let value = c.value.as_ref().map(|v| v.to_string()).unwrap_or_default();
            (c.name.to_string(), value)
        })
        .collect()
}

fn value_of(configs: &[(String, String)], name: &str) -> String {
    configs
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| panic!("{name} not described"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_changes_set_and_reset_single_configs_and_keep_the_others() {
    let fixture = fixture().await;
    fixture.create("t", 2).await;
    let defaults = describe(&fixture, "t").await;

    let set = incremental(
        2,
        "t",
        &[
            ("retention.ms", 0, Some("60000")),
            ("segment.bytes", 0, Some("1048576")),
        ],
    );
    // validate_only: accepted, nothing changes.
    assert_eq!(
        alter_incrementally(&fixture, vec![set.clone()], true).await,
        [0]
    );
    assert_eq!(describe(&fixture, "t").await, defaults);

    assert_eq!(alter_incrementally(&fixture, vec![set], false).await, [0]);
    let configs = describe(&fixture, "t").await;
    assert_eq!(value_of(&configs, "retention.ms"), "60000");
    assert_eq!(value_of(&configs, "segment.bytes"), "1048576");
    let settings = fixture.engine().stream_info("t").unwrap().config;
    assert_eq!(settings.retention_ms, Some(60_000));
    assert_eq!(settings.partitions, 2);

    // DELETE restores the default of that one config.
    let reset = incremental(2, "t", &[("retention.ms", 1, None)]);
    assert_eq!(alter_incrementally(&fixture, vec![reset], false).await, [0]);
    let configs = describe(&fixture, "t").await;
    assert_eq!(
        value_of(&configs, "retention.ms"),
        value_of(&defaults, "retention.ms")
    );
    assert_eq!(value_of(&configs, "segment.bytes"), "1048576");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_config_changes_are_refused_per_resource_and_change_nothing() {
    let fixture = fixture().await;
    // One topic per bad resource: a topic named twice in a request is refused as such.
    for topic in ["t", "t2", "t3", "t4"] {
        fixture.create(topic, 1).await;
    }
    let before = describe(&fixture, "t").await;
    let codes = alter_incrementally(
        &fixture,
        vec![
            // One bad entry refuses the whole resource, including its good entry.
            incremental(
                2,
                "t",
                &[
                    ("retention.ms", 0, Some("1000")),
                    ("cleanup.policy", 0, Some("compact")),
                ],
            ),
            incremental(2, "t2", &[("retention.ms", 2, Some("5"))]),
            incremental(2, "t3", &[("no.such.config", 0, Some("1"))]),
            incremental(2, "t4", &[("segment.bytes", 0, Some("10"))]),
            incremental(2, "missing", &[("retention.ms", 0, Some("1000"))]),
            incremental(4, "0", &[("log.retention.ms", 0, Some("1000"))]),
            incremental(7, "x", &[]),
        ],
        false,
    )
    .await;
    assert_eq!(codes, [40, 40, 40, 40, 3, 40, 42]);
    // A resource named twice, or a config named twice in one resource: INVALID_REQUEST.
    let codes = alter_incrementally(
        &fixture,
        vec![
            incremental(2, "t", &[("retention.ms", 0, Some("1000"))]),
            incremental(2, "t", &[("retention.ms", 0, Some("2000"))]),
            incremental(
                2,
                "t2",
                &[("segment.ms", 0, Some("1000")), ("segment.ms", 1, None)],
            ),
        ],
        false,
    )
    .await;
    assert_eq!(codes, [42, 42, 42]);
    assert_eq!(describe(&fixture, "t").await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alter_configs_replaces_the_whole_set_so_unnamed_configs_return_to_defaults() {
    let fixture = fixture().await;
    fixture.create("t", 1).await;
    let defaults = describe(&fixture, "t").await;
    let first = incremental(
        2,
        "t",
        &[
            ("retention.ms", 0, Some("60000")),
            ("max.message.bytes", 0, Some("2048")),
        ],
    );
    assert_eq!(alter_incrementally(&fixture, vec![first], false).await, [0]);

    let mut config = alter_configs_request::AlterableConfig::default();
    config.name = text("retention.bytes");
    config.value = Some(text("1000000"));
    let mut resource = alter_configs_request::AlterConfigsResource::default();
    resource.resource_type = 2;
    resource.resource_name = text("t");
    resource.configs = vec![config];
    let mut request = AlterConfigsRequest::default();
    request.resources = vec![resource];
    let ResponseKind::AlterConfigs(response) =
        fixture.respond(ApiKey::AlterConfigs, request, 1).await
    else {
        panic!("not an AlterConfigs response")
    };
    assert_eq!(response.responses[0].error_code, 0);
    let configs = describe(&fixture, "t").await;
    assert_eq!(value_of(&configs, "retention.bytes"), "1000000");
    assert_eq!(
        value_of(&configs, "retention.ms"),
        value_of(&defaults, "retention.ms")
    );
    assert_eq!(
        value_of(&configs, "max.message.bytes"),
        value_of(&defaults, "max.message.bytes")
    );
}
