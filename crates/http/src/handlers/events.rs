//! Server-Sent Events: `GET /v1/queues/{queue}/jobs/{id}/events` follows one job,
//! `GET /v1/queues/{queue}/events` every job of a queue.
//!
//! Each job event is sent as `event: <kind>` (`enqueued`, `active`, `progress`, `completed`,
//! `failed`, `dead`, `cancelled`), `data: <the event as JSON>` and `id: <n>`, n counting the
//! events of this connection (there is no resuming: a client that reconnects gets a fresh
//! snapshot). A job's stream opens with a `snapshot` event carrying the job as it is, and ends
//! after the job's final event (or at once when the snapshot is already final).
//!
//! When the queue fails (a state commit failed: it refuses all work, `storage_failed`, until it
//! is reloaded from disk — by maintenance once a full disk heals, else by a restart), both kinds of stream get `event: queue_failed` with the reason in its
//! `error`, and end.
//!
//! Bounds: each connection reads the engine's event broadcast, which keeps at most its buffer
//! of events per reader; a reader that falls behind is sent `event: lagged` with
//! `{"missed":n}` (a job's stream then sends a fresh snapshot, so a missed final event still
//! ends it). At most `sse_streams_max` streams are open at once; one more is refused with 503
//! `unavailable`. Keep-alive comments flow every 15 s, and every stream ends when the server
//! shuts down.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream};
use omnibus_engine::jobs::{Job, JobEvent, QUEUE_FAILED_EVENT};
use omnibus_engine::Engine;
use serde::Serialize;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, watch, OwnedSemaphorePermit};

use crate::error::ApiError;
use crate::extract::PathParams;
use crate::router::AppState;

/// Interval of the keep-alive comments, which stop proxies closing an idle stream.
pub const KEEP_ALIVE_MS: u64 = 15_000;

/// What one stream follows.
enum Scope {
    Queue(String),
    Job { queue: String, id: String },
}

impl Scope {
    fn covers(&self, event: &JobEvent) -> bool {
        match self {
            Scope::Queue(queue) => event.queue == *queue,
            Scope::Job { queue, id } => {
                event.queue == *queue && (event.id == *id || ends_the_queue(event))
            }
        }
    }
}

#[derive(Serialize)]
struct Lagged {
    missed: u64,
}

/// One event to send, before it is framed as SSE.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Outgoing {
    id: u64,
    kind: String,
    /// JSON text.
    data: String,
}

impl From<Outgoing> for Event {
    fn from(outgoing: Outgoing) -> Event {
        Event::default()
            .event(outgoing.kind)
            .id(outgoing.id.to_string())
            .data(outgoing.data)
    }
}

/// One connection's state: its broadcast receiver, its place in the stream, its permit.
struct Follower {
    engine: Arc<Engine>,
    events: broadcast::Receiver<JobEvent>,
    closing: watch::Receiver<bool>,
    scope: Scope,
    /// A job snapshot to send before reading more events.
    snapshot: Option<Job>,
    /// Read the job again and send it as a snapshot (after a lag).
    snapshot_due: bool,
    sequence: u64,
    ended: bool,
    /// Held for as long as the stream is open.
    _permit: OwnedSemaphorePermit,
}

impl Follower {
    fn event(&mut self, kind: &str, data: &impl Serialize) -> Outgoing {
        let id = self.sequence;
        self.sequence += 1;
        Outgoing {
            id,
            kind: kind.to_owned(),
            data: serde_json::to_string(data).expect("event data serializes"),
        }
    }

    fn snapshot_event(&mut self, job: &Job) -> Outgoing {
        if job.status.is_final() {
            self.ended = true;
        }
        self.event("snapshot", job)
    }

    /// The next event to send, or `None` when the stream is over.
    async fn next(&mut self) -> Option<Outgoing> {
        if self.ended {
            return None;
        }
        if let Some(job) = self.snapshot.take() {
            return Some(self.snapshot_event(&job));
        }
        if std::mem::take(&mut self.snapshot_due) {
            if let Scope::Job { queue, id } = &self.scope {
                // A job gone since (removed by retention) ends its stream.
                let job = self.engine.get_job(queue, id).await.ok()?;
                return Some(self.snapshot_event(&job));
            }
        }
        loop {
            let received = tokio::select! {
                received = self.events.recv() => received,
                () = shutting_down(&mut self.closing) => return None,
            };
            match received {
                Ok(event) if self.scope.covers(&event) => {
                    let job_ended =
                        matches!(self.scope, Scope::Job { .. }) && event.status.is_final();
                    if job_ended || ends_the_queue(&event) {
                        self.ended = true;
                    }
                    return Some(self.event(event.kind, &event));
                }
                Ok(_) => continue,
                Err(RecvError::Lagged(missed)) => {
                    self.snapshot_due = matches!(self.scope, Scope::Job { .. });
                    return Some(self.event("lagged", &Lagged { missed }));
                }
                Err(RecvError::Closed) => return None,
            }
        }
    }

    fn into_sse(self) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
        let events = stream::unfold(self, |mut follower| async move {
            let outgoing = follower.next().await?;
            Some((Ok(Event::from(outgoing)), follower))
        });
        Sse::new(events).keep_alive(
            KeepAlive::new()
                .interval(Duration::from_millis(KEEP_ALIVE_MS))
                .text("keep-alive"),
        )
    }
}

/// The queue failed: nothing more will happen to this instance of it or its jobs (a reloaded
/// queue is a new instance; clients follow it again).
fn ends_the_queue(event: &JobEvent) -> bool {
    event.kind == QUEUE_FAILED_EVENT
}

/// Completes when the server begins shutting down; never when nothing can signal it.
async fn shutting_down(closing: &mut watch::Receiver<bool>) {
    if closing.wait_for(|closing| *closing).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// A permit for one more stream, or 503 when `sse_streams_max` are open.
fn stream_permit(state: &AppState) -> Result<OwnedSemaphorePermit, ApiError> {
    Arc::clone(&state.sse_streams)
        .try_acquire_owned()
        .map_err(|_| {
            ApiError::unavailable(format!(
                "all {} event streams (sse_streams_max) are in use",
                state.config.sse_streams_max
            ))
        })
}

fn follower(state: &AppState, scope: Scope, permit: OwnedSemaphorePermit) -> Follower {
    Follower {
        engine: Arc::clone(&state.engine),
        // Subscribed before anything is read, so no event falls between the read and the
        // subscription (at worst one is sent twice).
        events: state.engine.job_events(),
        closing: state.closing.clone(),
        scope,
        snapshot: None,
        snapshot_due: false,
        sequence: 0,
        ended: false,
        _permit: permit,
    }
}

/// `GET /v1/queues/{queue}/jobs/{id}/events`
pub async fn job_events(
    State(state): State<AppState>,
    PathParams((queue, id)): PathParams<(String, String)>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let permit = stream_permit(&state)?;
    let mut follower = follower(
        &state,
        Scope::Job {
            queue: queue.clone(),
            id: id.clone(),
        },
        permit,
    );
    follower.snapshot = Some(state.engine.get_job(&queue, &id).await?);
    Ok(follower.into_sse())
}

/// `GET /v1/queues/{queue}/events`
pub async fn queue_events(
    State(state): State<AppState>,
    PathParams(queue): PathParams<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let permit = stream_permit(&state)?;
    let follower = follower(&state, Scope::Queue(queue.clone()), permit);
    state.engine.queue_info(&queue)?;
    Ok(follower.into_sse())
}

#[cfg(test)]
mod tests {
    use omnibus_engine::jobs::NewJob;
    use omnibus_engine::queue::QueueSpec;
    use omnibus_engine::EngineConfig;
    use tokio::sync::Semaphore;

    use super::*;

    fn new_job() -> NewJob {
        NewJob {
            name: "n".into(),
            ..NewJob::default()
        }
    }

    /// A follower as the handlers build one, without a server around it.
    fn follower_of(engine: &Arc<Engine>, scope: Scope) -> Follower {
        let permit = Arc::new(Semaphore::new(1)).try_acquire_owned().unwrap();
        let (_, closing) = watch::channel(false);
        Follower {
            engine: Arc::clone(engine),
            events: engine.job_events(),
            closing,
            scope,
            snapshot: None,
            snapshot_due: false,
            sequence: 0,
            ended: false,
            _permit: permit,
        }
    }

    #[tokio::test]
    async fn a_lagging_job_stream_says_so_then_resends_the_snapshot_and_still_ends() {
        let data = tempfile::tempdir().unwrap();
        let engine = Engine::open(EngineConfig::new(data.path())).await.unwrap();
        engine
            .create_queue(QueueSpec {
                name: "q".into(),
                ..QueueSpec::default()
            })
            .await
            .unwrap();
        let followed = engine.enqueue_jobs("q", vec![new_job()]).await.unwrap();
        let id = followed[0].id.clone();
        let scope = Scope::Job {
            queue: "q".into(),
            id: id.clone(),
        };
        let mut job_stream = follower_of(&engine, scope);
        let mut queue_stream = follower_of(&engine, Scope::Queue("q".into()));

        // More events than the broadcast keeps for a reader that does not read.
        let burst = 5_000;
        engine
            .enqueue_jobs("q", vec![new_job(); burst])
            .await
            .unwrap();

        let lagged = job_stream.next().await.unwrap();
        assert_eq!(lagged.kind, "lagged");
        let missed: serde_json::Value = serde_json::from_str(&lagged.data).unwrap();
        assert!(
            missed["missed"].as_u64().unwrap() >= (burst - 4_096) as u64,
            "{missed}"
        );
        let snapshot = job_stream.next().await.unwrap();
        assert_eq!((snapshot.id, snapshot.kind.as_str()), (1, "snapshot"));
        assert!(
            snapshot.data.contains(r#""status":"waiting""#),
            "{}",
            snapshot.data
        );

        // The broadcast still holds 4,096 events of the burst, so the cancellation pushes one
        // out and the stream lags again: the final state arrives as a snapshot, and it ends.
        engine.cancel_job("q", &id).await.unwrap();
        let lagged = job_stream.next().await.unwrap();
        assert_eq!(
            (lagged.kind.as_str(), lagged.data.as_str()),
            ("lagged", r#"{"missed":1}"#)
        );
        let last = job_stream.next().await.unwrap();
        assert_eq!(last.kind, "snapshot");
        assert!(
            last.data.contains(r#""status":"cancelled""#),
            "{}",
            last.data
        );
        assert_eq!(job_stream.next().await, None);

        // A queue stream just carries on after saying it lagged.
        assert_eq!(queue_stream.next().await.unwrap().kind, "lagged");
        assert_eq!(queue_stream.next().await.unwrap().kind, "enqueued");
    }

    #[tokio::test]
    async fn job_and_queue_streams_say_the_queue_failed_and_end() {
        let data = tempfile::tempdir().unwrap();
        let plan = omnibus_engine::config::FaultPlan::new();
        let mut config = EngineConfig::new(data.path());
        config.state_faults = Some(plan.clone());
        let engine = Engine::open(config).await.unwrap();
        engine
            .create_queue(QueueSpec {
                name: "q".into(),
                ..QueueSpec::default()
            })
            .await
            .unwrap();
        let id = engine.enqueue_jobs("q", vec![new_job()]).await.unwrap()[0]
            .id
            .clone();
        let mut job_stream = follower_of(
            &engine,
            Scope::Job {
                queue: "q".into(),
                id,
            },
        );
        let mut queue_stream = follower_of(&engine, Scope::Queue("q".into()));
        plan.fail_write(1);
        let refused = engine.fetch_jobs("q", "w", 1, 0).await.unwrap_err();
        assert_eq!(refused.code(), omnibus_types::ErrorCode::StorageFailed);
        for stream in [&mut job_stream, &mut queue_stream] {
            let failed = tokio::time::timeout(Duration::from_secs(5), stream.next())
                .await
                .expect("the stream is told at once")
                .unwrap();
            assert_eq!(failed.kind, "queue_failed");
            assert!(
                failed.data.contains("injected I/O failure"),
                "{}",
                failed.data
            );
            assert_eq!(stream.next().await, None, "and ends");
        }
    }

    #[tokio::test]
    async fn a_stream_ends_when_the_server_begins_shutting_down() {
        let data = tempfile::tempdir().unwrap();
        let engine = Engine::open(EngineConfig::new(data.path())).await.unwrap();
        let mut follower = follower_of(&engine, Scope::Queue("q".into()));
        let (closing, signal) = watch::channel(false);
        follower.closing = signal;
        let next = tokio::spawn(async move { follower.next().await });
        closing.send(true).unwrap();
        let ended = tokio::time::timeout(Duration::from_secs(5), next)
            .await
            .expect("the stream ends promptly")
            .unwrap();
        assert_eq!(ended, None);
    }
}
