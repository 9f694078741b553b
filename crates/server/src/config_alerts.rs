//! The `[alerts]` section: the evaluator, `[[alerts.rules]]` and `[[alerts.webhooks]]`.
//!
//! ```toml
//! [[alerts.rules]]
//! name = "billing_behind"
//! kind = "consumer_lag"      # consumer_lag, dlq_depth, queue_oldest_age, disk_free, io_poisoned, keyspace_used
//! target = "orders/billing"  # a glob; absent: every target of the kind
//! threshold = 300
//! unit = "seconds"           # consumer_lag only: records (default) or seconds
//! for_seconds = 60
//!
//! [[alerts.webhooks]]
//! url = "http://127.0.0.1:9000/hooks/omnibus"
//! ```

use std::collections::BTreeSet;

use anyhow::bail;
use omnibus_engine::alerts::{validate_rule, WEBHOOKS_MAX};
use omnibus_engine::AlertRule;
use serde::Deserialize;

use crate::config::ServerConfig;

/// Bounds of a webhook's settings.
const WEBHOOK_TIMEOUT_MS_MAX: u64 = 60_000;
const WEBHOOK_RETRIES_MAX: u32 = 10;
const WEBHOOK_QUEUE_MAX: usize = 100_000;
const WEBHOOK_URL_BYTES_MAX: usize = 2_048;
const EVALUATE_INTERVAL_MS_MIN: u64 = 100;
const EVALUATE_INTERVAL_MS_MAX: u64 = 60_000;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertsSection {
    /// Whether alarms are evaluated at all (on by default: the default rules need no config).
    pub enabled: bool,
    pub evaluate_interval_ms: u64,
    pub rules: Vec<AlertRule>,
    pub webhooks: Vec<WebhookSection>,
}

impl Default for AlertsSection {
    fn default() -> Self {
        AlertsSection {
            enabled: true,
            evaluate_interval_ms: 1_000,
            rules: Vec::new(),
            webhooks: Vec::new(),
        }
    }
}

/// One webhook: every firing and resolved transition is POSTed to `url` as JSON.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookSection {
    /// An `http://` URL (the binary carries no TLS client yet).
    pub url: String,
    /// Each attempt's limit, connecting included.
    pub timeout_ms: u64,
    /// Attempts after the first; the wait doubles from `backoff_ms` (at most 30 s).
    pub retries_max: u32,
    pub backoff_ms: u64,
    /// Transitions waiting at most; the oldest is dropped (and counted) for a new one.
    pub queue_max: usize,
}

impl Default for WebhookSection {
    fn default() -> Self {
        WebhookSection {
            url: String::new(),
            timeout_ms: 5_000,
            retries_max: 5,
            backoff_ms: 500,
            queue_max: 1_000,
        }
    }
}

impl ServerConfig {
    pub(crate) fn validate_alerts(&self) -> anyhow::Result<()> {
        let alerts = &self.alerts;
        if !(EVALUATE_INTERVAL_MS_MIN..=EVALUATE_INTERVAL_MS_MAX)
            .contains(&alerts.evaluate_interval_ms)
        {
            bail!(
                "alerts.evaluate_interval_ms {} must be between {EVALUATE_INTERVAL_MS_MIN} and {EVALUATE_INTERVAL_MS_MAX}",
                alerts.evaluate_interval_ms
            );
        }
        let mut names = BTreeSet::new();
        for rule in &alerts.rules {
            if let Err(problem) = validate_rule(rule) {
                bail!("alerts.rules: {problem}");
            }
            if !names.insert(rule.name.as_str()) {
                bail!("alerts.rules: two rules are named {:?}", rule.name);
            }
        }
        if alerts.webhooks.len() > WEBHOOKS_MAX {
            bail!("alerts.webhooks: at most {WEBHOOKS_MAX} webhooks");
        }
        for webhook in &alerts.webhooks {
            validate_webhook(webhook)?;
        }
        Ok(())
    }
}

fn validate_webhook(webhook: &WebhookSection) -> anyhow::Result<()> {
    let url = &webhook.url;
    if url.len() > WEBHOOK_URL_BYTES_MAX {
        bail!("alerts.webhooks: url is longer than {WEBHOOK_URL_BYTES_MAX} bytes");
    }
    let parsed = match reqwest::Url::parse(url) {
        Ok(parsed) => parsed,
        Err(error) => bail!("alerts.webhooks: url {url:?} is not a URL: {error}"),
    };
    if parsed.scheme() != "http" || parsed.host().is_none() {
        bail!("alerts.webhooks: url {url:?} must be an http:// URL with a host");
    }
    if !(1..=WEBHOOK_TIMEOUT_MS_MAX).contains(&webhook.timeout_ms) {
        bail!("alerts.webhooks: timeout_ms must be between 1 and {WEBHOOK_TIMEOUT_MS_MAX}");
    }
    if webhook.retries_max > WEBHOOK_RETRIES_MAX {
        bail!("alerts.webhooks: retries_max must be at most {WEBHOOK_RETRIES_MAX}");
    }
    if !(1..=WEBHOOK_QUEUE_MAX).contains(&webhook.queue_max) {
        bail!("alerts.webhooks: queue_max must be between 1 and {WEBHOOK_QUEUE_MAX}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> anyhow::Result<ServerConfig> {
        let config: ServerConfig = toml::from_str(text)?;
        config.validate()?;
        Ok(config)
    }

    #[test]
    fn rules_and_webhooks_load_from_toml() {
        let config = parsed(
            r#"
[[alerts.rules]]
name = "billing_behind"
kind = "consumer_lag"
target = "orders/billing"
threshold = 300
unit = "seconds"
for_seconds = 60

[[alerts.webhooks]]
url = "http://127.0.0.1:9000/hooks"
timeout_ms = 200
"#,
        )
        .unwrap();
        assert!(config.alerts.enabled, "on by default");
        assert_eq!(config.alerts.rules[0].threshold, 300.0);
        assert_eq!(config.alerts.webhooks[0].timeout_ms, 200);
        assert_eq!(config.alerts.webhooks[0].retries_max, 5);
        let engine = config.engine_config();
        assert!(engine.alerts.enabled);
        assert_eq!(engine.alerts.rules.len(), 1);
    }

    #[test]
    fn invalid_rules_and_webhooks_are_refused_by_name() {
        let cases = [
            (
                "[[alerts.rules]]\nname = \"x\"\nkind = \"disk_free\"\nthreshold = 120",
                "percentage",
            ),
            ("[[alerts.rules]]\nname = \"x\"\nkind = \"lag\"", "unknown variant"),
            (
                "[[alerts.rules]]\nname = \"x\"\nkind = \"dlq_depth\"\n[[alerts.rules]]\nname = \"x\"\nkind = \"dlq_depth\"",
                "two rules",
            ),
            ("[[alerts.webhooks]]\nurl = \"ftp://host/x\"", "http://"),
            ("[[alerts.webhooks]]\nurl = \"not a url\"", "not a URL"),
            (
                "[[alerts.webhooks]]\nurl = \"http://h/\"\ntimeout_ms = 0",
                "timeout_ms",
            ),
        ];
        for (text, problem) in cases {
            let error = format!("{:#}", parsed(text).unwrap_err());
            assert!(error.contains(problem), "{text}: {error}");
        }
    }
}
