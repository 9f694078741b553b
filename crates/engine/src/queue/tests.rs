//! The queue through the engine API, on real files.

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::*;
use crate::EngineConfig;

fn message(value: &str) -> EnqueueMessage {
    EnqueueMessage {
        value: Some(Bytes::copy_from_slice(value.as_bytes())),
        ..Default::default()
    }
}

fn value(delivery: &Delivery) -> String {
    String::from_utf8(delivery.record.value.clone().unwrap().to_vec()).unwrap()
}

async fn engine(dir: &std::path::Path) -> Arc<Engine> {
    Engine::open(EngineConfig::new(dir)).await.unwrap()
}

fn spec(name: &str) -> QueueSpec {
    QueueSpec {
        name: name.into(),
        lease_ms: Some(300),
        max_deliver: Some(3),
        backoff: Some(Backoff::Fixed { delay_ms: 0 }),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declarations_of_one_new_queue_at_once_make_it_once() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    for round in 0..5 {
        let name = format!("raced{round}");
        let creations: Vec<_> = (0..8)
            .map(|_| {
                let (engine, spec) = (engine.clone(), spec(&name));
                tokio::spawn(async move { engine.create_queue(spec).await })
            })
            .collect();
        let mut created = 0;
        for creation in creations {
            match creation.await.unwrap() {
                Ok(_) => created += 1,
                Err(EngineError::QueueExists(_)) => {}
                Err(error) => panic!("a racing declaration failed: {error}"),
            }
        }
        assert_eq!(created, 1, "round {round}");
        // Its streams are whole: it takes and hands out messages.
        engine.enqueue(&name, vec![message("m")]).await.unwrap();
        let got = engine.receive(&name, "w", 1, 0).await.unwrap();
        assert_eq!(got.iter().map(value).collect::<Vec<_>>(), vec!["m"]);
        assert!(engine.stream(&format!("{name}.dlq")).is_ok());
    }
}

#[tokio::test]
async fn enqueue_receive_ack_round_trip_and_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let engine = engine(dir.path()).await;
        engine.create_queue(spec("jobs")).await.unwrap();
        let ids = engine
            .enqueue("jobs", (0..10).map(|i| message(&format!("m{i}"))).collect())
            .await
            .unwrap();
        assert_eq!(ids, (0..10).collect::<Vec<u64>>());
        let got = engine.receive("jobs", "w1", 4, 0).await.unwrap();
        assert_eq!(
            got.iter().map(value).collect::<Vec<_>>(),
            vec!["m0", "m1", "m2", "m3"]
        );
        for delivery in &got[..3] {
            engine
                .ack("jobs", delivery.offset, delivery.attempt)
                .await
                .unwrap();
        }
        let info = engine.queue_info("jobs").unwrap();
        assert_eq!((info.ready, info.leased, info.ack_floor), (6, 1, 3));
        engine.shutdown().await.unwrap();
    }
    let engine = engine(dir.path()).await;
    let info = engine.queue_info("jobs").unwrap();
    assert_eq!(info.ack_floor, 3, "acks survive");
    assert_eq!(
        info.ready, 7,
        "the in-flight delivery is ready again after a restart"
    );
    let got = engine.receive("jobs", "w2", 10, 0).await.unwrap();
    assert_eq!(got[0].offset, 3);
    assert_eq!(got[0].attempt, 2, "attempt counts survive");
    assert_eq!(got.len(), 7);
}

#[tokio::test]
async fn poison_message_reaches_the_dead_letter_stream_with_its_last_error() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    engine.create_queue(spec("work")).await.unwrap();
    engine
        .enqueue("work", vec![message("poison"), message("fine")])
        .await
        .unwrap();
    let mut completed = Vec::new();
    for _ in 0..10 {
        for delivery in engine.receive("work", "w", 10, 100).await.unwrap() {
            if value(&delivery) == "poison" {
                let error = format!("failed attempt {}", delivery.attempt);
                engine
                    .nack("work", delivery.offset, delivery.attempt, None, &error)
                    .await
                    .unwrap();
            } else {
                engine
                    .ack("work", delivery.offset, delivery.attempt)
                    .await
                    .unwrap();
                completed.push(value(&delivery));
            }
        }
        if engine.queue_info("work").unwrap().dead_letter_depth == 1 {
            break;
        }
    }
    assert_eq!(completed, vec!["fine"]);
    let info = engine.queue_info("work").unwrap();
    assert_eq!(
        (
            info.dead_letter_depth,
            info.ready,
            info.leased,
            info.ack_floor
        ),
        (1, 0, 0, 2)
    );
    let dead = engine
        .fetch(crate::FetchRequest {
            stream: "work.dlq".into(),
            partition: 0,
            offset: 0,
            max_records: 10,
            max_bytes: 1 << 20,
            wait_ms: 0,
        })
        .await
        .unwrap();
    let header = |name: &str| {
        dead.records[0]
            .headers
            .iter()
            .find(|h| h.name == name)
            .map(|h| String::from_utf8(h.value.to_vec()).unwrap())
    };
    assert_eq!(dead.records[0].value.as_deref(), Some(&b"poison"[..]));
    assert_eq!(header("omnibus.dlq.attempts").as_deref(), Some("3"));
    assert_eq!(
        header("omnibus.dlq.last_error").as_deref(),
        Some("failed attempt 3")
    );
}

#[tokio::test]
async fn expired_lease_redelivers_and_the_stale_ack_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    engine.create_queue(spec("lease")).await.unwrap();
    engine
        .enqueue("lease", vec![message("slow job")])
        .await
        .unwrap();
    let first = engine
        .receive("lease", "slow", 1, 0)
        .await
        .unwrap()
        .remove(0);
    let started = Instant::now();
    let second = engine
        .receive("lease", "fast", 1, 5_000)
        .await
        .unwrap()
        .remove(0);
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "redelivered only after the lease"
    );
    assert_eq!((second.offset, second.attempt), (first.offset, 2));
    let stale = engine
        .ack("lease", first.offset, first.attempt)
        .await
        .unwrap_err();
    assert_eq!(stale.code(), omnibus_types::ErrorCode::StaleAttempt);
    engine
        .ack("lease", second.offset, second.attempt)
        .await
        .unwrap();
    let again = engine
        .ack("lease", second.offset, second.attempt)
        .await
        .unwrap_err();
    assert_eq!(again.code(), omnibus_types::ErrorCode::UnknownDelivery);
}

#[tokio::test]
async fn delayed_and_prioritized_messages() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    engine.create_queue(spec("sched")).await.unwrap();
    let started = Instant::now();
    engine
        .enqueue(
            "sched",
            vec![
                EnqueueMessage {
                    delay_ms: Some(400),
                    ..message("later")
                },
                message("low"),
                EnqueueMessage {
                    priority: 7,
                    ..message("high")
                },
            ],
        )
        .await
        .unwrap();
    let first = engine.receive("sched", "w", 10, 0).await.unwrap();
    assert_eq!(
        first.iter().map(value).collect::<Vec<_>>(),
        vec!["high", "low"]
    );
    for delivery in &first {
        engine
            .ack("sched", delivery.offset, delivery.attempt)
            .await
            .unwrap();
    }
    let later = engine.receive("sched", "w", 10, 5_000).await.unwrap();
    assert_eq!(later.iter().map(value).collect::<Vec<_>>(), vec!["later"]);
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "not before it is due"
    );
}

#[tokio::test]
async fn ttl_expiry_dead_letters() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    engine.create_queue(spec("ttl")).await.unwrap();
    engine
        .enqueue(
            "ttl",
            vec![EnqueueMessage {
                ttl_ms: Some(50),
                ..message("stale")
            }],
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(engine.receive("ttl", "w", 10, 0).await.unwrap().is_empty());
    let info = engine.queue_info("ttl").unwrap();
    assert_eq!((info.dead_letter_depth, info.ack_floor), (1, 1));
}

#[tokio::test]
async fn ttl_expiry_drops_when_the_queue_does_not_dead_letter_expired_messages() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    engine
        .create_queue(QueueSpec {
            dead_letter_expired: Some(false),
            ..spec("ttl")
        })
        .await
        .unwrap();
    let stale = EnqueueMessage {
        ttl_ms: Some(50),
        ..message("stale")
    };
    engine
        .enqueue("ttl", vec![stale, message("fresh")])
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let got = engine.receive("ttl", "w", 10, 0).await.unwrap();
    assert_eq!(got.iter().map(value).collect::<Vec<_>>(), vec!["fresh"]);
    let info = engine.queue_info("ttl").unwrap();
    assert_eq!(info.dead_letter_depth, 0, "dropped, not dead-lettered");
    assert_eq!(
        (
            info.rates.dropped.last_minute,
            info.rates.dead_lettered.last_minute
        ),
        (1, 0)
    );
    assert_eq!(info.rates.delivered.last_minute, 1);
}

#[tokio::test]
async fn bad_input_gets_stable_codes() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    let missing = engine
        .enqueue("nope", vec![message("x")])
        .await
        .unwrap_err();
    assert_eq!(missing.code(), omnibus_types::ErrorCode::QueueNotFound);
    engine.create_queue(spec("q")).await.unwrap();
    assert_eq!(
        engine.create_queue(spec("q")).await.unwrap_err().code(),
        omnibus_types::ErrorCode::QueueExists
    );
    let absurd = engine
        .enqueue(
            "q",
            vec![EnqueueMessage {
                delay_ms: Some(u64::MAX),
                ..message("x")
            }],
        )
        .await
        .unwrap_err();
    assert_eq!(absurd.code(), omnibus_types::ErrorCode::BadRequest);
    let unknown = engine.ack("q", 99, 1).await.unwrap_err();
    assert_eq!(unknown.code(), omnibus_types::ErrorCode::UnknownDelivery);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_shared_keeps_per_key_order_with_four_workers() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    engine
        .create_queue(QueueSpec {
            mode: Some(ConsumerMode::KeyShared),
            max_unacked_per_worker: Some(8),
            // Long enough that no lease lapses on a loaded machine: a redelivery would make
            // the ack of the first delivery unknown, which is not what this test is about.
            lease_ms: Some(60_000),
            ..spec("ordered")
        })
        .await
        .unwrap();
    let keys = 12;
    let per_key = 40;
    let messages: Vec<EnqueueMessage> = (0..per_key)
        .flat_map(|seq| {
            (0..keys).map(move |key| EnqueueMessage {
                key: Some(Bytes::from(format!("key-{key}"))),
                value: Some(Bytes::from(format!("{key}:{seq}"))),
                ..Default::default()
            })
        })
        .collect();
    engine.enqueue("ordered", messages).await.unwrap();
    let processed = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut workers = Vec::new();
    for worker in 0..4 {
        let engine = engine.clone();
        let processed = processed.clone();
        workers.push(tokio::spawn(async move {
            let name = format!("w{worker}");
            // A worker stops once everything is processed, not at its first empty receive:
            // on a loaded machine a receive can come back empty while another worker still
            // holds the keys that remain.
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            loop {
                let batch = engine.receive("ordered", &name, 8, 200).await.unwrap();
                if batch.is_empty() {
                    let done = processed.lock().unwrap().len() == keys * per_key;
                    if done || std::time::Instant::now() > deadline {
                        return;
                    }
                    continue;
                }
                for delivery in batch {
                    // Work takes a little while, so workers really overlap.
                    tokio::time::sleep(Duration::from_micros(200)).await;
                    processed.lock().unwrap().push(value(&delivery));
                    engine
                        .ack("ordered", delivery.offset, delivery.attempt)
                        .await
                        .unwrap();
                }
            }
        }));
    }
    for worker in workers {
        worker.await.unwrap();
    }
    let processed = processed.lock().unwrap().clone();
    assert_eq!(processed.len(), keys * per_key);
    let mut next = vec![0usize; keys];
    for item in processed {
        let (key, seq) = item.split_once(':').unwrap();
        let (key, seq): (usize, usize) = (key.parse().unwrap(), seq.parse().unwrap());
        assert_eq!(seq, next[key], "key {key} processed out of order");
        next[key] += 1;
    }
}

#[tokio::test]
async fn max_length_rejects_drops_or_dead_letters_per_policy() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    for (name, overflow) in [
        ("reject", Overflow::RejectNew),
        ("drop", Overflow::DropOldest),
        ("dlq", Overflow::DeadLetterOldest),
    ] {
        engine
            .create_queue(QueueSpec {
                max_length: Some(3),
                overflow: Some(overflow),
                ..spec(name)
            })
            .await
            .unwrap();
        engine
            .enqueue(name, (0..3).map(|i| message(&format!("m{i}"))).collect())
            .await
            .unwrap();
    }
    let full = engine
        .enqueue("reject", vec![message("m3")])
        .await
        .unwrap_err();
    assert_eq!(full.code(), omnibus_types::ErrorCode::QueueFull);
    engine.enqueue("drop", vec![message("m3")]).await.unwrap();
    engine.enqueue("dlq", vec![message("m3")]).await.unwrap();
    for (name, dead) in [("drop", 0), ("dlq", 1)] {
        let got: Vec<String> = engine
            .receive(name, "w", 10, 0)
            .await
            .unwrap()
            .iter()
            .map(value)
            .collect();
        assert_eq!(got, vec!["m1", "m2", "m3"], "{name}: the oldest made room");
        assert_eq!(
            engine.queue_info(name).unwrap().dead_letter_depth,
            dead,
            "{name}"
        );
    }
}

#[tokio::test]
async fn a_message_id_seen_within_the_window_is_not_enqueued_twice() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    engine
        .create_queue(QueueSpec {
            dedup_window_ms: Some(60_000),
            ..spec("dedup")
        })
        .await
        .unwrap();
    let with_id = |id: &str, value: &str| EnqueueMessage {
        id: Some(id.into()),
        ..message(value)
    };
    let first = engine
        .enqueue("dedup", vec![with_id("a", "one"), with_id("b", "two")])
        .await
        .unwrap();
    let again = engine
        .enqueue(
            "dedup",
            vec![
                with_id("a", "one again"),
                with_id("c", "three"),
                with_id("c", "three again"),
            ],
        )
        .await
        .unwrap();
    assert_eq!(again[0], first[0], "same id, same offset");
    assert_eq!(again[1], again[2], "a duplicate inside one call too");
    let got: Vec<String> = engine
        .receive("dedup", "w", 10, 0)
        .await
        .unwrap()
        .iter()
        .map(value)
        .collect();
    assert_eq!(got, vec!["one", "two", "three"]);
}

#[tokio::test]
async fn attempts_recorded_as_runs_survive_a_restart_and_leave_no_keys_behind() {
    let dir = tempfile::tempdir().unwrap();
    {
        let engine = engine(dir.path()).await;
        engine.create_queue(spec("runs")).await.unwrap();
        engine
            .enqueue("runs", (0..6).map(|i| message(&format!("m{i}"))).collect())
            .await
            .unwrap();
        let got = engine.receive("runs", "w1", 6, 0).await.unwrap();
        assert!(got.iter().all(|d| d.attempt == 1));
        engine.ack("runs", 1, 1).await.unwrap();
        engine.ack("runs", 4, 1).await.unwrap();
        engine.nack("runs", 2, 1, Some(0), "boom").await.unwrap();
        let again = engine.receive("runs", "w1", 1, 0).await.unwrap();
        assert_eq!((again[0].offset, again[0].attempt), (2, 2));
        // No shutdown: the leases are simply lost, as in a crash.
    }
    let engine = engine(dir.path()).await;
    let got = engine.receive("runs", "w2", 10, 0).await.unwrap();
    let attempts: Vec<(u64, u32)> = got.iter().map(|d| (d.offset, d.attempt)).collect();
    assert_eq!(attempts, vec![(0, 2), (2, 3), (3, 2), (5, 2)]);
    for delivery in &got {
        engine
            .ack("runs", delivery.offset, delivery.attempt)
            .await
            .unwrap();
    }
    assert_eq!(engine.queue_info("runs").unwrap().ack_floor, 6);
    let left: Vec<String> = engine
        .state
        .scan_prefix(keys::TABLE, &keys::prefix("runs"))
        .unwrap()
        .into_iter()
        .filter_map(|(key, _)| keys::suffix("runs", &key).map(str::to_string))
        .collect();
    assert_eq!(
        left,
        vec!["F", "L0"],
        "runs, attempts and acks above the floor are gone; the first-delivery frontier stays"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_streams_a_queue_lives_in_cannot_be_deleted_grown_or_altered_under_it() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    let queue = engine.create_queue(spec("orders")).await.unwrap();
    engine
        .enqueue("orders", vec![message("kept")])
        .await
        .unwrap();
    let dead_letter = queue.config.dead_letter.clone();
    for stream in ["orders", dead_letter.as_str()] {
        let settings = engine.stream_info(stream).unwrap().config.settings();
        for refused in [
            engine.delete_stream(stream).await,
            engine.add_partitions(stream, 2).await.map(drop),
            engine.alter_stream(stream, settings, false).await.map(drop),
        ] {
            let error = refused.unwrap_err();
            assert!(
                matches!(&error, EngineError::InvalidConfig(m) if m.contains("queue \"orders\"")),
                "{stream}: {error}"
            );
        }
    }
    // The queue still works, with its message.
    let got = engine.receive("orders", "w", 10, 0).await.unwrap();
    assert_eq!(got.iter().map(value).collect::<Vec<_>>(), ["kept"]);
    // Deleting the queue deletes its stream; the dead letters stay and are a plain stream now.
    engine.delete_queue("orders").await.unwrap();
    assert!(engine.stream_info("orders").is_err());
    engine.delete_stream(&dead_letter).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_publish_into_a_queues_stream_is_refused_and_a_kafka_or_live_one_is_enqueued() {
    // A record appended past the queue would sit in its log untracked: never delivered, and
    // holding the queue's ack floor below it forever. HTTP has the queue API, so its stream
    // publish is refused; a Kafka produce or a live (NATS) publish is enqueued instead.
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    engine.create_queue(spec("q")).await.unwrap();
    engine.enqueue("q", vec![message("a")]).await.unwrap();
    let foreign = crate::PublishRecord {
        value: Some(Bytes::from_static(b"foreign")),
        ..Default::default()
    };
    for target in [
        crate::PublishTarget::Stream("q".into()),
        crate::PublishTarget::Subject("q".into()),
    ] {
        let refused = engine.publish(target, vec![foreign.clone()]).await;
        assert!(
            matches!(&refused, Err(EngineError::InvalidConfig(m)) if m.contains("queue \"q\"")),
            "{refused:?}"
        );
    }
    // Kafka's path: a produced batch's records are enqueued, broker headers dropped.
    let produced = omnibus_types::Record {
        offset: 0,
        timestamp_ms: 0,
        subject: String::new(),
        key: Some(Bytes::from_static(b"k")),
        value: Some(Bytes::from_static(b"kafka")),
        headers: vec![
            omnibus_types::Header {
                name: "trace".into(),
                value: Bytes::from_static(b"t1"),
            },
            omnibus_types::Header {
                name: "omnibus.due_ms".into(),
                value: Bytes::from_static(b"99999999999999"),
            },
        ],
    };
    let batch = omnibus_storage::batch::encode_batch(&[produced]).unwrap();
    let appended = engine.append_raw("q", 0, batch.clone()).await.unwrap();
    assert_eq!((appended.first_offset, appended.last_offset), (1, 1));
    let wrong_partition = engine.append_raw("q", 1, batch).await;
    assert!(
        matches!(wrong_partition, Err(EngineError::PartitionNotFound { .. })),
        "{wrong_partition:?}"
    );
    // A live publish on the queue's name (NATS, Redis pub/sub).
    let live = crate::router::LiveMessage {
        subject: "q".into(),
        reply: None,
        headers: Vec::new(),
        payload: Bytes::from_static(b"nats"),
        status: None,
        appended: false,
    };
    let published = engine.publish_live(live, None).await.unwrap();
    assert!(
        matches!(&published, crate::router::LivePublish::Enqueued { position, .. } if position.offset == 2),
        "{published:?}"
    );

    engine.enqueue("q", vec![message("b")]).await.unwrap();
    let got = engine.receive("q", "w", 10, 100).await.unwrap();
    assert_eq!(
        got.iter().map(value).collect::<Vec<_>>(),
        ["a", "kafka", "nats", "b"]
    );
    let kafka = &got[1].record;
    assert_eq!(kafka.key.as_deref(), Some(&b"k"[..]));
    assert!(kafka.headers.iter().any(|h| h.name == "trace"));
    assert!(
        !kafka
            .headers
            .iter()
            .any(|h| h.name == "omnibus.due_ms" && h.value.as_ref() == b"99999999999999"),
        "a producer cannot set the broker's headers"
    );
    for delivery in &got {
        engine
            .ack("q", delivery.offset, delivery.attempt)
            .await
            .unwrap();
    }
    assert_eq!(
        engine.queue_info("q").unwrap().ack_floor,
        4,
        "the floor passes every message"
    );
}

/// A ready signal taken before an empty receive wakes for a message enqueued after it —
/// also one enqueued before the wait starts — for a nack's requeue, for a lease expiring and
/// for the queue's deletion; it does not wake while nothing changes.
#[tokio::test]
async fn a_ready_signal_wakes_for_enqueue_requeue_lease_expiry_and_deletion() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    engine.create_queue(spec("ready")).await.unwrap();
    let within = Duration::from_secs(2);

    let signal = engine.ready_signal("ready").unwrap();
    assert!(engine.receive("ready", "w", 1, 0).await.unwrap().is_empty());
    let idle = tokio::time::timeout(Duration::from_millis(100), signal.changed()).await;
    assert!(idle.is_err(), "woke with nothing ready");

    let signal = engine.ready_signal("ready").unwrap();
    engine.enqueue("ready", vec![message("a")]).await.unwrap();
    tokio::time::timeout(within, signal.changed())
        .await
        .unwrap();

    let got = engine.receive("ready", "w", 1, 0).await.unwrap();
    let signal = engine.ready_signal("ready").unwrap();
    let waiting = tokio::spawn(signal.changed());
    tokio::time::sleep(Duration::from_millis(20)).await;
    engine
        .nack("ready", got[0].offset, got[0].attempt, Some(0), "again")
        .await
        .unwrap();
    tokio::time::timeout(within, waiting)
        .await
        .unwrap()
        .unwrap();

    // Leased and left: the lease (300 ms) expires and the message is ready again.
    let got = engine.receive("ready", "w", 1, 0).await.unwrap();
    assert_eq!(got.len(), 1);
    let signal = engine.ready_signal("ready").unwrap();
    tokio::time::timeout(within, signal.changed())
        .await
        .unwrap();

    let signal = engine.ready_signal("ready").unwrap();
    engine.delete_queue("ready").await.unwrap();
    tokio::time::timeout(within, signal.changed())
        .await
        .unwrap();
    assert!(matches!(
        engine.ready_signal("ready"),
        Err(EngineError::QueueNotFound(_))
    ));
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn one_at_a_time_deliveries_read_several_enqueued_batches_per_log_read() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    let mut spec = spec("single");
    spec.max_unacked_per_worker = Some(10_000);
    // No lease may lapse while 5,000 deliveries are taken (a redelivery would come first).
    spec.lease_ms = Some(60_000);
    engine.create_queue(spec).await.unwrap();
    let payload = "x".repeat(100);
    // Five enqueues of 1,000: five batches of ~130 KiB, as a job producer's bulk enqueue
    // leaves them.
    for _ in 0..5 {
        engine
            .enqueue("single", (0..1_000).map(|_| message(&payload)).collect())
            .await
            .unwrap();
    }
    for expected in 0..5_000u64 {
        let got = engine.receive("single", "worker", 1, 0).await.unwrap();
        assert_eq!(got[0].offset, expected);
    }
    let reads = engine.queue("single").unwrap().reader.log_reads();
    // A read held one batch at 256 KiB (five reads); the log's fixed cost per read is
    // shared by several batches now.
    assert!(reads <= 2, "{reads} log reads for 5,000 deliveries");
}
