//! Key-miss events (class `m`): `keymiss` on `__keyspace@0__:<key>` / `__keyevent@0__:keymiss`
//! for each key a command looked up to read and did not find, as redis-server 7.0 sends it
//! from its read lookups (`lookupKeyRead*` without `LOOKUP_NONOTIFY`), in lookup order and
//! before the command's other events. Which keys a command reads that way is per command:
//! every key of a read-only command (EXISTS's arguments each time they are given), and the
//! keys some writing commands read first — a STORE's sources, GETDEL, GETEX, SET … GET,
//! COPY's source, PFMERGE's keys, a group read's streams. Writes' own lookups send none.

use bytes::Bytes;
use omnibus_engine::keys::KeyKind;

use crate::commands::key_positions;
use crate::commands::table::{self, Command};
use crate::session::Session;

/// The kinds of key a command's lookups take (from its ACL category); `None`: any. A key of
/// another kind ends its lookups with WRONGTYPE, so the keys after it are not looked up.
/// `Some(&[])` takes only streams.
fn takes(command: &Command) -> Option<&'static [KeyKind]> {
    let name = command.name;
    if matches!(
        name,
        "zunion" | "zinter" | "zdiff" | "zunionstore" | "zinterstore" | "zdiffstore" | "zintercard"
    ) {
        return Some(&[KeyKind::SortedSet, KeyKind::Set]);
    }
    command
        .categories
        .iter()
        .find_map(|category| match *category {
            "@string" | "@bitmap" | "@hyperloglog" => Some(&[KeyKind::String][..]),
            "@list" => Some(&[KeyKind::List][..]),
            "@hash" => Some(&[KeyKind::Hash][..]),
            "@set" => Some(&[KeyKind::Set][..]),
            "@sortedset" | "@geo" => Some(&[KeyKind::SortedSet][..]),
            "@stream" => Some(&[][..]),
            _ => None,
        })
}

/// The keys command `name` looks up for reading, in order (repeats kept).
fn read_keys<'a>(name: &str, arguments: &'a [Bytes]) -> Vec<&'a Bytes> {
    let Some(command) = table::find(name) else {
        return Vec::new();
    };
    let keys = || key_positions::keys_of(command, arguments);
    match name {
        // Looked up without an event (OBJECT, MEMORY USAGE), or not looked up as keys; SORT
        // reports its own, after parsing, with its patterns' (`commands/sort.rs`).
        "object" | "memory" | "sort" | "sort_ro" => Vec::new(),
        "exists" => arguments.iter().collect(),
        "xinfo" => arguments.iter().skip(1).take(1).collect(),
        // Only GETs: looked up as a read (a SET or INCRBY makes it a write's lookup).
        "bitfield"
            if !arguments[1..].iter().any(|word| {
                word.eq_ignore_ascii_case(b"set") || word.eq_ignore_ascii_case(b"incrby")
            }) =>
        {
            arguments.iter().take(1).collect()
        }
        "getdel" | "getex" | "getset" | "copy" | "georadius" | "georadiusbymember" | "xack"
        | "xclaim" | "xautoclaim" => arguments.iter().take(1).collect(),
        // Each stream looked up twice: for its IDs, then to read it.
        "xread" => {
            let streams = keys();
            streams.iter().chain(streams.iter()).copied().collect()
        }
        "set"
            if arguments[2..]
                .iter()
                .any(|word| word.eq_ignore_ascii_case(b"get")) =>
        {
            arguments.iter().take(1).collect()
        }
        "sunionstore" | "sinterstore" | "sdiffstore" | "zunionstore" | "zinterstore"
        | "zdiffstore" => keys().into_iter().skip(1).collect(),
        "zrangestore" | "geosearchstore" => arguments.iter().skip(1).take(1).collect(),
        "bitop" => arguments.iter().skip(2).collect(),
        "pfmerge" | "xreadgroup" | "migrate" => keys(),
        _ if command.flags.contains(&"readonly") && !command.flags.contains(&"pubsub") => keys(),
        _ => Vec::new(),
    }
}

/// Publishes `keymiss` for each of `keys`, in order (when `m` is on).
pub(crate) fn publish(session: &Session, keys: Vec<Bytes>) {
    let notifications = &session.shared.notifications;
    if keys.is_empty() || !notifications.sends(super::KEY_MISS) {
        return;
    }
    let events = keys
        .into_iter()
        .map(|key| (super::KEY_MISS, "keymiss", key))
        .collect();
    notifications.send(&session.shared.engine, events);
}

/// Whether the command got to its lookups, by its reply: an error other than WRONGTYPE or
/// NOGROUP (found by the lookups) means it was refused while its arguments were read,
/// before them — except for LCS, XREAD, the GEORADIUS/GEOSEARCH family and HTTL's
/// (Redis 7.4), which look their keys up first.
pub(crate) fn looked_up(name: &str, reply: &crate::codec::Reply) -> bool {
    match reply {
        crate::codec::Reply::Error(line) => {
            (name == "migrate" && (line.starts_with("IOERR") || line.contains("Target instance")))
                || line.starts_with("WRONGTYPE")
                || line.starts_with("NOGROUP")
                || matches!(
                    name,
                    "lcs"
                        | "xread"
                        | "georadius"
                        | "georadius_ro"
                        | "georadiusbymember"
                        | "georadiusbymember_ro"
                        | "geosearch"
                        | "geosearchstore"
                        | "httl"
                        | "hpttl"
                        | "hexpiretime"
                        | "hpexpiretime"
                )
        }
        _ => true,
    }
}

/// Whether `m` is on: a command that finds its own misses notes them only then.
pub(crate) fn wanted(session: &Session) -> bool {
    session.shared.notifications.sends(super::KEY_MISS)
}

/// The keys command `name` is about to look up for reading and will not find (neither a key
/// of the keyspace nor a stream).
pub(crate) fn before(session: &Session, name: &str, arguments: &[Bytes]) -> Vec<Bytes> {
    let Some(command) = table::find(name) else {
        return Vec::new();
    };
    // MGET answers nil for a key of another kind rather than refusing it.
    let kinds = if name == "mget" { None } else { takes(command) };
    let mut missing = Vec::new();
    for key in read_keys(name, arguments) {
        let found = match session.keys.kind(key) {
            Some(kind) => Some(Some(kind)),
            None if crate::commands::is_stream(session, key) => Some(None),
            None => None,
        };
        match (found, kinds) {
            (None, _) => {
                missing.push(key.clone());
                // A group read answers NOGROUP at its first missing stream.
                if name == "xreadgroup" {
                    break;
                }
            }
            (Some(_), None) => {}
            (Some(Some(kind)), Some(kinds)) if kinds.contains(&kind) => {}
            (Some(None), Some([])) => {}
            // Of another kind: WRONGTYPE, and no lookup after it.
            (Some(_), Some(_)) => break,
        }
    }
    missing
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Reply;

    fn words(line: &str) -> Vec<Bytes> {
        line.split(' ')
            .map(|word| Bytes::from(word.to_string()))
            .collect()
    }

    fn read(line: &str) -> Vec<String> {
        let all = words(line);
        let name = String::from_utf8_lossy(&all[0]).to_lowercase();
        read_keys(&name, &all[1..])
            .into_iter()
            .map(|key| String::from_utf8_lossy(key).into_owned())
            .collect()
    }

    #[test]
    fn the_keys_each_command_looks_up_to_read() {
        assert_eq!(read("GET k"), ["k"]);
        assert_eq!(read("EXISTS a a b"), ["a", "a", "b"]);
        assert_eq!(read("MGET a b"), ["a", "b"]);
        assert_eq!(read("INCR k"), Vec::<String>::new());
        assert_eq!(read("SET k v GET"), ["k"]);
        assert_eq!(read("SET k v"), Vec::<String>::new());
        assert_eq!(read("SUNIONSTORE d a b"), ["a", "b"]);
        assert_eq!(read("ZUNIONSTORE d 2 a b WEIGHTS 1 2"), ["a", "b"]);
        assert_eq!(read("BITOP AND d a b"), ["a", "b"]);
        assert_eq!(read("BITFIELD k GET u8 0"), ["k"]);
        assert_eq!(read("BITFIELD k SET u8 0 1"), Vec::<String>::new());
        assert_eq!(read("XREAD STREAMS a b 0 0"), ["a", "b", "a", "b"]);
        assert_eq!(read("OBJECT ENCODING k"), Vec::<String>::new());
        assert_eq!(read("SORT k BY w_*"), Vec::<String>::new());
    }

    #[test]
    fn a_refusal_while_reading_arguments_means_no_lookup() {
        let refused = Reply::error("ERR min or max is not a float");
        assert!(!looked_up("zrangebyscore", &refused));
        assert!(looked_up("lcs", &refused));
        let wrong =
            Reply::error("WRONGTYPE Operation against a key holding the wrong kind of value");
        assert!(looked_up("sunion", &wrong));
        assert!(looked_up("get", &Reply::Null));
    }
}
