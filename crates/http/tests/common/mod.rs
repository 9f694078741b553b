//! The test harness shared by the end-to-end tests: a real engine on a temporary folder, the
//! API served on a real socket, and a real HTTP client.
// Each test crate uses its own subset of the helpers.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use omnibus_engine::{Engine, EngineConfig};
use omnibus_http::{serve, HttpConfig};
use omnibus_storage::io::FaultPlan;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub struct Server {
    pub address: std::net::SocketAddr,
    pub client: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
    pub engine: Arc<Engine>,
    _data: tempfile::TempDir,
}

impl Server {
    pub async fn start() -> Server {
        Server::start_with(HttpConfig::default()).await
    }

    pub async fn start_with(config: HttpConfig) -> Server {
        Server::start_with_engine(config, |_| {}).await
    }

    /// As [`Server::start_with`], with the engine's configuration changed by `configure`.
    pub async fn start_with_engine(
        config: HttpConfig,
        configure: impl FnOnce(&mut EngineConfig),
    ) -> Server {
        let data = tempfile::tempdir().expect("temporary folder");
        let mut engine_config = EngineConfig::new(data.path());
        configure(&mut engine_config);
        let engine = Engine::open(engine_config).await.expect("engine opens");
        Server::serve(engine, data, config).await
    }

    /// A server on a disk whose fsyncs (of the stream logs and of the state store) the plan
    /// can hold, to see which answers wait for them.
    pub async fn start_with_faults() -> (Server, Arc<FaultPlan>) {
        let data = tempfile::tempdir().expect("temporary folder");
        let plan = FaultPlan::new();
        let engine = Engine::open_with_faults(EngineConfig::new(data.path()), plan.clone())
            .await
            .expect("engine opens");
        (
            Server::serve(engine, data, HttpConfig::default()).await,
            plan,
        )
    }

    async fn serve(engine: Arc<Engine>, data: tempfile::TempDir, config: HttpConfig) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("local address");
        let (shutdown, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, engine.clone(), config, async move {
            let _ = stopped.await;
        }));
        Server {
            address,
            client: reqwest::Client::new(),
            shutdown: Some(shutdown),
            task: Some(task),
            engine,
            _data: data,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// Sends a request (JSON body when given) and returns the status and the JSON body
    /// (`Null` when the body is empty).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.client.request(method, self.url(path));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request is answered");
        read(response).await
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(body)).await
    }

    /// Posts JSON text exactly as written (a `Value` would sort object keys).
    pub async fn post_text(&self, path: &str, body: &str) -> (StatusCode, Value) {
        let response = self
            .client
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .expect("request is answered");
        read(response).await
    }

    pub async fn create_stream(&self, spec: Value) {
        let (status, body) = self.post("/v1/streams", spec).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }

    /// Sends raw bytes and returns the whole raw response.
    pub async fn raw(&self, request: &[u8]) -> String {
        let mut socket = tokio::net::TcpStream::connect(self.address)
            .await
            .expect("connect");
        socket.write_all(request).await.expect("write request");
        let mut response = Vec::new();
        socket
            .read_to_end(&mut response)
            .await
            .expect("read response");
        String::from_utf8_lossy(&response).into_owned()
    }

    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            let outcome = tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .expect("server stops after the shutdown signal")
                .expect("server task does not panic");
            outcome.expect("serve returns Ok");
        }
    }
}

pub async fn read(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let bytes = response.bytes().await.expect("response body");
    if bytes.is_empty() {
        return (status, Value::Null);
    }
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|error| panic!("body is not JSON ({error}): {bytes:?}"));
    (status, body)
}

/// Asserts an error response: status, stable code, and a non-empty message.
pub fn assert_error(answer: &(StatusCode, Value), status: StatusCode, code: &str) {
    let (actual_status, body) = answer;
    assert_eq!(*actual_status, status, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(!message.is_empty(), "error without a message: {body}");
}

impl Server {
    pub async fn create_queue(&self, spec: Value) -> Value {
        let (status, body) = self.post("/v1/queues", spec).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }

    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::DELETE, path, None).await
    }

    /// Posts with no body at all (no Content-Type either).
    pub async fn post_empty(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::POST, path, None).await
    }
}

/// A queue for jobs whose failed attempts come back at once.
pub async fn job_queue(server: &Server, name: &str) {
    server
        .create_queue(json!({
            "name": name,
            "backoff": {"kind": "fixed", "delay_ms": 0},
            "jitter": 0.0,
        }))
        .await;
}

pub async fn enqueue(server: &Server, queue: &str, job: Value) -> (StatusCode, Value) {
    server.post(&format!("/v1/queues/{queue}/jobs"), job).await
}

pub async fn enqueue_one(server: &Server, queue: &str, job: Value) -> String {
    let (status, body) = enqueue(server, queue, job).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["jobs"][0]["id"].as_str().expect("job id").to_owned()
}

pub async fn fetch(server: &Server, queue: &str, max: usize, wait_ms: u64) -> Vec<Value> {
    let (status, body) = server
        .post(
            &format!("/v1/queues/{queue}/jobs/fetch"),
            json!({"worker": "w1", "max": max, "wait_ms": wait_ms}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["jobs"].as_array().expect("jobs").clone()
}
