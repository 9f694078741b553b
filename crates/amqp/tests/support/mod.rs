//! An engine in a temporary folder with the AMQP door on an ephemeral loopback port.

pub mod client;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use omnibus_amqp::AmqpConfig;
use omnibus_engine::{Engine, EngineConfig};
use tokio::sync::oneshot;

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
        let mut broker = Broker::start_in(dir.path(), AmqpConfig::default()).await;
        broker._dir = Some(dir);
        broker
    }

    pub async fn start_in(path: &Path, config: AmqpConfig) -> Broker {
        let engine = Engine::open(EngineConfig::new(path)).await.unwrap();
        Broker::serve(engine, config).await
    }

    #[allow(dead_code)] // only the connection.blocked test starts one
    /// An engine over `io` (a fault-injecting one) in a temporary folder; maintenance runs
    /// every 20 ms so a healed disk is noticed at once.
    pub async fn start_with_io(io: Arc<dyn omnibus_storage::io::Io>) -> Broker {
        let dir = tempfile::tempdir().unwrap();
        let mut engine_config = EngineConfig::new(dir.path());
        engine_config.maintenance_interval_ms = 20;
        let engine = Engine::open_with_io(engine_config, io).await.unwrap();
        let mut broker = Broker::serve(engine, AmqpConfig::default()).await;
        broker._dir = Some(dir);
        broker
    }

    async fn serve(engine: Arc<Engine>, config: AmqpConfig) -> Broker {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let served = tokio::spawn(omnibus_amqp::serve(
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

    pub fn uri(&self) -> String {
        format!("amqp://guest:guest@{}/%2f", self.address)
    }

    pub async fn connect(&self) -> lapin::Connection {
        lapin::Connection::connect(&self.uri(), lapin::ConnectionProperties::default())
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
