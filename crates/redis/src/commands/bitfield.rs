//! BITFIELD and BITFIELD_RO: integers of 1 to 64 bits at any bit offset of a string
//! (`i<n>` signed up to 64 bits, `u<n>` unsigned up to 63, offsets in bits or `#k` for the
//! k-th field of that width), read with GET, written with SET (answering the old value) and
//! INCRBY (answering the new one), with `OVERFLOW WRAP | SAT | FAIL` for the writes after it.
//! Bits run from the most significant bit of the first byte, as for SETBIT (`bits.rs`).
//!
//! A command with a write grows the string to its furthest written field first, so the key
//! exists afterwards even when every write FAILed, as in Redis. All of one command's
//! operations are one change of the value (`Keyspace::change_string`).

use bytes::Bytes;

use super::arguments::{integer, is, NOT_AN_INTEGER, SYNTAX_ERROR};
use super::strings::{check_string, map, step};
use crate::codec::Reply;
use crate::session::{Session, Step};

const BAD_TYPE: &str =
    "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.";
const BAD_OFFSET: &str = "ERR bit offset is not an integer or out of range";

/// A field's width and whether it is signed.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Kind {
    signed: bool,
    bits: u32,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Overflow {
    Wrap,
    Saturate,
    Fail,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Operation {
    Get,
    Set(i64),
    IncrementBy(i64),
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Field {
    kind: Kind,
    offset: u64,
    operation: Operation,
    overflow: Overflow,
}

pub(super) fn run(session: &mut Session, name: &str, arguments: &[Bytes]) -> Step {
    bitfield(session, name == "bitfield_ro", arguments).unwrap_or_else(Step::from)
}

fn kind(word: &[u8]) -> Result<Kind, Reply> {
    let signed = match word.first() {
        Some(b'i' | b'I') => true,
        Some(b'u' | b'U') => false,
        _ => return Err(Reply::error(BAD_TYPE)),
    };
    let bits = std::str::from_utf8(&word[1..])
        .ok()
        .and_then(|digits| digits.parse::<u32>().ok())
        .filter(|bits| *bits >= 1 && *bits <= if signed { 64 } else { 63 })
        .ok_or_else(|| Reply::error(BAD_TYPE))?;
    Ok(Kind { signed, bits })
}

/// A field's bit offset: `n`, or `#k` for k fields of this width; the field must end within
/// what a value may hold.
fn offset(word: &[u8], kind: Kind, bytes_max: usize) -> Result<u64, Reply> {
    let (by_fields, digits) = match word.strip_prefix(b"#") {
        Some(rest) => (true, rest),
        None => (false, word),
    };
    let value = integer(digits).map_err(|_| Reply::error(BAD_OFFSET))?;
    let offset = u64::try_from(value)
        .ok()
        .and_then(|n| match by_fields {
            true => n.checked_mul(u64::from(kind.bits)),
            false => Some(n),
        })
        .ok_or_else(|| Reply::error(BAD_OFFSET))?;
    let end = offset.checked_add(u64::from(kind.bits));
    match end {
        Some(end) if end <= bytes_max as u64 * 8 => Ok(offset),
        _ => Err(Reply::error(BAD_OFFSET)),
    }
}

/// The operations in order, or the first error in the words (before the key is looked at).
fn parse(words: &[Bytes], read_only: bool, bytes_max: usize) -> Result<Vec<Field>, Reply> {
    let mut fields = Vec::new();
    let mut overflow = Overflow::Wrap;
    let mut at = 0;
    while at < words.len() {
        let word = &words[at];
        if is(word, "overflow") {
            let mode = words
                .get(at + 1)
                .ok_or_else(|| Reply::error(SYNTAX_ERROR))?;
            overflow = if is(mode, "wrap") {
                Overflow::Wrap
            } else if is(mode, "sat") {
                Overflow::Saturate
            } else if is(mode, "fail") {
                Overflow::Fail
            } else {
                return Err(Reply::error("ERR Invalid OVERFLOW type specified"));
            };
            at += 2;
            continue;
        }
        let takes_value = is(word, "set") || is(word, "incrby");
        if !is(word, "get") && !takes_value {
            return Err(Reply::error(SYNTAX_ERROR));
        }
        let needed = if takes_value { 3 } else { 2 };
        if at + needed >= words.len() {
            return Err(Reply::error(SYNTAX_ERROR));
        }
        let kind = kind(&words[at + 1])?;
        let offset = offset(&words[at + 2], kind, bytes_max)?;
        let operation = if takes_value {
            let value = integer(&words[at + 3]).map_err(|_| Reply::error(NOT_AN_INTEGER))?;
            if is(word, "set") {
                Operation::Set(value)
            } else {
                Operation::IncrementBy(value)
            }
        } else {
            Operation::Get
        };
        if read_only && operation != Operation::Get {
            return Err(Reply::error(
                "ERR BITFIELD_RO only supports the GET subcommand",
            ));
        }
        fields.push(Field {
            kind,
            offset,
            operation,
            overflow,
        });
        at += needed + 1;
    }
    Ok(fields)
}

/// The field's bits as stored, right-aligned (bits past the end read as 0).
fn get_raw(value: &[u8], offset: u64, bits: u32) -> u64 {
    (0..u64::from(bits)).fold(0u64, |raw, at| {
        let bit = offset + at;
        let byte = value.get((bit >> 3) as usize).copied().unwrap_or(0);
        raw << 1 | u64::from((byte >> (7 - (bit & 7))) & 1)
    })
}

/// Writes the low `bits` bits of `raw` (inside the value: it was grown first).
fn set_raw(value: &mut [u8], offset: u64, bits: u32, raw: u64) {
    for at in 0..u64::from(bits) {
        let bit = offset + at;
        let one = (raw >> (u64::from(bits) - 1 - at)) & 1;
        let byte = &mut value[(bit >> 3) as usize];
        let shift = 7 - (bit & 7);
        *byte = (*byte & !(1 << shift)) | ((one as u8) << shift);
    }
}

/// The field's value as a number.
fn decode(kind: Kind, raw: u64) -> i64 {
    if kind.signed && kind.bits < 64 && raw >> (kind.bits - 1) & 1 == 1 {
        (raw | u64::MAX << kind.bits) as i64
    } else {
        raw as i64
    }
}

/// `value + increment` as the field stores it under `overflow`, or `None` (FAIL).
///
/// Which way a sum overflows is decided as redis-server decides it, quirks included, so
/// that SAT answers what it answers: an unsigned SET's value is read as an unsigned 64-bit
/// number (a negative one is above every width's maximum), and the headroom `max - value` is
/// computed in 64-bit wrapping arithmetic, so a signed SET of a value within 127 or so of
/// `i64::MIN` saturates to the *maximum*. WRAP keeps the low bits of the true sum either way.
fn settle(kind: Kind, value: i64, increment: i64, overflow: Overflow) -> Option<i64> {
    let bits = kind.bits;
    // The limit SAT stops at, when the sum overflows.
    let limit = if kind.signed {
        let max = if bits == 64 {
            i64::MAX
        } else {
            (1i64 << (bits - 1)) - 1
        };
        let min = -max - 1;
        let max_increment = (max as u64).wrapping_sub(value as u64) as i64;
        let min_increment = min.wrapping_sub(value);
        if value > max
            || (bits != 64 && increment > max_increment)
            || (value >= 0 && increment > 0 && increment > max_increment)
        {
            Some(max)
        } else if value < min
            || (bits != 64 && increment < min_increment)
            || (value < 0 && increment < 0 && increment < min_increment)
        {
            Some(min)
        } else {
            None
        }
    } else {
        let max = (1u64 << bits) - 1;
        let unsigned = value as u64;
        let max_increment = max.wrapping_sub(unsigned) as i64;
        let min_increment = (unsigned as i64).wrapping_neg();
        if unsigned > max || (increment > 0 && increment > max_increment) {
            Some(max as i64)
        } else if increment < 0 && increment < min_increment {
            Some(0)
        } else {
            None
        }
    };
    let sum = (value as u64).wrapping_add(increment as u64);
    let wrapped = decode(kind, sum & (u64::MAX >> (64 - bits)));
    match (limit, overflow) {
        (None, _) | (Some(_), Overflow::Wrap) => Some(wrapped),
        (Some(limit), Overflow::Saturate) => Some(limit),
        (Some(_), Overflow::Fail) => None,
    }
}

/// Runs `fields` on `value` (grown to hold every written field), answering each.
fn apply(value: &mut [u8], fields: &[Field]) -> Vec<Reply> {
    fields
        .iter()
        .map(|field| {
            let (kind, offset) = (field.kind, field.offset);
            let old = decode(kind, get_raw(value, offset, kind.bits));
            let (new, answer) = match field.operation {
                Operation::Get => return Reply::Integer(old),
                Operation::Set(to) => (settle(kind, to, 0, field.overflow), old),
                Operation::IncrementBy(by) => {
                    let new = settle(kind, old, by, field.overflow);
                    (new, new.unwrap_or_default())
                }
            };
            match new {
                Some(new) => {
                    set_raw(value, offset, kind.bits, new as u64);
                    Reply::Integer(answer)
                }
                None => Reply::Null,
            }
        })
        .collect()
}

fn bitfield(session: &mut Session, read_only: bool, arguments: &[Bytes]) -> Result<Step, Reply> {
    let bytes_max = session.shared.config.bulk_bytes_max;
    let fields = parse(&arguments[1..], read_only, bytes_max)?;
    let key = &arguments[0];
    check_string(session, key)?;
    let written_end = fields
        .iter()
        .filter(|field| field.operation != Operation::Get)
        .map(|field| (field.offset + u64::from(field.kind.bits)).div_ceil(8) as usize)
        .max();
    let Some(written_end) = written_end else {
        let mut value = session.keys.get(key).unwrap_or_default().to_vec();
        return Ok(Reply::Array(apply(&mut value, &fields)).into());
    };
    let outcome = session.keys.change_string(key, |old| {
        let mut value = old.map(<[u8]>::to_vec).unwrap_or_default();
        if value.len() < written_end {
            value.resize(written_end, 0);
        }
        let answers = apply(&mut value, &fields);
        // The same bytes (and length) as before is no write: no fsync, no version for
        // WATCH, no `setbit` event, as in redis-server.
        if old == Some(&value[..]) {
            return (None, answers);
        }
        (Some(value), answers)
    });
    Ok(step(outcome.map(|durable| map(durable, Reply::Array))))
}

#[cfg(test)]
mod tests {
    use super::*;

    const U8: Kind = Kind {
        signed: false,
        bits: 8,
    };
    const I8: Kind = Kind {
        signed: true,
        bits: 8,
    };

    #[test]
    fn fields_read_and_write_across_byte_boundaries() {
        let mut value = vec![0u8; 3];
        set_raw(&mut value, 5, 10, 0b11_0000_0001);
        assert_eq!(value, [0b0000_0110, 0b0000_0010, 0]);
        assert_eq!(get_raw(&value, 5, 10), 0b11_0000_0001);
        assert_eq!(
            decode(
                Kind {
                    signed: true,
                    bits: 10
                },
                0b11_0000_0001
            ),
            -255
        );
        // Past the end reads zeros.
        assert_eq!(get_raw(&value, 20, 16), 0);
    }

    #[test]
    fn overflow_wraps_saturates_or_fails() {
        assert_eq!(settle(U8, 250, 10, Overflow::Wrap), Some(4));
        assert_eq!(settle(U8, 250, 10, Overflow::Saturate), Some(255));
        assert_eq!(settle(U8, 250, 10, Overflow::Fail), None);
        assert_eq!(settle(U8, 5, -10, Overflow::Wrap), Some(251));
        assert_eq!(settle(U8, 5, -10, Overflow::Saturate), Some(0));
        assert_eq!(settle(I8, 120, 10, Overflow::Wrap), Some(-126));
        assert_eq!(settle(I8, -120, -10, Overflow::Saturate), Some(-128));
        // An unsigned SET of a negative number reads it as a huge one.
        assert_eq!(settle(U8, -1, 0, Overflow::Saturate), Some(255));
        let i64_kind = Kind {
            signed: true,
            bits: 64,
        };
        assert_eq!(
            settle(i64_kind, i64::MAX, 1, Overflow::Wrap),
            Some(i64::MIN)
        );
        assert_eq!(
            settle(i64_kind, i64::MAX, 1, Overflow::Saturate),
            Some(i64::MAX)
        );
    }

    #[test]
    fn types_and_offsets_are_checked() {
        assert_eq!(
            kind(b"i64"),
            Ok(Kind {
                signed: true,
                bits: 64
            })
        );
        assert!(kind(b"u64").is_err());
        assert!(kind(b"i0").is_err());
        assert!(kind(b"x8").is_err());
        assert_eq!(offset(b"#3", U8, 1024), Ok(24));
        assert_eq!(offset(b"8184", U8, 1024), Ok(8184));
        assert!(offset(b"8185", U8, 1024).is_err());
        assert!(offset(b"-1", U8, 1024).is_err());
    }
}
