//! The one error type of the harness library: a client library's failure, a broker's
//! unexpected answer, or a workload a system cannot do.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum BenchError {
    /// The system has no way to do this workload; reported as one line, never faked.
    #[error("not supported: {0}")]
    NotSupported(String),
    #[error("HTTP request failed: {0}")]
    Http(#[from] reqwest::Error),
    /// The broker answered, but not with what the workload needs.
    #[error("{system} answered {status}: {body}")]
    Broker {
        system: &'static str,
        status: String,
        body: String,
    },
    #[error("Redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("NATS: {0}")]
    Nats(String),
    #[error("AMQP: {0}")]
    Amqp(#[from] lapin::Error),
    #[error("Kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// A run did not finish its work before its time budget ran out (jobs left undrained,
    /// messages never consumed); the figure would be wrong, so there is none.
    #[error("incomplete run: {0}")]
    Incomplete(String),
    #[error("invalid settings: {0}")]
    Settings(String),
}

impl BenchError {
    /// async-nats has one error type per operation; the harness only reports them.
    pub fn nats(error: impl std::fmt::Display) -> BenchError {
        BenchError::Nats(error.to_string())
    }
}

pub type Result<T> = std::result::Result<T, BenchError>;
