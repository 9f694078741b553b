//! `PING` and `PONG`.
//!
//! Protocol: a client PING is answered with PONG; clients send one right after CONNECT and
//! wait for it to know the connection is up, so nothing may come between (nothing does: the
//! PONG is appended to the write buffer at once, and a new connection has no deliveries yet).
//! A PING is also how a client flushes: as from nats-server, the messages its earlier
//! publishes delivered to its own subscriptions come before the PONG, so they are moved from
//! the mailbox into the write buffer first. A PONG answers the server's own PINGs (the session
//! sends one every `ping_interval` and closes the connection as stale when
//! `pings_outstanding_max` of them are unanswered).

use super::Connection;
use crate::codec::encode;
use crate::error::NatsError;

pub(crate) fn ping(connection: &mut Connection) -> Result<(), NatsError> {
    connection.pump_mailbox(&mut Vec::new())?;
    encode::pong(&mut connection.out);
    Ok(())
}

pub(crate) fn pong(connection: &mut Connection) {
    connection.pings_outstanding = 0;
}
