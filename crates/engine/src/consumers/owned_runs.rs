//! How an owned-pending consumer stores the entries of one read: one *run* key for all of
//! them instead of one key each (`owned.rs`).
//!
//! A Redis group's `XREADGROUP COUNT 1000` made 1,000 entries pending, and the `XACK` of
//! them deleted 1,000 keys: two state-store B-tree updates per message, most of what the
//! state store's committer did on that path. A read now writes one key,
//!
//! | key (after `<stream>␟<consumer>␟`) | value |
//! |---|---|
//! | `r<first:20>` | u64 BE deliveries, i64 BE last delivery ms, u32 BE range count, that many (u64 BE start, u64 BE end) offset ranges, then the owner's name (UTF-8) |
//! | `r<first:20>x<offset:20>` | empty: this offset of the run is no longer pending there (acked, claimed, its owner deleted) |
//!
//! and an entry that leaves its run writes a tombstone under it — unless it is the run's last
//! live entry, when one prefix delete removes the run and its tombstones. An ack of a whole
//! read is then one delete. Entries taken out of a run by a claim are stored on their own
//! (`p<offset:20>`, as before runs existed), since they no longer share an owner and count
//! with the rest. Loading subtracts the tombstones from each run; `p` keys written by an
//! older version load as they always did.
//!
//! A tombstone whose run is already gone (two acks of one run racing: the one that emptied
//! it committed first) is ignored at load; it is removed with the consumer.

use std::collections::{BTreeMap, BTreeSet};

use omnibus_storage::StateWrite;

use super::owned::OWNED_TABLE;
use crate::queue::keys::{push_padded, PADDED_DIGITS};

/// Offsets one run key holds at most; a larger read is stored as several runs. Bounds the
/// value: at worst (no two offsets adjacent) 16 bytes per offset, 64 KiB.
pub(super) const RUN_OFFSETS_MAX: usize = 4_096;

/// `<stream>␟<consumer>␟r<first:20>`: the run's key, and the prefix of its tombstones.
pub(super) fn run_key(stream: &str, name: &str, first: u64) -> String {
    let mut key = String::with_capacity(stream.len() + name.len() + 4 + 2 * PADDED_DIGITS + 1);
    key.push_str(stream);
    key.push('\u{1f}');
    key.push_str(name);
    key.push('\u{1f}');
    key.push('r');
    push_padded(&mut key, first);
    key
}

fn tombstone_key(stream: &str, name: &str, first: u64, offset: u64) -> String {
    let mut key = run_key(stream, name, first);
    key.push('x');
    push_padded(&mut key, offset);
    key
}

/// One run as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct StoredRun {
    pub(super) deliveries: u64,
    pub(super) last_ms: i64,
    pub(super) offsets: Vec<u64>,
    pub(super) owner: String,
}

/// The run write for `offsets` (ascending) delivered to `owner`.
pub(super) fn put_run(
    (stream, name): (&str, &str),
    owner: &str,
    deliveries: u64,
    last_ms: i64,
    offsets: &[u64],
) -> StateWrite {
    let mut ranges: Vec<(u64, u64)> = Vec::new();
    for &offset in offsets {
        match ranges.last_mut() {
            Some((_, end)) if *end == offset => *end += 1,
            _ => ranges.push((offset, offset + 1)),
        }
    }
    let mut value = Vec::with_capacity(20 + 16 * ranges.len() + owner.len());
    value.extend_from_slice(&deliveries.to_be_bytes());
    value.extend_from_slice(&last_ms.to_be_bytes());
    value.extend_from_slice(&(ranges.len() as u32).to_be_bytes());
    for (start, end) in ranges {
        value.extend_from_slice(&start.to_be_bytes());
        value.extend_from_slice(&end.to_be_bytes());
    }
    value.extend_from_slice(owner.as_bytes());
    StateWrite::Put {
        table: OWNED_TABLE,
        key: run_key(stream, name, offsets[0]),
        value,
    }
}

fn be_u64(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.get(..8)?.try_into().ok()?))
}

/// A stored run's value; `None` if it is not one.
pub(super) fn decode_run(value: &[u8]) -> Option<StoredRun> {
    let deliveries = be_u64(value)?;
    let last_ms = be_u64(value.get(8..)?)? as i64;
    let count = u32::from_be_bytes(value.get(16..20)?.try_into().ok()?) as usize;
    let ranges_end = 20usize.checked_add(count.checked_mul(16)?)?;
    let ranges = value.get(20..ranges_end)?;
    let mut offsets = Vec::new();
    for range in ranges.chunks_exact(16) {
        let (start, end) = (be_u64(range)?, be_u64(&range[8..])?);
        if end < start || offsets.len() + (end - start) as usize > RUN_OFFSETS_MAX {
            return None;
        }
        offsets.extend(start..end);
    }
    let owner = std::str::from_utf8(&value[ranges_end..]).ok()?.to_string();
    Some(StoredRun {
        deliveries,
        last_ms,
        offsets,
        owner,
    })
}

/// A key under a run: the run itself (`None`) or one of its tombstones (`Some(offset)`), with
/// the run's first offset. `rest` is the part of the key after `r`.
pub(super) fn parse_run_key(rest: &str) -> Option<(u64, Option<u64>)> {
    let first = rest.get(..PADDED_DIGITS)?.parse().ok()?;
    match rest.get(PADDED_DIGITS..)? {
        "" => Some((first, None)),
        tail => Some((first, Some(tail.strip_prefix('x')?.parse().ok()?))),
    }
}

/// Entries leave their runs (`(offset, run)`): a tombstone each, or one delete of a run they
/// empty. `live` counts each run's entries still pending in it.
pub(super) fn leave_runs(
    (stream, name): (&str, &str),
    live: &mut BTreeMap<u64, usize>,
    leaving: &[(u64, u64)],
    writes: &mut Vec<StateWrite>,
) {
    let mut by_run: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for &(offset, run) in leaving {
        by_run.entry(run).or_default().push(offset);
    }
    for (run, offsets) in by_run {
        let Some(count) = live.get_mut(&run) else {
            continue;
        };
        *count = count.saturating_sub(offsets.len());
        if *count == 0 {
            live.remove(&run);
            writes.push(StateWrite::DeletePrefix {
                table: OWNED_TABLE,
                prefix: run_key(stream, name, run),
            });
            continue;
        }
        writes.extend(offsets.into_iter().map(|offset| StateWrite::Put {
            table: OWNED_TABLE,
            key: tombstone_key(stream, name, run, offset),
            value: Vec::new(),
        }));
    }
}

/// At load: the offsets of each run still pending in it (tombstones subtracted).
pub(super) fn live_offsets(
    runs: BTreeMap<u64, StoredRun>,
    tombstones: &BTreeMap<u64, BTreeSet<u64>>,
) -> impl Iterator<Item = (u64, StoredRun)> + '_ {
    runs.into_iter().filter_map(move |(first, mut run)| {
        if let Some(gone) = tombstones.get(&first) {
            run.offsets.retain(|offset| !gone.contains(offset));
        }
        (!run.offsets.is_empty()).then_some((first, run))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_round_trips_and_its_keys_sort_under_it() {
        let offsets = [3, 4, 5, 9, 11, 12];
        let StateWrite::Put { key, value, .. } = put_run(("s", "g"), "alice", 2, 77, &offsets)
        else {
            panic!("a put");
        };
        assert_eq!(key, run_key("s", "g", 3));
        assert_eq!(value.len(), 20 + 3 * 16 + 5, "three ranges");
        let run = decode_run(&value).unwrap();
        assert_eq!(
            run,
            StoredRun {
                deliveries: 2,
                last_ms: 77,
                offsets: offsets.to_vec(),
                owner: "alice".into(),
            }
        );
        let tombstone = tombstone_key("s", "g", 3, 9);
        assert!(tombstone.starts_with(&key) && tombstone > key && tombstone < run_key("s", "g", 4));
        let rest = |key: &str| key.split_once("\u{1f}r").unwrap().1.to_string();
        assert_eq!(parse_run_key(&rest(&key)), Some((3, None)));
        assert_eq!(parse_run_key(&rest(&tombstone)), Some((3, Some(9))));
        assert_eq!(decode_run(&value[..30]), None, "cut short");
    }

    #[test]
    fn leaving_writes_tombstones_until_the_last_entry_deletes_the_run() {
        let mut live = BTreeMap::from([(0, 3), (10, 2)]);
        let mut writes = Vec::new();
        leave_runs(
            ("s", "g"),
            &mut live,
            &[(1, 0), (10, 10), (11, 10)],
            &mut writes,
        );
        assert_eq!(live, BTreeMap::from([(0, 2)]));
        assert_eq!(
            writes,
            vec![
                StateWrite::Put {
                    table: OWNED_TABLE,
                    key: tombstone_key("s", "g", 0, 1),
                    value: Vec::new(),
                },
                StateWrite::DeletePrefix {
                    table: OWNED_TABLE,
                    prefix: run_key("s", "g", 10),
                },
            ]
        );
        let runs = BTreeMap::from([(
            0,
            StoredRun {
                deliveries: 1,
                last_ms: 0,
                offsets: vec![0, 1, 2],
                owner: "a".into(),
            },
        )]);
        let tombstones = BTreeMap::from([(0, BTreeSet::from([1]))]);
        let loaded: Vec<_> = live_offsets(runs, &tombstones)
            .map(|(_, run)| run.offsets)
            .collect();
        assert_eq!(loaded, vec![vec![0, 2]]);
    }
}
