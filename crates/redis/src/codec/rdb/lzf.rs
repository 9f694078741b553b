//! LZF, liblzf's format, which Redis uses for strings in payloads (`rdbcompression`): a
//! control byte under 32 opens a run of that many plus one literal bytes; above it, its top
//! three bits (7: plus the next byte) are a copy's length less two, and its low five bits
//! with the next byte its distance back less one (at most 8,192 back, at most 264 long).
//! Written here from the format's description.

/// The longest copy (7 + 255 in its length bytes, plus two).
const COPY_MAX: usize = 264;
/// The farthest back a copy reaches.
const DISTANCE_MAX: usize = 8_192;
/// The longest run of literals under one control byte.
const LITERALS_MAX: usize = 32;
/// Bits of the table of places seen, found by the hash of their next three bytes.
const TABLE_BITS: u32 = 14;

/// `input` compressed, if that takes at most `limit` bytes (`None` otherwise: the caller
/// writes it plain).
pub(super) fn compress(input: &[u8], limit: usize) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(limit.min(input.len()));
    // Each slot: one more than the last place whose three bytes hashed there (0: none).
    let mut table = vec![0usize; 1 << TABLE_BITS];
    let hash = |at: usize| {
        let word =
            u32::from(input[at]) << 16 | u32::from(input[at + 1]) << 8 | u32::from(input[at + 2]);
        (word.wrapping_mul(0x9e37_79b1) >> (32 - TABLE_BITS)) as usize
    };
    let (mut at, mut literals) = (0, 0);
    while at + 2 < input.len() {
        let slot = hash(at);
        let seen = std::mem::replace(&mut table[slot], at + 1);
        if let Some(from) = seen.checked_sub(1) {
            let distance = at - from;
            if distance <= DISTANCE_MAX && input[from..from + 3] == input[at..at + 3] {
                let longest = COPY_MAX.min(input.len() - at);
                let mut length = 3;
                while length < longest && input[from + length] == input[at + length] {
                    length += 1;
                }
                push_literals(&mut out, &input[literals..at]);
                let (code, back) = (length - 2, distance - 1);
                if code < 7 {
                    out.push((code << 5) as u8 | (back >> 8) as u8);
                } else {
                    out.extend_from_slice(&[(7 << 5) | (back >> 8) as u8, (code - 7) as u8]);
                }
                out.push(back as u8);
                // The places inside the copy are remembered too: later copies find them.
                for inside in at + 1..(at + length).min(input.len() - 2) {
                    table[hash(inside)] = inside + 1;
                }
                at += length;
                literals = at;
                if out.len() > limit {
                    return None;
                }
                continue;
            }
        }
        at += 1;
    }
    push_literals(&mut out, &input[literals..]);
    (out.len() <= limit).then_some(out)
}

fn push_literals(out: &mut Vec<u8>, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        let run = bytes.len().min(LITERALS_MAX);
        out.push((run - 1) as u8);
        out.extend_from_slice(&bytes[..run]);
        bytes = &bytes[run..];
    }
}

/// LZF (liblzf's format): literal runs and back references, into exactly `plain` bytes.
pub(super) fn decompress(input: &[u8], plain: usize) -> Option<Vec<u8>> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_and_back_references_expand() {
        // "a", then a copy of 8 from 1 back: ten "a"s.
        assert_eq!(
            decompress(&[0x00, b'a', 0xe0, 0x00, 0x00], 10),
            Some(b"aaaaaaaaaa".to_vec())
        );
        assert_eq!(decompress(&[0x00, b'a', 0xe0, 0x00, 0x00], 9), None);
        // A copy reaching before the start.
        assert_eq!(decompress(&[0x20, 0x05], 3), None);
    }

    #[test]
    fn what_is_compressed_expands_to_itself() {
        let mut samples: Vec<Vec<u8>> = vec![
            b"abc".repeat(1_000),
            vec![b'x'; 100_000],
            (0..20_000u32).flat_map(|n| n.to_le_bytes()).collect(),
            b"{\"job\":\"mail\",\"to\":\"someone@example.com\",\"attempt\":1}".repeat(40),
        ];
        // Bytes that do not repeat: no gain, so none.
        let mut state = 0x1234_5678u32;
        samples.push(
            (0..4_000)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 17;
                    state ^= state << 5;
                    state as u8
                })
                .collect(),
        );
        for (index, sample) in samples.iter().enumerate() {
            match compress(sample, sample.len() - 4) {
                Some(packed) => {
                    assert!(packed.len() < sample.len() - 4, "sample {index}");
                    if index < 2 {
                        assert!(packed.len() < sample.len() / 10, "sample {index}");
                    }
                    assert_eq!(decompress(&packed, sample.len()).as_ref(), Some(sample));
                }
                None => assert_eq!(index, 4, "sample {index} did not compress"),
            }
        }
        // At the limits: the longest copy, the farthest distance.
        let mut far = vec![0u8; 8_192 + 300];
        far[..300].copy_from_slice(&b"0123456789".repeat(30));
        far[8_192..].copy_from_slice(&b"0123456789".repeat(30));
        for (at, byte) in far[300..8_192].iter_mut().enumerate() {
            *byte = (at * 7 % 251) as u8 + 1;
        }
        let packed = compress(&far, far.len()).unwrap();
        assert_eq!(decompress(&packed, far.len()), Some(far));
    }

    proptest::proptest! {
        /// Any bytes: compressed, they expand to themselves (or are left plain).
        #[test]
        fn any_bytes_compress_and_expand(
            pieces in proptest::collection::vec((proptest::collection::vec(proptest::prelude::any::<u8>(), 1..12), 1usize..40), 0..40),
        ) {
            let data: Vec<u8> = pieces.iter().flat_map(|(piece, times)| piece.repeat(*times)).collect();
            if let Some(packed) = compress(&data, data.len()) {
                proptest::prop_assert_eq!(decompress(&packed, data.len()), Some(data));
            }
        }
    }
}
