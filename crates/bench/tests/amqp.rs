//! The rabbitmq driver against Omnibus's AMQP door, started in this process on 127.0.0.1
//! port 0: lapin reaches it over TCP as it would RabbitMQ (scripts/bench-peers.sh runs the
//! same driver against rabbitmq-server as `rabbitmq` and against the door as `omnibus-amqp`).

mod support;

use indicatif::ProgressBar;
use omnibus_amqp::AmqpConfig;
use omnibus_bench::drivers::{self, Context};
use omnibus_bench::record::RunRecord;
use omnibus_bench::settings::{AckMode, Settings, System, Workload};
use support::InProcessDoor;

struct Broker {
    door: InProcessDoor,
}

impl Broker {
    async fn start() -> Broker {
        let door = InProcessDoor::start(|listener, engine, shutdown| {
            omnibus_amqp::serve(listener, engine, AmqpConfig::default(), shutdown)
        })
        .await;
        Broker { door }
    }

    fn settings(&self, workload: Workload) -> Settings {
        let mut settings = Settings::new(System::Rabbitmq, workload);
        settings.address = Some(self.door.address.clone());
        settings.label = Some("omnibus-amqp".to_string());
        // An upper bound only: a loaded 2-core machine can take seconds where an idle one
        // takes milliseconds, and a run cut short fails the assertions below.
        settings.duration = 20.0;
        settings
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_reply_goes_through_direct_reply_to_and_times_every_request() {
    let broker = Broker::start().await;
    let mut settings = broker.settings(Workload::RequestReply);
    settings.producers = 2;
    settings.in_flight = 8;
    settings.messages = 400;
    let context = Context::new(settings, ProgressBar::hidden());
    let measurement = drivers::run(&context)
        .await
        .expect("the request-reply run succeeds");
    assert_eq!(measurement.operations, 400, "{measurement:?}");
    assert_eq!(
        measurement
            .latency
            .as_ref()
            .map(|latencies| latencies.len()),
        Some(400),
        "one latency per request"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consume_takes_its_prefetch_and_acks_each_delivery_when_asked() {
    let broker = Broker::start().await;
    let mut settings = broker.settings(Workload::Consume);
    settings.producers = 2;
    settings.messages = 3_000;
    settings.prefetch = 1_000;
    settings.acks = AckMode::Each;
    let context = Context::new(settings.clone(), ProgressBar::hidden());
    let measurement = drivers::run(&context)
        .await
        .expect("the consume run succeeds");
    assert_eq!(measurement.operations, 3_000, "{measurement:?}");
    let record = RunRecord::new(&settings, 1, &measurement);
    assert_eq!(record.label(), "consume (prefetch 1000, ack each)");
}

/// Messages in `queue`, from a passive declare on a connection of its own.
async fn queue_depth(address: &str, queue: &str) -> u32 {
    use lapin::options::QueueDeclareOptions;
    let uri = format!("amqp://guest:guest@{address}/%2f");
    let connection = lapin::Connection::connect(&uri, lapin::ConnectionProperties::default())
        .await
        .expect("connects");
    let channel = connection.create_channel().await.expect("channel");
    let options = QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    channel
        .queue_declare(queue.into(), options, Default::default())
        .await
        .expect("the queue exists")
        .message_count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_publishers_leave_every_confirmed_message_in_the_queue() {
    use omnibus_bench::settings::Client;
    let broker = Broker::start().await;
    // Small messages, many in flight; then bodies split over three frames of at most
    // 128 KiB, each still one message.
    for (client, size, messages) in [
        (Client::Lean, 1_000, 2_000),
        (Client::Library, 1_000, 2_000),
        (Client::Lean, 300_000, 20),
    ] {
        let mut settings = broker.settings(Workload::Publish);
        settings.producers = 3;
        settings.in_flight = 64;
        settings.messages = messages;
        settings.size = size;
        settings.client = client;
        settings.prefix = format!("bench-{}-{size}", client.name());
        let context = Context::new(settings.clone(), ProgressBar::hidden());
        let measurement = drivers::run(&context)
            .await
            .expect("the publish run succeeds");
        assert_eq!(measurement.operations, messages, "{measurement:?}");
        assert_eq!(
            measurement
                .latency
                .as_ref()
                .map(|latencies| latencies.len()),
            Some(messages),
            "one latency per confirmed publish"
        );
        let record = RunRecord::new(&settings, 1, &measurement);
        let described = match client {
            Client::Lean => "lean client",
            Client::Library => "lapin client",
        };
        assert_eq!(record.label(), format!("publish ({described})"));
        assert_eq!(
            queue_depth(&broker.door.address, &context.name("publish")).await,
            messages as u32,
            "{} publisher: every confirmed message is in the queue",
            client.name()
        );
    }
}
