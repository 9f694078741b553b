//! Subjects (`order.created.v1`) and subject patterns (`order.*.v1`, `order.>`).
//!
//! A subject is a non-empty list of dot-separated tokens. Tokens are non-empty and contain no
//! whitespace. In a pattern, a token `*` matches exactly one token and a final token `>` matches
//! one or more remaining tokens — the NATS rules, so NATS clients behave as they expect. A
//! `*` or `>` inside a longer token (`a*b`, `>x`) is a literal character, in subjects and
//! patterns alike, as nats-server reads it.

use crate::limits::{SUBJECT_BYTES_MAX, SUBJECT_TOKENS_MAX};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectError(pub String);

impl std::fmt::Display for SubjectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SubjectError {}

fn validate_tokens(text: &str, what: &str) -> Result<(), SubjectError> {
    if text.is_empty() {
        return Err(SubjectError(format!("{what} is empty")));
    }
    if text.len() > SUBJECT_BYTES_MAX {
        return Err(SubjectError(format!(
            "{what} is {} bytes; the limit is {SUBJECT_BYTES_MAX}",
            text.len()
        )));
    }
    let mut count = 0;
    for token in text.split('.') {
        count += 1;
        if token.is_empty() {
            return Err(SubjectError(format!("{what} {text:?} has an empty token")));
        }
        if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(SubjectError(format!(
                "{what} {text:?} contains whitespace or a control character"
            )));
        }
    }
    if count > SUBJECT_TOKENS_MAX {
        return Err(SubjectError(format!(
            "{what} {text:?} has {count} tokens; the limit is {SUBJECT_TOKENS_MAX}"
        )));
    }
    Ok(())
}

/// A subject a record is published on: no wildcards.
pub fn validate_subject(subject: &str) -> Result<(), SubjectError> {
    // Every core NATS publish is checked (by the door and again by the engine): one pass over
    // the bytes decides the usual, valid ASCII subject; anything else takes the checks below,
    // which word the error.
    if plain_ascii_subject(subject.as_bytes()) {
        return Ok(());
    }
    validate_tokens(subject, "subject")?;
    if subject.split('.').any(|t| t == "*" || t == ">") {
        return Err(SubjectError(format!(
            "subject {subject:?} contains a wildcard; publish to a concrete subject"
        )));
    }
    Ok(())
}

/// Whether `bytes` is a valid subject of printable ASCII, in one pass: tokens not empty, not a
/// lone `*` or `>`, no more than [`SUBJECT_TOKENS_MAX`] of them. `false` says only that the
/// full checks must decide (non-ASCII subjects may still be valid).
fn plain_ascii_subject(bytes: &[u8]) -> bool {
    if bytes.is_empty() || bytes.len() > SUBJECT_BYTES_MAX {
        return false;
    }
    let wildcard = |first: u8, len: usize| len == 1 && (first == b'*' || first == b'>');
    let (mut tokens, mut len, mut first) = (1, 0, 0u8);
    for &byte in bytes {
        if byte == b'.' {
            if len == 0 || wildcard(first, len) {
                return false;
            }
            tokens += 1;
            len = 0;
        } else {
            // Space and below, DEL and above: whitespace, control or not ASCII.
            if byte <= b' ' || byte >= 0x7f {
                return false;
            }
            if len == 0 {
                first = byte;
            }
            len += 1;
        }
    }
    len > 0 && !wildcard(first, len) && tokens <= SUBJECT_TOKENS_MAX
}

/// A pattern: `*` tokens anywhere, `>` only as the last token.
pub fn validate_pattern(pattern: &str) -> Result<(), SubjectError> {
    validate_tokens(pattern, "subject pattern")?;
    let tokens: Vec<&str> = pattern.split('.').collect();
    for (index, token) in tokens.iter().enumerate() {
        let is_last = index + 1 == tokens.len();
        if *token == ">" && !is_last {
            return Err(SubjectError(format!(
                "subject pattern {pattern:?}: '>' may only be the last token"
            )));
        }
    }
    Ok(())
}

/// Whether `subject` matches `pattern`. Both are assumed valid.
pub fn pattern_matches(pattern: &str, subject: &str) -> bool {
    let mut subject_tokens = subject.split('.');
    for pattern_token in pattern.split('.') {
        match pattern_token {
            ">" => return subject_tokens.next().is_some(),
            "*" => {
                if subject_tokens.next().is_none() {
                    return false;
                }
            }
            literal => {
                if subject_tokens.next() != Some(literal) {
                    return false;
                }
            }
        }
    }
    subject_tokens.next().is_none()
}

/// Whether some subject matches both patterns. Used to refuse streams whose captures overlap,
/// so every subject has at most one home stream.
pub fn patterns_overlap(left: &str, right: &str) -> bool {
    let left: Vec<&str> = left.split('.').collect();
    let right: Vec<&str> = right.split('.').collect();
    let mut index = 0;
    loop {
        match (left.get(index), right.get(index)) {
            (None, None) => return true,
            // `>` needs at least one token; the other side has one here (or is `>` itself).
            (Some(&">"), Some(_)) | (Some(_), Some(&">")) => return true,
            (None, Some(_)) | (Some(_), None) => return false,
            (Some(a), Some(b)) => {
                if *a != "*" && *b != "*" && a != b {
                    return false;
                }
            }
        }
        index += 1;
    }
}

/// Whether every subject `inner` matches is matched by `outer` too. Both are assumed valid.
/// (A JetStream consumer's filter must be such a subset of its stream's subjects.)
pub fn pattern_is_subset(inner: &str, outer: &str) -> bool {
    let inner: Vec<&str> = inner.split('.').collect();
    let outer: Vec<&str> = outer.split('.').collect();
    for (index, outer_token) in outer.iter().enumerate() {
        let Some(inner_token) = inner.get(index) else {
            return false;
        };
        match *outer_token {
            // `>` takes one token or more; `inner` has at least this one.
            ">" => return true,
            "*" if *inner_token != ">" => {}
            literal if literal == *inner_token => {}
            _ => return false,
        }
    }
    inner.len() == outer.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_subset_matches_nothing_its_outer_pattern_does_not() {
        assert!(pattern_is_subset("orders.eu", "orders.>"));
        assert!(pattern_is_subset("orders.*", "orders.>"));
        assert!(pattern_is_subset("orders.>", "orders.>"));
        assert!(pattern_is_subset("orders.eu.paid", "orders.*.paid"));
        assert!(pattern_is_subset("a.b", "a.b"));
        assert!(pattern_is_subset("a.*", ">"));
        assert!(!pattern_is_subset("orders.>", "orders.*"));
        assert!(!pattern_is_subset("orders", "orders.>"));
        assert!(!pattern_is_subset("other.x", "orders.>"));
        assert!(!pattern_is_subset("orders.*", "orders.eu"));
        assert!(!pattern_is_subset("a.b.c", "a.b"));
        assert!(!pattern_is_subset("a.b", "a.b.c"));
    }

    #[test]
    fn star_matches_exactly_one_token() {
        assert!(pattern_matches("a.*.c", "a.b.c"));
        assert!(!pattern_matches("a.*.c", "a.c"));
        assert!(!pattern_matches("a.*", "a.b.c"));
        assert!(pattern_matches("*", "a"));
        assert!(!pattern_matches("*", "a.b"));
    }

    #[test]
    fn greater_than_matches_one_or_more_tokens() {
        assert!(pattern_matches("a.>", "a.b"));
        assert!(pattern_matches("a.>", "a.b.c.d"));
        assert!(!pattern_matches("a.>", "a"));
        assert!(pattern_matches(">", "anything.at.all"));
    }

    #[test]
    fn literals_match_exactly() {
        assert!(pattern_matches("order.created", "order.created"));
        assert!(!pattern_matches("order.created", "order.created.v1"));
        assert!(!pattern_matches("order.created.v1", "order.created"));
    }

    #[test]
    fn validation_rejects_bad_subjects_and_patterns() {
        assert!(validate_subject("a.b").is_ok());
        assert!(validate_subject("a..b").is_err());
        assert!(validate_subject(".a").is_err());
        assert!(validate_subject("a b").is_err());
        assert!(validate_subject("a.*").is_err());
        assert!(validate_subject("").is_err());
        assert!(validate_pattern("a.>").is_ok());
        assert!(validate_pattern("a.>.b").is_err());
        // Inside a longer token, `*` and `>` are literal characters (nats-server's reading).
        assert!(validate_pattern("a.b*").is_ok());
        assert!(validate_subject("a.b*.>x").is_ok());
        assert!(pattern_matches("a.b*", "a.b*"));
        assert!(!pattern_matches("a.b*", "a.bc"));
        assert!(pattern_matches("a.*", "a.b*"));
        assert!(validate_pattern("a.".repeat(64).trim_end_matches('.')).is_ok());
        assert!(validate_pattern("a.".repeat(65).trim_end_matches('.')).is_err());
    }

    #[test]
    fn overlap_examples() {
        assert!(patterns_overlap("a.*", "a.b"));
        assert!(patterns_overlap("a.>", "*.b.c"));
        assert!(!patterns_overlap("a.>", "a"));
        assert!(!patterns_overlap("a.b", "a.c"));
        assert!(!patterns_overlap("a.*", "a.b.c"));
        assert!(patterns_overlap("a.*.c", "a.b.>"));
    }

    fn token() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("a".to_string()),
            Just("b".to_string()),
            Just("*".to_string())
        ]
    }

    fn pattern() -> impl Strategy<Value = String> {
        (proptest::collection::vec(token(), 1..4), any::<bool>()).prop_map(|(tokens, tail)| {
            let mut text = tokens.join(".");
            if tail {
                text.push_str(".>");
            }
            text
        })
    }

    fn subject() -> impl Strategy<Value = String> {
        proptest::collection::vec(prop_oneof![Just("a"), Just("b"), Just("c")], 1..6)
            .prop_map(|tokens| tokens.join("."))
    }

    proptest! {
        // Overlap must agree with brute force over a small alphabet: if some subject matches
        // both, they overlap; if they overlap, some subject of length <= 6 over {a,b,c} matches.
        #[test]
        fn overlap_agrees_with_matching(left in pattern(), right in pattern(), probe in subject()) {
            if pattern_matches(&left, &probe) && pattern_matches(&right, &probe) {
                prop_assert!(patterns_overlap(&left, &right));
            }
        }

        // A subset never matches a subject its outer pattern does not.
        #[test]
        fn a_subset_only_matches_what_its_outer_pattern_matches(
            inner in pattern(), outer in pattern(), probe in subject()
        ) {
            if pattern_is_subset(&inner, &outer) && pattern_matches(&inner, &probe) {
                prop_assert!(pattern_matches(&outer, &probe), "{} {} {}", inner, outer, probe);
            }
        }

        // The one-pass check never accepts what the full checks refuse, and accepts every
        // valid ASCII subject.
        #[test]
        fn the_one_pass_check_agrees_with_the_full_checks(
            text in r"[a-c.*> \t\x00\x7fé]{0,12}|[a-z.]{0,300}|(a\.){62,65}a|b{1020,1030}"
        ) {
            let full = validate_tokens(&text, "subject").is_ok()
                && !text.split('.').any(|t| t == "*" || t == ">");
            prop_assert_eq!(validate_subject(&text).is_ok(), full, "{:?}", text);
            if text.is_ascii() {
                prop_assert_eq!(plain_ascii_subject(text.as_bytes()), full, "{:?}", text);
            }
        }
    }
}
