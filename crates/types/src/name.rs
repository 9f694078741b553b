//! Naming rules for streams and consumer groups.
//!
//! Stream names follow Kafka's topic rules (ASCII letters, digits, `.`, `_`, `-`; at most 249
//! bytes; not `.` or `..`) with one more character, `:`. Why `:`: it is how Redis keys are
//! spelled by convention (`orders:eu`, `events:user:42`), and a Redis stream key is the
//! stream of the same name, so refusing it refused most Redis users' first XADD; NATS allows
//! it in JetStream stream names too. Kafka does not, so the Kafka door keeps Kafka's own rule
//! when a client creates a topic ([`validate_kafka_topic_name`]); a stream named with `:`
//! is still listed and readable there by clients that do not check names themselves.

use crate::limits::{GROUP_NAME_BYTES_MAX, STREAM_NAME_BYTES_MAX};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameError(pub String);

impl std::fmt::Display for NameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NameError {}

pub fn validate_stream_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError("stream name is empty".into()));
    }
    if name.len() > STREAM_NAME_BYTES_MAX {
        return Err(NameError(format!(
            "stream name is {} bytes; the limit is {STREAM_NAME_BYTES_MAX}",
            name.len()
        )));
    }
    if name == "." || name == ".." {
        return Err(NameError(format!("stream name may not be {name:?}")));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':')))
    {
        return Err(NameError(format!(
            "stream name {name:?} contains {bad:?}; allowed are ASCII letters, digits, '.', '_', '-' and ':'"
        )));
    }
    Ok(())
}

/// Kafka's topic rule, for topics a Kafka client creates: a stream name without `:`.
pub fn validate_kafka_topic_name(name: &str) -> Result<(), NameError> {
    validate_stream_name(name)?;
    if name.contains(':') {
        return Err(NameError(format!(
            "topic name {name:?} contains ':'; Kafka allows ASCII letters, digits, '.', '_' and '-'"
        )));
    }
    Ok(())
}

/// Group names are free text (Kafka allows any string) but bounded and free of control
/// characters, because they appear in logs and metrics.
pub fn validate_group_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError("group name is empty".into()));
    }
    if name.len() > GROUP_NAME_BYTES_MAX {
        return Err(NameError(format!(
            "group name is {} bytes; the limit is {GROUP_NAME_BYTES_MAX}",
            name.len()
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(NameError("group name contains a control character".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_names_follow_kafka_topic_rules_and_allow_colons() {
        assert!(validate_stream_name("orders").is_ok());
        assert!(validate_stream_name("order.created_v1-x").is_ok());
        assert!(validate_stream_name("events:user:42").is_ok());
        assert!(validate_stream_name(":").is_ok());
        assert!(validate_stream_name("a\\b").is_err());
        assert!(validate_stream_name("a{b}").is_err());
        assert!(validate_stream_name("é").is_err());
        assert!(validate_stream_name("").is_err());
        assert!(validate_stream_name(".").is_err());
        assert!(validate_stream_name("..").is_err());
        assert!(validate_stream_name("a/b").is_err());
        assert!(validate_stream_name("a b").is_err());
        assert!(validate_stream_name(&"x".repeat(249)).is_ok());
        assert!(validate_stream_name(&"x".repeat(250)).is_err());
    }

    #[test]
    fn kafka_topic_names_are_stream_names_without_colons() {
        assert!(validate_kafka_topic_name("order.created_v1-x").is_ok());
        let refused = validate_kafka_topic_name("orders:eu").unwrap_err();
        assert!(refused.0.contains("contains ':'"), "{refused}");
        assert!(validate_kafka_topic_name("a/b").is_err());
        assert!(validate_kafka_topic_name(&"x".repeat(250)).is_err());
    }

    #[test]
    fn group_names_reject_control_characters() {
        assert!(validate_group_name("my group").is_ok());
        assert!(validate_group_name("bad\ngroup").is_err());
        assert!(validate_group_name("").is_err());
    }
}
