//! Subjects and patterns for the router's property tests: a few tokens (so that subjects
//! and patterns meet often), patterns with `*` and an optional `>` tail.

use proptest::prelude::*;

/// One token of a subject: `a`, `b` or `c`.
pub(crate) fn token() -> impl Strategy<Value = String> + Clone {
    token_of(&["a", "b", "c"])
}

/// One token of a subject, one of `names`.
pub(crate) fn token_of(names: &'static [&'static str]) -> impl Strategy<Value = String> + Clone {
    proptest::sample::select(names).prop_map(str::to_string)
}

/// A pattern of one to three of [`token`] or `*`, sometimes ending in `>`.
pub(crate) fn pattern() -> impl Strategy<Value = String> {
    pattern_of(token(), 3)
}

/// A pattern of one to `tokens_max` of `token` or `*`, sometimes ending in `>`.
pub(crate) fn pattern_of(
    token: impl Strategy<Value = String> + Clone + 'static,
    tokens_max: usize,
) -> impl Strategy<Value = String> {
    let pattern_token = prop_oneof![3 => token, 1 => Just("*".to_string())];
    (
        proptest::collection::vec(pattern_token, 1..=tokens_max),
        any::<bool>(),
    )
        .prop_map(|(mut tokens, tail)| {
            if tail {
                tokens.push(">".to_string());
            }
            tokens.join(".")
        })
}
