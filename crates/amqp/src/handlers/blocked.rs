//! connection.blocked, RabbitMQ's way of saying "a resource alarm is on: stop publishing".
//! RabbitMQ raises it for low memory or disk; the engine's equivalent is its health: a data
//! folder (or a partition) too full to take writes (`HealthProblem::is_disk_full`) or a
//! state store that failed (nothing could be committed). One watcher per listener asks the engine every
//! [`ALARM_POLL`] and shares the answer.
//!
//! As in RabbitMQ, only a connection that has published is blocked: it is sent
//! connection.blocked (when its client announced the `connection.blocked` capability), and
//! its socket is no longer read — TCP holds the publisher back — until the alarm clears,
//! when it is sent connection.unblocked and reading resumes. A connection that only consumes
//! goes on. While blocked, a silent client is not taken for dead (its heartbeats are among
//! the bytes we do not read).

use std::sync::Arc;
use std::time::Duration;

use amq_protocol::protocol::connection::{self, AMQPMethod};
use amq_protocol::protocol::AMQPClass;
use omnibus_engine::health::HealthProblemKind;
use omnibus_engine::Engine;
use tokio::sync::watch;

use super::Connection;

/// How often the listener's watcher asks the engine for its health.
pub(crate) const ALARM_POLL: Duration = Duration::from_millis(250);

/// The current resource alarm, if any: the reason sent in connection.blocked.
pub(crate) type Alarm = watch::Receiver<Option<String>>;

/// Starts the watcher; it ends when every receiver is gone.
pub(crate) fn watch_alarm(engine: Arc<Engine>) -> Alarm {
    let (sender, receiver) = watch::channel(None);
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(ALARM_POLL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                () = sender.closed() => return,
            }
            let alarm = alarm_reason(&engine);
            sender.send_if_modified(|current| {
                let changed = *current != alarm;
                *current = alarm;
                changed
            });
        }
    });
    receiver
}

/// Why publishers should stop, from the engine's health.
fn alarm_reason(engine: &Engine) -> Option<String> {
    let health = engine.health();
    health.problems.iter().find_map(|problem| {
        if problem.is_disk_full() {
            Some(format!("low on disk: {}", problem.reason))
        } else if problem.kind == HealthProblemKind::StateStoreFailed {
            Some(format!("state store unavailable: {}", problem.reason))
        } else {
            // A partition poisoned by an I/O error refuses its own writes; the others go on.
            None
        }
    })
}

/// Whether this connection's input is held back now.
pub(crate) fn holds_reads(connection: &Connection, alarm: &Alarm) -> bool {
    connection.published && alarm.borrow().is_some()
}

/// Tells the client about a change of the alarm, once per change, if it asked to be told.
pub(crate) fn tell(connection: &mut Connection, alarm: &Alarm) {
    let reason = alarm.borrow().clone();
    let blocked = connection.published && reason.is_some();
    if blocked == connection.blocked_sent {
        return;
    }
    connection.blocked_sent = blocked;
    if !connection.wants_blocked {
        return;
    }
    let method = match reason {
        Some(reason) if blocked => AMQPMethod::Blocked(connection::Blocked {
            reason: reason.chars().take(250).collect::<String>().into(),
        }),
        _ => AMQPMethod::Unblocked(connection::Unblocked {}),
    };
    connection.send(0, AMQPClass::Connection(method));
}
