//! What the evaluator observes in a real engine: a group's and an acked consumer's lag in
//! records and in seconds, a queue's oldest waiting message, a partition poisoned by a failed
//! fsync, a queue poisoned by a failed state commit.

use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use bytes::Bytes;
use omnibus_storage::io::{FaultPlan, FaultyIo, FileIo};

use super::*;
use crate::queue::{EnqueueMessage, QueueSpec};
use crate::{EngineConfig, OffsetCommit, PublishRecord, PublishTarget, StreamSpec};

fn config(dir: &Path) -> EngineConfig {
    let mut config = EngineConfig::new(dir);
    config.alerts.enabled = true;
    config.alerts.evaluate_interval_ms = 20;
    let free = Arc::new(AtomicU64::new(50));
    config.alerts.disk_probe =
        DiskProbe(Arc::new(move |_| Ok((free.load(Ordering::Relaxed), 100))));
    config
}

fn rule(name: &str, kind: AlertKind, threshold: f64, unit: Option<LagUnit>) -> AlertRule {
    AlertRule {
        name: name.into(),
        kind,
        target: None,
        threshold,
        for_seconds: 0,
        enabled: true,
        source: RuleSource::Api,
        unit,
        growing: false,
    }
}

async fn wait_for(engine: &Engine, id: &str, state: AlertState) -> Alert {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let found = engine.alerts(false).into_iter().find(|a| a.id == id);
        if let Some(alert) = found.filter(|alert| alert.state == state) {
            return alert;
        }
        assert!(
            Instant::now() < deadline,
            "{id} never {state:?}: {:?}",
            engine.alerts(false)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn publish(engine: &Engine, stream: &str, count: usize) {
    let records = (0..count)
        .map(|i| PublishRecord {
            value: Some(Bytes::from(format!("r{i}"))),
            ..Default::default()
        })
        .collect();
    engine
        .publish(PublishTarget::Stream(stream.into()), records)
        .await
        .unwrap();
}

async fn commit(engine: &Engine, offset: u64) {
    let commit = OffsetCommit {
        stream: "orders".into(),
        partition: 0,
        offset,
        metadata: String::new(),
    };
    engine
        .commit_offsets("billing", vec![commit])
        .await
        .unwrap();
}

#[tokio::test]
async fn a_group_behind_fires_lag_alarms_in_records_and_seconds_until_it_catches_up() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(config(dir.path())).await.unwrap();
    let stream = StreamSpec {
        name: "orders".into(),
        partitions: Some(1),
        ..Default::default()
    };
    engine.create_stream(stream).await.unwrap();
    let records = rule("behind", AlertKind::ConsumerLag, 3.0, None);
    let seconds = rule("late", AlertKind::ConsumerLag, 0.2, Some(LagUnit::Seconds));
    engine.put_alert_rule(records).await.unwrap();
    engine.put_alert_rule(seconds).await.unwrap();
    publish(&engine, "orders", 5).await;
    commit(&engine, 1).await;
    let behind = wait_for(&engine, "behind:orders/billing", AlertState::Firing).await;
    assert_eq!((behind.kind, behind.value), (AlertKind::ConsumerLag, 4.0));
    let late = wait_for(&engine, "late:orders/billing", AlertState::Firing).await;
    assert!(late.value > 0.2, "{late:?}");
    commit(&engine, 5).await;
    wait_for(&engine, "behind:orders/billing", AlertState::Resolved).await;
    wait_for(&engine, "late:orders/billing", AlertState::Resolved).await;
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_message_waiting_too_long_fires_until_it_is_taken() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(config(dir.path())).await.unwrap();
    let waiting = rule("stale", AlertKind::QueueOldestAge, 0.2, None);
    engine.put_alert_rule(waiting).await.unwrap();
    let spec = QueueSpec {
        name: "work".into(),
        ..Default::default()
    };
    engine.create_queue(spec).await.unwrap();
    let message = EnqueueMessage {
        value: Some(Bytes::from_static(b"job")),
        ..Default::default()
    };
    let enqueued = Instant::now();
    engine.enqueue("work", vec![message]).await.unwrap();
    let stale = wait_for(&engine, "stale:work", AlertState::Firing).await;
    assert!(
        enqueued.elapsed() >= Duration::from_millis(200),
        "fired too early: {stale:?}"
    );
    let delivery = engine.receive("work", "w", 1, 0).await.unwrap().remove(0);
    engine
        .ack("work", delivery.offset, delivery.attempt)
        .await
        .unwrap();
    wait_for(&engine, "stale:work", AlertState::Resolved).await;
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_partition_refusing_writes_after_a_failed_fsync_fires_the_default_io_alarm() {
    let dir = tempfile::tempdir().unwrap();
    let plan = FaultPlan::new();
    let io = Arc::new(FaultyIo::new(Arc::new(FileIo), plan.clone()));
    let engine = Engine::open_with_io(config(dir.path()), io).await.unwrap();
    let stream = StreamSpec {
        name: "orders".into(),
        partitions: Some(1),
        ..Default::default()
    };
    engine.create_stream(stream).await.unwrap();
    publish(&engine, "orders", 1).await;
    plan.fail_sync(1);
    let failed = engine
        .publish(
            PublishTarget::Stream("orders".into()),
            vec![PublishRecord::default()],
        )
        .await;
    assert!(failed.is_err());
    let poisoned = wait_for(&engine, "io_poisoned:orders/0", AlertState::Firing).await;
    assert_eq!(poisoned.kind, AlertKind::IoPoisoned);
    assert!(
        poisoned.message.contains("I/O error"),
        "{}",
        poisoned.message
    );
    let _ = engine.shutdown().await;
}

#[tokio::test]
async fn an_acked_consumer_behind_fires_lag_alarms_until_it_acknowledges_everything() {
    use crate::consumers::{AckMode, ConsumerSpec, ConsumerStart};
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(config(dir.path())).await.unwrap();
    let stream = StreamSpec {
        name: "orders".into(),
        partitions: Some(1),
        ..Default::default()
    };
    engine.create_stream(stream).await.unwrap();
    let spec = ConsumerSpec {
        stream: "orders".into(),
        name: "audit".into(),
        filter_subjects: Vec::new(),
        start: ConsumerStart::Earliest,
        ack: AckMode::Explicit,
        ack_wait_ms: 30_000,
        max_deliver: None,
        backoff_ms: Vec::new(),
        max_ack_pending: 1000,
        door_settings: Default::default(),
        remove_acked: false,
        owned_pending: false,
    };
    engine.create_consumer(spec).await.unwrap();
    let records = rule("behind", AlertKind::ConsumerLag, 3.0, None);
    let seconds = rule("late", AlertKind::ConsumerLag, 0.2, Some(LagUnit::Seconds));
    engine.put_alert_rule(records).await.unwrap();
    engine.put_alert_rule(seconds).await.unwrap();
    // Taken before the publish: the records' timestamps are set while it runs.
    let published = Instant::now();
    publish(&engine, "orders", 5).await;
    // Two delivered and not acknowledged, three not delivered: five behind.
    let first = engine.consumer_next("orders", "audit", 2, 0).await.unwrap();
    let behind = wait_for(&engine, "behind:orders/audit", AlertState::Firing).await;
    assert_eq!((behind.kind, behind.value), (AlertKind::ConsumerLag, 5.0));
    let late = wait_for(&engine, "late:orders/audit", AlertState::Firing).await;
    assert!(late.value > 0.2, "{late:?}");
    assert!(
        published.elapsed() >= Duration::from_millis(200),
        "{late:?}"
    );
    let rest = engine
        .consumer_next("orders", "audit", 10, 0)
        .await
        .unwrap();
    for delivery in first.iter().chain(&rest) {
        engine
            .consumer_ack("orders", "audit", delivery.record.offset, delivery.attempt)
            .await
            .unwrap();
    }
    wait_for(&engine, "behind:orders/audit", AlertState::Resolved).await;
    wait_for(&engine, "late:orders/audit", AlertState::Resolved).await;
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_queue_whose_state_commit_fails_fires_the_default_io_alarm() {
    let dir = tempfile::tempdir().unwrap();
    let plan = FaultPlan::new();
    let mut config = config(dir.path());
    config.state_faults = Some(plan.clone());
    let engine = Engine::open(config).await.unwrap();
    let spec = QueueSpec {
        name: "work".into(),
        ..Default::default()
    };
    engine.create_queue(spec).await.unwrap();
    let message = EnqueueMessage {
        value: Some(Bytes::from_static(b"job")),
        ..Default::default()
    };
    engine.enqueue("work", vec![message]).await.unwrap();
    let delivery = engine.receive("work", "w", 1, 0).await.unwrap().remove(0);
    plan.fail_write(1);
    let acked = engine.ack("work", delivery.offset, delivery.attempt).await;
    assert!(acked.is_err(), "the ack whose commit failed");
    let poisoned = wait_for(&engine, "io_poisoned:work", AlertState::Firing).await;
    assert_eq!(poisoned.kind, AlertKind::IoPoisoned);
    assert!(
        poisoned.message.contains("injected I/O failure"),
        "{}",
        poisoned.message
    );
    let _ = engine.shutdown().await;
}

#[tokio::test]
async fn a_flood_of_alarms_is_spread_over_evaluations_and_counted_in_the_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(config(dir.path())).await.unwrap();
    let queues = TRANSITIONS_PER_TICK_MAX + 20;
    for index in 0..queues {
        let name = format!("q{index}");
        let spec = QueueSpec {
            name: name.clone(),
            ..Default::default()
        };
        engine.create_queue(spec).await.unwrap();
        let message = EnqueueMessage {
            value: Some(Bytes::from_static(b"job")),
            ..Default::default()
        };
        engine.enqueue(&name, vec![message]).await.unwrap();
    }
    // Every queue has a message waiting: more fire at once than one evaluation may announce.
    engine
        .put_alert_rule(rule("waiting", AlertKind::QueueOldestAge, 0.0, None))
        .await
        .unwrap();
    for index in 0..queues {
        wait_for(&engine, &format!("waiting:q{index}"), AlertState::Firing).await;
    }
    // At most TRANSITIONS_PER_TICK_MAX per evaluation: some were put off to the next.
    assert!(engine.alert_transitions_deferred() > 0);
    let text = engine.render_metrics().await.unwrap();
    let deferred = format!(
        "omnibus_alert_transitions_deferred_total {}\n",
        engine.alert_transitions_deferred()
    );
    assert!(text.contains(&deferred), "{text}");
    let firing = format!("omnibus_alerts_firing{{kind=\"queue_oldest_age\"}} {queues}\n");
    assert!(text.contains(&firing), "{text}");
    assert!(text.contains("omnibus_alerts_firing{kind=\"consumer_lag\"} 0\n"));
    let _ = engine.shutdown().await;
}

#[tokio::test]
async fn a_keyspace_past_its_threshold_fires_until_keys_are_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(config(dir.path())).await.unwrap();
    // Nothing observed before a client uses keys: no alarm to resolve, none to fire.
    let filling = rule("filling", AlertKind::KeyspaceUsed, 0.01, None);
    engine.put_alert_rule(filling).await.unwrap();
    let keys = engine.keyspace().await.unwrap();
    // 0.01 % of the 4 GiB bound is ~430 KB: one value of 1 MB passes it.
    let big = Bytes::from(vec![b'x'; 1 << 20]);
    let set = keys.set(Bytes::from_static(b"big"), big, Default::default());
    set.unwrap().wait().await.unwrap();
    let fired = wait_for(&engine, "filling:keyspace", AlertState::Firing).await;
    assert!(fired.message.contains(" %"), "{fired:?}");
    keys.delete(&[Bytes::from_static(b"big")])
        .unwrap()
        .wait()
        .await
        .unwrap();
    wait_for(&engine, "filling:keyspace", AlertState::Resolved).await;
    // The default rule is there, at 90 %.
    let defaults = super::rules::default_rules();
    let default = defaults
        .iter()
        .find(|r| r.kind == AlertKind::KeyspaceUsed)
        .unwrap();
    assert_eq!(
        (default.name.as_str(), default.threshold),
        ("keyspace_nearly_full", 90.0)
    );
    engine.shutdown().await.unwrap();
}
