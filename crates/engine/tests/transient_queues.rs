//! Queue durability (`queue/durability.rs`): a transient queue answers enqueues without an
//! fsync and is deleted — never reopened — when the engine opens next; a durable queue
//! waits for the fsync and keeps its messages.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use omnibus_engine::exchanges::{Binding, ExchangeKind, ExchangeSpec};
use omnibus_engine::queue::{EnqueueMessage, QueueDurability, QueueSpec};
use omnibus_engine::*;
use omnibus_storage::io::{FaultPlan, FaultyIo, FileIo};

fn message(value: &str) -> EnqueueMessage {
    EnqueueMessage {
        value: Some(Bytes::copy_from_slice(value.as_bytes())),
        ..Default::default()
    }
}

fn queue(name: &str, durability: QueueDurability) -> QueueSpec {
    QueueSpec {
        name: name.into(),
        durability: Some(durability),
        ..Default::default()
    }
}

async fn receive_values(engine: &Engine, queue: &str) -> Vec<String> {
    engine
        .receive(queue, "worker", 100, 0)
        .await
        .unwrap()
        .into_iter()
        .map(|delivery| {
            String::from_utf8(delivery.record.value.unwrap_or_default().to_vec()).unwrap()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transient_queue_answers_enqueues_while_fsyncs_are_held() {
    let dir = tempfile::tempdir().unwrap();
    let plan = FaultPlan::new();
    let io = Arc::new(FaultyIo::new(Arc::new(FileIo), plan.clone()));
    let engine = Engine::open_with_io(EngineConfig::new(dir.path()), io)
        .await
        .unwrap();
    engine
        .create_queue(queue("rpc", QueueDurability::Transient))
        .await
        .unwrap();
    engine
        .create_queue(queue("kept", QueueDurability::Durable))
        .await
        .unwrap();
    let info = engine.queue_info("rpc").unwrap();
    assert_eq!(info.config.durability, QueueDurability::Transient);
    assert_eq!(
        engine.stream_info("rpc").unwrap().config.fsync,
        FsyncPolicy::Never
    );
    plan.hold_syncs(true);
    let transient = tokio::time::timeout(
        Duration::from_secs(5),
        engine.enqueue("rpc", vec![message("request")]),
    )
    .await
    .expect("a transient queue's enqueue waits for no fsync");
    assert_eq!(transient.unwrap(), vec![0]);
    let delivered = engine.receive("rpc", "worker", 1, 1_000).await.unwrap();
    assert_eq!(delivered.len(), 1);
    engine
        .ack("rpc", delivered[0].offset, delivered[0].attempt)
        .await
        .unwrap();
    let durable = {
        let engine = engine.clone();
        tokio::spawn(async move { engine.enqueue("kept", vec![message("order")]).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !durable.is_finished(),
        "a durable queue's enqueue is answered only after its fsync"
    );
    plan.hold_syncs(false);
    let answered = tokio::time::timeout(Duration::from_secs(10), durable)
        .await
        .expect("the durable enqueue ends once fsyncs resume")
        .unwrap();
    assert_eq!(answered.unwrap(), vec![0]);
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_transient_queue_is_deleted_unopened_at_the_next_start_and_a_durable_one_stays() {
    let dir = tempfile::tempdir().unwrap();
    {
        let engine = Engine::open(EngineConfig::new(dir.path())).await.unwrap();
        engine
            .create_queue(queue("rpc", QueueDurability::Transient))
            .await
            .unwrap();
        engine
            .create_queue(queue("kept", QueueDurability::Durable))
            .await
            .unwrap();
        engine
            .declare_exchange(ExchangeSpec {
                name: "requests".into(),
                kind: ExchangeKind::Direct,
                durable: true,
                auto_delete: false,
                internal: false,
                alternate_exchange: None,
            })
            .await
            .unwrap();
        for target in ["rpc", "kept"] {
            engine
                .bind_queue(Binding {
                    exchange: "requests".into(),
                    queue: target.into(),
                    routing_key: "key".into(),
                    arguments: Default::default(),
                    durable: true,
                    to_exchange: false,
                })
                .await
                .unwrap();
        }
        for target in ["rpc", "kept"] {
            engine
                .enqueue(target, vec![message("one"), message("two")])
                .await
                .unwrap();
        }
        let delivered = engine.receive("rpc", "worker", 1, 0).await.unwrap();
        engine
            .ack("rpc", delivered[0].offset, delivered[0].attempt)
            .await
            .unwrap();
        engine.shutdown().await.unwrap();
    }
    // What a power loss may do to a log never fsynced: its bytes are gone while the state
    // store still counts them. The queue must not be rebuilt from that.
    for entry in std::fs::read_dir(dir.path().join("streams").join("rpc").join("0")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|extension| extension == "log") {
            std::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .unwrap()
                .set_len(0)
                .unwrap();
        }
    }
    let engine = Engine::open(EngineConfig::new(dir.path())).await.unwrap();
    assert!(matches!(
        engine.queue_info("rpc"),
        Err(EngineError::QueueNotFound(_))
    ));
    assert!(
        engine.stream_info("rpc").is_err(),
        "its stream went with it"
    );
    assert_eq!(
        engine
            .route_exchange("requests", "key", &Default::default())
            .unwrap(),
        vec!["kept".to_string()],
        "its binding went with it"
    );
    assert_eq!(receive_values(&engine, "kept").await, vec!["one", "two"]);
    // The name can be used again, for an empty queue.
    engine
        .create_queue(queue("rpc", QueueDurability::Transient))
        .await
        .unwrap();
    assert_eq!(engine.queue_info("rpc").unwrap().ready, 0);
    engine.shutdown().await.unwrap();
}
