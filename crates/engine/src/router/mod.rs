//! Subject routing, protocol-neutral: which stream captures a subject (`index.rs`, a trie over
//! tokens with `*` and `>` rather than a scan of every stream), and live subscriptions that
//! receive messages as they are published (`live.rs`, with the match cache of `cache.rs` and
//! the bounded subscriber mailboxes of `mailbox.rs`; `batch.rs` routes a run of messages in
//! one call). `capture.rs` joins the two: a live
//! publish to a captured subject is appended to its stream first. The NATS door routes through
//! this, and the AMQP door will; nothing here knows either protocol.

mod batch;
mod cache;
mod capture;
mod capture_batch;
mod index;
mod live;
mod mailbox;
#[cfg(test)]
mod strategies;

pub use cache::MATCH_CACHE_ENTRIES_MAX;
pub(crate) use capture::{deliver_stored, StoredCopy};
pub use capture::{CaptureCache, LivePublish, PendingCapture};
pub(crate) use capture_batch::copy_error;
pub use capture_batch::CapturedBatch;
pub use index::SubjectIndex;
pub use live::{
    Interest, LiveRouter, Routed, SubscriptionHandle, LIVE_SUBSCRIPTIONS_MAX, QUEUE_GROUP_BYTES_MAX,
};
pub use mailbox::{Delivery, LiveMessage, LiveStatus, Mailbox, MailboxLimits};
