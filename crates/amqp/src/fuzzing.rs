//! Fuzz bodies, shared by the cargo-fuzz target `fuzz/fuzz_targets/amqp_frames.rs` and its
//! proptest twin here: the frame decoder path a session uses, fed arbitrary bytes.

use bytes::BytesMut;

use crate::codec;

/// A small frame_max, so that inputs reach the limit.
const FUZZ_FRAME_MAX: u32 = 4096;

/// Feeds `data` to the decoder in two chunks (split where the first byte says), as a socket
/// might deliver it: the protocol header, then frames, each decoded frame serialised again.
/// Must never panic, and what waits for more bytes is never more than one frame of
/// frame_max.
pub fn frames(data: &[u8]) {
    let Some((&split, data)) = data.split_first() else {
        return;
    };
    let split = (split as usize * data.len()) / 255;
    let (first, second) = data.split_at(split.min(data.len()));
    let mut input = BytesMut::new();
    // Inputs that start with the header test the frames; the others the header check.
    let mut header_read = !data.starts_with(b"AMQP");
    for chunk in [first, second] {
        input.extend_from_slice(chunk);
        if !header_read {
            match codec::decode_protocol_header(&mut input) {
                Ok(Some(())) => header_read = true,
                Ok(None) => continue,
                Err(_) => return,
            }
        }
        loop {
            // The session's zero-copy path for body frames must agree with the full decoder.
            let mut copy = input.clone();
            match codec::take_body(&mut input, FUZZ_FRAME_MAX) {
                Ok(Some((channel, body))) => {
                    let decoded = codec::decode(&mut copy, FUZZ_FRAME_MAX);
                    assert_eq!(
                        decoded,
                        Ok(Some(amq_protocol::frame::AMQPFrame::Body(
                            channel,
                            body.to_vec()
                        )))
                    );
                    assert_eq!(copy, input);
                    continue;
                }
                Ok(None) => {}
                Err(_) => return,
            }
            // And its path for basic.publish, taken without the generated parser.
            let mut copy = input.clone();
            match codec::take_publish(&mut input, FUZZ_FRAME_MAX) {
                Ok(Some((channel, publish))) => {
                    let decoded = codec::decode(&mut copy, FUZZ_FRAME_MAX);
                    assert_eq!(
                        decoded,
                        Ok(Some(amq_protocol::frame::AMQPFrame::Method(
                            channel,
                            amq_protocol::protocol::AMQPClass::Basic(
                                amq_protocol::protocol::basic::AMQPMethod::Publish(publish)
                            )
                        )))
                    );
                    assert_eq!(copy, input);
                    continue;
                }
                Ok(None) => {}
                Err(_) => {
                    assert!(codec::decode(&mut copy, FUZZ_FRAME_MAX).is_err());
                    return;
                }
            }
            // So must its path for content headers, which keeps the encoded properties.
            let mut copy = input.clone();
            match codec::take_header(&mut input, FUZZ_FRAME_MAX) {
                Ok(Some(taken)) => {
                    let decoded = codec::decode(&mut copy, FUZZ_FRAME_MAX);
                    assert_eq!(
                        decoded,
                        Ok(Some(amq_protocol::frame::AMQPFrame::Header(
                            taken.channel,
                            taken.header
                        )))
                    );
                    assert_eq!(copy, input);
                    continue;
                }
                Ok(None) => {}
                Err(_) => {
                    assert!(codec::decode(&mut copy, FUZZ_FRAME_MAX).is_err());
                    return;
                }
            }
            match codec::decode(&mut input, FUZZ_FRAME_MAX) {
                Ok(Some(frame)) => {
                    let mut out = BytesMut::new();
                    codec::encode(&mut out, &frame);
                }
                Ok(None) => {
                    // Only a frame that is allowed, and not whole yet, waits.
                    assert!(input.len() < FUZZ_FRAME_MAX as usize);
                    break;
                }
                Err(_) => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic_the_decoder(data in prop::collection::vec(any::<u8>(), 0..512)) {
            super::frames(&data);
        }

        #[test]
        fn mutated_real_frames_never_panic_the_decoder(
            position in 0usize..64,
            byte in any::<u8>(),
            split in any::<u8>(),
        ) {
            // A method frame (queue.declare) and a content header with properties, one
            // byte changed.
            let mut out = bytes::BytesMut::new();
            crate::codec::encode_content(
                &mut out,
                1,
                amq_protocol::protocol::AMQPClass::Basic(
                    amq_protocol::protocol::basic::AMQPMethod::Publish(
                        amq_protocol::protocol::basic::Publish {
                            exchange: "e".into(),
                            routing_key: "k".into(),
                            mandatory: true,
                            immediate: false,
                        },
                    ),
                ),
                amq_protocol::protocol::basic::AMQPProperties::default()
                    .with_content_type("text/plain".into()),
                b"body",
                4096,
            );
            let mut data = vec![split];
            data.extend_from_slice(b"AMQP\x00\x00\x09\x01");
            data.extend_from_slice(&out);
            let index = position % data.len().max(1);
            if index > 8 {
                data[index] = byte;
            }
            super::frames(&data);
        }
    }
}
