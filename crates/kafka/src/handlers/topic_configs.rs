//! Kafka topic configuration names and the stream settings they stand for, shared by
//! CreateTopics (applying them), IncrementalAlterConfigs and AlterConfigs (changing them) and
//! DescribeConfigs (reporting a stream's real values).

use omnibus_engine::config::parse_fsync;
use omnibus_engine::{FsyncPolicy, StreamConfig, StreamSettings, StreamSpec};

/// Kafka's "no limit" (-1) for retention; stored as the largest value the log handles as a
/// signed number of milliseconds or bytes.
const UNLIMITED: u64 = i64::MAX as u64;

/// Kafka topic configs that we accept and ignore, because they have no meaning here (one
/// replica, no compaction, producer-chosen compression and timestamps).
const IGNORED: &[&str] = &[
    "compression.type",
    "delete.retention.ms",
    "file.delete.delay.ms",
    "flush.messages",
    "flush.ms",
    "follower.replication.throttled.replicas",
    "index.interval.bytes",
    "leader.replication.throttled.replicas",
    "local.retention.bytes",
    "local.retention.ms",
    "max.compaction.lag.ms",
    "message.downconversion.enable",
    "message.format.version",
    "message.timestamp.after.max.ms",
    "message.timestamp.before.max.ms",
    "message.timestamp.difference.max.ms",
    "message.timestamp.type",
    "min.cleanable.dirty.ratio",
    "min.compaction.lag.ms",
    "min.insync.replicas",
    "preallocate",
    "remote.storage.enable",
    "segment.index.bytes",
    "segment.jitter.ms",
    "unclean.leader.election.enable",
];

/// Kafka's config resource types.
pub(crate) const RESOURCE_TOPIC: i8 = 2;
pub(crate) const RESOURCE_BROKER: i8 = 4;

/// Kafka's config types, as DescribeConfigs v3+ reports them.
pub(crate) const TYPE_STRING: i8 = 2;
pub(crate) const TYPE_INT: i8 = 3;
pub(crate) const TYPE_LONG: i8 = 5;

fn number(name: &str, value: &str) -> Result<i64, String> {
    value
        .trim()
        .parse::<i64>()
        .map_err(|_| format!("{name} must be a whole number, not {value:?}"))
}

fn non_negative(name: &str, value: &str) -> Result<u64, String> {
    u64::try_from(number(name, value)?).map_err(|_| format!("{name} must not be negative"))
}

/// A retention value: -1 is unlimited.
fn retention(name: &str, value: &str) -> Result<u64, String> {
    match number(name, value)? {
        -1 => Ok(UNLIMITED),
        n => u64::try_from(n).map_err(|_| format!("{name} must be -1 or at least 0")),
    }
}

/// One Kafka topic config, parsed: the stream setting it changes, with `None` for a null
/// value (the broker's default).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Setting {
    RetentionMs(Option<u64>),
    RetentionBytes(Option<u64>),
    SegmentBytes(Option<u64>),
    SegmentMs(Option<u64>),
    MessageBytesMax(Option<usize>),
    Fsync(Option<FsyncPolicy>),
    /// Known and valid, but nothing to change here (`IGNORED`, `cleanup.policy=delete`).
    Ignored,
}

/// Parses one config entry.
pub(crate) fn parse(name: &str, value: Option<&str>) -> Result<Setting, String> {
    let number =
        |parse: fn(&str, &str) -> Result<u64, String>| value.map(|v| parse(name, v)).transpose();
    Ok(match name {
        "retention.ms" => Setting::RetentionMs(number(retention)?),
        "retention.bytes" => Setting::RetentionBytes(number(retention)?),
        "segment.bytes" => Setting::SegmentBytes(number(non_negative)?),
        "segment.ms" => Setting::SegmentMs(number(non_negative)?),
        "max.message.bytes" => {
            Setting::MessageBytesMax(number(non_negative)?.map(|bytes| bytes as usize))
        }
        "cleanup.policy" => match value.map(str::trim) {
            None | Some("delete") => Setting::Ignored,
            Some(other) => {
                return Err(format!(
                    "cleanup.policy {other:?} is not supported; only \"delete\" is"
                ))
            }
        },
        "omnibus.fsync" => Setting::Fsync(value.map(parse_fsync).transpose()?),
        _ if IGNORED.contains(&name) => Setting::Ignored,
        _ => return Err(format!("unknown topic config {name:?}")),
    })
}

/// Applies one CreateTopics config entry to a stream spec; an unset field (a null value)
/// means the broker's default.
pub(crate) fn apply(spec: &mut StreamSpec, name: &str, value: Option<&str>) -> Result<(), String> {
    match parse(name, value)? {
        Setting::RetentionMs(ms) => spec.retention_ms = ms,
        Setting::RetentionBytes(bytes) => spec.retention_bytes = bytes,
        Setting::SegmentBytes(bytes) => spec.segment_bytes = bytes,
        Setting::SegmentMs(ms) => spec.segment_ms = ms,
        Setting::MessageBytesMax(bytes) => spec.message_bytes_max = bytes,
        Setting::Fsync(fsync) => spec.fsync = fsync,
        Setting::Ignored => {}
    }
    Ok(())
}

/// Sets one config on an existing stream's settings; `None` (a null value, or an
/// IncrementalAlterConfigs DELETE) restores the broker's default for it.
pub(crate) fn alter(
    settings: &mut StreamSettings,
    defaults: &StreamSettings,
    name: &str,
    value: Option<&str>,
) -> Result<(), String> {
    match parse(name, value)? {
        Setting::RetentionMs(ms) => settings.retention_ms = ms.or(defaults.retention_ms),
        Setting::RetentionBytes(bytes) => {
            settings.retention_bytes = bytes.or(defaults.retention_bytes)
        }
        Setting::SegmentBytes(bytes) => {
            settings.segment_bytes = bytes.unwrap_or(defaults.segment_bytes)
        }
        Setting::SegmentMs(ms) => settings.segment_ms = ms.unwrap_or(defaults.segment_ms),
        Setting::MessageBytesMax(bytes) => {
            settings.message_bytes_max = bytes.unwrap_or(defaults.message_bytes_max)
        }
        Setting::Fsync(fsync) => settings.fsync = fsync.unwrap_or(defaults.fsync),
        Setting::Ignored => {}
    }
    Ok(())
}

/// One config as a stream has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConfigEntry {
    pub name: &'static str,
    pub value: String,
    pub config_type: i8,
    /// Set by the stream (true) or fixed by this broker (false).
    pub from_stream: bool,
}

fn limit_text(value: Option<u64>) -> String {
    match value {
        None => "-1".into(),
        Some(n) if n >= UNLIMITED => "-1".into(),
        Some(n) => n.to_string(),
    }
}

/// A stream's configuration under Kafka's names.
pub(crate) fn describe(config: &StreamConfig) -> Vec<ConfigEntry> {
    let entry = |name, value: String, config_type, from_stream| ConfigEntry {
        name,
        value,
        config_type,
        from_stream,
    };
    vec![
        entry("cleanup.policy", "delete".into(), TYPE_STRING, false),
        entry("compression.type", "producer".into(), TYPE_STRING, false),
        entry(
            "max.message.bytes",
            config.message_bytes_max.to_string(),
            TYPE_INT,
            true,
        ),
        entry(
            "message.timestamp.type",
            "CreateTime".into(),
            TYPE_STRING,
            false,
        ),
        entry("min.insync.replicas", "1".into(), TYPE_INT, false),
        entry("omnibus.fsync", config.fsync.to_string(), TYPE_STRING, true),
        entry(
            "retention.bytes",
            limit_text(config.retention_bytes),
            TYPE_LONG,
            true,
        ),
        entry(
            "retention.ms",
            limit_text(config.retention_ms),
            TYPE_LONG,
            true,
        ),
        entry(
            "segment.bytes",
            config.segment_bytes.to_string(),
            TYPE_INT,
            true,
        ),
        entry("segment.ms", config.segment_ms.to_string(), TYPE_LONG, true),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_configs_map_onto_the_stream_spec() {
        let mut spec = StreamSpec::default();
        apply(&mut spec, "retention.ms", Some("60000")).unwrap();
        apply(&mut spec, "retention.bytes", Some("-1")).unwrap();
        apply(&mut spec, "max.message.bytes", Some("2048")).unwrap();
        apply(&mut spec, "cleanup.policy", Some("delete")).unwrap();
        apply(&mut spec, "min.insync.replicas", Some("2")).unwrap();
        apply(&mut spec, "omnibus.fsync", Some("interval:50")).unwrap();
        apply(&mut spec, "segment.ms", None).unwrap();
        assert_eq!(spec.retention_ms, Some(60_000));
        assert_eq!(spec.retention_bytes, Some(UNLIMITED));
        assert_eq!(spec.message_bytes_max, Some(2048));
        assert!(spec.fsync.is_some());
    }

    #[test]
    fn unsupported_or_malformed_configs_are_refused() {
        let mut spec = StreamSpec::default();
        assert!(apply(&mut spec, "cleanup.policy", Some("compact")).is_err());
        assert!(apply(&mut spec, "retention.ms", Some("soon")).is_err());
        assert!(apply(&mut spec, "retention.ms", Some("-2")).is_err());
        assert!(apply(&mut spec, "segment.bytes", Some("-5")).is_err());
        assert!(apply(&mut spec, "no.such.config", Some("1")).is_err());
        assert!(apply(&mut spec, "no.such.config", None).is_err());
    }

    #[test]
    fn altering_sets_values_and_a_null_restores_the_default() {
        let defaults = omnibus_engine::StreamDefaults::default().settings();
        let mut settings = defaults.clone();
        alter(&mut settings, &defaults, "retention.ms", Some("-1")).unwrap();
        alter(&mut settings, &defaults, "segment.bytes", Some("1048576")).unwrap();
        alter(&mut settings, &defaults, "min.insync.replicas", Some("2")).unwrap();
        assert_eq!(settings.retention_ms, Some(UNLIMITED));
        assert_eq!(settings.segment_bytes, 1_048_576);
        alter(&mut settings, &defaults, "retention.ms", None).unwrap();
        assert_eq!(settings.retention_ms, defaults.retention_ms);
        assert_eq!(settings.segment_bytes, 1_048_576, "others are kept");
        assert!(alter(&mut settings, &defaults, "cleanup.policy", Some("compact")).is_err());
        assert!(alter(&mut settings, &defaults, "no.such.config", None).is_err());
    }
}
