//! One of Omnibus's doors started in the test process: an engine on a temporary folder and
//! the door's listener on 127.0.0.1, port 0. The drivers reach it over TCP as they would any
//! broker; dropping the handle stops the door.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use omnibus_engine::{Engine, EngineConfig};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// What a door's `serve` waits on to stop.
pub type Shutdown = Pin<Box<dyn Future<Output = ()> + Send>>;

pub struct InProcessDoor {
    /// `127.0.0.1:<port>` of the door's listener.
    pub address: String,
    shutdown: Option<oneshot::Sender<()>>,
    _data: tempfile::TempDir,
}

impl InProcessDoor {
    /// Opens an engine and spawns `serve(listener, engine, shutdown)` (a door's `serve` with
    /// its config filled in).
    pub async fn start<S, F>(serve: S) -> InProcessDoor
    where
        S: FnOnce(TcpListener, Arc<Engine>, Shutdown) -> F,
        F: Future<Output = std::io::Result<()>> + Send + 'static,
    {
        let data = tempfile::tempdir().expect("temporary folder");
        let engine = Engine::open(EngineConfig::new(data.path()))
            .await
            .expect("engine opens");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("local address").to_string();
        let (shutdown, stopped) = oneshot::channel::<()>();
        tokio::spawn(serve(
            listener,
            engine,
            Box::pin(async move {
                let _ = stopped.await;
            }),
        ));
        InProcessDoor {
            address,
            shutdown: Some(shutdown),
            _data: data,
        }
    }
}

impl Drop for InProcessDoor {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}
