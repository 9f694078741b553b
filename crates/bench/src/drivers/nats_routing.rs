//! Core NATS routing workloads (the `nats` driver; nats-server or Omnibus's NATS door):
//!
//! - fan-out: `--subscribers` connections each subscribe to one subject; one publisher sends
//!   `--messages` messages to it. The figure is messages **delivered** per second, all
//!   subscribers together (`--messages` × `--subscribers` when every one arrives).
//! - routing: `--subscriptions` other subscriptions exist (half `<prefix>.<i>.*`, half
//!   `other.<i>.>`, spread over connections of at most [`SUBSCRIPTIONS_PER_CONNECTION`])
//!   while one publisher sends `--messages` messages to `<prefix>.hit.<n>` (n cycling over
//!   [`HIT_SUBJECTS`] subjects, so a match cache cannot hold one answer for everything) and
//!   one subscriber of `<prefix>.hit.*` receives them. The figure is messages delivered per
//!   second: routing cost per message with a large subscription table.
//!
//! Core NATS has no flow control, and both servers cut off a subscriber that falls behind
//! (slow consumer), so the publisher keeps at most [`WINDOW`] messages ahead of the slowest
//! subscriber: the figure is a sustained rate, not how much a server buffers.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;

use super::jetstream::connect;
use super::{measurement, Context, GRACE};
use crate::error::{BenchError, Result};
use crate::load::{self, Measurement};

/// Messages the publisher may be ahead of the slowest subscriber.
const WINDOW: u64 = 20_000;
/// Messages published between two looks at the subscribers' progress.
const STRIDE: u64 = 1_000;
/// Subscriptions per connection in the routing workload (Omnibus allows 10,000 by default).
pub const SUBSCRIPTIONS_PER_CONNECTION: usize = 2_500;
/// Distinct subjects the routing workload publishes to.
const HIT_SUBJECTS: u64 = 1_000;

pub async fn fan_out(context: &Context) -> Result<Measurement> {
    let settings = &context.settings;
    let subject = context.name("fanout");
    let received: Arc<Vec<AtomicU64>> = Arc::new(
        (0..settings.subscribers)
            .map(|_| AtomicU64::new(0))
            .collect(),
    );
    let mut receivers = Vec::new();
    for index in 0..settings.subscribers {
        let client = connect(context).await?;
        let mut subscription = client
            .subscribe(subject.clone())
            .await
            .map_err(BenchError::nats)?;
        client.flush().await.map_err(BenchError::nats)?;
        let received = received.clone();
        receivers.push(tokio::spawn(async move {
            let _keep_connection = client;
            while subscription.next().await.is_some() {
                received[index].fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let publisher = connect(context).await?;
    let subjects = move |_: u64| subject.clone();
    let outcome = publish_windowed(context, &publisher, subjects, &received).await;
    for receiver in receivers {
        receiver.abort();
    }
    outcome
}

pub async fn routing(context: &Context) -> Result<Measurement> {
    let settings = &context.settings;
    let prefix = context.name("routing");
    // The other subscriptions: none of them matches what is published.
    let mut others = Vec::new();
    let mut created = 0;
    while created < settings.subscriptions {
        let client = connect(context).await?;
        let mut subscriptions = Vec::new();
        let end = (created + SUBSCRIPTIONS_PER_CONNECTION).min(settings.subscriptions);
        for index in created..end {
            let pattern = if index % 2 == 0 {
                format!("{prefix}.{index}.*")
            } else {
                format!("other.{index}.>")
            };
            subscriptions.push(client.subscribe(pattern).await.map_err(BenchError::nats)?);
        }
        client.flush().await.map_err(BenchError::nats)?;
        created = end;
        others.push((client, subscriptions));
    }
    let received = Arc::new(vec![AtomicU64::new(0)]);
    let client = connect(context).await?;
    let mut subscription = client
        .subscribe(format!("{prefix}.hit.*"))
        .await
        .map_err(BenchError::nats)?;
    client.flush().await.map_err(BenchError::nats)?;
    let counting = received.clone();
    let receiver = tokio::spawn(async move {
        let _keep_connection = client;
        while subscription.next().await.is_some() {
            counting[0].fetch_add(1, Ordering::Relaxed);
        }
    });
    let publisher = connect(context).await?;
    let subjects = move |number: u64| format!("{prefix}.hit.{}", number % HIT_SUBJECTS);
    let outcome = publish_windowed(context, &publisher, subjects, &received).await;
    receiver.abort();
    drop(others);
    outcome.map(|mut result| {
        result.note = Some(format!(
            "{} other subscriptions; {}",
            settings.subscriptions,
            result.note.unwrap_or_else(|| "all delivered".into())
        ));
        result
    })
}

/// Publishes the budget's messages to `subject_of(number)`, never more than [`WINDOW`] ahead
/// of the slowest counter in `received`, then waits for every counter to reach what was
/// published. Operations = messages delivered (the sum of the counters).
async fn publish_windowed(
    context: &Context,
    publisher: &async_nats::Client,
    subject_of: impl Fn(u64) -> String,
    received: &[AtomicU64],
) -> Result<Measurement> {
    let payload = Bytes::from(load::payload(context.settings.size));
    let budget = context.budget(context.settings.messages);
    let slowest = || {
        received
            .iter()
            .map(|count| count.load(Ordering::Relaxed))
            .min()
            .unwrap_or(0)
    };
    let started = Instant::now();
    let mut published = 0u64;
    'publishing: loop {
        let claimed = budget.claim(STRIDE);
        if claimed == 0 {
            break;
        }
        for _ in 0..claimed {
            publisher
                .publish(subject_of(published), payload.clone())
                .await
                .map_err(BenchError::nats)?;
            published += 1;
        }
        publisher.flush().await.map_err(BenchError::nats)?;
        budget.finish(claimed);
        while published.saturating_sub(slowest()) > WINDOW {
            if started.elapsed() > context.settings.duration() {
                break 'publishing;
            }
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
    }
    let deadline = Instant::now() + GRACE;
    while slowest() < published && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let elapsed = started.elapsed();
    let delivered: u64 = received.iter().map(|c| c.load(Ordering::Relaxed)).sum();
    let expected = published * received.len() as u64;
    let mut result = measurement(&budget, elapsed, None);
    result.operations = delivered;
    if delivered < expected {
        let missing = format!("{delivered} of {expected} delivered");
        result.note = Some(match result.note {
            Some(note) => format!("{note}; {missing}"),
            None => missing,
        });
    }
    Ok(result)
}
