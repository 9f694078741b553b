//! `UNSUB <sid> [max]`.
//!
//! Protocol: without `max` the subscription ends now; with it, after `max` messages in all
//! (counting those already delivered), so a max already reached ends it now. An unknown sid is
//! ignored (the subscription may have ended by its max already). Clients use `UNSUB <sid> 1`
//! for old-style requests with one inbox each.
//!
//! Messages routed to the connection before the UNSUB (its own PUB just before, say) are
//! written first, as nats-server has them in its outbound buffer already: the mailbox is
//! drained into the write buffer before the subscription changes.

use super::Connection;
use crate::error::NatsError;

pub(crate) fn handle(
    connection: &mut Connection,
    sid: &str,
    max: Option<u64>,
) -> Result<(), NatsError> {
    if connection.subscriptions.by_sid_mut(sid).is_some() {
        connection.drain_mailbox()?;
    }
    let ends_now = match (connection.subscriptions.by_sid_mut(sid), max) {
        (None, _) => false,
        (Some(_), None) => true,
        (Some(entry), Some(max)) => {
            entry.max = Some(max);
            entry.delivered >= max
        }
    };
    if ends_now {
        connection.subscriptions.remove_sid(sid);
    }
    connection.acknowledge();
    Ok(())
}
