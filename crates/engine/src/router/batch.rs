//! Routing many messages in one call: a door that has a run of messages to hand over at once
//! (a NATS connection's JetStream publishes stored together, and their PubAcks) routes them
//! here rather than one [`LiveRouter::publish`] each.
//!
//! What a call saves over a loop of single publishes: one match-cache lookup per run of
//! messages with the same subject (not one per message), one index read lock for a run of
//! answers to unique inboxes, reused buffers for the matches, and one lock and at most one
//! wake-up per mailbox for all the deliveries it gets, instead of one each. What it keeps:
//! every message reaches exactly the subscriptions a single publish would reach, and each
//! mailbox receives its deliveries in the order the messages were given.
//!
//! Locks as in `live.rs`: a mailbox's lock is taken only after the index and cache locks are
//! released, so deliveries wait in an [`Outbox`] until then.

use std::collections::HashMap;
use std::sync::Arc;

use super::cache::MatchSet;
use super::live::Subscription;
use super::mailbox::{Delivery, LiveMessage, Mailbox};
use super::{LiveRouter, Routed};

impl LiveRouter {
    /// [`LiveRouter::publish`] for each of `messages`, in order: the same subscriptions get
    /// the same messages (one member per queue group, taking turns as single publishes do).
    pub fn publish_many(
        &self,
        messages: impl IntoIterator<Item = Arc<LiveMessage>>,
        origin: Option<u64>,
    ) -> Routed {
        let mut outbox = Outbox::default();
        if !self.is_active() {
            return outbox.routed;
        }
        // The set of the previous message, kept while the subject repeats.
        let mut last: Option<(Arc<LiveMessage>, Arc<MatchSet>)> = None;
        for message in messages {
            let set = match &last {
                Some((previous, set)) if previous.subject == message.subject => set.clone(),
                _ => {
                    let set = self.matches(&message.subject);
                    last = Some((message.clone(), set.clone()));
                    set
                }
            };
            outbox.add_set(&set, &message, origin);
        }
        outbox.deliver()
    }

    /// [`LiveRouter::publish_once`] for each of `messages`, in order: answers to unique
    /// inboxes, matched against the index under one read lock without the match cache. A
    /// message that reaches a queue group goes through the cache (its turn lives there),
    /// after the deliveries before it, so every mailbox still sees the given order.
    pub fn publish_once_many(
        &self,
        messages: impl IntoIterator<Item = Arc<LiveMessage>>,
        origin: Option<u64>,
    ) -> Routed {
        let mut outbox = Outbox::default();
        if !self.is_active() {
            return outbox.routed;
        }
        let mut messages = messages.into_iter().peekable();
        while messages.peek().is_some() {
            // Messages up to the first that reaches a queue group, under one read lock.
            let grouped = {
                let index = self.read_index();
                let mut found: Vec<&Arc<Subscription>> = Vec::new();
                let mut grouped = None;
                for message in messages.by_ref() {
                    found.clear();
                    index.for_each_match(&message.subject, |s| found.push(s));
                    if found.iter().any(|s| s.queue_group.is_some()) {
                        grouped = Some(message);
                        break;
                    }
                    // Deliveries follow subscription age, as in a cached set.
                    found.sort_by_key(|subscription| subscription.id);
                    for subscription in found.iter() {
                        outbox.add(subscription, &message, origin);
                    }
                }
                grouped
            };
            if let Some(message) = grouped {
                let set = self.matches(&message.subject);
                outbox.add_set(&set, &message, origin);
            }
        }
        outbox.deliver()
    }
}

/// Deliveries gathered per mailbox, in order, until the router's locks are released.
#[derive(Default)]
struct Outbox {
    mailboxes: Vec<(Arc<Mailbox>, Vec<Delivery>)>,
    /// Mailbox id → its place in `mailboxes`, once there are several.
    places: HashMap<u64, usize>,
    /// The place of the mailbox used last: consecutive deliveries mostly go to one.
    last: usize,
    routed: Routed,
}

impl Outbox {
    /// Every plain subscription of `set` and one member of each queue group, as
    /// [`LiveRouter::publish`] offers them.
    fn add_set(&mut self, set: &MatchSet, message: &Arc<LiveMessage>, origin: Option<u64>) {
        for subscription in &set.plain {
            self.add(subscription, message, origin);
        }
        for group in &set.groups {
            // A member about to be disconnected as slow is passed over while another can
            // take the message.
            let chosen = group
                .pick(|member| wanted(member, origin) && !member.mailbox.is_slow())
                .or_else(|| group.pick(|member| wanted(member, origin)));
            if let Some(member) = chosen {
                self.add_wanted(member, message);
            }
        }
    }

    /// A delivery of `message` to `subscription`, unless it is the publisher's own without echo.
    fn add(
        &mut self,
        subscription: &Subscription,
        message: &Arc<LiveMessage>,
        origin: Option<u64>,
    ) {
        if wanted(subscription, origin) {
            self.add_wanted(subscription, message);
        }
    }

    fn add_wanted(&mut self, subscription: &Subscription, message: &Arc<LiveMessage>) {
        self.routed.matched += 1;
        let delivery = Delivery {
            token: subscription.token,
            message: message.clone(),
        };
        let mailbox = &subscription.mailbox;
        let place = match self.mailboxes.get(self.last) {
            Some((last, _)) if Arc::ptr_eq(last, mailbox) => self.last,
            _ => self.place_of(mailbox),
        };
        self.last = place;
        self.mailboxes[place].1.push(delivery);
    }

    fn place_of(&mut self, mailbox: &Arc<Mailbox>) -> usize {
        if self.places.is_empty() {
            // The map is built only once a second mailbox shows up.
            if let Some((first, _)) = self.mailboxes.first() {
                self.places.insert(first.id, 0);
            }
        }
        if let Some(place) = self.places.get(&mailbox.id) {
            return *place;
        }
        let place = self.mailboxes.len();
        self.mailboxes.push((mailbox.clone(), Vec::new()));
        if place > 0 {
            self.places.insert(mailbox.id, place);
        }
        place
    }

    /// Offers every mailbox its deliveries, in one lock each.
    fn deliver(mut self) -> Routed {
        for (mailbox, deliveries) in self.mailboxes.drain(..) {
            self.routed.dropped += mailbox.offer_many(deliveries);
        }
        self.routed
    }
}

fn wanted(subscription: &Subscription, origin: Option<u64>) -> bool {
    subscription.mailbox.echo() || origin != Some(subscription.mailbox.id)
}

#[cfg(test)]
#[path = "batch_tests.rs"]
mod tests;
