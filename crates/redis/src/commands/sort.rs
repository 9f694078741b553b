//! SORT and SORT_RO: the elements of a list, set or sorted set sorted as numbers (or as
//! bytes with ALPHA), by their own values or by values looked up through a `BY` pattern
//! (`weight_*`, `item:*->price`), with LIMIT, ASC/DESC, `GET` patterns (`#` for the element)
//! and STORE into a list. A SORT that reads or writes other keys (see [`reads_other_keys`])
//! runs under one exclusive hold of the keyspace (the lookups see one state; the stored list
//! replaces the destination in one commit); one that only sorts its key's elements reads
//! them in one read and holds nothing, like LRANGE. redis-server's rules:
//!
//! - numbers are read as C's `strtod` reads them (leading spaces, `inf`, an empty string is
//!   0); an element or BY value that is not one answers `ERR One or more scores can't be
//!   converted into double`; equal numbers are ordered by the elements' bytes;
//! - a BY pattern without `*` does not sort: the key's own order (a list's, a sorted set's by
//!   score, reversed by DESC); a set is then sorted as ALPHA when STOREd, so the stored list
//!   does not depend on the set's layout;
//! - with ALPHA and BY, elements whose BY value is missing come first.
//!
//! ALPHA compares bytes, as redis-server does under the C locale (it uses `strcoll` when
//! answering, so a server started under another locale orders some text differently).

use bytes::Bytes;
use omnibus_engine::keys::{End, KeyKind, Keyspace, ZQuery, ZRange};

use super::arguments::{is, NOT_AN_INTEGER, SYNTAX_ERROR};
use super::lists::{change, check_not_stream};
use super::strings::map;
use crate::codec::Reply;
use crate::session::{Session, Step};

/// One element and what it sorts by.
struct Item<'a> {
    element: &'a Bytes,
    score: f64,
    /// With ALPHA and BY: the looked-up value (`None`: missing, sorts first).
    by: Option<Bytes>,
}

pub(super) fn run(session: &mut Session, name: &str, arguments: &[Bytes]) -> Step {
    sort(session, name == "sort_ro", arguments).unwrap_or_else(Step::from)
}

/// How a SORT orders and cuts its elements (everything but its GET patterns and STORE).
#[derive(Clone, Copy)]
struct Order<'a> {
    desc: bool,
    alpha: bool,
    limit: (i64, i64),
    by: Option<&'a Bytes>,
    /// A BY pattern without `*`: the key's own order.
    dont_sort: bool,
}

fn sort(session: &Session, read_only: bool, arguments: &[Bytes]) -> Result<Step, Reply> {
    let source = &arguments[0];
    let mut order = Order {
        desc: false,
        alpha: false,
        limit: (0, -1),
        by: None,
        dont_sort: false,
    };
    let mut store = None::<&Bytes>;
    let mut gets: Vec<&Bytes> = Vec::new();
    let mut at = 1;
    while at < arguments.len() {
        let word = &arguments[at];
        let left = arguments.len() - at - 1;
        match () {
            _ if is(word, "asc") => order.desc = false,
            _ if is(word, "desc") => order.desc = true,
            _ if is(word, "alpha") => order.alpha = true,
            _ if is(word, "limit") && left >= 2 => {
                order.limit = (long(&arguments[at + 1])?, long(&arguments[at + 2])?);
                at += 2;
            }
            _ if is(word, "store") && left >= 1 && !read_only => {
                store = Some(&arguments[at + 1]);
                at += 1;
            }
            _ if is(word, "by") && left >= 1 => {
                order.by = Some(&arguments[at + 1]);
                // A pattern without `*` names no key per element: nothing to sort by.
                order.dont_sort = !arguments[at + 1].contains(&b'*');
                at += 1;
            }
            _ if is(word, "get") && left >= 1 => {
                gets.push(&arguments[at + 1]);
                at += 1;
            }
            _ => return Err(Reply::error(SYNTAX_ERROR)),
        }
        at += 1;
    }
    check_not_stream(session, source)?;

    let keys = session.keys.clone();
    let refused = |_| Reply::error(super::streams::WRONGTYPE);
    // Keyspace events of class `m`: the source and every pattern's key SORT looks up and
    // does not find, in redis-server's order (the source, BY per element, GET per answer).
    let missing = Missing {
        noted: crate::notify::misses::wanted(session).then(Default::default),
    };
    let hold;
    let chosen: Vec<Bytes> = if !reads_other_keys(arguments) {
        // Nothing else to read or write: the elements are ordered where they lie, under the
        // keyspace lock, and only those answered are copied out.
        hold = None;
        keys.elements_look(source, |view| {
            let Some(view) = view else {
                missing.note(source);
                return Ok(Vec::new());
            };
            let ordered = view.kind != KeyKind::Set;
            let chosen = choose(view.elements, ordered, order, |_| None)?;
            Ok(chosen.into_iter().cloned().collect())
        })
        .map_err(refused)??
    } else {
        // The session took the hold before the command (`reads_other_keys`); this nests in
        // it (and in a script's or EXEC's).
        hold = Some(keys.exclusive());
        let (elements, ordered) = match keys.kind(source) {
            None => {
                missing.note(source);
                (Vec::new(), true)
            }
            Some(KeyKind::List) => (keys.range(source, 0, -1).map_err(refused)?, true),
            Some(KeyKind::Set) => (keys.set_members(source).map_err(refused)?, false),
            Some(KeyKind::SortedSet) => {
                let all = ZQuery {
                    range: ZRange::Rank(0, -1),
                    reverse: false,
                    limit: None,
                };
                let members = keys.zset_range(source, &all).map_err(refused)?;
                let members = members.into_iter().map(|(member, _)| member).collect();
                (members, true)
            }
            Some(_) => return Err(Reply::error(super::streams::WRONGTYPE)),
        };
        // A set has no order of its own to keep: a stored one is sorted by its bytes.
        if order.dont_sort && !ordered && store.is_some() {
            order.dont_sort = false;
            order.alpha = true;
            order.by = None;
        }
        let by = |element: &Bytes| lookup(&keys, order.by?, element, &missing);
        let chosen = choose(elements.iter().collect(), ordered, order, by)?;
        chosen.into_iter().cloned().collect()
    };

    let mut output: Vec<Option<Bytes>> = Vec::new();
    for element in &chosen {
        if gets.is_empty() {
            output.push(Some(element.clone()));
        }
        for pattern in &gets {
            output.push(lookup(&keys, pattern, element, &missing));
        }
    }
    if let Some(noted) = missing.noted {
        crate::notify::misses::publish(session, noted.into_inner());
    }
    let Some(destination) = store else {
        drop(hold);
        return Ok(Reply::Array(
            output
                .into_iter()
                .map(|v| v.map_or(Reply::Null, Reply::Bulk))
                .collect(),
        )
        .into());
    };
    // The stored list replaces the destination (and its deadline); none deletes it. Both
    // changes are made under the hold, so they reach the disk in one commit.
    let stored = output.len();
    let deleted = keys.delete(std::slice::from_ref(destination));
    let outcome = if stored == 0 {
        deleted.map(|d| map(d, |_| Reply::Integer(0)))
    } else {
        let values = output.into_iter().map(Option::unwrap_or_default).collect();
        keys.push(destination, values, End::Right, false)
            .map(|d| map(d, |_| Reply::Integer(stored as i64)))
    };
    drop(hold);
    change(outcome)
}

/// The elements LIMIT keeps, in `order`; `by` looks up an element's BY value (`None`:
/// missing). An ordered key's elements come in its own order; a set's in any.
fn choose<'a>(
    mut elements: Vec<&'a Bytes>,
    ordered: bool,
    order: Order<'_>,
    mut by: impl FnMut(&Bytes) -> Option<Bytes>,
) -> Result<Vec<&'a Bytes>, Reply> {
    if order.dont_sort && ordered && order.desc {
        elements.reverse();
    }
    let length = elements.len() as i64;
    let (limit_start, limit_count) = order.limit;
    let mut start = limit_start.clamp(0, length);
    let count = limit_count.clamp(-1, length);
    let mut end = if count < 0 {
        length - 1
    } else {
        start + count - 1
    };
    if start >= length {
        start = length - 1;
        end = length - 2;
    }
    end = end.min(length - 1);
    if end < start {
        // Nothing is answered, but every element must still read as a number.
        if !order.dont_sort && !order.alpha {
            for element in &elements {
                let value = match order.by {
                    Some(_) => match by(element) {
                        Some(value) => value,
                        None => continue,
                    },
                    None => (*element).clone(),
                };
                strtod(&value).ok_or_else(unreadable)?;
            }
        }
        return Ok(Vec::new());
    }
    let (start, end) = (start as usize, end as usize);
    if order.dont_sort {
        elements.truncate(end + 1);
        elements.drain(..start);
        return Ok(elements);
    }

    let mut items: Vec<Item> = Vec::with_capacity(elements.len());
    let mut readable = true;
    for element in elements {
        let mut item = Item {
            element,
            score: 0.0,
            by: None,
        };
        let looked_up = match order.by {
            Some(_) => by(element),
            None => None,
        };
        if order.alpha {
            item.by = looked_up;
        } else {
            let value = match (&looked_up, order.by) {
                (Some(value), _) => Some(value.as_ref()),
                (None, None) => Some(element.as_ref()),
                (None, Some(_)) => None,
            };
            if let Some(value) = value {
                match strtod(value) {
                    Some(score) => item.score = score,
                    None => readable = false,
                }
            }
        }
        items.push(item);
    }
    if !readable {
        return Err(unreadable());
    }
    let compare = |a: &Item, b: &Item| {
        let ordering = if !order.alpha {
            a.score
                .partial_cmp(&b.score)
                .unwrap_or(std::cmp::Ordering::Equal)
                .then_with(|| a.element.cmp(b.element))
        } else if order.by.is_some() {
            // A missing value sorts before any value.
            a.by.cmp(&b.by)
        } else {
            a.element.cmp(b.element)
        };
        if order.desc {
            ordering.reverse()
        } else {
            ordering
        }
    };
    if order.alpha && order.by.is_some() {
        // Equal looked-up values keep the key's order (the sort is stable).
        items.sort_by(compare);
    } else {
        // Elements are told apart by their bytes: a total order, so only the first `end + 1`
        // need sorting (what redis-server's partial quicksort does for a LIMIT).
        if end + 1 < items.len() {
            items.select_nth_unstable_by(end, compare);
            items.truncate(end + 1);
        }
        items.sort_unstable_by(compare);
    }
    Ok(items[start..=end].iter().map(|item| item.element).collect())
}

fn unreadable() -> Reply {
    Reply::error("ERR One or more scores can't be converted into double")
}

/// Whether a SORT (`arguments` after its name: the key first) looks up or writes keys other than the one it
/// sorts: a BY pattern with a `*`, a GET pattern other than `#`, or STORE. Only such a SORT
/// holds the keyspace whole; the session takes the hold before running it. Words it cannot
/// place (a malformed SORT, which is refused) count as needing the hold.
pub(crate) fn reads_other_keys(arguments: &[Bytes]) -> bool {
    let mut at = 1;
    while at < arguments.len() {
        let word = &arguments[at];
        let next = arguments.get(at + 1);
        match () {
            _ if is(word, "asc") || is(word, "desc") || is(word, "alpha") => at += 1,
            _ if is(word, "limit") => at += 3,
            _ if is(word, "by") => match next {
                Some(pattern) if !pattern.contains(&b'*') => at += 2,
                _ => return true,
            },
            _ if is(word, "get") => match next {
                Some(pattern) if pattern.as_ref() == b"#" => at += 2,
                _ => return true,
            },
            _ => return true,
        }
    }
    false
}

/// A LIMIT bound: a signed integer, else Redis's error.
fn long(word: &Bytes) -> Result<i64, Reply> {
    super::arguments::integer(word).map_err(|_| Reply::error(NOT_AN_INTEGER))
}

/// What `pattern` names for `element`: `#` the element itself; otherwise the first `*`
/// replaced by it, a string key's value, or with `->field` after the `*` a hash field's.
/// `None` when the pattern has no `*` or the key or field is missing or of another kind.
fn lookup(keys: &Keyspace, pattern: &Bytes, element: &Bytes, missing: &Missing) -> Option<Bytes> {
    if pattern.as_ref() == b"#" {
        return Some(element.clone());
    }
    let star = pattern.iter().position(|&b| b == b'*')?;
    let after = &pattern[star + 1..];
    let arrow = after.windows(2).position(|pair| pair == b"->");
    let (postfix, field) = match arrow {
        Some(at) if at + 2 < after.len() => (&after[..at], Some(&after[at + 2..])),
        _ => (after, None),
    };
    let mut key = Vec::with_capacity(pattern.len() + element.len());
    key.extend_from_slice(&pattern[..star]);
    key.extend_from_slice(element);
    key.extend_from_slice(postfix);
    missing.check(keys, &key);
    match field {
        None => keys.get(&key),
        // Another kind of key is refused by the read: no value.
        Some(field) => {
            let field = Bytes::copy_from_slice(field);
            keys.hash_get(&key, &[field]).ok()?.pop().flatten()
        }
    }
}

/// The keys a SORT looked up and did not find, noted only when `m` events are on.
struct Missing {
    noted: Option<std::cell::RefCell<Vec<Bytes>>>,
}

impl Missing {
    fn note(&self, key: &Bytes) {
        if let Some(noted) = &self.noted {
            noted.borrow_mut().push(key.clone());
        }
    }

    fn check(&self, keys: &Keyspace, key: &[u8]) {
        if self.noted.is_some() && keys.version(key).is_none() {
            self.note(&Bytes::copy_from_slice(key));
        }
    }
}

/// A number as C's `strtod` reads it whole: leading white space, a decimal or exponent
/// number, `inf`/`infinity`/`nan` in any case (NaN refused); `None` for anything else, or a
/// number out of a double's range. An empty string reads as 0, as in redis-server (strtod
/// reads nothing and stops at the end). Hexadecimal numbers are not read.
fn strtod(value: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(value).ok()?;
    let text = text.trim_start_matches([' ', '\t', '\n', '\x0b', '\x0c', '\r']);
    if text.is_empty() {
        return (value.is_empty()).then_some(0.0);
    }
    let number: f64 = text.parse().ok()?;
    let digits = text.trim_start_matches(['+', '-']);
    let named = digits.eq_ignore_ascii_case("inf") || digits.eq_ignore_ascii_case("infinity");
    if number.is_nan() || (number.is_infinite() && !named) {
        return None;
    }
    // Underflow: a number that is not zero but reads as zero or below the normal range.
    let zero_digits = digits
        .split(['e', 'E'])
        .next()
        .is_some_and(|mantissa| mantissa.bytes().all(|b| b == b'0' || b == b'.'));
    if (number == 0.0 && !zero_digits) || (number.is_subnormal()) {
        return None;
    }
    Some(number)
}

#[cfg(test)]
mod tests {
    use super::{reads_other_keys, strtod};
    use bytes::Bytes;

    fn words(line: &str) -> Vec<Bytes> {
        line.split(' ')
            .map(|w| Bytes::copy_from_slice(w.as_bytes()))
            .collect()
    }

    #[test]
    fn only_lookups_and_stores_need_the_keyspace_whole() {
        for alone in [
            "k",
            "k desc alpha",
            "k LIMIT 0 10 ASC",
            "k by nosort",
            "k BY nosort GET # LIMIT 0 5",
            "k get #",
        ] {
            assert!(!reads_other_keys(&words(alone)), "{alone}");
        }
        for whole in [
            "k by w_*",
            "k get o_*",
            "k get # get o_*->f",
            "k store d",
            "k limit 0 1 STORE d",
            "k by",
            "k get",
            "k frob",
        ] {
            assert!(reads_other_keys(&words(whole)), "{whole}");
        }
    }

    #[test]
    fn numbers_are_read_as_strtod_reads_them() {
        assert_eq!(strtod(b"12"), Some(12.0));
        assert_eq!(strtod(b" -1.5e2"), Some(-150.0));
        assert_eq!(strtod(b"+3"), Some(3.0));
        assert_eq!(strtod(b""), Some(0.0));
        assert_eq!(strtod(b"0.000"), Some(0.0));
        assert_eq!(strtod(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(strtod(b"Infinity"), Some(f64::INFINITY));
        assert_eq!(strtod(b"4e-320"), None);
        assert_eq!(strtod(b"nan"), None);
        assert_eq!(strtod(b"1e400"), None);
        assert_eq!(strtod(b"1e-400"), None);
        assert_eq!(strtod(b"12 "), None);
        assert_eq!(strtod(b"abc"), None);
        assert_eq!(strtod(b"   "), None);
    }
}
