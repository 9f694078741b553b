//! `PING` and `PONG`.
//!
//! Protocol: a client PING is answered with PONG; clients send one right after CONNECT and
//! wait for it to know the connection is up, so nothing may come between (nothing does: the
//! PONG is appended to the write buffer at once, behind only what was already there, and a
//! new connection has no deliveries yet). A PONG answers the server's own PINGs (the session
//! sends one every `ping_interval` and closes the connection as stale when
//! `pings_outstanding_max` of them are unanswered).

use super::Connection;
use crate::codec::encode;

pub(crate) fn ping(connection: &mut Connection) {
    encode::pong(&mut connection.out);
}

pub(crate) fn pong(connection: &mut Connection) {
    connection.pings_outstanding = 0;
}
