//! A broker for the NATS tests: an engine on a temporary folder, the NATS door and the HTTP
//! door on 127.0.0.1 with ports chosen by the system.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use omnibus_engine::{Engine, EngineConfig};
use omnibus_nats::NatsConfig;
use omnibus_storage::io::FaultPlan;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

pub struct Broker {
    pub engine: Arc<Engine>,
    pub nats: SocketAddr,
    pub http: SocketAddr,
    _dir: tempfile::TempDir,
    _stop: oneshot::Sender<()>,
}

impl Broker {
    pub async fn start() -> Broker {
        Broker::with_config(NatsConfig::default()).await
    }

    pub async fn with_config(config: NatsConfig) -> Broker {
        let dir = tempfile::tempdir().unwrap();
        Broker::in_folder(dir, config).await
    }

    /// A broker on `dir` (which may hold an earlier broker's data: a restart).
    pub async fn in_folder(dir: tempfile::TempDir, config: NatsConfig) -> Broker {
        let engine = Engine::open(EngineConfig::new(dir.path())).await.unwrap();
        Broker::serve(engine, dir, config).await
    }

    /// A broker on a disk whose fsyncs (of the stream logs and of the state store) the plan
    /// can hold, to see which acknowledgements wait for them.
    pub async fn with_faults() -> (Broker, Arc<FaultPlan>) {
        let dir = tempfile::tempdir().unwrap();
        let plan = FaultPlan::new();
        let engine = Engine::open_with_faults(EngineConfig::new(dir.path()), plan.clone())
            .await
            .unwrap();
        (
            Broker::serve(engine, dir, NatsConfig::default()).await,
            plan,
        )
    }

    async fn serve(engine: Arc<Engine>, dir: tempfile::TempDir, config: NatsConfig) -> Broker {
        let nats_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let http_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let nats = nats_listener.local_addr().unwrap();
        let http = http_listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let (stop_http, stopped_http) = oneshot::channel::<()>();
        tokio::spawn(omnibus_nats::serve(
            nats_listener,
            engine.clone(),
            config,
            async move {
                let _ = stopped.await;
                let _ = stop_http.send(());
            },
        ));
        tokio::spawn(omnibus_http::serve(
            http_listener,
            engine.clone(),
            omnibus_http::HttpConfig::default(),
            async move {
                let _ = stopped_http.await;
            },
        ));
        Broker {
            engine,
            nats,
            http,
            _dir: dir,
            _stop: stop,
        }
    }

    /// Stops the broker cleanly and hands back its data folder, for a restart.
    pub async fn stop(self) -> tempfile::TempDir {
        drop(self._stop);
        self.engine.shutdown().await.unwrap();
        self._dir
    }

    pub fn url(&self) -> String {
        format!("nats://{}", self.nats)
    }

    pub async fn client(&self) -> async_nats::Client {
        async_nats::connect(self.url()).await.unwrap()
    }

    /// A raw connection that has read the server's INFO line.
    pub async fn raw(&self) -> Raw {
        let mut raw = Raw::new(TcpStream::connect(self.nats).await.unwrap());
        let info = raw.line().await;
        assert!(info.starts_with("INFO {"), "{info}");
        raw
    }
}

/// A client speaking the protocol by hand.
pub struct Raw {
    pub stream: TcpStream,
    buffer: Vec<u8>,
}

impl Raw {
    pub fn new(stream: TcpStream) -> Raw {
        Raw {
            stream,
            buffer: Vec::new(),
        }
    }

    pub async fn send(&mut self, bytes: &str) {
        self.stream.write_all(bytes.as_bytes()).await.unwrap();
    }

    /// The next line, without its CRLF; panics after 5 s or at the end of the stream.
    pub async fn line(&mut self) -> String {
        tokio::time::timeout(Duration::from_secs(5), async {
            // Where the search for CRLF resumes: a megabyte payload arrives in many reads,
            // and searching the whole buffer after each one is quadratic (seconds in debug).
            let mut searched: usize = 0;
            loop {
                let start = searched.saturating_sub(1);
                if let Some(at) = self.buffer[start..].windows(2).position(|w| w == b"\r\n") {
                    let end = start + at;
                    let line: Vec<u8> = self.buffer.drain(..end + 2).collect();
                    return String::from_utf8_lossy(&line[..end]).into_owned();
                }
                searched = self.buffer.len();
                let mut chunk = [0u8; 16384];
                let read = self.stream.read(&mut chunk).await.unwrap();
                assert!(
                    read > 0,
                    "the server closed; had {:?}",
                    String::from_utf8_lossy(&self.buffer)
                );
                self.buffer.extend_from_slice(&chunk[..read]);
            }
        })
        .await
        .expect("a line within 5 s")
    }

    /// Reads everything until the server closes; panics after 5 s.
    pub async fn until_closed(&mut self) -> String {
        tokio::time::timeout(Duration::from_secs(5), async {
            let mut all = std::mem::take(&mut self.buffer);
            let mut chunk = vec![0u8; 64 * 1024];
            loop {
                match self.stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(read) => all.extend_from_slice(&chunk[..read]),
                }
            }
            String::from_utf8_lossy(&all).into_owned()
        })
        .await
        .expect("the server closes within 5 s")
    }
}
