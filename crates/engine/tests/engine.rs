//! Engine behaviour through its public API, on real files unless a test needs faults.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use omnibus_engine::*;
use omnibus_storage::io::{FaultPlan, FaultyIo, FileIo};
use omnibus_types::{ErrorCode, Header};

fn record(value: &str) -> PublishRecord {
    PublishRecord {
        value: Some(Bytes::copy_from_slice(value.as_bytes())),
        ..Default::default()
    }
}

fn keyed(key: &str, value: &str) -> PublishRecord {
    PublishRecord {
        key: Some(Bytes::copy_from_slice(key.as_bytes())),
        ..record(value)
    }
}

/// An engine whose partition logs run on a disk that can be told to fail or stall.
async fn faulty_engine(dir: &std::path::Path) -> (Arc<Engine>, Arc<FaultPlan>) {
    let plan = FaultPlan::new();
    let io = Arc::new(FaultyIo::new(Arc::new(FileIo), plan.clone()));
    let engine = Engine::open_with_io(EngineConfig::new(dir), io)
        .await
        .unwrap();
    (engine, plan)
}

fn spec(name: &str, partitions: u32) -> StreamSpec {
    StreamSpec {
        name: name.into(),
        partitions: Some(partitions),
        ..Default::default()
    }
}

async fn fetch_all(engine: &Engine, stream: &str, partition: u32) -> Vec<String> {
    let result = engine
        .fetch(FetchRequest {
            stream: stream.into(),
            partition,
            offset: 0,
            max_records: 100_000,
            max_bytes: 64 << 20,
            wait_ms: 0,
        })
        .await
        .unwrap();
    result
        .records
        .iter()
        .map(|r| String::from_utf8(r.value.clone().unwrap().to_vec()).unwrap())
        .collect()
}

#[tokio::test]
async fn streams_are_created_listed_described_and_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(EngineConfig::new(dir.path())).await.unwrap();
    let info = engine.create_stream(spec("orders", 3)).await.unwrap();
    assert_eq!(info.config.partitions, 3);
    assert_eq!(info.config.subjects, vec!["orders".to_string()]);
    assert_eq!(info.config.fsync, FsyncPolicy::Always);
    assert_eq!(
        engine
            .create_stream(spec("orders", 1))
            .await
            .unwrap_err()
            .code(),
        ErrorCode::StreamExists
    );
    assert_eq!(
        engine
            .create_stream(spec("bad\nname", 1))
            .await
            .unwrap_err()
            .code(),
        ErrorCode::InvalidName
    );
    assert_eq!(
        engine
            .create_stream(spec("zero", 0))
            .await
            .unwrap_err()
            .code(),
        ErrorCode::InvalidConfig
    );
    assert_eq!(engine.list_streams().len(), 1);
    engine.delete_stream("orders").await.unwrap();
    assert_eq!(
        engine.stream_info("orders").unwrap_err().code(),
        ErrorCode::StreamNotFound
    );
    assert!(!dir.path().join("streams/orders").exists());
    // Re-creating starts empty.
    engine.create_stream(spec("orders", 1)).await.unwrap();
    assert_eq!(engine.stream_info("orders").unwrap().records_retained(), 0);
}

#[tokio::test]
async fn publish_and_fetch_round_trip_with_keys_headers_and_subjects() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(EngineConfig::new(dir.path())).await.unwrap();
    engine
        .create_stream(StreamSpec {
            subjects: vec!["order.*".into()],
            ..spec("orders", 1)
        })
        .await
        .unwrap();
    let positions = engine
        .publish(
            PublishTarget::Subject("order.created".into()),
            vec![PublishRecord {
                headers: vec![Header {
                    name: "trace".into(),
                    value: Bytes::from_static(b"abc"),
                }],
                ..keyed("k1", "v1")
            }],
        )
        .await
        .unwrap();
    assert_eq!(
        positions,
        vec![RecordPosition {
            partition: 0,
            offset: 0
        }]
    );
    engine
        .publish(PublishTarget::Stream("orders".into()), vec![record("v2")])
        .await
        .unwrap();
    let fetched = engine
        .fetch(FetchRequest {
            stream: "orders".into(),
            partition: 0,
            offset: 0,
            max_records: 10,
            max_bytes: 1 << 20,
            wait_ms: 0,
        })
        .await
        .unwrap();
    assert_eq!(fetched.records.len(), 2);
    assert_eq!(fetched.records[0].subject, "order.created");
    assert_eq!(fetched.records[0].key.as_deref(), Some(&b"k1"[..]));
    assert_eq!(fetched.records[0].headers[0].name, "trace");
    assert_eq!(fetched.records[1].subject, "orders");
    assert_eq!(fetched.next_offset, 2);
    assert_eq!(fetched.high_watermark, 2);
    let error = engine
        .publish(
            PublishTarget::Subject("payment.created".into()),
            vec![record("x")],
        )
        .await
        .unwrap_err();
    assert_eq!(error.code(), ErrorCode::NoStreamForSubject);
    let overlap = engine
        .create_stream(StreamSpec {
            subjects: vec!["order.created".into()],
            ..spec("other", 1)
        })
        .await
        .unwrap_err();
    assert_eq!(overlap.code(), ErrorCode::SubjectsOverlap);
}

#[tokio::test]
async fn keys_choose_partitions_like_kafka_and_keyless_records_round_robin() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(EngineConfig::new(dir.path())).await.unwrap();
    engine.create_stream(spec("events", 4)).await.unwrap();
    let records: Vec<PublishRecord> = (0..40)
        .map(|i| keyed(&format!("key-{}", i % 5), "v"))
        .collect();
    let positions = engine
        .publish(PublishTarget::Stream("events".into()), records)
        .await
        .unwrap();
    for (i, position) in positions.iter().enumerate() {
        let key = format!("key-{}", i % 5);
        assert_eq!(
            position.partition,
            streams::partitioner::partition_for_key(key.as_bytes(), 4)
        );
    }
    let keyless = engine
        .publish(
            PublishTarget::Stream("events".into()),
            (0..8).map(|_| record("x")).collect(),
        )
        .await
        .unwrap();
    let mut counts = [0; 4];
    for position in keyless {
        counts[position.partition as usize] += 1;
    }
    assert_eq!(counts, [2, 2, 2, 2]);
}

#[tokio::test]
async fn long_poll_returns_when_a_record_arrives_and_times_out_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(EngineConfig::new(dir.path())).await.unwrap();
    engine.create_stream(spec("live", 1)).await.unwrap();
    let request = FetchRequest {
        stream: "live".into(),
        partition: 0,
        offset: 0,
        max_records: 10,
        max_bytes: 1 << 20,
        wait_ms: 5_000,
    };
    let started = Instant::now();
    let publisher = {
        let engine = engine.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            engine
                .publish(PublishTarget::Stream("live".into()), vec![record("hello")])
                .await
                .unwrap();
        })
    };
    let result = engine.fetch(request.clone()).await.unwrap();
    publisher.await.unwrap();
    assert_eq!(result.records.len(), 1);
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "returned when data arrived"
    );
    let started = Instant::now();
    let empty = engine
        .fetch(FetchRequest {
            offset: 1,
            wait_ms: 200,
            ..request
        })
        .await
        .unwrap();
    assert!(empty.records.is_empty());
    assert!(started.elapsed() >= Duration::from_millis(190));
}

/// A wait for records of a stream that does not exist yet (Redis `XREAD BLOCK` before the
/// first `XADD`) lasts until the stream is created, not a moment less and not a poll more.
#[tokio::test]
async fn a_wait_on_a_missing_stream_ends_when_the_stream_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(EngineConfig::new(dir.path())).await.unwrap();
    let waiting = {
        let engine = engine.clone();
        tokio::spawn(async move {
            engine
                .wait_for_records(&[("later".to_string(), 0, 0)], 20_000)
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!waiting.is_finished(), "the wait ended with no stream");
    engine.create_stream(spec("later", 1)).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("the creation ended the wait")
        .unwrap();

    // A stream that exists only ends the wait with records.
    let started = Instant::now();
    engine
        .wait_for_records(&[("later".to_string(), 0, 0)], 200)
        .await;
    assert!(started.elapsed() >= Duration::from_millis(190));
}

#[tokio::test]
async fn offsets_resolve_and_groups_commit_read_and_report_lag() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(EngineConfig::new(dir.path())).await.unwrap();
    engine.create_stream(spec("s", 2)).await.unwrap();
    for i in 0..10 {
        engine
            .publish(
                PublishTarget::Stream("s".into()),
                vec![PublishRecord {
                    partition: Some(0),
                    timestamp_ms: Some(1_000 + i),
                    ..record("v")
                }],
            )
            .await
            .unwrap();
    }
    assert_eq!(
        engine
            .resolve_offset("s", 0, OffsetSpec::Earliest)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        engine
            .resolve_offset("s", 0, OffsetSpec::Latest)
            .await
            .unwrap(),
        10
    );
    assert_eq!(
        engine
            .resolve_offset("s", 0, OffsetSpec::Timestamp(1_004))
            .await
            .unwrap(),
        4
    );
    assert_eq!(
        engine
            .resolve_offset("s", 5, OffsetSpec::Latest)
            .await
            .unwrap_err()
            .code(),
        ErrorCode::PartitionNotFound
    );
    engine
        .commit_offsets(
            "g",
            vec![OffsetCommit {
                stream: "s".into(),
                partition: 0,
                offset: 7,
                metadata: "m".into(),
            }],
        )
        .await
        .unwrap();
    let committed = engine.committed_offsets("g", Some("s")).await.unwrap();
    assert_eq!(committed.len(), 1);
    assert_eq!(
        (committed[0].offset, committed[0].metadata.as_str()),
        (7, "m")
    );
    let lag = engine.group_lag("g", None).await.unwrap();
    assert_eq!(lag.len(), 2);
    assert_eq!((lag[0].committed, lag[0].lag), (Some(7), 3));
    assert_eq!((lag[1].committed, lag[1].lag), (None, 0));
    assert_eq!(engine.list_groups().await.unwrap(), vec!["g".to_string()]);
    let unknown = engine
        .commit_offsets(
            "g",
            vec![OffsetCommit {
                stream: "nope".into(),
                partition: 0,
                offset: 1,
                metadata: String::new(),
            }],
        )
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), ErrorCode::StreamNotFound);

    // Deleting one partition's offset leaves the others; a missing one is no error.
    let other = OffsetCommit {
        stream: "s".into(),
        partition: 1,
        offset: 0,
        metadata: String::new(),
    };
    engine.commit_offsets("g", vec![other]).await.unwrap();
    engine
        .delete_offsets("g", &[("s".into(), 0), ("gone".into(), 3)])
        .await
        .unwrap();
    let committed = engine.committed_offsets("g", None).await.unwrap();
    assert_eq!(committed.len(), 1);
    assert_eq!((committed[0].partition, committed[0].offset), (1, 0));
    engine
        .delete_offsets("g", &[("s".into(), 1)])
        .await
        .unwrap();
    assert!(
        engine.list_groups().await.unwrap().is_empty(),
        "no offsets left"
    );
}

#[tokio::test]
async fn everything_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let engine = Engine::open(EngineConfig::new(dir.path())).await.unwrap();
        engine.create_stream(spec("keep", 2)).await.unwrap();
        let records = (0..1000)
            .map(|i| keyed(&i.to_string(), &format!("value-{i}")))
            .collect();
        engine
            .publish(PublishTarget::Stream("keep".into()), records)
            .await
            .unwrap();
        engine
            .commit_offsets(
                "g",
                vec![OffsetCommit {
                    stream: "keep".into(),
                    partition: 1,
                    offset: 5,
                    metadata: String::new(),
                }],
            )
            .await
            .unwrap();
        engine.shutdown().await.unwrap();
    }
    let engine = Engine::open(EngineConfig::new(dir.path())).await.unwrap();
    let info = engine.stream_info("keep").unwrap();
    assert_eq!(info.records_retained(), 1000);
    let mut all = fetch_all(&engine, "keep", 0).await;
    all.extend(fetch_all(&engine, "keep", 1).await);
    all.sort();
    let mut expected: Vec<String> = (0..1000).map(|i| format!("value-{i}")).collect();
    expected.sort();
    assert_eq!(all, expected);
    assert_eq!(
        engine.committed_offsets("g", None).await.unwrap()[0].offset,
        5
    );
}

#[tokio::test]
async fn oversized_records_and_batches_are_refused_with_stable_codes() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(EngineConfig::new(dir.path())).await.unwrap();
    engine
        .create_stream(StreamSpec {
            message_bytes_max: Some(100),
            ..spec("small", 1)
        })
        .await
        .unwrap();
    let error = engine
        .publish(
            PublishTarget::Stream("small".into()),
            vec![record(&"x".repeat(101))],
        )
        .await
        .unwrap_err();
    assert_eq!(error.code(), ErrorCode::MessageTooLarge);
    let too_many = (0..omnibus_types::limits::PUBLISH_RECORDS_MAX + 1)
        .map(|_| record("x"))
        .collect();
    let error = engine
        .publish(PublishTarget::Stream("small".into()), too_many)
        .await
        .unwrap_err();
    assert_eq!(error.code(), ErrorCode::LimitExceeded);
    assert_eq!(
        engine.stream_info("small").unwrap().records_retained(),
        0,
        "nothing partial was written"
    );
}

#[tokio::test]
async fn an_fsync_failure_fails_one_partition_and_others_keep_serving() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, plan) = faulty_engine(dir.path()).await;
    engine.create_stream(spec("a", 1)).await.unwrap();
    engine.create_stream(spec("b", 1)).await.unwrap();
    engine
        .publish(PublishTarget::Stream("a".into()), vec![record("safe")])
        .await
        .unwrap();
    plan.fail_sync(1);
    let error = engine
        .publish(PublishTarget::Stream("a".into()), vec![record("lost")])
        .await
        .unwrap_err();
    assert_eq!(error.code(), ErrorCode::StorageFailed);
    let again = engine
        .publish(PublishTarget::Stream("a".into()), vec![record("refused")])
        .await
        .unwrap_err();
    assert_eq!(again.code(), ErrorCode::StorageFailed);
    assert!(engine.stream_info("a").unwrap().partition_info[0]
        .write_error
        .is_some());
    engine
        .publish(PublishTarget::Stream("b".into()), vec![record("fine")])
        .await
        .unwrap();
    assert_eq!(fetch_all(&engine, "a", 0).await, vec!["safe"]);
    assert_eq!(fetch_all(&engine, "b", 0).await, vec!["fine"]);
}

/// Reproduces a review finding: a publish of more than ~1 MiB to one partition was split into
/// chunks appended from concurrent tasks, so its records could land out of request order and
/// interleave with another request's. Five concurrent requests of 6,000 × 1 KiB records each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multi_mib_publish_to_one_partition_keeps_request_order_and_consecutive_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(EngineConfig::new(dir.path())).await.unwrap();
    engine.create_stream(spec("big", 1)).await.unwrap();
    let mut requests = tokio::task::JoinSet::new();
    for request in 0..5 {
        let engine = engine.clone();
        requests.spawn(async move {
            let records: Vec<PublishRecord> = (0..6_000)
                .map(|index| record(&format!("{request}-{index:05}-{}", "x".repeat(1000))))
                .collect();
            let positions = engine
                .publish(PublishTarget::Stream("big".into()), records)
                .await
                .unwrap();
            (request, positions)
        });
    }
    let mut first_offsets = Vec::new();
    while let Some(joined) = requests.join_next().await {
        let (request, positions) = joined.unwrap();
        let first = positions[0].offset;
        for (index, position) in positions.iter().enumerate() {
            assert_eq!(position.partition, 0);
            assert_eq!(
                position.offset,
                first + index as u64,
                "request {request}: record {index} is not at a consecutive offset"
            );
        }
        first_offsets.push((first, request));
    }
    // What is stored agrees with what was answered, record by record.
    first_offsets.sort();
    let stored = fetch_all(&engine, "big", 0).await;
    assert_eq!(stored.len(), 30_000);
    for (first, request) in first_offsets {
        for index in 0..6_000 {
            let value = &stored[first as usize + index];
            assert!(
                value.starts_with(&format!("{request}-{index:05}-")),
                "offset {} holds {}",
                first as usize + index,
                &value[..12]
            );
        }
    }
}

/// A review finding: changing a stream held the global streams lock across its disk work,
/// so one stalled disk stopped every publish and fetch. Here the disk under stream `slow`
/// stalls (fsyncs never return) while a publish to it and a change of its settings are in
/// flight; publishes and fetches on `fast`, and creating another stream, must go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_disk_under_one_stream_does_not_stall_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, plan) = faulty_engine(dir.path()).await;
    engine.create_stream(spec("slow", 1)).await.unwrap();
    engine.create_stream(spec("fast", 1)).await.unwrap();
    plan.hold_syncs_under(&dir.path().join("streams").join("slow"));
    let stalled_publish = {
        let engine = engine.clone();
        tokio::spawn(async move {
            engine
                .publish(PublishTarget::Stream("slow".into()), vec![record("held")])
                .await
        })
    };
    // The publish waits for its fsync before the change closes the log under it.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let stalled_change = {
        let engine = engine.clone();
        tokio::spawn(async move {
            let mut settings = engine.stream_info("slow").unwrap().config.settings();
            settings.segment_ms += 1;
            engine.alter_stream("slow", settings, false).await
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !stalled_publish.is_finished(),
        "the publish to 'slow' is held"
    );
    assert!(
        !stalled_change.is_finished(),
        "the change of 'slow' is held"
    );
    let others = async {
        let positions = engine
            .publish(PublishTarget::Stream("fast".into()), vec![record("quick")])
            .await
            .unwrap();
        assert_eq!(positions[0].offset, 0);
        assert_eq!(fetch_all(&engine, "fast", 0).await, vec!["quick"]);
        engine.create_stream(spec("another", 1)).await.unwrap();
        assert_eq!(engine.list_streams().len(), 3);
    };
    tokio::time::timeout(Duration::from_secs(5), others)
        .await
        .expect("the other streams were held up by the stalled disk");
    plan.hold_syncs(false);
    let published = tokio::time::timeout(Duration::from_secs(10), stalled_publish)
        .await
        .expect("the held publish ends once the disk recovers")
        .unwrap();
    assert!(published.is_ok(), "{published:?}");
    let changed = tokio::time::timeout(Duration::from_secs(10), stalled_change)
        .await
        .expect("the held change ends once the disk recovers")
        .unwrap();
    assert!(changed.is_ok(), "{changed:?}");
    assert_eq!(fetch_all(&engine, "slow", 0).await, vec!["held"]);
}

/// The two phases of a publish: `enqueue_publish` gives records their offsets and returns
/// while the disk holds their fsync (nothing is readable or answered yet); a second publish
/// enqueued meanwhile lands after the first; both become durable, in order, once it syncs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_enqueued_during_an_fsync_land_in_order_and_answer_only_once_durable() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, plan) = faulty_engine(dir.path()).await;
    engine.create_stream(spec("s", 1)).await.unwrap();
    plan.hold_syncs(true);
    let target = || PublishTarget::Stream("s".into());
    let first = engine
        .enqueue_publish(target(), vec![record("a"), record("b")])
        .await
        .unwrap();
    let second = engine
        .enqueue_publish(target(), vec![record("c")])
        .await
        .unwrap();
    assert_eq!(engine.partition_next_offset("s", 0).unwrap(), 3);
    assert_eq!(
        engine.partition_bounds("s", 0).unwrap(),
        (0, 0),
        "none durable"
    );
    let second = tokio::spawn(second.durable());
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!second.is_finished(), "answered before its fsync");
    plan.hold_syncs(false);
    let first = tokio::time::timeout(Duration::from_secs(10), first.durable())
        .await
        .expect("durable once the disk syncs")
        .unwrap();
    let second = second.await.unwrap().unwrap();
    let offsets: Vec<u64> = first.iter().chain(&second).map(|p| p.offset).collect();
    assert_eq!(offsets, vec![0, 1, 2]);
    assert_eq!(fetch_all(&engine, "s", 0).await, vec!["a", "b", "c"]);
}
