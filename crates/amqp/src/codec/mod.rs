//! The sans-I/O codec: bytes in, frames out, and frames to bytes — no socket here.
//!
//! Parsing and serialising of every method, content header and field table is the
//! `amq-protocol` crate's generated code. What this module adds is the framing discipline
//! around it: the frame's size is read from its 7-byte header and checked against the
//! negotiated `frame_max` *before* anything is buffered or decoded, a frame is handed to the
//! generated parser only when it is whole, and a body larger than a frame is split.

pub mod deliver;
pub mod properties;

use amq_protocol::frame::{gen_frame, parse_frame, AMQPContentHeader, AMQPFrame, WriteContext};
use amq_protocol::protocol::basic::{self, parse_properties, AMQPProperties, Publish};
use amq_protocol::protocol::AMQPClass;
use bytes::{Buf, BufMut, BytesMut};

/// `AMQP 0 0 9 1`: what a client sends first, and what we answer a wrong header with.
pub const PROTOCOL_HEADER: [u8; 8] = *b"AMQP\x00\x00\x09\x01";
/// Type, channel and size.
pub const FRAME_HEADER_BYTES: usize = 7;
/// The frame-end octet after every payload.
pub const FRAME_END: u8 = 0xCE;
/// Frame type of a content body frame (`frame-body`).
pub const FRAME_TYPE_BODY: u8 = 3;
/// The smallest frame_max the spec lets a peer negotiate (4096, `frame-min-size`).
pub const FRAME_MIN_SIZE: u32 = 4096;

/// Why bytes from the client are not a frame. Each is a connection error: 501 FRAME_ERROR,
/// or 540 NOT_IMPLEMENTED for an unknown method (`session.rs`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("the client sent a protocol header other than AMQP 0-9-1")]
    WrongProtocolHeader,
    #[error("a frame of {size} bytes is over frame_max ({frame_max})")]
    TooLarge { size: u64, frame_max: u32 },
    #[error("frame type {0} is unknown")]
    UnknownType(u8),
    #[error("a frame does not end with 0xCE")]
    MissingFrameEnd,
    #[error("a frame's payload could not be decoded (a malformed field)")]
    Malformed,
    /// A method frame whose class and method ids are not in AMQP 0-9-1.
    #[error("unknown method {class_id}.{method_id}")]
    UnknownMethod { class_id: u16, method_id: u16 },
    /// basic.qos with a byte window. RabbitMQ does not implement one and closes the
    /// connection with 540, so a client relying on it learns at once; amq-protocol's parser
    /// drops the field, so it is read here from the frame.
    #[error("NOT_IMPLEMENTED - prefetch_size!=0 ({0})")]
    PrefetchSize(u32),
}

/// basic.qos (class 60, method 10): its `prefetch-size`, the long after the ids.
fn qos_prefetch_size(frame: &[u8]) -> Option<u32> {
    let payload = frame.get(FRAME_HEADER_BYTES..frame.len().checked_sub(1)?)?;
    if frame[0] != FRAME_TYPE_METHOD || payload.get(..4)? != [0, 60, 0, 10] {
        return None;
    }
    let size = payload.get(4..8)?;
    Some(u32::from_be_bytes([size[0], size[1], size[2], size[3]]))
}

/// Reads the 8-byte protocol header when it is all there.
pub fn decode_protocol_header(input: &mut BytesMut) -> Result<Option<()>, FrameError> {
    let have = input.len().min(PROTOCOL_HEADER.len());
    if input[..have] != PROTOCOL_HEADER[..have] {
        return Err(FrameError::WrongProtocolHeader);
    }
    if have < PROTOCOL_HEADER.len() {
        return Ok(None);
    }
    input.advance(PROTOCOL_HEADER.len());
    Ok(Some(()))
}

/// Bytes still missing before the frame at the front of `input` is whole (0 when it is, or
/// when the header is not there yet), after checking its size against `frame_max`.
pub fn bytes_wanted(input: &[u8], frame_max: u32) -> Result<usize, FrameError> {
    if input.len() < FRAME_HEADER_BYTES {
        return Ok(0);
    }
    let frame_type = input[0];
    if !matches!(frame_type, 1..=4 | 8) {
        return Err(FrameError::UnknownType(frame_type));
    }
    let size = u32::from_be_bytes([input[3], input[4], input[5], input[6]]);
    // frame_max counts the whole frame: header, payload and frame end.
    let total = u64::from(size) + FRAME_HEADER_BYTES as u64 + 1;
    if total > u64::from(frame_max) {
        return Err(FrameError::TooLarge {
            size: total,
            frame_max,
        });
    }
    Ok((total as usize).saturating_sub(input.len()))
}

/// Takes one whole frame off the front of `input`, or `None` until one has arrived.
pub fn decode(input: &mut BytesMut, frame_max: u32) -> Result<Option<AMQPFrame>, FrameError> {
    if input.len() < FRAME_HEADER_BYTES || bytes_wanted(input, frame_max)? > 0 {
        return Ok(None);
    }
    let size = u32::from_be_bytes([input[3], input[4], input[5], input[6]]) as usize;
    let total = FRAME_HEADER_BYTES + size + 1;
    if input[total - 1] != FRAME_END {
        return Err(FrameError::MissingFrameEnd);
    }
    let frame = match parse_frame(&input[..total]) {
        Ok(([], frame)) => frame,
        _ => return Err(undecodable(&input[..total])),
    };
    if let AMQPFrame::Method(_, AMQPClass::Basic(basic::AMQPMethod::Qos(_))) = &frame {
        if let Some(size @ 1..) = qos_prefetch_size(&input[..total]) {
            return Err(FrameError::PrefetchSize(size));
        }
    }
    input.advance(total);
    Ok(Some(frame))
}

/// Why a whole frame the generated parser refused is not a frame: a method frame whose ids
/// the protocol does not have, or a malformed one. Only on this error path, so it costs a
/// decode nothing.
fn undecodable(frame: &[u8]) -> FrameError {
    let payload = &frame[FRAME_HEADER_BYTES..frame.len() - 1];
    if frame[0] != FRAME_TYPE_METHOD || payload.len() < 4 {
        return FrameError::Malformed;
    }
    let class_id = u16::from_be_bytes([payload[0], payload[1]]);
    let method_id = u16::from_be_bytes([payload[2], payload[3]]);
    // Every method's fields read as all zeros are valid (empty strings and tables, zero
    // numbers, false bits), so the generated parser takes the ids followed by zeros exactly
    // when it knows the method: the list of methods stays the generated code's.
    let mut probe = [0u8; 64];
    probe[..4].copy_from_slice(&payload[..4]);
    if amq_protocol::protocol::parse_class(&probe[..]).is_ok() {
        FrameError::Malformed
    } else {
        FrameError::UnknownMethod {
            class_id,
            method_id,
        }
    }
}

/// Takes the frame at the front of `input` when it is a whole *body* frame: its channel and
/// payload, sharing `input`'s memory (no copy). `None` for any other frame, or until the
/// frame is whole; the caller then uses [`decode`], which checks everything.
pub fn take_body(
    input: &mut BytesMut,
    frame_max: u32,
) -> Result<Option<(u16, bytes::Bytes)>, FrameError> {
    let Some((channel, size)) = whole_frame(input, frame_max, FRAME_TYPE_BODY)? else {
        return Ok(None);
    };
    let total = FRAME_HEADER_BYTES + size + 1;
    let mut frame = input.split_to(total).freeze();
    frame.truncate(total - 1);
    frame.advance(FRAME_HEADER_BYTES);
    Ok(Some((channel, frame)))
}

/// The channel and payload size of the frame at the front of `input` when it is whole, of
/// type `frame_type`, and ends with the frame-end octet; `None` for another type or until
/// it is whole.
fn whole_frame(
    input: &BytesMut,
    frame_max: u32,
    frame_type: u8,
) -> Result<Option<(u16, usize)>, FrameError> {
    if input.len() < FRAME_HEADER_BYTES
        || input[0] != frame_type
        || bytes_wanted(input, frame_max)? > 0
    {
        return Ok(None);
    }
    let channel = u16::from_be_bytes([input[1], input[2]]);
    let size = u32::from_be_bytes([input[3], input[4], input[5], input[6]]) as usize;
    if input[FRAME_HEADER_BYTES + size] != FRAME_END {
        return Err(FrameError::MissingFrameEnd);
    }
    Ok(Some((channel, size)))
}

/// Frame type of a method frame (`frame-method`).
pub const FRAME_TYPE_METHOD: u8 = 1;
/// Class 60 (basic), method 40 (publish), as a method frame's payload starts.
const BASIC_PUBLISH_IDS: [u8; 4] = [0, 60, 0, 40];

/// Takes the frame at the front of `input` when it is a whole, well-formed *basic.publish*
/// method frame: its channel and its fields. `None` for anything else, or until the frame is
/// whole; the caller then uses [`decode`], which checks everything and reports errors.
///
/// Why by hand: a publisher sends one of these per message, and the generated parser's
/// combinators (with a `String` allocated for each of its two flag names) cost more than
/// the rest of the frame's handling. The four fields are read exactly as the generated
/// `parse_publish` reads them (a reserved short, two short strings that must be UTF-8, one
/// octet of flags, nothing after it); `tests.rs` checks the two agree on arbitrary frames.
pub fn take_publish(
    input: &mut BytesMut,
    frame_max: u32,
) -> Result<Option<(u16, Publish)>, FrameError> {
    let Some((channel, size)) = whole_frame(input, frame_max, FRAME_TYPE_METHOD)? else {
        return Ok(None);
    };
    let Some(publish) = parse_publish(&input[FRAME_HEADER_BYTES..FRAME_HEADER_BYTES + size]) else {
        return Ok(None);
    };
    input.advance(FRAME_HEADER_BYTES + size + 1);
    Ok(Some((channel, publish)))
}

/// A method frame's payload when it is a well-formed basic.publish.
fn parse_publish(payload: &[u8]) -> Option<Publish> {
    let rest = payload.strip_prefix(&BASIC_PUBLISH_IDS)?;
    // The reserved short (once the access ticket).
    let rest = rest.get(2..)?;
    let (exchange, rest) = short_string(rest)?;
    let (routing_key, rest) = short_string(rest)?;
    let [flags] = rest else {
        return None;
    };
    Some(Publish {
        exchange: exchange.into(),
        routing_key: routing_key.into(),
        mandatory: flags & 1 != 0,
        immediate: flags & 2 != 0,
    })
}

/// A short string (a length octet, then that many bytes of UTF-8) and what follows it.
fn short_string(input: &[u8]) -> Option<(&str, &[u8])> {
    let (&length, rest) = input.split_first()?;
    let length = usize::from(length);
    let text = std::str::from_utf8(rest.get(..length)?).ok()?;
    Some((text, &rest[length..]))
}

/// Frame type of a content header frame (`frame-header`).
pub const FRAME_TYPE_HEADER: u8 = 2;
/// Class id, weight and body size before a content header's property flags.
const CONTENT_HEADER_FIXED_BYTES: usize = 12;

/// A content header taken off the input with its properties as the client encoded them.
#[derive(Debug)]
pub struct RawContentHeader {
    pub channel: u16,
    pub header: AMQPContentHeader,
    /// The property flags and fields exactly as received, sharing the input's memory: a
    /// message is stored with these bytes, so publishing never re-encodes its properties.
    pub properties: bytes::Bytes,
}

/// Takes the frame at the front of `input` when it is a whole *content header* frame: the
/// header decoded, and its encoded properties kept. `None` for any other frame, or until the
/// frame is whole; a malformed header is an error, as [`decode`] would give.
pub fn take_header(
    input: &mut BytesMut,
    frame_max: u32,
) -> Result<Option<RawContentHeader>, FrameError> {
    let Some((channel, size)) = whole_frame(input, frame_max, FRAME_TYPE_HEADER)? else {
        return Ok(None);
    };
    let total = FRAME_HEADER_BYTES + size + 1;
    if size < CONTENT_HEADER_FIXED_BYTES {
        return Err(FrameError::Malformed);
    }
    let payload = &input[FRAME_HEADER_BYTES..total - 1];
    let class_id = u16::from_be_bytes([payload[0], payload[1]]);
    // payload[2..4] is the weight: always 0 by the spec, and ignored, as amq-protocol does.
    let mut body_size = [0u8; 8];
    body_size.copy_from_slice(&payload[4..CONTENT_HEADER_FIXED_BYTES]);
    let properties = match parse_properties(&payload[CONTENT_HEADER_FIXED_BYTES..]) {
        Ok(([], properties)) => properties,
        _ => return Err(FrameError::Malformed),
    };
    let mut frame = input.split_to(total).freeze();
    frame.truncate(total - 1);
    frame.advance(FRAME_HEADER_BYTES + CONTENT_HEADER_FIXED_BYTES);
    Ok(Some(RawContentHeader {
        channel,
        header: AMQPContentHeader {
            class_id,
            body_size: u64::from_be_bytes(body_size),
            properties,
        },
        properties: frame,
    }))
}

/// Appends one frame.
pub fn encode(out: &mut BytesMut, frame: &AMQPFrame) {
    // Serialising into a growing Vec cannot run out of room; the generated code fails only
    // for a buffer too small.
    if let Ok(written) = gen_frame(frame)(WriteContext::from(Vec::new())) {
        out.extend_from_slice(&written.write);
    }
}

/// Appends a method frame.
pub fn encode_method(out: &mut BytesMut, channel: u16, method: AMQPClass) {
    encode(out, &AMQPFrame::Method(channel, method));
}

/// Appends a method that carries content (deliver, get-ok, return), its content header and
/// its body split into frames of at most `frame_max` bytes.
pub fn encode_content(
    out: &mut BytesMut,
    channel: u16,
    method: AMQPClass,
    properties: AMQPProperties,
    body: &[u8],
    frame_max: u32,
) {
    encode_method(out, channel, method);
    encode(
        out,
        &AMQPFrame::Header(
            channel,
            AMQPContentHeader {
                class_id: 60,
                body_size: body.len() as u64,
                properties,
            },
        ),
    );
    let chunk = (frame_max as usize)
        .saturating_sub(FRAME_HEADER_BYTES + 1)
        .max(1);
    for piece in body.chunks(chunk) {
        encode_body(out, channel, piece);
    }
}

/// Appends one body frame, written directly: the generated serialiser would copy the
/// body twice (into its frame value, then into a fresh buffer) for every delivery.
pub fn encode_body(out: &mut BytesMut, channel: u16, body: &[u8]) {
    out.reserve(FRAME_HEADER_BYTES + body.len() + 1);
    out.put_u8(FRAME_TYPE_BODY);
    out.put_u16(channel);
    out.put_u32(body.len() as u32);
    out.put_slice(body);
    out.put_u8(FRAME_END);
}

#[cfg(test)]
mod tests;
