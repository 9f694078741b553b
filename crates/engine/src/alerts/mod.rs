//! Alarms: rules over the engine's in-memory state (consumer lag, dead letters, the oldest
//! waiting message, free disk, partitions and queues poisoned by an I/O error), evaluated every
//! second, whose firing and resolved transitions are recorded durably, published live on
//! `$sys.alerts.<kind>` and offered to subscribers (the server's webhooks).
//!
//! - `rules.rs`: the rule model, its validation, the default rules and target globs.
//! - `evaluator.rs`: the pure state machine: rules + observations + time → transitions.
//! - `observe.rs`: what the evaluator looks at, gathered from memory (no log reads), with the
//!   arrival-time samples that turn an offset into an age.
//! - `store.rs`: the durable part (API rules, the last [`HISTORY_MAX`] transitions) and the
//!   evaluation loop.
//! - `time.rs`: RFC 3339 timestamps.
//!
//! Protocol-neutral like the rest of the engine: webhooks are sent by the server, which
//! subscribes with [`Engine::subscribe_alert_transitions`] and reports its delivery counts
//! back with [`Engine::report_webhook_status`] so every door can show them.

mod evaluator;
mod observe;
mod rules;
mod store;
mod time;

#[cfg(test)]
mod observe_tests;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

pub use evaluator::{Evaluation, Evaluator, Observation};
pub use rules::{default_rules, glob_matches, validate_rule, RULES_MAX};
pub use time::format_rfc3339_ms;

pub(crate) use store::{spawn_evaluator, AlertsState};

use crate::engine::Engine;
use crate::error::{EngineError, Result};

/// Transitions kept in the state store (and alarms listed); older ones are deleted.
pub const HISTORY_MAX: usize = 1_000;
/// Most transitions one evaluation records, publishes and hands to webhooks: a flood of
/// alarms (a thousand queues dead-lettering at once) is spread over the following seconds
/// instead of arriving at once. A condition that clears meanwhile never fires.
pub const TRANSITIONS_PER_TICK_MAX: usize = 100;
/// Transitions a slow subscriber may fall behind by before it misses the oldest ones.
pub const SUBSCRIBER_BACKLOG_MAX: usize = 1_024;
/// Most webhooks whose status the engine keeps.
pub const WEBHOOKS_MAX: usize = 64;

/// What a rule watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// A cursor group's or an acked consumer's lag on a stream, in records or in seconds
    /// (`unit`). Target `<stream>/<group>` or `<stream>/<consumer>`.
    ConsumerLag,
    /// Dead letters of a queue not yet redriven. Target: the queue.
    DlqDepth,
    /// Seconds the oldest unfinished message of a queue has waited, while any is ready.
    /// Target: the queue.
    QueueOldestAge,
    /// Percent of the data folder's filesystem still free; fires *below* the threshold.
    /// Target: the data folder.
    DiskFree,
    /// A partition (`<stream>/<partition>`) or a queue that refuses work after an I/O error.
    IoPoisoned,
    /// Percent of the keyspace's byte bound in use (the Redis door's keys: past the bound,
    /// writes are refused). Target: `keyspace`.
    KeyspaceUsed,
}

impl AlertKind {
    /// Every kind, in declaration order.
    pub const ALL: [AlertKind; 6] = [
        AlertKind::ConsumerLag,
        AlertKind::DlqDepth,
        AlertKind::QueueOldestAge,
        AlertKind::DiskFree,
        AlertKind::IoPoisoned,
        AlertKind::KeyspaceUsed,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::ConsumerLag => "consumer_lag",
            AlertKind::DlqDepth => "dlq_depth",
            AlertKind::QueueOldestAge => "queue_oldest_age",
            AlertKind::DiskFree => "disk_free",
            AlertKind::IoPoisoned => "io_poisoned",
            AlertKind::KeyspaceUsed => "keyspace_used",
        }
    }

    /// The live subject its transitions are published on.
    pub fn subject(self) -> String {
        format!("$sys.alerts.{}", self.as_str())
    }

    /// Whether a value beyond the threshold is one *below* it (free disk) rather than above.
    pub fn fires_below(self) -> bool {
        self == AlertKind::DiskFree
    }
}

/// The unit of a `consumer_lag` rule's threshold.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LagUnit {
    #[default]
    Records,
    /// Age of the oldest record the group has not consumed.
    Seconds,
}

/// Where a rule comes from. A rule of a later source replaces one of the same name from an
/// earlier source (default < config < api); deleting an API rule brings back what it hid.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleSource {
    Default,
    Config,
    #[default]
    Api,
}

/// One alarm rule. `target` is a glob (`*` any text, `?` one character) over the targets of
/// its kind; `None` watches them all.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertRule {
    pub name: String,
    pub kind: AlertKind,
    #[serde(default)]
    pub target: Option<String>,
    #[serde(default)]
    pub threshold: f64,
    /// How long the condition must hold before the alarm fires.
    #[serde(default)]
    pub for_seconds: u64,
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
    /// Set by the engine from where the rule came from; a value sent with a rule is ignored.
    #[serde(default)]
    pub source: RuleSource,
    /// `consumer_lag` only: records (the default) or seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<LagUnit>,
    /// `dlq_depth` only: judge how much the depth grew within the last `for_seconds` (a
    /// window, then, not a duration to hold) instead of the depth itself.
    #[serde(default, skip_serializing_if = "is_false")]
    pub growing: bool,
}

fn is_false(value: &bool) -> bool {
    !*value
}

fn enabled_by_default() -> bool {
    true
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    Firing,
    Resolved,
}

/// An alarm as listed, published and sent to webhooks: its latest transition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// `<rule>:<target>`.
    pub id: String,
    pub rule: String,
    pub kind: AlertKind,
    pub target: String,
    pub state: AlertState,
    pub value: f64,
    pub threshold: f64,
    /// When it fired.
    pub since: String,
    pub resolved_at: Option<String>,
    pub message: String,
}

/// How the server's deliveries to one webhook go, as it last reported them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WebhookStatus {
    pub url: String,
    /// Transitions answered with a 2xx.
    pub delivered: u64,
    /// Attempts that failed (timeouts, refused connections, non-2xx answers).
    pub failed_attempts: u64,
    /// Transitions given up after the last retry.
    pub abandoned: u64,
    /// Transitions dropped, oldest first, because the webhook's queue was full.
    pub dropped: u64,
    /// Transitions waiting to be sent.
    pub queued: u64,
    pub last_error: Option<String>,
    pub last_error_at: Option<String>,
    pub last_delivered_at: Option<String>,
}

/// `(available_bytes, total_bytes)` of the filesystem holding a folder, or why not.
pub type DiskMeasure = dyn Fn(&Path) -> std::result::Result<(u64, u64), String> + Send + Sync;

/// Reads the size and free space of the filesystem holding a folder. Tests inject a fake one.
#[derive(Clone)]
pub struct DiskProbe(pub Arc<DiskMeasure>);

impl DiskProbe {
    /// `(available_bytes, total_bytes)`.
    pub fn measure(&self, path: &Path) -> std::result::Result<(u64, u64), String> {
        (self.0)(path)
    }
}

impl Default for DiskProbe {
    fn default() -> Self {
        DiskProbe(Arc::new(|path| {
            omnibus_storage::disk_space(path)
                .map(|space| (space.available_bytes, space.total_bytes))
                .map_err(|error| error.to_string())
        }))
    }
}

impl std::fmt::Debug for DiskProbe {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("DiskProbe")
    }
}

/// The engine's alarm settings.
#[derive(Debug, Clone)]
pub struct AlertsConfig {
    /// Whether the evaluator runs. Off in [`crate::EngineConfig::new`] (embedders and tests
    /// opt in); `omnibus serve` turns it on unless `[alerts] enabled = false`.
    pub enabled: bool,
    /// Rules from the configuration file (their source is set to `config`).
    pub rules: Vec<AlertRule>,
    pub evaluate_interval_ms: u64,
    pub disk_probe: DiskProbe,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            enabled: false,
            rules: Vec::new(),
            evaluate_interval_ms: 1_000,
            disk_probe: DiskProbe::default(),
        }
    }
}

/// The alarms' in-memory part that the engine API reads.
pub(crate) struct Alerts {
    pub(crate) state: Mutex<AlertsState>,
    pub(crate) transitions: broadcast::Sender<Alert>,
    pub(crate) webhooks: Mutex<BTreeMap<String, WebhookStatus>>,
    /// Transitions put off to a later evaluation by [`TRANSITIONS_PER_TICK_MAX`].
    pub(crate) deferred_total: AtomicU64,
    /// Transitions being enqueued into queues bound to `amq.topic` (`store.rs`).
    pub(crate) queue_deliveries_in_flight: std::sync::atomic::AtomicUsize,
}

impl Engine {
    /// Alarms, newest transition first; only firing ones with `firing_only`.
    pub fn alerts(&self, firing_only: bool) -> Vec<Alert> {
        let state = self.alerts.lock_state();
        let mut listed: Vec<(u64, &Alert)> = state
            .current
            .values()
            .filter(|(_, alert)| !firing_only || alert.state == AlertState::Firing)
            .map(|(sequence, alert)| (*sequence, alert))
            .collect();
        listed.sort_by_key(|(sequence, _)| std::cmp::Reverse(*sequence));
        listed.into_iter().map(|(_, alert)| alert.clone()).collect()
    }

    /// The rules in force (defaults, config and API, each name once), by name.
    pub fn alert_rules(&self) -> Vec<AlertRule> {
        self.alerts.lock_state().effective_rules()
    }

    /// Creates or replaces an API rule, durably. Invalid rules are `InvalidConfig` naming the
    /// problem.
    pub async fn put_alert_rule(&self, mut rule: AlertRule) -> Result<AlertRule> {
        rule.source = RuleSource::Api;
        validate_rule(&rule).map_err(EngineError::InvalidConfig)?;
        {
            let state = self.alerts.lock_state();
            if !state.api_rules.contains_key(&rule.name) && state.api_rules.len() >= RULES_MAX {
                return Err(EngineError::LimitExceeded(format!(
                    "at most {RULES_MAX} alert rules may be created over the API"
                )));
            }
        }
        store::store_rule(&self.state, &rule).await?;
        self.alerts
            .lock_state()
            .api_rules
            .insert(rule.name.clone(), rule.clone());
        Ok(rule)
    }

    /// Deletes an API rule, durably; a default or config rule of the same name takes its
    /// place again. `Ok(false)` when no API rule has that name.
    pub async fn delete_alert_rule(&self, name: &str) -> Result<bool> {
        if !self.alerts.lock_state().api_rules.contains_key(name) {
            return Ok(false);
        }
        store::delete_rule(&self.state, name).await?;
        Ok(self.alerts.lock_state().api_rules.remove(name).is_some())
    }

    /// Every transition from now on. A subscriber more than [`SUBSCRIBER_BACKLOG_MAX`]
    /// behind misses the oldest (its receiver reports how many).
    pub fn subscribe_alert_transitions(&self) -> broadcast::Receiver<Alert> {
        self.alerts.transitions.subscribe()
    }

    /// Records how deliveries to a webhook go (the server's webhook sender calls this).
    pub fn report_webhook_status(&self, status: WebhookStatus) {
        let mut webhooks = self
            .alerts
            .webhooks
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if webhooks.contains_key(&status.url) || webhooks.len() < WEBHOOKS_MAX {
            webhooks.insert(status.url.clone(), status);
        }
    }

    /// The last status reported for every webhook.
    pub fn webhook_statuses(&self) -> Vec<WebhookStatus> {
        let webhooks = self
            .alerts
            .webhooks
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        webhooks.values().cloned().collect()
    }

    /// Transitions put off to a later evaluation because one evaluation had too many.
    pub fn alert_transitions_deferred(&self) -> u64 {
        self.alerts.deferred_total.load(Ordering::Relaxed)
    }
}
