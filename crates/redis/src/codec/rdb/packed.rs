//! The compact encodings inside RDB values (`super`): intsets, listpacks (their entries as
//! Redis writes them, integers in every width, given back as decimal text) and LZF
//! compression. Each checks its lengths against the bytes it was given before reading or
//! allocating.

use bytes::Bytes;

pub(super) fn number(value: i64) -> Bytes {
    Bytes::from(value.to_string())
}

/// The integers of an intset: its width (2, 4 or 8 bytes), its count, then the integers,
/// little-endian.
pub(super) fn intset(blob: &[u8]) -> Option<Vec<Bytes>> {
    if blob.len() < 8 {
        return None;
    }
    let width = u32::from_le_bytes(blob[0..4].try_into().ok()?) as usize;
    let count = u32::from_le_bytes(blob[4..8].try_into().ok()?) as usize;
    let body = &blob[8..];
    if !matches!(width, 2 | 4 | 8) || count.checked_mul(width)? != body.len() {
        return None;
    }
    Some(
        body.chunks(width)
            .map(|chunk| {
                number(match width {
                    2 => i64::from(i16::from_le_bytes(chunk.try_into().expect("2"))),
                    4 => i64::from(i32::from_le_bytes(chunk.try_into().expect("4"))),
                    _ => i64::from_le_bytes(chunk.try_into().expect("8")),
                })
            })
            .collect(),
    )
}

/// The entries of a listpack: its total size and count (6 bytes), then entries (an
/// encoding byte, the value, and the entry's length written backwards), then 0xFF.
pub(super) fn listpack(blob: &[u8]) -> Option<Vec<Bytes>> {
    if blob.len() < 7 || u32::from_le_bytes(blob[0..4].try_into().ok()?) as usize != blob.len() {
        return None;
    }
    let mut at = 6;
    let mut items = Vec::new();
    loop {
        let first = *blob.get(at)?;
        if first == 0xff {
            return (at + 1 == blob.len()).then_some(items);
        }
        let rest = &blob[at..];
        let int = |width: usize| -> Option<i64> {
            let bytes = rest.get(1..1 + width)?;
            let mut buffer = [0u8; 8];
            buffer[..width].copy_from_slice(bytes);
            let shift = 64 - 8 * width as u32;
            Some((i64::from_le_bytes(buffer) << shift) >> shift)
        };
        let (item, length) = match first {
            0x00..=0x7f => (number(i64::from(first)), 1),
            0x80..=0xbf => {
                let len = usize::from(first & 0x3f);
                (Bytes::copy_from_slice(rest.get(1..1 + len)?), 1 + len)
            }
            0xc0..=0xdf => {
                let raw = (i64::from(first & 0x1f) << 8) | i64::from(*rest.get(1)?);
                (
                    number(if raw >= 1 << 12 { raw - (1 << 13) } else { raw }),
                    2,
                )
            }
            0xe0..=0xef => {
                let len = (usize::from(first & 0x0f) << 8) | usize::from(*rest.get(1)?);
                (Bytes::copy_from_slice(rest.get(2..2 + len)?), 2 + len)
            }
            0xf0 => {
                let len = u32::from_le_bytes(rest.get(1..5)?.try_into().ok()?) as usize;
                (
                    Bytes::copy_from_slice(rest.get(5..5usize.checked_add(len)?)?),
                    5 + len,
                )
            }
            0xf1 => (number(int(2)?), 3),
            0xf2 => (number(int(3)?), 4),
            0xf3 => (number(int(4)?), 5),
            0xf4 => (number(int(8)?), 9),
            _ => return None,
        };
        let back = match length {
            0..=127 => 1,
            128..=16_383 => 2,
            16_384..=2_097_151 => 3,
            2_097_152..=268_435_455 => 4,
            _ => 5,
        };
        at = at.checked_add(length)?.checked_add(back)?;
        if at > blob.len() {
            return None;
        }
        items.push(item);
    }
}

/// LZF (liblzf's format): literal runs and back references, into exactly `plain` bytes.
pub(super) fn lzf_decompress(input: &[u8], plain: usize) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(plain.min(input.len().saturating_mul(256)));
    let mut at = 0;
    while at < input.len() {
        let control = usize::from(input[at]);
        at += 1;
        if control < 32 {
            let run = control + 1;
            out.extend_from_slice(input.get(at..at + run)?);
            at += run;
        } else {
            let mut len = control >> 5;
            if len == 7 {
                len += usize::from(*input.get(at)?);
                at += 1;
            }
            let back = ((control & 0x1f) << 8) + usize::from(*input.get(at)?) + 1;
            at += 1;
            let start = out.len().checked_sub(back)?;
            for offset in 0..len + 2 {
                let byte = out[start + offset];
                out.push(byte);
            }
        }
        if out.len() > plain {
            return None;
        }
    }
    (out.len() == plain).then_some(out)
}
