//! A subject index: a trie over subject tokens holding values under subject patterns, so that
//! finding every pattern a subject matches costs a walk down the subject's tokens instead of
//! a test of every pattern (nats-server's sublist has the same shape).
//!
//! Each trie level is one token position. A node has children for literal tokens, one child
//! for `*` (any one token), values of patterns that end at this node, and values of patterns
//! whose last token `>` (one or more further tokens) stands at this position. A match walks the
//! literal child and the `*` child of every level it reaches, so its cost is bounded by the
//! subject's token count and the number of wildcard branches, not by the number of patterns.
//!
//! Patterns must be valid (see [`omnibus_types::validate_pattern`]); the index does not check.

use std::collections::HashMap;

#[derive(Debug)]
struct Node<T> {
    literals: HashMap<Box<str>, Node<T>>,
    any_one: Option<Box<Node<T>>>,
    /// Values of patterns that end here.
    here: Vec<T>,
    /// Values of patterns with `>` at this position (they need at least one more token).
    rest: Vec<T>,
}

impl<T> Default for Node<T> {
    fn default() -> Self {
        Node {
            literals: HashMap::new(),
            any_one: None,
            here: Vec::new(),
            rest: Vec::new(),
        }
    }
}

impl<T> Node<T> {
    fn is_empty(&self) -> bool {
        self.literals.is_empty()
            && self.any_one.is_none()
            && self.here.is_empty()
            && self.rest.is_empty()
    }
}

/// Values filed under subject patterns; `matches` finds every value whose pattern matches a
/// subject. A pattern may hold several values; the same value may be filed under several
/// patterns.
#[derive(Debug)]
pub struct SubjectIndex<T> {
    root: Node<T>,
    len: usize,
}

impl<T> Default for SubjectIndex<T> {
    fn default() -> Self {
        SubjectIndex {
            root: Node::default(),
            len: 0,
        }
    }
}

impl<T: PartialEq> SubjectIndex<T> {
    pub fn new() -> Self {
        Self::default()
    }

    /// How many (pattern, value) entries the index holds.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Files `value` under `pattern`.
    pub fn insert(&mut self, pattern: &str, value: T) {
        let mut node = &mut self.root;
        let mut tokens = pattern.split('.').peekable();
        while let Some(token) = tokens.next() {
            if token == ">" && tokens.peek().is_none() {
                node.rest.push(value);
                self.len += 1;
                return;
            }
            node = match token {
                "*" => node.any_one.get_or_insert_with(Box::default),
                literal => node.literals.entry(literal.into()).or_default(),
            };
        }
        node.here.push(value);
        self.len += 1;
    }

    /// Removes one entry of `value` under `pattern`; false if there was none. Emptied nodes are
    /// pruned, so the index does not grow with patterns that come and go.
    pub fn remove(&mut self, pattern: &str, value: &T) -> bool {
        let tokens: Vec<&str> = pattern.split('.').collect();
        let removed = remove_in(&mut self.root, &tokens, value);
        if removed {
            self.len -= 1;
        }
        removed
    }

    /// Calls `visit` with every value whose pattern matches `subject` (a valid subject, no
    /// wildcards), once per matching entry, in no particular order.
    pub fn for_each_match<'a>(&'a self, subject: &str, mut visit: impl FnMut(&'a T)) {
        visit_matches(&self.root, Some(subject), &mut visit);
    }

    /// The values whose patterns match `subject`.
    pub fn matches(&self, subject: &str) -> Vec<&T> {
        let mut found = Vec::new();
        self.for_each_match(subject, |value| found.push(value));
        found
    }

    /// How many entries are filed under `subject` itself, a pattern without wildcards.
    pub fn literal_count(&self, subject: &str) -> usize {
        let mut node = &self.root;
        for token in subject.split('.') {
            match node.literals.get(token) {
                Some(child) => node = child,
                None => return 0,
            }
        }
        node.here.len()
    }

    /// Every pattern without wildcards that has entries, with how many.
    pub fn literals(&self) -> Vec<(String, usize)> {
        let mut found = Vec::new();
        collect_literals(&self.root, &mut String::new(), &mut found);
        found
    }
}

fn collect_literals<T>(node: &Node<T>, prefix: &mut String, found: &mut Vec<(String, usize)>) {
    if !node.here.is_empty() && !prefix.is_empty() {
        found.push((prefix.clone(), node.here.len()));
    }
    for (token, child) in &node.literals {
        let length = prefix.len();
        if !prefix.is_empty() {
            prefix.push('.');
        }
        prefix.push_str(token);
        collect_literals(child, prefix, found);
        prefix.truncate(length);
    }
}

/// Walks `subject`'s tokens from `node`; `None` once every token is used. The subject is
/// split as the walk goes rather than into a vector first: this runs once per routed message.
fn visit_matches<'a, T>(node: &'a Node<T>, subject: Option<&str>, visit: &mut impl FnMut(&'a T)) {
    let Some(subject) = subject else {
        node.here.iter().for_each(&mut *visit);
        return;
    };
    let (first, remaining) = match subject.split_once('.') {
        Some((first, remaining)) => (first, Some(remaining)),
        None => (subject, None),
    };
    // `>` here needs at least one more token, which `first` is.
    node.rest.iter().for_each(&mut *visit);
    if let Some(child) = node.literals.get(first) {
        visit_matches(child, remaining, visit);
    }
    if let Some(child) = &node.any_one {
        visit_matches(child, remaining, visit);
    }
}

fn remove_in<T: PartialEq>(node: &mut Node<T>, tokens: &[&str], value: &T) -> bool {
    let take = |values: &mut Vec<T>| match values.iter().position(|v| v == value) {
        Some(index) => {
            values.remove(index);
            true
        }
        None => false,
    };
    match tokens {
        [] => take(&mut node.here),
        [">"] => take(&mut node.rest),
        [first, remaining @ ..] => {
            let removed;
            if *first == "*" {
                let Some(child) = node.any_one.as_mut() else {
                    return false;
                };
                removed = remove_in(child, remaining, value);
                if child.is_empty() {
                    node.any_one = None;
                }
            } else {
                let Some(child) = node.literals.get_mut(*first) else {
                    return false;
                };
                removed = remove_in(child, remaining, value);
                if child.is_empty() {
                    node.literals.remove(*first);
                }
            }
            removed
        }
    }
}

#[cfg(test)]
mod tests {
    use omnibus_types::pattern_matches;
    use proptest::prelude::*;

    use super::*;
    use crate::router::strategies::{pattern, token};

    fn sorted(index: &SubjectIndex<u32>, subject: &str) -> Vec<u32> {
        let mut found: Vec<u32> = index.matches(subject).into_iter().copied().collect();
        found.sort_unstable();
        found
    }

    #[test]
    fn literals_one_token_wildcards_and_tails_match_as_nats_does() {
        let mut index = SubjectIndex::new();
        index.insert("orders.created", 1);
        index.insert("orders.*", 2);
        index.insert("orders.>", 3);
        index.insert("*.created", 4);
        index.insert(">", 5);
        index.insert("orders", 6);
        assert_eq!(sorted(&index, "orders.created"), vec![1, 2, 3, 4, 5]);
        assert_eq!(sorted(&index, "orders.created.v1"), vec![3, 5]);
        assert_eq!(sorted(&index, "orders"), vec![5, 6]);
        assert_eq!(sorted(&index, "users.created"), vec![4, 5]);
        assert_eq!(sorted(&index, "users"), vec![5]);
        assert_eq!(index.len(), 6);
    }

    #[test]
    fn literal_patterns_are_counted_and_listed_without_the_wildcard_ones() {
        let mut index = SubjectIndex::new();
        index.insert("orders.created", 1);
        index.insert("orders.created", 2);
        index.insert("orders", 3);
        index.insert("orders.*", 4);
        index.insert("orders.>", 5);
        index.insert("*.created", 6);
        assert_eq!(index.literal_count("orders.created"), 2);
        assert_eq!(index.literal_count("orders"), 1);
        assert_eq!(index.literal_count("orders.paid"), 0);
        assert_eq!(index.literal_count("users"), 0);
        let mut listed = index.literals();
        listed.sort();
        assert_eq!(
            listed,
            vec![("orders".to_string(), 1), ("orders.created".to_string(), 2)]
        );
    }

    #[test]
    fn removal_takes_one_entry_and_prunes_empty_branches() {
        let mut index = SubjectIndex::new();
        index.insert("a.b.c", 1);
        index.insert("a.b.c", 1);
        index.insert("a.*.>", 2);
        assert!(index.remove("a.b.c", &1));
        assert_eq!(sorted(&index, "a.b.c"), vec![1, 2]);
        assert!(index.remove("a.b.c", &1));
        assert!(!index.remove("a.b.c", &1), "nothing left to remove");
        assert!(!index.remove("a.x", &2), "not filed there");
        assert!(index.remove("a.*.>", &2));
        assert!(index.is_empty());
        assert!(index.root.is_empty(), "every branch was pruned");
    }

    proptest! {
        /// The index finds exactly the patterns that `pattern_matches` accepts, after any
        /// mix of inserts and removals.
        #[test]
        fn matches_agree_with_the_pattern_rules(
            patterns in proptest::collection::vec(pattern(), 1..30),
            removed in proptest::collection::vec(any::<prop::sample::Index>(), 0..10),
            subjects in proptest::collection::vec(proptest::collection::vec(token(), 1..6), 1..20),
        ) {
            let mut index = SubjectIndex::new();
            for (value, pattern) in patterns.iter().enumerate() {
                index.insert(pattern, value);
            }
            let mut live: Vec<(usize, &String)> = patterns.iter().enumerate().collect();
            for pick in removed {
                if live.is_empty() {
                    break;
                }
                let (value, pattern) = live.remove(pick.index(live.len()));
                prop_assert!(index.remove(pattern, &value));
            }
            prop_assert_eq!(index.len(), live.len());
            for tokens in subjects {
                let subject = tokens.join(".");
                let mut found: Vec<usize> = index.matches(&subject).into_iter().copied().collect();
                found.sort_unstable();
                let expected: Vec<usize> = live
                    .iter()
                    .filter(|(_, pattern)| pattern_matches(pattern, &subject))
                    .map(|(value, _)| *value)
                    .collect();
                prop_assert_eq!(found, expected, "subject {}", subject);
            }
        }
    }
}
