//! The broker's threads ask Linux for short CPU slices (`[process] cpu_slice_us`, see
//! `src/scheduling.rs`): checked on the running process through `/proc`, which shows each
//! thread's slice where the kernel has them (Linux 6.12+ with scheduler debug info).

mod support;

use std::path::Path;

use serde_json::json;
use support::Broker;

/// Every thread's slice in nanoseconds, or `None` if this kernel does not report slices.
fn thread_slices(pid: u32) -> Option<Vec<(String, u64)>> {
    let mut slices = Vec::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let task = entry.ok()?.path();
        let name = std::fs::read_to_string(task.join("comm")).unwrap_or_default();
        let sched = std::fs::read_to_string(task.join("sched")).ok()?;
        let line = sched.lines().find(|l| l.starts_with("se.slice"))?;
        let value = line.rsplit(':').next()?.trim().parse().ok()?;
        slices.push((name.trim().to_string(), value));
    }
    Some(slices)
}

/// Starts a broker, makes it write (so its storage threads exist) and returns its slices and
/// whether it reported that the kernel ignored its request.
async fn slices_of_a_broker_with(config: &str, dir: &Path) -> Option<(Vec<(String, u64)>, bool)> {
    let file = dir.join("omnibus.toml");
    std::fs::write(&file, config).unwrap();
    let broker = Broker::start_with_args(
        &dir.join("data"),
        dir.join("broker.log"),
        &["--config", file.to_str().unwrap()],
    )
    .await;
    let client = reqwest::Client::new();
    let created = client
        .post(format!("{}/v1/streams", broker.base()))
        .json(&json!({"name": "slices"}))
        .send()
        .await
        .unwrap();
    assert!(created.status().is_success(), "{}", created.status());
    let published = client
        .post(format!("{}/v1/streams/slices/records", broker.base()))
        .json(&json!({"records": [{"value": "x"}]}))
        .send()
        .await
        .unwrap();
    assert!(published.status().is_success(), "{}", published.status());
    let slices = thread_slices(broker.pid().unwrap());
    let log = std::fs::read_to_string(dir.join("broker.log")).unwrap();
    // A kernel before 6.12 keeps its own slices, and the broker says so.
    let ignored = log.contains("has no effect here");
    slices.map(|slices| (slices, ignored))
}

#[tokio::test]
async fn every_broker_thread_runs_with_the_configured_slice_and_zero_keeps_the_default() {
    let Some(own) = thread_slices(std::process::id()) else {
        eprintln!("this kernel does not report CPU slices in /proc; nothing to check");
        return;
    };
    let kernel_default = own[0].1;
    let dir = tempfile::tempdir().unwrap();

    let short = dir.path().join("short");
    std::fs::create_dir(&short).unwrap();
    let (slices, ignored) = slices_of_a_broker_with("[process]\ncpu_slice_us = 200\n", &short)
        .await
        .unwrap();
    assert!(slices.len() >= 3, "{slices:?}");
    let expected = if ignored { kernel_default } else { 200_000 };
    for (name, slice) in &slices {
        assert_eq!(*slice, expected, "thread {name}: {slices:?}");
    }

    let default = dir.path().join("default");
    std::fs::create_dir(&default).unwrap();
    let (slices, _) = slices_of_a_broker_with("[process]\ncpu_slice_us = 0\n", &default)
        .await
        .unwrap();
    for (name, slice) in &slices {
        assert_eq!(*slice, kernel_default, "thread {name}: {slices:?}");
    }
}
