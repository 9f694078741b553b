//! `SUB <subject> [queue group] <sid>`.
//!
//! Protocol: the subject may hold wildcards (`*` one token, `>` the rest, last); with a queue
//! group each message goes to one member of the group. Errors keep the connection open, as
//! nats-server does: `-ERR 'Invalid Subject'`, `-ERR 'Invalid Queue Group'` (ours: nats-server
//! has no such check) and `-ERR 'Maximum Subscriptions Exceeded'` past `subscriptions_max`. A
//! second SUB with a sid already in use is ignored, as nats-server ignores it.
//!
//! Our choices: every subscription of the connection delivers into the connection's one engine
//! mailbox, tagged with a token the connection maps back to the sid.

use omnibus_engine::EngineError;

use super::Connection;

pub(crate) fn handle(
    connection: &mut Connection,
    subject: String,
    queue_group: Option<String>,
    sid: String,
) {
    if connection.subscriptions.contains_sid(&sid) {
        connection.acknowledge();
        return;
    }
    if connection.subscriptions.len() >= connection.shared.config.subscriptions_max {
        connection.refuse("Maximum Subscriptions Exceeded");
        return;
    }
    let token = connection.subscriptions.next_token();
    let router = connection.shared.engine.live_router().clone();
    match router.subscribe(&connection.mailbox, &subject, queue_group.as_deref(), token) {
        Ok(handle) => {
            connection.subscriptions.insert(token, sid, subject, handle);
            connection.acknowledge();
        }
        Err(EngineError::InvalidSubject(_)) => connection.refuse("Invalid Subject"),
        Err(EngineError::InvalidName(_)) => connection.refuse("Invalid Queue Group"),
        Err(EngineError::LimitExceeded(_)) => connection.refuse("Maximum Subscriptions Exceeded"),
        Err(error) => connection.refuse(&error.to_string()),
    }
}
