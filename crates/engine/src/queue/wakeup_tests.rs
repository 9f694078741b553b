//! What a delivery costs besides itself: timer task wake-ups and log reads shared by
//! workers that arrive together.

use std::sync::atomic::Ordering;
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

async fn engine(dir: &std::path::Path) -> Arc<Engine> {
    Engine::open(EngineConfig::new(dir)).await.unwrap()
}

fn spec(name: &str, lease_ms: u64) -> QueueSpec {
    QueueSpec {
        name: name.into(),
        lease_ms: Some(lease_ms),
        max_unacked_per_worker: Some(10_000),
        // An expired lease is retried at once (the default backoff would wait a second).
        backoff: Some(Backoff::Fixed { delay_ms: 0 }),
        ..Default::default()
    }
}

/// Lets the timer task run its first pass and plan its sleep.
async fn timer_task_settled(queue: &Queue) {
    let start = Instant::now();
    while queue.timer_wake_at_ms.load(Ordering::Acquire) == i64::MAX {
        assert!(start.elapsed() < Duration::from_secs(5), "no timer pass");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn leases_due_after_the_timer_tasks_sleep_do_not_wake_it() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    engine.create_queue(spec("quiet", 30_000)).await.unwrap();
    engine
        .enqueue(
            "quiet",
            (0..200).map(|i| message(&format!("m{i}"))).collect(),
        )
        .await
        .unwrap();
    let queue = engine.queue("quiet").unwrap();
    timer_task_settled(&queue).await;
    let before = queue.timer_ticks.load(Ordering::Relaxed);
    for expected in 0..200u64 {
        let got = engine.receive("quiet", "worker", 1, 0).await.unwrap();
        assert_eq!(got[0].offset, expected);
        // Gives a woken timer task its turn (the test runtime has one thread).
        tokio::task::yield_now().await;
    }
    let ticks = queue.timer_ticks.load(Ordering::Relaxed) - before;
    // Its own once-a-second pass may fall in; a wake-up per delivery would be 200.
    assert!(ticks <= 2, "{ticks} timer passes for 200 deliveries");
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_lease_due_before_the_timer_tasks_sleep_still_wakes_it() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    engine.create_queue(spec("short", 50)).await.unwrap();
    engine.enqueue("short", vec![message("m")]).await.unwrap();
    let queue = engine.queue("short").unwrap();
    // Nothing due: the task sleeps its full second.
    timer_task_settled(&queue).await;
    let start = Instant::now();
    let first = engine.receive("short", "worker", 1, 0).await.unwrap();
    assert_eq!(first[0].attempt, 1);
    // Expired after 50 ms and redelivered; without a wake-up the task would see the expiry
    // only at the end of its second.
    let again = engine.receive("short", "worker", 1, 2_000).await.unwrap();
    assert_eq!(again[0].attempt, 2);
    let waited = start.elapsed();
    assert!(
        waited < Duration::from_millis(700),
        "redelivered after {waited:?}"
    );
    engine.shutdown().await.unwrap();
}

#[test]
fn readers_reaching_the_end_of_the_kept_read_together_read_the_log_once() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let engine = runtime.block_on(engine(dir.path()));
    runtime
        .block_on(engine.create_queue(spec("together", 30_000)))
        .unwrap();
    let payload = "x".repeat(100);
    // Twelve batches of ~130 KiB: more than one read holds.
    for _ in 0..12 {
        runtime
            .block_on(engine.enqueue("together", (0..1_000).map(|_| message(&payload)).collect()))
            .unwrap();
    }
    let reader = engine.queue("together").unwrap().reader.clone();
    reader.read_ahead(&[0]).unwrap();
    let end = reader.kept_end().unwrap();
    assert!(end < 12_000, "one read holds only part of the queue");
    let reads = reader.log_reads();
    // Four workers past the kept read at once, the one furthest ahead not always first.
    let workers = 4;
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(workers));
    let threads: Vec<_> = (0..workers as u64)
        .rev()
        .map(|index| {
            let (reader, barrier) = (reader.clone(), barrier.clone());
            let offset = end + index;
            std::thread::spawn(move || {
                barrier.wait();
                (offset, reader.read_ahead(&[offset]).unwrap()[0].offset)
            })
        })
        .collect();
    for thread in threads {
        let (asked, got) = thread.join().unwrap();
        assert_eq!(got, asked);
    }
    assert_eq!(
        reader.log_reads() - reads,
        1,
        "one refill serves every worker"
    );
    runtime.block_on(engine.shutdown()).unwrap();
}

#[test]
fn a_refill_continuing_a_kept_read_whose_end_was_removed_reads_from_its_own_offset() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let engine = runtime.block_on(engine(dir.path()));
    runtime
        .block_on(engine.create_queue(spec("removed", 30_000)))
        .unwrap();
    let payload = "x".repeat(100);
    for _ in 0..12 {
        runtime
            .block_on(engine.enqueue("removed", (0..1_000).map(|_| message(&payload)).collect()))
            .unwrap();
    }
    let queue = engine.queue("removed").unwrap();
    queue.reader.read_ahead(&[0]).unwrap();
    let end = queue.reader.kept_end().unwrap();
    // The records right after the kept read are gone (as retention or a purge removes them
    // from a consumer's stream); the offset asked for is still there.
    queue.log.delete_records_before(end + 10).unwrap();
    let got = queue.reader.read_ahead(&[end + 20]).unwrap();
    assert_eq!(got[0].offset, end + 20);
    runtime.block_on(engine.shutdown()).unwrap();
}
