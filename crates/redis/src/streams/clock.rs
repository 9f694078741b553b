//! A stream's ID clock, shared by its writer task (`writer.rs`) and the scripts that XADD to
//! it: the last ID given out, and what it takes for a script to give one out itself.
//!
//! A script holds the keyspace while it runs, so an XADD in it that waited for the writer
//! task (a hop to another thread and back, ~45 µs here) would hold every other client for
//! that long. When nothing is queued ahead of it and the clock is known to be current, the
//! script gives the entry its ID on its own thread and queues the entry, ID and record
//! made, for the writer to append in its turn ([`Writers::reserve`]). Entries keep their
//! order: the clock is locked while a request is put in the writer's queue, so queue order is
//! the order IDs are given out in.

use bytes::Bytes;
use tokio::sync::oneshot;

use super::entry::to_record;
use super::id::{NewId, StreamId};
use super::read::bounds;
use super::trim::Trim;
use super::writer::{Change, Request};
use super::writers::Writers;
use crate::codec::Reply;

/// The last ID given out and the offset the next entry will have (the engine's next offset
/// plus every entry given an ID and not yet enqueued).
#[derive(Debug, Clone, Copy)]
pub(super) struct Top {
    pub(super) last: StreamId,
    pub(super) end: u64,
}

#[derive(Debug, Default)]
pub(super) struct Clock {
    /// `None`: unknown, the writer reads it again.
    pub(super) top: Option<Top>,
    /// Entries given an ID (by the writer or a script) and not yet enqueued in the engine.
    pub(super) unenqueued: u64,
    /// Requests in the writer's queue or being applied, bar the entries scripts queued with
    /// their IDs: a script gives out an ID only when this is 0 (they come before it).
    pub(super) queued: u64,
    /// `queued` summed over every stream's writer ([`Writers::has_queued`]'s fast answer).
    pub(super) all_queued: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

/// An XADD a script made with its ID given out at once: the ID as the reply spells it, and
/// the outcome once it is durable.
pub(crate) struct Reserved {
    pub(crate) id: Bytes,
    pub(crate) durable: oneshot::Receiver<Reply>,
}

impl Writers {
    /// Gives an XADD from a script its ID now and queues its entry, when that can be done
    /// without the writer: the stream exists and has a writer, nothing is queued for it,
    /// the clock is current (no other door appended since the writer last looked), and its
    /// trim, if any, is an approximate `MAXLEN` (which the writer does without waiting for
    /// the entries queued, this one among them: `Trimming::Approximately`). `None`: hand the
    /// XADD to the writer instead. `Some(Err)`: the XADD's refusal (an ID too small).
    pub(crate) fn reserve(
        &self,
        stream: &str,
        id: NewId,
        fields: &[(Bytes, Bytes)],
        trim: Option<Trim>,
    ) -> Option<Result<Reserved, Reply>> {
        if trim.is_some_and(|trim| !trim.has_slack()) {
            return None;
        }
        // Past its deadline, the writer deletes the stream first.
        if self.deadlines().is_due(self.engine(), stream) {
            return None;
        }
        // The stream exists (a missing one is made by the writer).
        bounds(self.engine(), stream).ok()??;
        let senders = self.handles();
        let handle = senders.get(stream)?;
        let mut clock = handle.clock.lock().unwrap_or_else(|p| p.into_inner());
        let top = clock.top.filter(|_| clock.queued == 0)?;
        let given = self.engine().partition_next_offset(stream, 0).ok()?;
        if top.end != given + clock.unenqueued {
            return None;
        }
        let now_ms = match id {
            NewId::Auto => super::now_ms(),
            _ => 0,
        };
        let new_id = match id.resolve(top.last, now_ms) {
            Ok(new_id) => new_id,
            Err(text) => return Some(Err(Reply::error(text))),
        };
        let record = match to_record(new_id, fields) {
            Ok(record) => record,
            Err(text) => return Some(Err(Reply::error(text))),
        };
        let text = record.headers[0].value.clone();
        let (answer, durable) = oneshot::channel();
        let request = Request {
            change: Change::Reserved(record, trim),
            answer,
            assigned: None,
        };
        // A writer that ended (a panic) is started again by the next hand-over.
        handle.sender.send(request).ok()?;
        clock.top = Some(Top {
            last: new_id,
            end: top.end + 1,
        });
        clock.unenqueued += 1;
        Some(Ok(Reserved { id: text, durable }))
    }

    /// Whether an XTRIM may answer 0 at once, without the writer: [`Trim::within_slack`]
    /// holds for the stream, counting the entries given IDs and not yet enqueued, and nothing
    /// is queued for its writer. What job-queue scripts run on every job (BullMQ trims its events stream).
    pub(crate) fn trim_not_due(&self, stream: &str, trim: Trim) -> bool {
        if !trim.has_slack() || self.deadlines().is_due(self.engine(), stream) {
            return false;
        }
        let Ok(Some((start, _))) = bounds(self.engine(), stream) else {
            return false;
        };
        let senders = self.handles();
        let Some(handle) = senders.get(stream) else {
            return false;
        };
        let clock = handle.clock.lock().unwrap_or_else(|p| p.into_inner());
        if clock.queued > 0 {
            return false;
        }
        let Ok(given) = self.engine().partition_next_offset(stream, 0) else {
            return false;
        };
        trim.within_slack((given + clock.unenqueued).saturating_sub(start))
    }
}
