//! The durable part of the alarms, and the loop that evaluates them.
//!
//! Two state-store tables: `alert_rules` (API rules by name) and `alert_transitions` (every
//! firing and resolved transition under a 20-digit sequence number, the newest
//! [`HISTORY_MAX`] kept). At open, the latest transition of each alarm is its current state,
//! so an alarm that was firing is still firing after a restart — and resolves at the first
//! evaluation that finds its condition gone.
//!
//! Published transitions reach live subscribers (NATS, Redis) through the live router, and
//! the AMQP door's queues bound to `amq.topic` with a key matching `$sys.alerts.<kind>`
//! (`$sys.alerts.#`) through an enqueue in a task of its own (at most
//! [`QUEUE_DELIVERIES_IN_FLIGHT_MAX`] at once), so a slow queue never holds up evaluation.
//!
//! A transition is committed before it is published or handed to subscribers, so nobody
//! hears of a transition that a crash takes back. A failed commit is logged; the transition
//! is published anyway (an alarm about a failing disk must not wait for that disk).

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use omnibus_storage::{StateStore, StateWrite};
use omnibus_types::Header;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use super::evaluator::{Evaluation, Evaluator};
use super::observe::Observer;
use super::rules::{default_rules, validate_rule};
use super::{
    Alert, AlertRule, AlertState, Alerts, AlertsConfig, RuleSource, HISTORY_MAX,
    SUBSCRIBER_BACKLOG_MAX,
};
use crate::engine::{now_ms, Engine};
use crate::error::{EngineError, Result};
use crate::exchanges::{EXCHANGE_HEADER, ROUTING_KEY_HEADER};
use crate::queue::EnqueueMessage;
use crate::router::LiveMessage;

const RULES_TABLE: &str = "alert_rules";
/// The exchange whose bindings route transitions to queues (the AMQP door's topic exchange).
const ALERTS_EXCHANGE: &str = "amq.topic";
/// Enqueues of transitions into bound queues running at once; more are skipped (and
/// logged) while a queue or its disk is stuck.
pub const QUEUE_DELIVERIES_IN_FLIGHT_MAX: usize = 1_000;
const TRANSITIONS_TABLE: &str = "alert_transitions";

/// A transition as stored: the alarm and the sequence number that orders transitions.
#[derive(Debug, Serialize, Deserialize)]
struct StoredTransition {
    sequence: u64,
    alert: Alert,
}

fn transition_key(sequence: u64) -> String {
    format!("{sequence:020}")
}

/// The rules and the alarms' latest transitions, behind one lock.
#[derive(Debug, Default)]
pub(crate) struct AlertsState {
    pub(crate) default_rules: Vec<AlertRule>,
    pub(crate) config_rules: Vec<AlertRule>,
    pub(crate) api_rules: BTreeMap<String, AlertRule>,
    /// Alarm id → (sequence of its latest transition, the alarm as of then).
    pub(crate) current: BTreeMap<String, (u64, Alert)>,
    pub(crate) next_sequence: u64,
}

impl AlertsState {
    /// Each name once: an API rule hides a config rule, which hides a default one.
    pub(crate) fn effective_rules(&self) -> Vec<AlertRule> {
        let mut rules: BTreeMap<&str, &AlertRule> = BTreeMap::new();
        for rule in self
            .default_rules
            .iter()
            .chain(&self.config_rules)
            .chain(self.api_rules.values())
        {
            rules.insert(&rule.name, rule);
        }
        rules.into_values().cloned().collect()
    }

    /// Forgets the oldest resolved alarms beyond [`HISTORY_MAX`] (firing ones are kept).
    fn trim(&mut self) {
        while self.current.len() > HISTORY_MAX {
            let oldest_resolved = self
                .current
                .iter()
                .filter(|(_, (_, alert))| alert.state == AlertState::Resolved)
                .min_by_key(|(_, (sequence, _))| *sequence)
                .map(|(id, _)| id.clone());
            match oldest_resolved {
                Some(id) => self.current.remove(&id),
                None => return,
            };
        }
    }
}

impl Alerts {
    /// Loads the API rules and the transition history; refuses invalid config rules.
    pub(crate) fn open(state: &StateStore, config: &AlertsConfig) -> Result<Alerts> {
        let mut config_rules = Vec::with_capacity(config.rules.len());
        for rule in &config.rules {
            let mut rule = rule.clone();
            rule.source = RuleSource::Config;
            validate_rule(&rule).map_err(|problem| {
                EngineError::InvalidConfig(format!("alerts.rules: {problem}"))
            })?;
            config_rules.push(rule);
        }
        let mut api_rules = BTreeMap::new();
        for (name, bytes) in state.scan_prefix(RULES_TABLE, "")? {
            let rule: AlertRule = serde_json::from_slice(&bytes)
                .map_err(|e| EngineError::Internal(format!("stored alert rule {name:?}: {e}")))?;
            api_rules.insert(name, rule);
        }
        let mut current = BTreeMap::new();
        let mut next_sequence = 0;
        for (key, bytes) in state.scan_prefix(TRANSITIONS_TABLE, "")? {
            let stored: StoredTransition = serde_json::from_slice(&bytes)
                .map_err(|e| EngineError::Internal(format!("stored alarm {key:?}: {e}")))?;
            next_sequence = next_sequence.max(stored.sequence + 1);
            // Keys sort by sequence, so a later transition of an alarm replaces an earlier one.
            current.insert(stored.alert.id.clone(), (stored.sequence, stored.alert));
        }
        let (transitions, _) = broadcast::channel(SUBSCRIBER_BACKLOG_MAX);
        Ok(Alerts {
            state: Mutex::new(AlertsState {
                default_rules: default_rules(),
                config_rules,
                api_rules,
                current,
                next_sequence,
            }),
            transitions,
            webhooks: Mutex::new(BTreeMap::new()),
            deferred_total: Default::default(),
            queue_deliveries_in_flight: Default::default(),
        })
    }

    pub(crate) fn lock_state(&self) -> MutexGuard<'_, AlertsState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub(super) async fn store_rule(state: &StateStore, rule: &AlertRule) -> Result<()> {
    let value = serde_json::to_vec(rule).expect("an alert rule serializes");
    state
        .commit(vec![StateWrite::Put {
            table: RULES_TABLE,
            key: rule.name.clone(),
            value,
        }])
        .await?;
    Ok(())
}

pub(super) async fn delete_rule(state: &StateStore, name: &str) -> Result<()> {
    state
        .commit(vec![StateWrite::Delete {
            table: RULES_TABLE,
            key: name.to_string(),
        }])
        .await?;
    Ok(())
}

impl Engine {
    /// Records the transitions durably, then publishes each on `$sys.alerts.<kind>` and to
    /// subscribers; updates firing alarms' values in memory.
    pub(crate) async fn apply_evaluation(self: &Arc<Self>, evaluation: Evaluation) {
        if evaluation.deferred > 0 {
            self.alerts
                .deferred_total
                .fetch_add(evaluation.deferred as u64, Ordering::Relaxed);
            tracing::warn!(
                deferred = evaluation.deferred,
                "too many alarm transitions at once; the rest follow in the next evaluations"
            );
        }
        let writes = {
            let mut state = self.alerts.lock_state();
            for alert in evaluation.updated {
                if let Some((_, current)) = state.current.get_mut(&alert.id) {
                    *current = alert;
                }
            }
            let mut writes = Vec::with_capacity(evaluation.transitions.len() + 1);
            for alert in &evaluation.transitions {
                let sequence = state.next_sequence;
                state.next_sequence += 1;
                let stored = StoredTransition {
                    sequence,
                    alert: alert.clone(),
                };
                writes.push(StateWrite::Put {
                    table: TRANSITIONS_TABLE,
                    key: transition_key(sequence),
                    value: serde_json::to_vec(&stored).expect("an alarm serializes"),
                });
                state
                    .current
                    .insert(alert.id.clone(), (sequence, alert.clone()));
            }
            state.trim();
            if !writes.is_empty() && state.next_sequence > HISTORY_MAX as u64 {
                writes.push(StateWrite::DeleteRange {
                    table: TRANSITIONS_TABLE,
                    start: transition_key(0),
                    end: transition_key(state.next_sequence - HISTORY_MAX as u64),
                });
            }
            writes
        };
        if writes.is_empty() {
            return;
        }
        if let Err(error) = self.state.commit(writes).await {
            tracing::error!("alarm transitions not recorded: {error}");
        }
        for alert in evaluation.transitions {
            tracing::warn!(alarm = %alert.id, state = ?alert.state, "{}", alert.message);
            self.publish_alert(&alert);
            // No receiver is not an error: webhooks are optional.
            let _ = self.alerts.transitions.send(alert);
        }
    }

    fn publish_alert(self: &Arc<Self>, alert: &Alert) {
        let payload = Bytes::from(serde_json::to_vec(alert).expect("an alarm serializes"));
        let subject = alert.kind.subject();
        let message = LiveMessage {
            subject: subject.clone(),
            reply: None,
            headers: Vec::new(),
            payload: payload.clone(),
            status: None,
            appended: false,
        };
        self.live_router.publish(Arc::new(message), None);
        self.enqueue_alert_to_bound_queues(subject, payload);
    }

    /// Enqueues the transition into every queue bound to [`ALERTS_EXCHANGE`] with a key
    /// matching its subject, in a task of its own.
    fn enqueue_alert_to_bound_queues(self: &Arc<Self>, subject: String, payload: Bytes) {
        let queues = match self.route_exchange(ALERTS_EXCHANGE, &subject, &BTreeMap::new()) {
            Ok(queues) if !queues.is_empty() => queues,
            Ok(_) => return,
            Err(error) => {
                tracing::warn!("alarm not routed through {ALERTS_EXCHANGE}: {error}");
                return;
            }
        };
        let in_flight = &self.alerts.queue_deliveries_in_flight;
        if in_flight.fetch_add(1, Ordering::AcqRel) >= QUEUE_DELIVERIES_IN_FLIGHT_MAX {
            in_flight.fetch_sub(1, Ordering::AcqRel);
            tracing::warn!(%subject, "alarm not enqueued: too many alarm enqueues in flight");
            return;
        }
        let engine = self.clone();
        tokio::spawn(async move {
            for queue in queues {
                let message = EnqueueMessage {
                    value: Some(payload.clone()),
                    headers: vec![
                        Header {
                            name: EXCHANGE_HEADER.to_string(),
                            value: Bytes::from_static(ALERTS_EXCHANGE.as_bytes()),
                        },
                        Header {
                            name: ROUTING_KEY_HEADER.to_string(),
                            value: Bytes::from(subject.clone().into_bytes()),
                        },
                    ],
                    ..Default::default()
                };
                if let Err(error) = engine.enqueue(&queue, vec![message]).await {
                    tracing::warn!(%queue, "alarm not enqueued: {error}");
                }
            }
            engine
                .alerts
                .queue_deliveries_in_flight
                .fetch_sub(1, Ordering::AcqRel);
        });
    }
}

/// Evaluates the rules every `evaluate_interval_ms` until the engine is dropped or shut
/// down. A pass holds the maintenance lock, which `shutdown` takes, so none outlives it.
pub(crate) fn spawn_evaluator(engine: &Arc<Engine>) {
    let weak = Arc::downgrade(engine);
    let shutting_down = engine.shutting_down.clone();
    let running = engine.maintenance_running.clone();
    let interval_ms = engine.config.alerts.evaluate_interval_ms.max(10);
    let firing: Vec<Alert> = engine
        .alerts
        .lock_state()
        .current
        .values()
        .map(|(_, alert)| alert.clone())
        .collect();
    tokio::spawn(async move {
        let mut evaluator = Evaluator::new(firing);
        let mut observer = Observer::default();
        let mut ticker = tokio::time::interval(Duration::from_millis(interval_ms));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let _pass = running.lock().await;
            if shutting_down.load(Ordering::Acquire) {
                return;
            }
            let Some(engine) = weak.upgrade() else {
                return;
            };
            let blocking = engine.clone();
            let observed = tokio::task::spawn_blocking(move || {
                let now = now_ms();
                let observations = observer.observe(&blocking, now);
                (observer, observations, now)
            })
            .await;
            let (returned, observations, now) = match observed {
                Ok(result) => result,
                Err(error) => {
                    tracing::error!("alarm observation failed: {error}");
                    observer = Observer::default();
                    continue;
                }
            };
            observer = returned;
            let (observations, unobserved) = observations;
            let rules = engine.alert_rules();
            let evaluation = evaluator.evaluate(&rules, &observations, &unobserved, now);
            engine.apply_evaluation(evaluation).await;
        }
    });
}
