//! A never-fsynced partition writes small groups on the appending task (`append.rs`
//! `flush_inline`); rolls and large groups still go to a blocking thread.

use std::time::{Duration, Instant};

use super::*;

fn never(config: LogConfig) -> LogConfig {
    LogConfig {
        fsync: FsyncPolicy::Never,
        ..config
    }
}

#[test]
fn a_never_fsynced_append_is_written_before_enqueue_returns() {
    // One runtime thread: without the inline write the flusher is a blocking thread that has
    // not run yet when `enqueue` returns, so the high watermark would lag.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let log = PartitionLog::open(
        Arc::new(MemoryIo::new()),
        Path::new("/p"),
        never(LogConfig::default()),
    )
    .unwrap();
    rt.block_on(async {
        for i in 0..100u64 {
            let pending = log.enqueue(batch(&[&format!("v{i}")])).await.unwrap();
            assert_eq!(log.high_watermark(), i + 1, "append {i} written inline");
            assert_eq!(pending.durable().await.unwrap().first_offset, i);
        }
    });
    let expected: Vec<String> = (0..100).map(|i| format!("v{i}")).collect();
    assert_eq!(read_values(&log, 0), expected);
}

#[test]
fn inline_appends_from_concurrent_tasks_get_dense_ordered_offsets() {
    let rt = runtime();
    let log = PartitionLog::open(
        Arc::new(MemoryIo::new()),
        Path::new("/p"),
        never(small_segments()),
    )
    .unwrap();
    let per_task = 200u64;
    let tasks = 4u64;
    let offsets: Vec<Vec<(u64, String)>> = rt.block_on(async {
        let mut handles = Vec::new();
        for task in 0..tasks {
            let log = log.clone();
            handles.push(tokio::spawn(async move {
                let mut mine = Vec::new();
                for i in 0..per_task {
                    let value = format!("t{task}-{i}");
                    let info = log.append(batch(&[&value])).await.unwrap();
                    mine.push((info.first_offset, value));
                }
                mine
            }));
        }
        let mut all = Vec::new();
        for handle in handles {
            all.push(handle.await.unwrap());
        }
        all
    });
    assert_eq!(log.high_watermark(), tasks * per_task);
    let values = read_values(&log, 0);
    for mine in &offsets {
        assert!(
            mine.windows(2).all(|pair| pair[0].0 < pair[1].0),
            "one task's appends are in the order it made them"
        );
        for (offset, value) in mine {
            assert_eq!(&values[*offset as usize], value, "offset {offset}");
        }
    }
    assert!(log.status().segments > 1, "the test crossed segment rolls");
}

#[test]
fn a_failed_inline_write_poisons_the_partition() {
    let rt = runtime();
    let plan = FaultPlan::new();
    let memory = MemoryIo::new();
    let io: Arc<dyn Io> = Arc::new(FaultyIo::new(Arc::new(memory), plan.clone()));
    let log = PartitionLog::open(io, Path::new("/p"), never(LogConfig::default())).unwrap();
    rt.block_on(async {
        log.append(batch(&["kept"])).await.unwrap();
        plan.fail_write(1);
        let error = log.append(batch(&["lost"])).await.unwrap_err();
        assert!(matches!(error, StorageError::Poisoned { .. }), "{error}");
        let again = log.append(batch(&["refused"])).await.unwrap_err();
        assert!(matches!(again, StorageError::Poisoned { .. }), "{again}");
    });
    assert_eq!(log.high_watermark(), 1, "the failed write is never visible");
    assert_eq!(read_values(&log, 0), vec!["kept"]);
    assert!(log.status().failure.is_some());
}

#[test]
fn a_roll_between_inline_writes_runs_on_a_blocking_thread_and_keeps_order() {
    let rt = runtime();
    let plan = FaultPlan::new();
    let io: Arc<dyn Io> = Arc::new(FaultyIo::new(Arc::new(MemoryIo::new()), plan.clone()));
    let log = PartitionLog::open(io, Path::new("/p"), never(small_segments())).unwrap();
    // A roll fsyncs the closed segment: held here, it must not stall the appender. Released
    // after 5 s (or when the test ends) whatever happens, so a roll run inline fails the
    // timing check below instead of hanging the test.
    plan.hold_syncs(true);
    let (test_done, wait_for_test) = std::sync::mpsc::channel::<()>();
    let release = {
        let plan = plan.clone();
        std::thread::spawn(move || {
            let _ = wait_for_test.recv_timeout(Duration::from_secs(5));
            plan.hold_syncs(false);
        })
    };
    let mut expected = Vec::new();
    rt.block_on(async {
        let mut rolled = None;
        for i in 0..500u64 {
            let value = format!("value-{i}");
            let started = Instant::now();
            let pending = log.enqueue(batch(&[&value])).await.unwrap();
            assert!(
                started.elapsed() < Duration::from_secs(1),
                "append {i} waited for the held fsync"
            );
            expected.push(value);
            if log.high_watermark() == i + 1 {
                pending.durable().await.unwrap();
                continue;
            }
            rolled = Some((i, pending));
            break;
        }
        let (at, pending) = rolled.expect("a roll happened within 500 appends");
        assert!(at > 0, "appends before the roll were written inline");
        // Appends behind the roll queue for the blocking flusher, in order.
        let behind: Vec<_> = {
            let mut behind = Vec::new();
            for i in 0..3 {
                let value = format!("behind-{i}");
                behind.push(log.enqueue(batch(&[&value])).await.unwrap());
                expected.push(value);
            }
            behind
        };
        assert_eq!(
            log.high_watermark(),
            at,
            "nothing past the roll is visible yet"
        );
        plan.hold_syncs(false);
        assert_eq!(pending.durable().await.unwrap().first_offset, at);
        for (i, pending) in behind.into_iter().enumerate() {
            assert_eq!(
                pending.durable().await.unwrap().first_offset,
                at + 1 + i as u64
            );
        }
        // The new segment has room again: once the blocking flusher has let go, the next
        // append is inline once more.
        let deadline = Instant::now() + Duration::from_secs(5);
        while lock(&log.queue).flushing {
            assert!(
                Instant::now() < deadline,
                "the blocking flusher never finished"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let next = log.high_watermark();
        log.enqueue(batch(&["after"])).await.unwrap();
        expected.push("after".to_string());
        assert_eq!(
            log.high_watermark(),
            next + 1,
            "written inline after the roll"
        );
    });
    drop(test_done);
    release.join().unwrap();
    assert_eq!(log.status().segments, 2);
    assert_eq!(read_values(&log, 0), expected);
}
