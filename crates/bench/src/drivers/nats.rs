//! Core NATS: no persistence and no publish acknowledgement.
//!
//! - publish: `--in-flight` is meaningless here, as a publish is only written to the
//!   client's buffer; the run publishes `--messages` and ends with a flush (a PING the server
//!   answers after reading everything before it). The result says the publish is not acked.
//! - consume and jobs: not supported; core NATS keeps nothing for a consumer that is not
//!   connected (use `jetstream`).
//! - latency: publish at `--rate` to a subject this process subscribes to.
//! - request-reply: a responder in this process answers every request; each requester keeps
//!   `--in-flight` requests open.
//! - fan-out and routing: `nats_routing.rs`.

use std::time::Instant;

use bytes::Bytes;
use futures_util::StreamExt;
use tokio::task::JoinSet;

use super::jetstream::connect;
use super::{join_histograms, measurement, not_supported, Context};
use crate::error::{BenchError, Result};
use crate::load::{self, Measurement};
use crate::settings::Workload;

pub async fn run(context: &Context) -> Result<Measurement> {
    match context.settings.workload {
        Workload::KeyValue => Err(not_supported(
            context,
            "a Redis strings workload (use --system redis)",
        )),
        Workload::Publish => publish(context).await,
        Workload::Latency => latency(context).await,
        Workload::RequestReply => request_reply(context).await,
        Workload::FanOut => super::nats_routing::fan_out(context).await,
        Workload::Routing => super::nats_routing::routing(context).await,
        Workload::Consume | Workload::Jobs | Workload::Enqueue => Err(not_supported(
            context,
            "core NATS keeps no messages for later consumers (use --system jetstream)",
        )),
    }
}

async fn publish(context: &Context) -> Result<Measurement> {
    let settings = &context.settings;
    let subject = context.name("publish");
    let payload = Bytes::from(load::payload(settings.size));
    let mut clients = Vec::new();
    for _ in 0..settings.producers {
        clients.push(connect(context).await?);
    }
    let budget = context.budget(settings.messages);
    let started = Instant::now();
    let mut producers = JoinSet::new();
    for client in clients {
        let (budget, subject, payload) = (budget.clone(), subject.clone(), payload.clone());
        producers.spawn(async move {
            while budget.claim(1) == 1 {
                client
                    .publish(subject.clone(), payload.clone())
                    .await
                    .map_err(BenchError::nats)?;
                budget.finish(1);
            }
            client.flush().await.map_err(BenchError::nats)?;
            Ok::<_, BenchError>(())
        });
    }
    while let Some(joined) = producers.join_next().await {
        joined.map_err(|error| BenchError::Incomplete(error.to_string()))??;
    }
    Ok(measurement(
        &budget,
        started.elapsed(),
        Some("publish is not acknowledged by core NATS".to_string()),
    ))
}

async fn latency(context: &Context) -> Result<Measurement> {
    let settings = &context.settings;
    let subject = context.name("latency");
    let sender = connect(context).await?;
    let receiving = connect(context).await?;
    let mut subscriber = receiving
        .subscribe(subject.clone())
        .await
        .map_err(BenchError::nats)?;
    // The subscription must reach the server before the first publish.
    receiving.flush().await.map_err(BenchError::nats)?;
    let size = settings.size;
    let mut result = super::latency_run(
        context,
        move |stamp| {
            let (sender, subject) = (sender.clone(), subject.clone());
            let payload = Bytes::from(load::stamped_payload(size, stamp));
            async move {
                sender
                    .publish(subject, payload)
                    .await
                    .map_err(BenchError::nats)?;
                // A flush per message, so it leaves now instead of waiting in the buffer.
                sender.flush().await.map_err(BenchError::nats)
            }
        },
        move |mut receiver: super::Receiver| async move {
            let _keep_connection = receiving;
            while receiver.waiting() {
                let next = tokio::time::timeout(receiver.poll_interval(), subscriber.next()).await;
                if let Ok(Some(message)) = next {
                    receiver.received(&message.payload)?;
                }
            }
            Ok(receiver)
        },
    )
    .await?;
    let unacknowledged = "publish is not acknowledged by core NATS";
    result.note = Some(match result.note {
        Some(note) => format!("{unacknowledged}; {note}"),
        None => unacknowledged.to_string(),
    });
    Ok(result)
}

async fn request_reply(context: &Context) -> Result<Measurement> {
    let settings = &context.settings;
    let subject = context.name("request");
    let responder = connect(context).await?;
    let mut requests = responder
        .subscribe(subject.clone())
        .await
        .map_err(BenchError::nats)?;
    responder.flush().await.map_err(BenchError::nats)?;
    let answering = tokio::spawn(async move {
        while let Some(request) = requests.next().await {
            if let Some(reply) = request.reply {
                responder
                    .publish(reply, request.payload)
                    .await
                    .map_err(BenchError::nats)?;
            }
        }
        Ok::<_, BenchError>(())
    });
    let payload = Bytes::from(load::payload(settings.size));
    let mut clients = Vec::new();
    for _ in 0..settings.producers {
        clients.push(connect(context).await?);
    }
    let budget = context.budget(settings.messages);
    let started = Instant::now();
    let mut requesters = JoinSet::new();
    for client in clients {
        let (budget, subject, payload) = (budget.clone(), subject.clone(), payload.clone());
        let window = settings.in_flight;
        requesters.spawn(async move {
            load::run_window(&budget, window, 1, |_| {
                let (client, subject, payload) = (client.clone(), subject.clone(), payload.clone());
                async move {
                    client
                        .request(subject, payload)
                        .await
                        .map_err(BenchError::nats)?;
                    Ok(())
                }
            })
            .await
        });
    }
    let latencies = join_histograms(requesters).await;
    answering.abort();
    let mut result = measurement(&budget, started.elapsed(), None);
    result.latency = Some(latencies?);
    Ok(result)
}
