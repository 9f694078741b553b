//! The group coordinator through its public API, as a Kafka consumer would observe it:
//! join, sync, heartbeat, leave, session expiry, commits, describe, list and delete.

mod admin;
mod membership;
mod support;
