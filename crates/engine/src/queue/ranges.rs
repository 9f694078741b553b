//! A set of u64 offsets stored as disjoint, non-adjacent half-open ranges. Queues keep their
//! waiting and finished offsets this way: a million messages enqueued in order are one range,
//! so memory follows the number of gaps, not the number of messages.

use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RangeSet {
    /// start → end (exclusive); ranges never overlap or touch.
    ranges: BTreeMap<u64, u64>,
    len: u64,
}

impl RangeSet {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// How many values are below `bound`.
    pub fn len_below(&self, bound: u64) -> u64 {
        self.ranges
            .range(..bound)
            .map(|(start, end)| (*end).min(bound) - start)
            .sum()
    }

    /// Number of disjoint ranges (what memory is proportional to).
    pub fn range_count(&self) -> usize {
        self.ranges.len()
    }

    pub fn contains(&self, value: u64) -> bool {
        self.ranges
            .range(..=value)
            .next_back()
            .is_some_and(|(_, end)| value < *end)
    }

    pub fn insert(&mut self, value: u64) {
        self.insert_range(value, value + 1);
    }

    /// Inserts `[start, end)`.
    pub fn insert_range(&mut self, mut start: u64, mut end: u64) {
        if start >= end {
            return;
        }
        // Merge with a range that starts before and reaches `start`.
        if let Some((&before_start, &before_end)) = self.ranges.range(..=start).next_back() {
            if before_end >= start {
                start = before_start;
                end = end.max(before_end);
                self.ranges.remove(&before_start);
                self.len -= before_end - before_start;
            }
        }
        // Swallow every range that starts inside or right at the end of the new one.
        let swallowed: Vec<(u64, u64)> = self
            .ranges
            .range(start..=end)
            .map(|(s, e)| (*s, *e))
            .collect();
        for (s, e) in swallowed {
            self.ranges.remove(&s);
            self.len -= e - s;
            end = end.max(e);
        }
        self.ranges.insert(start, end);
        self.len += end - start;
    }

    pub fn remove(&mut self, value: u64) -> bool {
        let Some((&start, &end)) = self.ranges.range(..=value).next_back() else {
            return false;
        };
        if value >= end {
            return false;
        }
        self.ranges.remove(&start);
        if start < value {
            self.ranges.insert(start, value);
        }
        if value + 1 < end {
            self.ranges.insert(value + 1, end);
        }
        self.len -= 1;
        true
    }

    /// The range `[start, end)` holding `value`.
    pub fn range_containing(&self, value: u64) -> Option<(u64, u64)> {
        self.ranges
            .range(..=value)
            .next_back()
            .filter(|(_, end)| value < **end)
            .map(|(start, end)| (*start, *end))
    }

    pub fn first(&self) -> Option<u64> {
        self.ranges.keys().next().copied()
    }

    /// Removes and returns up to `count` of the smallest values.
    pub fn pop_first(&mut self, count: usize) -> Vec<u64> {
        let mut taken = Vec::new();
        while taken.len() < count {
            let Some((&start, &end)) = self.ranges.iter().next() else {
                break;
            };
            let take = ((count - taken.len()) as u64).min(end - start);
            taken.extend(start..start + take);
            self.ranges.remove(&start);
            if start + take < end {
                self.ranges.insert(start + take, end);
            }
            self.len -= take;
        }
        taken
    }

    /// Removes every value below `floor`.
    pub fn remove_below(&mut self, floor: u64) {
        while let Some((&start, &end)) = self.ranges.iter().next() {
            if start >= floor {
                break;
            }
            self.ranges.remove(&start);
            self.len -= end - start;
            if end > floor {
                self.ranges.insert(floor, end);
                self.len += end - floor;
                break;
            }
        }
    }

    /// Values greater than `after` (all when `None`), ascending.
    pub fn iter_after(&self, after: Option<u64>) -> impl Iterator<Item = u64> + '_ {
        let from = after.map_or(0, |a| a + 1);
        let first = self
            .ranges
            .range(..=from)
            .next_back()
            .map(|(s, _)| *s)
            .unwrap_or(from);
        self.ranges
            .range(first..)
            .flat_map(move |(s, e)| (*s).max(from)..*e)
    }

    pub fn iter_ranges(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.ranges.iter().map(|(s, e)| (*s, *e))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;

    #[test]
    fn contiguous_inserts_stay_one_range() {
        let mut set = RangeSet::new();
        for value in 0..1_000_000 {
            set.insert(value);
        }
        assert_eq!(set.range_count(), 1);
        assert_eq!(set.len(), 1_000_000);
        assert_eq!(set.pop_first(3), vec![0, 1, 2]);
        assert!(set.remove(10));
        assert_eq!(set.range_count(), 2);
        set.remove_below(500);
        assert_eq!(set.first(), Some(500));
    }

    #[derive(Debug, Clone)]
    enum Operation {
        Insert(u64),
        InsertRange(u64, u64),
        Remove(u64),
        Pop(usize),
        RemoveBelow(u64),
    }

    fn operation() -> impl Strategy<Value = Operation> {
        prop_oneof![
            (0u64..64).prop_map(Operation::Insert),
            (0u64..64, 0u64..8).prop_map(|(s, n)| Operation::InsertRange(s, s + n)),
            (0u64..64).prop_map(Operation::Remove),
            (0usize..5).prop_map(Operation::Pop),
            (0u64..64).prop_map(Operation::RemoveBelow),
        ]
    }

    proptest! {
        #[test]
        fn behaves_like_a_btreeset(operations in proptest::collection::vec(operation(), 0..60)) {
            let mut set = RangeSet::new();
            let mut model = BTreeSet::new();
            for operation in operations {
                match operation {
                    Operation::Insert(v) => { set.insert(v); model.insert(v); }
                    Operation::InsertRange(s, e) => { set.insert_range(s, e); model.extend(s..e); }
                    Operation::Remove(v) => { prop_assert_eq!(set.remove(v), model.remove(&v)); }
                    Operation::Pop(n) => {
                        let expected: Vec<u64> = model.iter().take(n).copied().collect();
                        for v in &expected { model.remove(v); }
                        prop_assert_eq!(set.pop_first(n), expected);
                    }
                    Operation::RemoveBelow(f) => { set.remove_below(f); model.retain(|v| *v >= f); }
                }
                prop_assert_eq!(set.len(), model.len() as u64);
                for bound in [0, 7, 31, 64] {
                    prop_assert_eq!(set.len_below(bound), model.range(..bound).count() as u64);
                }
                let flat: Vec<u64> = set.iter_ranges().flat_map(|(s, e)| s..e).collect();
                prop_assert_eq!(flat, model.iter().copied().collect::<Vec<_>>());
                // Ranges never touch: each gap is at least one value.
                let ranges: Vec<(u64, u64)> = set.iter_ranges().collect();
                prop_assert!(ranges.windows(2).all(|w| w[0].1 < w[1].0));
            }
        }
    }
}
