//! The tuning parameters of Redis's compact encodings, as CONFIG GET and CONFIG SET see them
//! (`hash-max-listpack-entries` and kin, with their older `ziplist` names). They move what
//! the keyspace follows of Redis's encodings (`omnibus_engine::keys::LayoutLimits`):
//! OBJECT ENCODING's answers, and which collections HSCAN, SSCAN and ZSCAN answer whole.
//! `list-compress-depth` is kept and answered only: redis-server compresses list nodes out
//! of a client's sight, and Omnibus holds list elements as they are. Like any CONFIG SET
//! without CONFIG REWRITE, a change lasts until the broker restarts.

use std::sync::atomic::Ordering;

use omnibus_engine::keys::LayoutLimits;

use crate::session::Session;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Parameter {
    HashEntries,
    HashValue,
    ListSize,
    ListCompressDepth,
    SetIntsetEntries,
    SetEntries,
    SetValue,
    ZsetEntries,
    ZsetValue,
}

/// Every name, in the order CONFIG GET answers them (each alias beside its name).
const NAMES: [(&str, Parameter); 14] = [
    ("hash-max-listpack-entries", Parameter::HashEntries),
    ("hash-max-ziplist-entries", Parameter::HashEntries),
    ("hash-max-listpack-value", Parameter::HashValue),
    ("hash-max-ziplist-value", Parameter::HashValue),
    ("list-max-listpack-size", Parameter::ListSize),
    ("list-max-ziplist-size", Parameter::ListSize),
    ("list-compress-depth", Parameter::ListCompressDepth),
    ("set-max-intset-entries", Parameter::SetIntsetEntries),
    ("set-max-listpack-entries", Parameter::SetEntries),
    ("set-max-listpack-value", Parameter::SetValue),
    ("zset-max-listpack-entries", Parameter::ZsetEntries),
    ("zset-max-ziplist-entries", Parameter::ZsetEntries),
    ("zset-max-listpack-value", Parameter::ZsetValue),
    ("zset-max-ziplist-value", Parameter::ZsetValue),
];

/// The parameters and their values, for CONFIG GET.
pub(super) fn parameters(session: &Session) -> Vec<(&'static str, String)> {
    let limits = session.keys.layout_limits();
    let depth = session.shared.list_compress_depth.load(Ordering::Relaxed);
    NAMES
        .iter()
        .map(|&(name, parameter)| {
            let value = match parameter {
                Parameter::HashEntries => limits.hash_entries as i64,
                Parameter::HashValue => limits.hash_value as i64,
                Parameter::ListSize => limits.list_size,
                Parameter::ListCompressDepth => depth,
                Parameter::SetIntsetEntries => limits.set_intset_entries as i64,
                Parameter::SetEntries => limits.set_entries as i64,
                Parameter::SetValue => limits.set_value as i64,
                Parameter::ZsetEntries => limits.zset_entries as i64,
                Parameter::ZsetValue => limits.zset_value as i64,
            };
            (name, value.to_string())
        })
        .collect()
}

/// A checked CONFIG SET of one of these parameters, made once every pair is checked.
#[derive(Debug, Clone, Copy)]
pub(super) struct Change(Parameter, i64);

/// `None` when `name` (lower case) is not one of these parameters; else the change, or
/// why `value` is refused, in redis-server's words.
pub(super) fn parse(name: &str, value: &[u8]) -> Option<Result<Change, String>> {
    let &(_, parameter) = NAMES.iter().find(|(known, _)| *known == name)?;
    let text = std::str::from_utf8(value).unwrap_or("");
    let parsed = match parameter {
        // Sizes in bytes take Redis's units (`1kb`, `2m`…).
        Parameter::HashValue | Parameter::ZsetValue => {
            memory(text).ok_or_else(|| "argument must be a memory value".to_string())
        }
        _ => text
            .parse::<i64>()
            .map_err(|_| "argument couldn't be parsed into an integer".to_string()),
    };
    let (min, max) = match parameter {
        Parameter::ListSize => (i64::from(i32::MIN), i64::from(i32::MAX)),
        Parameter::ListCompressDepth => (0, i64::from(i32::MAX)),
        _ => (0, i64::MAX),
    };
    Some(parsed.and_then(|number| {
        if (min..=max).contains(&number) {
            Ok(Change(parameter, number))
        } else {
            Err(format!(
                "argument must be between {min} and {max} inclusive"
            ))
        }
    }))
}

/// Makes a change [`parse`] checked.
pub(super) fn apply(session: &Session, Change(parameter, number): Change) {
    // Checked within 0..=i64::MAX except the list size, which may be negative.
    let size = number.max(0) as u64;
    let limit: fn(&mut LayoutLimits) -> &mut u64 = match parameter {
        Parameter::ListCompressDepth => {
            let depth = &session.shared.list_compress_depth;
            return depth.store(number, Ordering::Relaxed);
        }
        Parameter::ListSize => {
            return session
                .keys
                .update_layout_limits(|limits| limits.list_size = number);
        }
        Parameter::HashEntries => |limits| &mut limits.hash_entries,
        Parameter::HashValue => |limits| &mut limits.hash_value,
        Parameter::SetIntsetEntries => |limits| &mut limits.set_intset_entries,
        Parameter::SetEntries => |limits| &mut limits.set_entries,
        Parameter::SetValue => |limits| &mut limits.set_value,
        Parameter::ZsetEntries => |limits| &mut limits.zset_entries,
        Parameter::ZsetValue => |limits| &mut limits.zset_value,
    };
    session
        .keys
        .update_layout_limits(|limits| *limit(limits) = size);
}

/// A size as Redis reads one: digits, then nothing, `b`, `k`/`kb`, `m`/`mb` or `g`/`gb`
/// (a bare letter counts thousands, with `b` powers of 1024), without regard to case.
fn memory(text: &str) -> Option<i64> {
    let text = text.to_ascii_lowercase();
    let digits = text.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit: u64 = match &text[digits.len()..] {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1024 * 1024 * 1024,
        _ => return None,
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let number = digits.parse::<u64>().ok()?.checked_mul(unit)?;
    i64::try_from(number).ok()
}

#[cfg(test)]
mod tests {
    use super::{memory, parse, Parameter};

    #[test]
    fn sizes_read_as_redis_reads_them() {
        assert_eq!(memory("64"), Some(64));
        assert_eq!(memory("1kb"), Some(1024));
        assert_eq!(memory("2K"), Some(2000));
        assert_eq!(memory("1gb"), Some(1 << 30));
        for bad in ["", "kb", "-1", "1xb", "1.5k"] {
            assert_eq!(memory(bad), None, "{bad}");
        }
    }

    #[test]
    fn values_are_checked_as_redis_checks_them() {
        let change = parse("list-max-ziplist-size", b"-6").unwrap().unwrap();
        assert_eq!((change.0, change.1), (Parameter::ListSize, -6));
        assert_eq!(
            parse("hash-max-listpack-entries", b"-1")
                .unwrap()
                .unwrap_err(),
            "argument must be between 0 and 9223372036854775807 inclusive"
        );
        assert_eq!(
            parse("set-max-intset-entries", b"x").unwrap().unwrap_err(),
            "argument couldn't be parsed into an integer"
        );
        assert!(parse("maxmemory", b"1").is_none());
    }
}
