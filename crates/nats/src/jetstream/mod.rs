//! JetStream over the NATS door: the `$JS.API.*` requests and publishing into a stream with
//! a PubAck, mapped onto engine streams (docs/nats.md, "JetStream, mapping onto the engine").
//!
//! Protocol: a JetStream API call is an ordinary request — a PUB to `$JS.API.<call>` with a
//! reply subject — answered with one JSON message on the reply subject: the call's result, or
//! `{"type":…,"error":{"code","err_code","description"}}` with nats-server's codes
//! (`errors.rs`). A publish to a subject a stream captures, made as a request (a reply
//! subject given), is answered with a PubAck `{"stream","seq"[,"duplicate":true]}` once the
//! record is durable.
//!
//! Our choices: a JetStream stream *is* an Omnibus stream (so what NATS publishes, HTTP and
//! Kafka read, and the reverse); the JetStream sequence of a record is its offset + 1 in
//! partition 0 (streams created here have one partition; JetStream has no partitions). What
//! JetStream keeps beside the log — the `Nats-Msg-Id` window, the last message id, the last
//! sequence per subject — lives here, per stream, rebuilt from the stream's own records
//! (their headers) the first time a stream is published to after a start, so it survives a
//! restart without a store of its own. Answers go through the engine's live router to the
//! reply subject, so a requester on any connection gets them.

pub(crate) mod acks;
mod consumers;
mod direct;
pub(crate) mod errors;
mod extras;
mod publish;
pub(crate) mod pull;
mod push;
pub(crate) mod reaper;
mod state;
mod streams;
pub(crate) mod time;

pub(crate) use publish::{
    handle as publish, handle_batch as publish_batch, has_jetstream_headers, wanted,
};

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use omnibus_engine::router::{LiveMessage, LiveRouter};
use serde_json::Value;

use crate::handlers::Connection;
use errors::ApiError;
use state::StreamState;

/// The prefix of every JetStream API subject.
pub(crate) const API_PREFIX: &str = "$JS.API.";

/// What every connection of a listener shares about JetStream.
#[derive(Default)]
pub(crate) struct JetStream {
    /// Per stream, created on first use; the async lock orders the checks and the append of
    /// publishes that carry JetStream headers or expect a PubAck.
    streams: Mutex<HashMap<String, Arc<tokio::sync::Mutex<StreamState>>>>,
    /// The tasks of push consumers, per (stream, consumer) (`push.rs`).
    pushers: Mutex<HashMap<(String, String), tokio::task::AbortHandle>>,
    /// The flow-control answers of flow-controlled push consumers, per (stream, consumer).
    flow: Mutex<HashMap<(String, String), Arc<push::FlowControl>>>,
    /// When each consumer last had a pull request or an ack (`reaper.rs`).
    activity: Mutex<HashMap<(String, String), tokio::time::Instant>>,
    /// Pull requests waiting, per (stream, consumer): a consumer's `num_waiting`.
    waiting: Arc<Mutex<HashMap<(String, String), usize>>>,
    api_total: AtomicU64,
    api_errors: AtomicU64,
}

impl JetStream {
    fn stream_state(&self, stream: &str) -> Arc<tokio::sync::Mutex<StreamState>> {
        let mut streams = self.streams.lock().unwrap_or_else(|p| p.into_inner());
        streams.entry(stream.to_string()).or_default().clone()
    }

    /// Starts the task of a push consumer, unless it runs already.
    fn start_push(
        &self,
        engine: &Arc<omnibus_engine::Engine>,
        stream: &str,
        consumer: &str,
        settings: push::PushSettings,
    ) {
        let key = (stream.to_string(), consumer.to_string());
        let mut pushers = self.pushers.lock().unwrap_or_else(|p| p.into_inner());
        pushers.retain(|_, task| !task.is_finished());
        if pushers.contains_key(&key) {
            return;
        }
        let flow = settings.flow_control.then(|| {
            let answers = Arc::new(push::FlowControl::default());
            let mut flow = self.flow.lock().unwrap_or_else(|p| p.into_inner());
            flow.insert(key.clone(), answers.clone());
            answers
        });
        let task = tokio::spawn(push::run(
            engine.clone(),
            key.0.clone(),
            key.1.clone(),
            settings,
            flow,
        ));
        pushers.insert(key, task.abort_handle());
    }

    /// A publish to `$JS.FC.<stream>.<consumer>.<n>`: the answer to a push consumer's flow-
    /// control request. Answers nobody waits for (a deleted consumer, a malformed subject)
    /// are ignored, as nats-server ignores them.
    pub(crate) fn flow_control_answered(&self, subject: &str) {
        let Some(rest) = subject.strip_prefix(push::FLOW_CONTROL_PREFIX) else {
            return;
        };
        let tokens: Vec<&str> = rest.split('.').collect();
        let [stream, consumer, number] = tokens[..] else {
            return;
        };
        let Ok(number) = number.parse::<u64>() else {
            return;
        };
        let flow = self.flow.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(answers) = flow.get(&(stream.to_string(), consumer.to_string())) {
            answers.answer(number);
        }
    }

    /// Stops the push tasks of `stream` (of one consumer, or all).
    fn stop_push(&self, stream: &str, consumer: Option<&str>) {
        self.flow
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(s, c), _| !(s == stream && consumer.is_none_or(|name| name == c)));
        let mut pushers = self.pushers.lock().unwrap_or_else(|p| p.into_inner());
        pushers.retain(|(s, c), task| {
            let hit = s == stream && consumer.is_none_or(|name| name == c);
            if hit {
                task.abort();
            }
            !hit
        });
    }

    /// Starts the tasks of every stored push consumer (when the listener starts).
    pub(crate) fn resume_push_consumers(&self, engine: &Arc<omnibus_engine::Engine>) {
        for stream in engine.list_streams() {
            for info in engine.list_consumers(&stream.config.name) {
                let config = consumers::door_config(&info);
                if let Some(settings) = push::PushSettings::of(&config) {
                    self.start_push(
                        engine,
                        &stream.config.name,
                        &info.stored.spec.name,
                        settings,
                    );
                }
            }
        }
    }

    /// Pull requests waiting on a consumer.
    fn waiting(&self, stream: &str, consumer: &str) -> usize {
        let waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        waiting
            .get(&(stream.to_string(), consumer.to_string()))
            .copied()
            .unwrap_or(0)
    }

    /// Notes activity on a consumer (a pull request, an ack).
    pub(crate) fn touch(&self, stream: &str, consumer: &str) {
        let mut activity = self.activity.lock().unwrap_or_else(|p| p.into_inner());
        activity.insert(
            (stream.to_string(), consumer.to_string()),
            tokio::time::Instant::now(),
        );
    }

    /// When a consumer was last active; first seen now counts as active now.
    fn last_active(
        &self,
        stream: &str,
        consumer: &str,
        now: tokio::time::Instant,
    ) -> tokio::time::Instant {
        let mut activity = self.activity.lock().unwrap_or_else(|p| p.into_inner());
        *activity
            .entry((stream.to_string(), consumer.to_string()))
            .or_insert(now)
    }

    fn forget_activity(&self, stream: &str, consumer: &str) {
        let mut activity = self.activity.lock().unwrap_or_else(|p| p.into_inner());
        activity.remove(&(stream.to_string(), consumer.to_string()));
    }

    /// Counts a pull request as waiting until the guard is dropped.
    pub(crate) fn waiting_guard(&self, stream: &str, consumer: &str) -> WaitingGuard {
        let key = (stream.to_string(), consumer.to_string());
        let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        *waiting.entry(key.clone()).or_insert(0) += 1;
        WaitingGuard {
            waiting: self.waiting.clone(),
            key,
        }
    }

    /// Forgets what was kept about a stream that was deleted or purged.
    fn forget_stream(&self, stream: &str) {
        let mut streams = self.streams.lock().unwrap_or_else(|p| p.into_inner());
        streams.remove(stream);
    }
}

/// A pull request counted in its consumer's `num_waiting`.
pub(crate) struct WaitingGuard {
    waiting: Arc<Mutex<HashMap<(String, String), usize>>>,
    key: (String, String),
}

impl Drop for WaitingGuard {
    fn drop(&mut self) {
        let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = waiting.get_mut(&self.key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                waiting.remove(&self.key);
            }
        }
    }
}

/// Answers one `$JS.API.*` request (nothing when there is no reply subject to answer on).
pub(crate) async fn api(
    connection: &mut Connection,
    subject: &str,
    reply: Option<String>,
    payload: &Bytes,
) {
    let Some(reply) = reply else {
        return;
    };
    let shared = connection.shared.clone();
    let jetstream = &shared.jetstream;
    jetstream.api_total.fetch_add(1, Ordering::Relaxed);
    let call = &subject[API_PREFIX.len()..];
    if call.starts_with("DIRECT.GET.") {
        direct::get(&shared.engine, call, reply, payload).await;
        return;
    }
    if let Some(names) = call.strip_prefix("CONSUMER.MSG.NEXT.") {
        if let Some((stream, consumer)) = names.split_once('.') {
            pull::start(connection, stream, consumer, reply, payload);
        }
        return;
    }
    let (response_type, outcome) = streams::dispatch(&shared, call, payload).await;
    let answer = match outcome {
        // Every answer names its API's response type, as nats-server's do (a CREATE answers
        // a stream's info as `stream_create_response`).
        Ok(mut value) => {
            if let Some(object) = value.as_object_mut() {
                object.insert("type".into(), response_type.into());
            }
            value
        }
        Err(error) => {
            jetstream.api_errors.fetch_add(1, Ordering::Relaxed);
            error.to_json(response_type)
        }
    };
    send(
        shared.engine.live_router(),
        reply,
        answer.to_string().into(),
    );
}

/// Publishes an answer on `reply` to whoever subscribes it.
pub(crate) fn send(router: &LiveRouter, reply: String, payload: Bytes) {
    let message = LiveMessage {
        subject: reply,
        reply: None,
        headers: Vec::new(),
        payload,
        status: None,
        appended: false,
    };
    // Replies go to unique inboxes: no use caching their matches.
    router.publish_once(Arc::new(message), None);
}

/// An API result: the answer's JSON or an error.
pub(crate) type ApiResult = Result<Value, ApiError>;
