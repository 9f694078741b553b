//! Fuzz bodies, shared by the cargo-fuzz targets in `fuzz/` and their proptest twins here.

use bytes::BytesMut;

use crate::codec::{decode_request, FrameDecoder};

/// The largest frame the fuzz body accepts; small, so that inputs exercise the limit.
const FUZZ_FRAME_BYTES_MAX: usize = 64 * 1024;

/// Feeds `data` through the frame decoder in two chunks (split where the first byte says),
/// as a socket might deliver it, and decodes every whole frame as a request. Must never
/// panic, and must never allocate for more than the bytes it was given plus the frame limit.
pub fn request_decoding(data: &[u8]) {
    let Some((&split, data)) = data.split_first() else {
        return;
    };
    let split = (split as usize * data.len()) / 255;
    let (first, second) = data.split_at(split.min(data.len()));
    let decoder = FrameDecoder::new(FUZZ_FRAME_BYTES_MAX);
    let mut buffer = BytesMut::new();
    for chunk in [first, second] {
        buffer.extend_from_slice(chunk);
        loop {
            match decoder.decode(&mut buffer) {
                Ok(Some(frame)) => {
                    let _ = decode_request(frame);
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
    // Also decode the whole input as one frame body: most inputs never get past framing.
    let _ = decode_request(bytes::Bytes::copy_from_slice(data));
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn request_decoding_never_panics(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            request_decoding(&data);
        }

        /// Valid headers with random bodies reach the body decoder more often.
        #[test]
        fn random_bodies_of_every_supported_request_never_panic(
            index in 0usize..crate::codec::versions::SUPPORTED.len(),
            version_offset in 0i16..16,
            body in proptest::collection::vec(any::<u8>(), 0..256),
            flexible_header in any::<bool>(),
        ) {
            let entry = crate::codec::versions::SUPPORTED[index];
            let version = entry.min + version_offset % (entry.max - entry.min + 1);
            let mut frame = Vec::new();
            frame.extend_from_slice(&(entry.key as i16).to_be_bytes());
            frame.extend_from_slice(&version.to_be_bytes());
            frame.extend_from_slice(&42i32.to_be_bytes());
            frame.extend_from_slice(&(-1i16).to_be_bytes());
            if flexible_header {
                frame.push(0);
            }
            frame.extend_from_slice(&body);
            let _ = decode_request(bytes::Bytes::from(frame));
        }
    }
}
