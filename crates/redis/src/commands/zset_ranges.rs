//! Reading the ranges of the sorted-set commands as Redis reads them: scores (`1.5`, `(1.5`,
//! `-inf`, `+inf`), member bounds (`[a`, `(a`, `-`, `+`), ranks, and ZRANGE's options
//! (BYSCORE, BYLEX, REV, LIMIT, WITHSCORES) with Redis's error words.

use bytes::Bytes;
use omnibus_engine::keys::{LexBound, ScoreBound, ZQuery, ZRange};

use super::arguments::{integer, is, SYNTAX_ERROR};
use crate::codec::Reply;

pub(super) const NOT_A_FLOAT: &str = "ERR value is not a valid float";
const BOUND_NOT_A_FLOAT: &str = "ERR min or max is not a float";
const BAD_LEX_BOUND: &str = "ERR min or max not valid string range item";

/// A score as Redis reads one: a decimal or exponent number, `inf`/`-inf`/`+inf` (any case,
/// `infinity` too); no spaces, and never NaN.
pub(super) fn score(word: &[u8]) -> Option<f64> {
    omnibus_engine::keys::parse_float(word)
}

fn score_bound(word: &[u8]) -> Result<ScoreBound, Reply> {
    let bad = || Reply::error(BOUND_NOT_A_FLOAT);
    match word.strip_prefix(b"(") {
        Some(rest) => score(rest).map(ScoreBound::Exclusive).ok_or_else(bad),
        None => score(word).map(ScoreBound::Inclusive).ok_or_else(bad),
    }
}

fn lex_bound(word: &Bytes) -> Result<LexBound, Reply> {
    match word.first() {
        Some(b'[') => Ok(LexBound::Inclusive(word.slice(1..))),
        Some(b'(') => Ok(LexBound::Exclusive(word.slice(1..))),
        Some(b'-') if word.len() == 1 => Ok(LexBound::Min),
        Some(b'+') if word.len() == 1 => Ok(LexBound::Max),
        _ => Err(Reply::error(BAD_LEX_BOUND)),
    }
}

/// How a range's two words are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum By {
    Rank,
    Score,
    Lex,
}

/// The range two words give, lowest first: `reverse` says they came highest first (ZRANGE
/// … REV with BYSCORE or BYLEX, ZREVRANGEBYSCORE).
pub(super) fn range(by: By, first: &Bytes, second: &Bytes, reverse: bool) -> Result<ZRange, Reply> {
    let (low, high) = if reverse && by != By::Rank {
        (second, first)
    } else {
        (first, second)
    };
    Ok(match by {
        By::Rank => ZRange::Rank(integer(low)?, integer(high)?),
        By::Score => ZRange::Score(score_bound(low)?, score_bound(high)?),
        By::Lex => ZRange::Lex(lex_bound(low)?, lex_bound(high)?),
    })
}

/// A ZRANGE-family call read: the query and whether scores are wanted.
pub(super) struct RangeCall {
    pub(super) query: ZQuery,
    pub(super) with_scores: bool,
}

/// ZRANGE's words after the key: `min max [BYSCORE|BYLEX] [REV] [LIMIT offset count]
/// [WITHSCORES]`; `store` (ZRANGESTORE) takes no WITHSCORES.
pub(super) fn zrange(words: &[Bytes], store: bool) -> Result<RangeCall, Reply> {
    parse(words, None, None, store)
}

/// ZRANGEBYSCORE / ZREVRANGEBYSCORE / ZRANGEBYLEX / ZREVRANGEBYLEX: `min max [WITHSCORES]
/// [LIMIT offset count]`, max first when reversed.
pub(super) fn by_range(words: &[Bytes], by: By, reverse: bool) -> Result<RangeCall, Reply> {
    parse(words, Some(by), Some(reverse), false)
}

/// The options after `min max`, as Redis reads them: each word once, BYSCORE/BYLEX and REV
/// only where the command does not already say them; then the combinations it refuses, and
/// only then the range itself.
fn parse(
    words: &[Bytes],
    by: Option<By>,
    reverse: Option<bool>,
    store: bool,
) -> Result<RangeCall, Reply> {
    let (mut by, mut reverse, mut limit, mut with_scores) = (by, reverse, None, false);
    let mut at = 2;
    while at < words.len() {
        let word = &words[at];
        if is(word, "withscores") && !store {
            with_scores = true;
        } else if is(word, "limit") && at + 2 < words.len() {
            limit = Some(limit_of(&words[at + 1], &words[at + 2])?);
            at += 2;
        } else if is(word, "rev") && reverse.is_none() {
            reverse = Some(true);
        } else if is(word, "bylex") && by.is_none() {
            by = Some(By::Lex);
        } else if is(word, "byscore") && by.is_none() {
            by = Some(By::Score);
        } else {
            return Err(Reply::error(SYNTAX_ERROR));
        }
        at += 1;
    }
    let (by, reverse) = (by.unwrap_or(By::Rank), reverse.unwrap_or(false));
    if limit.is_some() && by == By::Rank {
        return Err(Reply::error(
            "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
        ));
    }
    if with_scores && by == By::Lex {
        return Err(Reply::error(
            "ERR syntax error, WITHSCORES not supported in combination with BYLEX",
        ));
    }
    Ok(RangeCall {
        query: query(range(by, &words[0], &words[1], reverse)?, reverse, limit),
        with_scores,
    })
}

/// LIMIT's offset and count; a negative offset selects nothing, as in Redis.
fn limit_of(offset: &Bytes, count: &Bytes) -> Result<(usize, i64), Reply> {
    let (offset, count) = (integer(offset)?, integer(count)?);
    Ok(if offset < 0 {
        (0, 0)
    } else {
        (offset as usize, count)
    })
}

fn query(range: ZRange, reverse: bool, limit: Option<(usize, i64)>) -> ZQuery {
    ZQuery {
        range,
        reverse,
        limit,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<Bytes> {
        text.split(' ')
            .map(|w| Bytes::copy_from_slice(w.as_bytes()))
            .collect()
    }

    fn error(reply: Reply) -> String {
        match reply {
            Reply::Error(text) => text,
            other => panic!("not an error: {other:?}"),
        }
    }

    #[test]
    fn scores_read_as_redis_reads_them() {
        assert_eq!(score(b"1.5"), Some(1.5));
        assert_eq!(score(b"1e3"), Some(1000.0));
        assert_eq!(score(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(score(b"+inf"), Some(f64::INFINITY));
        assert_eq!(score(b"nan"), None);
        assert_eq!(score(b" 1"), None);
        assert_eq!(score(b""), None);
        assert_eq!(score(b"abc"), None);
    }

    #[test]
    fn zrange_options_and_their_refusals() {
        let call = zrange(&words("(5 1 BYSCORE REV LIMIT 1 2 WITHSCORES"), false).unwrap();
        assert!(call.with_scores);
        assert_eq!(
            call.query,
            query(
                ZRange::Score(ScoreBound::Inclusive(1.0), ScoreBound::Exclusive(5.0)),
                true,
                Some((1, 2))
            )
        );
        let refused = zrange(&words("0 1 LIMIT 0 1"), false).err().unwrap();
        assert!(error(refused).contains("LIMIT is only supported"));
        let refused = zrange(&words("[a [b BYLEX WITHSCORES"), false)
            .err()
            .unwrap();
        assert!(error(refused).contains("WITHSCORES not supported"));
        let refused = zrange(&words("a b BYLEX"), false).err().unwrap();
        assert_eq!(error(refused), BAD_LEX_BOUND);
        let refused = zrange(&words("x 1 BYSCORE"), false).err().unwrap();
        assert_eq!(error(refused), BOUND_NOT_A_FLOAT);
        let refused = zrange(&words("0 1 WITHSCORES"), true).err().unwrap();
        assert_eq!(error(refused), SYNTAX_ERROR);
    }
}
