//! Peer drivers against real peers, when their servers are installed: each test starts its
//! own server on a free loopback port with a temporary data folder, and stops it at the end.
//! Without the server binary on PATH a test prints why it skipped and passes; CI never fails
//! because a peer is missing (scripts/bench-peers.sh installs and runs them all).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use omnibus_bench::drivers::{self, Context};
use omnibus_bench::settings::{Client, JobMode, Settings, System, Workload};

/// A server process, killed when dropped.
struct Peer {
    child: Child,
    address: String,
    _data: tempfile::TempDir,
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn on_path(binary: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|folder| folder.join(binary).is_file())
    })
}

/// A port nothing listens on right now (the kernel's pick, released at once).
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("local address").port()
}

/// Starts `binary` with the arguments `arguments(port, data folder)` and waits until it
/// accepts connections; `None` (with the reason printed) when the binary is not installed.
fn start(binary: &str, arguments: impl Fn(u16, &str) -> Vec<String>) -> Option<Peer> {
    if !on_path(binary) {
        println!("skipped: {binary} is not on PATH (scripts/bench-peers.sh installs it)");
        return None;
    }
    let data = tempfile::tempdir().expect("temporary folder");
    let port = free_port();
    let folder = data
        .path()
        .to_str()
        .expect("UTF-8 temporary path")
        .to_string();
    let child = Command::new(binary)
        .args(arguments(port, &folder))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the server starts");
    let address = format!("127.0.0.1:{port}");
    let peer = Peer {
        child,
        address: address.clone(),
        _data: data,
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(&address).is_err() {
        assert!(
            Instant::now() < deadline,
            "{binary} did not listen on {address}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Some(peer)
}

async fn run_jobs_and_publish(system: System, address: &str) {
    let mut modes = vec![JobMode::One, JobMode::Batched];
    if system == System::Redis {
        // A worker holding several jobs, a connection for each.
        modes.push(JobMode::OnePipelined);
    }
    for mode in modes {
        let mut settings = Settings::new(system, Workload::Jobs);
        settings.address = Some(address.to_string());
        settings.mode = mode;
        settings.jobs = 300;
        settings.workers = 3;
        settings.duration = 5.0;
        let context = Context::new(settings, ProgressBar::hidden());
        let measurement = drivers::run(&context).await.expect("the jobs run succeeds");
        assert_eq!(
            measurement.operations, 300,
            "{system:?} {mode:?}: {measurement:?}"
        );
    }
    // Redis publishes with both clients: the harness's lean one and the redis crate.
    let clients: &[Client] = if system == System::Redis {
        &[Client::Lean, Client::Library]
    } else {
        &[Client::Lean]
    };
    for client in clients {
        let mut settings = Settings::new(system, Workload::Publish);
        settings.address = Some(address.to_string());
        settings.messages = 500;
        settings.duration = 5.0;
        settings.client = *client;
        let context = Context::new(settings, ProgressBar::hidden());
        let measurement = drivers::run(&context)
            .await
            .expect("the publish run succeeds");
        assert_eq!(measurement.operations, 500, "{system:?}: {measurement:?}");
        assert_eq!(
            measurement.latency.map(|latencies| latencies.len()),
            Some(500)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_streams_drain_jobs_and_take_publishes() {
    let Some(redis) = start("redis-server", |port, folder| {
        [
            "--bind",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--dir",
            folder,
        ]
        .into_iter()
        .chain([
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--save",
            "",
        ])
        .map(String::from)
        .collect()
    }) else {
        return;
    };
    run_jobs_and_publish(System::Redis, &redis.address).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jetstream_drains_jobs_and_takes_publishes() {
    let Some(nats) = start("nats-server", |port, folder| {
        [
            "-a",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-js",
            "-sd",
            folder,
        ]
        .into_iter()
        .map(String::from)
        .collect()
    }) else {
        return;
    };
    run_jobs_and_publish(System::Jetstream, &nats.address).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn core_nats_fan_out_and_routing_deliver_every_message() {
    let Some(nats) = start("nats-server", |port, _folder| {
        ["-a", "127.0.0.1", "-p", &port.to_string()]
            .into_iter()
            .map(String::from)
            .collect()
    }) else {
        return;
    };
    let mut fan_out = Settings::new(System::Nats, Workload::FanOut);
    fan_out.address = Some(nats.address.clone());
    fan_out.subscribers = 3;
    fan_out.messages = 2_000;
    fan_out.duration = 5.0;
    let measurement = drivers::run(&Context::new(fan_out, ProgressBar::hidden()))
        .await
        .expect("the fan-out run succeeds");
    assert_eq!(measurement.operations, 6_000, "{measurement:?}");
    let mut routing = Settings::new(System::Nats, Workload::Routing);
    routing.address = Some(nats.address.clone());
    routing.subscriptions = 3_000;
    routing.messages = 2_000;
    routing.duration = 5.0;
    let measurement = drivers::run(&Context::new(routing, ProgressBar::hidden()))
        .await
        .expect("the routing run succeeds");
    assert_eq!(measurement.operations, 2_000, "{measurement:?}");
    assert!(
        measurement
            .note
            .as_deref()
            .unwrap_or("")
            .contains("3000 other subscriptions"),
        "{measurement:?}"
    );
}
