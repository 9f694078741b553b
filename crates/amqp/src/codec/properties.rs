//! Content properties as stored with a message. The engine's record has headers of bytes;
//! a message published over AMQP keeps its properties — every field, the header table with
//! its exact field types — in one record header, `amqp.properties`, holding the properties
//! exactly as the wire encodes them (flags, then the present fields). Delivery decodes them
//! back, so what a consumer sees is what the publisher sent, byte for byte.
//!
//! Messages that arrive by another door (HTTP, Kafka, NATS) have no such header: they are
//! delivered with their record headers as a string header table (see docs/amqp.md).

use amq_protocol::frame::WriteContext;
use amq_protocol::protocol::basic::{gen_properties, parse_properties, AMQPProperties};

/// The record header holding the encoded properties.
pub const PROPERTIES_HEADER: &str = "amqp.properties";

pub fn encode(properties: &AMQPProperties) -> Vec<u8> {
    match gen_properties(properties)(WriteContext::from(Vec::new())) {
        Ok(written) => written.write,
        Err(_) => Vec::new(),
    }
}

/// `None` when the bytes are not properties (a record written by someone else).
pub fn decode(bytes: &[u8]) -> Option<AMQPProperties> {
    match parse_properties(bytes) {
        Ok(([], properties)) => Some(properties),
        _ => None,
    }
}

/// A field table's entries as text, for what the engine compares as text (headers-exchange
/// bindings and message headers): strings as they are, numbers and booleans written out,
/// other types (tables, arrays, bytes) left out.
pub fn table_as_text(
    table: &amq_protocol::types::FieldTable,
) -> std::collections::BTreeMap<String, String> {
    table
        .inner()
        .iter()
        .filter_map(|(name, value)| {
            value_as_text(value).map(|text| (name.as_str().to_string(), text))
        })
        .collect()
}

pub fn value_as_text(value: &amq_protocol::types::AMQPValue) -> Option<String> {
    use amq_protocol::types::AMQPValue;
    Some(match value {
        AMQPValue::Boolean(v) => v.to_string(),
        AMQPValue::ShortShortInt(v) => v.to_string(),
        AMQPValue::ShortShortUInt(v) => v.to_string(),
        AMQPValue::ShortInt(v) => v.to_string(),
        AMQPValue::ShortUInt(v) => v.to_string(),
        AMQPValue::LongInt(v) => v.to_string(),
        AMQPValue::LongUInt(v) => v.to_string(),
        AMQPValue::LongLongInt(v) => v.to_string(),
        AMQPValue::Float(v) => v.to_string(),
        AMQPValue::Double(v) => v.to_string(),
        AMQPValue::Timestamp(v) => v.to_string(),
        AMQPValue::ShortString(v) => v.as_str().to_string(),
        AMQPValue::LongString(v) => String::from_utf8_lossy(v.as_bytes()).into_owned(),
        _ => return None,
    })
}

/// A string argument (`x-overflow`, `x-dead-letter-exchange`, `x-match`, …): a long or short
/// string; `None` for any other type.
pub fn string(value: &amq_protocol::types::AMQPValue) -> Option<String> {
    use amq_protocol::types::AMQPValue;
    match value {
        AMQPValue::LongString(v) => Some(String::from_utf8_lossy(v.as_bytes()).into_owned()),
        AMQPValue::ShortString(v) => Some(v.as_str().to_string()),
        _ => None,
    }
}

/// A field's type as RabbitMQ names it in its errors (`rabbit_binary_parser`'s atoms).
pub fn type_name(value: &amq_protocol::types::AMQPValue) -> &'static str {
    use amq_protocol::types::AMQPValue;
    match value {
        AMQPValue::Boolean(_) => "bool",
        AMQPValue::ShortShortInt(_) => "byte",
        AMQPValue::ShortShortUInt(_) => "unsignedbyte",
        AMQPValue::ShortInt(_) => "short",
        AMQPValue::ShortUInt(_) => "unsignedshort",
        AMQPValue::LongInt(_) => "signedint",
        AMQPValue::LongUInt(_) => "unsignedint",
        AMQPValue::LongLongInt(_) => "long",
        AMQPValue::Float(_) => "float",
        AMQPValue::Double(_) => "double",
        AMQPValue::DecimalValue(_) => "decimal",
        AMQPValue::ShortString(_) => "shortstr",
        AMQPValue::LongString(_) => "longstr",
        AMQPValue::FieldArray(_) => "array",
        AMQPValue::Timestamp(_) => "timestamp",
        AMQPValue::FieldTable(_) => "table",
        AMQPValue::ByteArray(_) => "binary",
        AMQPValue::Void => "void",
    }
}

/// An integer argument (`x-max-length`, `x-message-ttl`, …), whatever integer type the
/// client chose; clients send them as `l`, `I`, `s`, strings are refused.
pub fn integer(value: &amq_protocol::types::AMQPValue) -> Option<i64> {
    use amq_protocol::types::AMQPValue;
    Some(match value {
        AMQPValue::ShortShortInt(v) => i64::from(*v),
        AMQPValue::ShortShortUInt(v) => i64::from(*v),
        AMQPValue::ShortInt(v) => i64::from(*v),
        AMQPValue::ShortUInt(v) => i64::from(*v),
        AMQPValue::LongInt(v) => i64::from(*v),
        AMQPValue::LongUInt(v) => i64::from(*v),
        AMQPValue::LongLongInt(v) => *v,
        AMQPValue::Timestamp(v) => i64::try_from(*v).ok()?,
        _ => return None,
    })
}
