//! The omnibus-http driver against a real broker: an engine on a temporary folder and the
//! HTTP API on 127.0.0.1, port 0, started in this process; the driver reaches it over TCP as
//! it would any broker.

mod support;

use std::time::Duration;

use indicatif::ProgressBar;
use omnibus_bench::drivers::{self, Context};
use omnibus_bench::record::RunRecord;
use omnibus_bench::settings::{JobMode, Settings, System, Workload};
use omnibus_bench::BenchError;
use omnibus_http::{serve, HttpConfig};
use support::InProcessDoor;

struct Broker {
    door: InProcessDoor,
}

impl Broker {
    async fn start() -> Broker {
        let door = InProcessDoor::start(|listener, engine, shutdown| {
            serve(listener, engine, HttpConfig::default(), shutdown)
        })
        .await;
        Broker { door }
    }

    fn settings(&self, workload: Workload) -> Settings {
        let mut settings = Settings::new(System::OmnibusHttp, workload);
        settings.address = Some(self.door.address.clone());
        // An upper bound only: a loaded 2-core machine can take seconds where an idle one
        // takes milliseconds, and a run cut short fails the assertions below.
        settings.duration = 20.0;
        settings.durability = "fsync per ack".to_string();
        settings
    }
}

async fn run(settings: Settings) -> omnibus_bench::load::Measurement {
    let context = Context::new(settings, ProgressBar::hidden());
    tokio::time::timeout(Duration::from_secs(30), drivers::run(&context))
        .await
        .expect("the run stops by itself")
        .expect("the run succeeds")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_one_at_a_time_and_batched_drain_every_job() {
    let broker = Broker::start().await;
    for mode in [
        JobMode::One,
        JobMode::OneChained,
        JobMode::OnePipelined,
        JobMode::Batched,
    ] {
        let mut settings = broker.settings(Workload::Jobs);
        settings.mode = mode;
        settings.jobs = 90;
        settings.workers = 3;
        // A broker that does not know the field still gets its queue.
        settings.completions = Some("fsync".to_string());
        let measurement = run(settings.clone()).await;
        assert_eq!(measurement.operations, 90, "{mode:?}: {measurement:?}");
        let record = RunRecord::new(&settings, 1, &measurement);
        let recorded = record.mode.as_deref().unwrap_or_default();
        assert!(recorded.starts_with(mode.name()), "{recorded} for {mode:?}");
        if mode == JobMode::OnePipelined {
            assert_eq!(recorded, "one-pipelined, prefetch 4");
        }
        assert!(record.per_second > 0.0, "{record:?}");
        assert!(
            measurement
                .note
                .as_deref()
                .is_none_or(|note| !note.contains("time ran out")),
            "{measurement:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_is_acknowledged_and_timed() {
    let broker = Broker::start().await;
    let mut settings = broker.settings(Workload::Publish);
    settings.messages = 500;
    settings.producers = 2;
    settings.in_flight = 4;
    settings.batch = 10;
    settings.size = 1024;
    let measurement = run(settings.clone()).await;
    assert_eq!(measurement.operations, 500, "{measurement:?}");
    let latencies = measurement.latency.as_ref().expect("publish latencies");
    // 500 records in requests of 10.
    assert_eq!(latencies.len(), 50);
    let record = RunRecord::new(&settings, 1, &measurement);
    assert!(record.p50_micros.is_some() && record.p99_micros >= record.p50_micros);
    let line = record.human_line();
    assert!(line.starts_with("omnibus-http"), "{line}");
    assert!(line.contains("[fsync per ack]"), "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consume_reads_and_commits_every_record() {
    let broker = Broker::start().await;
    let mut settings = broker.settings(Workload::Consume);
    settings.messages = 2_500;
    settings.producers = 2;
    let measurement = run(settings).await;
    assert_eq!(measurement.operations, 2_500, "{measurement:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_receives_every_record_at_the_rate() {
    let broker = Broker::start().await;
    let mut settings = broker.settings(Workload::Latency);
    settings.messages = 200;
    settings.rate = 400;
    let measurement = run(settings).await;
    assert_eq!(measurement.operations, 200, "{measurement:?}");
    // 200 messages at 400/s take half a second to send.
    assert!(
        measurement.elapsed >= Duration::from_millis(450),
        "{measurement:?}"
    );
    assert_eq!(measurement.latency.as_ref().map(|h| h.len()), Some(200));
}

#[tokio::test]
async fn request_reply_is_reported_as_not_supported() {
    let broker = Broker::start().await;
    let context = Context::new(
        broker.settings(Workload::RequestReply),
        ProgressBar::hidden(),
    );
    let outcome = drivers::run(&context).await;
    assert!(
        matches!(outcome, Err(BenchError::NotSupported(_))),
        "{outcome:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enqueue_is_acknowledged_and_timed() {
    let broker = Broker::start().await;
    let mut settings = broker.settings(Workload::Enqueue);
    settings.messages = 1_000;
    settings.producers = 2;
    settings.batch = 100;
    let measurement = run(settings).await;
    assert_eq!(measurement.operations, 1_000, "{measurement:?}");
    assert_eq!(
        measurement.latency.map(|latencies| latencies.len()),
        Some(10),
        "one round trip per request of 100"
    );
}
