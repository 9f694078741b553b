//! Entry points for the fuzz targets (`fuzz/fuzz_targets/amqp_frames.rs`): the frame decoder
//! path the session uses, fed arbitrary bytes in two chunks so the partial-read paths run.

use bytes::BytesMut;

use crate::codec;
use crate::config::FRAME_MAX_DEFAULT;

/// Decodes `data` as a session would (protocol header, then frames), delivering it in two
/// reads split at `split`. Never panics; an error ends the input as it ends a connection.
pub fn decode_frames(data: &[u8], split: usize) {
    let split = split.min(data.len());
    let mut input = BytesMut::new();
    let mut header_read = false;
    for chunk in [&data[..split], &data[split..]] {
        input.extend_from_slice(chunk);
        if !header_read {
            match codec::decode_protocol_header(&mut input) {
                Ok(Some(())) => header_read = true,
                Ok(None) => continue,
                Err(_) => return,
            }
        }
        loop {
            match codec::decode(&mut input, FRAME_MAX_DEFAULT) {
                Ok(Some(frame)) => {
                    // Re-encoding what was decoded must not panic either.
                    let mut out = BytesMut::new();
                    codec::encode(&mut out, &frame);
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
}
