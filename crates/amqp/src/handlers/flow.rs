//! Prefetch, both meanings of basic.qos's `global` (RabbitMQ's): `global=false` bounds each
//! consumer started after it; `global=true` bounds all the channel's consumers together.
//! A consumer task takes credit here before it asks the engine for messages, and the session
//! gives it back when a delivery is settled (ack, nack, reject) or turns out unused.
//!
//! Prefetch 0 means no limit in AMQP; the channel is still bounded by
//! `unacked_per_channel_max`, so a consumer that never acks cannot pull a whole queue into
//! the broker's memory.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use tokio::sync::Notify;

#[derive(Debug)]
pub(crate) struct Flow {
    state: Mutex<FlowState>,
    changed: Notify,
}

#[derive(Debug)]
struct FlowState {
    /// Set by `global=true`; 0 is no limit.
    channel_prefetch: u32,
    channel_in_flight: u32,
    unacked_max: u32,
    consumers: HashMap<String, Credit>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Credit {
    prefetch: u32,
    in_flight: u32,
}

fn room(limit: u32, used: u32) -> u32 {
    if limit == 0 {
        u32::MAX
    } else {
        limit.saturating_sub(used)
    }
}

impl Flow {
    pub fn new(unacked_max: u32) -> Self {
        Flow {
            state: Mutex::new(FlowState {
                channel_prefetch: 0,
                channel_in_flight: 0,
                unacked_max: unacked_max.max(1),
                consumers: HashMap::new(),
            }),
            changed: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FlowState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn set_channel_prefetch(&self, prefetch: u16) {
        self.lock().channel_prefetch = u32::from(prefetch);
        self.changed.notify_waiters();
    }

    pub fn add_consumer(&self, tag: &str, prefetch: u16) {
        self.lock().consumers.insert(
            tag.to_string(),
            Credit {
                prefetch: u32::from(prefetch),
                in_flight: 0,
            },
        );
    }

    pub fn remove_consumer(&self, tag: &str) {
        self.lock().consumers.remove(tag);
        self.changed.notify_waiters();
    }

    /// Takes up to `want` credits for `tag` now; 0 when there is no room.
    pub fn try_take(&self, tag: &str, want: u32) -> u32 {
        let mut state = self.lock();
        let channel_room = room(state.channel_prefetch, state.channel_in_flight)
            .min(room(state.unacked_max, state.channel_in_flight));
        let Some(credit) = state.consumers.get(tag).copied() else {
            return 0;
        };
        let taken = want
            .min(channel_room)
            .min(room(credit.prefetch, credit.in_flight));
        if taken > 0 {
            state.channel_in_flight += taken;
            if let Some(credit) = state.consumers.get_mut(tag) {
                credit.in_flight += taken;
            }
        }
        taken
    }

    /// Waits for credit (at most `want`) or for `cancelled`; `None` when cancelled.
    pub async fn take(&self, tag: &str, want: u32, cancelled: &AtomicBool) -> Option<u32> {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if cancelled.load(Ordering::Acquire) {
                return None;
            }
            let taken = self.try_take(tag, want);
            if taken > 0 {
                return Some(taken);
            }
            changed.await;
        }
    }

    /// Gives `count` credits of `tag` back (settled, or never used). A consumer already
    /// removed still frees the channel's share.
    pub fn give_back(&self, tag: &str, count: u32) {
        if count == 0 {
            return;
        }
        self.give_back_quietly(tag, count);
        self.changed.notify_waiters();
    }

    /// [`Flow::give_back`] without waking the consumers that wait for credit: the caller
    /// calls [`Flow::wake`] once for many (see `handlers::wake_consumers`).
    pub fn give_back_quietly(&self, tag: &str, count: u32) {
        let mut state = self.lock();
        state.channel_in_flight = state.channel_in_flight.saturating_sub(count);
        if let Some(credit) = state.consumers.get_mut(tag) {
            credit.in_flight = credit.in_flight.saturating_sub(count);
        }
    }

    /// Wakes the consumers waiting for credit.
    pub fn wake(&self) {
        self.changed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_consumer_and_per_channel_prefetch_both_bound_credit() {
        let flow = Flow::new(100);
        flow.add_consumer("a", 2);
        flow.add_consumer("b", 0);
        assert_eq!(flow.try_take("a", 10), 2);
        assert_eq!(flow.try_take("a", 10), 0);
        flow.give_back("a", 1);
        assert_eq!(flow.try_take("a", 10), 1);
        flow.set_channel_prefetch(5);
        // The channel holds 2 already (a's), so b gets 3.
        assert_eq!(flow.try_take("b", 10), 3);
        assert_eq!(flow.try_take("b", 10), 0);
        flow.remove_consumer("a");
        flow.give_back("a", 2);
        assert_eq!(flow.try_take("b", 10), 2);
    }

    #[tokio::test]
    async fn credit_given_back_quietly_is_taken_at_once_and_wakes_a_waiter_only_when_told() {
        let flow = std::sync::Arc::new(Flow::new(100));
        flow.add_consumer("a", 1);
        assert_eq!(flow.try_take("a", 10), 1);
        let waiter = {
            let flow = flow.clone();
            tokio::spawn(async move {
                let cancelled = AtomicBool::new(false);
                flow.take("a", 10, &cancelled).await
            })
        };
        // The waiter is parked on the flow, with no credit to take.
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        flow.give_back_quietly("a", 1);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!waiter.is_finished(), "not woken before `wake`");
        flow.wake();
        let taken = tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .expect("woken")
            .unwrap();
        assert_eq!(taken, Some(1));
        assert_eq!(flow.try_take("a", 10), 0);
    }

    #[test]
    fn prefetch_zero_is_still_bounded_by_the_channel_maximum() {
        let flow = Flow::new(3);
        flow.add_consumer("a", 0);
        assert_eq!(flow.try_take("a", 10), 3);
        assert_eq!(flow.try_take("a", 10), 0);
    }
}
