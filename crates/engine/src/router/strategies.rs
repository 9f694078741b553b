//! Subjects and patterns for the router's property tests: three tokens (so that subjects
//! and patterns meet often), patterns with `*` and an optional `>` tail.

use proptest::prelude::*;

/// One token of a subject: `a`, `b` or `c`.
pub(crate) fn token() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("a".to_string()),
        Just("b".to_string()),
        Just("c".to_string())
    ]
}

/// A pattern of one to three tokens or `*`, sometimes ending in `>`.
pub(crate) fn pattern() -> impl Strategy<Value = String> {
    let pattern_token = prop_oneof![3 => token(), 1 => Just("*".to_string())];
    (
        proptest::collection::vec(pattern_token, 1..4),
        any::<bool>(),
    )
        .prop_map(|(mut tokens, tail)| {
            if tail {
                tokens.push(">".to_string());
            }
            tokens.join(".")
        })
}
