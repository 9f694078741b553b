//! `UNSUB <sid> [max]`.
//!
//! Protocol: without `max` the subscription ends now; with it, after `max` messages in all
//! (counting those already delivered), so a max already reached ends it now. An unknown sid is
//! ignored (the subscription may have ended by its max already). Clients use `UNSUB <sid> 1`
//! for old-style requests with one inbox each.

use super::Connection;

pub(crate) fn handle(connection: &mut Connection, sid: &str, max: Option<u64>) {
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
}
