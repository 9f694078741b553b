//! The broker's configuration: built-in defaults, then one TOML file, then environment
//! variables, then command-line flags — each later layer overriding the earlier ones.
//!
//! clap merges the last two layers for us (a flag beats its `env` variable), so this module
//! only has to lay the merged overrides on top of the file.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Args;
use omnibus_engine::{EngineConfig, StreamDefaults};
use omnibus_http::HttpConfig;
use omnibus_kafka::{KafkaConfig, FRAME_BYTES_CEILING};
use omnibus_nats::{NatsConfig, MAX_PAYLOAD_CEILING};
use omnibus_types::limits::{MESSAGE_BYTES_MAX, PARTITIONS_MAX};
use serde::Deserialize;

/// Config files are small; refusing a huge one avoids reading a wrong path (a log, a disk image)
/// into memory.
const CONFIG_FILE_BYTES_MAX: u64 = 1024 * 1024;
/// Ceiling for one HTTP request body; the publish path holds a whole body in memory.
const HTTP_BODY_BYTES_CEILING: usize = 1024 * 1024 * 1024;
/// Ceiling for the records one HTTP fetch may return.
const HTTP_FETCH_RECORDS_CEILING: usize = 1_000_000;
/// Most threads the HTTP listener may have of its own.
const HTTP_IO_THREADS_CEILING: usize = 256;
/// The storage layer's smallest segment; a smaller default would fail every stream create.
const SEGMENT_BYTES_MIN: u64 = 1024;

#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    /// Folder holding every stream's data [default: ./omnibus-data].
    #[arg(long, env = "OMNIBUS_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// TOML configuration file; unknown keys are an error.
    #[arg(long, env = "OMNIBUS_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address of the HTTP listener [default: 127.0.0.1:8080].
    #[arg(long, env = "OMNIBUS_HTTP_LISTEN", value_name = "ADDR")]
    pub http_listen: Option<String>,
    /// Address of the Kafka listener, or `off` [default: 127.0.0.1:9092].
    #[arg(long, env = "OMNIBUS_KAFKA_LISTEN", value_name = "ADDR")]
    pub kafka_listen: Option<String>,
    /// Address of the NATS listener, or `off` [default: 127.0.0.1:4222].
    #[arg(long, env = "OMNIBUS_NATS_LISTEN", value_name = "ADDR")]
    pub nats_listen: Option<String>,
    /// Address of the AMQP 0-9-1 listener, or `off` [default: 127.0.0.1:5672].
    #[arg(long, env = "OMNIBUS_AMQP_LISTEN", value_name = "ADDR")]
    pub amqp_listen: Option<String>,
    /// Address of the Redis (RESP) listener, or `off` [default: off].
    #[arg(long, env = "OMNIBUS_REDIS_LISTEN", value_name = "ADDR")]
    pub redis_listen: Option<String>,
    /// Threads of its own the HTTP listener serves connections on; 0 shares the broker's
    /// runtime [default: one per 4 cores, at least 1].
    #[arg(long, env = "OMNIBUS_HTTP_IO_THREADS", value_name = "N")]
    pub http_io_threads: Option<usize>,
    /// Threads of its own the Redis listener serves connections on; 0 shares the broker's
    /// runtime [default: one per 4 cores, at least 1].
    #[arg(long, env = "OMNIBUS_REDIS_IO_THREADS", value_name = "N")]
    pub redis_io_threads: Option<usize>,
    /// Record metrics (`[metrics] enabled`) [default: true].
    #[arg(long, env = "OMNIBUS_METRICS_ENABLED", value_name = "BOOL")]
    pub metrics_enabled: Option<bool>,
}

/// The `listen` value that turns the NATS listener off.
pub const LISTENER_OFF: &str = "off";

/// Everything `omnibus serve` needs. Field names are the TOML keys.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    pub data_dir: PathBuf,
    pub http: HttpSection,
    pub kafka: KafkaSection,
    pub nats: NatsSection,
    pub amqp: crate::config_amqp::AmqpSection,
    pub redis: crate::config_redis::RedisSection,
    pub engine: EngineSection,
    pub process: ProcessSection,
    pub stream_defaults: StreamDefaults,
    pub alerts: crate::config_alerts::AlertsSection,
    pub metrics: crate::config_metrics::MetricsSection,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSection {
    /// `host:port`; a host name is resolved when binding.
    pub listen: String,
    pub body_bytes_max: usize,
    pub fetch_records_max: usize,
    /// Threads of its own to serve connections on (each with a single-threaded runtime);
    /// 0 serves them on the broker's shared runtime.
    pub io_threads: usize,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KafkaSection {
    /// `host:port`; a host name is resolved when binding.
    pub listen: String,
    /// Host clients are told to connect to; defaults to the bound address.
    pub advertised_host: Option<String>,
    /// Port clients are told to connect to; defaults to the bound port.
    pub advertised_port: Option<u16>,
    /// Whether a Metadata request for a missing topic creates it (if the client allows).
    pub auto_create_topics: bool,
    /// Largest request frame (Kafka's `socket.request.max.bytes`).
    pub frame_bytes_max: usize,
    /// Most Kafka connections open at once.
    pub connections_max: usize,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NatsSection {
    /// `host:port`, or `off` for no NATS listener.
    pub listen: String,
    /// Largest payload (headers included) a client may publish; announced in INFO.
    pub max_payload: usize,
    /// Most NATS connections open at once.
    pub connections_max: usize,
    /// Most subscriptions one connection may hold.
    pub subscriptions_max: usize,
    /// Bytes waiting for one connection before it is cut off as a slow consumer.
    pub pending_bytes_max: usize,
    /// Messages waiting for one connection before it is cut off as a slow consumer.
    pub pending_messages_max: usize,
    /// How often the server PINGs each client.
    pub ping_interval_ms: u64,
    /// Unanswered PINGs after which a connection is closed as stale.
    pub pings_outstanding_max: u32,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineSection {
    pub maintenance_interval_ms: u64,
    pub streams_max: usize,
    /// Size of the preallocated `reserve.bin` that lets deletes free space on a full disk;
    /// 0 disables it.
    pub disk_reserve_bytes: u64,
}

/// How the broker's own threads ask the operating system to run them.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProcessSection {
    /// CPU slice each broker thread asks the Linux scheduler for, in microseconds; 0 keeps
    /// the kernel's default (about 3 ms). Short slices let the threads an acknowledgement
    /// waits on run as soon as they wake, instead of behind another thread's slice
    /// (`scheduling.rs`). Linux 6.12+; needs no privileges.
    pub cpu_slice_us: u64,
}

impl Default for ProcessSection {
    fn default() -> Self {
        ProcessSection {
            cpu_slice_us: crate::scheduling::SLICE_US_MIN,
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        let engine = EngineConfig::new("./omnibus-data");
        ServerConfig {
            data_dir: engine.data_dir,
            http: HttpSection::default(),
            kafka: KafkaSection::default(),
            nats: NatsSection::default(),
            amqp: crate::config_amqp::AmqpSection::default(),
            redis: crate::config_redis::RedisSection::default(),
            engine: EngineSection {
                maintenance_interval_ms: engine.maintenance_interval_ms,
                streams_max: engine.streams_max,
                disk_reserve_bytes: engine.disk_reserve_bytes,
            },
            process: ProcessSection::default(),
            stream_defaults: engine.stream_defaults,
            alerts: crate::config_alerts::AlertsSection::default(),
            metrics: Default::default(),
        }
    }
}

impl Default for HttpSection {
    fn default() -> Self {
        let http = HttpConfig::default();
        HttpSection {
            listen: "127.0.0.1:8080".to_string(),
            body_bytes_max: http.body_bytes_max,
            fetch_records_max: http.fetch_records_max,
            io_threads: http.io_threads,
        }
    }
}

impl Default for KafkaSection {
    fn default() -> Self {
        let kafka = KafkaConfig::default();
        KafkaSection {
            listen: "127.0.0.1:9092".to_string(),
            advertised_host: kafka.advertised_host,
            advertised_port: kafka.advertised_port,
            auto_create_topics: kafka.auto_create_topics,
            frame_bytes_max: kafka.frame_bytes_max,
            connections_max: kafka.connections_max,
        }
    }
}

impl Default for NatsSection {
    fn default() -> Self {
        let nats = NatsConfig::default();
        NatsSection {
            listen: "127.0.0.1:4222".to_string(),
            max_payload: nats.max_payload,
            connections_max: nats.connections_max,
            subscriptions_max: nats.subscriptions_max,
            pending_bytes_max: nats.pending_bytes_max,
            pending_messages_max: nats.pending_messages_max,
            ping_interval_ms: nats.ping_interval.as_millis() as u64,
            pings_outstanding_max: nats.pings_outstanding_max,
        }
    }
}

impl Default for EngineSection {
    fn default() -> Self {
        ServerConfig::default().engine
    }
}

impl ServerConfig {
    /// Defaults, then the file named by `--config` / `OMNIBUS_CONFIG`, then the flags and
    /// environment variables clap collected.
    pub fn load(args: &ServeArgs) -> anyhow::Result<ServerConfig> {
        let mut config = match &args.config {
            Some(path) => ServerConfig::from_file(path)?,
            None => ServerConfig::default(),
        };
        config.apply(args);
        config.validate()?;
        Ok(config)
    }

    pub fn from_file(path: &Path) -> anyhow::Result<ServerConfig> {
        let metadata = std::fs::metadata(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        if metadata.len() > CONFIG_FILE_BYTES_MAX {
            bail!(
                "config file {} is {} bytes; the limit is {CONFIG_FILE_BYTES_MAX}",
                path.display(),
                metadata.len()
            );
        }
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        ServerConfig::from_toml(&text)
            .with_context(|| format!("invalid config file {}", path.display()))
    }

    pub fn from_toml(text: &str) -> anyhow::Result<ServerConfig> {
        // toml's message already names the key and shows the offending line.
        Ok(toml::from_str(text)?)
    }

    /// Lays the flag / environment layer over this one.
    fn apply(&mut self, args: &ServeArgs) {
        if let Some(data_dir) = &args.data_dir {
            self.data_dir = data_dir.clone();
        }
        if let Some(enabled) = args.metrics_enabled {
            self.metrics.enabled = enabled;
        }
        if let Some(listen) = &args.http_listen {
            self.http.listen = listen.clone();
        }
        if let Some(listen) = &args.kafka_listen {
            self.kafka.listen = listen.clone();
        }
        if let Some(listen) = &args.nats_listen {
            self.nats.listen = listen.clone();
        }
        if let Some(listen) = &args.amqp_listen {
            self.amqp.listen = listen.clone();
        }
        if let Some(listen) = &args.redis_listen {
            self.redis.listen = listen.clone();
        }
        if let Some(threads) = args.http_io_threads {
            self.http.io_threads = threads;
        }
        if let Some(threads) = args.redis_io_threads {
            self.redis.io_threads = threads;
        }
    }

    /// Catches what the layers below would only reject later and less clearly; the engine
    /// validates the stream defaults itself.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.data_dir.as_os_str().is_empty() {
            bail!("data_dir must not be empty");
        }
        if self.http.listen.trim().is_empty() {
            bail!("http.listen must not be empty");
        }
        if self.http.body_bytes_max < 1024 || self.http.body_bytes_max > HTTP_BODY_BYTES_CEILING {
            bail!(
                "http.body_bytes_max {} must be between 1024 and {HTTP_BODY_BYTES_CEILING}",
                self.http.body_bytes_max
            );
        }
        if self.http.fetch_records_max == 0
            || self.http.fetch_records_max > HTTP_FETCH_RECORDS_CEILING
        {
            bail!(
                "http.fetch_records_max {} must be between 1 and {HTTP_FETCH_RECORDS_CEILING}",
                self.http.fetch_records_max
            );
        }
        if self.http.io_threads > HTTP_IO_THREADS_CEILING {
            bail!(
                "http.io_threads {} must be at most {HTTP_IO_THREADS_CEILING}",
                self.http.io_threads
            );
        }
        self.validate_kafka()?;
        self.validate_nats()?;
        self.validate_amqp()?;
        self.validate_redis()?;
        self.validate_alerts()?;
        if self.engine.maintenance_interval_ms == 0 {
            bail!("engine.maintenance_interval_ms must be positive");
        }
        if self.engine.streams_max == 0 {
            bail!("engine.streams_max must be positive");
        }
        let slice = self.process.cpu_slice_us;
        if slice != 0
            && !(crate::scheduling::SLICE_US_MIN..=crate::scheduling::SLICE_US_MAX).contains(&slice)
        {
            bail!(
                "process.cpu_slice_us {slice} must be 0 (the kernel's default) or between {} and {}",
                crate::scheduling::SLICE_US_MIN,
                crate::scheduling::SLICE_US_MAX
            );
        }
        self.validate_stream_defaults()
    }

    fn validate_kafka(&self) -> anyhow::Result<()> {
        let kafka = &self.kafka;
        if kafka.listen.trim().is_empty() {
            bail!("kafka.listen must not be empty");
        }
        if kafka
            .advertised_host
            .as_deref()
            .is_some_and(|h| h.trim().is_empty())
        {
            bail!("kafka.advertised_host must not be empty when set");
        }
        if kafka.advertised_port == Some(0) {
            bail!("kafka.advertised_port must not be 0");
        }
        // A produce request must fit a whole batch of the largest record plus its framing.
        if kafka.frame_bytes_max < 1024 * 1024 || kafka.frame_bytes_max > FRAME_BYTES_CEILING {
            bail!(
                "kafka.frame_bytes_max {} must be between 1048576 and {FRAME_BYTES_CEILING}",
                kafka.frame_bytes_max
            );
        }
        if kafka.connections_max == 0 {
            bail!("kafka.connections_max must be positive");
        }
        Ok(())
    }

    fn validate_nats(&self) -> anyhow::Result<()> {
        let nats = &self.nats;
        if nats.listen.trim().is_empty() {
            bail!("nats.listen must not be empty (use \"{LISTENER_OFF}\" to turn it off)");
        }
        if nats.max_payload < 1024 || nats.max_payload > MAX_PAYLOAD_CEILING {
            bail!(
                "nats.max_payload {} must be between 1024 and {MAX_PAYLOAD_CEILING}",
                nats.max_payload
            );
        }
        // A connection must be able to hold at least one message of the largest size.
        if nats.pending_bytes_max < nats.max_payload {
            bail!(
                "nats.pending_bytes_max {} must be at least nats.max_payload {}",
                nats.pending_bytes_max,
                nats.max_payload
            );
        }
        for (name, value) in [
            ("connections_max", nats.connections_max),
            ("subscriptions_max", nats.subscriptions_max),
            ("pending_messages_max", nats.pending_messages_max),
            ("pings_outstanding_max", nats.pings_outstanding_max as usize),
        ] {
            if value == 0 {
                bail!("nats.{name} must be positive");
            }
        }
        if nats.ping_interval_ms < 10 {
            bail!("nats.ping_interval_ms must be at least 10");
        }
        Ok(())
    }

    /// Where the Kafka listener binds; `None` when it is turned off.
    pub fn kafka_listen(&self) -> Option<&str> {
        let listen = self.kafka.listen.trim();
        (!listen.eq_ignore_ascii_case(LISTENER_OFF)).then_some(listen)
    }

    /// Where the NATS listener binds; `None` when it is turned off.
    pub fn nats_listen(&self) -> Option<&str> {
        let listen = self.nats.listen.trim();
        (!listen.eq_ignore_ascii_case(LISTENER_OFF)).then_some(listen)
    }

    pub fn nats_config(&self) -> NatsConfig {
        NatsConfig {
            max_payload: self.nats.max_payload,
            connections_max: self.nats.connections_max,
            subscriptions_max: self.nats.subscriptions_max,
            pending_bytes_max: self.nats.pending_bytes_max,
            pending_messages_max: self.nats.pending_messages_max,
            ping_interval: std::time::Duration::from_millis(self.nats.ping_interval_ms),
            pings_outstanding_max: self.nats.pings_outstanding_max,
            ..NatsConfig::default()
        }
    }

    /// The engine checks these only when a stream is created; a broker should not start with
    /// defaults that make every `stream create` fail.
    fn validate_stream_defaults(&self) -> anyhow::Result<()> {
        let defaults = &self.stream_defaults;
        if defaults.partitions == 0 || defaults.partitions > PARTITIONS_MAX {
            bail!(
                "stream_defaults.partitions {} must be between 1 and {PARTITIONS_MAX}",
                defaults.partitions
            );
        }
        if defaults.segment_bytes < SEGMENT_BYTES_MIN {
            bail!(
                "stream_defaults.segment_bytes {} must be at least {SEGMENT_BYTES_MIN}",
                defaults.segment_bytes
            );
        }
        if defaults.segment_ms == 0 {
            bail!("stream_defaults.segment_ms must be positive");
        }
        if defaults.message_bytes_max == 0 || defaults.message_bytes_max > MESSAGE_BYTES_MAX {
            bail!(
                "stream_defaults.message_bytes_max {} must be between 1 and {MESSAGE_BYTES_MAX}",
                defaults.message_bytes_max
            );
        }
        Ok(())
    }

    pub fn engine_config(&self) -> EngineConfig {
        let mut engine = EngineConfig::new(self.data_dir.clone());
        engine.stream_defaults = self.stream_defaults.clone();
        engine.maintenance_interval_ms = self.engine.maintenance_interval_ms;
        engine.streams_max = self.engine.streams_max;
        engine.disk_reserve_bytes = self.engine.disk_reserve_bytes;
        engine.alerts.enabled = self.alerts.enabled;
        engine.alerts.evaluate_interval_ms = self.alerts.evaluate_interval_ms;
        engine.alerts.rules = self.alerts.rules.clone();
        engine
    }

    pub fn kafka_config(&self) -> KafkaConfig {
        KafkaConfig {
            advertised_host: self.kafka.advertised_host.clone(),
            advertised_port: self.kafka.advertised_port,
            auto_create_topics: self.kafka.auto_create_topics,
            frame_bytes_max: self.kafka.frame_bytes_max,
            connections_max: self.kafka.connections_max,
        }
    }

    pub fn http_config(&self) -> HttpConfig {
        HttpConfig {
            body_bytes_max: self.http.body_bytes_max,
            fetch_records_max: self.http.fetch_records_max,
            io_threads: self.http.io_threads,
            ..HttpConfig::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use omnibus_engine::FsyncPolicy;

    #[derive(Debug, Parser)]
    struct TestCli {
        #[command(flatten)]
        serve: ServeArgs,
    }

    const FILE: &str = r#"
data_dir = "/from/file"
[http]
listen = "127.0.0.1:9001"
body_bytes_max = 2048
[engine]
maintenance_interval_ms = 250
[stream_defaults]
partitions = 4
fsync = "interval:50"
"#;

    #[test]
    fn defaults_need_no_configuration() {
        let config = ServerConfig::default();
        assert_eq!(config.data_dir, PathBuf::from("./omnibus-data"));
        assert_eq!(config.http.listen, "127.0.0.1:8080");
        assert_eq!(config.kafka.listen, "127.0.0.1:9092");
        assert!(config.kafka.auto_create_topics);
        assert_eq!(config.kafka.frame_bytes_max, 100 * 1024 * 1024);
        assert_eq!(config.kafka.advertised_host, None);
        assert_eq!(config.nats.listen, "127.0.0.1:4222");
        assert_eq!(config.nats_listen(), Some("127.0.0.1:4222"));
        assert_eq!(config.nats_config(), NatsConfig::default());
        assert_eq!(config.stream_defaults, StreamDefaults::default());
        config.validate().unwrap();
    }

    #[test]
    fn file_overrides_only_the_keys_it_names() {
        let config = ServerConfig::from_toml(FILE).unwrap();
        let defaults = ServerConfig::default();
        assert_eq!(config.data_dir, PathBuf::from("/from/file"));
        assert_eq!(config.http.listen, "127.0.0.1:9001");
        assert_eq!(config.http.body_bytes_max, 2048);
        assert_eq!(
            config.http.fetch_records_max,
            defaults.http.fetch_records_max
        );
        assert_eq!(config.engine.maintenance_interval_ms, 250);
        assert_eq!(config.engine.streams_max, defaults.engine.streams_max);
        assert_eq!(config.stream_defaults.partitions, 4);
        assert_eq!(config.stream_defaults.fsync, FsyncPolicy::IntervalMs(50));
        assert_eq!(
            config.stream_defaults.segment_bytes,
            defaults.stream_defaults.segment_bytes
        );
        let engine = config.engine_config();
        assert_eq!(engine.stream_defaults.partitions, 4);
        assert_eq!(engine.maintenance_interval_ms, 250);
    }

    #[test]
    fn unknown_keys_are_errors_at_every_level() {
        for text in [
            "data_directory = \"x\"",
            "[http]\nlisten_addr = \"127.0.0.1:1\"",
            "[engine]\nstreams = 3",
            "[stream_defaults]\npartition = 3",
            "[kafka]\nlisten_address = \"127.0.0.1:9092\"",
            "[process]\nslice_us = 100",
            "[nats]\nlisten_address = \"127.0.0.1:4222\"",
        ] {
            let error = ServerConfig::from_toml(text).unwrap_err();
            assert!(
                format!("{error:#}").contains("unknown field"),
                "{text:?} gave {error:#}"
            );
        }
    }

    #[test]
    fn the_documented_example_parses() {
        let example = r#"
data_dir = "./omnibus-data"
[http]
listen = "127.0.0.1:8080"
body_bytes_max = 67108864
[kafka]
listen = "127.0.0.1:9092"
auto_create_topics = true
frame_bytes_max = 104857600
[nats]
listen = "127.0.0.1:4222"
max_payload = 1048576
connections_max = 10000
subscriptions_max = 10000
pending_bytes_max = 67108864
pending_messages_max = 100000
ping_interval_ms = 120000
pings_outstanding_max = 2
[engine]
maintenance_interval_ms = 1000
streams_max = 10000
disk_reserve_bytes = 4194304
[process]
cpu_slice_us = 100
[stream_defaults]
partitions = 1
fsync = "always"
segment_bytes = 134217728
retention_ms = 604800000
"#;
        let config = ServerConfig::from_toml(example).unwrap();
        assert_eq!(config, ServerConfig::default());
        config.validate().unwrap();
    }

    #[test]
    fn bad_values_are_errors() {
        let error =
            ServerConfig::from_toml("[stream_defaults]\nfsync = \"sometimes\"").unwrap_err();
        assert!(format!("{error:#}").contains("sometimes"), "{error:#}");
        let mut config = ServerConfig::default();
        config.http.body_bytes_max = 0;
        assert!(config.validate().is_err());
        for text in [
            "[kafka]\nframe_bytes_max = 10",
            "[kafka]\nconnections_max = 0",
            "[kafka]\nadvertised_port = 0",
            "[kafka]\nadvertised_host = \" \"",
            "[kafka]\nlisten = \"\"",
        ] {
            let config = ServerConfig::from_toml(text).unwrap();
            let error = config.validate().unwrap_err();
            assert!(
                error.to_string().contains("kafka."),
                "{text:?} gave {error}"
            );
        }
        for text in [
            "[nats]\nlisten = \"\"",
            "[nats]\nmax_payload = 10",
            "[nats]\nmax_payload = 2048\npending_bytes_max = 1024",
            "[nats]\nconnections_max = 0",
            "[nats]\nsubscriptions_max = 0",
            "[nats]\nping_interval_ms = 1",
        ] {
            let config = ServerConfig::from_toml(text).unwrap();
            let error = config.validate().unwrap_err();
            assert!(error.to_string().contains("nats."), "{text:?} gave {error}");
        }
        let off = ServerConfig::from_toml("[nats]\nlisten = \"off\"").unwrap();
        off.validate().unwrap();
        assert_eq!(off.nats_listen(), None);
        let config = ServerConfig::from_toml(
            "[kafka]\nadvertised_host = \"broker.example\"\nadvertised_port = 19092",
        )
        .unwrap();
        config.validate().unwrap();
        assert_eq!(
            config.kafka_config().advertised_host.as_deref(),
            Some("broker.example")
        );
        assert_eq!(config.kafka_config().advertised_port, Some(19092));
        for (slice, valid) in [
            (0, true),
            (99, false),
            (100, true),
            (100_000, true),
            (100_001, false),
        ] {
            let config =
                ServerConfig::from_toml(&format!("[process]\ncpu_slice_us = {slice}")).unwrap();
            match config.validate() {
                Ok(()) => assert!(valid, "{slice} was accepted"),
                Err(error) => {
                    assert!(!valid, "{slice} gave {error}");
                    assert!(
                        error.to_string().contains("process.cpu_slice_us"),
                        "{error}"
                    );
                }
            }
        }
        let config = ServerConfig::from_toml("[stream_defaults]\npartitions = 0").unwrap();
        let error = config.validate().unwrap_err();
        assert!(
            error.to_string().contains("stream_defaults.partitions"),
            "{error}"
        );
    }

    /// The only test that touches these environment variables, so parallel tests can't race.
    #[test]
    fn precedence_is_defaults_then_file_then_environment_then_flags() {
        let directory = tempfile::tempdir().unwrap();
        let file = directory.path().join("omnibus.toml");
        std::fs::write(&file, FILE).unwrap();
        let file_arg = file.to_str().unwrap();

        let parse = |arguments: &[&str]| {
            let mut all = vec!["omnibus"];
            all.extend_from_slice(arguments);
            ServerConfig::load(&TestCli::try_parse_from(all).unwrap().serve).unwrap()
        };

        std::env::remove_var("OMNIBUS_DATA_DIR");
        std::env::remove_var("OMNIBUS_HTTP_LISTEN");
        std::env::remove_var("OMNIBUS_KAFKA_LISTEN");
        std::env::remove_var("OMNIBUS_NATS_LISTEN");
        std::env::remove_var("OMNIBUS_CONFIG");
        assert_eq!(parse(&[]), ServerConfig::default());

        // The file beats the defaults.
        let from_file = parse(&["--config", file_arg]);
        assert_eq!(from_file.data_dir, PathBuf::from("/from/file"));
        assert_eq!(from_file.http.listen, "127.0.0.1:9001");

        // The config file can itself come from the environment.
        std::env::set_var("OMNIBUS_CONFIG", file_arg);
        assert_eq!(parse(&[]), from_file);

        // The environment beats the file.
        std::env::set_var("OMNIBUS_DATA_DIR", "/from/env");
        std::env::set_var("OMNIBUS_HTTP_LISTEN", "127.0.0.1:9002");
        std::env::set_var("OMNIBUS_KAFKA_LISTEN", "127.0.0.1:9102");
        std::env::set_var("OMNIBUS_NATS_LISTEN", "127.0.0.1:4302");
        let from_env = parse(&[]);
        assert_eq!(from_env.nats.listen, "127.0.0.1:4302");
        assert_eq!(from_env.data_dir, PathBuf::from("/from/env"));
        assert_eq!(from_env.http.listen, "127.0.0.1:9002");
        assert_eq!(from_env.kafka.listen, "127.0.0.1:9102");
        assert_eq!(from_env.stream_defaults.partitions, 4);

        // Flags beat the environment.
        let from_flags = parse(&[
            "--data-dir",
            "/from/flag",
            "--http-listen",
            "127.0.0.1:9003",
            "--kafka-listen",
            "127.0.0.1:9103",
            "--nats-listen",
            "off",
        ]);
        assert_eq!(from_flags.nats_listen(), None);
        assert_eq!(from_flags.data_dir, PathBuf::from("/from/flag"));
        assert_eq!(from_flags.http.listen, "127.0.0.1:9003");
        assert_eq!(from_flags.kafka.listen, "127.0.0.1:9103");
        assert_eq!(from_flags.engine.maintenance_interval_ms, 250);

        std::env::remove_var("OMNIBUS_DATA_DIR");
        std::env::remove_var("OMNIBUS_HTTP_LISTEN");
        std::env::remove_var("OMNIBUS_KAFKA_LISTEN");
        std::env::remove_var("OMNIBUS_NATS_LISTEN");
        std::env::remove_var("OMNIBUS_CONFIG");
    }

    #[test]
    fn a_missing_config_file_names_the_path() {
        let error = ServerConfig::from_file(Path::new("/nonexistent/omnibus.toml")).unwrap_err();
        assert!(format!("{error:#}").contains("/nonexistent/omnibus.toml"));
    }
}
