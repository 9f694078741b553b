//! Redis stream IDs (`<ms>-<seq>`, two unsigned 64-bit numbers) and the ways commands spell
//! them: `*` and `<ms>-*` in XADD, `-`/`+` and an exclusive `(` in XRANGE, a bare `<ms>` whose
//! missing sequence means 0 at the start of an interval and the largest at its end. Pure
//! functions, no I/O.

use std::fmt;

use bytes::Bytes;

/// Redis's words for an ID it cannot read.
pub(crate) const INVALID_ID: &str = "ERR Invalid stream ID specified as stream command argument";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
pub(crate) struct StreamId {
    pub(crate) ms: u64,
    pub(crate) seq: u64,
}

impl StreamId {
    pub(crate) const MIN: StreamId = StreamId { ms: 0, seq: 0 };
    pub(crate) const MAX: StreamId = StreamId {
        ms: u64::MAX,
        seq: u64::MAX,
    };

    pub(crate) fn new(ms: u64, seq: u64) -> StreamId {
        StreamId { ms, seq }
    }

    /// The next ID up, or `None` past the largest.
    pub(crate) fn next(self) -> Option<StreamId> {
        match self.seq.checked_add(1) {
            Some(seq) => Some(StreamId::new(self.ms, seq)),
            None => Some(StreamId::new(self.ms.checked_add(1)?, 0)),
        }
    }

    /// The next ID down, or `None` below 0-0.
    pub(crate) fn previous(self) -> Option<StreamId> {
        match self.seq.checked_sub(1) {
            Some(seq) => Some(StreamId::new(self.ms, seq)),
            None => Some(StreamId::new(self.ms.checked_sub(1)?, u64::MAX)),
        }
    }

    /// `<ms>-<seq>`, or a bare `<ms>` whose sequence is `missing_seq`.
    pub(crate) fn parse(bytes: &[u8], missing_seq: u64) -> Option<StreamId> {
        let text = std::str::from_utf8(bytes).ok()?;
        match text.split_once('-') {
            Some((ms, seq)) => Some(StreamId::new(number(ms)?, number(seq)?)),
            None => Some(StreamId::new(number(text)?, missing_seq)),
        }
    }

    /// Whether `text` is exactly how this ID is shown (`<ms>-<seq>`, no leading zeros).
    pub(crate) fn is_spelled(self, text: &[u8]) -> bool {
        let Some(dash) = text.iter().position(|&byte| byte == b'-') else {
            return false;
        };
        let canonical = |part: &[u8]| part == b"0" || part.first().is_some_and(|&b| b != b'0');
        let (ms, seq) = (&text[..dash], &text[dash + 1..]);
        // Digits only, no leading zero: one spelling per number, so it is this ID's.
        canonical(ms) && canonical(seq) && StreamId::parse(text, 0) == Some(self)
    }

    /// An ID as given to XREAD, XCLAIM, XACK…: a bare `<ms>` means `<ms>-0`.
    pub(crate) fn parse_strict(bytes: &[u8]) -> Result<StreamId, &'static str> {
        StreamId::parse(bytes, 0).ok_or(INVALID_ID)
    }

    /// `<ms>-<seq>` as bytes: what an XADD stores and replies, once per entry (without the
    /// formatting machinery `to_string` goes through).
    pub(crate) fn to_bytes(self) -> Bytes {
        let mut digits = itoa::Buffer::new();
        let mut text = Vec::with_capacity(41);
        text.extend_from_slice(digits.format(self.ms).as_bytes());
        text.push(b'-');
        text.extend_from_slice(digits.format(self.seq).as_bytes());
        Bytes::from(text)
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}-{}", self.ms, self.seq)
    }
}

/// Decimal digits only (Redis's `string2ull`: no sign, no spaces).
fn number(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// What XADD was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NewId {
    /// `*`: the clock, or one more than the top.
    Auto,
    /// `<ms>-*`: this millisecond, the next free sequence in it.
    AutoSequence(u64),
    /// `<ms>-<seq>` (or a bare `<ms>`, meaning `<ms>-0`).
    Explicit(StreamId),
}

impl NewId {
    pub(crate) fn parse(bytes: &[u8]) -> Result<NewId, &'static str> {
        if bytes == b"*" {
            return Ok(NewId::Auto);
        }
        if let Some(ms) = bytes.strip_suffix(b"-*") {
            let ms = std::str::from_utf8(ms).ok().and_then(number);
            return ms.map(NewId::AutoSequence).ok_or(INVALID_ID);
        }
        StreamId::parse(bytes, 0)
            .map(NewId::Explicit)
            .ok_or(INVALID_ID)
    }

    /// The ID an XADD gets after `top` (the stream's last ID), at `now_ms`, or Redis's error.
    pub(crate) fn resolve(self, top: StreamId, now_ms: u64) -> Result<StreamId, &'static str> {
        const SMALLER: &str =
            "ERR The ID specified in XADD is equal or smaller than the target stream top item";
        const EXHAUSTED: &str =
            "ERR The stream has exhausted the last possible ID, unable to add more items";
        // Checked first whatever the ID, as Redis does.
        if top == StreamId::MAX {
            return Err(EXHAUSTED);
        }
        match self {
            NewId::Auto => {
                if now_ms > top.ms {
                    Ok(StreamId::new(now_ms, 0))
                } else {
                    top.next().ok_or(EXHAUSTED)
                }
            }
            NewId::AutoSequence(ms) => {
                if ms > top.ms {
                    Ok(StreamId::new(ms, 0))
                } else if ms == top.ms {
                    top.seq
                        .checked_add(1)
                        .map(|seq| StreamId::new(ms, seq))
                        .ok_or(SMALLER)
                } else {
                    Err(SMALLER)
                }
            }
            NewId::Explicit(id) => {
                if id == StreamId::MIN {
                    Err("ERR The ID specified in XADD must be greater than 0-0")
                } else if id <= top {
                    Err(SMALLER)
                } else {
                    Ok(id)
                }
            }
        }
    }
}

/// One end of an XRANGE interval: `-`, `+`, `(<id>` (exclusive) or `<id>`.
pub(crate) fn range_start(bytes: &[u8]) -> Result<Option<StreamId>, &'static str> {
    range_bound(bytes, true)
}

pub(crate) fn range_end(bytes: &[u8]) -> Result<Option<StreamId>, &'static str> {
    range_bound(bytes, false)
}

/// `Ok(None)`: an exclusive bound that leaves nothing (past the largest or below the least
/// ID), which Redis answers with an error of its own.
fn range_bound(bytes: &[u8], start: bool) -> Result<Option<StreamId>, &'static str> {
    match bytes {
        b"-" => return Ok(Some(StreamId::MIN)),
        b"+" => return Ok(Some(StreamId::MAX)),
        _ => {}
    }
    let missing_seq = if start { 0 } else { u64::MAX };
    if let Some(rest) = bytes.strip_prefix(b"(") {
        let id = StreamId::parse(rest, missing_seq).ok_or(INVALID_ID)?;
        return Ok(if start { id.next() } else { id.previous() });
    }
    StreamId::parse(bytes, missing_seq)
        .map(Some)
        .ok_or(INVALID_ID)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_and_print_as_redis_spells_them() {
        assert_eq!(StreamId::parse(b"5-3", 0), Some(StreamId::new(5, 3)));
        assert_eq!(StreamId::parse(b"5", 7), Some(StreamId::new(5, 7)));
        for bad in [&b"-1"[..], b"a-1", b"1-", b"1-2-3", b"", b" 1", b"+1"] {
            assert_eq!(StreamId::parse(bad, 0), None, "{bad:?}");
        }
        assert_eq!(StreamId::new(1, 2).to_string(), "1-2");
        for id in [
            StreamId::MIN,
            StreamId::new(1_700_000_000_123, 42),
            StreamId::MAX,
        ] {
            assert_eq!(id.to_bytes(), id.to_string().as_bytes());
        }
        assert_eq!(StreamId::MAX.next(), None);
        assert_eq!(StreamId::MIN.previous(), None);
        assert_eq!(StreamId::new(1, u64::MAX).next(), Some(StreamId::new(2, 0)));
    }

    #[test]
    fn xadd_ids_grow_strictly() {
        let top = StreamId::new(10, 4);
        assert_eq!(NewId::Auto.resolve(top, 11), Ok(StreamId::new(11, 0)));
        // A clock behind the top: one more than the top, as Redis does.
        assert_eq!(NewId::Auto.resolve(top, 9), Ok(StreamId::new(10, 5)));
        assert_eq!(
            NewId::AutoSequence(10).resolve(top, 0),
            Ok(StreamId::new(10, 5))
        );
        assert!(NewId::AutoSequence(9).resolve(top, 0).is_err());
        assert!(NewId::Explicit(StreamId::new(10, 4))
            .resolve(top, 0)
            .is_err());
        assert!(NewId::Explicit(StreamId::MIN)
            .resolve(StreamId::MIN, 0)
            .unwrap_err()
            .contains("greater than 0-0"));
        assert_eq!(NewId::parse(b"7-*"), Ok(NewId::AutoSequence(7)));
        assert_eq!(NewId::parse(b"x"), Err(INVALID_ID));
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_id_arguments_never_panic_and_round_trip(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)) {
            crate::fuzzing::stream_ids(&data);
        }

        #[test]
        fn printed_ids_read_back(ms in proptest::prelude::any::<u64>(), seq in proptest::prelude::any::<u64>()) {
            let id = StreamId::new(ms, seq);
            crate::fuzzing::stream_ids(id.to_string().as_bytes());
            proptest::prop_assert_eq!(StreamId::parse_strict(id.to_string().as_bytes()), Ok(id));
        }
    }

    #[test]
    fn range_bounds_take_exclusive_and_bare_ids() {
        assert_eq!(range_start(b"(5-1"), Ok(Some(StreamId::new(5, 2))));
        assert_eq!(range_end(b"(5-0"), Ok(Some(StreamId::new(4, u64::MAX))));
        assert_eq!(range_end(b"5"), Ok(Some(StreamId::new(5, u64::MAX))));
        assert_eq!(range_start(b"(0-0").map(|b| b.is_some()), Ok(true));
        assert_eq!(range_end(b"(0-0"), Ok(None));
        assert_eq!(range_start(b"+"), Ok(Some(StreamId::MAX)));
    }
}
