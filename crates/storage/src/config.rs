//! Per-partition log settings.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// When an append is acknowledged relative to fsync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// Acknowledge only after the bytes are fsynced (group-committed). The default.
    Always,
    /// Acknowledge after the write; fsync at most this many milliseconds later.
    IntervalMs(u64),
    /// Acknowledge after the write; fsync only when a segment closes or the broker stops.
    Never,
}

impl fmt::Display for FsyncPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FsyncPolicy::Always => f.write_str("always"),
            FsyncPolicy::IntervalMs(ms) => write!(f, "interval:{ms}"),
            FsyncPolicy::Never => f.write_str("never"),
        }
    }
}

impl FromStr for FsyncPolicy {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "always" => Ok(FsyncPolicy::Always),
            "never" => Ok(FsyncPolicy::Never),
            other => {
                let ms = other
                    .strip_prefix("interval:")
                    .and_then(|ms| ms.parse::<u64>().ok())
                    .filter(|ms| *ms > 0 && *ms <= 3_600_000)
                    .ok_or_else(|| {
                        format!(
                            "fsync policy {other:?} is not one of always, never, interval:<ms> (1..=3600000)"
                        )
                    })?;
                Ok(FsyncPolicy::IntervalMs(ms))
            }
        }
    }
}

impl Serialize for FsyncPolicy {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for FsyncPolicy {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Settings of one partition log.
#[derive(Debug, Clone, PartialEq)]
pub struct LogConfig {
    /// Roll the active segment when the next append would push it past this size.
    pub segment_bytes: u64,
    /// Roll the active segment once it is this old and not empty.
    pub segment_ms: u64,
    /// Add a sparse index entry at least every this many bytes of log.
    pub index_interval_bytes: u32,
    pub retention_ms: Option<u64>,
    pub retention_bytes: Option<u64>,
    pub fsync: FsyncPolicy,
    /// Largest accepted batch.
    pub batch_bytes_max: usize,
    /// Appends wait while this many bytes are queued but not yet written.
    pub pending_bytes_max: usize,
}

/// Positions inside a segment are stored as u32, so no segment may exceed this.
pub const SEGMENT_BYTES_CEILING: u64 = 1 << 31;
const _: () = assert!(SEGMENT_BYTES_CEILING >= omnibus_types::limits::BATCH_BYTES_MAX as u64);

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 128 * 1024 * 1024,
            segment_ms: 7 * 24 * 3600 * 1000,
            index_interval_bytes: 4096,
            retention_ms: None,
            retention_bytes: None,
            fsync: FsyncPolicy::Always,
            batch_bytes_max: omnibus_types::limits::BATCH_BYTES_MAX,
            pending_bytes_max: 64 * 1024 * 1024,
        }
    }
}

impl LogConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.segment_bytes < 1024 || self.segment_bytes > SEGMENT_BYTES_CEILING {
            return Err(format!(
                "segment_bytes {} must be between 1024 and {SEGMENT_BYTES_CEILING}",
                self.segment_bytes
            ));
        }
        if self.segment_ms == 0 || self.segment_ms > i64::MAX as u64 {
            return Err("segment_ms must be positive and at most i64::MAX".into());
        }
        // Retention is compared against signed millisecond timestamps: a larger value would
        // wrap negative and delete everything.
        if self.retention_ms.is_some_and(|ms| ms > i64::MAX as u64) {
            return Err("retention_ms must be at most i64::MAX".into());
        }
        if self.index_interval_bytes == 0 {
            return Err("index_interval_bytes must be positive".into());
        }
        if self.batch_bytes_max == 0
            || self.batch_bytes_max > omnibus_types::limits::BATCH_BYTES_MAX
        {
            return Err(format!(
                "batch_bytes_max must be between 1 and {}",
                omnibus_types::limits::BATCH_BYTES_MAX
            ));
        }
        if self.pending_bytes_max < self.batch_bytes_max {
            return Err("pending_bytes_max must be at least batch_bytes_max".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fsync_policy_round_trips_through_text() {
        for text in ["always", "never", "interval:250"] {
            let policy: FsyncPolicy = text.parse().unwrap();
            assert_eq!(policy.to_string(), text);
        }
        assert!("interval:0".parse::<FsyncPolicy>().is_err());
        assert!("sometimes".parse::<FsyncPolicy>().is_err());
    }

    #[test]
    fn retention_that_would_wrap_negative_is_refused() {
        let config = LogConfig {
            retention_ms: Some(u64::MAX),
            ..LogConfig::default()
        };
        assert!(config.validate().is_err());
        let forever = LogConfig {
            retention_ms: Some(i64::MAX as u64),
            ..LogConfig::default()
        };
        assert!(forever.validate().is_ok());
    }
}
