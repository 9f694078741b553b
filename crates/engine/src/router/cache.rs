//! The match cache: subject → the live subscriptions it reaches, as nats-server's sublist
//! keeps one, so a subject published again costs one hash lookup instead of a trie walk, and
//! the cost per message does not grow with the number of subscriptions.
//!
//! Entries are valid for one *generation* of the subscription set: every subscribe and
//! unsubscribe bumps the router's generation, and the first lookup that sees a newer one
//! empties the cache. That is coarser than nats-server's in-place updates and right for the
//! common shape — subscriptions that live as long as their connection, subjects published
//! many times. The cache holds at most `entries_max` subjects; when full, about a quarter is
//! evicted in the hash map's (random) order, as nats-server prunes at random.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::live::Subscription;

/// Most subjects the cache remembers (nats-server's `slCacheMax` is 1024; subjects cost a
/// few hundred bytes each here, so we keep more).
pub const MATCH_CACHE_ENTRIES_MAX: usize = 4096;

/// The subscriptions one subject reaches: every plain one, and one member of each queue group.
#[derive(Debug, Default)]
pub(crate) struct MatchSet {
    pub(crate) plain: Vec<Arc<Subscription>>,
    pub(crate) groups: Vec<QueueGroupMatch>,
}

/// The members of one queue group that a subject reaches, and whose turn is next.
#[derive(Debug)]
pub(crate) struct QueueGroupMatch {
    pub(crate) name: Arc<str>,
    pub(crate) members: Vec<Arc<Subscription>>,
    /// Round-robin position; starts again at 0 when the set is rebuilt.
    pub(crate) next: AtomicUsize,
}

impl MatchSet {
    pub(crate) fn from_matches(found: Vec<&Arc<Subscription>>) -> MatchSet {
        let mut set = MatchSet::default();
        for subscription in found {
            match &subscription.queue_group {
                None => set.plain.push(subscription.clone()),
                Some(name) => match set.groups.iter_mut().find(|g| g.name == *name) {
                    Some(group) => group.members.push(subscription.clone()),
                    None => set.groups.push(QueueGroupMatch {
                        name: name.clone(),
                        members: vec![subscription.clone()],
                        next: AtomicUsize::new(0),
                    }),
                },
            }
        }
        // The index yields matches in trie order; sorting by id makes deliveries and
        // round-robin turns follow subscription age, which is what people expect to see.
        set.plain.sort_by_key(|subscription| subscription.id);
        for group in &mut set.groups {
            group.members.sort_by_key(|member| member.id);
        }
        set
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.plain.is_empty() && self.groups.is_empty()
    }
}

impl QueueGroupMatch {
    /// The next member in turn for which `eligible` holds, if any.
    pub(crate) fn pick(&self, eligible: impl Fn(&Subscription) -> bool) -> Option<&Subscription> {
        let count = self.members.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..count)
            .map(|step| &*self.members[(start + step) % count])
            .find(|member| eligible(member))
    }
}

#[derive(Debug)]
pub(crate) struct MatchCache {
    generation: u64,
    entries: HashMap<Box<str>, Arc<MatchSet>>,
    entries_max: usize,
}

impl MatchCache {
    pub(crate) fn new(entries_max: usize) -> MatchCache {
        MatchCache {
            generation: 0,
            entries: HashMap::new(),
            entries_max: entries_max.max(1),
        }
    }

    /// Moves the cache to `generation` if that is newer, forgetting every entry.
    fn advance(&mut self, generation: u64) {
        if generation > self.generation {
            self.generation = generation;
            self.entries.clear();
        }
    }

    /// The cached set of `subject` if it was computed in `generation`.
    pub(crate) fn get(&mut self, generation: u64, subject: &str) -> Option<Arc<MatchSet>> {
        self.advance(generation);
        if generation != self.generation {
            return None;
        }
        self.entries.get(subject).cloned()
    }

    /// Remembers `set` for `subject`, unless it was computed for an older generation.
    pub(crate) fn insert(&mut self, generation: u64, subject: &str, set: Arc<MatchSet>) {
        self.advance(generation);
        if generation != self.generation {
            return;
        }
        if self.entries.len() >= self.entries_max {
            let evict = (self.entries_max / 4).max(1);
            let victims: Vec<Box<str>> = self.entries.keys().take(evict).cloned().collect();
            for victim in victims {
                self.entries.remove(&victim);
            }
        }
        self.entries.insert(subject.into(), set);
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_newer_generation_empties_the_cache_and_an_older_one_is_not_stored() {
        let mut cache = MatchCache::new(8);
        cache.insert(1, "a", Arc::new(MatchSet::default()));
        assert!(cache.get(1, "a").is_some());
        assert!(
            cache.get(2, "a").is_none(),
            "generation 2 forgets generation 1"
        );
        assert_eq!(cache.len(), 0);
        cache.insert(1, "a", Arc::new(MatchSet::default()));
        assert_eq!(
            cache.len(),
            0,
            "a set computed before the change is not kept"
        );
        assert!(cache.get(1, "a").is_none());
    }

    #[test]
    fn the_cache_never_holds_more_than_its_bound() {
        let mut cache = MatchCache::new(16);
        for index in 0..1000 {
            cache.insert(
                1,
                &format!("subject.{index}"),
                Arc::new(MatchSet::default()),
            );
            assert!(cache.len() <= 16);
        }
        assert!(cache.get(1, "subject.999").is_some(), "the newest is kept");
    }
}
