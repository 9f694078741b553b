//! LCS key1 key2 [LEN] [IDX] [MINMATCHLEN n] [WITHMATCHLEN]: the longest common subsequence
//! of two string values, its length, or where its runs lie in each (IDX), as redis-server
//! 7 answers: the textbook dynamic-programming table of LCS lengths, then one walk back from
//! the ends that prefers dropping a byte of the second string on ties, so the subsequence
//! and its runs are the ones redis-server picks. Runs are listed last first, each as
//! `[[start1, end1], [start2, end2]]` (with its length after WITHMATCHLEN), those shorter
//! than MINMATCHLEN left out.
//!
//! The table holds a 4-byte length per pair of positions, so two values of n and m bytes
//! take (n + 1) × (m + 1) × 4 bytes for the command's run, on the door's thread: it is
//! refused, with redis-server's words, when that exceeds `[redis] bulk_bytes_max` (64 MiB
//! unless configured; two values of ~4,000 bytes).

use bytes::Bytes;

use super::arguments::{integer, is, SYNTAX_ERROR};
use crate::codec::Reply;
use crate::session::{Session, Step};

pub(super) fn run(session: &mut Session, arguments: &[Bytes]) -> Step {
    lcs(session, arguments).unwrap_or_else(|error| error).into()
}

fn lcs(session: &Session, arguments: &[Bytes]) -> Result<Reply, Reply> {
    let strings = |key: &Bytes| {
        super::strings::check_string(session, key)
            .map_err(|_| Reply::error("ERR The specified keys must contain string values"))
    };
    strings(&arguments[0])?;
    strings(&arguments[1])?;
    let (mut length_only, mut ranges, mut with_lengths, mut min_length) = (false, false, false, 0);
    let mut at = 2;
    while at < arguments.len() {
        let word = &arguments[at];
        match () {
            _ if is(word, "idx") => ranges = true,
            _ if is(word, "len") => length_only = true,
            _ if is(word, "withmatchlen") => with_lengths = true,
            _ if is(word, "minmatchlen") && at + 1 < arguments.len() => {
                min_length = integer(&arguments[at + 1])?.max(0) as usize;
                at += 1;
            }
            _ => return Err(Reply::error(SYNTAX_ERROR)),
        }
        at += 1;
    }
    if length_only && ranges {
        return Err(Reply::error(
            "ERR If you want both the length and indexes, please just use IDX.",
        ));
    }
    let a = session.keys.get(&arguments[0]).unwrap_or_default();
    let b = session.keys.get(&arguments[1]).unwrap_or_default();
    let cells = (a.len() + 1).saturating_mul(b.len() + 1);
    if cells.saturating_mul(4) > session.shared.config.bulk_bytes_max {
        return Err(Reply::error(
            "ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len",
        ));
    }
    let table = Table::of(&a, &b);
    let total = table.at(a.len(), b.len());
    if length_only {
        return Ok(Reply::Integer(total as i64));
    }
    let walk = table.walk_back(&a, &b);
    if !ranges {
        return Ok(Reply::Bulk(Bytes::from(walk.subsequence)));
    }
    let matches = walk
        .runs
        .into_iter()
        .filter(|run| run.length() >= min_length.max(1))
        .map(|run| {
            let mut answer = vec![pair(run.a_start, run.a_end), pair(run.b_start, run.b_end)];
            if with_lengths {
                answer.push(Reply::Integer(run.length() as i64));
            }
            Reply::Array(answer)
        })
        .collect();
    Ok(Reply::Map(vec![
        (Reply::text("matches"), Reply::Array(matches)),
        (Reply::text("len"), Reply::Integer(total as i64)),
    ]))
}

fn pair(start: usize, end: usize) -> Reply {
    Reply::Array(vec![
        Reply::Integer(start as i64),
        Reply::Integer(end as i64),
    ])
}

/// LCS lengths of every pair of prefixes: `at(i, j)` for the first `i` bytes of `a` and
/// the first `j` of `b`.
struct Table {
    width: usize,
    lengths: Vec<u32>,
}

/// One run of bytes common to both, contiguous in each (indexes inclusive).
struct Run {
    a_start: usize,
    a_end: usize,
    b_start: usize,
    b_end: usize,
}

impl Run {
    fn length(&self) -> usize {
        self.a_end - self.a_start + 1
    }
}

/// What the walk back finds: the subsequence, and its runs from the last to the first.
struct Walk {
    subsequence: Vec<u8>,
    runs: Vec<Run>,
}

impl Table {
    fn of(a: &[u8], b: &[u8]) -> Table {
        let width = b.len() + 1;
        let mut lengths = vec![0u32; (a.len() + 1) * width];
        for i in 1..=a.len() {
            for j in 1..=b.len() {
                lengths[i * width + j] = if a[i - 1] == b[j - 1] {
                    lengths[(i - 1) * width + j - 1] + 1
                } else {
                    lengths[(i - 1) * width + j].max(lengths[i * width + j - 1])
                };
            }
        }
        Table { width, lengths }
    }

    fn at(&self, i: usize, j: usize) -> u32 {
        self.lengths[i * self.width + j]
    }

    /// From the ends back: a byte both share at the current ends is taken (extending the
    /// run being walked); otherwise a byte of `a` is dropped when that keeps a longer LCS,
    /// else one of `b`, and the run being walked ends.
    fn walk_back(&self, a: &[u8], b: &[u8]) -> Walk {
        let mut subsequence = vec![0u8; self.at(a.len(), b.len()) as usize];
        let mut left = subsequence.len();
        let mut runs = Vec::new();
        let mut open: Option<Run> = None;
        let (mut i, mut j) = (a.len(), b.len());
        while i > 0 && j > 0 {
            if a[i - 1] == b[j - 1] {
                left -= 1;
                subsequence[left] = a[i - 1];
                match &mut open {
                    Some(run) => {
                        run.a_start -= 1;
                        run.b_start -= 1;
                    }
                    None => {
                        open = Some(Run {
                            a_start: i - 1,
                            a_end: i - 1,
                            b_start: j - 1,
                            b_end: j - 1,
                        })
                    }
                }
                i -= 1;
                j -= 1;
                // A run that reached the start of either string ends here.
                if i == 0 || j == 0 {
                    runs.extend(open.take());
                }
            } else {
                if self.at(i - 1, j) > self.at(i, j - 1) {
                    i -= 1;
                } else {
                    j -= 1;
                }
                runs.extend(open.take());
            }
        }
        Walk { subsequence, runs }
    }
}

#[cfg(test)]
mod tests {
    use super::Table;

    #[test]
    fn the_subsequence_and_its_runs_are_redis_servers() {
        // The example in Redis's documentation of LCS.
        let (a, b) = (b"ohmytext".as_slice(), b"mynewtext".as_slice());
        let walk = Table::of(a, b).walk_back(a, b);
        assert_eq!(walk.subsequence, b"mytext");
        let runs: Vec<_> = walk
            .runs
            .iter()
            .map(|r| (r.a_start, r.a_end, r.b_start, r.b_end))
            .collect();
        assert_eq!(runs, vec![(4, 7, 5, 8), (2, 3, 0, 1)]);
        let empty = Table::of(b"", b"abc").walk_back(b"", b"abc");
        assert!(empty.subsequence.is_empty() && empty.runs.is_empty());
    }
}
