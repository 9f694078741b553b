//! What a session hands a stream's writer (`writer.rs`): the change, and where its answer
//! goes.

use bytes::Bytes;
use omnibus_engine::keys::ExpireCondition;
use omnibus_engine::PublishRecord;
use tokio::sync::oneshot;

use super::id::{NewId, StreamId};
use super::trim::Trim;
use crate::codec::Reply;

/// One change to a stream, in the order sessions hand them over.
pub(crate) enum Change {
    Add {
        id: NewId,
        fields: Vec<(Bytes, Bytes)>,
        make_stream: bool,
        trim: Option<Trim>,
    },
    Trim(Trim),
    /// XSETID: the last ID, and the ENTRIESADDED given (checked against the length).
    SetId {
        id: StreamId,
        entries_added: Option<u64>,
    },
    Delete(Vec<StreamId>),
    /// DEL / UNLINK of the stream key: the stream goes, with its groups; answers 1, or 0 when
    /// there was no stream. In the writer, so the XADDs queued before it land first.
    Destroy,
    /// EXPIRE and its kin (`Some` deadline, in ms since the epoch) or PERSIST (`None`) on the
    /// stream key: answers 1 when the deadline changed, 0 when the condition refused it or
    /// there is no stream. A deadline already past deletes the stream, as Redis does.
    Expire {
        at: Option<i64>,
        condition: ExpireCondition,
    },
    /// From the sweeper (`expiry.rs`): deletes the stream if its deadline has passed.
    Sweep,
    /// An XADD from a script, its ID given out and its record made (`clock.rs`), with its
    /// `MAXLEN ~` trim if it has one (the others go through [`Change::Add`]).
    Reserved(PublishRecord, Option<Trim>),
    /// RESTORE of the stream key (`writer/restore.rs`): the stream made with the payload's
    /// entries and IDs; answers OK, or BUSYKEY when a stream is there.
    Restore(Box<Restored>),
    /// MIGRATE's delete of a stream key the target took: as [`Change::Destroy`], but only
    /// if the stream's log still ends at `end` (nothing appended since its payload was
    /// built); answers 1 when deleted, 0 when kept. `event`: the keyspace event it sends
    /// (`del` for MIGRATE; none, `""`, for RENAME, whose events the session sends).
    DestroyIfUnchanged {
        end: u64,
        event: &'static str,
    },
    /// From a held run (EXEC, a script) about to read the stream: answered OK once every
    /// change queued before it is in the log and durable ([`Writers::flush`]).
    Flush,
}

/// What RESTORE hands the writer of a stream key: the payload's entries (their IDs rising),
/// the last ID given out and the largest one XDEL removed.
pub(crate) struct Restored {
    pub(crate) entries: Vec<crate::codec::rdb::StreamEntry>,
    pub(crate) last_id: StreamId,
    pub(crate) max_deleted_id: StreamId,
}

/// A change and its answer.
pub(super) struct Request {
    pub(super) change: Change,
    pub(super) answer: oneshot::Sender<Reply>,
    /// For an XADD from a script: answered with the entry's ID as soon as it is given out
    /// (or with the refusal instead of `answer`), while `answer` still waits for the fsync.
    pub(super) assigned: Option<oneshot::Sender<Reply>>,
}
