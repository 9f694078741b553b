//! Where a command's keys are in one call of it: by the table's positions, or by reading
//! the call as Redis does for commands whose arguments decide (`movablekeys`: XREAD's
//! STREAMS, LMPOP's count, SORT's STORE, EVAL's numkeys) and for containers whose
//! subcommand names a key. COMMAND GETKEYS answers it; keyspace notifications, key misses
//! and client-side caching use it to find what a command reads and writes.

use bytes::Bytes;

use super::arguments::is;
use super::table::{Command, Keys};

/// The keys in a call of `command` (its words after the name): by position, or, for XREAD
/// and XREADGROUP, the first half of what follows STREAMS, for LMPOP, BLMPOP, ZUNION… the
/// `numkeys` words after their count (after the destination for ZUNIONSTORE…). `None` when it has none.
pub(crate) fn keys_of<'a>(command: &Command, words: &'a [Bytes]) -> Vec<&'a Bytes> {
    // A container's subcommands that name a key, after the subcommand: MEMORY USAGE key,
    // OBJECT ENCODING key, XGROUP CREATE key …, XINFO STREAM key.
    let subcommand = words.first();
    let keyed = match command.name {
        "memory" => subcommand.is_some_and(|word| is(word, "usage")),
        "object" | "xgroup" | "xinfo" => subcommand.is_some_and(|word| !is(word, "help")),
        _ => false,
    };
    if keyed {
        return words.get(1).into_iter().collect();
    }
    if command.name == "sort_ro" {
        return words.iter().take(1).collect();
    }
    if command.flags.contains(&"movablekeys") {
        // LMPOP numkeys key …, BLMPOP timeout numkeys key …
        let numkeys_at = match command.name {
            "lmpop" | "zmpop" | "zunion" | "zinter" | "zdiff" | "zintercard" | "sintercard" => {
                Some(0)
            }
            "blmpop" | "bzmpop" => Some(1),
            // EVAL script numkeys key …, FCALL function numkeys key …
            "eval" | "evalsha" | "eval_ro" | "evalsha_ro" | "fcall" | "fcall_ro" => Some(1),
            // ZUNIONSTORE destination numkeys key …: the destination, then the sources.
            "zunionstore" | "zinterstore" | "zdiffstore" => {
                let count = words
                    .get(1)
                    .and_then(|word| std::str::from_utf8(word).ok()?.parse::<usize>().ok())
                    .unwrap_or(0);
                return words
                    .iter()
                    .take(1)
                    .chain(words.iter().skip(2).take(count))
                    .collect();
            }
            _ => None,
        };
        if command.name == "migrate" {
            // MIGRATE host port key|"" db timeout [… KEYS key …]
            let listed = words
                .iter()
                .skip(5)
                .position(|word| is(word, "keys"))
                .map_or(&[][..], |at| &words[5 + at + 1..]);
            let named = words.get(2).filter(|key| !key.is_empty());
            return named.into_iter().chain(listed).collect();
        }
        if command.name.starts_with("georadius") || command.name == "sort" {
            // GEORADIUS[BYMEMBER] key … [STORE|STOREDIST destination], SORT key … [STORE d]:
            // the last STORE counts, as it does when the command runs, and SORT's LIMIT,
            // BY and GET arguments are passed over (`SORT k BY store` has no destination).
            let sort = command.name == "sort";
            let (mut stored, mut at) = (None, 1);
            while at < words.len() {
                let word = &words[at];
                let skip = match () {
                    _ if sort && is(word, "limit") => 2,
                    _ if sort && (is(word, "by") || is(word, "get")) => 1,
                    _ if is(word, "store") || (!sort && is(word, "storedist")) => {
                        stored = words.get(at + 1).or(stored);
                        1
                    }
                    _ => 0,
                };
                at += 1 + skip;
            }
            return words.iter().take(1).chain(stored).collect();
        }
        if let Some(at) = numkeys_at {
            let count = words
                .get(at)
                .and_then(|word| std::str::from_utf8(word).ok()?.parse::<usize>().ok())
                .unwrap_or(0);
            return words.iter().skip(at + 1).take(count).collect();
        }
        let Some(at) = words
            .iter()
            .position(|word| word.eq_ignore_ascii_case(b"streams"))
        else {
            return Vec::new();
        };
        let rest = &words[at + 1..];
        return rest[..rest.len() / 2].iter().collect();
    }
    let Keys { first, last, step } = command.keys;
    if first == 0 {
        return Vec::new();
    }
    // Positions count the name as 0; `words` starts after it.
    let count = words.len() as i64 + 1;
    let last = if last < 0 {
        count + last
    } else {
        last.min(count - 1)
    };
    (first..=last)
        .step_by(step as usize)
        .filter_map(|position| words.get(position as usize - 1))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::table::find;

    #[test]
    fn keys_are_found_by_position_or_after_streams() {
        let words = |text: &str| -> Vec<bytes::Bytes> {
            text.split(' ')
                .map(|word| bytes::Bytes::copy_from_slice(word.as_bytes()))
                .collect()
        };
        let keys = |name: &str, text: &str| -> Vec<String> {
            let words = words(text);
            keys_of(find(name).unwrap(), &words)
                .into_iter()
                .map(|key| String::from_utf8_lossy(key).into_owned())
                .collect()
        };
        assert_eq!(keys("get", "a"), ["a"]);
        assert_eq!(keys("mset", "a 1 b 2"), ["a", "b"]);
        assert_eq!(keys("del", "a b c"), ["a", "b", "c"]);
        assert_eq!(keys("xread", "COUNT 2 STREAMS s t 0 $"), ["s", "t"]);
        assert_eq!(keys("xreadgroup", "GROUP g c STREAMS s >"), ["s"]);
        assert_eq!(keys("blpop", "a b 0"), ["a", "b"]);
        assert_eq!(keys("lmove", "a b LEFT RIGHT"), ["a", "b"]);
        assert_eq!(keys("lmpop", "2 a b LEFT COUNT 3"), ["a", "b"]);
        assert_eq!(keys("blmpop", "0.5 1 a RIGHT"), ["a"]);
        assert_eq!(keys("zmpop", "2 a b MIN COUNT 3"), ["a", "b"]);
        assert_eq!(keys("bzmpop", "0 1 a MAX"), ["a"]);
        assert_eq!(keys("bzpopmin", "a b 0"), ["a", "b"]);
        assert_eq!(keys("rename", "a b"), ["a", "b"]);
        assert_eq!(keys("georadius", "g 1 2 3 km STORE d"), ["g", "d"]);
        assert_eq!(
            keys("georadiusbymember", "g m 3 km STOREDIST d"),
            ["g", "d"]
        );
        assert_eq!(keys("georadius", "g 1 2 3 km WITHDIST"), ["g"]);
        assert_eq!(
            keys("geosearchstore", "d g FROMMEMBER m BYRADIUS 1 km"),
            ["d", "g"]
        );
        assert_eq!(keys("sort", "l BY w_* STORE d"), ["l", "d"]);
        assert_eq!(keys("sort", "l STORE a STORE b STORE d"), ["l", "d"]);
        assert_eq!(keys("sort", "l BY store GET store"), ["l"]);
        assert_eq!(keys("memory", "USAGE k"), ["k"]);
        assert_eq!(keys("xgroup", "CREATE k g $"), ["k"]);
        assert_eq!(keys("eval", "s 2 a b c"), ["a", "b"]);
        assert!(keys("eval", "s 0").is_empty());
        assert_eq!(keys("sort_ro", "l"), ["l"]);
        assert!(keys("ping", "").is_empty());
    }
}
