//! basic.deliver written directly, the busiest thing a consumer's connection sends.
//!
//! The generated serialiser builds owned short strings for the consumer tag, exchange and
//! routing key, serialises the method and the content header each into a fresh `Vec`, and
//! re-encodes properties that were stored already encoded (`properties.rs`): about ten
//! allocations per delivery, on the path where a request-reply round trip spends its CPU.
//! Here the method frame is written field by field into the connection's buffer, and the
//! content header carries the stored property bytes as they are. The caller passes those
//! bytes only after `properties::decode` accepted them (a record from another door could
//! carry anything under that header name). Tests check the bytes equal the generated
//! serialiser's.

use bytes::{BufMut, BytesMut};

use super::{encode_body, FRAME_END, FRAME_HEADER_BYTES};

const FRAME_TYPE_METHOD: u8 = 1;
const FRAME_TYPE_HEADER: u8 = 2;
const CLASS_BASIC: u16 = 60;
const METHOD_DELIVER: u16 = 60;
const SHORT_STRING_BYTES_MAX: usize = 255;

/// The fields of one basic.deliver.
pub struct Deliver<'a> {
    pub consumer_tag: &'a str,
    pub delivery_tag: u64,
    pub redelivered: bool,
    pub exchange: &'a str,
    pub routing_key: &'a str,
}

/// Appends basic.deliver, its content header with `properties` (already encoded, flags
/// first) and its body in frames of at most `frame_max` bytes. `false`, with nothing
/// written, when a name is too long for a short string (the caller then uses the generic
/// path, which refuses it the same way it always did).
pub fn encode_deliver(
    out: &mut BytesMut,
    channel: u16,
    deliver: &Deliver<'_>,
    properties: &[u8],
    body: &[u8],
    frame_max: u32,
) -> bool {
    let names = [deliver.consumer_tag, deliver.exchange, deliver.routing_key];
    if names.iter().any(|name| name.len() > SHORT_STRING_BYTES_MAX) {
        return false;
    }
    let method_bytes = 4 + names.iter().map(|name| 1 + name.len()).sum::<usize>() + 8 + 1;
    let header_bytes = 12 + properties.len();
    out.reserve(2 * (FRAME_HEADER_BYTES + 1) + method_bytes + header_bytes + body.len() + 8);
    frame_start(out, FRAME_TYPE_METHOD, channel, method_bytes);
    out.put_u16(CLASS_BASIC);
    out.put_u16(METHOD_DELIVER);
    short_string(out, deliver.consumer_tag);
    out.put_u64(deliver.delivery_tag);
    out.put_u8(u8::from(deliver.redelivered));
    short_string(out, deliver.exchange);
    short_string(out, deliver.routing_key);
    out.put_u8(FRAME_END);
    frame_start(out, FRAME_TYPE_HEADER, channel, header_bytes);
    out.put_u16(CLASS_BASIC);
    out.put_u16(0); // weight, always 0
    out.put_u64(body.len() as u64);
    out.put_slice(properties);
    out.put_u8(FRAME_END);
    let chunk = (frame_max as usize)
        .saturating_sub(FRAME_HEADER_BYTES + 1)
        .max(1);
    for piece in body.chunks(chunk) {
        encode_body(out, channel, piece);
    }
    true
}

fn frame_start(out: &mut BytesMut, frame_type: u8, channel: u16, size: usize) {
    out.put_u8(frame_type);
    out.put_u16(channel);
    out.put_u32(size as u32);
}

fn short_string(out: &mut BytesMut, text: &str) {
    out.put_u8(text.len() as u8);
    out.put_slice(text.as_bytes());
}

#[cfg(test)]
mod tests {
    use amq_protocol::protocol::basic::{self, AMQPProperties};
    use amq_protocol::protocol::AMQPClass;
    use amq_protocol::types::{AMQPValue, FieldTable};

    use super::*;
    use crate::codec::{encode_content, properties};

    fn generic(deliver: &Deliver<'_>, properties: AMQPProperties, body: &[u8]) -> BytesMut {
        let method = AMQPClass::Basic(basic::AMQPMethod::Deliver(basic::Deliver {
            consumer_tag: deliver.consumer_tag.into(),
            delivery_tag: deliver.delivery_tag,
            redelivered: deliver.redelivered,
            exchange: deliver.exchange.into(),
            routing_key: deliver.routing_key.into(),
        }));
        let mut out = BytesMut::new();
        encode_content(&mut out, 7, method, properties, body, 4096);
        out
    }

    #[test]
    fn a_direct_delivery_is_byte_for_byte_what_the_generated_serialiser_writes() {
        let mut headers = FieldTable::default();
        headers.insert("x-retries".into(), AMQPValue::LongInt(3));
        let cases = [
            AMQPProperties::default(),
            AMQPProperties::default()
                .with_correlation_id("abc".into())
                .with_reply_to("amq.rabbitmq.reply-to.1.2".into())
                .with_delivery_mode(2)
                .with_priority(5)
                .with_headers(headers)
                .with_timestamp(1_700_000_000),
        ];
        let long_tag = "t".repeat(255);
        let names = [
            ("ctag-1", "", "rpc_queue"),
            (long_tag.as_str(), "amq.topic", "a.b.c"),
        ];
        // Empty, one frame, and several frames at frame_max 4096.
        let bodies = [Vec::new(), vec![1u8; 100], vec![2u8; 10_000]];
        for props in &cases {
            let stored = properties::encode(props);
            assert_eq!(properties::decode(&stored).as_ref(), Some(props));
            for (consumer_tag, exchange, routing_key) in names {
                for (index, body) in bodies.iter().enumerate() {
                    let deliver = Deliver {
                        consumer_tag,
                        delivery_tag: 1 + index as u64 * 1_000_000_007,
                        redelivered: index == 1,
                        exchange,
                        routing_key,
                    };
                    let mut direct = BytesMut::new();
                    assert!(encode_deliver(
                        &mut direct,
                        7,
                        &deliver,
                        &stored,
                        body,
                        4096
                    ));
                    assert_eq!(direct, generic(&deliver, props.clone(), body));
                }
            }
        }
    }

    #[test]
    fn a_name_too_long_for_a_short_string_writes_nothing() {
        let long = "x".repeat(256);
        let deliver = Deliver {
            consumer_tag: "c",
            delivery_tag: 1,
            redelivered: false,
            exchange: "",
            routing_key: &long,
        };
        let mut out = BytesMut::new();
        assert!(!encode_deliver(
            &mut out,
            1,
            &deliver,
            &[0, 0],
            b"body",
            4096
        ));
        assert!(out.is_empty());
    }
}
