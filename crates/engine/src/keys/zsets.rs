//! Sorted-set keys: members with scores, ordered by (score, member bytes), with Redis's
//! semantics (ZADD and its conditions, ranges by rank, score and member, ZPOPMIN/ZPOPMAX,
//! ZUNIONSTORE/ZINTERSTORE…). A sorted set exists while it has members: the change that
//! takes its last one deletes the key. A member added, rescored or removed writes one row.
//!
//! Ranks are counted along the ordered set, so a rank (ZRANK, ZRANGE by index) costs time
//! linear in it; a range by score starts where the score is, as Redis's skip list does.

use std::ops::Bound;

use bytes::Bytes;

use super::entry::{
    owned, scored_size, wrong_kind, Entry, Inner, KeyKind, Score, SortedSet, Value,
};
use super::sets::pick;
use super::{glob_match, stored, Durable, Keyspace, SetCondition};
use crate::engine::now_ms;
use crate::error::{EngineError, Result};

/// One end of a score range: `(1.5` excludes 1.5; -inf and +inf are inclusive ends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ScoreBound {
    Inclusive(f64),
    Exclusive(f64),
}

/// One end of a member range (`[a`, `(a`, `-`, `+`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LexBound {
    Inclusive(Bytes),
    Exclusive(Bytes),
    /// `-`: before every member.
    Min,
    /// `+`: after every member.
    Max,
}

/// Which members a range command takes. Ends are given lowest first; `reverse` in the
/// command walks them from the highest.
#[derive(Debug, Clone, PartialEq)]
pub enum ZRange {
    /// Ranks `start..=stop` along the walk (negative: from its end).
    Rank(i64, i64),
    Score(ScoreBound, ScoreBound),
    Lex(LexBound, LexBound),
}

/// A range query: which members, walked from the highest when `reverse`, and the
/// `(offset, count)` of a LIMIT (a negative count: all the rest).
#[derive(Debug, Clone, PartialEq)]
pub struct ZQuery {
    pub range: ZRange,
    pub reverse: bool,
    pub limit: Option<(usize, i64)>,
}

/// Which scores ZADD may change (its GT / LT).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ScoreUpdate {
    #[default]
    Any,
    /// Only to a higher score.
    Higher,
    /// Only to a lower score.
    Lower,
}

/// ZADD's options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ZAddOptions {
    /// NX (only new members) or XX (only existing ones).
    pub condition: SetCondition,
    pub update: ScoreUpdate,
    /// INCR: the score is added to the member's (ZINCRBY).
    pub increment: bool,
}

/// What ZADD did.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ZAdded {
    pub added: usize,
    /// Members already there whose score changed.
    pub updated: usize,
    /// With INCR: the member's score after, `None` when a condition left it alone.
    pub score: Option<f64>,
}

/// How ZUNIONSTORE and ZINTERSTORE combine one member's weighted scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Aggregate {
    #[default]
    Sum,
    Min,
    Max,
}

/// Which members ZUNION / ZINTER / ZDIFF keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZOperation {
    Union,
    Intersection,
    /// The first set's members that no other has.
    Difference,
}

/// A member and its score.
pub type Scored = (Bytes, f64);

impl Keyspace {
    /// Adds members or changes their scores (ZADD, ZINCRBY).
    pub fn zset_add(
        &self,
        key: &Bytes,
        pairs: Vec<(f64, Bytes)>,
        options: ZAddOptions,
    ) -> Result<Durable<ZAdded>> {
        let mut inner = self.lock();
        let old = match self.live(&mut inner, key, now_ms()) {
            None => None,
            Some(entry) if entry.kind() == KeyKind::SortedSet => Some(entry.size()),
            Some(_) => return Err(wrong_kind()),
        };
        if options.increment {
            // Checked before anything changes: a NaN sum changes nothing (Redis's error).
            let current = self.zset_score_locked(&mut inner, key, &pairs[0].1);
            if (current.unwrap_or(0.0) + pairs[0].0).is_nan() {
                return Err(EngineError::BadRequest(
                    "resulting score is not a number (NaN)".into(),
                ));
            }
        }
        let added: u64 = pairs.iter().map(|(_, member)| scored_size(member)).sum();
        inner.check_room(key, old, old.unwrap_or(0) + added)?;
        if old.is_none() {
            if options.condition == SetCondition::IfPresent {
                return Ok(Durable::ready(ZAdded::default()));
            }
            inner.insert(key.clone(), Entry::empty(KeyKind::SortedSet));
        }
        let mut writes = Vec::with_capacity(pairs.len() + 1);
        if old.is_none() {
            writes.push(stored::put_meta(stored::ZSETS_TABLE, key, None));
        }
        let outcome = self.edit(
            &mut inner,
            key,
            &mut writes,
            |set: &mut SortedSet, hex, writes| {
                let mut outcome = ZAdded::default();
                for (score, member) in pairs {
                    let current = set.scores.get(&member).copied();
                    let allowed = !matches!(
                        (current, options.condition),
                        (Some(_), SetCondition::IfAbsent) | (None, SetCondition::IfPresent)
                    );
                    if !allowed {
                        continue;
                    }
                    let score = match (options.increment, current) {
                        (true, Some(current)) => current + score,
                        _ => score,
                    };
                    let better = match (current, options.update) {
                        (None, _) | (_, ScoreUpdate::Any) => true,
                        (Some(current), ScoreUpdate::Higher) => score > current,
                        (Some(current), ScoreUpdate::Lower) => score < current,
                    };
                    if !better {
                        continue;
                    }
                    if options.increment {
                        outcome.score = Some(Score::new(score).0);
                    }
                    if current == Some(score) {
                        continue;
                    }
                    let member = owned(member);
                    writes.push(stored::put_scored(hex, &member, Score::new(score).0));
                    match set.put(member, score) {
                        None => outcome.added += 1,
                        Some(_) => outcome.updated += 1,
                    }
                }
                outcome
            },
        );
        let durable = self.durable(outcome, writes);
        // Clients blocked in BZPOPMIN / BZMPOP on this key take their members now.
        self.serve_waiting(&mut inner, key);
        Ok(durable)
    }

    fn zset_score_locked(&self, inner: &mut Inner, key: &[u8], member: &[u8]) -> Option<f64> {
        match &inner.entries.get(key)?.value {
            Value::SortedSet(set) => set.scores.get(member).copied(),
            _ => None,
        }
    }

    /// Removes `members`; returns how many were there (ZREM).
    pub fn zset_remove(&self, key: &Bytes, members: &[Bytes]) -> Result<Durable<usize>> {
        let mut inner = self.lock();
        if self.zset_of(&mut inner, key, now_ms())?.is_none() {
            return Ok(Durable::ready(0));
        }
        self.zset_take(&mut inner, key, members.to_vec())
            .map(|d| d.map(|taken| taken.len()))
    }

    /// Removes `members` from the sorted set under `key` (which exists); returns those that
    /// were there, with their scores.
    fn zset_take(
        &self,
        inner: &mut Inner,
        key: &Bytes,
        members: Vec<Bytes>,
    ) -> Result<Durable<Vec<Scored>>> {
        let mut writes = Vec::new();
        let taken = self.edit(
            inner,
            key,
            &mut writes,
            |set: &mut SortedSet, hex, writes| {
                let mut taken = Vec::new();
                for member in members {
                    if let Some(score) = set.take(&member) {
                        writes.push(stored::delete_scored(hex, &member));
                        taken.push((member, score));
                    }
                }
                taken
            },
        );
        Ok(self.durable(taken, writes))
    }

    /// The score of each of `members` (ZSCORE, ZMSCORE).
    pub fn zset_scores(&self, key: &[u8], members: &[Bytes]) -> Result<Vec<Option<f64>>> {
        let mut inner = self.lock();
        let set = self.zset_of(&mut inner, key, now_ms())?;
        Ok(members
            .iter()
            .map(|member| set.and_then(|set| set.scores.get(member).copied()))
            .collect())
    }

    /// How many members the sorted set has (ZCARD).
    pub fn zset_len(&self, key: &[u8]) -> Result<usize> {
        let mut inner = self.lock();
        Ok(self
            .zset_of(&mut inner, key, now_ms())?
            .map_or(0, |set| set.scores.len()))
    }

    /// The members `query` selects, in its order, with their scores (ZRANGE and the older
    /// ZRANGEBYSCORE, ZREVRANGE…).
    pub fn zset_range(&self, key: &[u8], query: &ZQuery) -> Result<Vec<Scored>> {
        let mut inner = self.lock();
        Ok(match self.zset_of(&mut inner, key, now_ms())? {
            Some(set) => select(set, query).collect(),
            None => Vec::new(),
        })
    }

    /// How many members `range` selects (ZCOUNT, ZLEXCOUNT).
    pub fn zset_count(&self, key: &[u8], range: ZRange) -> Result<usize> {
        let mut inner = self.lock();
        let query = ZQuery {
            range,
            reverse: false,
            limit: None,
        };
        Ok(match self.zset_of(&mut inner, key, now_ms())? {
            Some(set) => walk(set, &query).count(),
            None => 0,
        })
    }

    /// The rank of `member` (from the lowest, or from the highest when `reverse`) and its
    /// score (ZRANK, ZREVRANK).
    pub fn zset_rank(
        &self,
        key: &[u8],
        member: &[u8],
        reverse: bool,
    ) -> Result<Option<(usize, f64)>> {
        let mut inner = self.lock();
        let Some(set) = self.zset_of(&mut inner, key, now_ms())? else {
            return Ok(None);
        };
        let Some(&score) = set.scores.get(member) else {
            return Ok(None);
        };
        let below = set
            .order
            .range(..(Score(score), Bytes::copy_from_slice(member)))
            .count();
        let rank = if reverse {
            set.scores.len() - 1 - below
        } else {
            below
        };
        Ok(Some((rank, score)))
    }

    /// Removes the members `range` selects (ZREMRANGEBYRANK / BYSCORE / BYLEX); returns how
    /// many.
    pub fn zset_remove_range(&self, key: &Bytes, range: ZRange) -> Result<Durable<usize>> {
        let mut inner = self.lock();
        let query = ZQuery {
            range,
            reverse: false,
            limit: None,
        };
        let members: Vec<Bytes> = match self.zset_of(&mut inner, key, now_ms())? {
            Some(set) => walk(set, &query)
                .map(|(_, member)| member.clone())
                .collect(),
            None => return Ok(Durable::ready(0)),
        };
        self.zset_take(&mut inner, key, members)
            .map(|d| d.map(|taken| taken.len()))
    }

    /// Removes and returns up to `count` members with the lowest scores, or the highest
    /// when `highest` (ZPOPMIN, ZPOPMAX), in that order.
    pub fn zset_pop(
        &self,
        key: &Bytes,
        count: usize,
        highest: bool,
    ) -> Result<Durable<Vec<Scored>>> {
        let mut inner = self.lock();
        self.zset_pop_locked(&mut inner, key, count, highest)
    }

    /// Pops from the first of `keys` that holds a sorted set with members (ZMPOP); a key of
    /// another kind met before it is refused.
    pub fn zset_pop_first(
        &self,
        keys: &[Bytes],
        count: usize,
        highest: bool,
    ) -> Result<Durable<Option<super::Took>>> {
        let mut inner = self.lock();
        self.zset_pop_first_locked(&mut inner, keys, count, highest)
    }

    /// [`Keyspace::zset_pop_first`] under the lock (BZMPOP and BZPOPMIN take at once too).
    pub(super) fn zset_pop_first_locked(
        &self,
        inner: &mut Inner,
        keys: &[Bytes],
        count: usize,
        highest: bool,
    ) -> Result<Durable<Option<super::Took>>> {
        let now = now_ms();
        for key in keys {
            if self.zset_of(inner, key, now)?.is_none() {
                continue;
            }
            let popped = self.zset_pop_locked(inner, key, count, highest)?;
            return Ok(popped.map(|scored| Some(super::Took::scored(key.clone(), scored))));
        }
        Ok(Durable::ready(None))
    }

    /// [`Keyspace::zset_pop`] under the lock (a blocked client's pop too).
    pub(super) fn zset_pop_locked(
        &self,
        inner: &mut Inner,
        key: &Bytes,
        count: usize,
        highest: bool,
    ) -> Result<Durable<Vec<Scored>>> {
        let members: Vec<Bytes> = match self.zset_of(inner, key, now_ms())? {
            Some(set) if highest => set
                .order
                .iter()
                .rev()
                .take(count)
                .map(|(_, m)| m.clone())
                .collect(),
            Some(set) => set
                .order
                .iter()
                .take(count)
                .map(|(_, m)| m.clone())
                .collect(),
            None => return Ok(Durable::ready(Vec::new())),
        };
        self.zset_take(inner, key, members)
    }

    /// Members picked at random (ZRANDMEMBER), as [`Keyspace::set_random`] picks them.
    pub fn zset_random(&self, key: &[u8], count: i64) -> Result<Vec<Scored>> {
        let mut inner = self.lock();
        let Some(set) = self.zset_of(&mut inner, key, now_ms())? else {
            return Ok(Vec::new());
        };
        let all: Vec<&(Score, Bytes)> = set.order.iter().collect();
        Ok(pick(all.len(), count)
            .into_iter()
            .map(|at| (all[at].1.clone(), all[at].0 .0))
            .collect())
    }

    /// The sorted sets (or sets, each member scoring 1) under `keys` combined by
    /// `operation`, each key's scores multiplied by its weight (missing: 1) (ZUNION, ZINTER,
    /// ZDIFF), lowest score first.
    pub fn zset_combine(
        &self,
        operation: ZOperation,
        keys: &[Bytes],
        weights: &[f64],
        aggregate: Aggregate,
    ) -> Result<Vec<Scored>> {
        let mut inner = self.lock();
        self.zset_combine_locked(&mut inner, operation, keys, weights, aggregate)
    }

    /// [`Keyspace::zset_combine`] stored in `destination`, replacing what it held (an empty
    /// result deletes it); returns the stored set's size (ZUNIONSTORE, ZINTERSTORE,
    /// ZDIFFSTORE).
    pub fn zset_combine_store(
        &self,
        operation: ZOperation,
        destination: &Bytes,
        keys: &[Bytes],
        weights: &[f64],
        aggregate: Aggregate,
    ) -> Result<Durable<usize>> {
        let mut inner = self.lock();
        let members = self.zset_combine_locked(&mut inner, operation, keys, weights, aggregate)?;
        self.zset_store(&mut inner, destination, members)
    }

    /// The members `query` selects in `source`, stored in `destination` (ZRANGESTORE).
    pub fn zset_range_store(
        &self,
        destination: &Bytes,
        source: &[u8],
        query: &ZQuery,
    ) -> Result<Durable<usize>> {
        let mut inner = self.lock();
        let members = match self.zset_of(&mut inner, source, now_ms())? {
            Some(set) => select(set, query).collect(),
            None => Vec::new(),
        };
        self.zset_store(&mut inner, destination, members)
    }

    pub(super) fn zset_store(
        &self,
        inner: &mut Inner,
        destination: &Bytes,
        members: Vec<Scored>,
    ) -> Result<Durable<usize>> {
        let count = members.len();
        let mut set = SortedSet::default();
        for (member, score) in members {
            set.put(member, score);
        }
        let entry = (count > 0).then(|| Entry {
            value: Value::SortedSet(Box::new(set)),
            deadline: None,
            version: 0,
        });
        Ok(match self.store_locked(inner, destination, entry)? {
            Some(waiter) => Durable::new(count, waiter),
            None => Durable::ready(count),
        })
    }

    fn zset_combine_locked(
        &self,
        inner: &mut Inner,
        operation: ZOperation,
        keys: &[Bytes],
        weights: &[f64],
        aggregate: Aggregate,
    ) -> Result<Vec<Scored>> {
        let now = now_ms();
        let mut sources: Vec<Option<Vec<Scored>>> = Vec::with_capacity(keys.len());
        for (at, key) in keys.iter().enumerate() {
            let weight = weights.get(at).copied().unwrap_or(1.0);
            let weighted = |score: f64| {
                let product = score * weight;
                if product.is_nan() {
                    0.0
                } else {
                    product
                }
            };
            sources.push(match self.live(inner, key, now) {
                None => None,
                Some(Entry {
                    value: Value::SortedSet(set),
                    ..
                }) => Some(
                    set.order
                        .iter()
                        .map(|(s, m)| (m.clone(), weighted(s.0)))
                        .collect(),
                ),
                Some(Entry {
                    value: Value::Set(set),
                    ..
                }) => Some(
                    set.members
                        .iter()
                        .map(|m| (m.clone(), weighted(1.0)))
                        .collect(),
                ),
                Some(_) => return Err(wrong_kind()),
            });
        }
        let combine = |a: f64, b: f64| match aggregate {
            Aggregate::Sum => {
                let sum = a + b;
                if sum.is_nan() {
                    0.0
                } else {
                    sum
                }
            }
            Aggregate::Min => a.min(b),
            Aggregate::Max => a.max(b),
        };
        let mut sources = sources.into_iter();
        let mut result: indexmap::IndexMap<Bytes, f64> = sources
            .next()
            .flatten()
            .unwrap_or_default()
            .into_iter()
            .collect();
        for source in sources {
            let source: indexmap::IndexMap<Bytes, f64> =
                source.unwrap_or_default().into_iter().collect();
            match operation {
                ZOperation::Union => {
                    for (member, score) in source {
                        let merged = match result.get(&member) {
                            Some(&current) => combine(current, score),
                            None => score,
                        };
                        result.insert(member, merged);
                    }
                }
                ZOperation::Intersection => {
                    result.retain(|member, _| source.contains_key(member));
                    for (member, current) in result.iter_mut() {
                        *current = combine(*current, source[member]);
                    }
                }
                ZOperation::Difference => result.retain(|member, _| !source.contains_key(member)),
            }
        }
        let mut members: Vec<Scored> = result.into_iter().collect();
        members
            .sort_by(|(m1, s1), (m2, s2)| Score::new(*s1).cmp(&Score::new(*s2)).then(m1.cmp(m2)));
        Ok(members)
    }

    /// Up to `count` members from `cursor` matching `pattern` (ZSCAN), lowest score first, and
    /// the next cursor (0: done). A sorted set Redis would hold compact (`layout.rs`) is answered whole.
    pub fn zset_scan(
        &self,
        key: &[u8],
        cursor: u64,
        pattern: Option<&[u8]>,
        count: usize,
    ) -> Result<(u64, Vec<Scored>)> {
        let mut inner = self.lock();
        let Some(set) = self.zset_of(&mut inner, key, now_ms())? else {
            return Ok((0, Vec::new()));
        };
        let matches = |member: &Bytes| pattern.is_none_or(|pattern| glob_match(pattern, member));
        if set.layout.is_compact() {
            let all = set.order.iter().filter(|(_, member)| matches(member));
            return Ok((0, all.map(|(score, m)| (m.clone(), score.0)).collect()));
        }
        // The cursor is a score (`score_cursor`): pages go on from it, and a page takes every
        // member of its last score, so members removed meanwhile move nothing past the
        // cursor and every member present for the whole scan is returned.
        let from = (cursor != 0).then(|| Score(score_of_cursor(cursor)));
        let mut members = match from {
            Some(score) => set.order.range((score, Bytes::new())..),
            None => set.order.range(..),
        }
        .peekable();
        let (mut found, mut taken, mut last) = (Vec::new(), 0, None);
        while let Some((score, member)) = members.peek() {
            if taken >= count.max(1) && last != Some(*score) {
                break;
            }
            if matches(member) {
                found.push((member.clone(), score.0));
            }
            taken += 1;
            last = Some(*score);
            members.next();
        }
        let next = members.peek().map_or(0, |(score, _)| score_cursor(score.0));
        Ok((next, found))
    }

    /// The sorted set under `key`, `None` when missing; another kind is refused.
    pub(super) fn zset_of<'a>(
        &self,
        inner: &'a mut Inner,
        key: &[u8],
        now: i64,
    ) -> Result<Option<&'a SortedSet>> {
        match self.live(inner, key, now) {
            None => Ok(None),
            Some(Entry {
                value: Value::SortedSet(set),
                ..
            }) => Ok(Some(set)),
            Some(_) => Err(wrong_kind()),
        }
    }
}

/// The members `query` selects, with its LIMIT applied.
fn select<'a>(set: &'a SortedSet, query: &ZQuery) -> impl Iterator<Item = Scored> + 'a {
    let (offset, count) = query.limit.unwrap_or((0, -1));
    let count = usize::try_from(count).unwrap_or(usize::MAX);
    walk(set, query)
        .skip(offset)
        .take(count)
        .map(|(score, member)| (member.clone(), score.0))
}

type Walk<'a> = Box<dyn Iterator<Item = &'a (Score, Bytes)> + 'a>;

/// The members `query`'s range selects, in its direction, without its LIMIT.
fn walk<'a>(set: &'a SortedSet, query: &ZQuery) -> Walk<'a> {
    let reverse = query.reverse;
    match &query.range {
        ZRange::Rank(start, stop) => {
            let len = set.order.len() as i64;
            let start = if *start < 0 { start + len } else { *start }.max(0);
            let stop = if *stop < 0 { stop + len } else { *stop }.min(len - 1);
            if start > stop || start >= len {
                return Box::new(std::iter::empty());
            }
            let (skip, take) = (start as usize, (stop - start + 1) as usize);
            if reverse {
                Box::new(set.order.iter().rev().skip(skip).take(take))
            } else {
                Box::new(set.order.iter().skip(skip).take(take))
            }
        }
        ZRange::Score(min, max) => {
            let (min, max) = (*min, *max);
            let above_min = move |score: f64| match min {
                ScoreBound::Inclusive(bound) => score >= bound,
                ScoreBound::Exclusive(bound) => score > bound,
            };
            let below_max = move |score: f64| match max {
                ScoreBound::Inclusive(bound) => score <= bound,
                ScoreBound::Exclusive(bound) => score < bound,
            };
            let low = match min {
                ScoreBound::Inclusive(bound) | ScoreBound::Exclusive(bound) => bound,
            };
            let high = match max {
                ScoreBound::Inclusive(bound) | ScoreBound::Exclusive(bound) => bound,
            };
            if reverse {
                // Everything scoring at most `high` (every member of a score sorts below the
                // next score up).
                let end = if high == f64::INFINITY {
                    Bound::Unbounded
                } else {
                    Bound::Excluded((Score::new(high.next_up()), Bytes::new()))
                };
                Box::new(
                    set.order
                        .range((Bound::Unbounded, end))
                        .rev()
                        .skip_while(move |(score, _)| !below_max(score.0))
                        .take_while(move |(score, _)| above_min(score.0)),
                )
            } else {
                let start = (Score::new(low), Bytes::new());
                Box::new(
                    set.order
                        .range(start..)
                        .skip_while(move |(score, _)| !above_min(score.0))
                        .take_while(move |(score, _)| below_max(score.0)),
                )
            }
        }
        ZRange::Lex(min, max) => {
            let (min, max) = (min.clone(), max.clone());
            let inside = move |member: &Bytes| {
                let above = match &min {
                    LexBound::Min => true,
                    LexBound::Max => false,
                    LexBound::Inclusive(bound) => member >= bound,
                    LexBound::Exclusive(bound) => member > bound,
                };
                let below = match &max {
                    LexBound::Min => false,
                    LexBound::Max => true,
                    LexBound::Inclusive(bound) => member <= bound,
                    LexBound::Exclusive(bound) => member < bound,
                };
                above && below
            };
            if reverse {
                Box::new(set.order.iter().rev().filter(move |(_, m)| inside(m)))
            } else {
                Box::new(set.order.iter().filter(move |(_, m)| inside(m)))
            }
        }
    }
}

/// A score as a ZSCAN cursor: its bits arranged so that cursors order as scores do (never 0,
/// the cursor that starts a scan: that would be a NaN, which no score is).
fn score_cursor(score: f64) -> u64 {
    let bits = score.to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | 1 << 63
    }
}

/// The score a ZSCAN cursor names. A cursor no page answered may name a NaN, which as a
/// bound sorts beyond every score on its side (`f64::total_cmp`): past the end, or from the
/// start.
fn score_of_cursor(cursor: u64) -> f64 {
    f64::from_bits(if cursor >> 63 == 1 {
        cursor & !(1 << 63)
    } else {
        !cursor
    })
}

#[cfg(test)]
pub(super) fn score_cursor_for_tests(score: f64) -> u64 {
    score_cursor(score)
}
