//! The engine object: stream registry, lifecycle and background maintenance. Publishing,
//! fetching and offsets live in `publish.rs`, `fetch.rs` and `offsets.rs`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use omnibus_storage::io::{FileIo, Io};
use omnibus_storage::StateStore;
use omnibus_types::limits;

use crate::config::EngineConfig;
use crate::error::{EngineError, Result};
use crate::groups::coordinator::GroupCoordinator;
use crate::model::*;
use crate::producers::ProducerRegistry;
use crate::streams::registry::{StreamChanges, StreamTable, STREAMS_TABLE};
use crate::streams::{log_config, stream_dir, Stream};

/// The broker's core. Cheap to share: front doors hold an `Arc<Engine>`.
pub struct Engine {
    pub(crate) config: EngineConfig,
    pub(crate) io: Arc<dyn Io>,
    pub(crate) state: Arc<StateStore>,
    /// Released by the state store on a full disk, restored by maintenance (`health.rs`).
    pub(crate) disk_reserve: Arc<omnibus_storage::DiskReserve>,
    pub(crate) queues: RwLock<BTreeMap<String, Arc<crate::queue::Queue>>>,
    /// Acked consumers of streams, by (stream, consumer) (`consumers/`).
    pub(crate) consumers: RwLock<BTreeMap<(String, String), Arc<crate::consumers::Consumer>>>,
    /// Orders consumer creations and deletions, so two creations of one name cannot both
    /// write its state.
    pub(crate) consumer_changes: tokio::sync::Mutex<()>,
    /// Orders queue creations and deletions (taken on the blocking threads they run on):
    /// two declarations of one new queue at once (AMQP clients starting together) made its
    /// backing stream twice, and the loser of the race deleted the winner's stream.
    pub(crate) queue_changes: std::sync::Mutex<()>,
    /// Woken whenever acked consumers are removed (deleted, or gone with their stream).
    pub(crate) consumers_removed: tokio::sync::Notify,
    pub(crate) jobs: crate::jobs::JobsState,
    pub(crate) streams: RwLock<StreamTable>,
    /// Bumped each time `streams` is taken for writing: a publisher's cached capture lookup
    /// (`router::capture::CaptureCache`) holds while it is unchanged.
    pub(crate) streams_generation: AtomicU64,
    /// Orders the changes of each stream without holding `streams` across I/O.
    pub(crate) stream_changes: StreamChanges,
    /// One coordinator for every front door that offers consumer groups.
    coordinator: Arc<GroupCoordinator>,
    /// Idempotent producers' sequence state, shared by every door that offers them.
    producers: Arc<ProducerRegistry>,
    /// Every group's committed offsets, mirrored for `/metrics` (`groups/committed.rs`).
    pub(crate) committed: crate::groups::committed::CommittedOffsets,
    /// Door and API counters the front doors record into (`metrics/`).
    pub(crate) metrics: crate::metrics::Metrics,
    /// Live subscriptions of every front door (`router/live.rs`).
    pub(crate) live_router: Arc<crate::router::LiveRouter>,
    /// Exchanges and their bindings (`exchanges/`).
    pub(crate) exchanges: crate::exchanges::ExchangeTable,
    /// Queues whose dead letters are routed through an exchange (`exchanges/dead_letters.rs`).
    pub(crate) dead_letter_routes: crate::exchanges::Routes,
    /// String keys with expiry (`keys/`), loaded on first use.
    keyspace: tokio::sync::OnceCell<Arc<crate::keys::Keyspace>>,
    pub(crate) shutting_down: Arc<AtomicBool>,
    /// Held by a maintenance pass while it runs (and holds the engine); `shutdown` takes it
    /// so that no pass outlives it — a test that reopens the folder right after a shutdown
    /// would otherwise find the state store still open.
    pub(crate) maintenance_running: Arc<tokio::sync::Mutex<()>>,
    /// Alarm rules, current alarms and their subscribers (`alerts/`).
    pub(crate) alerts: crate::alerts::Alerts,
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Engine {
    /// Opens (or creates) the data directory, recovers every stream, and starts the background
    /// maintenance task (segment roll by age, retention, interval fsync). Needs a Tokio runtime.
    pub async fn open(config: EngineConfig) -> Result<Arc<Engine>> {
        Self::open_with_io(config, Arc::new(FileIo)).await
    }

    /// As [`Engine::open`], on a disk whose every fsync — of the partition logs and of the
    /// state store — `plan` can fail or hold (`FaultPlan::hold_syncs`): what the doors' tests
    /// use to see which answers wait for the disk.
    pub async fn open_with_faults(
        mut config: EngineConfig,
        plan: Arc<omnibus_storage::io::FaultPlan>,
    ) -> Result<Arc<Engine>> {
        config.state_faults = Some(plan.clone());
        let io = Arc::new(omnibus_storage::io::FaultyIo::new(Arc::new(FileIo), plan));
        Self::open_with_io(config, io).await
    }

    /// As [`Engine::open`], with the partition logs on a chosen I/O backend (tests use the
    /// in-memory and fault-injecting ones). The state store is always a real file.
    pub async fn open_with_io(config: EngineConfig, io: Arc<dyn Io>) -> Result<Arc<Engine>> {
        let data_dir = config.data_dir.clone();
        // The state store is a real file whatever `io` is; both creations sync every parent
        // they add to, so a power loss cannot take the folders back.
        FileIo.create_dir_all(&data_dir).map_err(|e| {
            EngineError::Storage(omnibus_storage::StorageError::io(
                format!("creating data directory {}", data_dir.display()),
                e,
            ))
        })?;
        io.create_dir_all(&data_dir.join("streams")).map_err(|e| {
            EngineError::Storage(omnibus_storage::StorageError::io(
                "creating streams directory",
                e,
            ))
        })?;
        let state_path = data_dir.join("state.redb");
        let state = Arc::new(match &config.state_faults {
            Some(plan) => StateStore::open_with_faults(&state_path, plan.clone())?,
            None => StateStore::open(&state_path)?,
        });
        let disk_reserve = crate::health::open_reserve(&data_dir, config.disk_reserve_bytes);
        state.set_disk_reserve(disk_reserve.clone());
        let mut streams = StreamTable::default();
        for (name, bytes) in state.scan_prefix(STREAMS_TABLE, "")? {
            let stream_config: StreamConfig = serde_json::from_slice(&bytes).map_err(|e| {
                EngineError::Storage(omnibus_storage::StorageError::Corrupt(format!(
                    "stream {name:?} metadata: {e}"
                )))
            })?;
            mark_lost_partition_dirs(io.as_ref(), &data_dir, &stream_config)?;
            let stream = Stream::open(io.clone(), &data_dir, stream_config)?;
            streams.insert(Arc::new(stream));
        }
        remove_orphan_stream_dirs(io.as_ref(), &data_dir, &streams);
        let alerts = crate::alerts::Alerts::open(&state, &config.alerts)?;
        let committed = crate::groups::committed::CommittedOffsets::load(&state)?;
        let coordinator_limits = config.coordinator.clone();
        let engine = Arc::new_cyclic(|weak| Engine {
            coordinator: GroupCoordinator::with_limits(weak.clone(), coordinator_limits),
            producers: Arc::new(ProducerRegistry::default()),
            live_router: Arc::new(crate::router::LiveRouter::new()),
            committed,
            metrics: crate::metrics::Metrics::default(),
            exchanges: crate::exchanges::ExchangeTable::default(),
            dead_letter_routes: Default::default(),
            config,
            io,
            state,
            disk_reserve,
            streams: RwLock::new(streams),
            streams_generation: AtomicU64::new(0),
            stream_changes: StreamChanges::default(),
            queues: RwLock::new(BTreeMap::new()),
            consumers: RwLock::new(BTreeMap::new()),
            consumer_changes: tokio::sync::Mutex::new(()),
            queue_changes: std::sync::Mutex::new(()),
            consumers_removed: tokio::sync::Notify::new(),
            jobs: crate::jobs::JobsState::new(),
            keyspace: tokio::sync::OnceCell::new(),
            shutting_down: Arc::new(AtomicBool::new(false)),
            maintenance_running: Arc::new(tokio::sync::Mutex::new(())),
            alerts,
        });
        engine.open_queues()?;
        engine.open_consumers()?;
        engine.open_exchanges()?;
        engine.delete_transient_queues().await?;
        engine.open_dead_letter_routes()?;
        spawn_maintenance(&engine);
        if engine.config.alerts.enabled {
            crate::alerts::spawn_evaluator(&engine);
        }
        Ok(engine)
    }

    /// The consumer-group coordinator (Kafka's classic group protocol, protocol-neutral).
    pub fn coordinator(&self) -> &Arc<GroupCoordinator> {
        &self.coordinator
    }

    /// Idempotent producers' sequence state.
    pub fn producers(&self) -> &Arc<ProducerRegistry> {
        &self.producers
    }

    /// State-store commits and writes since the engine opened (benchmarks, metrics).
    pub fn state_stats(&self) -> omnibus_storage::StateStats {
        self.state.stats()
    }

    /// The durable keyspace (`keys/`), loaded from the state store on the first call: a
    /// broker whose clients never use keys pays nothing for them.
    pub async fn keyspace(&self) -> Result<Arc<crate::keys::Keyspace>> {
        self.keyspace
            .get_or_try_init(|| async { crate::keys::Keyspace::open(self.state.clone()) })
            .await
            .cloned()
    }

    /// The keyspace if a client has used it (metrics read it without loading it).
    pub fn keyspace_if_open(&self) -> Option<Arc<crate::keys::Keyspace>> {
        self.keyspace.get().cloned()
    }

    pub fn data_dir(&self) -> &Path {
        &self.config.data_dir
    }

    pub(crate) fn read_streams(&self) -> RwLockReadGuard<'_, StreamTable> {
        self.streams.read().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn write_streams(&self) -> RwLockWriteGuard<'_, StreamTable> {
        let streams = self.streams.write().unwrap_or_else(|p| p.into_inner());
        // After the lock is held: a reader that sees the new number and looks again waits for
        // this change; one that saw the old number publishes as if before it.
        self.streams_generation.fetch_add(1, Ordering::AcqRel);
        streams
    }

    pub(crate) fn check_running(&self) -> Result<()> {
        if self.shutting_down.load(Ordering::Acquire) {
            return Err(EngineError::ShuttingDown);
        }
        Ok(())
    }

    /// Stops accepting writes, waits for in-flight appends, fsyncs every partition.
    pub async fn shutdown(&self) -> Result<()> {
        self.shutting_down.store(true, Ordering::Release);
        // Waits out a maintenance pass in progress; later ones see the flag and stop.
        drop(self.maintenance_running.lock().await);
        // Commits answered before they were durable (leases, batched completions) land first.
        let queues: Vec<Arc<crate::queue::Queue>> = self
            .queues
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        for queue in queues {
            if !queue.flush(std::time::Duration::from_secs(10)).await {
                tracing::warn!(queue = %queue.config.name, "lazy commits still in flight at shutdown");
            }
        }
        for consumer in self.consumer_list() {
            if !consumer.flush(std::time::Duration::from_secs(10)).await {
                tracing::warn!(
                    stream = %consumer.stored.spec.stream,
                    consumer = %consumer.stored.spec.name,
                    "lazy commits still in flight at shutdown"
                );
            }
        }
        let streams: Vec<Arc<Stream>> = self.read_streams().values().cloned().collect();
        let state = self.state.clone();
        tokio::task::spawn_blocking(move || {
            for stream in streams {
                stream.close()?;
            }
            // Released now, not when the last holder of the engine lets go: a restart in
            // the same process opens the file again at once.
            state.close();
            Ok::<_, EngineError>(())
        })
        .await
        .map_err(|e| EngineError::Internal(format!("shutdown task failed: {e}")))?
    }

    /// One pass of upkeep over every partition: interval fsync, roll by age, retention.
    fn maintain(&self) {
        self.maintain_disk();
        if let Err(error) = self.sweep_jobs() {
            tracing::error!("job retention failed: {error}");
        }
        if let Err(error) = self.sweep_dedup() {
            tracing::error!("dedup window cleanup failed: {error}");
        }
        // What lazy acks of work-queue consumers let their streams remove.
        self.remove_acked_blocking();
        let streams: Vec<Arc<Stream>> = self.read_streams().values().cloned().collect();
        for stream in streams {
            for log in &stream.partitions {
                if let Err(error) = log.maintain() {
                    tracing::error!(stream = %stream.config.name, "maintenance failed: {error}");
                }
                match log.enforce_retention() {
                    Ok(outcome) if outcome.segments_deleted > 0 => tracing::info!(
                        stream = %stream.config.name,
                        segments = outcome.segments_deleted,
                        bytes = outcome.bytes_deleted,
                        "retention deleted segments"
                    ),
                    Ok(_) => {}
                    Err(error) => {
                        tracing::error!(stream = %stream.config.name, "retention failed: {error}")
                    }
                }
            }
        }
    }
}

/// A partition folder the metadata lists must exist (it is created, durably, before the
/// metadata is stored). One that is missing held records that are gone: rather than serve it
/// as a new, empty partition that reuses their offsets, it is reopened refusing writes with
/// the reason in its `write_error` (docs/storage.md, "A missing partition folder").
fn mark_lost_partition_dirs(io: &dyn Io, data_dir: &Path, config: &StreamConfig) -> Result<()> {
    for partition in 0..config.partitions {
        let dir = stream_dir(data_dir, &config.name).join(partition.to_string());
        if io.exists(&dir) {
            continue;
        }
        tracing::error!(
            stream = %config.name,
            partition,
            dir = %dir.display(),
            "a partition folder listed in the metadata is missing: its records are lost"
        );
        omnibus_storage::PartitionLog::mark_lost(
            io,
            &dir,
            &format!(
                "the folder of partition {partition} was missing at start although the \
                 stream's metadata lists it, so its records are lost; writes are refused so \
                 the lost offsets are not reused"
            ),
        )?;
    }
    Ok(())
}

fn remove_orphan_stream_dirs(io: &dyn Io, data_dir: &Path, streams: &StreamTable) {
    let root = data_dir.join("streams");
    let Ok(names) = io.list_dir(&root) else {
        return;
    };
    for folder in names {
        // A folder is a stream's when its name reads back as that stream's name; one no name
        // makes (not written by Omnibus) is left alone.
        let Some(name) = omnibus_types::stream_name_from_folder(&folder) else {
            continue;
        };
        if !streams.contains_key(&name) {
            tracing::warn!(stream = %name, "removing the folder of a stream with no metadata");
            let _ = io.remove_dir_all(&root.join(&folder));
        }
    }
}

/// Runs maintenance every `maintenance_interval_ms` until the engine is dropped or shut down.
/// A pass holds `maintenance_running` from before it checks the shutdown flag until it has
/// let go of the engine, so none runs on, or keeps alive, an engine that has shut down.
fn spawn_maintenance(engine: &Arc<Engine>) {
    let weak = Arc::downgrade(engine);
    let shutting_down = engine.shutting_down.clone();
    let running = engine.maintenance_running.clone();
    let interval_ms = engine.config.maintenance_interval_ms;
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(Duration::from_millis(interval_ms.max(10)));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let _pass = running.lock().await;
            if shutting_down.load(Ordering::Acquire) {
                return;
            }
            let Some(engine) = weak.upgrade() else {
                return;
            };
            let blocking = engine.clone();
            let _ = tokio::task::spawn_blocking(move || blocking.maintain()).await;
            // After `maintain` reopened the state store and resumed partitions: queues that a
            // now healed failure left refusing work are reloaded (`queue/recovery.rs`).
            engine.reload_healed_queues().await;
        }
    });
}

/// The checks a stream's changeable settings must pass, at create and at every change.
pub(crate) fn validate_settings(config: &StreamConfig) -> Result<()> {
    if config.message_bytes_max == 0 || config.message_bytes_max > limits::MESSAGE_BYTES_MAX {
        return Err(EngineError::InvalidConfig(format!(
            "message_bytes_max must be between 1 and {}",
            limits::MESSAGE_BYTES_MAX
        )));
    }
    log_config(config)
        .validate()
        .map_err(EngineError::InvalidConfig)
}
