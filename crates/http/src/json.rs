//! Record JSON to and from the engine's types.
//!
//! In: a key is a UTF-8 `key` or a `key_base64`; a value is a `value` (a JSON string is stored
//! as its UTF-8 bytes, any other JSON value as its compact JSON text, `null` as no value) or a
//! `value_base64`; headers are an object of name → string. Out: bytes that are valid UTF-8 are
//! rendered as strings (`key`, `value`, `headers`), the rest as base64 (`key_base64`,
//! `value_base64`, `headers_base64`).
//!
//! Counted inputs (records in a batch, headers on a record) are parsed with the bounded
//! deserializers of `bounded`.

use std::borrow::Cow;

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use bytes::Bytes;
use omnibus_engine::PublishRecord;
use omnibus_types::limits::{HEADERS_MAX, PUBLISH_RECORDS_MAX};
use omnibus_types::{Header, Record};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::bounded::{Bounded, HeadersInput};
use crate::error::ApiError;

/// Standard alphabet; decoding accepts input with or without `=` padding, encoding pads.
pub(crate) const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// One record as a client sends it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordInput {
    pub key: Option<String>,
    pub key_base64: Option<String>,
    pub value: Option<Box<RawValue>>,
    pub value_base64: Option<String>,
    pub headers: Option<HeadersInput>,
    pub subject: Option<String>,
    pub partition: Option<u32>,
    pub timestamp_ms: Option<i64>,
}

/// A publish body: one record object, or `{"records":[…]}`. The record fields are repeated
/// here rather than flattened because serde's `flatten` breaks both `deny_unknown_fields`
/// and [`RawValue`].
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishBody {
    records: Option<Bounded<RecordInput, PUBLISH_RECORDS_MAX>>,
    key: Option<String>,
    key_base64: Option<String>,
    value: Option<Box<RawValue>>,
    value_base64: Option<String>,
    headers: Option<HeadersInput>,
    subject: Option<String>,
    partition: Option<u32>,
    timestamp_ms: Option<i64>,
}

impl PublishBody {
    /// The records of the body, in order.
    pub fn into_records(self) -> Result<Vec<RecordInput>, ApiError> {
        let single = RecordInput {
            key: self.key,
            key_base64: self.key_base64,
            value: self.value,
            value_base64: self.value_base64,
            headers: self.headers,
            subject: self.subject,
            partition: self.partition,
            timestamp_ms: self.timestamp_ms,
        };
        let Some(records) = self.records else {
            return Ok(vec![single]);
        };
        let has_record_fields = single.key.is_some()
            || single.key_base64.is_some()
            || single.value.is_some()
            || single.value_base64.is_some()
            || single.headers.is_some()
            || single.subject.is_some()
            || single.partition.is_some()
            || single.timestamp_ms.is_some();
        if has_record_fields {
            return Err(ApiError::bad_request(
                "a body with \"records\" may not also carry record fields; put them in each record",
            ));
        }
        records.into_items("records")
    }
}

impl RecordInput {
    /// Converts to the engine's record; `name` (like `records[3]`) prefixes error messages.
    pub fn into_publish_record(self, name: &str) -> Result<PublishRecord, ApiError> {
        let key = text_or_base64(name, "key", self.key, self.key_base64)?;
        let value = match (self.value, self.value_base64) {
            (Some(_), Some(_)) => {
                return Err(ApiError::bad_request(format!(
                    "{name}: give value or value_base64, not both"
                )))
            }
            (Some(raw), None) => Some(json_value_bytes(name, &raw)?),
            (None, Some(encoded)) => Some(decode_base64(name, "value_base64", &encoded)?),
            (None, None) => None,
        };
        let headers = checked_headers(name, self.headers)?;
        Ok(PublishRecord {
            subject: self.subject,
            key,
            value,
            headers,
            partition: self.partition,
            timestamp_ms: self.timestamp_ms,
        })
    }
}

/// A record's headers, or `limit_exceeded` when there were more than [`HEADERS_MAX`].
fn checked_headers(name: &str, input: Option<HeadersInput>) -> Result<Vec<Header>, ApiError> {
    match input {
        None => Ok(Vec::new()),
        Some(input) if input.total > HEADERS_MAX => Err(ApiError::limit_exceeded(format!(
            "{name}: {} headers; the limit is {HEADERS_MAX}",
            input.total
        ))),
        Some(input) => Ok(input.headers),
    }
}

fn text_or_base64(
    name: &str,
    field: &str,
    text: Option<String>,
    encoded: Option<String>,
) -> Result<Option<Bytes>, ApiError> {
    match (text, encoded) {
        (Some(_), Some(_)) => Err(ApiError::bad_request(format!(
            "{name}: give {field} or {field}_base64, not both"
        ))),
        (Some(text), None) => Ok(Some(Bytes::from(text))),
        (None, Some(encoded)) => {
            decode_base64(name, &format!("{field}_base64"), &encoded).map(Some)
        }
        (None, None) => Ok(None),
    }
}

pub(crate) fn decode_base64(name: &str, field: &str, encoded: &str) -> Result<Bytes, ApiError> {
    BASE64.decode(encoded).map(Bytes::from).map_err(|error| {
        ApiError::bad_request(format!("{name}: {field} is not valid base64: {error}"))
    })
}

/// A JSON string becomes its UTF-8 bytes; anything else its compact JSON text.
pub(crate) fn json_value_bytes(name: &str, raw: &RawValue) -> Result<Bytes, ApiError> {
    let text = raw.get();
    if text.starts_with('"') {
        let decoded: String = serde_json::from_str(text)
            .map_err(|error| ApiError::bad_request(format!("{name}: value: {error}")))?;
        return Ok(Bytes::from(decoded));
    }
    Ok(Bytes::from(compact_json(text)))
}

/// Removes the whitespace between tokens of valid JSON text, keeping everything else as the
/// client wrote it (key order, number spelling, escapes).
fn compact_json(text: &str) -> Vec<u8> {
    let mut compact = Vec::with_capacity(text.len());
    let mut in_string = false;
    let mut escaped = false;
    for &byte in text.as_bytes() {
        if in_string {
            compact.push(byte);
            if escaped {
                escaped = false;
            } else if byte == b'\\' {
                escaped = true;
            } else if byte == b'"' {
                in_string = false;
            }
        } else if !matches!(byte, b' ' | b'\t' | b'\n' | b'\r') {
            in_string = byte == b'"';
            compact.push(byte);
        }
    }
    compact
}

/// Header name → value pairs serialized as a JSON object, in record order.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct HeaderObject<'a>(pub Vec<(&'a str, Cow<'a, str>)>);

impl<'a> HeaderObject<'a> {
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Splits headers into those with UTF-8 values (as text) and the rest (as base64),
    /// leaving out any whose name `hidden` refuses.
    pub(crate) fn split(
        headers: &'a [Header],
        hidden: impl Fn(&str) -> bool,
    ) -> (HeaderObject<'a>, HeaderObject<'a>) {
        let mut text = HeaderObject::default();
        let mut encoded = HeaderObject::default();
        for header in headers.iter().filter(|header| !hidden(&header.name)) {
            match std::str::from_utf8(&header.value) {
                Ok(value) => text.0.push((&header.name, Cow::Borrowed(value))),
                Err(_) => encoded
                    .0
                    .push((&header.name, Cow::Owned(BASE64.encode(&header.value)))),
            }
        }
        (text, encoded)
    }
}

impl Serialize for HeaderObject<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, value) in &self.0 {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

/// A record's key, value and headers as the API renders them: text when the bytes are UTF-8,
/// base64 otherwise. Flattened into every record-shaped answer (fetch, queue delivery).
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct ContentOutput<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_base64: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_base64: Option<String>,
    pub headers: HeaderObject<'a>,
    #[serde(skip_serializing_if = "HeaderObject::is_empty")]
    pub headers_base64: HeaderObject<'a>,
}

impl<'a> ContentOutput<'a> {
    /// Headers for which `hidden` is true are left out.
    pub fn new(record: &'a Record, hidden: impl Fn(&str) -> bool) -> Self {
        let (key, key_base64) = text_or_encoded(record.key.as_deref());
        let (value, value_base64) = text_or_encoded(record.value.as_deref());
        let (headers, headers_base64) = HeaderObject::split(&record.headers, hidden);
        ContentOutput {
            key,
            key_base64,
            value,
            value_base64,
            headers,
            headers_base64,
        }
    }
}

/// One fetched record as the API renders it.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct RecordOutput<'a> {
    pub offset: u64,
    pub timestamp_ms: i64,
    pub subject: &'a str,
    pub partition: u32,
    #[serde(flatten)]
    pub content: ContentOutput<'a>,
}

impl<'a> RecordOutput<'a> {
    pub fn new(record: &'a Record, partition: u32) -> Self {
        RecordOutput {
            offset: record.offset,
            timestamp_ms: record.timestamp_ms,
            subject: &record.subject,
            partition,
            content: ContentOutput::new(record, |_| false),
        }
    }
}

pub(crate) fn text_or_encoded(bytes: Option<&[u8]>) -> (Option<&str>, Option<String>) {
    match bytes.map(std::str::from_utf8) {
        None => (None, None),
        Some(Ok(text)) => (Some(text), None),
        Some(Err(_)) => (None, bytes.map(|bytes| BASE64.encode(bytes))),
    }
}

#[cfg(test)]
mod tests {
    use omnibus_types::Header;

    use super::*;

    fn one_record(body: &str) -> Result<PublishRecord, ApiError> {
        let body: PublishBody = serde_json::from_str(body).expect("body parses");
        let mut records = body.into_records()?;
        assert_eq!(records.len(), 1);
        records.remove(0).into_publish_record("record")
    }

    fn value_of(body: &str) -> Option<Vec<u8>> {
        one_record(body)
            .expect("record converts")
            .value
            .map(|value| value.to_vec())
    }

    #[test]
    fn a_json_string_value_is_stored_as_its_utf8_bytes() {
        assert_eq!(
            value_of(r#"{"value":"héllo \"x\""}"#),
            Some("héllo \"x\"".into())
        );
    }

    #[test]
    fn other_json_values_are_stored_as_compact_text_in_the_order_written() {
        let body = r#"{"value": {"b": 1, "a": [1, 2.50, "x y"], "c": {"d" : null}}}"#;
        assert_eq!(
            value_of(body),
            Some(br#"{"b":1,"a":[1,2.50,"x y"],"c":{"d":null}}"#.to_vec())
        );
        assert_eq!(value_of(r#"{"value": 42}"#), Some(b"42".to_vec()));
        assert_eq!(value_of(r#"{"value": true}"#), Some(b"true".to_vec()));
        assert_eq!(value_of(r#"{"value": [ ]}"#), Some(b"[]".to_vec()));
    }

    #[test]
    fn compact_json_keeps_whitespace_and_escapes_inside_strings() {
        let text = "{ \"a b\" : \"c \\\" d\\\\\" , \"e\":\t\"\\\\\" }";
        assert_eq!(
            compact_json(text),
            b"{\"a b\":\"c \\\" d\\\\\",\"e\":\"\\\\\"}".to_vec()
        );
    }

    #[test]
    fn null_or_absent_value_means_no_value() {
        assert_eq!(value_of(r#"{"value": null}"#), None);
        assert_eq!(value_of(r#"{}"#), None);
    }

    #[test]
    fn base64_values_and_keys_decode_with_or_without_padding() {
        let record = one_record(r#"{"key_base64":"AP8=","value_base64":"AAEC/w"}"#).unwrap();
        assert_eq!(record.key.as_deref(), Some(&[0x00, 0xff][..]));
        assert_eq!(record.value.as_deref(), Some(&[0, 1, 2, 255][..]));
    }

    #[test]
    fn value_and_value_base64_together_is_a_bad_request() {
        let error = one_record(r#"{"value":"a","value_base64":"YQ=="}"#).unwrap_err();
        assert_eq!(error.code(), "bad_request");
        assert!(error.to_string().contains("not both"), "{error}");
        let error = one_record(r#"{"key":"a","key_base64":"YQ=="}"#).unwrap_err();
        assert_eq!(error.code(), "bad_request");
    }

    #[test]
    fn invalid_base64_is_a_bad_request_naming_the_field() {
        let error = one_record(r#"{"value_base64":"not base64!"}"#).unwrap_err();
        assert_eq!(error.code(), "bad_request");
        assert!(error.to_string().contains("value_base64"), "{error}");
    }

    #[test]
    fn all_record_fields_convert() {
        let record = one_record(
            r#"{"key":"k","value":"v","headers":{"h1":"x","h2":""},"subject":"a.b",
                "partition":3,"timestamp_ms":-5}"#,
        )
        .unwrap();
        let expected = PublishRecord {
            subject: Some("a.b".into()),
            key: Some(Bytes::from_static(b"k")),
            value: Some(Bytes::from_static(b"v")),
            headers: vec![
                Header {
                    name: "h1".into(),
                    value: Bytes::from_static(b"x"),
                },
                Header {
                    name: "h2".into(),
                    value: Bytes::new(),
                },
            ],
            partition: Some(3),
            timestamp_ms: Some(-5),
        };
        assert_eq!(record, expected);
    }

    #[test]
    fn unknown_fields_are_refused() {
        assert!(serde_json::from_str::<PublishBody>(r#"{"valu":"x"}"#).is_err());
        assert!(serde_json::from_str::<PublishBody>(r#"{"records":[{"records":[]}]}"#).is_err());
    }

    #[test]
    fn a_batch_keeps_its_order_and_refuses_mixed_top_level_fields() {
        let body: PublishBody =
            serde_json::from_str(r#"{"records":[{"value":"a"},{"value":"b"}]}"#).unwrap();
        let records = body.into_records().unwrap();
        let values: Vec<_> = records
            .into_iter()
            .map(|record| record.into_publish_record("r").unwrap().value.unwrap())
            .collect();
        assert_eq!(values, vec![Bytes::from("a"), Bytes::from("b")]);

        let body: PublishBody =
            serde_json::from_str(r#"{"records":[{"value":"a"}],"key":"k"}"#).unwrap();
        assert_eq!(body.into_records().unwrap_err().code(), "bad_request");
    }

    #[test]
    fn too_many_records_is_limit_exceeded_without_keeping_the_excess() {
        let count = PUBLISH_RECORDS_MAX + 2;
        let body = format!("{{\"records\":[{}]}}", vec!["{}"; count].join(","));
        let parsed: PublishBody = serde_json::from_str(&body).unwrap();
        let records = parsed.records.as_ref().unwrap();
        assert_eq!(records.items.len(), PUBLISH_RECORDS_MAX);
        assert_eq!(records.total, count);
        let error = parsed.into_records().unwrap_err();
        assert_eq!(error.code(), "limit_exceeded");
        assert_eq!(error.status(), axum::http::StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[test]
    fn too_many_headers_is_limit_exceeded() {
        let headers: Vec<String> = (0..=HEADERS_MAX)
            .map(|i| format!("\"h{i}\":\"v\""))
            .collect();
        let body = format!("{{\"headers\":{{{}}}}}", headers.join(","));
        let error = one_record(&body).unwrap_err();
        assert_eq!(error.code(), "limit_exceeded");

        let headers: Vec<String> = (0..HEADERS_MAX)
            .map(|i| format!("\"h{i}\":\"v\""))
            .collect();
        let body = format!("{{\"headers\":{{{}}}}}", headers.join(","));
        assert_eq!(one_record(&body).unwrap().headers.len(), HEADERS_MAX);
    }

    #[test]
    fn header_values_must_be_strings() {
        assert!(serde_json::from_str::<PublishBody>(r#"{"headers":{"a":1}}"#).is_err());
    }

    fn record(key: Option<&[u8]>, value: Option<&[u8]>, headers: Vec<(&str, &[u8])>) -> Record {
        Record {
            offset: 7,
            timestamp_ms: 1_700_000_000_000,
            subject: "orders.created".into(),
            key: key.map(Bytes::copy_from_slice),
            value: value.map(Bytes::copy_from_slice),
            headers: headers
                .into_iter()
                .map(|(name, value)| Header {
                    name: name.into(),
                    value: Bytes::copy_from_slice(value),
                })
                .collect(),
        }
    }

    #[test]
    fn utf8_bytes_render_as_strings_and_others_as_base64() {
        let stored = record(
            Some(b"k1"),
            Some(&[0xff, 0x00]),
            vec![("text", b"plain"), ("binary", &[0xc3, 0x28])],
        );
        let rendered = serde_json::to_value(RecordOutput::new(&stored, 2)).unwrap();
        assert_eq!(
            rendered,
            serde_json::json!({
                "offset": 7,
                "timestamp_ms": 1_700_000_000_000_i64,
                "subject": "orders.created",
                "partition": 2,
                "key": "k1",
                "value_base64": "/wA=",
                "headers": {"text": "plain"},
                "headers_base64": {"binary": "wyg="},
            })
        );
    }

    #[test]
    fn absent_key_and_value_are_omitted_and_headers_is_always_an_object() {
        let stored = record(None, None, vec![]);
        let rendered = serde_json::to_value(RecordOutput::new(&stored, 0)).unwrap();
        let object = rendered.as_object().unwrap();
        for absent in [
            "key",
            "key_base64",
            "value",
            "value_base64",
            "headers_base64",
        ] {
            assert!(!object.contains_key(absent), "{absent} in {rendered}");
        }
        assert_eq!(rendered["headers"], serde_json::json!({}));
    }

    #[test]
    fn a_published_record_renders_back_to_the_same_bytes() {
        let published =
            one_record(r#"{"key_base64":"/wA=","value":{"x":[1,2]},"headers":{"h":"v"}}"#).unwrap();
        let stored = Record {
            offset: 0,
            timestamp_ms: 0,
            subject: "s".into(),
            key: published.key.clone(),
            value: published.value.clone(),
            headers: published.headers.clone(),
        };
        let rendered = serde_json::to_value(RecordOutput::new(&stored, 0)).unwrap();
        assert_eq!(rendered["key_base64"], "/wA=");
        assert_eq!(rendered["value"], r#"{"x":[1,2]}"#);
        assert_eq!(rendered["headers"]["h"], "v");
    }
}
