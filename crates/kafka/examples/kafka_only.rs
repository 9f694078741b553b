//! A Kafka-only broker for trying clients against the front door without the rest of the
//! binary: `cargo run -p omnibus-kafka --example kafka_only -- 127.0.0.1:9092 ./data`.
//! Stops on Ctrl-C, flushing every partition.

use std::sync::Arc;

use omnibus_engine::{Engine, EngineConfig};
use omnibus_kafka::KafkaConfig;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:9092".into());
    let data_dir = args.next().unwrap_or_else(|| "./omnibus-kafka-data".into());
    let engine = Engine::open(EngineConfig::new(data_dir)).await?;
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    eprintln!("kafka listening on {}", listener.local_addr()?);
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    omnibus_kafka::serve(
        listener,
        Arc::clone(&engine),
        KafkaConfig::default(),
        shutdown,
    )
    .await?;
    engine.shutdown().await?;
    Ok(())
}
