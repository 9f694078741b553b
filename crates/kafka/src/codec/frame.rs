//! Kafka framing: every request and response is a big-endian `i32` length followed by that many
//! bytes. The length is checked against `frame_bytes_max` as soon as its four bytes arrive, so
//! an oversized or negative claim closes the connection before any buffer grows for it.

use bytes::{Buf, Bytes, BytesMut};

use super::CodecError;

/// Bytes of the length prefix.
pub const LENGTH_BYTES: usize = 4;
/// A read buffer grows by at most this much at a time, so a frame that claims many bytes but
/// sends few costs little memory.
const READ_CHUNK_BYTES_MAX: usize = 1024 * 1024;
const READ_CHUNK_BYTES_MIN: usize = 8 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameDecoder {
    frame_bytes_max: usize,
}

impl FrameDecoder {
    pub fn new(frame_bytes_max: usize) -> FrameDecoder {
        FrameDecoder { frame_bytes_max }
    }

    /// Takes one whole frame (without its length prefix) off the front of `buffer`, or returns
    /// `None` when more bytes are needed.
    pub fn decode(&self, buffer: &mut BytesMut) -> Result<Option<Bytes>, CodecError> {
        let Some(length) = self.peek_length(buffer)? else {
            return Ok(None);
        };
        if buffer.len() < LENGTH_BYTES + length {
            return Ok(None);
        }
        buffer.advance(LENGTH_BYTES);
        Ok(Some(buffer.split_to(length).freeze()))
    }

    /// How many more bytes `buffer` should have room for before the next read: enough for the
    /// rest of the current frame, but never more than one chunk at a time.
    pub fn reserve_hint(&self, buffer: &BytesMut) -> usize {
        let wanted = match self.peek_length(buffer) {
            Ok(Some(length)) => (LENGTH_BYTES + length).saturating_sub(buffer.len()),
            _ => 0,
        };
        wanted.clamp(READ_CHUNK_BYTES_MIN, READ_CHUNK_BYTES_MAX)
    }

    fn peek_length(&self, buffer: &BytesMut) -> Result<Option<usize>, CodecError> {
        let Some(prefix) = buffer.get(..LENGTH_BYTES) else {
            return Ok(None);
        };
        let length = i32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
        if length < 0 {
            return Err(CodecError::NegativeLength(length));
        }
        let length = length as usize;
        if length > self.frame_bytes_max {
            return Err(CodecError::FrameTooLarge {
                bytes: length,
                max: self.frame_bytes_max,
            });
        }
        Ok(Some(length))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn framed(payloads: &[Vec<u8>]) -> Vec<u8> {
        let mut out = Vec::new();
        for payload in payloads {
            out.extend_from_slice(&(payload.len() as i32).to_be_bytes());
            out.extend_from_slice(payload);
        }
        out
    }

    #[test]
    fn an_oversized_length_is_refused_before_the_frame_arrives() {
        let decoder = FrameDecoder::new(1024);
        let mut buffer = BytesMut::from(&1025i32.to_be_bytes()[..]);
        assert!(matches!(
            decoder.decode(&mut buffer),
            Err(CodecError::FrameTooLarge {
                bytes: 1025,
                max: 1024
            })
        ));
    }

    #[test]
    fn a_negative_length_is_refused() {
        let decoder = FrameDecoder::new(1024);
        let mut buffer = BytesMut::from(&(-1i32).to_be_bytes()[..]);
        assert!(matches!(
            decoder.decode(&mut buffer),
            Err(CodecError::NegativeLength(-1))
        ));
    }

    #[test]
    fn a_partial_frame_waits_and_reserves_at_most_one_chunk() {
        let decoder = FrameDecoder::new(usize::MAX >> 1);
        let mut buffer = BytesMut::from(&(i32::MAX).to_be_bytes()[..]);
        assert_eq!(decoder.decode(&mut buffer).unwrap(), None);
        assert_eq!(decoder.reserve_hint(&buffer), READ_CHUNK_BYTES_MAX);
        assert_eq!(buffer.len(), 4, "nothing consumed while waiting");
    }

    #[test]
    fn an_empty_frame_is_a_frame() {
        let decoder = FrameDecoder::new(16);
        let mut buffer = BytesMut::from(&framed(&[vec![]])[..]);
        assert_eq!(decoder.decode(&mut buffer).unwrap(), Some(Bytes::new()));
        assert!(buffer.is_empty());
    }

    proptest! {
        /// However the byte stream is cut into reads, the same frames come out, in order.
        #[test]
        fn split_chunks_reassemble_into_the_same_frames(
            payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..8),
            cuts in proptest::collection::vec(0usize..2000, 0..12),
        ) {
            let stream = framed(&payloads);
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (stream.len() + 1)).collect();
            cuts.push(stream.len());
            cuts.sort_unstable();
            let decoder = FrameDecoder::new(300);
            let mut buffer = BytesMut::new();
            let mut frames = Vec::new();
            let mut start = 0;
            for cut in cuts {
                buffer.extend_from_slice(&stream[start..cut]);
                start = cut;
                while let Some(frame) = decoder.decode(&mut buffer).unwrap() {
                    frames.push(frame.to_vec());
                }
            }
            prop_assert_eq!(frames, payloads);
            prop_assert!(buffer.is_empty());
        }
    }
}
