//! Topic patterns as AMQP binds them: words separated by `.`, `*` matches exactly one word,
//! `#` matches zero or more words. This is not the NATS trie's `>` (one or more words, and
//! only at the end): `#` may stand anywhere and may match nothing (`a.#` matches `a`), so
//! topic exchanges use this matcher rather than `router/index.rs`.
//!
//! The empty string is no words at all, as RabbitMQ splits it: `*` does not match the empty
//! routing key, and the empty pattern matches only it. Any other text has one word more than
//! it has dots (`a.` is `a` and an empty word, which `a.*` matches).
//!
//! Matching walks the pattern and the key once, with the classic two-pointer backtracking
//! for the last `#` seen (as glob matchers do for `*`): O(words of the pattern × words of the
//! key) in the worst case, no allocation.

/// Whether `routing_key` matches the topic `pattern`.
pub fn topic_matches(pattern: &str, routing_key: &str) -> bool {
    matches_words(&words(pattern), &words(routing_key))
}

/// The words of a routing key or pattern; none for the empty string.
fn words(text: &str) -> Vec<&str> {
    if text.is_empty() {
        Vec::new()
    } else {
        text.split('.').collect()
    }
}

fn matches_words(pattern: &[&str], key: &[&str]) -> bool {
    let (mut p, mut k) = (0usize, 0usize);
    // Where to resume when a word after the last `#` fails: that `#` then swallows one more.
    let mut resume: Option<(usize, usize)> = None;
    while k < key.len() {
        if p < pattern.len() && pattern[p] == "#" {
            resume = Some((p, k));
            p += 1;
        } else if p < pattern.len() && (pattern[p] == "*" || pattern[p] == key[k]) {
            p += 1;
            k += 1;
        } else if let Some((hash, swallowed)) = resume {
            p = hash + 1;
            k = swallowed + 1;
            resume = Some((hash, swallowed + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|word| *word == "#")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The definition, by plain recursion: exponential, so only for checking.
    fn naive(pattern: &[&str], key: &[&str]) -> bool {
        match pattern.split_first() {
            None => key.is_empty(),
            Some((&"#", rest)) => (0..=key.len()).any(|taken| naive(rest, &key[taken..])),
            Some((word, rest)) => match key.split_first() {
                Some((first, key_rest)) => (*word == "*" || word == first) && naive(rest, key_rest),
                None => false,
            },
        }
    }

    #[test]
    fn star_is_one_word_and_hash_is_zero_or_more() {
        assert!(topic_matches("a.*.c", "a.b.c"));
        assert!(!topic_matches("a.*.c", "a.c"));
        assert!(!topic_matches("a.*", "a.b.c"));
        assert!(topic_matches("a.#", "a"));
        assert!(topic_matches("a.#", "a.b.c"));
        assert!(topic_matches("#", ""));
        assert!(topic_matches("#", "x.y"));
        assert!(topic_matches("#.c", "a.b.c"));
        assert!(topic_matches("a.#.c", "a.c"));
        assert!(!topic_matches("a.#.c", "a.b.d"));
        assert!(topic_matches("*.#", "a"));
        assert!(!topic_matches("*.*", "a"));
        assert!(topic_matches("celery", "celery"));
        assert!(!topic_matches("celery", "celery.x"));
    }

    #[test]
    fn the_empty_key_is_no_words_and_a_trailing_dot_is_an_empty_word() {
        assert!(!topic_matches("*", ""));
        assert!(topic_matches("", ""));
        assert!(!topic_matches("", "a"));
        assert!(topic_matches("#", ""));
        assert!(!topic_matches("*.#", ""));
        assert!(topic_matches("a.*", "a."));
        assert!(topic_matches("*.*", "."));
        assert!(topic_matches("a.*.b", "a..b"));
    }

    fn keys() -> impl Strategy<Value = Vec<String>> {
        prop::collection::vec(
            prop_oneof![Just("a"), Just("b"), Just("c"), Just("")].prop_map(String::from),
            0..6,
        )
    }

    fn patterns() -> impl Strategy<Value = Vec<String>> {
        prop::collection::vec(
            prop_oneof![Just("a"), Just("b"), Just("*"), Just("#"), Just("")]
                .prop_map(String::from),
            1..6,
        )
    }

    proptest! {
        #[test]
        fn matcher_agrees_with_the_naive_definition(pattern in patterns(), key in keys()) {
            let pattern_text = pattern.join(".");
            let key_text = key.join(".");
            prop_assert_eq!(
                topic_matches(&pattern_text, &key_text),
                naive(&super::words(&pattern_text), &super::words(&key_text)),
                "pattern {:?} key {:?}", pattern_text, key_text
            );
        }
    }
}
