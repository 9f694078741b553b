//! Live subscriptions: patterns (`*` one token, `>` the rest) filed in the subject index, each
//! delivering into its subscriber's [`Mailbox`]; optionally in a *queue group*, whose members
//! share the messages (each goes to one member, in turn) while every plain subscription gets
//! its own copy.
//!
//! Publishing looks the subject up in the match cache (`cache.rs`) and offers the message to
//! each subscription found. When there are no live subscriptions at all the router does no
//! work beyond one atomic load, so streams without live readers pay nothing for it.
//!
//! Locks: `index` (RwLock) is taken before `cache` (Mutex) when both are held; a mailbox's own
//! lock is only taken with neither held.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use omnibus_types::validate_pattern;

use super::cache::{MatchCache, MatchSet, MATCH_CACHE_ENTRIES_MAX};
use super::mailbox::{Delivery, LiveMessage, Mailbox, MailboxLimits};
use super::SubjectIndex;
use crate::error::{EngineError, Result};

/// Most live subscriptions the broker holds at once, over every subscriber; each door bounds
/// its own connections' share well below this.
pub const LIVE_SUBSCRIPTIONS_MAX: usize = 1_000_000;
/// Longest queue group name.
pub const QUEUE_GROUP_BYTES_MAX: usize = 256;

/// One live subscription, as filed in the index.
#[derive(Debug)]
pub(crate) struct Subscription {
    /// Unique for the router's lifetime; identifies the entry to remove.
    pub(crate) id: u64,
    pub(crate) queue_group: Option<Arc<str>>,
    pub(crate) token: u64,
    pub(crate) mailbox: Arc<Mailbox>,
}

impl PartialEq for Subscription {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

/// What [`LiveRouter::publish`] did with a message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Routed {
    /// Subscriptions the message was offered to (one per queue group reached).
    pub matched: usize,
    /// Of those, the ones whose mailbox was full: the message was dropped for them.
    pub dropped: usize,
}

/// What [`LiveRouter::interest`] found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Interest {
    pub subscriptions: usize,
    pub pending_messages_max: usize,
    pub pending_bytes_max: usize,
}

/// The live subscriptions of the whole broker. Shared by every front door through the engine.
#[derive(Debug)]
pub struct LiveRouter {
    /// How many subscriptions exist: zero means publishing skips the router entirely.
    active: AtomicUsize,
    /// Bumped (under the index's write lock) by every change of the subscription set.
    generation: AtomicU64,
    next_id: AtomicU64,
    index: RwLock<SubjectIndex<Arc<Subscription>>>,
    cache: Mutex<MatchCache>,
}

impl Default for LiveRouter {
    fn default() -> Self {
        LiveRouter::with_cache_entries(MATCH_CACHE_ENTRIES_MAX)
    }
}

impl LiveRouter {
    pub fn new() -> LiveRouter {
        LiveRouter::default()
    }

    /// A router whose match cache holds at most `entries_max` subjects.
    pub fn with_cache_entries(entries_max: usize) -> LiveRouter {
        LiveRouter {
            active: AtomicUsize::new(0),
            generation: AtomicU64::new(0),
            next_id: AtomicU64::new(1),
            index: RwLock::new(SubjectIndex::new()),
            cache: Mutex::new(MatchCache::new(entries_max)),
        }
    }

    /// A mailbox for a new subscriber. With `echo` false the subscriber does not receive
    /// messages it publishes itself (passing [`Mailbox::id`] as the origin).
    pub fn mailbox(&self, echo: bool, limits: MailboxLimits) -> Arc<Mailbox> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        Arc::new(Mailbox::new(id, echo, limits))
    }

    /// Whether any live subscription exists.
    pub fn is_active(&self) -> bool {
        self.active.load(Ordering::Acquire) > 0
    }

    /// How many live subscriptions exist.
    pub fn subscription_count(&self) -> usize {
        self.active.load(Ordering::Acquire)
    }

    /// Subscribes `mailbox` to `pattern`; deliveries carry `token`. The subscription lasts
    /// until the handle is dropped or [`SubscriptionHandle::unsubscribe`] is called.
    pub fn subscribe(
        self: &Arc<Self>,
        mailbox: &Arc<Mailbox>,
        pattern: &str,
        queue_group: Option<&str>,
        token: u64,
    ) -> Result<SubscriptionHandle> {
        validate_pattern(pattern).map_err(|e| EngineError::InvalidSubject(e.to_string()))?;
        if let Some(group) = queue_group {
            validate_queue_group(group)?;
        }
        let subscription = Arc::new(Subscription {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            queue_group: queue_group.map(Arc::from),
            token,
            mailbox: mailbox.clone(),
        });
        let mut index = self.index.write().unwrap_or_else(|p| p.into_inner());
        if index.len() >= LIVE_SUBSCRIPTIONS_MAX {
            return Err(EngineError::LimitExceeded(format!(
                "the broker holds {LIVE_SUBSCRIPTIONS_MAX} live subscriptions, its limit"
            )));
        }
        index.insert(pattern, subscription.clone());
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.active.store(index.len(), Ordering::Release);
        Ok(SubscriptionHandle {
            router: self.clone(),
            pattern: pattern.into(),
            subscription: Some(subscription),
        })
    }

    fn remove(&self, pattern: &str, subscription: &Arc<Subscription>) {
        let mut index = self.index.write().unwrap_or_else(|p| p.into_inner());
        if index.remove(pattern, subscription) {
            self.generation.fetch_add(1, Ordering::AcqRel);
            self.active.store(index.len(), Ordering::Release);
        }
    }

    /// Offers `message` to every subscription matching its subject (one member per queue
    /// group), except the origin's own when its mailbox does not want echoes.
    pub fn publish(&self, message: Arc<LiveMessage>, origin: Option<u64>) -> Routed {
        let route = message.subject.clone();
        self.publish_to(&route, message, origin)
    }

    /// Offers `message` to the subscriptions matching `route` rather than its own subject,
    /// which subscribers still see: a consumer that pushes a stream's records to a delivery
    /// subject keeps each record's subject (JetStream push consumers, AMQP's delivery of a
    /// message under its routing key).
    pub fn publish_to(
        &self,
        route: &str,
        message: Arc<LiveMessage>,
        origin: Option<u64>,
    ) -> Routed {
        if !self.is_active() {
            return Routed::default();
        }
        let set = self.matches(route);
        self.offer(&set, message, origin)
    }

    /// [`LiveRouter::publish`] for a subject used once — an answer to a request's unique
    /// inbox (a JetStream PubAck, an API reply): matched against the index without the match
    /// cache, so a stream of one-off subjects does not fill the cache and evict the subjects
    /// that are published again and again.
    pub fn publish_once(&self, message: Arc<LiveMessage>, origin: Option<u64>) -> Routed {
        if !self.is_active() {
            return Routed::default();
        }
        let set = {
            let index = self.index.read().unwrap_or_else(|p| p.into_inner());
            MatchSet::from_matches(index.matches(&message.subject))
        };
        if !set.groups.is_empty() {
            // A queue group's turn is kept in the cached set.
            return self.publish(message, origin);
        }
        self.offer(&set, message, origin)
    }

    /// Offers `message` to every plain subscription in `set` and one member of each queue
    /// group.
    fn offer(&self, set: &MatchSet, message: Arc<LiveMessage>, origin: Option<u64>) -> Routed {
        let mut routed = Routed::default();
        if set.is_empty() {
            return routed;
        }
        let wanted = |subscription: &Subscription| {
            (subscription.mailbox.echo() || origin != Some(subscription.mailbox.id))
                && (!message.appended || subscription.mailbox.receives_appended())
        };
        let mut offer = |subscription: &Subscription| {
            routed.matched += 1;
            let delivery = Delivery {
                token: subscription.token,
                message: message.clone(),
            };
            if !subscription.mailbox.offer(delivery) {
                routed.dropped += 1;
            }
        };
        for subscription in set.plain.iter().filter(|s| wanted(s)) {
            offer(subscription);
        }
        for group in &set.groups {
            // A member about to be disconnected as slow is passed over while another can
            // take the message.
            let chosen = group
                .pick(|member| wanted(member) && !member.mailbox.is_slow())
                .or_else(|| group.pick(wanted));
            if let Some(member) = chosen {
                offer(member);
            }
        }
        routed
    }

    /// How many subscriptions are to `subject` itself (not through a wildcard): what
    /// Redis's PUBSUB NUMSUB counts, across every door.
    pub fn exact_subscriptions(&self, subject: &str) -> usize {
        if !self.is_active() {
            return 0;
        }
        self.read_index().literal_count(subject)
    }

    /// Every subject some subscription names without a wildcard, with how many do.
    pub fn exact_subjects(&self) -> Vec<(String, usize)> {
        if !self.is_active() {
            return Vec::new();
        }
        self.read_index().literals()
    }

    /// Who would receive a message on `subject` now: the subscriptions it reaches, and the
    /// most messages and bytes any of their mailboxes holds (0 when none matches). A sender
    /// that must not overrun its readers waits while that is high.
    pub fn interest(&self, subject: &str) -> Interest {
        if !self.is_active() {
            return Interest::default();
        }
        let set = self.matches(subject);
        let mut interest = Interest::default();
        let members = set
            .plain
            .iter()
            .chain(set.groups.iter().flat_map(|group| group.members.iter()));
        for subscription in members {
            interest.subscriptions += 1;
            let (messages, bytes) = subscription.mailbox.pending();
            interest.pending_messages_max = interest.pending_messages_max.max(messages);
            interest.pending_bytes_max = interest.pending_bytes_max.max(bytes);
        }
        interest
    }

    /// The subscriptions `subject` reaches, from the cache or computed and cached.
    pub(super) fn matches(&self, subject: &str) -> Arc<MatchSet> {
        let generation = self.generation.load(Ordering::Acquire);
        if let Some(set) = self.cache().get(generation, subject) {
            return set;
        }
        let index = self.index.read().unwrap_or_else(|p| p.into_inner());
        // Stable while the read lock is held: changes bump it under the write lock.
        let generation = self.generation.load(Ordering::Acquire);
        let set = Arc::new(MatchSet::from_matches(index.matches(subject)));
        let mut cache = self.cache();
        cache.insert(generation, subject, set.clone());
        set
    }

    pub(super) fn read_index(
        &self,
    ) -> std::sync::RwLockReadGuard<'_, SubjectIndex<Arc<Subscription>>> {
        self.index.read().unwrap_or_else(|p| p.into_inner())
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, MatchCache> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    #[cfg(test)]
    pub(crate) fn cached_subjects(&self) -> usize {
        self.cache().len()
    }
}

fn validate_queue_group(group: &str) -> Result<()> {
    if group.is_empty()
        || group.len() > QUEUE_GROUP_BYTES_MAX
        || group.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(EngineError::InvalidName(format!(
            "queue group {group:?} must be 1 to {QUEUE_GROUP_BYTES_MAX} bytes without whitespace"
        )));
    }
    Ok(())
}

/// A live subscription; dropping it unsubscribes.
#[derive(Debug)]
pub struct SubscriptionHandle {
    router: Arc<LiveRouter>,
    pattern: Box<str>,
    subscription: Option<Arc<Subscription>>,
}

impl SubscriptionHandle {
    /// The token deliveries of this subscription carry.
    pub fn token(&self) -> u64 {
        self.subscription.as_ref().map_or(0, |s| s.token)
    }

    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// Ends the subscription now (dropping the handle does the same).
    pub fn unsubscribe(mut self) {
        self.remove();
    }

    fn remove(&mut self) {
        if let Some(subscription) = self.subscription.take() {
            self.router.remove(&self.pattern, &subscription);
        }
    }
}

impl Drop for SubscriptionHandle {
    fn drop(&mut self) {
        self.remove();
    }
}

#[cfg(test)]
#[path = "live_tests.rs"]
mod tests;
