//! A live publish: a message for live subscribers that is also appended to the stream that
//! captures its subject, if one does (durable capture).
//!
//! Without a capturing stream the message goes to the live subscribers at once. With one, it is
//! enqueued on the stream (in the caller's order, through the same log append and fsync policy
//! as every other publish) and reaches live subscribers only once the append is acknowledged,
//! so a live reader never sees a message that a crash could take back from the stream's
//! readers. Enqueueing returns at once; a door that keeps its publishes in order awaits the
//! [`PendingCapture`]s in order too, and many appends share one fsync meanwhile.
//!
//! A captured message is stored with its subject, headers and payload; the reply subject is
//! not stored (it means nothing once the requester is gone). The partition is chosen by the
//! subject's hash, so messages of one subject keep their order in the stream.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use omnibus_storage::batch::EncodedBatches;
use omnibus_storage::PendingAppend;
use omnibus_types::validate_subject;

use super::{LiveMessage, LiveRouter, Routed};
use crate::engine::{now_ms, Engine};
use crate::error::{EngineError, Result};
use crate::model::{PublishRecord, RecordPosition};
use crate::streams::partitioner::partition_for_key;
use crate::streams::Stream;

/// A publisher's last capture lookup ([`Engine::publish_live_cached`]): the subject, the
/// stream capturing it (if any) and the stream table's generation it was looked up in. Use
/// one with one engine only.
#[derive(Default)]
pub struct CaptureCache {
    filled: bool,
    generation: u64,
    subject: String,
    stream: Option<Arc<Stream>>,
}

impl CaptureCache {
    /// Whether `subject` is the one the cache was filled for: a valid subject, so a door may
    /// skip its own check of a run of publishes on one subject.
    pub fn holds(&self, subject: &str) -> bool {
        self.filled && self.subject == subject
    }
}

impl std::fmt::Debug for CaptureCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaptureCache")
            .field("subject", &self.subject)
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

/// What [`Engine::publish_live`] did.
#[derive(Debug)]
pub enum LivePublish {
    /// No stream captures the subject: delivered to the live subscribers already.
    Delivered(Routed),
    /// A stream captures the subject: appended, not yet acknowledged.
    Captured(PendingCapture),
    /// The subject is a queue's name: enqueued into the queue (durably, `queue/bridged.rs`)
    /// and delivered to the live subscribers.
    Enqueued {
        routed: Routed,
        position: crate::model::RecordPosition,
    },
}

/// A captured message on its way into its stream; live subscribers get it once
/// [`PendingCapture::durable`] sees it acknowledged.
#[derive(Debug)]
pub struct PendingCapture {
    append: PendingAppend,
    partition: u32,
    router: Arc<LiveRouter>,
    message: Arc<LiveMessage>,
    origin: Option<u64>,
}

impl PendingCapture {
    /// Where the message was given its place: known at once, readable once durable. A door
    /// that must answer with the position before the fsync (JetStream's duplicate checks)
    /// reads it here.
    pub fn position(&self) -> RecordPosition {
        RecordPosition {
            partition: self.partition,
            offset: self.append.offsets().first_offset,
        }
    }

    /// Waits for the stream's acknowledgement, then delivers to the live subscribers.
    pub async fn durable(self) -> Result<(RecordPosition, Routed)> {
        let info = self.append.durable().await?;
        let routed = self.router.publish(self.message, self.origin);
        Ok((
            RecordPosition {
                partition: self.partition,
                offset: info.first_offset,
            },
            routed,
        ))
    }
}

impl Engine {
    /// The router of live subscriptions every front door shares.
    pub fn live_router(&self) -> &Arc<LiveRouter> {
        &self.live_router
    }

    /// Publishes `message` to the live subscribers of its subject and appends it to the
    /// stream capturing that subject, if any (see the module documentation). `origin` is the
    /// publisher's [`super::Mailbox::id`], so a subscriber without echo skips its own.
    pub async fn publish_live(
        &self,
        message: LiveMessage,
        origin: Option<u64>,
    ) -> Result<LivePublish> {
        self.publish_live_cached(message, origin, &mut CaptureCache::default())
            .await
    }

    /// [`Engine::publish_live`] for a publisher that keeps a [`CaptureCache`]: a run of
    /// publishes on one subject looks its capturing stream up once.
    pub async fn publish_live_cached(
        &self,
        message: LiveMessage,
        origin: Option<u64>,
        cache: &mut CaptureCache,
    ) -> Result<LivePublish> {
        self.publish_live_with(message, origin, cache, false).await
    }

    /// [`Engine::publish_live`] for a subject that is seldom published again (a Redis
    /// keyspace event's `__keyspace@0__:<key>`): its live subscribers are found without the
    /// router's match cache ([`LiveRouter::publish_once`]), so such subjects neither pay
    /// for a cache entry nor evict the subjects published again and again.
    pub async fn publish_live_once(
        &self,
        message: LiveMessage,
        origin: Option<u64>,
    ) -> Result<LivePublish> {
        self.publish_live_with(message, origin, &mut CaptureCache::default(), true)
            .await
    }

    async fn publish_live_with(
        &self,
        message: LiveMessage,
        origin: Option<u64>,
        cache: &mut CaptureCache,
        once: bool,
    ) -> Result<LivePublish> {
        let Some(stream) = self.capture_checked(&message.subject, cache)? else {
            let message = Arc::new(message);
            let routed = if once {
                self.live_router.publish_once(message, origin)
            } else {
                self.live_router.publish(message, origin)
            };
            return Ok(LivePublish::Delivered(routed));
        };
        self.check_running()?;
        if let Some(queue) = self.queue_in_stream(&stream.config.name, false) {
            let position = self.enqueue_live(&queue, &message).await?;
            let routed = self.live_router.publish(Arc::new(message), origin);
            return Ok(LivePublish::Enqueued { routed, position });
        }
        let partition = partition_for_key(message.subject.as_bytes(), stream.config.partitions);
        let record = PublishRecord {
            subject: None,
            key: None,
            value: Some(message.payload.clone()),
            headers: message.headers.clone(),
            partition: Some(partition),
            timestamp_ms: None,
        };
        let stored = crate::streams::to_stored(&stream, Some(&message.subject), record, now_ms())?;
        let batches = EncodedBatches::of(std::slice::from_ref(&stored))?;
        let log = stream.partition(partition)?.clone();
        let append = log.enqueue_encoded(batches).await?;
        Ok(LivePublish::Captured(PendingCapture {
            append,
            partition,
            router: self.live_router.clone(),
            message: Arc::new(message),
            origin,
        }))
    }

    /// The stream capturing `subject`, from `cache` while the stream table has not changed
    /// since it was filled for the same subject. Reads no lock then: the table's lock was a
    /// cache line every publishing core wrote (its reader count).
    /// Only a valid subject fills the cache: an invalid one is captured by no stream.
    fn capturing_cached(&self, subject: &str, cache: &mut CaptureCache) -> Option<Arc<Stream>> {
        let generation = self.streams_generation.load(Ordering::Acquire);
        if cache.holds(subject) && cache.generation == generation {
            return cache.stream.clone();
        }
        if validate_subject(subject).is_err() {
            return None;
        }
        self.fill_capture_cache(subject, cache, generation)
    }

    /// [`Engine::capturing_cached`] for a publish: a subject the cache does not hold is
    /// checked first, and an invalid one is refused. A subject the cache holds was checked
    /// when it was filled, so it is not checked again, even if the cache must be refilled.
    fn capture_checked(
        &self,
        subject: &str,
        cache: &mut CaptureCache,
    ) -> Result<Option<Arc<Stream>>> {
        let generation = self.streams_generation.load(Ordering::Acquire);
        if !cache.holds(subject) {
            validate_subject(subject).map_err(|e| EngineError::InvalidSubject(e.to_string()))?;
        } else if cache.generation == generation {
            return Ok(cache.stream.clone());
        }
        Ok(self.fill_capture_cache(subject, cache, generation))
    }

    /// Looks up the stream capturing the valid `subject` and keeps the answer in `cache`.
    fn fill_capture_cache(
        &self,
        subject: &str,
        cache: &mut CaptureCache,
        generation: u64,
    ) -> Option<Arc<Stream>> {
        let stream = self.read_streams().capturing(subject).cloned();
        *cache = CaptureCache {
            filled: true,
            generation,
            subject: subject.to_string(),
            stream: stream.clone(),
        };
        stream
    }

    /// [`Engine::publish_live_cached`] without a future, for the usual core publish that no
    /// stream captures: routed to the live subscribers at once. `Ok(Err(message))` hands the
    /// message back untouched when a stream captures its subject (publish it with
    /// [`Engine::publish_live_cached`], which appends it).
    pub fn publish_live_now(
        &self,
        message: LiveMessage,
        origin: Option<u64>,
        cache: &mut CaptureCache,
    ) -> Result<std::result::Result<Routed, LiveMessage>> {
        if self.capture_checked(&message.subject, cache)?.is_some() {
            return Ok(Err(message));
        }
        Ok(Ok(self.live_router.publish(Arc::new(message), origin)))
    }

    /// [`Engine::stream_capturing`] through a publisher's [`CaptureCache`].
    pub fn stream_capturing_cached(
        &self,
        subject: &str,
        cache: &mut CaptureCache,
    ) -> Option<String> {
        self.capturing_cached(subject, cache)
            .map(|stream| stream.config.name.clone())
    }

    /// The name of the stream that captures `subject`, if one does.
    pub fn stream_capturing(&self, subject: &str) -> Option<String> {
        self.read_streams()
            .capturing(subject)
            .map(|stream| stream.config.name.clone())
    }
}

/// What a live subscriber gets of a stored record: its stored subject (empty for the
/// stream's own name), headers and value.
pub(crate) type StoredCopy = (String, Vec<omnibus_types::Header>, Option<Bytes>);

/// Publishes stored records to the live subscribers of their subjects; `appended` when
/// they were written to the stream by its name, not published to a subject
/// ([`LiveMessage::appended`]).
pub(crate) fn deliver_stored(
    router: &LiveRouter,
    stream_name: &str,
    records: Vec<StoredCopy>,
    appended: bool,
) {
    for (subject, headers, value) in records {
        let subject = if subject.is_empty() {
            stream_name.to_string()
        } else {
            subject
        };
        // A stream named outside the subject rules has no live readers to reach.
        if validate_subject(&subject).is_err() {
            continue;
        }
        let message = LiveMessage {
            subject,
            reply: None,
            headers,
            payload: value.unwrap_or_default(),
            status: None,
            appended,
        };
        router.publish(Arc::new(message), None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::router::MailboxLimits;
    use crate::EngineConfig;

    #[tokio::test]
    async fn a_subject_published_once_reaches_its_subscribers_without_a_cache_entry() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(EngineConfig::new(dir.path())).await.unwrap();
        let router = engine.live_router().clone();
        let limits = MailboxLimits {
            messages_max: 100,
            bytes_max: 1 << 20,
        };
        let mailbox = router.mailbox(true, limits);
        // What a Redis PSUBSCRIBE __keyspace@0__:* becomes (no dot: the whole subject space).
        let _keys = router.subscribe(&mailbox, ">", None, 1).unwrap();
        let message = |subject: String| LiveMessage {
            subject,
            reply: None,
            headers: Vec::new(),
            payload: bytes::Bytes::from_static(b"set"),
            status: None,
            appended: false,
        };
        for n in 0..50 {
            let subject = format!("__keyspace@0__:user:{n}");
            let published = engine.publish_live_once(message(subject), None).await;
            assert!(
                matches!(&published, Ok(LivePublish::Delivered(routed)) if routed.matched == 1),
                "{published:?}"
            );
        }
        assert_eq!(router.cached_subjects(), 0);
        engine
            .publish_live(message("__keyspace@0__:again".into()), None)
            .await
            .unwrap();
        assert_eq!(router.cached_subjects(), 1, "the cached path still caches");
        engine.shutdown().await.unwrap();
    }
}
