//! Redis's compact encodings, followed: which form redis-server would hold each list,
//! hash, set and sorted set in (`listpack`, `intset`, or its general structure), by
//! redis-server's own rules and its tuning parameters (`hash-max-listpack-entries` and kin).
//!
//! Omnibus holds every collection one way; what follows the encoding is what Redis users can
//! see of it: OBJECT ENCODING's answer, and HSCAN/SSCAN/ZSCAN answering a compact
//! collection whole in one call. The form is a state, not a function of the contents,
//! because Redis converts one way: a hash that once had a field longer than
//! `hash-max-listpack-value` stays a hashtable when that field is deleted. The state moves
//! after each change ([`settle`], called where a key is written), in constant time: a list's
//! listpack bytes are kept as elements come and go (`List::packed`), a hash, set or sorted
//! set keeps the length of the longest element ever written (`longest`: Redis checks each
//! element as it is written, and a long one deleted leaves the general structure in place),
//! and an intset's new members are the ones past its count at the last change. One
//! difference: a lowered `*-max-listpack-value` converts a collection holding a longer
//! element at its next write, where Redis converts it only when a longer one is written.
//!
//! Lists follow Redis 7.2+: a listpack becomes a quicklist when it outgrows
//! `list-max-listpack-size` (elements when positive, bytes of the listpack when negative:
//! -1…-5 for 4…64 KiB), and a quicklist becomes a listpack again once it fits in half of
//! that. The listpack's bytes are counted element by element as Redis encodes them
//! (`listpack_entry_bytes`).

use super::entry::{Entry, List, Value};

/// The parameters (as Redis names them) that decide each collection's form. Defaults are
/// redis-server 7.4's built-in ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayoutLimits {
    /// `hash-max-listpack-entries`
    pub hash_entries: u64,
    /// `hash-max-listpack-value`
    pub hash_value: u64,
    /// `list-max-listpack-size`: elements when positive (0 counts as 1), bytes of the
    /// listpack when negative (-1 4 KiB … -5 64 KiB; below -5 counts as -5).
    pub list_size: i64,
    /// `set-max-intset-entries`
    pub set_intset_entries: u64,
    /// `set-max-listpack-entries`
    pub set_entries: u64,
    /// `set-max-listpack-value`
    pub set_value: u64,
    /// `zset-max-listpack-entries`
    pub zset_entries: u64,
    /// `zset-max-listpack-value`
    pub zset_value: u64,
}

impl Default for LayoutLimits {
    fn default() -> LayoutLimits {
        LayoutLimits {
            hash_entries: 512,
            hash_value: 64,
            list_size: -2,
            set_intset_entries: 512,
            set_entries: 128,
            set_value: 64,
            zset_entries: 128,
            zset_value: 64,
        }
    }
}

/// The form a collection is in (the names are [`encoding`]'s).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) enum Layout {
    /// The most compact form: `intset` for a set (integers only), `listpack` for the others.
    #[default]
    Smallest,
    /// `listpack` (a set that outgrew `intset`).
    Packed,
    /// `listpackex`: a compact hash that has had a field with a deadline (Redis 7.4).
    PackedWithDeadlines,
    /// The general structure: `quicklist`, `hashtable`, `skiplist`.
    Spread,
}

impl Layout {
    /// Whether Redis would hold the collection compact (HSCAN and kin answer it whole).
    pub(super) fn is_compact(self) -> bool {
        self != Layout::Spread
    }
}

/// Moves `entry`'s collection to the form redis-server would have it in after a change.
pub(super) fn settle(entry: &mut Entry, limits: &LayoutLimits) {
    match &mut entry.value {
        Value::String(_) => {}
        Value::List(list) => {
            let len = list.items.len() as u64;
            list.layout = list_layout(
                list.layout,
                len,
                LISTPACK_HEADER + list.packed,
                limits.list_size,
            );
        }
        Value::Hash(hash) => {
            let layout = hash.layout;
            hash.layout = if !layout.is_compact()
                || hash.fields.len() as u64 > limits.hash_entries
                || hash.longest as u64 > limits.hash_value
            {
                Layout::Spread
            } else if layout == Layout::PackedWithDeadlines || hash.deadlines.is_some() {
                Layout::PackedWithDeadlines
            } else {
                Layout::Packed
            };
        }
        Value::Set(set) => {
            let layout = set.layout;
            let len = set.members.len() as u64;
            // An intset's members were all integers at the last settle; members are added at
            // the end (and a change adds or removes, never both), so only those past the
            // count then are new.
            let from = set.settled.min(set.members.len());
            set.settled = set.members.len();
            let mut new = set.members.get_range(from..).into_iter().flatten();
            set.layout = if layout == Layout::Smallest
                && len <= limits.set_intset_entries
                && new.all(|member| integer(member).is_some())
            {
                Layout::Smallest
            } else if layout.is_compact()
                && len <= limits.set_entries
                && set.longest as u64 <= limits.set_value
            {
                Layout::Packed
            } else {
                Layout::Spread
            };
        }
        Value::SortedSet(set) => {
            let compact = set.layout.is_compact()
                && set.scores.len() as u64 <= limits.zset_entries
                && set.longest as u64 <= limits.zset_value;
            set.layout = if compact {
                Layout::Packed
            } else {
                Layout::Spread
            };
        }
    }
}

/// Redis's name for `entry`'s form (OBJECT ENCODING).
pub(super) fn encoding(entry: &Entry) -> &'static str {
    match &entry.value {
        Value::String(value) => {
            match (integer(value).is_some(), value.len()) {
                (true, _) => "int",
                // An embedded string fits one 64-byte allocation with its header.
                (false, 0..=44) => "embstr",
                _ => "raw",
            }
        }
        Value::List(list) if list.layout.is_compact() => "listpack",
        Value::List(_) => "quicklist",
        Value::Hash(hash) => match hash.layout {
            Layout::Spread => "hashtable",
            Layout::PackedWithDeadlines => "listpackex",
            _ => "listpack",
        },
        Value::Set(set) => match set.layout {
            Layout::Smallest => "intset",
            Layout::Spread => "hashtable",
            _ => "listpack",
        },
        Value::SortedSet(set) if set.layout.is_compact() => "listpack",
        Value::SortedSet(_) => "skiplist",
    }
}

/// `bytes` as the integer Redis would store it as (decimal, no sign but `-`, no leading
/// zero, within 64 bits), or `None`.
pub(super) fn integer(bytes: &[u8]) -> Option<i64> {
    // At most 20 characters (`-9223372036854775808`), starting with a digit or `-`.
    let first = *bytes.first()?;
    if bytes.len() > 20 || !(first.is_ascii_digit() || first == b'-') {
        return None;
    }
    let text = std::str::from_utf8(bytes).ok()?;
    let number = text.parse::<i64>().ok()?;
    let canonical = !text.starts_with('+')
        && !(text.len() > 1 && (text.starts_with('0') || text.starts_with("-0")));
    canonical.then_some(number)
}

/// (byte limit, element limit) of one packed node for `list-max-listpack-size` `fill`;
/// `u64::MAX` where there is none.
fn node_limits(fill: i64) -> (u64, u64) {
    if fill >= 0 {
        // A count limit: 0 counts as 1 (a node holds at least one element).
        (u64::MAX, fill.clamp(1, 1 << 15) as u64)
    } else {
        let level = (-fill - 1).min(4) as u32;
        (4096 << level, u64::MAX)
    }
}

/// The most a packed node may hold in bytes when the limit is a count.
const SIZE_SAFETY_LIMIT: u64 = 8192;

/// The bytes a packed node may hold: its limit, or when the limit is a count, the safety
/// limit (an element larger than that gets a "plain" node of its own).
fn node_bytes(size_limit: u64) -> u64 {
    if size_limit == u64::MAX {
        SIZE_SAFETY_LIMIT
    } else {
        size_limit
    }
}

/// Before LSET replaces an element of `list` with `element`: Redis checks a listpack as if
/// the element were added (one more element, its bytes more), and converts on that.
pub(super) fn before_replacing(list: &mut List, element: &[u8], fill: i64) {
    if !list.layout.is_compact() {
        return;
    }
    let (size_limit, count_limit) = node_limits(fill);
    let node_bytes = node_bytes(size_limit);
    let bytes = LISTPACK_HEADER + list.packed + element.len() as u64;
    if list.items.len() as u64 + 1 > count_limit || bytes > node_bytes {
        list.layout = Layout::Spread;
    }
}

/// The bytes of an empty listpack: its header (total bytes, element count) and end mark.
const LISTPACK_HEADER: u64 = 7;

/// A list's form after a change: `len` elements, `bytes` of listpack.
fn list_layout(layout: Layout, len: u64, bytes: u64, fill: i64) -> Layout {
    let (size_limit, count_limit) = node_limits(fill);
    let node_bytes = node_bytes(size_limit);
    if layout.is_compact() {
        let outgrown = len > count_limit || bytes > node_bytes;
        return if outgrown {
            Layout::Spread
        } else {
            Layout::Packed
        };
    }
    // Back to a listpack only when it fits in half a node (of elements or bytes) and in one
    // node: then no element is too large for a packed node either.
    let fits_half = len <= count_limit / 2
        && bytes <= node_bytes
        && (size_limit == u64::MAX || bytes <= size_limit / 2);
    if fits_half {
        Layout::Packed
    } else {
        Layout::Spread
    }
}

/// The bytes one element takes in a listpack: its encoding and data, then the length of
/// both written backwards (1 byte per 7 bits).
pub(super) fn listpack_entry_bytes(element: &[u8]) -> u64 {
    let encoded = match integer(element) {
        Some(n) if (0..=127).contains(&n) => 1,
        Some(n) if (-4096..4096).contains(&n) => 2,
        Some(n) if i16::try_from(n).is_ok() => 3,
        Some(n) if (-(1 << 23)..(1 << 23)).contains(&n) => 4,
        Some(n) if i32::try_from(n).is_ok() => 5,
        Some(_) => 9,
        None => {
            let len = element.len() as u64;
            len + match len {
                0..=63 => 1,
                64..=4095 => 2,
                _ => 5,
            }
        }
    };
    let back = match encoded {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        2_097_152..=268_435_455 => 4,
        _ => 5,
    };
    encoded + back
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (elements, listpack bytes) of a list of `elements`.
    fn sized(elements: &[&str]) -> (u64, u64) {
        let mut list = List::new();
        for element in elements {
            list.count_in(element.as_bytes());
        }
        (elements.len() as u64, LISTPACK_HEADER + list.packed)
    }

    fn layout_of(layout: Layout, elements: &[&str], fill: i64) -> Layout {
        let (len, bytes) = sized(elements);
        list_layout(layout, len, bytes, fill)
    }

    #[test]
    fn integers_are_what_redis_stores_as_integers() {
        assert_eq!(integer(b"127"), Some(127));
        assert_eq!(integer(b"-9223372036854775808"), Some(i64::MIN));
        for not in ["9223372036854775808", "01", "+1", "-0", " 1", "1.0", ""] {
            assert_eq!(integer(not.as_bytes()), None, "{not}");
        }
        assert_eq!(integer(b"0"), Some(0));
    }

    #[test]
    fn listpack_entries_are_sized_as_redis_encodes_them() {
        assert_eq!(listpack_entry_bytes(b"127"), 2);
        assert_eq!(listpack_entry_bytes(b"32767"), 4);
        assert_eq!(listpack_entry_bytes(b"2147483647"), 6);
        assert_eq!(listpack_entry_bytes(b"9223372036854775807"), 10);
        assert_eq!(listpack_entry_bytes(b"hello"), 7);
        assert_eq!(listpack_entry_bytes(&[b'x'; 100]), 103);
        assert_eq!(listpack_entry_bytes(&[b'x'; 5000]), 5007);
    }

    #[test]
    fn a_list_outgrows_its_node_and_comes_back_under_half_of_it() {
        // Three elements a node: four make a quicklist, one is a listpack again.
        let layout = layout_of(Layout::Smallest, &["a", "b", "c"], 3);
        assert_eq!(layout, Layout::Packed);
        let layout = layout_of(layout, &["a", "b", "c", "d"], 3);
        assert_eq!(layout, Layout::Spread);
        assert_eq!(layout_of(layout, &["a", "b"], 3), Layout::Spread);
        assert_eq!(layout_of(layout, &["a"], 3), Layout::Packed);
        // 4 KiB nodes: an 8 KiB element converts, and keeps it a quicklist while it stays.
        let large = "x".repeat(8192);
        let layout = layout_of(Layout::Packed, &["a", &large], -1);
        assert_eq!(layout, Layout::Spread);
        assert_eq!(layout_of(layout, &[&large], -1), Layout::Spread);
        assert_eq!(layout_of(layout, &["c"], -1), Layout::Packed);
        // Below -5 counts as -5 (64 KiB); 0 counts as 1.
        let big = "x".repeat(60_000);
        assert_eq!(layout_of(Layout::Smallest, &[&big], -6), Layout::Packed);
        let bigger = [big.as_str(), &"x".repeat(5536)];
        assert_eq!(layout_of(Layout::Packed, &bigger, -6), Layout::Spread);
        assert_eq!(layout_of(Layout::Smallest, &["a"], 0), Layout::Packed);
        assert_eq!(layout_of(Layout::Packed, &["a", "b"], 0), Layout::Spread);
    }
}
