//! The `[redis]` section of the configuration: the Redis (RESP) listener. Off by default: a
//! real Redis may own port 6379 on the same machine.

use anyhow::bail;
use omnibus_redis::RedisConfig;
use serde::Deserialize;

use crate::config::{ServerConfig, LISTENER_OFF};

/// Redis's own `proto-max-bulk-len`; we do not accept more.
const BULK_BYTES_CEILING: usize = 512 * 1024 * 1024;
/// Most entries the slow log may keep (each holds up to 32 arguments of 128 bytes).
const SLOWLOG_LEN_CEILING: usize = 100_000;
/// Most threads the Redis listener may have of its own.
const IO_THREADS_CEILING: usize = 256;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisSection {
    /// `host:port`, or `off` (the default) for no Redis listener.
    pub listen: String,
    /// Most Redis connections open at once.
    pub connections_max: usize,
    /// Largest bulk string (one key, value or argument).
    pub bulk_bytes_max: usize,
    /// Whether FLUSHALL / FLUSHDB may delete every key.
    pub flushall_enabled: bool,
    /// Threads of its own the listener serves connections on; 0 shares the broker's runtime.
    pub io_threads: usize,
    /// Commands running at least this many microseconds are kept in the slow log (SLOWLOG);
    /// negative: none are.
    pub slowlog_slower_than_us: i64,
    /// Entries the slow log keeps.
    pub slowlog_max_len: usize,
    /// Keyspace notification classes at start, as Redis's `notify-keyspace-events` (`Ex`:
    /// expired keys on `__keyevent@0__:expired`); CONFIG SET changes them while running.
    pub notify_keyspace_events: String,
}

impl Default for RedisSection {
    fn default() -> Self {
        let redis = RedisConfig::default();
        RedisSection {
            listen: LISTENER_OFF.to_string(),
            connections_max: redis.connections_max,
            bulk_bytes_max: redis.bulk_bytes_max,
            flushall_enabled: redis.flushall_enabled,
            io_threads: redis.io_threads,
            slowlog_slower_than_us: redis.slowlog_slower_than_us,
            slowlog_max_len: redis.slowlog_max_len,
            notify_keyspace_events: redis.notify_keyspace_events,
        }
    }
}

impl ServerConfig {
    pub(crate) fn validate_redis(&self) -> anyhow::Result<()> {
        let redis = &self.redis;
        if redis.listen.trim().is_empty() {
            bail!("redis.listen must not be empty (use \"{LISTENER_OFF}\" to turn it off)");
        }
        if redis.connections_max == 0 {
            bail!("redis.connections_max must be positive");
        }
        if !(1024..=BULK_BYTES_CEILING).contains(&redis.bulk_bytes_max) {
            bail!(
                "redis.bulk_bytes_max {} must be between 1024 and {BULK_BYTES_CEILING}",
                redis.bulk_bytes_max
            );
        }
        if let Err(refusal) =
            omnibus_redis::parse_notify_keyspace_events(&redis.notify_keyspace_events)
        {
            bail!("redis.notify_keyspace_events: {refusal}");
        }
        if redis.slowlog_max_len > SLOWLOG_LEN_CEILING {
            bail!(
                "redis.slowlog_max_len {} must be at most {SLOWLOG_LEN_CEILING}",
                redis.slowlog_max_len
            );
        }
        if redis.io_threads > IO_THREADS_CEILING {
            bail!(
                "redis.io_threads {} must be at most {IO_THREADS_CEILING}",
                redis.io_threads
            );
        }
        Ok(())
    }

    /// Where the Redis listener binds; `None` when it is turned off (the default).
    pub fn redis_listen(&self) -> Option<&str> {
        let listen = self.redis.listen.trim();
        (!listen.eq_ignore_ascii_case(LISTENER_OFF)).then_some(listen)
    }

    pub fn redis_config(&self) -> RedisConfig {
        let defaults = RedisConfig::default();
        RedisConfig {
            connections_max: self.redis.connections_max,
            bulk_bytes_max: self.redis.bulk_bytes_max,
            // A whole request holds at least one bulk string and its command.
            request_bytes_max: defaults
                .request_bytes_max
                .max(self.redis.bulk_bytes_max + 1024 * 1024),
            flushall_enabled: self.redis.flushall_enabled,
            io_threads: self.redis.io_threads,
            slowlog_slower_than_us: self.redis.slowlog_slower_than_us,
            slowlog_max_len: self.redis.slowlog_max_len,
            notify_keyspace_events: self.redis.notify_keyspace_events.clone(),
            ..defaults
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_redis_listener_is_off_by_default_and_listen_turns_it_on() {
        let mut config = ServerConfig::default();
        assert_eq!(config.redis_listen(), None);
        config.redis.listen = "127.0.0.1:6379".into();
        assert_eq!(config.redis_listen(), Some("127.0.0.1:6379"));
        assert!(!config.redis_config().flushall_enabled);
        let parsed: ServerConfig =
            toml::from_str("[redis]\nlisten = \"127.0.0.1:0\"\nflushall_enabled = true\n").unwrap();
        assert_eq!(parsed.redis_listen(), Some("127.0.0.1:0"));
        assert!(parsed.redis_config().flushall_enabled);
        config.redis.bulk_bytes_max = 10;
        assert!(config.validate().is_err());
    }

    #[test]
    fn the_redis_door_has_threads_of_its_own_unless_told_zero() {
        let config = ServerConfig::default();
        assert_eq!(
            config.redis_config().io_threads,
            omnibus_redis::default_io_threads()
        );
        assert!(config.redis_config().io_threads >= 1);
        let parsed: ServerConfig = toml::from_str("[redis]\nio_threads = 0\n").unwrap();
        assert_eq!(parsed.redis_config().io_threads, 0);
        let mut too_many = ServerConfig::default();
        too_many.redis.io_threads = 257;
        let refused = too_many.validate().unwrap_err().to_string();
        assert!(refused.contains("redis.io_threads"), "{refused}");
    }

    #[test]
    fn the_slow_log_is_configured_in_the_redis_section() {
        let defaults = ServerConfig::default().redis_config();
        assert_eq!(defaults.slowlog_slower_than_us, 10_000);
        assert_eq!(defaults.slowlog_max_len, 128);
        let parsed: ServerConfig =
            toml::from_str("[redis]\nslowlog_slower_than_us = -1\nslowlog_max_len = 5\n").unwrap();
        assert_eq!(parsed.redis_config().slowlog_slower_than_us, -1);
        assert_eq!(parsed.redis_config().slowlog_max_len, 5);
        let notified: ServerConfig =
            toml::from_str("[redis]\nnotify_keyspace_events = \"Ex\"\n").unwrap();
        assert_eq!(notified.redis_config().notify_keyspace_events, "Ex");
        assert!(notified.validate().is_ok());
        let mut unserved = ServerConfig::default();
        unserved.redis.notify_keyspace_events = "KEAq".into();
        let refused = unserved.validate().unwrap_err().to_string();
        assert!(refused.contains("notify_keyspace_events"), "{refused}");
        let mut too_long = ServerConfig::default();
        too_long.redis.slowlog_max_len = 100_001;
        let refused = too_long.validate().unwrap_err().to_string();
        assert!(refused.contains("redis.slowlog_max_len"), "{refused}");
    }
}
