//! A Redis stream entry ↔ an Omnibus record (docs/redis.md, "Streams: mapping"):
//!
//! - the entry's ID is the header `redis-stream-id` (`<ms>-<seq>`), and the record's timestamp
//!   is the ID's milliseconds, so the stream's time index finds IDs;
//! - a field named `value` is the record's value; every other field is a header of that name,
//!   in order (field names must be UTF-8: header names are strings). When `value` is not the
//!   first field, the header `redis-value-at` says where it was (its index among the fields),
//!   so the entry reads back in the order it was written, as Redis keeps it;
//! - a record appended by another door (no ID header) reads as the entry `<timestamp>-<offset>`
//!   with its value as the field `value`, its key (if any) as `key`, and its headers as fields.
//!
//! Pure functions, no I/O.

use bytes::Bytes;
use omnibus_engine::PublishRecord;
use omnibus_types::{Header, Record};

use super::id::StreamId;

/// The header that carries an entry's ID.
pub(crate) const ID_HEADER: &str = "redis-stream-id";
/// The field stored as the record's value.
pub(crate) const VALUE_FIELD: &[u8] = b"value";
/// The header that says where among the fields the `value` field was, when not first.
pub(crate) const VALUE_AT_HEADER: &str = "redis-value-at";

/// One entry as Redis shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) id: StreamId,
    /// `id` as its reply spells it: the stored ID header itself when it is spelled that way
    /// already (every entry XADD wrote), so a read renders no ID.
    pub(crate) id_text: Bytes,
    pub(crate) offset: u64,
    pub(crate) fields: Vec<(Bytes, Bytes)>,
    /// Removed by XDEL while pending with a consumer: a history read shows its ID with nil
    /// for the fields, as Redis does.
    pub(crate) deleted: bool,
}

impl Entry {
    /// What the entry adds to a reply, framing aside: its ID, field names and values, and
    /// 16 bytes per element for the framing and the reply's own bookkeeping.
    pub(crate) fn reply_bytes(&self) -> usize {
        self.fields
            .iter()
            .fold(self.id_text.len() + 48, |bytes, (field, value)| {
                bytes + field.len() + value.len() + 32
            })
    }
}

/// The record an XADD appends.
pub(crate) fn to_record(id: StreamId, fields: &[(Bytes, Bytes)]) -> Result<PublishRecord, String> {
    let mut record = PublishRecord {
        timestamp_ms: Some(i64::try_from(id.ms).unwrap_or(i64::MAX)),
        partition: Some(0),
        ..PublishRecord::default()
    };
    record.headers.push(Header {
        name: ID_HEADER.to_string(),
        value: id.to_bytes(),
    });
    for (index, (field, value)) in fields.iter().enumerate() {
        if field.as_ref() == VALUE_FIELD && record.value.is_none() {
            record.value = Some(value.clone());
            if index > 0 {
                record.headers.insert(
                    1,
                    Header {
                        name: VALUE_AT_HEADER.to_string(),
                        value: Bytes::from(index.to_string()),
                    },
                );
            }
            continue;
        }
        let name = std::str::from_utf8(field).map_err(|_| {
            "ERR Omnibus stream field names must be UTF-8 (they are record header names)"
                .to_string()
        })?;
        if name.eq_ignore_ascii_case(ID_HEADER) || name.eq_ignore_ascii_case(VALUE_AT_HEADER) {
            return Err(format!(
                "ERR the field name '{name}' is reserved by Omnibus"
            ));
        }
        record.headers.push(Header {
            name: name.to_string(),
            value: value.clone(),
        });
    }
    Ok(record)
}

/// The ID of a stored record.
pub(crate) fn id_of(record: &Record) -> StreamId {
    record
        .headers
        .iter()
        .find(|header| header.name == ID_HEADER)
        .and_then(|header| StreamId::parse(&header.value, 0))
        .unwrap_or_else(|| foreign_id(record))
}

fn foreign_id(record: &Record) -> StreamId {
    StreamId::new(
        u64::try_from(record.timestamp_ms).unwrap_or(0),
        record.offset,
    )
}

/// The entry a stored record reads as.
pub(crate) fn from_record(record: Record) -> Entry {
    FieldNames::default().entry(record)
}

/// Field names most reads are made of at most, shared by the entries of one read.
const FIELD_NAMES_MAX: usize = 16;

/// Reads records as entries, sharing one copy of each field name among them: a header name
/// is a `String` in the record, and a reply of 1,000 entries of the same fields copied each
/// name 1,000 times.
#[derive(Default)]
pub(crate) struct FieldNames {
    names: Vec<Bytes>,
}

impl FieldNames {
    fn name(&mut self, name: &str) -> Bytes {
        if let Some(known) = self.names.iter().find(|known| **known == name.as_bytes()) {
            return known.clone();
        }
        let bytes = Bytes::copy_from_slice(name.as_bytes());
        if self.names.len() < FIELD_NAMES_MAX {
            self.names.push(bytes.clone());
        }
        bytes
    }

    /// The entry a stored record reads as.
    pub(crate) fn entry(&mut self, record: Record) -> Entry {
        let mut id = None;
        // Where the value goes among the fields: first, unless the entry said otherwise.
        let mut value_at = 0;
        let mut fields = Vec::with_capacity(record.headers.len() + 1);
        let mut headers = Vec::with_capacity(record.headers.len());
        for (index, header) in record.headers.iter().enumerate() {
            if header.name == ID_HEADER && id.is_none() {
                id = StreamId::parse(&header.value, 0).map(|parsed| (parsed, &header.value));
                if id.is_some() {
                    continue;
                }
            }
            // Written by `to_record` right after the ID header, and read only there: a
            // header of that name from another door is one of its fields.
            if index == 1 && id.is_some() && header.name == VALUE_AT_HEADER {
                if let Some(at) = std::str::from_utf8(&header.value)
                    .ok()
                    .and_then(|text| text.parse::<usize>().ok())
                {
                    value_at = at;
                    continue;
                }
            }
            headers.push((self.name(&header.name), header.value.clone()));
        }
        if id.is_none() {
            if let Some(key) = &record.key {
                fields.push((Bytes::from_static(b"key"), key.clone()));
            }
        }
        fields.extend(headers);
        if let Some(value) = &record.value {
            let at = value_at.min(fields.len());
            fields.insert(at, (Bytes::from_static(VALUE_FIELD), value.clone()));
        }
        if fields.is_empty() {
            // Redis has no entry without fields: a record with nothing shows an empty value.
            fields.push((Bytes::from_static(VALUE_FIELD), Bytes::new()));
        }
        let (id, id_text) = match id {
            Some((id, stored)) if id.is_spelled(stored) => (id, stored.clone()),
            Some((id, _)) => (id, Bytes::from(id.to_string())),
            None => {
                let id = foreign_id(&record);
                (id, Bytes::from(id.to_string()))
            }
        };
        Entry {
            id,
            id_text,
            offset: record.offset,
            fields,
            deleted: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(publish: PublishRecord, offset: u64) -> Record {
        Record {
            offset,
            timestamp_ms: publish.timestamp_ms.unwrap_or(0),
            subject: "s".into(),
            key: publish.key,
            value: publish.value,
            headers: publish.headers,
        }
    }

    #[test]
    fn an_entry_round_trips_through_a_record() {
        let fields = vec![
            (Bytes::from("a"), Bytes::from("1")),
            (Bytes::from("value"), Bytes::from("v")),
            (Bytes::from("b"), Bytes::from("2")),
        ];
        let record = to_record(StreamId::new(7, 1), &fields).unwrap();
        assert_eq!(record.value, Some(Bytes::from("v")));
        assert_eq!(record.timestamp_ms, Some(7));
        let entry = from_record(stored(record, 3));
        assert_eq!(entry.id, StreamId::new(7, 1));
        // The fields come back in the order they were written, `value` where it was.
        assert_eq!(entry.fields, fields);
    }

    #[test]
    fn every_order_of_fields_reads_back_as_written() {
        let field = |name: &str, value: &str| {
            (
                Bytes::from(name.to_string()),
                Bytes::from(value.to_string()),
            )
        };
        let shapes = [
            vec![field("value", "v")],
            vec![field("value", "v"), field("a", "1")],
            vec![field("item", "1"), field("value", "a")],
            vec![
                field("a", "1"),
                field("value", "2"),
                field("value", "3"),
                field("b", "4"),
            ],
            vec![field("value", "1"), field("value", "2")],
            vec![field("a", "1"), field("a", "2")],
        ];
        for fields in shapes {
            let record = to_record(StreamId::new(1, 0), &fields).unwrap();
            // The first `value` is the record's value, whatever its place.
            let first_value = fields.iter().find(|(name, _)| name == "value");
            assert_eq!(
                record.value.as_ref(),
                first_value.map(|(_, v)| v),
                "{fields:?}"
            );
            assert_eq!(from_record(stored(record, 0)).fields, fields);
        }
        // Only the first header after the ID says where the value goes: the same header from
        // another door (no ID header) is a field like any other.
        let foreign = from_record(Record {
            offset: 2,
            timestamp_ms: 5,
            subject: "s".into(),
            key: None,
            value: Some(Bytes::from("v")),
            headers: vec![Header {
                name: VALUE_AT_HEADER.into(),
                value: Bytes::from("1"),
            }],
        });
        assert_eq!(
            foreign.fields,
            vec![
                (Bytes::from("value"), Bytes::from("v")),
                (Bytes::from(VALUE_AT_HEADER), Bytes::from("1")),
            ]
        );
    }

    #[test]
    fn a_record_from_another_door_reads_as_timestamp_and_offset() {
        let record = Record {
            offset: 9,
            timestamp_ms: 1_000,
            subject: "s".into(),
            key: Some(Bytes::from("k")),
            value: Some(Bytes::from("payload")),
            headers: vec![Header {
                name: "trace".into(),
                value: Bytes::from("t"),
            }],
        };
        assert_eq!(id_of(&record), StreamId::new(1_000, 9));
        let entry = from_record(record);
        assert_eq!(entry.id, StreamId::new(1_000, 9));
        assert_eq!(
            entry.fields,
            vec![
                (Bytes::from("value"), Bytes::from("payload")),
                (Bytes::from("key"), Bytes::from("k")),
                (Bytes::from("trace"), Bytes::from("t")),
            ]
        );
    }

    #[test]
    fn entries_of_one_read_share_field_names_and_spell_ids_as_redis_does() {
        let mut names = FieldNames::default();
        let fields = [(Bytes::from("p"), Bytes::from("1"))];
        let first = names.entry(stored(to_record(StreamId::new(7, 1), &fields).unwrap(), 0));
        let second = names.entry(stored(to_record(StreamId::new(7, 2), &fields).unwrap(), 1));
        assert_eq!(first.fields, vec![(Bytes::from("p"), Bytes::from("1"))]);
        assert_eq!(
            first.fields[0].0.as_ptr(),
            second.fields[0].0.as_ptr(),
            "one copy of the name"
        );
        assert_eq!(second.id_text, Bytes::from("7-2"));
        // An ID header another door wrote in another spelling reads as Redis spells the ID.
        let record = Record {
            offset: 4,
            timestamp_ms: 5,
            subject: "s".into(),
            key: None,
            value: Some(Bytes::from("v")),
            headers: vec![Header {
                name: ID_HEADER.into(),
                value: Bytes::from("0005-007"),
            }],
        };
        let entry = names.entry(record);
        assert_eq!(entry.id, StreamId::new(5, 7));
        assert_eq!(entry.id_text, Bytes::from("5-7"));
        let foreign = from_record(Record {
            offset: 9,
            timestamp_ms: 1_000,
            subject: "s".into(),
            key: None,
            value: None,
            headers: Vec::new(),
        });
        assert_eq!(foreign.id_text, Bytes::from("1000-9"));
    }

    #[test]
    fn reserved_and_binary_field_names_are_refused() {
        for name in [ID_HEADER, VALUE_AT_HEADER, "Redis-Value-At"] {
            let reserved = [(Bytes::from(name), Bytes::from("x"))];
            assert!(to_record(StreamId::new(1, 0), &reserved).is_err(), "{name}");
        }
        let binary = [(Bytes::from(vec![0xff]), Bytes::from("x"))];
        assert!(to_record(StreamId::new(1, 0), &binary).is_err());
    }
}
