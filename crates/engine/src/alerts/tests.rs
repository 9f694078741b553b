//! The evaluator with a fake clock, and the alarms through a real engine on real files.

use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::observe::EndSamples;
use super::*;
use crate::queue::{Backoff, EnqueueMessage, QueueSpec};
use crate::router::MailboxLimits;
use crate::EngineConfig;

fn lag_rule(unit: LagUnit, threshold: f64, for_seconds: u64) -> AlertRule {
    AlertRule {
        name: "lagging".into(),
        kind: AlertKind::ConsumerLag,
        target: Some("orders/*".into()),
        threshold,
        for_seconds,
        enabled: true,
        source: RuleSource::Api,
        unit: Some(unit),
        growing: false,
    }
}

fn observed(kind: AlertKind, unit: Option<LagUnit>, target: &str, value: f64) -> Observation {
    Observation {
        kind,
        unit,
        target: target.into(),
        value,
        detail: None,
    }
}

fn lag(records: f64) -> Vec<Observation> {
    vec![observed(
        AlertKind::ConsumerLag,
        Some(LagUnit::Records),
        "orders/billing",
        records,
    )]
}

#[test]
fn consumer_lag_fires_only_after_holding_for_its_duration_then_resolves() {
    let rules = [lag_rule(LagUnit::Records, 100.0, 30)];
    let mut evaluator = Evaluator::default();
    let start = 1_000_000;
    assert!(evaluator
        .evaluate(&rules, &lag(500.0), &[], start)
        .transitions
        .is_empty());
    // 29 s past the threshold: still pending.
    let pending = evaluator.evaluate(&rules, &lag(600.0), &[], start + 29_000);
    assert!(pending.transitions.is_empty(), "{pending:?}");
    let fired = evaluator.evaluate(&rules, &lag(700.0), &[], start + 30_000);
    assert_eq!(fired.transitions.len(), 1, "{fired:?}");
    let alert = &fired.transitions[0];
    assert_eq!(alert.id, "lagging:orders/billing");
    assert_eq!(alert.state, AlertState::Firing);
    assert_eq!((alert.value, alert.threshold), (700.0, 100.0));
    assert!(alert.message.contains("700 records"), "{}", alert.message);
    // Still lagging: no second transition.
    let still = evaluator.evaluate(&rules, &lag(800.0), &[], start + 31_000);
    assert!(still.transitions.is_empty());
    assert_eq!(still.updated.len(), 1);
    let resolved = evaluator.evaluate(&rules, &lag(3.0), &[], start + 32_000);
    assert_eq!(resolved.transitions.len(), 1);
    assert_eq!(resolved.transitions[0].state, AlertState::Resolved);
    assert_eq!(resolved.transitions[0].since, alert.since);
    assert!(resolved.transitions[0].resolved_at.is_some());
}

#[test]
fn a_dip_below_the_threshold_restarts_the_duration() {
    let rules = [lag_rule(LagUnit::Records, 100.0, 10)];
    let mut evaluator = Evaluator::default();
    evaluator.evaluate(&rules, &lag(500.0), &[], 0);
    evaluator.evaluate(&rules, &lag(5.0), &[], 5_000);
    evaluator.evaluate(&rules, &lag(500.0), &[], 6_000);
    assert!(evaluator
        .evaluate(&rules, &lag(500.0), &[], 12_000)
        .transitions
        .is_empty());
    assert_eq!(
        evaluator
            .evaluate(&rules, &lag(500.0), &[], 16_000)
            .transitions
            .len(),
        1
    );
}

#[test]
fn lag_in_seconds_is_judged_by_seconds_rules_only_and_targets_by_glob() {
    let rules = [lag_rule(LagUnit::Seconds, 60.0, 0)];
    let mut evaluator = Evaluator::default();
    let observations = vec![
        observed(
            AlertKind::ConsumerLag,
            Some(LagUnit::Records),
            "orders/a",
            1e6,
        ),
        observed(
            AlertKind::ConsumerLag,
            Some(LagUnit::Seconds),
            "orders/a",
            61.0,
        ),
        observed(
            AlertKind::ConsumerLag,
            Some(LagUnit::Seconds),
            "payments/a",
            900.0,
        ),
    ];
    let fired = evaluator
        .evaluate(&rules, &observations, &[], 0)
        .transitions;
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert_eq!(fired[0].target, "orders/a");
    assert_eq!(fired[0].value, 61.0);
}

#[test]
fn the_default_rules_fire_on_any_dead_letter_and_on_a_disk_under_ten_percent_free() {
    let rules = default_rules();
    let mut evaluator = Evaluator::default();
    let quiet = vec![
        observed(AlertKind::DlqDepth, None, "jobs", 0.0),
        observed(AlertKind::DiskFree, None, "/data", 10.0),
    ];
    assert!(evaluator
        .evaluate(&rules, &quiet, &[], 0)
        .transitions
        .is_empty());
    let bad = vec![
        observed(AlertKind::DlqDepth, None, "jobs", 1.0),
        observed(AlertKind::DiskFree, None, "/data", 9.5),
    ];
    let fired = evaluator.evaluate(&rules, &bad, &[], 1_000).transitions;
    let ids: Vec<&str> = fired.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids, vec!["dlq_not_empty:jobs", "disk_free_low:/data"]);
    assert!(fired.iter().all(|a| a.state == AlertState::Firing));
}

#[test]
fn an_alarm_whose_target_disappears_resolves_unless_its_kind_went_unmeasured() {
    let rules = default_rules();
    let mut evaluator = Evaluator::default();
    let disk = vec![observed(AlertKind::DiskFree, None, "/data", 1.0)];
    assert_eq!(
        evaluator.evaluate(&rules, &disk, &[], 0).transitions.len(),
        1
    );
    let unmeasured = evaluator.evaluate(&rules, &[], &[AlertKind::DiskFree], 1_000);
    assert!(unmeasured.transitions.is_empty(), "{unmeasured:?}");
    let gone = evaluator.evaluate(&rules, &[], &[], 2_000).transitions;
    assert_eq!(gone.len(), 1);
    assert_eq!(gone[0].state, AlertState::Resolved);
}

#[test]
fn a_flood_of_alarms_is_spread_over_evaluations() {
    let rules = default_rules();
    let mut evaluator = Evaluator::default();
    let flood: Vec<Observation> = (0..TRANSITIONS_PER_TICK_MAX + 50)
        .map(|i| observed(AlertKind::DlqDepth, None, &format!("q{i}"), 1.0))
        .collect();
    let first = evaluator.evaluate(&rules, &flood, &[], 0);
    assert_eq!(first.transitions.len(), TRANSITIONS_PER_TICK_MAX);
    assert_eq!(first.deferred, 50);
    let second = evaluator.evaluate(&rules, &flood, &[], 1_000);
    assert_eq!((second.transitions.len(), second.deferred), (50, 0));
}

#[test]
fn a_growing_dlq_rule_fires_on_growth_within_its_window_and_resolves_once_it_stops() {
    let rules = [AlertRule {
        name: "dlq_growing".into(),
        kind: AlertKind::DlqDepth,
        target: None,
        threshold: 2.0,
        for_seconds: 10,
        enabled: true,
        source: RuleSource::Api,
        unit: None,
        growing: true,
    }];
    let depth = |value| vec![observed(AlertKind::DlqDepth, None, "jobs", value)];
    let mut evaluator = Evaluator::default();
    // A deep but steady dead-letter queue is not growing.
    for second in 0..5 {
        let quiet = evaluator.evaluate(&rules, &depth(50.0), &[], second * 1_000);
        assert!(quiet.transitions.is_empty(), "{quiet:?}");
    }
    assert!(evaluator
        .evaluate(&rules, &depth(52.0), &[], 5_000)
        .transitions
        .is_empty());
    let fired = evaluator
        .evaluate(&rules, &depth(53.0), &[], 6_000)
        .transitions;
    assert_eq!(fired.len(), 1, "grew by 3 within 10 s");
    assert_eq!(fired[0].value, 3.0);
    assert!(
        fired[0].message.contains("grew by 3 within 10 s"),
        "{}",
        fired[0].message
    );
    // No new dead letters: once the growth leaves the window, the alarm resolves.
    assert!(evaluator
        .evaluate(&rules, &depth(53.0), &[], 14_000)
        .transitions
        .is_empty());
    let resolved = evaluator
        .evaluate(&rules, &depth(53.0), &[], 16_500)
        .transitions;
    assert_eq!(resolved.len(), 1, "{resolved:?}");
    assert_eq!(resolved[0].state, AlertState::Resolved);
    let growing_lag = AlertRule {
        kind: AlertKind::ConsumerLag,
        ..rules[0].clone()
    };
    assert!(validate_rule(&growing_lag)
        .unwrap_err()
        .contains("growing applies"));
    let no_window = AlertRule {
        for_seconds: 0,
        ..rules[0].clone()
    };
    assert!(validate_rule(&no_window).unwrap_err().contains("window"));
}

#[test]
fn invalid_rules_are_refused_with_the_problem_named() {
    let good = lag_rule(LagUnit::Records, 10.0, 0);
    assert_eq!(validate_rule(&good), Ok(()));
    let cases: Vec<(AlertRule, &str)> = vec![
        (
            AlertRule {
                name: "".into(),
                ..good.clone()
            },
            "rule name",
        ),
        (
            AlertRule {
                name: "a:b".into(),
                ..good.clone()
            },
            "may only hold",
        ),
        (
            AlertRule {
                threshold: -1.0,
                ..good.clone()
            },
            "threshold",
        ),
        (
            AlertRule {
                threshold: f64::NAN,
                ..good.clone()
            },
            "threshold",
        ),
        (
            AlertRule {
                kind: AlertKind::DiskFree,
                unit: None,
                threshold: 150.0,
                ..good.clone()
            },
            "percentage",
        ),
        (
            AlertRule {
                kind: AlertKind::DlqDepth,
                ..good.clone()
            },
            "unit applies",
        ),
        (
            AlertRule {
                for_seconds: u64::MAX,
                ..good.clone()
            },
            "for_seconds",
        ),
        (
            AlertRule {
                target: Some("a\nb".into()),
                ..good.clone()
            },
            "control",
        ),
    ];
    for (rule, problem) in cases {
        let error = validate_rule(&rule).expect_err(problem);
        assert!(error.contains(problem), "{error:?} should name {problem:?}");
    }
}

#[test]
fn globs_match_any_text_and_single_characters() {
    assert!(glob_matches("*", ""));
    assert!(glob_matches("orders/*", "orders/billing"));
    assert!(!glob_matches("orders/*", "payments/billing"));
    assert!(glob_matches("*.dlq", "jobs.dlq"));
    assert!(glob_matches("q?", "q1"));
    assert!(!glob_matches("q?", "q10"));
    assert!(glob_matches("a*b*c", "aXXbYYbc"));
    assert!(glob_matches("exact", "exact"));
    assert!(!glob_matches("exact", "exact2"));
}

#[test]
fn an_offset_age_comes_from_the_first_sample_that_passed_it_and_samples_stay_bounded() {
    let mut samples = EndSamples::default();
    samples.record(10, 1_000);
    samples.record(10, 2_000);
    samples.record(20, 3_000);
    // Offset 5 arrived by the first sample; offset 15 by the third.
    assert_eq!(samples.age_seconds(5, 11_000), 10.0);
    assert_eq!(samples.age_seconds(15, 11_000), 8.0);
    assert_eq!(samples.age_seconds(20, 11_000), 0.0, "not arrived yet");
    for i in 0..10_000u64 {
        samples.record(21 + i, 4_000 + i as i64);
    }
    assert!(
        samples.age_seconds(5, 20_000) >= 19.0,
        "the oldest sample is kept"
    );
}

/// A disk probe whose free percentage a test sets.
fn probe(free_percent: &Arc<AtomicU64>) -> DiskProbe {
    let free = free_percent.clone();
    DiskProbe(Arc::new(move |_| Ok((free.load(Ordering::Relaxed), 100))))
}

fn config(dir: &std::path::Path, free_percent: &Arc<AtomicU64>) -> EngineConfig {
    let mut config = EngineConfig::new(dir);
    config.alerts.enabled = true;
    config.alerts.evaluate_interval_ms = 20;
    config.alerts.disk_probe = probe(free_percent);
    config
}

async fn wait_for_alert(engine: &Engine, id: &str, state: AlertState) -> Alert {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(alert) = engine.alerts(false).into_iter().find(|a| a.id == id) {
            if alert.state == state {
                return alert;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{id} never {state:?}: {:?}",
            engine.alerts(false)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn the_disk_probe_drives_the_default_disk_alarm_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    let free = Arc::new(AtomicU64::new(50));
    let engine = Engine::open(config(dir.path(), &free)).await.unwrap();
    let id = format!("disk_free_low:{}", dir.path().display());
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        engine.alerts(false).is_empty(),
        "{:?}",
        engine.alerts(false)
    );
    free.store(7, Ordering::Relaxed);
    let fired = wait_for_alert(&engine, &id, AlertState::Firing).await;
    assert_eq!((fired.value, fired.threshold), (7.0, 10.0));
    free.store(40, Ordering::Relaxed);
    wait_for_alert(&engine, &id, AlertState::Resolved).await;
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_dead_letter_fires_an_alarm_published_live_and_kept_across_restarts_firing_then_resolved()
{
    let dir = tempfile::tempdir().unwrap();
    let free = Arc::new(AtomicU64::new(50));
    let id = "dlq_not_empty:work";
    {
        let engine = Engine::open(config(dir.path(), &free)).await.unwrap();
        let mailbox = engine.live_router().mailbox(
            true,
            MailboxLimits {
                messages_max: 100,
                bytes_max: 1 << 20,
            },
        );
        let _subscription = engine
            .live_router()
            .subscribe(&mailbox, "$sys.alerts.>", None, 7)
            .unwrap();
        let mut transitions = engine.subscribe_alert_transitions();
        engine
            .create_queue(QueueSpec {
                name: "work".into(),
                max_deliver: Some(1),
                backoff: Some(Backoff::Fixed { delay_ms: 0 }),
                ..Default::default()
            })
            .await
            .unwrap();
        let message = EnqueueMessage {
            value: Some(Bytes::from_static(b"poison")),
            ..Default::default()
        };
        engine.enqueue("work", vec![message]).await.unwrap();
        let delivery = engine
            .receive("work", "w", 1, 1_000)
            .await
            .unwrap()
            .remove(0);
        engine
            .term("work", delivery.offset, delivery.attempt, "bad input")
            .await
            .unwrap();
        let fired = wait_for_alert(&engine, id, AlertState::Firing).await;
        assert_eq!((fired.kind, fired.value), (AlertKind::DlqDepth, 1.0));
        // The same transition went to subscribers and out on the live subject.
        let sent = tokio::time::timeout(Duration::from_secs(5), transitions.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(sent, fired);
        let mut live = Vec::new();
        mailbox.take(&mut live, 1 << 20);
        assert_eq!(live.len(), 1, "one transition published");
        assert_eq!(live[0].message.subject, "$sys.alerts.dlq_depth");
        let published: Alert = serde_json::from_slice(&live[0].message.payload).unwrap();
        assert_eq!(published, fired);
        engine.shutdown().await.unwrap();
    }
    // Reopened without the evaluator: the stored alarm is still firing.
    let mut quiet = EngineConfig::new(dir.path());
    quiet.alerts.disk_probe = probe(&free);
    let engine = Engine::open(quiet.clone()).await.unwrap();
    let listed = engine.alerts(true);
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(
        (listed[0].id.as_str(), listed[0].state),
        (id, AlertState::Firing)
    );
    engine.shutdown().await.unwrap();
    drop(engine);
    // With the evaluator again: a redrive empties the dead letters and the alarm resolves,
    // on the same firing (`since` kept).
    let engine = Engine::open(config(dir.path(), &free)).await.unwrap();
    assert_eq!(engine.redrive("work", 100).await.unwrap(), 1);
    let resolved = wait_for_alert(&engine, id, AlertState::Resolved).await;
    assert_eq!(resolved.since, listed[0].since);
    assert!(resolved.resolved_at.is_some(), "{resolved:?}");
    engine.shutdown().await.unwrap();
    drop(engine);
    // The resolution is durable too: no evaluator, and it is still resolved.
    let engine = Engine::open(quiet).await.unwrap();
    assert!(engine.alerts(true).is_empty(), "{:?}", engine.alerts(true));
    let kept = engine.alerts(false);
    let kept = kept.iter().find(|alert| alert.id == id).expect("kept");
    assert_eq!(kept, &resolved);
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn api_rules_are_durable_and_hide_the_default_of_the_same_name() {
    let dir = tempfile::tempdir().unwrap();
    {
        let engine = Engine::open(EngineConfig::new(dir.path())).await.unwrap();
        let mut rule = default_rules().remove(0);
        rule.enabled = false;
        rule.source = RuleSource::Default;
        let stored = engine.put_alert_rule(rule).await.unwrap();
        assert_eq!(stored.source, RuleSource::Api, "the engine sets the source");
        engine.shutdown().await.unwrap();
    }
    let engine = Engine::open(EngineConfig::new(dir.path())).await.unwrap();
    let rules = engine.alert_rules();
    let dlq = rules.iter().find(|r| r.name == "dlq_not_empty").unwrap();
    assert_eq!((dlq.enabled, dlq.source), (false, RuleSource::Api));
    assert!(engine.delete_alert_rule("dlq_not_empty").await.unwrap());
    assert!(!engine.delete_alert_rule("dlq_not_empty").await.unwrap());
    let dlq = engine
        .alert_rules()
        .into_iter()
        .find(|r| r.name == "dlq_not_empty")
        .unwrap();
    assert_eq!((dlq.enabled, dlq.source), (true, RuleSource::Default));
    let invalid = AlertRule {
        threshold: -3.0,
        ..dlq
    };
    let error = engine.put_alert_rule(invalid).await.unwrap_err();
    assert!(error.to_string().contains("threshold"), "{error}");
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_queue_bound_to_amq_topic_receives_alarm_transitions() {
    let dir = tempfile::tempdir().unwrap();
    let free = Arc::new(AtomicU64::new(50));
    let engine = Engine::open(config(dir.path(), &free)).await.unwrap();
    for name in ["alarms", "work"] {
        let spec = QueueSpec {
            name: name.into(),
            ..Default::default()
        };
        engine.create_queue(spec).await.unwrap();
    }
    engine
        .bind_queue(crate::exchanges::Binding {
            exchange: "amq.topic".into(),
            queue: "alarms".into(),
            routing_key: "$sys.alerts.#".into(),
            arguments: Default::default(),
            durable: true,
            to_exchange: false,
        })
        .await
        .unwrap();
    let message = EnqueueMessage {
        value: Some(Bytes::from_static(b"poison")),
        ..Default::default()
    };
    engine.enqueue("work", vec![message]).await.unwrap();
    let delivery = engine
        .receive("work", "w", 1, 1_000)
        .await
        .unwrap()
        .remove(0);
    engine
        .term("work", delivery.offset, delivery.attempt, "bad input")
        .await
        .unwrap();
    let received = engine.receive("alarms", "w", 1, 5_000).await.unwrap();
    assert_eq!(received.len(), 1, "the transition reached the bound queue");
    let alert: Alert = serde_json::from_slice(received[0].record.value.as_ref().unwrap()).unwrap();
    assert_eq!(
        (alert.id.as_str(), alert.state),
        ("dlq_not_empty:work", AlertState::Firing)
    );
    engine.shutdown().await.unwrap();
}
