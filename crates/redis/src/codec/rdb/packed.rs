//! The compact encodings inside RDB values (`super`): intsets and listpacks (their entries
//! as Redis writes them, integers in every width, given back as decimal text). Each checks
//! its lengths against the bytes it was given before reading or allocating.

use bytes::Bytes;

/// What a payload may take in memory once read ([`Budget`]): 512 MiB (Redis's largest
/// string; a RESTORE itself is at most `max_request_bytes`, 128 MiB by default).
pub const DECODED_BYTES_MAX: usize = 512 * 1024 * 1024;

/// What each value read costs besides its bytes (its handle and its place in a list).
const ITEM_OVERHEAD: usize = 48;

/// The memory a payload's reading may still take: every string, listpack item and stream
/// field is counted before it is allocated, so a small payload that expands (LZF, a
/// listpack of one-byte integers) is refused instead of taking the broker's memory.
#[derive(Debug)]
pub(crate) struct Budget {
    left: usize,
    pub(crate) exceeded: bool,
}

impl Default for Budget {
    fn default() -> Budget {
        Budget {
            left: DECODED_BYTES_MAX,
            exceeded: false,
        }
    }
}

impl Budget {
    #[cfg(test)]
    pub(crate) fn with_left(left: usize) -> Budget {
        Budget {
            left,
            exceeded: false,
        }
    }

    /// Takes `bytes` plus the overhead of one value; `None` (and `exceeded`) past the bound.
    pub(crate) fn spend(&mut self, bytes: usize) -> Option<()> {
        match self.left.checked_sub(bytes.saturating_add(ITEM_OVERHEAD)) {
            Some(left) => {
                self.left = left;
                Some(())
            }
            None => {
                self.exceeded = true;
                None
            }
        }
    }
}

pub(super) fn number(value: i64) -> Bytes {
    Bytes::from(value.to_string())
}

/// The integers of an intset: its width (2, 4 or 8 bytes), its count, then the integers,
/// little-endian.
pub(super) fn intset(blob: &[u8], budget: &mut Budget) -> Option<Vec<Bytes>> {
    if blob.len() < 8 {
        return None;
    }
    let width = u32::from_le_bytes(blob[0..4].try_into().ok()?) as usize;
    let count = u32::from_le_bytes(blob[4..8].try_into().ok()?) as usize;
    let body = &blob[8..];
    if !matches!(width, 2 | 4 | 8) || count.checked_mul(width)? != body.len() {
        return None;
    }
    budget.spend(count.checked_mul(20 + 48)?)?;
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
pub(super) fn listpack(blob: &[u8], budget: &mut Budget) -> Option<Vec<Bytes>> {
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
        let back = backlen_size(length);
        at = at.checked_add(length)?.checked_add(back)?;
        if at > blob.len() {
            return None;
        }
        budget.spend(item.len())?;
        items.push(item);
    }
}

/// How many bytes an entry's length written backwards takes (listpack.c's
/// `lpEncodeBacklen`: its bounds are exclusive past the first).
fn backlen_size(length: usize) -> usize {
    match length {
        0..=127 => 1,
        128..=16_382 => 2,
        16_383..=2_097_150 => 3,
        2_097_151..=268_435_454 => 4,
        _ => 5,
    }
}

/// An item to write into a listpack.
pub(super) enum Item<'a> {
    Int(i64),
    Bytes(&'a [u8]),
}

/// A listpack of `items`: integers in the narrowest encoding that holds them, strings as
/// they are (Redis reads a string item where it wants a number, but writes numbers so).
pub(super) fn write_listpack(items: &[Item<'_>]) -> Vec<u8> {
    let mut out = vec![0u8; 6];
    let mut entry = Vec::new();
    for item in items {
        entry.clear();
        match *item {
            Item::Int(value @ 0..=127) => entry.push(value as u8),
            Item::Int(value @ -4096..=4095) => {
                let raw = (value & 0x1fff) as u16;
                entry.extend_from_slice(&[0xc0 | (raw >> 8) as u8, raw as u8]);
            }
            Item::Int(value) => {
                let (code, width) = match value {
                    -32_768..=32_767 => (0xf1, 2),
                    -8_388_608..=8_388_607 => (0xf2, 3),
                    -2_147_483_648..=2_147_483_647 => (0xf3, 4),
                    _ => (0xf4, 8),
                };
                entry.push(code);
                entry.extend_from_slice(&value.to_le_bytes()[..width]);
            }
            Item::Bytes(bytes) => {
                let len = bytes.len();
                if len < 64 {
                    entry.push(0x80 | len as u8);
                } else if len < 4096 {
                    entry.extend_from_slice(&[0xe0 | (len >> 8) as u8, len as u8]);
                } else {
                    entry.push(0xf0);
                    entry.extend_from_slice(&(len as u32).to_le_bytes());
                }
                entry.extend_from_slice(bytes);
            }
        }
        out.extend_from_slice(&entry);
        // The entry's length, 7 bits a byte, most significant first; every byte but the
        // first flagged, so it reads back from its end.
        let length = entry.len() as u64;
        let size = backlen_size(entry.len());
        for at in (0..size).rev() {
            let bits = ((length >> (7 * at)) & 0x7f) as u8;
            out.push(if at + 1 == size { bits } else { bits | 0x80 });
        }
    }
    out.push(0xff);
    let total = out.len() as u32;
    out[0..4].copy_from_slice(&total.to_le_bytes());
    let count = u16::try_from(items.len()).unwrap_or(u16::MAX);
    out[4..6].copy_from_slice(&count.to_le_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listpacks_written_read_back_at_every_width_and_length_boundary() {
        let numbers = [
            0,
            127,
            128,
            -1,
            4095,
            -4096,
            4096,
            32_767,
            -32_769,
            8_388_607,
            -8_388_609,
            2_147_483_647,
            i64::MIN,
            i64::MAX,
        ];
        // Strings whose entries are 127, 16,382, 16,383 bytes long (the backlen's bounds).
        let strings: Vec<Vec<u8>> = [126usize, 16_377, 16_378, 5]
            .iter()
            .map(|&len| vec![b'x'; len])
            .collect();
        let mut items: Vec<Item> = numbers.iter().map(|&n| Item::Int(n)).collect();
        items.extend(strings.iter().map(|s| Item::Bytes(s)));
        let read = listpack(&write_listpack(&items), &mut Budget::default()).unwrap();
        let mut expected: Vec<Bytes> = numbers.iter().map(|&n| number(n)).collect();
        expected.extend(strings.iter().map(|s| Bytes::copy_from_slice(s)));
        assert_eq!(read, expected);
        // The bounds as Redis writes them: 127 takes 1 byte, 16,382 two, 16,383 three.
        assert_eq!(
            [127, 128, 16_382, 16_383, 2_097_150, 2_097_151].map(backlen_size),
            [1, 2, 2, 3, 3, 4]
        );
    }
}
