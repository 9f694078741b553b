//! The alarm state machine, pure: time is passed in, nothing is stored or published here.
//!
//! For each enabled rule and each observation of its kind (and unit) whose target matches its
//! glob, the alarm `<rule>:<target>` is *pending* from the first evaluation that sees the
//! value past the threshold, *fires* once it has stayed past it for `for_seconds`, and
//! *resolves* at the first evaluation that sees it back (or no longer sees the target, or
//! the rule). Only firing and resolving are transitions; a firing alarm's value is updated
//! in place.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet, VecDeque};

use super::rules::{glob_matches, rule_unit};
use super::time::format_rfc3339_ms;
use super::{Alert, AlertKind, AlertRule, AlertState, LagUnit, TRANSITIONS_PER_TICK_MAX};

/// One measured value of one target.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub kind: AlertKind,
    /// `consumer_lag` only: what `value` counts.
    pub unit: Option<LagUnit>,
    pub target: String,
    pub value: f64,
    /// Said in the alarm's message (an I/O error's reason).
    pub detail: Option<String>,
}

/// What one evaluation changed.
#[derive(Debug, Default, PartialEq)]
pub struct Evaluation {
    /// Firing and resolved transitions, in the order they happened.
    pub transitions: Vec<Alert>,
    /// Transitions left for a later evaluation (past [`TRANSITIONS_PER_TICK_MAX`]).
    pub deferred: usize,
    /// Firing alarms whose value changed without a transition.
    pub updated: Vec<Alert>,
}

#[derive(Debug)]
struct Tracked {
    kind: AlertKind,
    pending_since_ms: Option<i64>,
    firing: Option<Alert>,
}

/// Values a growing rule's alarm kept per target: `(ms, value)`, oldest first.
const GROWTH_SAMPLES_MAX: usize = 512;

#[derive(Debug, Default)]
pub struct Evaluator {
    tracked: HashMap<String, Tracked>,
    /// Growing rules' past values, by alarm id.
    histories: HashMap<String, VecDeque<(i64, f64)>>,
}

impl Evaluator {
    /// Starts from the alarms that were firing (after a restart: the stored ones), so they
    /// neither fire twice nor stay firing once their condition is gone.
    pub fn new(firing: impl IntoIterator<Item = Alert>) -> Evaluator {
        let tracked: HashMap<String, Tracked> = firing
            .into_iter()
            .filter(|alert| alert.state == AlertState::Firing)
            .map(|alert| {
                let tracked = Tracked {
                    kind: alert.kind,
                    pending_since_ms: None,
                    firing: Some(alert.clone()),
                };
                (alert.id, tracked)
            })
            .collect();
        Evaluator {
            tracked,
            histories: HashMap::new(),
        }
    }

    /// Judges every observation against every rule at `now_ms`. Alarms of the `unobserved`
    /// kinds (their measurement failed this time) are left as they are.
    pub fn evaluate(
        &mut self,
        rules: &[AlertRule],
        observations: &[Observation],
        unobserved: &[AlertKind],
        now_ms: i64,
    ) -> Evaluation {
        let mut evaluation = Evaluation::default();
        let mut seen: HashSet<String> = HashSet::new();
        for rule in rules.iter().filter(|rule| rule.enabled) {
            let unit = rule_unit(rule);
            let matching = observations.iter().filter(|observation| {
                observation.kind == rule.kind
                    && observation.unit == unit
                    && rule
                        .target
                        .as_deref()
                        .is_none_or(|glob| glob_matches(glob, &observation.target))
            });
            for observation in matching {
                let id = format!("{}:{}", rule.name, observation.target);
                seen.insert(id.clone());
                let observation = if rule.growing {
                    Cow::Owned(self.growth(&id, rule, observation, now_ms))
                } else {
                    Cow::Borrowed(observation)
                };
                self.judge(rule, &observation, id, now_ms, &mut evaluation);
            }
        }
        self.histories.retain(|id, _| seen.contains(id));
        // Alarms whose target or rule is gone resolve; pending ones are forgotten.
        let gone: Vec<String> = self
            .tracked
            .iter()
            .filter(|(id, tracked)| !seen.contains(*id) && !unobserved.contains(&tracked.kind))
            .map(|(id, _)| id.clone())
            .collect();
        for id in gone {
            let firing = self.tracked.get(&id).and_then(|t| t.firing.clone());
            match firing {
                Some(alert) => {
                    if evaluation.transitions.len() >= TRANSITIONS_PER_TICK_MAX {
                        evaluation.deferred += 1;
                        continue;
                    }
                    let message = format!(
                        "{} resolved: the target or the rule is gone",
                        describe(alert.kind, &alert.target)
                    );
                    evaluation
                        .transitions
                        .push(resolve(alert, None, message, now_ms));
                    self.tracked.remove(&id);
                }
                None => {
                    self.tracked.remove(&id);
                }
            }
        }
        evaluation
    }

    /// How much `observation`'s value grew since the start of the rule's window (or since
    /// the target was first seen, for a younger history).
    fn growth(
        &mut self,
        id: &str,
        rule: &AlertRule,
        observation: &Observation,
        now_ms: i64,
    ) -> Observation {
        let history = self.histories.entry(id.to_string()).or_default();
        if history.len() >= GROWTH_SAMPLES_MAX {
            // Halve the resolution rather than forget the window's start.
            *history = history.iter().copied().step_by(2).collect();
        }
        history.push_back((now_ms, observation.value));
        let window_start = now_ms.saturating_sub((rule.for_seconds as i64).saturating_mul(1000));
        // The newest sample at or before the window's start is the baseline; older ones go.
        let baseline = history
            .iter()
            .rposition(|(ms, _)| *ms <= window_start)
            .unwrap_or(0);
        history.drain(..baseline);
        let grown = observation.value - history.front().map_or(observation.value, |s| s.1);
        Observation {
            value: grown,
            ..observation.clone()
        }
    }

    fn judge(
        &mut self,
        rule: &AlertRule,
        observation: &Observation,
        id: String,
        now_ms: i64,
        evaluation: &mut Evaluation,
    ) {
        let breached = if rule.kind.fires_below() {
            observation.value < rule.threshold
        } else {
            observation.value > rule.threshold
        };
        let tracked = self.tracked.entry(id.clone()).or_insert(Tracked {
            kind: rule.kind,
            pending_since_ms: None,
            firing: None,
        });
        if !breached {
            tracked.pending_since_ms = None;
            let Some(alert) = tracked.firing.clone() else {
                self.tracked.remove(&id);
                return;
            };
            if evaluation.transitions.len() >= TRANSITIONS_PER_TICK_MAX {
                evaluation.deferred += 1;
                return;
            }
            let message = format!(
                "{} resolved: {}",
                describe(rule.kind, &observation.target),
                measure(rule, observation)
            );
            evaluation
                .transitions
                .push(resolve(alert, Some(observation.value), message, now_ms));
            self.tracked.remove(&id);
            return;
        }
        if let Some(alert) = tracked.firing.as_mut() {
            if alert.value != observation.value {
                alert.value = observation.value;
                alert.message = fired_message(rule, observation);
                evaluation.updated.push(alert.clone());
            }
            return;
        }
        let since = *tracked.pending_since_ms.get_or_insert(now_ms);
        let held_ms = now_ms.saturating_sub(since);
        // A growing rule's `for_seconds` is its window, already applied to the value.
        let hold_seconds = if rule.growing { 0 } else { rule.for_seconds };
        if held_ms < (hold_seconds as i64).saturating_mul(1000) {
            return;
        }
        if evaluation.transitions.len() >= TRANSITIONS_PER_TICK_MAX {
            evaluation.deferred += 1;
            return;
        }
        let alert = Alert {
            id,
            rule: rule.name.clone(),
            kind: rule.kind,
            target: observation.target.clone(),
            state: AlertState::Firing,
            value: observation.value,
            threshold: rule.threshold,
            since: format_rfc3339_ms(now_ms),
            resolved_at: None,
            message: fired_message(rule, observation),
        };
        tracked.pending_since_ms = None;
        tracked.firing = Some(alert.clone());
        evaluation.transitions.push(alert);
    }
}

/// `value`: the value seen now, or `None` to keep the last one seen while firing.
fn resolve(mut alert: Alert, value: Option<f64>, message: String, now_ms: i64) -> Alert {
    alert.state = AlertState::Resolved;
    if let Some(value) = value {
        alert.value = value;
    }
    alert.resolved_at = Some(format_rfc3339_ms(now_ms));
    alert.message = message;
    alert
}

fn describe(kind: AlertKind, target: &str) -> String {
    match kind {
        AlertKind::ConsumerLag => format!("consumer lag of {target}"),
        AlertKind::DlqDepth => format!("dead letters of queue {target}"),
        AlertKind::QueueOldestAge => format!("oldest waiting message of queue {target}"),
        AlertKind::DiskFree => format!("free disk of {target}"),
        AlertKind::IoPoisoned => target.to_string(),
        AlertKind::KeyspaceUsed => "the keyspace's byte bound in use".to_string(),
    }
}

/// The value with its unit and the threshold, e.g. `1500 records (alarm above 1000 records)`.
fn measure(rule: &AlertRule, observation: &Observation) -> String {
    let unit = match (rule.kind, observation.unit) {
        (AlertKind::ConsumerLag, Some(LagUnit::Seconds)) | (AlertKind::QueueOldestAge, _) => " s",
        (AlertKind::ConsumerLag, _) => " records",
        (AlertKind::DiskFree, _) | (AlertKind::KeyspaceUsed, _) => " %",
        (AlertKind::DlqDepth, _) | (AlertKind::IoPoisoned, _) => "",
    };
    let value = observation.value;
    let threshold = rule.threshold;
    if rule.growing {
        let window = rule.for_seconds;
        format!("grew by {value} within {window} s (alarm above {threshold})")
    } else if rule.kind.fires_below() {
        format!("{value}{unit} (alarm below {threshold}{unit})")
    } else {
        format!("{value}{unit} (alarm above {threshold}{unit})")
    }
}

fn fired_message(rule: &AlertRule, observation: &Observation) -> String {
    let text = match (rule.kind, &observation.detail) {
        (AlertKind::IoPoisoned, Some(reason)) => {
            format!(
                "{} refuses work after an I/O error: {reason}",
                observation.target
            )
        }
        (AlertKind::IoPoisoned, None) => {
            format!("{} refuses work after an I/O error", observation.target)
        }
        _ => format!(
            "{}: {}",
            describe(rule.kind, &observation.target),
            measure(rule, observation)
        ),
    };
    // One line, bounded: a reason may carry an OS error's text.
    let mut line: String = text.replace(['\n', '\r'], " ");
    if line.len() > 512 {
        let mut end = 512;
        while !line.is_char_boundary(end) {
            end -= 1;
        }
        line.truncate(end);
    }
    line
}
