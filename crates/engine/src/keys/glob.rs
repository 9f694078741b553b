//! Redis's glob patterns (KEYS, SCAN MATCH, PSUBSCRIBE): `*` any run, `?` one byte,
//! `[abc]`, `[^a]`, `[a-z]` classes, `\x` a literal x. On bytes, as Redis matches.

/// Whether `text` matches `pattern`.
pub fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    // Iterative with one backtrack point (the last `*`), so no pattern can make it
    // exponential.
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() {
            match pattern[p] {
                b'*' => {
                    star = Some((p, t));
                    p += 1;
                    continue;
                }
                b'?' => {
                    p += 1;
                    t += 1;
                    continue;
                }
                b'[' => {
                    if let Some((matched, next)) = class(pattern, p, text[t]) {
                        if matched {
                            p = next;
                            t += 1;
                            continue;
                        }
                    } else if text[t] == b'[' {
                        p += 1;
                        t += 1;
                        continue;
                    }
                }
                b'\\' if p + 1 < pattern.len() => {
                    if pattern[p + 1] == text[t] {
                        p += 2;
                        t += 1;
                        continue;
                    }
                }
                literal => {
                    if literal == text[t] {
                        p += 1;
                        t += 1;
                        continue;
                    }
                }
            }
        }
        match star {
            Some((star_p, star_t)) => {
                p = star_p + 1;
                t = star_t + 1;
                star = Some((star_p, star_t + 1));
            }
            None => return false,
        }
    }
    pattern[p..].iter().all(|&b| b == b'*')
}

/// Matches `byte` against the class opening at `pattern[open]`; returns whether it matched
/// and where the pattern goes on, or `None` when the class is not closed.
fn class(pattern: &[u8], open: usize, byte: u8) -> Option<(bool, usize)> {
    let mut i = open + 1;
    let negated = pattern.get(i) == Some(&b'^');
    if negated {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    loop {
        let current = *pattern.get(i)?;
        if current == b']' && !first {
            return Some((matched != negated, i + 1));
        }
        first = false;
        if current == b'\\' {
            i += 1;
            matched |= *pattern.get(i)? == byte;
            i += 1;
        } else if pattern.get(i + 1) == Some(&b'-')
            && pattern.get(i + 2).is_some_and(|&c| c != b']')
        {
            let (low, high) = (current.min(pattern[i + 2]), current.max(pattern[i + 2]));
            matched |= (low..=high).contains(&byte);
            i += 3;
        } else {
            matched |= current == byte;
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn globs_match_as_redis_documents() {
        assert!(glob_match(b"h?llo", b"hello"));
        assert!(glob_match(b"h*llo", b"heeeello"));
        assert!(glob_match(b"h*llo", b"hllo"));
        assert!(glob_match(b"h[ae]llo", b"hallo"));
        assert!(!glob_match(b"h[ae]llo", b"hillo"));
        assert!(glob_match(b"h[^e]llo", b"hallo"));
        assert!(!glob_match(b"h[^e]llo", b"hello"));
        assert!(glob_match(b"h[a-b]llo", b"hbllo"));
        assert!(glob_match(b"idempotency:*", b"idempotency:42"));
        assert!(!glob_match(b"idempotency:*", b"sent:42"));
        assert!(glob_match(b"a\\*b", b"a*b"));
        assert!(!glob_match(b"a\\*b", b"axb"));
        assert!(glob_match(b"*", b""));
        assert!(!glob_match(b"?", b""));
        // No blow-up on a pattern of many stars.
        assert!(!glob_match(
            &[b'*'; 64].iter().chain(b"x").copied().collect::<Vec<_>>(),
            &[b'a'; 4096]
        ));
    }
}
