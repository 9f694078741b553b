//! Round-robin among a queue's consumers, as RabbitMQ hands out messages: each message goes
//! to the next consumer in line that can take one (has prefetch credit); one that cannot is
//! skipped until it can. So two workers of the RabbitMQ tutorial
//! get messages 1, 3, 5 and 2, 4 however the publishes trickle in, instead of whichever
//! consumer task the runtime happens to wake first.
//!
//! Each consumer task keeps its own loop (`consumer.rs`); a [`Seat`] in its queue's
//! [`Rotation`] says whose turn it is, in RabbitMQ's order (`rabbit_queue_consumers`): the
//! seats form a line; the turn is the first *eligible* seat (its consumer has prefetch credit);
//! a seat that leases goes to the back of the line. A seat without credit keeps its place
//! until the turn passes it over for a delivery; then it leaves the line, and rejoins at the
//! back when it has credit again. So a consumer that nacks a message it holds, still at the
//! front, gets it again, as in RabbitMQ; one freed by an ack queues up behind the others.
//! A consumer alone on its queue skips all this and leases in batches.
//!
//! Our choice, for throughput: when more messages are ready than eligible consumers, the
//! holder leases `ready / eligible` of them at once (at most its credit): a backlog is shared
//! out evenly in runs instead of one message per turn; when messages trickle in, it is one
//! each, exactly RabbitMQ's order.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use super::consumer::Stop;

/// The rotations of a door's queues, by engine name and incarnation.
pub(crate) type Rotations = Mutex<HashMap<(String, u64), Arc<Rotation>>>;

#[derive(Default)]
pub(crate) struct Rotation {
    state: Mutex<State>,
    changed: Notify,
}

#[derive(Default)]
struct State {
    /// The line: the turn goes to the first eligible seat.
    seats: Vec<SeatState>,
}

struct SeatState {
    id: u64,
    eligible: bool,
    /// Passed over for a delivery while not eligible: back of the line once eligible again.
    passed_over: bool,
}

/// A consumer's place in its queue's rotation; leaves it when dropped.
pub(crate) struct Seat {
    rotation: Arc<Rotation>,
    rotations: Arc<Rotations>,
    key: (String, u64),
    id: u64,
}

/// Takes a seat at the end of the queue's rotation (made on first use).
pub(crate) fn join(rotations: &Arc<Rotations>, queue: &str, incarnation: u64) -> Seat {
    static IDS: AtomicU64 = AtomicU64::new(1);
    let id = IDS.fetch_add(1, Ordering::Relaxed);
    let key = (queue.to_string(), incarnation);
    let rotation = rotations
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry(key.clone())
        .or_default()
        .clone();
    rotation.lock().seats.push(SeatState {
        id,
        eligible: true,
        passed_over: false,
    });
    rotation.changed.notify_waiters();
    Seat {
        rotation,
        rotations: rotations.clone(),
        key,
        id,
    }
}

impl Rotation {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl State {
    fn position(&self, id: u64) -> Option<usize> {
        self.seats.iter().position(|seat| seat.id == id)
    }

    /// The seat whose turn it is: the first eligible one in the line.
    fn holder(&self) -> Option<u64> {
        self.seats
            .iter()
            .find(|seat| seat.eligible)
            .map(|seat| seat.id)
    }
}

impl Seat {
    /// Whether it is the only consumer of its queue (then it takes no turns).
    pub fn alone(&self) -> bool {
        self.rotation.lock().seats.len() <= 1
    }

    /// Eligible consumers, this one included when it is.
    pub fn eligible(&self) -> usize {
        self.rotation
            .lock()
            .seats
            .iter()
            .filter(|seat| seat.eligible)
            .count()
    }

    pub fn set_eligible(&self, eligible: bool) {
        let mut state = self.rotation.lock();
        let Some(position) = state.position(self.id) else {
            return;
        };
        if state.seats[position].eligible == eligible {
            return;
        }
        state.seats[position].eligible = eligible;
        if eligible && state.seats[position].passed_over {
            let mut seat = state.seats.remove(position);
            seat.passed_over = false;
            state.seats.push(seat);
        }
        drop(state);
        self.rotation.changed.notify_waiters();
    }

    /// Waits for this seat's turn; `false` when the consumer was stopped first.
    pub async fn turn(&self, stop: &Stop) -> bool {
        loop {
            let changed = self.rotation.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if stop.is_stopped() {
                return false;
            }
            if self.rotation.lock().holder() == Some(self.id) {
                return true;
            }
            tokio::select! {
                biased;
                () = stop.stopped() => return false,
                () = changed => {}
            }
        }
    }

    /// It leased messages on its turn: to the back of the line; the seats without credit
    /// it was served before are passed over.
    pub fn served(&self) {
        let mut state = self.rotation.lock();
        if let Some(position) = state.position(self.id) {
            for seat in &mut state.seats[..position] {
                if !seat.eligible {
                    seat.passed_over = true;
                }
            }
            let seat = state.seats.remove(position);
            state.seats.push(seat);
        }
        drop(state);
        self.rotation.changed.notify_waiters();
    }
}

impl Seat {
    /// It could lease nothing on its turn although messages are ready: to the back of the
    /// line, passing over no one.
    pub fn pass(&self) {
        let mut state = self.rotation.lock();
        if let Some(position) = state.position(self.id) {
            let seat = state.seats.remove(position);
            state.seats.push(seat);
        }
        drop(state);
        self.rotation.changed.notify_waiters();
    }
}

impl Drop for Seat {
    fn drop(&mut self) {
        let mut rotations = self.rotations.lock().unwrap_or_else(|p| p.into_inner());
        let mut state = self.rotation.lock();
        if let Some(position) = state.position(self.id) {
            state.seats.remove(position);
        }
        if state.seats.is_empty() {
            rotations.remove(&self.key);
        }
        drop(state);
        drop(rotations);
        self.rotation.changed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn turns_go_round_and_a_consumer_passed_over_rejoins_at_the_back() {
        let rotations: Arc<Rotations> = Arc::default();
        let (a, b, c) = (
            join(&rotations, "q", 1),
            join(&rotations, "q", 1),
            join(&rotations, "q", 1),
        );
        let stop = Stop::default();
        assert!(!a.alone());
        assert!(a.turn(&stop).await);
        a.served(); // line: b c a
        assert!(b.turn(&stop).await);
        b.set_eligible(false);
        // b cannot take one: c's turn; b is passed over.
        assert!(c.turn(&stop).await);
        c.served(); // line: b(passed over) a c
        assert!(a.turn(&stop).await);
        b.set_eligible(true); // back of the line: a c b
        assert!(a.turn(&stop).await);
        a.served(); // c b a
        assert!(c.turn(&stop).await);
        assert_eq!(a.eligible(), 3);
        // b waits while it is c's turn, and goes once c has leased.
        let waiting = tokio::time::timeout(Duration::from_millis(30), b.turn(&stop)).await;
        assert!(waiting.is_err(), "not b's turn yet");
        c.served(); // b a c
        assert!(b.turn(&stop).await);
        // Without credit but never passed over, a seat keeps its place.
        b.set_eligible(false);
        b.set_eligible(true);
        assert!(b.turn(&stop).await);
        // One that could lease nothing hands the turn on.
        b.pass(); // a c b
        assert!(a.turn(&stop).await);
        drop(b);
        assert!(a.turn(&stop).await);
        drop((a, c));
        assert!(
            rotations.lock().unwrap().is_empty(),
            "the last seat removes the rotation"
        );
    }

    #[tokio::test]
    async fn a_stopped_consumer_leaves_its_wait_for_a_turn() {
        let rotations: Arc<Rotations> = Arc::default();
        let (a, b) = (join(&rotations, "q", 1), join(&rotations, "q", 1));
        let stop = Arc::new(Stop::default());
        let waiter = {
            let stop = stop.clone();
            tokio::spawn(async move { b.turn(&stop).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        stop.stop();
        assert!(!waiter.await.unwrap());
        drop(a);
    }
}
