//! An engine in a temporary folder with the Redis door on an ephemeral loopback port.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use omnibus_engine::{Engine, EngineConfig};
use omnibus_redis::RedisConfig;
use omnibus_storage::io::FaultPlan;
use tokio::sync::oneshot;

/// The door on `threads` threads of its own: clients land on different ones (the isolation
/// tests).
pub fn threaded(threads: usize) -> RedisConfig {
    RedisConfig {
        io_threads: threads,
        ..RedisConfig::default()
    }
}

pub struct Broker {
    pub engine: Arc<Engine>,
    pub address: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    served: Option<tokio::task::JoinHandle<()>>,
    _dir: Option<tempfile::TempDir>,
}

impl Broker {
    pub async fn start() -> Broker {
        let dir = tempfile::tempdir().unwrap();
        let mut broker = Broker::start_in(dir.path(), RedisConfig::default()).await;
        broker._dir = Some(dir);
        broker
    }

    pub async fn start_in(path: &Path, config: RedisConfig) -> Broker {
        Broker::start_with(EngineConfig::new(path), config).await
    }

    /// A broker on a disk whose fsyncs (of the logs and of the state store) the plan can
    /// hold, to see which replies wait for them.
    pub async fn start_with_faults() -> (Broker, Arc<FaultPlan>) {
        let dir = tempfile::tempdir().unwrap();
        let plan = FaultPlan::new();
        let engine = Engine::open_with_faults(EngineConfig::new(dir.path()), plan.clone())
            .await
            .unwrap();
        let mut broker = Broker::serve(engine, RedisConfig::default()).await;
        broker._dir = Some(dir);
        (broker, plan)
    }

    pub async fn start_with(engine_config: EngineConfig, config: RedisConfig) -> Broker {
        let engine = Engine::open(engine_config).await.unwrap();
        Broker::serve(engine, config).await
    }

    async fn serve(engine: Arc<Engine>, config: RedisConfig) -> Broker {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let served = tokio::spawn(omnibus_redis::serve(
            listener,
            engine.clone(),
            config,
            async move {
                let _ = stopped.await;
            },
        ));
        Broker {
            engine,
            address,
            stop: Some(stop),
            served: Some(tokio::spawn(async move {
                let _ = served.await;
            })),
            _dir: None,
        }
    }

    pub fn url(&self) -> String {
        format!("redis://{}/", self.address)
    }

    /// A connection whose replies may take up to 60 s: the redis crate's own default (0.5 s)
    /// is shorter than a long answer (KEYS over 70,000 keys) takes a debug build on a
    /// loaded CI machine. A test bounds its own waits where it means to.
    pub async fn connect(&self) -> redis::aio::MultiplexedConnection {
        let config = redis::AsyncConnectionConfig::new()
            .set_response_timeout(Some(std::time::Duration::from_secs(60)));
        redis::Client::open(self.url())
            .unwrap()
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .unwrap()
    }

    /// Stops the listener (closing every connection) and the engine.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(served) = self.served.take() {
            let _ = served.await;
        }
        self.engine.shutdown().await.unwrap();
    }
}

/// XADDs one entry with ID `id` (its one field `f` holds the ID too); answers the ID.
pub async fn xadd(con: &mut redis::aio::MultiplexedConnection, key: &str, id: &str) -> String {
    try_xadd(con, key, id).await.unwrap()
}

/// [`xadd`], answering the refusal too.
pub async fn try_xadd(
    con: &mut redis::aio::MultiplexedConnection,
    key: &str,
    id: &str,
) -> redis::RedisResult<String> {
    redis::cmd("XADD")
        .arg(key)
        .arg(id)
        .arg("f")
        .arg(id)
        .query_async(con)
        .await
}

/// Writes `request` on a raw socket and checks the next bytes are exactly `expected`.
pub async fn exchange(stream: &mut tokio::net::TcpStream, request: &[u8], expected: &[u8]) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream.write_all(request).await.unwrap();
    let mut reply = vec![0; expected.len()];
    tokio::time::timeout(
        std::time::Duration::from_secs(5),
        stream.read_exact(&mut reply),
    )
    .await
    .expect("a reply within 5 s")
    .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&reply),
        String::from_utf8_lossy(expected)
    );
}
