//! One writer task per Redis stream: every change to a stream (XADD, XTRIM, XSETID, XDEL, and
//! DEL of the stream key) goes through it, in the order sessions handed them over.
//!
//! A session hands a change over synchronously while it runs a command (so a pipeline's
//! XADDs are queued in order before it waits for any of them), and the reply comes back once
//! the change is durable. The task takes every change waiting (up to [`BATCH_MAX`]), gives
//! XADDs their IDs in order, and appends the run of XADDs as one engine publish: a pipeline of
//! XADDs, or XADDs from many connections, share one append and one fsync.
//!
//! An XADD batch is only enqueued by the task (it has its offsets and its place in the log);
//! a spawned acknowledgement waits for its fsync and answers it, while the task goes on to the
//! next batch. So the XADDs that arrive during an fsync are queued for the next group commit
//! at once instead of one batch per fsync round trip, and every reply still follows its fsync.
//! The other changes (XTRIM, XDEL, XSETID, DEL, an XADD that trims) look at the durable log,
//! so they first wait until everything enqueued before them is acknowledged.
//!
//! The task keeps the stream's top ID (the last ID given out) and the high watermark it
//! belongs to; when the stream grew by another door's appends it reads the last record
//! again. An ID given out before a stream is emptied (XTRIM to nothing, XSETID) is also kept
//! as a door setting (`redis.last-id`), so IDs keep growing across a restart.
//!
//! A stream key's deadline (EXPIRE, PERSIST) is set here too, and the stream is deleted here
//! when it is due (`expiry.rs`): an XADD to a stream past its deadline makes a new one.
//!
//! The stream key's keyspace events (`notify/`) are sent from here, where what happened is
//! known (whether an XADD made the stream, how much a trim removed): an XADD's `new`,
//! `xadd` and `xtrim` once it is durable, just before its answer; the other changes' as they
//! are made, before theirs. So a subscriber that reads the stream on `xadd` finds the entry.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use omnibus_engine::keys::ExpireCondition;
use omnibus_engine::{Engine, EngineError, PublishRecord, PublishTarget};
use tokio::sync::{mpsc, oneshot};

mod restore;
mod set_id;

pub(crate) use restore::BUSY_KEY;

pub(crate) use super::change::Change;
pub(super) use super::change::Request;
use super::clock::{Clock, Top};
use super::deleted::{max_deleted, DeletedEntries, DELETED_MAX};
use super::entry::to_record;
use super::expiry::{now_ms, Deadlines};
use super::id::{NewId, StreamId};
use super::read::{bounds, last_id, offset_of, offsets_of_ids, LAST_ID_SETTING};
use super::trim::{newest_entries_from, Trim, TrimBy, Trimming};
use super::writers::Observers;
use crate::codec::Reply;
use crate::notify::{Event, Notifications, EXPIRED, GENERIC, NEW, STREAM, STREAM_WRITES};

/// Changes taken from the queue at once: one publish holds at most this many XADDs.
pub(crate) const BATCH_MAX: usize = 4_096;

/// A queued XADD: its answer, its ID as the reply spells it, and its keyspace events (sent
/// once it is durable, just before the answer; none unless they are asked for).
struct Waiting {
    answer: oneshot::Sender<Reply>,
    id: Bytes,
    events: Vec<Event>,
}

struct Writer {
    engine: Arc<Engine>,
    deleted: Arc<DeletedEntries>,
    deadlines: Arc<Deadlines>,
    observers: Arc<Observers>,
    stream: String,
    /// The stream's name as its keyspace events name the key.
    key: Bytes,
    /// The last ID given out, shared with the scripts that give out IDs themselves.
    clock: Arc<Mutex<Clock>>,
    /// The stream's existence and `top` were checked against the engine during this batch:
    /// the XADDs after the first of a batch skip both lookups (per-XADD cost on a pipeline).
    /// Cleared at each batch and by every change other than an XADD.
    checked: bool,
    /// The clock read once per batch for its auto IDs (`*`): a batch is taken at once, so its
    /// entries share a time as entries added in the same millisecond do.
    now_ms: Option<u64>,
    records: Vec<PublishRecord>,
    /// The queued XADDs' answers.
    waiting: Vec<Waiting>,
    /// The acknowledgement of the last batch enqueued, while it may still wait: it is
    /// durable only once every batch before it is (one partition, one high watermark).
    acknowledging: Option<tokio::task::JoinHandle<()>>,
    /// Set by an acknowledgement whose batch failed: some IDs given out are not in the log,
    /// so the next batch reads the top again.
    failed: Arc<AtomicBool>,
    /// An approximate trim an XADD could not finish, the stream's newest entries not being
    /// durable yet: done when the writer is next idle.
    overdue: Option<Trim>,
}

pub(super) async fn run(
    engine: Arc<Engine>,
    deleted: Arc<DeletedEntries>,
    deadlines: Arc<Deadlines>,
    observers: Arc<Observers>,
    stream: String,
    clock: Arc<Mutex<Clock>>,
    mut requests: mpsc::UnboundedReceiver<Request>,
) {
    let mut writer = Writer {
        engine,
        deleted,
        deadlines,
        observers,
        key: Bytes::from(stream.clone()),
        stream,
        clock,
        checked: false,
        now_ms: None,
        records: Vec::new(),
        waiting: Vec::new(),
        acknowledging: None,
        failed: Arc::new(AtomicBool::new(false)),
        overdue: None,
    };
    let mut batch = Vec::new();
    while let Some(first) = requests.recv().await {
        batch.push(first);
        while batch.len() < BATCH_MAX {
            match requests.try_recv() {
                Ok(request) => batch.push(request),
                Err(_) => break,
            }
        }
        writer.checked = false;
        writer.now_ms = None;
        if writer.failed.swap(false, Ordering::AcqRel) {
            writer.forget_top();
        }
        for request in batch.drain(..) {
            let counted = !matches!(request.change, Change::Reserved(..));
            writer.apply(request).await;
            if counted {
                let mut clock = writer.clock();
                clock.queued -= 1;
                clock.all_queued.fetch_sub(1, Ordering::Release);
            }
        }
        writer.publish().await;
        if requests.is_empty() {
            writer.trim_overdue().await;
        }
    }
    // Answered before the task ends (at shutdown the engine closes after the writers).
    writer.settle().await;
}

/// Answers a batch of XADDs: each its ID, after its events, or all the publish's error.
fn answer(
    waiting: Vec<Waiting>,
    outcome: Result<(), EngineError>,
    (engine, notifications): (&Arc<Engine>, &Notifications),
) {
    for Waiting { answer, id, events } in waiting {
        let reply = match &outcome {
            Ok(()) => {
                notifications.send(engine, events);
                Reply::Bulk(id)
            }
            Err(error) => Reply::error(format!("ERR {error}")),
        };
        let _ = answer.send(reply);
    }
}

/// Answers a refused XADD: to a script's, the refusal as its ID and OK (nothing to wait for)
/// as its outcome; to any other, the refusal.
pub(super) fn refuse(
    assigned: Option<oneshot::Sender<Reply>>,
    answer: oneshot::Sender<Reply>,
    reply: Reply,
) {
    match assigned {
        Some(assigned) => {
            let _ = assigned.send(reply);
            let _ = answer.send(Reply::ok());
        }
        None => {
            let _ = answer.send(reply);
        }
    }
}

fn engine_error(error: EngineError) -> Reply {
    match error {
        EngineError::LimitExceeded(text) => {
            Reply::error(format!("OOM command not allowed: {text}"))
        }
        other => Reply::error(format!("ERR {other}")),
    }
}

impl Writer {
    async fn apply(
        &mut self,
        Request {
            change,
            answer,
            assigned,
        }: Request,
    ) {
        // Past its deadline the stream is gone: it is deleted before any change to it, so an
        // XADD makes a new one (NOMKSTREAM none) and XTRIM, XDEL, XSETID find no key.
        // (A DEL answers 0 for it, below; a script's entry was given its ID before.)
        if !self.checked
            && !matches!(
                change,
                Change::Destroy | Change::Sweep | Change::Reserved(..)
            )
            && self.deadlines.is_due(&self.engine, &self.stream)
        {
            match self.destroy().await {
                Ok(existed) => self.expired(existed),
                Err(error) => {
                    refuse(assigned, answer, engine_error(error));
                    return;
                }
            }
        }
        match change {
            Change::Add {
                id,
                fields,
                make_stream,
                trim,
            } => {
                let (new_id, made) = match self.add(id, &fields, make_stream).await {
                    Ok(added) => added,
                    Err(reply) => {
                        refuse(assigned, answer, reply);
                        return;
                    }
                };
                if let Some(assigned) = assigned {
                    let _ = assigned.send(Reply::Bulk(new_id.clone()));
                }
                let mut events = self.events(&[(made, NEW, "new"), (true, STREAM, "xadd")]);
                let trim = match trim {
                    Some(trim) if !self.within_slack(trim) => trim,
                    _ => {
                        self.waiting.push(Waiting {
                            answer,
                            id: new_id,
                            events,
                        });
                        return;
                    }
                };
                if trim.has_slack() {
                    // Answered once durable, as an XADD without a trim.
                    let removed = self.trim_approximately(trim).await;
                    events.extend(self.events(&[(removed > 0, STREAM, "xtrim")]));
                    self.waiting.push(Waiting {
                        answer,
                        id: new_id,
                        events,
                    });
                    return;
                }
                // Answered once trimmed: a read after the reply sees the stream trimmed.
                self.checked = false;
                let mut reply = Reply::Bulk(new_id.clone());
                if let Err(error) = self.publish_with(new_id, events).await {
                    reply = error;
                } else {
                    match self.trim(trim, Trimming::Exactly).await {
                        Ok(removed) => self.send_if(removed > 0, STREAM, "xtrim"),
                        Err(error) => reply = engine_error(error),
                    }
                }
                let _ = answer.send(reply);
            }
            Change::Trim(trim) => {
                if self.within_slack(trim) {
                    let _ = answer.send(Reply::Integer(0));
                    return;
                }
                self.checked = false;
                self.flush().await;
                // Everything queued before it is durable: `~` trims as exactly, but leaves
                // the new start's fsyncs for later.
                let trimming = if trim.has_slack() {
                    Trimming::Lazily
                } else {
                    Trimming::Exactly
                };
                let reply = match self.trim(trim, trimming).await {
                    Ok(removed) => {
                        self.send_if(removed > 0, STREAM, "xtrim");
                        Reply::Integer(removed as i64)
                    }
                    Err(error) => engine_error(error),
                };
                let _ = answer.send(reply);
            }
            Change::Delete(ids) => {
                self.checked = false;
                self.flush().await;
                let reply = match self.delete(&ids).await {
                    Ok(count) => {
                        self.send_if(count > 0, STREAM, "xdel");
                        Reply::Integer(count as i64)
                    }
                    Err(error) => engine_error(error),
                };
                let _ = answer.send(reply);
            }
            Change::Destroy => {
                // A stream past its deadline is already gone to the client.
                let expired = self.deadlines.is_due(&self.engine, &self.stream);
                let reply = match self.destroy().await {
                    Ok(existed) => {
                        // Past its deadline: expired on this access, as Redis reports it.
                        if expired {
                            self.expired(existed);
                        } else {
                            self.send_if(existed, GENERIC, "del");
                        }
                        Reply::Integer(i64::from(existed && !expired))
                    }
                    Err(error) => engine_error(error),
                };
                let _ = answer.send(reply);
            }
            Change::Expire { at, condition } => {
                let reply = self
                    .expire(at, condition)
                    .await
                    .unwrap_or_else(engine_error);
                let _ = answer.send(reply);
            }
            Change::Flush => {
                self.flush().await;
                let _ = answer.send(Reply::ok());
            }
            Change::Sweep => {
                let mut reply = Reply::Integer(0);
                if self.deadlines.is_due(&self.engine, &self.stream) {
                    reply = match self.destroy().await {
                        Ok(existed) => {
                            self.expired(existed);
                            Reply::Integer(1)
                        }
                        Err(error) => {
                            tracing::warn!(stream = %self.stream, "deleting a stream key at its deadline failed: {error}");
                            self.deadlines.postpone(&self.stream);
                            engine_error(error)
                        }
                    };
                }
                let _ = answer.send(reply);
            }
            Change::SetId { id, entries_added } => {
                self.checked = false;
                self.flush().await;
                let reply = self.set_id(id, entries_added).await;
                self.send_if(reply.is_ok(), STREAM, "xsetid");
                let _ = answer.send(reply.unwrap_or_else(|r| r));
            }
            Change::Restore(restored) => {
                let reply = self.restore(*restored).await;
                let _ = answer.send(reply);
            }
            Change::DestroyIfUnchanged { end, event } => {
                let _ = answer.send(self.destroy_if_unchanged(end, event).await);
            }
            Change::Reserved(record, trim) => {
                let id = record.headers[0].value.clone();
                self.records.push(record);
                let mut events = self.events(&[(true, STREAM, "xadd")]);
                if let Some(trim) = trim.filter(|trim| !self.within_slack(*trim)) {
                    let removed = self.trim_approximately(trim).await;
                    events.extend(self.events(&[(removed > 0, STREAM, "xtrim")]));
                }
                self.waiting.push(Waiting { answer, id, events });
            }
        }
    }

    /// Deletes the stream with its groups and its deadline, after the XADDs queued before;
    /// whether there was one.
    async fn destroy(&mut self) -> Result<bool, EngineError> {
        self.checked = false;
        self.flush().await;
        self.forget_top();
        let existed = match self.engine.delete_stream(&self.stream).await {
            Ok(()) => true,
            Err(EngineError::StreamNotFound(_)) => false,
            Err(error) => return Err(error),
        };
        self.deadlines.forget(&self.stream);
        Ok(existed)
    }

    /// EXPIRE / PERSIST on the stream key (see [`Change::Expire`]).
    async fn expire(
        &mut self,
        at: Option<i64>,
        condition: ExpireCondition,
    ) -> Result<Reply, EngineError> {
        self.checked = false;
        // The XADDs queued before it may make the stream.
        self.flush().await;
        if bounds(&self.engine, &self.stream)?.is_none()
            || self.deadlines.is_due(&self.engine, &self.stream)
        {
            return Ok(Reply::Integer(0));
        }
        let current = self.deadlines.of(&self.engine, &self.stream);
        if !condition.allows(current, at) {
            return Ok(Reply::Integer(0));
        }
        // A queue's stream is deleted with its queue only: refused now, not at the deadline.
        if at.is_some() {
            self.engine.check_not_a_queue_stream(&self.stream)?;
        }
        match at {
            Some(at) if at <= now_ms() => {
                self.destroy().await?;
                self.send_if(true, GENERIC, "del");
            }
            _ => {
                self.deadlines.store(&self.engine, &self.stream, at).await?;
                let event = if at.is_some() { "expire" } else { "persist" };
                self.send_if(true, GENERIC, event);
            }
        }
        Ok(Reply::Integer(1))
    }

    /// The stream key's events among `wanted` (each with whether it happened), when
    /// keyspace events of the stream's classes are on; made only then.
    fn events(&self, wanted: &[(bool, u32, &'static str)]) -> Vec<Event> {
        if !self.observers.notifications.sends(STREAM_WRITES) {
            return Vec::new();
        }
        wanted
            .iter()
            .filter(|(happened, _, _)| *happened)
            .map(|(_, class, name)| (*class, *name, self.key.clone()))
            .collect()
    }

    /// The stream key was deleted at its deadline (if it `existed`): INFO's `expired_keys`,
    /// its `expired` event, and a change for client-side caches.
    fn expired(&self, existed: bool) {
        if !existed {
            return;
        }
        let observers = &self.observers;
        observers.expired_keys.fetch_add(1, Ordering::Relaxed);
        self.send_if(true, EXPIRED, "expired");
        if observers.tracking.active() {
            let key = std::slice::from_ref(&self.key);
            observers.tracking.invalidate(&observers.clients, 0, key);
        }
    }

    /// Sends the stream key's event `name` now, if it happened and its class is on.
    fn send_if(&self, happened: bool, class: u32, name: &'static str) {
        if happened && self.observers.notifications.sends(class) {
            let event = (class, name, self.key.clone());
            self.observers.notifications.send(&self.engine, vec![event]);
        }
    }

    fn clock(&self) -> std::sync::MutexGuard<'_, Clock> {
        self.clock.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The top is read again before the next ID (an append failed, or the stream went).
    fn forget_top(&mut self) {
        self.clock().top = None;
        self.checked = false;
    }

    /// [`Trim::within_slack`] for this stream, counting every record given an offset or
    /// queued here (more than it holds, if some were deleted).
    fn within_slack(&self, trim: Trim) -> bool {
        if !trim.has_slack() {
            return false;
        }
        let Ok(Some((start, _))) = bounds(&self.engine, &self.stream) else {
            return false;
        };
        let Ok(given) = self.engine.partition_next_offset(&self.stream, 0) else {
            return false;
        };
        trim.within_slack((given + self.records.len() as u64).saturating_sub(start))
    }

    /// Queues one XADD's record and answers its ID as the reply spells it and whether the
    /// XADD made the stream, or the reply instead (nil for NOMKSTREAM on a missing stream).
    async fn add(
        &mut self,
        id: NewId,
        fields: &[(Bytes, Bytes)],
        make_stream: bool,
    ) -> Result<(Bytes, bool), Reply> {
        let exists = self.checked
            || bounds(&self.engine, &self.stream)
                .map_err(engine_error)?
                .is_some();
        let mut made = false;
        if !exists {
            self.flush().await;
            if !make_stream {
                return Err(Reply::Null);
            }
            // A refused XADD makes nothing, as in Redis: its ID (against a new stream's 0-0)
            // and its fields are checked before the stream is made.
            id.resolve(StreamId::MIN, 0).map_err(Reply::error)?;
            to_record(StreamId::MIN, fields).map_err(Reply::error)?;
            made = self.make_stream().await.map_err(engine_error)?;
            self.forget_top();
        }
        let top = self.top().await.map_err(engine_error)?;
        let now_ms = match id {
            NewId::Auto => *self.now_ms.get_or_insert_with(super::now_ms),
            _ => 0,
        };
        let new_id = id.resolve(top.last, now_ms).map_err(Reply::error)?;
        let record = to_record(new_id, fields).map_err(Reply::error)?;
        // The ID header comes first: its bytes are the reply too.
        let text = record.headers[0].value.clone();
        self.records.push(record);
        {
            let mut clock = self.clock();
            clock.top = Some(Top {
                last: new_id,
                end: top.end + 1,
            });
            clock.unenqueued += 1;
        }
        self.checked = true;
        Ok((text, made))
    }

    /// The top, read again when the stream changed under it (another door appended, or
    /// the stream was deleted and made again).
    async fn top(&mut self) -> Result<Top, EngineError> {
        if let (true, Some(top)) = (self.checked, self.clock().top) {
            return Ok(top);
        }
        // Offsets given out, batches still waiting for their fsync included, plus the entries
        // given IDs and not yet enqueued, so only another door's appends make a difference.
        // (No script gives out an ID meanwhile: the request being applied is queued.)
        let given = self.engine.partition_next_offset(&self.stream, 0)?;
        let (known, unenqueued) = {
            let clock = self.clock();
            (clock.top, clock.unenqueued)
        };
        let end = given + unenqueued;
        if let Some(top) = known {
            if top.end == end {
                return Ok(top);
            }
        }
        let mut last = last_id(&self.engine, &self.stream).await?;
        if let Some(top) = known {
            // IDs given out earlier (queued records among them) stay below the next one.
            last = last.max(top.last);
        }
        let top = Top { last, end };
        self.clock().top = Some(top);
        Ok(top)
    }

    /// Appends the queued XADDs with one more (`id`, already queued, whose answer the caller
    /// sends) and waits until they are durable, answering the others; the error reply if the
    /// append failed.
    async fn publish_with(&mut self, id: Bytes, events: Vec<Event>) -> Result<(), Reply> {
        let (answer, reply) = oneshot::channel();
        self.waiting.push(Waiting { answer, id, events });
        self.flush().await;
        match reply.await {
            Ok(Reply::Error(text)) => Err(Reply::Error(text)),
            _ => Ok(()),
        }
    }

    /// Enqueues the queued XADDs and waits until everything enqueued is acknowledged (and
    /// answered): what a change that reads the log needs first.
    async fn flush(&mut self) {
        self.publish().await;
        self.settle().await;
    }

    /// Waits until every batch enqueued is acknowledged and answered.
    async fn settle(&mut self) {
        if let Some(acknowledging) = self.acknowledging.take() {
            // A panic in it left its callers without answers, which they report.
            let _ = acknowledging.await;
        }
        if self.failed.swap(false, Ordering::AcqRel) {
            self.forget_top();
        }
    }

    /// Enqueues the queued XADDs as one publish; a spawned acknowledgement answers them once
    /// they are durable (or the error at once if the publish was refused).
    async fn publish(&mut self) {
        if self.records.is_empty() {
            return;
        }
        let records = std::mem::take(&mut self.records);
        let count = records.len() as u64;
        let waiting = std::mem::take(&mut self.waiting);
        let target = PublishTarget::Stream(self.stream.clone());
        let outcome = self.engine.enqueue_publish(target, records).await;
        self.clock().unenqueued -= count;
        let pending = match outcome {
            Ok(pending) => pending,
            Err(error) => {
                // None of them is in the log: read the top again before the next ID.
                self.forget_top();
                answer(
                    waiting,
                    Err(error),
                    (&self.engine, &self.observers.notifications),
                );
                return;
            }
        };
        let failed = self.failed.clone();
        let (engine, observers) = (self.engine.clone(), self.observers.clone());
        // The previous acknowledgement goes on by itself: its batch is durable no later than
        // this one (one partition, one high watermark), and each session puts its own replies
        // back in order.
        self.acknowledging = Some(tokio::spawn(async move {
            let outcome = pending.durable().await.map(|_| ());
            if outcome.is_err() {
                failed.store(true, Ordering::Release);
            }
            answer(waiting, outcome, (&engine, &observers.notifications));
        }));
    }

    /// An XADD's `MAXLEN ~ n` past its slack: trimmed now from what is durable, with no wait
    /// for the XADDs queued (the one it came with among them) and no fsync of its own
    /// ([`Trimming::Approximately`]). What it could not cut, the newest entries not being
    /// durable yet, is cut when the writer is next idle, if no later XADD gets there first.
    /// Answers how many entries it removed.
    async fn trim_approximately(&mut self, trim: Trim) -> u64 {
        let removed = self.trim_in_passing(trim, Trimming::Approximately).await;
        self.overdue = (!self.within_slack(trim)).then_some(trim);
        removed
    }

    /// The trim an XADD left overdue (a burst came faster than its fsyncs), once everything
    /// queued is durable.
    async fn trim_overdue(&mut self) {
        let Some(trim) = self.overdue.take() else {
            return;
        };
        self.settle().await;
        let removed = self.trim_in_passing(trim, Trimming::Lazily).await;
        self.send_if(removed > 0, STREAM, "xtrim");
    }

    /// A trim nobody waits to hear about: a failure is logged (and counts as 0 removed).
    async fn trim_in_passing(&mut self, trim: Trim, trimming: Trimming) -> u64 {
        self.trim(trim, trimming).await.unwrap_or_else(|error| {
            tracing::warn!(stream = %self.stream, "an approximate trim failed: {error}");
            0
        })
    }

    /// Removes entries from the front; answers how many.
    async fn trim(&mut self, trim: Trim, trimming: Trimming) -> Result<u64, EngineError> {
        let Some((start, end)) = bounds(&self.engine, &self.stream)? else {
            return Ok(0);
        };
        // Approximately: counting the XADDs given an offset or queued here, which the cut
        // (below what is durable) leaves in place.
        let counted_end = match trimming {
            Trimming::Approximately => {
                let given = self.engine.partition_next_offset(&self.stream, 0)?;
                (given + self.records.len() as u64).max(end)
            }
            Trimming::Exactly | Trimming::Lazily => end,
        };
        let keep_from = match trim.by {
            TrimBy::MaxLength(length) => {
                let deleted = self.deleted.of(&self.engine, &self.stream);
                newest_entries_from(start, counted_end, length, &deleted)
            }
            TrimBy::MinimumId(id) => offset_of(&self.engine, &self.stream, id).await?,
        };
        let mut cut = keep_from.max(start);
        if trim.limit > 0 {
            cut = cut.min(start.saturating_add(trim.limit));
        }
        let lazily = trimming != Trimming::Exactly;
        if lazily {
            // Never the last durable entry: that would need its ID kept (below).
            cut = cut.min(end.saturating_sub(1));
        }
        if cut <= start {
            return Ok(0);
        }
        if cut >= end {
            // The last record goes: its ID must outlive it.
            let top = self.top().await?;
            self.store_last_id(top.last).await?;
        }
        if lazily {
            self.engine
                .delete_records_lazily(&self.stream, 0, cut)
                .await?;
        } else {
            self.engine
                .delete_records(&self.stream, 0, Some(cut))
                .await?;
        }
        // Deleted entries trimmed away are forgotten (and counted as removed by neither).
        let deleted = self.deleted.of(&self.engine, &self.stream);
        let removed = cut - start - deleted.range(start..cut).count() as u64;
        if deleted.range(..cut).next().is_some() {
            let kept = deleted.range(cut..).copied().collect();
            self.deleted
                .store(&self.engine, &self.stream, kept, None)
                .await?;
        }
        Ok(removed)
    }

    /// XDEL: marks the entries with these IDs deleted; answers how many were there.
    async fn delete(&mut self, ids: &[StreamId]) -> Result<u64, EngineError> {
        let Some((start, _)) = bounds(&self.engine, &self.stream)? else {
            return Ok(0);
        };
        let found = offsets_of_ids(&self.engine, &self.stream, ids).await?;
        let mut set: std::collections::BTreeSet<u64> = self
            .deleted
            .of(&self.engine, &self.stream)
            .range(start..)
            .copied()
            .collect();
        let mut max_deleted = max_deleted(&self.engine, &self.stream);
        let mut count = 0;
        for (id, offset) in found {
            if set.insert(offset) {
                count += 1;
                max_deleted = max_deleted.max(id);
            }
        }
        if count == 0 {
            return Ok(0);
        }
        if set.len() > DELETED_MAX {
            return Err(EngineError::LimitExceeded(format!(
                "a stream keeps at most {DELETED_MAX} deleted entries; trim it to free them"
            )));
        }
        self.deleted
            .store(&self.engine, &self.stream, set, Some(max_deleted))
            .await?;
        Ok(count)
    }

    async fn store_last_id(&self, id: StreamId) -> Result<(), EngineError> {
        let mut settings = self.engine.stream_door_settings(&self.stream)?;
        settings.insert(LAST_ID_SETTING.to_string(), id.to_string());
        self.engine
            .set_stream_door_settings(&self.stream, settings)
            .await
    }
}
