//! Bit and byte commands over string values: SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP and
//! SETRANGE. Bits are numbered from the most significant bit of the first byte, as Redis
//! numbers them; a string grows with zero bytes where a SETBIT or SETRANGE reaches past its
//! end, and a missing key reads as an endless run of zeros.
//!
//! The changes go through the engine's `change_string` / `combine_strings` (one step under
//! the keyspace's lock, deadline kept); everything about bits is worked out here. A value is
//! bounded by `[redis] bulk_bytes_max` (Redis: `proto-max-bulk-len`, 512 MiB), with Redis's
//! words for the bound.

use bytes::Bytes;
use omnibus_engine::keys::SetExpiry;

use super::arguments::{integer, is, lowercase, NOT_AN_INTEGER, SYNTAX_ERROR};
use super::strings::{check_string, step};
use crate::codec::Reply;
use crate::session::{Session, Step};

const BIT_OFFSET_ERROR: &str = "ERR bit offset is not an integer or out of range";
const BIT_VALUE_ERROR: &str = "ERR bit is not an integer or out of range";
const TOO_LONG: &str = "ERR string exceeds maximum allowed size (proto-max-bulk-len)";

pub(super) fn run(session: &mut Session, name: &str, arguments: &[Bytes]) -> Step {
    let outcome = match name {
        "setbit" => setbit(session, arguments),
        "getbit" => getbit(session, arguments),
        "bitcount" => bitcount(session, arguments),
        "bitpos" => bitpos(session, arguments),
        "bitop" => bitop(session, arguments),
        "setrange" => setrange(session, arguments),
        _ => Err(Reply::error(format!("ERR unknown command '{name}'"))),
    };
    outcome.unwrap_or_else(Step::from)
}

/// A bit offset, within what a value may hold (Redis: below 2^32, and its bulk bound).
fn bit_offset(session: &Session, word: &[u8]) -> Result<u64, Reply> {
    let offset = integer(word).map_err(|_| Reply::error(BIT_OFFSET_ERROR))?;
    let bytes_max = session.shared.config.bulk_bytes_max as u64;
    match u64::try_from(offset) {
        Ok(offset) if offset >> 3 < bytes_max && offset < 1 << 32 => Ok(offset),
        _ => Err(Reply::error(BIT_OFFSET_ERROR)),
    }
}

/// The bit at `offset` (0 past the end).
fn bit_at(value: &[u8], offset: u64) -> u8 {
    value
        .get((offset >> 3) as usize)
        .map_or(0, |byte| (byte >> (7 - (offset & 7))) & 1)
}

/// SETBIT key offset 0|1: the bit's old value.
fn setbit(session: &mut Session, arguments: &[Bytes]) -> Result<Step, Reply> {
    let offset = bit_offset(session, &arguments[1])?;
    let bit = match integer(&arguments[2]) {
        Ok(bit @ (0 | 1)) => bit as u8,
        _ => return Err(Reply::error(BIT_VALUE_ERROR)),
    };
    check_string(session, &arguments[0])?;
    let outcome = session.keys.change_string(&arguments[0], |old| {
        let byte = (offset >> 3) as usize;
        let shift = 7 - (offset & 7);
        // A bit already so in a value long enough is no write (no fsync, no version for
        // WATCH, no `setbit` event), as in redis-server.
        if let Some(old) = old.filter(|old| old.len() > byte) {
            let was = (old[byte] >> shift) & 1;
            if was == bit {
                return (None, was);
            }
        }
        let mut value = old.map(<[u8]>::to_vec).unwrap_or_default();
        if value.len() <= byte {
            value.resize(byte + 1, 0);
        }
        let was = (value[byte] >> shift) & 1;
        value[byte] = (value[byte] & !(1 << shift)) | (bit << shift);
        (Some(value), was)
    });
    Ok(step(outcome.map(|durable| {
        super::strings::map(durable, |was| Reply::Integer(i64::from(was)))
    })))
}

/// GETBIT key offset.
fn getbit(session: &mut Session, arguments: &[Bytes]) -> Result<Step, Reply> {
    let offset = bit_offset(session, &arguments[1])?;
    check_string(session, &arguments[0])?;
    let value = session.keys.get(&arguments[0]).unwrap_or_default();
    Ok(Reply::Integer(i64::from(bit_at(&value, offset))).into())
}

/// Whether a range counts bytes (the default) or bits.
#[derive(Clone, Copy, PartialEq)]
enum Unit {
    Byte,
    Bit,
}

fn unit(word: &Bytes) -> Result<Unit, Reply> {
    if is(word, "byte") {
        Ok(Unit::Byte)
    } else if is(word, "bit") {
        Ok(Unit::Bit)
    } else {
        Err(Reply::error(SYNTAX_ERROR))
    }
}

/// `[start, end]` in `unit`s over a value of `length` bytes, negative indexes counted from
/// the end, clamped to the value, as Redis reads a range; as bit indexes, or `None` when it
/// holds nothing.
fn bit_range(length: u64, start: i64, end: i64, unit: Unit) -> Option<(u64, u64)> {
    let total = match unit {
        Unit::Byte => length as i64,
        Unit::Bit => (length * 8) as i64,
    };
    let from_end = |index: i64| {
        if index < 0 {
            (total + index).max(0)
        } else {
            index
        }
    };
    let (start, end) = (from_end(start), from_end(end).min(total - 1));
    if total == 0 || start > end {
        return None;
    }
    let (start, end) = (start as u64, end as u64);
    Some(match unit {
        Unit::Byte => (start * 8, end * 8 + 7),
        Unit::Bit => (start, end),
    })
}

/// The set bits of `value` in bits `[start, end]` (inside the value).
fn count_ones(value: &[u8], (start, end): (u64, u64)) -> u64 {
    let (first, last) = ((start >> 3) as usize, (end >> 3) as usize);
    let head_mask = 0xffu8 >> (start & 7);
    let tail_mask = 0xffu8 << (7 - (end & 7));
    if first == last {
        return u64::from((value[first] & head_mask & tail_mask).count_ones());
    }
    let middle: u64 = value[first + 1..last]
        .iter()
        .map(|byte| u64::from(byte.count_ones()))
        .sum();
    u64::from((value[first] & head_mask).count_ones())
        + middle
        + u64::from((value[last] & tail_mask).count_ones())
}

/// BITCOUNT key [start end [BYTE | BIT]].
fn bitcount(session: &mut Session, arguments: &[Bytes]) -> Result<Step, Reply> {
    let range = match &arguments[1..] {
        [] => None,
        [start, end, rest @ ..] if rest.len() <= 1 => {
            let (start, end) = (integer(start)?, integer(end)?);
            let unit = rest.first().map_or(Ok(Unit::Byte), unit)?;
            Some((start, end, unit))
        }
        _ => return Err(Reply::error(SYNTAX_ERROR)),
    };
    check_string(session, &arguments[0])?;
    let value = session.keys.get(&arguments[0]).unwrap_or_default();
    let length = value.len() as u64;
    let bits = match range {
        // Both ends before the start, the wrong way round: nothing, as in Redis (clamping
        // them would count the first byte).
        Some((start, end, _)) if start < 0 && end < 0 && start > end => None,
        Some((start, end, unit)) => bit_range(length, start, end, unit),
        None => (length > 0).then(|| (0, length * 8 - 1)),
    };
    let count = bits.map_or(0, |bits| count_ones(&value, bits));
    Ok(Reply::Integer(count as i64).into())
}

/// The first bit equal to `bit` in bits `[start, end]` of `value`.
fn first_bit(value: &[u8], bit: u8, (start, end): (u64, u64)) -> Option<u64> {
    let mut offset = start;
    while offset <= end {
        let byte = value[(offset >> 3) as usize];
        // Whole bytes that cannot hold the bit are stepped over at once.
        let skip = if bit == 1 { byte == 0 } else { byte == 0xff };
        if offset & 7 == 0 && skip && offset + 7 <= end {
            offset += 8;
            continue;
        }
        if bit_at(value, offset) == bit {
            return Some(offset);
        }
        offset += 1;
    }
    None
}

/// BITPOS key 0|1 [start [end [BYTE | BIT]]].
fn bitpos(session: &mut Session, arguments: &[Bytes]) -> Result<Step, Reply> {
    let bit = match integer(&arguments[1])? {
        bit @ (0 | 1) => bit as u8,
        _ => return Err(Reply::error("ERR The bit argument must be 1 or 0.")),
    };
    let (start, end, unit) = match &arguments[2..] {
        [] => (None, None, Unit::Byte),
        [start] => (Some(integer(start)?), None, Unit::Byte),
        [start, end] => (Some(integer(start)?), Some(integer(end)?), Unit::Byte),
        // Redis's order: the start, then the unit word, then the end (so `1 hello BIT?` is a
        // syntax error before the end is read as a number).
        [start, end, word] => {
            let start = integer(start)?;
            let unit = unit(word)?;
            (Some(start), Some(integer(end)?), unit)
        }
        _ => return Err(Reply::error(SYNTAX_ERROR)),
    };
    check_string(session, &arguments[0])?;
    let Some(value) = session.keys.get(&arguments[0]) else {
        // A missing key is all zeros: its first clear bit is the first; it has no set bit.
        return Ok(Reply::Integer(if bit == 1 { -1 } else { 0 }).into());
    };
    let length = value.len() as u64;
    let last = match unit {
        Unit::Byte => length as i64 - 1,
        Unit::Bit => (length * 8) as i64 - 1,
    };
    let bits = bit_range(length, start.unwrap_or(0), end.unwrap_or(last), unit);
    let position = match bits {
        None => -1,
        Some(bits) => match first_bit(&value, bit, bits) {
            Some(position) => position as i64,
            // Looking for a clear bit with no end given: the string reads on as zeros, so
            // the first one is the bit after it.
            None if bit == 0 && end.is_none() => (bits.1 + 1) as i64,
            None => -1,
        },
    };
    Ok(Reply::Integer(position).into())
}

/// BITOP AND | OR | XOR | NOT destkey key [key …]: the result's length.
fn bitop(session: &mut Session, arguments: &[Bytes]) -> Result<Step, Reply> {
    let operation = lowercase(&arguments[0]);
    if !matches!(operation.as_str(), "and" | "or" | "xor" | "not") {
        return Err(Reply::error(SYNTAX_ERROR));
    }
    let (destination, sources) = (&arguments[1], &arguments[2..]);
    if operation == "not" && sources.len() != 1 {
        return Err(Reply::error(
            "ERR BITOP NOT must be called with a single source key.",
        ));
    }
    for source in sources {
        check_string(session, source)?;
    }
    // A stream is not replaced by a string (SET refuses the same).
    if super::streams::is_stream(session, destination) {
        return Err(Reply::error(super::streams::WRONGTYPE));
    }
    let outcome = session
        .keys
        .combine_strings(destination, sources, SetExpiry::Clear, |values| {
            Some(combine(&operation, values))
        });
    Ok(step(outcome.map(|durable| {
        super::strings::map(durable, |length| {
            Reply::Integer(length.unwrap_or_default() as i64)
        })
    })))
}

/// The sources combined byte by byte, each shorter one read on as zeros, as long as the
/// longest.
fn combine(operation: &str, values: &[Option<Bytes>]) -> Vec<u8> {
    let length = values
        .iter()
        .map(|value| value.as_ref().map_or(0, Bytes::len))
        .max()
        .unwrap_or(0);
    let byte = |value: &Option<Bytes>, at: usize| {
        value
            .as_ref()
            .and_then(|value| value.get(at).copied())
            .unwrap_or(0)
    };
    (0..length)
        .map(|at| {
            let mut bytes = values.iter().map(|value| byte(value, at));
            let first = bytes.next().unwrap_or(0);
            match operation {
                "and" => bytes.fold(first, |all, byte| all & byte),
                "or" => bytes.fold(first, |all, byte| all | byte),
                "xor" => bytes.fold(first, |all, byte| all ^ byte),
                _ => !first,
            }
        })
        .collect()
}

/// SETRANGE key offset value: the string's length after it.
fn setrange(session: &mut Session, arguments: &[Bytes]) -> Result<Step, Reply> {
    let offset = integer(&arguments[1]).map_err(|_| Reply::error(NOT_AN_INTEGER))?;
    let Ok(offset) = usize::try_from(offset) else {
        return Err(Reply::error("ERR offset is out of range"));
    };
    check_string(session, &arguments[0])?;
    let data = &arguments[2];
    let bytes_max = session.shared.config.bulk_bytes_max;
    // Checked before the key is read, as Redis checks it (an empty write changes nothing
    // and is never too long).
    if !data.is_empty() && offset.saturating_add(data.len()) > bytes_max {
        return Err(Reply::error(TOO_LONG));
    }
    let outcome = session.keys.change_string(&arguments[0], |old| {
        let old_length = old.map_or(0, <[u8]>::len);
        if data.is_empty() {
            // Nothing written: a missing key stays missing, a string stays as it is.
            return (None, old_length);
        }
        let mut value = old.map(<[u8]>::to_vec).unwrap_or_default();
        if value.len() < offset + data.len() {
            value.resize(offset + data.len(), 0);
        }
        value[offset..offset + data.len()].copy_from_slice(data);
        let length = value.len();
        (Some(value), length)
    });
    Ok(step(outcome.map(|durable| {
        super::strings::map(durable, |length| Reply::Integer(length as i64))
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ones_are_counted_inside_bit_ranges_only() {
        let value = [0b1111_0000u8, 0xff, 0b0000_1111];
        assert_eq!(count_ones(&value, (0, 23)), 16);
        assert_eq!(count_ones(&value, (2, 5)), 2);
        assert_eq!(count_ones(&value, (4, 19)), 8);
        assert_eq!(count_ones(&value, (20, 23)), 4);
        assert_eq!(bit_range(3, -1, -1, Unit::Byte), Some((16, 23)));
        assert_eq!(bit_range(3, 5, 100, Unit::Bit), Some((5, 23)));
        assert_eq!(bit_range(3, 2, 1, Unit::Byte), None);
        assert_eq!(bit_range(0, 0, -1, Unit::Byte), None);
    }

    #[test]
    fn the_first_bit_is_found_across_whole_bytes() {
        let value = [0u8, 0, 0b0010_0000, 0xff, 0xff];
        assert_eq!(first_bit(&value, 1, (0, 39)), Some(18));
        assert_eq!(first_bit(&value, 1, (19, 23)), None);
        assert_eq!(first_bit(&value, 0, (24, 39)), None);
        assert_eq!(first_bit(&value, 0, (17, 39)), Some(17));
    }

    #[test]
    fn bitop_reads_shorter_sources_as_zeros() {
        let a = Some(Bytes::from_static(&[0b1100, 0xff]));
        let b = Some(Bytes::from_static(&[0b1010]));
        assert_eq!(combine("and", &[a.clone(), b.clone()]), vec![0b1000, 0]);
        assert_eq!(
            combine("or", &[a.clone(), b.clone(), None]),
            vec![0b1110, 0xff]
        );
        assert_eq!(combine("xor", &[a.clone(), b]), vec![0b0110, 0xff]);
        assert_eq!(combine("not", &[a]), vec![!0b1100u8, 0]);
        assert_eq!(combine("and", &[None, None]), Vec::<u8>::new());
    }
}
