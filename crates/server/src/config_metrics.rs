//! The `[metrics]` section of the configuration: whether the broker records its metrics
//! (docs/operations.md). On by default; `enabled = false` (or `--metrics-enabled false`,
//! `OMNIBUS_METRICS_ENABLED=false`) stops recording the storage counters and histograms on
//! the write path — what the publish benchmark compares — while `GET /metrics` still answers
//! with the gauges computed at scrape time.

use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsSection {
    pub enabled: bool,
}

impl Default for MetricsSection {
    fn default() -> Self {
        MetricsSection { enabled: true }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::ServerConfig;

    #[test]
    fn metrics_are_on_by_default_and_can_be_turned_off() {
        assert!(ServerConfig::default().metrics.enabled);
        let config = ServerConfig::from_toml("[metrics]\nenabled = false").unwrap();
        assert!(!config.metrics.enabled);
        assert!(ServerConfig::from_toml("[metrics]\nenable = false").is_err());
    }
}
