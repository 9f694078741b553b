//! A Redis stream's trimming (`MAXLEN`, `MINID`, with `XADD` or `XTRIM`): what a trim asks,
//! how the stream's writer runs it (`writer.rs`, `Writer::trim`), and where the newest
//! entries begin when some were deleted.

use super::id::StreamId;

/// An approximate `MAXLEN ~ n` trim waits until the stream may be this many entries over
/// `n`, then trims exactly: Redis trims whole nodes of its radix tree (100 entries each by
/// default), so a stream a little over stays as it is there too. Below it, an XADD with
/// such a trim costs what a plain XADD does, and an XTRIM answers 0 without waiting for the
/// XADDs queued before it.
pub(crate) const APPROXIMATE_SLACK: u64 = 100;

/// How a trim runs (`Writer::trim` in `writer.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Trimming {
    /// Against the durable log, the new start durable before the answer.
    Exactly,
    /// Against the durable log, the new start made durable within about a second
    /// (`Engine::delete_records_lazily`): a crash before can only keep more entries, which
    /// `~` allows.
    Lazily,
    /// [`Trimming::Lazily`], without waiting for what is queued: the length counts the
    /// queued XADDs, the cut stays below what is durable.
    Approximately,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TrimBy {
    MaxLength(u64),
    MinimumId(StreamId),
}

/// XTRIM's (and XADD's) trimming. `~` is honoured by trimming exactly once a `MAXLEN`
/// stream is [`APPROXIMATE_SLACK`] entries over, and a `MINID` one at once (Redis allows
/// keeping more than `~` asks for, never trimming more).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Trim {
    pub(crate) by: TrimBy,
    /// At most this many entries removed (LIMIT; 0: no limit).
    pub(crate) limit: u64,
    /// `~`.
    pub(crate) approximate: bool,
}

impl Trim {
    /// Whether the trim may leave a stream of `entries` entries as it is: a `MAXLEN ~ n`
    /// (`n` above 0; `MAXLEN ~ 0` empties the stream, as Redis drops every node then) with
    /// fewer than `n` + [`APPROXIMATE_SLACK`] entries.
    pub(crate) fn within_slack(&self, entries: u64) -> bool {
        match self.by {
            TrimBy::MaxLength(length) if self.approximate && length > 0 => {
                entries < length.saturating_add(APPROXIMATE_SLACK)
            }
            _ => false,
        }
    }

    /// Whether [`Trim::within_slack`] can ever hold: an approximate `MAXLEN` above 0.
    pub(crate) fn has_slack(&self) -> bool {
        self.within_slack(0)
    }
}

/// Where the newest `length` entries of `[start, end)` begin, entries XDEL removed not
/// counted: MAXLEN keeps that many entries a reader sees, as in Redis.
pub(super) fn newest_entries_from(
    start: u64,
    end: u64,
    length: u64,
    deleted: &std::collections::BTreeSet<u64>,
) -> u64 {
    let mut cut = end.saturating_sub(length).max(start);
    let mut hidden = deleted.range(cut..end).count() as u64;
    // Each round moves the cut back over as many offsets as entries are still missing, so
    // it ends after at most one round per deleted entry it meets.
    loop {
        let live = (end - cut) - hidden;
        if live >= length || cut <= start {
            return cut;
        }
        let earlier = cut.saturating_sub(length - live).max(start);
        hidden += deleted.range(earlier..cut).count() as u64;
        cut = earlier;
    }
}

#[cfg(test)]
mod tests {
    use super::newest_entries_from;

    #[test]
    fn maxlen_keeps_that_many_entries_not_deleted() {
        let deleted = |offsets: &[u64]| offsets.iter().copied().collect();
        // Offsets 0..5, none deleted: the newest 2 start at 3.
        assert_eq!(newest_entries_from(0, 5, 2, &deleted(&[])), 3);
        // 4 deleted: the newest 2 entries are 2 and 3.
        assert_eq!(newest_entries_from(0, 5, 2, &deleted(&[4])), 2);
        // 1, 3 and 4 deleted: 0 and 2 are the only entries left to keep.
        assert_eq!(newest_entries_from(0, 5, 2, &deleted(&[1, 3, 4])), 0);
        assert_eq!(newest_entries_from(0, 5, 1, &deleted(&[3, 4])), 2);
        // Fewer entries than asked for: nothing goes.
        assert_eq!(newest_entries_from(2, 5, 9, &deleted(&[3])), 2);
        assert_eq!(newest_entries_from(0, 5, 0, &deleted(&[4])), 5);
    }
}
