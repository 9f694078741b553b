//! What one invocation runs: the system, the workload and its bounds. Parsed by clap in the
//! binary; built by hand in tests.

use std::time::Duration;

use clap::{Args, ValueEnum};

use crate::error::{BenchError, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum System {
    /// Omnibus's HTTP API.
    OmnibusHttp,
    /// Any Kafka-protocol broker, Omnibus's Kafka port included (librdkafka).
    Kafka,
    /// Redis Streams.
    Redis,
    /// NATS core (no persistence).
    Nats,
    /// NATS JetStream (file storage).
    Jetstream,
    /// RabbitMQ (AMQP 0-9-1, durable queues).
    Rabbitmq,
}

impl System {
    pub fn name(self) -> &'static str {
        match self {
            System::OmnibusHttp => "omnibus-http",
            System::Kafka => "kafka",
            System::Redis => "redis",
            System::Nats => "nats",
            System::Jetstream => "jetstream",
            System::Rabbitmq => "rabbitmq",
        }
    }

    /// Where the system listens when `--address` is not given: each one's usual port.
    pub fn default_address(self) -> &'static str {
        match self {
            System::OmnibusHttp => "127.0.0.1:8080",
            System::Kafka => "127.0.0.1:9092",
            System::Redis => "127.0.0.1:6379",
            System::Nats | System::Jetstream => "127.0.0.1:4222",
            System::Rabbitmq => "127.0.0.1:5672",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Workload {
    /// Acknowledged publishes: N producers, each with a window of sends in flight.
    Publish,
    /// Pre-fill, then consume with acknowledgements (or offset commits).
    Consume,
    /// End-to-end latency at a fixed rate; the send time travels inside the payload.
    Latency,
    /// Request and reply round trips.
    RequestReply,
    /// Enqueue M jobs, then N workers drain them.
    Jobs,
    /// Acknowledged job enqueues only: N producers, each with a window of requests in flight,
    /// `--batch` jobs per request (Omnibus HTTP).
    Enqueue,
    /// Core NATS: one publisher, `--subscribers` subscribers of its subject; messages
    /// delivered per second in total.
    FanOut,
    /// Core NATS: one publisher and one subscriber while `--subscriptions` other wildcard
    /// subscriptions exist; messages delivered per second.
    Routing,
    /// Redis strings: N producers, each with a window of commands in flight on one
    /// connection, alternating `SET k v` and `GET k` over 1,000 keys each; commands per second.
    KeyValue,
}

impl Workload {
    pub fn name(self) -> &'static str {
        match self {
            Workload::Publish => "publish",
            Workload::Consume => "consume",
            Workload::Latency => "latency",
            Workload::RequestReply => "request-reply",
            Workload::Jobs => "jobs",
            Workload::Enqueue => "enqueue",
            Workload::FanOut => "fan-out",
            Workload::Routing => "routing",
            Workload::KeyValue => "key-value",
        }
    }
}

/// How a jobs worker finishes its jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum JobMode {
    /// Take one job, finish it, take the next.
    One,
    /// One job at a time, the request that finishes it also taking the next (Omnibus's
    /// `jobs/complete` with `fetch`): one round trip per job, as `omnibus worker` does.
    OneChained,
    /// One job at a time with the next ones in hand (`--worker-prefetch`, 4 by default as
    /// Celery's prefetch multiplier): each worker keeps that many complete-and-fetch-next
    /// requests in flight, each on a connection of its own, so the completion of the job it
    /// just finished is committed while it works the next. A worker still works one job at a
    /// time, and every completion still gets its own answer; it just does not wait for that
    /// answer before starting a job it already holds (Omnibus HTTP; Redis: a connection per
    /// job held, each with `XREADGROUP COUNT 1` + `XACK`).
    OnePipelined,
    /// Take up to 100, finish them with one request (or one multiple-ack).
    Batched,
}

impl JobMode {
    pub fn name(self) -> &'static str {
        match self {
            JobMode::One => "one",
            JobMode::OneChained => "one-chained",
            JobMode::OnePipelined => "one-pipelined",
            JobMode::Batched => "batched",
        }
    }

    /// Jobs a worker takes at once.
    pub fn batch(self) -> usize {
        match self {
            JobMode::One | JobMode::OneChained | JobMode::OnePipelined => 1,
            JobMode::Batched => 100,
        }
    }
}

/// How a consumer acknowledges what it received (the consume workload of drivers that
/// acknowledge per delivery: rabbitmq).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AckMode {
    /// One `multiple` ack for the deliveries that arrived together (up to the prefetch).
    Multiple,
    /// One ack per delivery, sent as it arrives.
    Each,
}

impl AckMode {
    pub fn name(self) -> &'static str {
        match self {
            AckMode::Multiple => "multiple",
            AckMode::Each => "each",
        }
    }
}

/// The client of the publish workload, for the drivers that have a lean one of their own
/// (rabbitmq, redis).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Client {
    /// The harness's own client (`drivers/rabbitmq/publisher.rs`, `drivers/redis/appender.rs`):
    /// the same commands as the library sends, at a fraction of its CPU, so the client takes
    /// less of the machine the broker runs on.
    Lean,
    /// The driver's client library: lapin (rabbitmq), the redis crate (redis).
    Library,
}

impl Client {
    pub fn name(self) -> &'static str {
        match self {
            Client::Lean => "lean",
            Client::Library => "library",
        }
    }

    /// Whether `system`'s driver publishes with this choice (the others have one client).
    pub fn applies_to(system: System, workload: Workload) -> bool {
        workload == Workload::Publish && matches!(system, System::Rabbitmq | System::Redis)
    }

    /// How a record names the client that `system`'s driver used.
    pub fn describe(self, system: System) -> &'static str {
        match (self, system) {
            (Client::Lean, _) => "lean client",
            (Client::Library, System::Rabbitmq) => "lapin client",
            (Client::Library, System::Redis) => "redis crate client",
            (Client::Library, _) => "library client",
        }
    }
}

/// Largest payload the harness builds; a typo such as `--size 1000000000` fails fast.
pub const MESSAGE_BYTES_MAX: usize = 1 << 20;
/// Fan-out subscribers at most (each is a connection).
pub const SUBSCRIBERS_MAX: usize = 1_000;
/// Routing workload subscriptions at most.
pub const SUBSCRIPTIONS_MAX: usize = 1_000_000;
/// Most jobs a `one-pipelined` worker holds (each is a connection of its own).
pub const WORKER_PREFETCH_MAX: u16 = 64;
/// A latency payload starts with its send time in ASCII digits.
pub const MESSAGE_BYTES_MIN: usize = crate::load::STAMP_BYTES;

#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// The system to drive.
    #[arg(long, value_enum)]
    pub system: System,
    /// `host:port` of the system [default: its usual port on 127.0.0.1].
    #[arg(long)]
    pub address: Option<String>,
    /// The workload.
    #[arg(long, value_enum)]
    pub workload: Workload,
    /// Payload bytes per message.
    #[arg(long, default_value_t = 100)]
    pub size: usize,
    /// Concurrent producers (publish, latency's senders) or consumers (consume).
    #[arg(long, default_value_t = 1)]
    pub producers: usize,
    /// Sends (or requests) in flight per producer.
    #[arg(long, default_value_t = 32)]
    pub in_flight: usize,
    /// Records per publish request where the protocol batches explicitly (Omnibus HTTP).
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// Jobs workers, each on its own connection.
    #[arg(long, default_value_t = 4)]
    pub workers: usize,
    /// Subscribers of the fan-out workload, each on its own connection.
    #[arg(long, default_value_t = 10)]
    pub subscribers: usize,
    /// Other subscriptions present during the routing workload.
    #[arg(long, default_value_t = 10_000)]
    pub subscriptions: usize,
    /// How jobs workers finish their jobs.
    #[arg(long, value_enum, default_value_t = JobMode::One)]
    pub mode: JobMode,
    /// Jobs to enqueue and drain.
    #[arg(long, default_value_t = 10_000)]
    pub jobs: u64,
    /// Jobs a `one-pipelined` worker holds: requests it keeps in flight (Celery's
    /// `worker_prefetch_multiplier` is 4 by default).
    #[arg(long, default_value_t = 4,
        value_parser = clap::value_parser!(u16).range(1..=WORKER_PREFETCH_MAX as i64))]
    pub worker_prefetch: u16,
    /// Unacknowledged deliveries a consumer may hold (the consume workload of the rabbitmq
    /// driver: basic.qos prefetch_count).
    #[arg(long, default_value_t = 100)]
    pub prefetch: u16,
    /// How a consume-workload consumer acknowledges (rabbitmq driver).
    #[arg(long, value_enum, default_value_t = AckMode::Multiple)]
    pub acks: AckMode,
    /// The client of the publish workload on the rabbitmq and redis drivers: the harness's
    /// own lean one, or the library (lapin, the redis crate).
    #[arg(long, value_enum, default_value_t = Client::Lean)]
    pub client: Client,
    /// Messages per second for the latency workload (all senders together).
    #[arg(long, default_value_t = 1_000)]
    pub rate: u64,
    /// Upper bound on messages (publish, consume, latency, request-reply).
    #[arg(long, default_value_t = 100_000)]
    pub messages: u64,
    /// Upper bound on one run's measured time, in seconds; every run stops by then.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Omnibus queue completions (`fsync` or `batched`), passed through to queue create; a
    /// broker that does not know the field gets the queue created without it.
    #[arg(long)]
    pub completions: Option<String>,
    /// The durability the system was configured with, recorded with each result (for
    /// example "fsync per ack", "AOF everysec", "none").
    #[arg(long, default_value = "unspecified")]
    pub durability: String,
    /// The name results are recorded under [default: the system's name]; for example
    /// `omnibus-kafka` for the kafka driver pointed at Omnibus's Kafka port.
    #[arg(long)]
    pub label: Option<String>,
    /// Name prefix of the streams, queues, topics and subjects a run creates.
    #[arg(long, default_value = "bench")]
    pub prefix: String,
    /// The broker's process id: each run then records the CPU the broker spent per operation
    /// (user + system, every thread, from `/proc`; setup such as a consume run's fill
    /// included). Linux only; elsewhere the column stays empty.
    #[arg(long)]
    pub broker_pid: Option<u32>,
}

impl Settings {
    /// A publish run against `system` with every other setting at its default.
    pub fn new(system: System, workload: Workload) -> Settings {
        Settings {
            system,
            address: None,
            workload,
            size: 100,
            producers: 1,
            in_flight: 32,
            batch: 1,
            workers: 4,
            subscribers: 10,
            subscriptions: 10_000,
            mode: JobMode::One,
            jobs: 10_000,
            worker_prefetch: 4,
            prefetch: 100,
            acks: AckMode::Multiple,
            client: Client::Lean,
            rate: 1_000,
            messages: 100_000,
            duration: 10.0,
            completions: None,
            durability: "unspecified".to_string(),
            label: None,
            prefix: "bench".to_string(),
            broker_pid: None,
        }
    }

    /// The name results are recorded under.
    pub fn label(&self) -> String {
        self.label
            .clone()
            .unwrap_or_else(|| self.system.name().to_string())
    }

    pub fn address(&self) -> String {
        self.address
            .clone()
            .unwrap_or_else(|| self.system.default_address().to_string())
    }

    pub fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.duration)
    }

    /// Catches settings that would make a run meaningless or unbounded.
    pub fn validate(&self) -> Result<()> {
        let invalid = |text: &str| Err(BenchError::Settings(text.to_string()));
        if !(MESSAGE_BYTES_MIN..=MESSAGE_BYTES_MAX).contains(&self.size) {
            return invalid("--size must be between 16 bytes and 1 MiB");
        }
        if self.producers == 0 || self.in_flight == 0 || self.workers == 0 || self.batch == 0 {
            return invalid("--producers, --in-flight, --workers and --batch must be at least 1");
        }
        if !(1..=SUBSCRIBERS_MAX).contains(&self.subscribers)
            || self.subscriptions > SUBSCRIPTIONS_MAX
        {
            return invalid("--subscribers must be 1 to 1,000, --subscriptions at most 1,000,000");
        }
        if self.messages == 0 || self.jobs == 0 || self.rate == 0 || self.prefetch == 0 {
            return invalid("--messages, --jobs, --rate and --prefetch must be at least 1");
        }
        if !(self.duration.is_finite() && self.duration > 0.0 && self.duration <= 3_600.0) {
            return invalid("--duration must be between 0 and 3600 seconds");
        }
        Ok(())
    }
}
