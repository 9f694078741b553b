//! A full disk is survived without a restart, on a real (tmpfs) filesystem that fills up.
//! Needs root to mount; skips with a notice otherwise.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use omnibus_engine::*;
use omnibus_storage::tmpfs::TmpfsMount;
use omnibus_types::ErrorCode;

fn spec(name: &str) -> StreamSpec {
    StreamSpec {
        name: name.into(),
        partitions: Some(1),
        ..Default::default()
    }
}

fn value(index: usize) -> PublishRecord {
    let mut bytes = format!("record-{index:06}-").into_bytes();
    bytes.resize(16 * 1024, b'x');
    PublishRecord {
        value: Some(Bytes::from(bytes)),
        ..Default::default()
    }
}

async fn values(engine: &Engine, stream: &str) -> Vec<Bytes> {
    let mut values = Vec::new();
    loop {
        let fetched = engine
            .fetch(FetchRequest {
                stream: stream.into(),
                partition: 0,
                offset: values.len() as u64,
                max_records: 10_000,
                max_bytes: 4 << 20,
                wait_ms: 0,
            })
            .await
            .unwrap();
        if fetched.records.is_empty() {
            return values;
        }
        values.extend(fetched.records.into_iter().map(|r| r.value.unwrap()));
    }
}

/// Takes whatever space is left, so only the reserve stands between the broker and ENOSPC.
fn fill(path: &Path) {
    let mut file = std::fs::File::create(path).unwrap();
    let chunk = vec![0u8; 4096];
    while file.write_all(&chunk).is_ok() {}
    let _ = file.sync_all();
}

async fn publish(engine: &Engine, stream: &str, index: usize) -> Result<Vec<RecordPosition>> {
    engine
        .publish(PublishTarget::Stream(stream.into()), vec![value(index)])
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_heals_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let Some(mount) = TmpfsMount::new(dir.path(), 16 * 1024 * 1024) else {
        return;
    };
    let mut config = EngineConfig::new(mount.path().join("data"));
    config.disk_reserve_bytes = 1024 * 1024;
    config.maintenance_interval_ms = 20;
    let engine = Engine::open(config).await.unwrap();
    assert!(engine.health().is_ok(), "{:?}", engine.health());
    engine.create_stream(spec("spare")).await.unwrap();
    engine.create_stream(spec("events")).await.unwrap();
    for index in 0..200 {
        publish(&engine, "spare", index).await.unwrap();
    }

    // Publish until the disk is full; remember what was acknowledged.
    let mut acknowledged = Vec::new();
    let refused = loop {
        let index = acknowledged.len();
        assert!(index < 10_000, "the disk never filled");
        match publish(&engine, "events", index).await {
            Ok(_) => acknowledged.push(value(index).value.unwrap()),
            Err(error) => break error,
        }
    };
    assert_eq!(refused.code(), ErrorCode::DiskFull, "{refused}");
    assert_eq!(
        values(&engine, "events").await,
        acknowledged,
        "every acknowledged record reads back"
    );
    let again = publish(&engine, "events", 0).await.unwrap_err();
    assert_eq!(again.code(), ErrorCode::DiskFull, "{again}");

    // Whatever is left goes too; metadata writes now fail, and the state store with them.
    fill(&mount.path().join("filler"));
    let mut created = 0;
    let state_error = loop {
        assert!(created < 1000, "the state store never filled");
        match engine
            .create_stream(spec(&format!("while-full-{created}")))
            .await
        {
            Ok(_) => created += 1,
            Err(error) => break error,
        }
    };
    assert_eq!(state_error.code(), ErrorCode::DiskFull, "{state_error}");
    let health = engine.health();
    let kinds: Vec<HealthProblemKind> = health.problems.iter().map(|p| p.kind).collect();
    assert!(kinds.contains(&HealthProblemKind::DiskFull), "{health:?}");
    assert!(
        kinds.contains(&HealthProblemKind::StateStoreFailed),
        "{health:?}"
    );
    let partition = health
        .problems
        .iter()
        .find(|p| p.kind == HealthProblemKind::PartitionRefusingWrites)
        .unwrap_or_else(|| panic!("{health:?}"));
    assert_eq!(partition.stream.as_deref(), Some("events"));
    assert_eq!(partition.partition, Some(0));
    assert!(partition.reason.contains("disk full"), "{partition:?}");

    // Deleting a stream frees space even now, without a restart.
    engine.delete_stream("spare").await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !engine.health().is_ok() {
        assert!(
            Instant::now() < deadline,
            "still degraded: {:?}",
            engine.health()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        mount.path().join("data/reserve.bin").exists(),
        "the reserve is back"
    );
    let next = publish(&engine, "events", acknowledged.len())
        .await
        .unwrap();
    assert_eq!(
        next[0].offset,
        acknowledged.len() as u64,
        "offsets stay dense"
    );
    acknowledged.push(value(acknowledged.len()).value.unwrap());
    engine.create_stream(spec("after")).await.unwrap();
    assert_eq!(values(&engine, "events").await, acknowledged);
    engine.shutdown().await.unwrap();
}
