//! CLIENT PAUSE / UNPAUSE: for a while, the listener's connections hold every command (ALL)
//! or only those that write (WRITE: commands flagged `write` or `may_replicate`, and an EXEC
//! with one queued), as redis-server does for a failover or a maintenance window. A held
//! command waits before it runs, after the replies decided before it are written; it runs
//! when the pause ends (its deadline, or CLIENT UNPAUSE), in the order it came on its
//! connection. A later CLIENT PAUSE only extends a pause and widens WRITE to ALL, never
//! narrows it (Redis's rule).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use tokio::sync::watch;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Paused {
    /// `None`: not paused.
    until: Option<Instant>,
    /// ALL (every command), else WRITE.
    all: bool,
}

pub(crate) struct Pause {
    state: watch::Sender<Paused>,
    /// A pause was asked for since the last UNPAUSE: every command looks at this one flag
    /// before the state's lock and the clock.
    asked: AtomicBool,
}

impl Default for Pause {
    fn default() -> Pause {
        Pause {
            state: watch::Sender::new(Paused::default()),
            asked: AtomicBool::new(false),
        }
    }
}

impl Pause {
    /// CLIENT PAUSE: holds commands (every one with `all`, else those that write) until
    /// `until`, or longer if a pause already runs longer.
    pub(crate) fn pause(&self, until: Instant, all: bool) {
        self.asked.store(true, Ordering::Release);
        self.state.send_modify(|paused| {
            let running = paused.until.filter(|end| *end > Instant::now());
            paused.all = all || running.is_some() && paused.all;
            paused.until = Some(running.map_or(until, |end| end.max(until)));
        });
    }

    /// CLIENT UNPAUSE.
    pub(crate) fn unpause(&self) {
        self.asked.store(false, Ordering::Release);
        self.state.send_replace(Paused::default());
    }

    /// Whether a command that writes (`writes`) or not is held now.
    pub(crate) fn holds(&self, writes: bool) -> bool {
        let paused = *self.state.borrow();
        paused
            .until
            .is_some_and(|until| until > Instant::now() && (paused.all || writes))
    }

    /// Whether any pause runs now (one look, before finding what the command is).
    pub(crate) fn active(&self) -> bool {
        self.asked.load(Ordering::Acquire)
            && self
                .state
                .borrow()
                .until
                .is_some_and(|until| until > Instant::now())
    }

    /// Waits until such a command is no longer held.
    pub(crate) async fn released(&self, writes: bool) {
        let mut changes = self.state.subscribe();
        loop {
            let paused = *changes.borrow_and_update();
            let Some(until) = paused.until.filter(|_| paused.all || writes) else {
                return;
            };
            if until <= Instant::now() {
                return;
            }
            tokio::select! {
                () = tokio::time::sleep_until(until.into()) => {}
                changed = changes.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn writes_or_all_are_held_until_the_deadline_or_unpause() {
        let pause = Pause::default();
        assert!(!pause.active() && !pause.holds(true));
        let soon = Instant::now() + Duration::from_millis(80);
        pause.pause(soon, false);
        assert!(pause.holds(true) && !pause.holds(false));
        // A shorter pause does not shorten it; ALL widens it.
        pause.pause(Instant::now() + Duration::from_millis(10), true);
        assert!(pause.holds(false));
        let started = Instant::now();
        pause.released(false).await;
        assert!(started.elapsed() >= Duration::from_millis(50));
        assert!(!pause.holds(true));

        pause.pause(Instant::now() + Duration::from_secs(60), true);
        let pause = std::sync::Arc::new(pause);
        let waiter = pause.clone();
        let waiting = tokio::spawn(async move { waiter.released(true).await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished());
        pause.unpause();
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("released by UNPAUSE")
            .unwrap();
    }
}
