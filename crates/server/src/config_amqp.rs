//! The `[amqp]` section of the configuration: the AMQP 0-9-1 listener. Kept beside
//! `config.rs` rather than in it so each front door's settings read on their own.

use anyhow::bail;
use omnibus_amqp::AmqpConfig;
use serde::Deserialize;

use crate::config::{ServerConfig, LISTENER_OFF};

/// RabbitMQ's lower bound for frame_max is the spec's 4096; we do not offer more than 1 MiB,
/// since a frame is buffered whole.
const FRAME_MAX_CEILING: u32 = 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AmqpSection {
    /// `host:port`, or `off` for no AMQP listener.
    pub listen: String,
    /// Largest frame offered in connection.tune, in bytes.
    pub frame_max: u32,
    /// Heartbeat offered in connection.tune, in seconds; 0 offers none.
    pub heartbeat_s: u16,
    /// Most AMQP connections open at once.
    pub connections_max: usize,
    /// Most channels one connection may open.
    pub channel_max: u16,
    /// Largest message body.
    pub message_bytes_max: u64,
    /// Unacknowledged deliveries one channel may hold whatever its prefetch.
    pub unacked_per_channel_max: u32,
}

impl Default for AmqpSection {
    fn default() -> Self {
        let amqp = AmqpConfig::default();
        AmqpSection {
            listen: "127.0.0.1:5672".to_string(),
            frame_max: amqp.frame_max,
            heartbeat_s: amqp.heartbeat.as_secs() as u16,
            connections_max: amqp.connections_max,
            channel_max: amqp.channel_max,
            message_bytes_max: amqp.message_bytes_max,
            unacked_per_channel_max: amqp.unacked_per_channel_max,
        }
    }
}

impl ServerConfig {
    pub(crate) fn validate_amqp(&self) -> anyhow::Result<()> {
        let amqp = &self.amqp;
        if amqp.listen.trim().is_empty() {
            bail!("amqp.listen must not be empty (use \"{LISTENER_OFF}\" to turn it off)");
        }
        if !(4096..=FRAME_MAX_CEILING).contains(&amqp.frame_max) {
            bail!(
                "amqp.frame_max {} must be between 4096 and {FRAME_MAX_CEILING}",
                amqp.frame_max
            );
        }
        if amqp.connections_max == 0 || amqp.channel_max == 0 || amqp.unacked_per_channel_max == 0 {
            bail!("amqp.connections_max, channel_max and unacked_per_channel_max must be positive");
        }
        if amqp.message_bytes_max == 0 {
            bail!("amqp.message_bytes_max must be positive");
        }
        Ok(())
    }

    /// Where the AMQP listener binds; `None` when it is turned off.
    pub fn amqp_listen(&self) -> Option<&str> {
        let listen = self.amqp.listen.trim();
        (!listen.eq_ignore_ascii_case(LISTENER_OFF)).then_some(listen)
    }

    pub fn amqp_config(&self) -> AmqpConfig {
        AmqpConfig {
            frame_max: self.amqp.frame_max,
            heartbeat: std::time::Duration::from_secs(u64::from(self.amqp.heartbeat_s)),
            connections_max: self.amqp.connections_max,
            channel_max: self.amqp.channel_max,
            message_bytes_max: self.amqp.message_bytes_max,
            unacked_per_channel_max: self.amqp.unacked_per_channel_max,
            ..AmqpConfig::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_amqp_listener_is_on_by_default_and_off_turns_it_off() {
        let mut config = ServerConfig::default();
        assert_eq!(config.amqp_listen(), Some("127.0.0.1:5672"));
        assert_eq!(config.amqp_config().frame_max, 128 * 1024);
        config.amqp.listen = "off".into();
        assert_eq!(config.amqp_listen(), None);
        let parsed: ServerConfig = toml::from_str("[amqp]\nlisten = \"127.0.0.1:0\"\n").unwrap();
        assert_eq!(parsed.amqp_listen(), Some("127.0.0.1:0"));
        config.amqp.frame_max = 100;
        assert!(config.validate().is_err());
    }
}
