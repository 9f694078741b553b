use amq_protocol::frame::AMQPFrame;
use amq_protocol::protocol::basic::{self, AMQPProperties};
use amq_protocol::protocol::AMQPClass;
use bytes::BytesMut;

use super::*;

fn deliver() -> AMQPClass {
    AMQPClass::Basic(basic::AMQPMethod::Deliver(basic::Deliver {
        consumer_tag: "c".into(),
        delivery_tag: 1,
        redelivered: false,
        exchange: "".into(),
        routing_key: "q".into(),
    }))
}

#[test]
fn a_frame_over_frame_max_is_refused_from_its_header_alone() {
    // Type 1, channel 1, a size of 1 MiB: only the 7 header bytes have arrived.
    let mut input = BytesMut::from(&[1u8, 0, 1, 0, 0x10, 0, 0][..]);
    let refused = decode(&mut input, 128 * 1024);
    assert!(
        matches!(refused, Err(FrameError::TooLarge { .. })),
        "{refused:?}"
    );
}

#[test]
fn a_frame_is_decoded_only_once_whole_and_must_end_with_0xce() {
    let mut whole = BytesMut::new();
    encode_method(&mut whole, 1, deliver());
    let mut input = BytesMut::from(&whole[..whole.len() - 1]);
    assert_eq!(decode(&mut input, 4096).unwrap(), None);
    input.extend_from_slice(&whole[whole.len() - 1..]);
    assert_eq!(
        decode(&mut input, 4096).unwrap(),
        Some(AMQPFrame::Method(1, deliver()))
    );
    assert!(input.is_empty());
    let mut broken = whole.clone();
    let last = broken.len() - 1;
    broken[last] = 0;
    assert_eq!(decode(&mut broken, 4096), Err(FrameError::MissingFrameEnd));
}

#[test]
fn a_body_larger_than_a_frame_is_split_into_frames_of_frame_max() {
    let mut out = BytesMut::new();
    let body = vec![7u8; 10_000];
    encode_content(
        &mut out,
        1,
        deliver(),
        AMQPProperties::default(),
        &body,
        4096,
    );
    let mut frames = Vec::new();
    while let Some(frame) = decode(&mut out, 4096).unwrap() {
        frames.push(frame);
    }
    let bodies: Vec<usize> = frames
        .iter()
        .filter_map(|f| match f {
            AMQPFrame::Body(_, data) => Some(data.len()),
            _ => None,
        })
        .collect();
    assert_eq!(bodies, vec![4088, 4088, 1824]);
    assert!(matches!(frames[1], AMQPFrame::Header(1, ref h) if h.body_size == 10_000));
}

#[test]
fn only_the_0_9_1_protocol_header_is_accepted() {
    let mut partial = BytesMut::from(&b"AMQ"[..]);
    assert_eq!(decode_protocol_header(&mut partial), Ok(None));
    let mut wrong = BytesMut::from(&b"AMQP\x01\x01\x00\x0a"[..]);
    assert_eq!(
        decode_protocol_header(&mut wrong),
        Err(FrameError::WrongProtocolHeader)
    );
    let mut http = BytesMut::from(&b"GET / HTTP/1.1\r\n"[..]);
    assert_eq!(
        decode_protocol_header(&mut http),
        Err(FrameError::WrongProtocolHeader)
    );
    let mut right = BytesMut::from(&PROTOCOL_HEADER[..]);
    assert_eq!(decode_protocol_header(&mut right), Ok(Some(())));
}

#[test]
fn properties_round_trip_through_their_stored_form() {
    let mut headers = amq_protocol::types::FieldTable::default();
    headers.insert("n".into(), amq_protocol::types::AMQPValue::LongLongInt(-1));
    let original = AMQPProperties::default()
        .with_content_type("text/plain".into())
        .with_priority(5)
        .with_headers(headers);
    let stored = properties::encode(&original);
    assert_eq!(properties::decode(&stored), Some(original));
    assert_eq!(properties::decode(b"\xff"), None);
}

#[test]
fn a_body_frame_written_by_hand_is_the_generated_serialiser_s_bytes() {
    for body in [&b""[..], b"x", &[7u8; 5000][..]] {
        let mut by_hand = BytesMut::new();
        encode_body(&mut by_hand, 513, body);
        let mut generated = BytesMut::new();
        encode(&mut generated, &AMQPFrame::Body(513, body.to_vec()));
        assert_eq!(by_hand, generated);
    }
}

fn header_frame(channel: u16, properties: AMQPProperties, body_size: u64) -> BytesMut {
    let mut out = BytesMut::new();
    encode(
        &mut out,
        &AMQPFrame::Header(
            channel,
            AMQPContentHeader {
                class_id: 60,
                body_size,
                properties,
            },
        ),
    );
    out
}

#[test]
fn a_content_header_is_taken_whole_with_its_properties_as_received() {
    let mut table = amq_protocol::types::FieldTable::default();
    table.insert("x-kind".into(), amq_protocol::types::AMQPValue::LongInt(-7));
    let properties = AMQPProperties::default()
        .with_content_type("text/plain".into())
        .with_delivery_mode(2)
        .with_headers(table)
        .with_correlation_id("c-1".into());
    let whole = header_frame(3, properties.clone(), 1_000);
    let mut input = BytesMut::from(&whole[..whole.len() - 1]);
    assert!(take_header(&mut input, 4096).unwrap().is_none());
    input.extend_from_slice(&whole[whole.len() - 1..]);
    // A method frame behind it stays in the input.
    encode_method(&mut input, 3, deliver());
    let taken = take_header(&mut input, 4096)
        .unwrap()
        .expect("a whole header");
    assert_eq!(taken.channel, 3);
    assert_eq!(taken.header.body_size, 1_000);
    assert_eq!(taken.header.class_id, 60);
    assert_eq!(taken.header.properties, properties);
    assert_eq!(&taken.properties[..], &properties::encode(&properties)[..]);
    assert_eq!(
        decode(&mut input, 4096).unwrap(),
        Some(AMQPFrame::Method(3, deliver()))
    );
}

#[test]
fn only_content_headers_are_taken_and_a_damaged_one_is_malformed() {
    let mut method = BytesMut::new();
    encode_method(&mut method, 1, deliver());
    assert!(take_header(&mut method, 4096).unwrap().is_none());
    assert!(!method.is_empty());
    // Property flags that promise a content type the frame does not carry.
    let mut damaged = header_frame(1, AMQPProperties::default(), 5);
    let flags_at = FRAME_HEADER_BYTES + 12;
    damaged[flags_at] = 0x80;
    assert_eq!(
        take_header(&mut damaged, 4096).unwrap_err(),
        FrameError::Malformed
    );
    // Shorter than class, weight and body size.
    let mut short = BytesMut::from(&[2u8, 0, 1, 0, 0, 0, 2, 0, 60, FRAME_END][..]);
    assert_eq!(
        take_header(&mut short, 4096).unwrap_err(),
        FrameError::Malformed
    );
}

fn publish_frame(channel: u16, publish: basic::Publish) -> BytesMut {
    let mut frame = BytesMut::new();
    encode_method(
        &mut frame,
        channel,
        AMQPClass::Basic(basic::AMQPMethod::Publish(publish)),
    );
    frame
}

#[test]
fn a_publish_is_taken_with_the_fields_the_generated_parser_reads() {
    let publish = basic::Publish {
        exchange: "amq.topic".into(),
        routing_key: "order.créé".into(),
        mandatory: true,
        immediate: false,
    };
    let mut input = publish_frame(5, publish.clone());
    // The frame after it is left for the next call.
    encode_method(&mut input, 3, deliver());
    assert_eq!(take_publish(&mut input, 4096).unwrap(), Some((5, publish)));
    assert!(take_publish(&mut input, 4096).unwrap().is_none());
    assert_eq!(
        decode(&mut input, 4096).unwrap(),
        Some(AMQPFrame::Method(3, deliver()))
    );
}

#[test]
fn a_partial_or_damaged_publish_is_left_for_decode_to_judge() {
    let whole = publish_frame(
        1,
        basic::Publish {
            exchange: "".into(),
            routing_key: "q".into(),
            mandatory: false,
            immediate: true,
        },
    );
    let mut partial = BytesMut::from(&whole[..whole.len() - 1]);
    assert!(take_publish(&mut partial, 4096).unwrap().is_none());
    assert_eq!(partial.len(), whole.len() - 1);
    // A routing key that is not UTF-8: not taken, and decode refuses it.
    let mut damaged = whole.clone();
    let key_at = FRAME_HEADER_BYTES + 4 + 2 + 1 + 1;
    assert_eq!(damaged[key_at], b'q');
    damaged[key_at] = 0xff;
    assert!(take_publish(&mut damaged, 4096).unwrap().is_none());
    assert_eq!(decode(&mut damaged, 4096), Err(FrameError::Malformed));
    // A missing frame end is the same error as decode gives.
    let mut unended = whole.clone();
    let last = unended.len() - 1;
    unended[last] = 0;
    assert_eq!(
        take_publish(&mut unended, 4096),
        Err(FrameError::MissingFrameEnd)
    );
}

proptest::proptest! {
    /// Whatever a method frame holds, `take_publish` takes it only as the generated parser
    /// reads it: a frame of class 60 method 40 followed by arbitrary bytes is either left
    /// (for `decode`) or taken with exactly the fields `decode` gives.
    #[test]
    fn take_publish_agrees_with_the_generated_parser(
        channel in 0u16..4,
        tail in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..24),
        key_bytes in 0u8..6,
        exchange_bytes in 0u8..4,
    ) {
        let mut payload = vec![0u8, 60, 0, 40, 0, 0, exchange_bytes];
        payload.extend(tail.iter().take(usize::from(exchange_bytes)));
        payload.push(key_bytes);
        payload.extend(tail.iter().rev().take(usize::from(key_bytes)));
        payload.extend(tail.iter().skip(12).take(2));
        let mut frame = BytesMut::new();
        frame.extend_from_slice(&[FRAME_TYPE_METHOD]);
        frame.extend_from_slice(&channel.to_be_bytes());
        frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        frame.extend_from_slice(&payload);
        frame.extend_from_slice(&[FRAME_END]);
        let mut for_decode = frame.clone();
        let decoded = decode(&mut for_decode, 4096);
        match take_publish(&mut frame, 4096).unwrap() {
            Some((taken_channel, publish)) => {
                proptest::prop_assert_eq!(
                    decoded,
                    Ok(Some(AMQPFrame::Method(
                        taken_channel,
                        AMQPClass::Basic(basic::AMQPMethod::Publish(publish)),
                    )))
                );
                proptest::prop_assert!(frame.is_empty());
            }
            None => {
                proptest::prop_assert!(
                    !matches!(
                        decoded,
                        Ok(Some(AMQPFrame::Method(
                            _,
                            AMQPClass::Basic(basic::AMQPMethod::Publish(_))
                        )))
                    ),
                    "a publish the generated parser reads was not taken: {:?}",
                    decoded
                );
            }
        }
    }
}

#[test]
fn basic_qos_with_a_byte_window_is_refused_and_without_one_decodes() {
    // Method frame, channel 1: class 60 method 10, prefetch-size, prefetch-count 10, global.
    let qos = |size: u32| {
        let mut frame = vec![1u8, 0, 1, 0, 0, 0, 11, 0, 60, 0, 10];
        frame.extend_from_slice(&size.to_be_bytes());
        frame.extend_from_slice(&[0, 10, 0, FRAME_END]);
        BytesMut::from(&frame[..])
    };
    assert_eq!(
        decode(&mut qos(4096), 4096),
        Err(FrameError::PrefetchSize(4096))
    );
    assert_eq!(
        decode(&mut qos(0), 4096).unwrap(),
        Some(AMQPFrame::Method(
            1,
            AMQPClass::Basic(basic::AMQPMethod::Qos(basic::Qos {
                prefetch_count: 10,
                global: false,
            }))
        ))
    );
}
