//! Stream keys in DUMP payloads: the entries, the stream's IDs and its consumer groups with
//! their pending entries and consumers, as Redis serializes a stream (`RDB_TYPE_STREAM_*`).
//!
//! The layout, from the format's description (rdb.c and t_stream.c of Redis 7.4): a count
//! of nodes, each its master ID (16 bytes: milliseconds then sequence, big-endian) and a
//! listpack. A listpack opens with its master entry — live count, deleted count, the
//! master field names, a 0 — and then holds each entry as flags (1 deleted, 2 the master's
//! fields), its ID as differences from the master ID, its field names unless flag 2 says
//! they are the master's, its values, and a count of the listpack items it took. After
//! the nodes: the length, the last ID, (from type 19) the first ID, the largest deleted ID
//! and the count of entries ever added; then the groups, each its name, last delivered ID,
//! (from type 19) entries read, its pending entries (raw ID, delivery time as 8 bytes
//! little-endian, delivery count) and its consumers (name, seen time, from type 21 active
//! time, the raw IDs of its pending entries).
//!
//! Read: types 15 (Redis 5–6.2), 19 (7.0) and 21 (7.2 and later). Written: type 19 at RDB
//! version 10, which redis-server 7.0 and later load. Every count is checked against the
//! bytes left before anything is allocated for it.

use bytes::Bytes;

use super::packed::{write_listpack, Budget, Item};
use super::{checked_body, length, seal_as, string, PayloadError, Reader, VERSION_WRITTEN};
use crate::streams::id::StreamId;

const TYPE_STREAM_LISTPACKS: u8 = 15;
const TYPE_STREAM_LISTPACKS_2: u8 = 19;
const TYPE_STREAM_LISTPACKS_3: u8 = 21;

const FLAG_DELETED: i64 = 1;
const FLAG_SAME_FIELDS: i64 = 2;

/// Entries per listpack written (Redis's `stream-node-max-entries` default).
const NODE_ENTRIES_MAX: usize = 100;

/// A stream as a payload holds it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct StreamValue {
    /// The entries not deleted, in ID order.
    pub(crate) entries: Vec<StreamEntry>,
    pub(crate) last_id: StreamId,
    pub(crate) max_deleted_id: StreamId,
    /// How many entries were ever added (the stream's length for type 15).
    pub(crate) entries_added: u64,
    pub(crate) groups: Vec<Group>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StreamEntry {
    pub(crate) id: StreamId,
    pub(crate) fields: Vec<(Bytes, Bytes)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Group {
    pub(crate) name: Bytes,
    pub(crate) last_id: StreamId,
    /// Redis's logical read counter (`None`: unknown to the writer, Redis's -1).
    pub(crate) entries_read: Option<u64>,
    pub(crate) consumers: Vec<Consumer>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Consumer {
    pub(crate) name: Bytes,
    pub(crate) seen_ms: i64,
    /// Its last successful read, -1 for never (`None`: not in the payload's type, which
    /// Redis reads as the seen time).
    pub(crate) active_ms: Option<i64>,
    /// Its pending entries in ID order.
    pub(crate) pending: Vec<Pending>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pending {
    pub(crate) id: StreamId,
    pub(crate) delivery_ms: i64,
    pub(crate) deliveries: u64,
}

/// Whether the payload holds a stream (its type byte), before anything else is checked.
pub(crate) fn is_stream(payload: &[u8]) -> bool {
    matches!(
        payload.first(),
        Some(&(TYPE_STREAM_LISTPACKS | TYPE_STREAM_LISTPACKS_2 | TYPE_STREAM_LISTPACKS_3))
    )
}

/// The stream a payload holds, after its version and checksum are checked.
pub(crate) fn decode_stream(payload: &[u8]) -> Result<StreamValue, PayloadError> {
    let body = checked_body(payload).ok_or(PayloadError::VersionOrChecksum)?;
    let mut reader = Reader::new(body);
    let value = read_stream(&mut reader);
    reader.finish(value)
}

/// The payload DUMP answers for a stream.
pub(crate) fn encode_stream(value: &StreamValue) -> Vec<u8> {
    let mut out = vec![TYPE_STREAM_LISTPACKS_2];
    let nodes: Vec<&[StreamEntry]> = value.entries.chunks(NODE_ENTRIES_MAX).collect();
    length(&mut out, nodes.len() as u64);
    for node in &nodes {
        let master = node[0].id;
        let mut key = Vec::with_capacity(16);
        key.extend_from_slice(&master.ms.to_be_bytes());
        key.extend_from_slice(&master.seq.to_be_bytes());
        string(&mut out, &key);
        string(&mut out, &node_listpack(node));
    }
    length(&mut out, value.entries.len() as u64);
    id(&mut out, value.last_id);
    id(
        &mut out,
        value.entries.first().map_or(StreamId::MIN, |e| e.id),
    );
    id(&mut out, value.max_deleted_id);
    length(&mut out, value.entries_added);
    length(&mut out, value.groups.len() as u64);
    for group in &value.groups {
        string(&mut out, &group.name);
        id(&mut out, group.last_id);
        length(&mut out, group.entries_read.unwrap_or(u64::MAX));
        // The group's pending entries in ID order, then each consumer's IDs.
        let mut pending: Vec<Pending> = group
            .consumers
            .iter()
            .flat_map(|consumer| consumer.pending.iter().copied())
            .collect();
        pending.sort_by_key(|entry| entry.id);
        length(&mut out, pending.len() as u64);
        for entry in &pending {
            raw_id(&mut out, entry.id);
            out.extend_from_slice(&entry.delivery_ms.to_le_bytes());
            length(&mut out, entry.deliveries);
        }
        length(&mut out, group.consumers.len() as u64);
        for consumer in &group.consumers {
            string(&mut out, &consumer.name);
            out.extend_from_slice(&consumer.seen_ms.to_le_bytes());
            length(&mut out, consumer.pending.len() as u64);
            for entry in &consumer.pending {
                raw_id(&mut out, entry.id);
            }
        }
    }
    seal_as(out, VERSION_WRITTEN)
}

fn id(out: &mut Vec<u8>, id: StreamId) {
    length(out, id.ms);
    length(out, id.seq);
}

fn raw_id(out: &mut Vec<u8>, id: StreamId) {
    out.extend_from_slice(&id.ms.to_be_bytes());
    out.extend_from_slice(&id.seq.to_be_bytes());
}

/// One node's listpack: the first entry's fields are the master fields, and every entry
/// with the same names in the same order is written with its values only.
fn node_listpack(node: &[StreamEntry]) -> Vec<u8> {
    let master = &node[0];
    let mut items = vec![
        Item::Int(node.len() as i64),
        Item::Int(0),
        Item::Int(master.fields.len() as i64),
    ];
    items.extend(master.fields.iter().map(|(name, _)| Item::Bytes(name)));
    items.push(Item::Int(0));
    for entry in node {
        let same = entry.fields.len() == master.fields.len()
            && entry
                .fields
                .iter()
                .zip(&master.fields)
                .all(|((a, _), (b, _))| a == b);
        items.push(Item::Int(if same { FLAG_SAME_FIELDS } else { 0 }));
        items.push(Item::Int(entry.id.ms.wrapping_sub(master.id.ms) as i64));
        items.push(Item::Int(entry.id.seq.wrapping_sub(master.id.seq) as i64));
        let fields = entry.fields.len() as i64;
        if same {
            items.extend(entry.fields.iter().map(|(_, value)| Item::Bytes(value)));
            items.push(Item::Int(fields + 3));
        } else {
            items.push(Item::Int(fields));
            for (name, value) in &entry.fields {
                items.push(Item::Bytes(name));
                items.push(Item::Bytes(value));
            }
            items.push(Item::Int(2 * fields + 4));
        }
    }
    write_listpack(&items)
}

impl Reader<'_> {
    fn stream_id(&mut self) -> Option<StreamId> {
        Some(StreamId::new(self.length()?, self.length()?))
    }

    fn raw_stream_id(&mut self) -> Option<StreamId> {
        let raw = self.take(16)?;
        Some(StreamId::new(
            u64::from_be_bytes(raw[..8].try_into().ok()?),
            u64::from_be_bytes(raw[8..].try_into().ok()?),
        ))
    }

    fn milliseconds(&mut self) -> Option<i64> {
        Some(i64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
}

fn read_stream(reader: &mut Reader<'_>) -> Option<StreamValue> {
    let kind = reader.byte()?;
    if !matches!(
        kind,
        TYPE_STREAM_LISTPACKS | TYPE_STREAM_LISTPACKS_2 | TYPE_STREAM_LISTPACKS_3
    ) {
        return None;
    }
    let nodes = reader.count(2)?;
    let mut entries: Vec<StreamEntry> = Vec::new();
    for _ in 0..nodes {
        let key = reader.string()?;
        if key.len() != 16 {
            return None;
        }
        let master = StreamId::new(
            u64::from_be_bytes(key[..8].try_into().ok()?),
            u64::from_be_bytes(key[8..].try_into().ok()?),
        );
        let items = reader.read_listpack()?;
        node_entries(master, &items, &mut entries, &mut reader.budget)?;
    }
    let length = reader.length()?;
    let last_id = reader.stream_id()?;
    let (max_deleted_id, entries_added) = if kind >= TYPE_STREAM_LISTPACKS_2 {
        reader.stream_id()?; // The first ID: the entries tell it.
        (reader.stream_id()?, reader.length()?)
    } else {
        (StreamId::MIN, length)
    };
    if length != entries.len() as u64 || entries.last().is_some_and(|last| last.id > last_id) {
        return None;
    }
    let group_count = reader.count(3)?;
    let mut groups: Vec<Group> = Vec::with_capacity(group_count);
    for _ in 0..group_count {
        let name = reader.string()?;
        let group_last = reader.stream_id()?;
        let entries_read = match kind {
            TYPE_STREAM_LISTPACKS => None,
            _ => Some(reader.length()?).filter(|&read| read != u64::MAX),
        };
        // The group's pending entries: each one's time and count, its owner named below.
        let pel_count = reader.count(18)?;
        let mut pel: std::collections::BTreeMap<StreamId, (i64, u64, bool)> =
            std::collections::BTreeMap::new();
        for _ in 0..pel_count {
            let id = reader.raw_stream_id()?;
            let at = reader.milliseconds()?;
            let deliveries = reader.length()?;
            if pel.insert(id, (at, deliveries, false)).is_some() {
                return None;
            }
        }
        let consumer_count = reader.count(10)?;
        let mut consumers: Vec<Consumer> = Vec::with_capacity(consumer_count);
        for _ in 0..consumer_count {
            let name = reader.string()?;
            let seen_ms = reader.milliseconds()?;
            let active_ms = match kind {
                TYPE_STREAM_LISTPACKS_3 => Some(reader.milliseconds()?),
                _ => None,
            };
            let owned = reader.count(16)?;
            let mut pending = Vec::with_capacity(owned);
            for _ in 0..owned {
                let id = reader.raw_stream_id()?;
                // Each pending entry has one owner, named among the group's.
                let (delivery_ms, deliveries, owned) = pel.get_mut(&id)?;
                if std::mem::replace(owned, true) {
                    return None;
                }
                pending.push(Pending {
                    id,
                    delivery_ms: *delivery_ms,
                    deliveries: *deliveries,
                });
            }
            pending.sort_by_key(|entry| entry.id);
            if consumers.iter().any(|c| c.name == name) {
                return None;
            }
            consumers.push(Consumer {
                name,
                seen_ms,
                active_ms,
                pending,
            });
        }
        if pel.values().any(|(_, _, owned)| !owned) || groups.iter().any(|g| g.name == name) {
            return None;
        }
        groups.push(Group {
            name,
            last_id: group_last,
            entries_read,
            consumers,
        });
    }
    Some(StreamValue {
        entries,
        last_id,
        max_deleted_id,
        entries_added,
        groups,
    })
}

/// An integer item of a listpack (given back as decimal text).
fn int(item: &Bytes) -> Option<i64> {
    std::str::from_utf8(item).ok()?.parse().ok()
}

/// Appends the live entries of one node's listpack, checking that IDs keep rising.
fn node_entries(
    master: StreamId,
    items: &[Bytes],
    entries: &mut Vec<StreamEntry>,
    budget: &mut Budget,
) -> Option<()> {
    let mut items = items.iter();
    let mut next = || items.next();
    let live = int(next()?)?;
    let deleted = int(next()?)?;
    let master_count = usize::try_from(int(next()?)?).ok()?;
    let mut master_fields = Vec::new();
    for _ in 0..master_count {
        master_fields.push(next()?.clone());
    }
    if int(next()?)? != 0 || live < 0 || deleted < 0 || live + deleted == 0 {
        return None;
    }
    let mut seen_live = 0;
    for _ in 0..live.checked_add(deleted)? {
        let flags = int(next()?)?;
        let ms = master.ms.wrapping_add(int(next()?)? as u64);
        let seq = master.seq.wrapping_add(int(next()?)? as u64);
        let id = StreamId::new(ms, seq);
        let fields = if flags & FLAG_SAME_FIELDS != 0 {
            let mut fields = Vec::with_capacity(master_count);
            for name in &master_fields {
                fields.push((name.clone(), next()?.clone()));
            }
            fields
        } else {
            let count = usize::try_from(int(next()?)?).ok()?;
            let mut fields = Vec::new();
            for _ in 0..count {
                let name = next()?.clone();
                fields.push((name, next()?.clone()));
            }
            fields
        };
        next()?; // The entry's item count, for reading backwards.
                 // Each field's name and value are handles of their own (the names shared).
        budget.spend(fields.len().checked_mul(2 * 48)?)?;
        if flags & FLAG_DELETED != 0 {
            continue;
        }
        if entries.last().is_some_and(|last| last.id >= id) {
            return None;
        }
        seen_live += 1;
        entries.push(StreamEntry { id, fields });
    }
    (seen_live == live && next().is_none()).then_some(())
}

/// The fuzz body's stream part: what reads must write and read back alike.
pub(crate) fn round_trip(sealed: &[u8]) {
    if let Ok(value) = decode_stream(sealed) {
        let mut expected = value.clone();
        // Written as type 19: an unknown read count stays unknown, active times are not kept.
        for group in &mut expected.groups {
            for consumer in &mut group.consumers {
                consumer.active_ms = None;
            }
        }
        assert_eq!(decode_stream(&encode_stream(&value)), Ok(expected));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(text: &str) -> Bytes {
        Bytes::copy_from_slice(text.as_bytes())
    }

    fn from_hex(hex: &str) -> Vec<u8> {
        (0..hex.len())
            .step_by(2)
            .map(|at| u8::from_str_radix(&hex[at..at + 2], 16).unwrap())
            .collect()
    }

    fn entry(ms: u64, seq: u64, fields: &[(&str, &str)]) -> StreamEntry {
        StreamEntry {
            id: StreamId::new(ms, seq),
            fields: fields.iter().map(|(f, v)| (b(f), b(v))).collect(),
        }
    }

    /// `DUMP s` after: XADD s 1-1 f v n 5; XADD s 1-2 f w n -70000; XADD s 2-0 other x;
    /// XADD s 3-5 f y n 12; XADD s 4-0 f z n 1; XDEL s 3-5; XGROUP CREATE s g1 0;
    /// XREADGROUP GROUP g1 alice COUNT 2 …; XREADGROUP GROUP g1 bob COUNT 1 …;
    /// XGROUP CREATE s g0 2-0; XGROUP CREATECONSUMER s g0 carol; XSETID s 9-9.
    const REDIS_7_0: &str = "130110000000000000000100000000000000014062620000002500040101010201816602816e02000102010001000181760205010501020100010101817702f290eefe04050100010101dfff020101856f746865720681780206010301020104018179020c01050102010301dfff02817a0201010501ff040909010103050502026730020081ffffffffffffffff0001056361726f6c29cf0b51a201000000026731020081ffffffffffffffff030000000000000001000000000000000118cf0b51a2010000010000000000000001000000000000000218cf0b51a201000001000000000000000200000000000000001dcf0b51a2010000010205616c69636518cf0b51a201000002000000000000000100000000000000010000000000000001000000000000000203626f621dcf0b51a201000001000000000000000200000000000000000a009c367d303a5959be";
    /// The same from redis-server 7.4.1 (type 21: consumers' active times).
    const REDIS_7_4: &str = "150110000000000000000100000000000000014062620000002500040101010201816602816e02000102010001000181760205010501020100010101817702f290eefe04050100010101dfff020101856f746865720681780206010301020104018179020c01050102010301dfff02817a0201010501ff040909010103050502026730020081ffffffffffffffff0001056361726f6ccecf0b51a2010000ffffffffffffffff00026731020081ffffffffffffffff0300000000000000010000000000000001b0cf0b51a20100000100000000000000010000000000000002b0cf0b51a20100000100000000000000020000000000000000bdcf0b51a2010000010205616c696365b0cf0b51a2010000b0cf0b51a201000002000000000000000100000000000000010000000000000001000000000000000203626f62bdcf0b51a2010000bdcf0b51a201000001000000000000000200000000000000000c009c49f6758c530815";

    #[test]
    fn streams_redis_server_dumped_are_read_with_their_groups() {
        for (hex, active) in [(REDIS_7_0, false), (REDIS_7_4, true)] {
            let value = decode_stream(&from_hex(hex)).unwrap();
            assert_eq!(
                value.entries,
                vec![
                    entry(1, 1, &[("f", "v"), ("n", "5")]),
                    entry(1, 2, &[("f", "w"), ("n", "-70000")]),
                    entry(2, 0, &[("other", "x")]),
                    entry(4, 0, &[("f", "z"), ("n", "1")]),
                ]
            );
            assert_eq!(value.last_id, StreamId::new(9, 9));
            assert_eq!(value.max_deleted_id, StreamId::new(3, 5));
            assert_eq!(value.entries_added, 5);
            let names: Vec<&[u8]> = value.groups.iter().map(|g| &g.name[..]).collect();
            assert_eq!(names, [&b"g0"[..], b"g1"]);
            let (g0, g1) = (&value.groups[0], &value.groups[1]);
            assert_eq!(g0.last_id, StreamId::new(2, 0));
            assert_eq!(
                (g0.consumers.len(), &g0.consumers[0].name[..]),
                (1, &b"carol"[..])
            );
            assert!(g0.consumers[0].pending.is_empty());
            assert_eq!(g1.last_id, StreamId::new(2, 0));
            let alice = &g1.consumers[0];
            assert_eq!(&alice.name[..], b"alice");
            let ids: Vec<StreamId> = alice.pending.iter().map(|p| p.id).collect();
            assert_eq!(ids, [StreamId::new(1, 1), StreamId::new(1, 2)]);
            assert!(alice
                .pending
                .iter()
                .all(|p| p.deliveries == 1 && p.delivery_ms > 1_700_000_000_000));
            assert_eq!(g1.consumers[1].pending[0].id, StreamId::new(2, 0));
            assert_eq!(alice.active_ms.is_some(), active);
            // What is written reads back the same (active times are not in type 19).
            round_trip(&from_hex(hex));
        }
    }

    #[test]
    fn streams_are_written_as_redis_7_0_writes_them() {
        let value = decode_stream(&from_hex(REDIS_7_4)).unwrap();
        let written = encode_stream(&value);
        // Type 19, RDB version 10: what redis-server 7.0 and later load.
        assert_eq!(written[0], TYPE_STREAM_LISTPACKS_2);
        assert_eq!(written[written.len() - 10..written.len() - 8], [10, 0]);
        // One node: its master ID 1-1, then a listpack of 4 live entries, 0 deleted, the
        // master fields `f` and `n` and the terminating 0, as Redis writes it.
        assert_eq!(written[1..3], [1, 16]);
        assert_eq!(
            written[3..19],
            from_hex("00000000000000010000000000000001")[..]
        );
        let mut reader = Reader::new(&written[19..]);
        let blob = reader.string().unwrap();
        let items = reader.listpack(&blob).unwrap();
        let head: Vec<&[u8]> = items[..6].iter().map(|item| &item[..]).collect();
        assert_eq!(head, [&b"4"[..], b"0", b"2", b"f", b"n", b"0"]);
    }

    #[test]
    fn many_entries_take_many_nodes_and_ids_may_step_back_in_sequence() {
        let mut value = StreamValue::default();
        for n in 0..250u64 {
            // A new millisecond every 7 entries, sequences restarting: a negative difference.
            let fields = if n % 3 == 0 {
                vec![("a", "1")]
            } else {
                vec![("a", "2"), ("b", "x")]
            };
            value.entries.push(entry(1_000 + n / 7, 5 + n % 7, &fields));
        }
        value.last_id = value.entries.last().unwrap().id;
        value.entries_added = 260;
        value.groups.push(Group {
            name: b("g"),
            last_id: StreamId::new(1_003, 5),
            entries_read: Some(22),
            consumers: vec![Consumer {
                name: b("c"),
                seen_ms: 1_700_000_000_123,
                active_ms: None,
                pending: vec![Pending {
                    id: StreamId::new(1_000, 6),
                    delivery_ms: 1_700_000_000_000,
                    deliveries: 3,
                }],
            }],
        });
        assert_eq!(decode_stream(&encode_stream(&value)), Ok(value));
    }

    #[test]
    fn damage_is_refused() {
        let good = from_hex(REDIS_7_0);
        let mut flipped = good.clone();
        flipped[30] ^= 1;
        assert_eq!(
            decode_stream(&flipped),
            Err(PayloadError::VersionOrChecksum)
        );
        // Every cut of the body, resealed so that only the format is wrong.
        let body = &good[..good.len() - 10];
        for cut in 1..body.len() {
            let resealed = seal_as(body[..cut].to_vec(), VERSION_WRITTEN);
            assert_eq!(
                decode_stream(&resealed),
                Err(PayloadError::BadFormat),
                "cut at {cut}"
            );
        }
        // A node key that is not 16 bytes.
        let mut short_key = body.to_vec();
        short_key[2] = 15;
        assert_eq!(
            decode_stream(&seal_as(short_key, VERSION_WRITTEN)),
            Err(PayloadError::BadFormat)
        );
    }

    fn field_bytes() -> impl proptest::strategy::Strategy<Value = Bytes> {
        use proptest::prelude::*;
        // Short and long (LZF-compressed when written), repetitive and not.
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..8),
            (any::<u8>(), 20..200usize).prop_map(|(byte, len)| vec![byte; len]),
            proptest::collection::vec(any::<u8>(), 20..80),
        ]
        .prop_map(Bytes::from)
    }

    proptest::proptest! {
        /// Any stream — IDs rising with steps in both parts, entries of other fields,
        /// groups whose consumers hold some of its entries — writes and reads back the same.
        #[test]
        fn any_stream_writes_and_reads_back(
            steps in proptest::collection::vec((0u64..3, 0u64..1_000_000), 0..300),
            names in proptest::collection::vec(field_bytes(), 1..4),
            values in proptest::collection::vec(field_bytes(), 1..40),
            owners in proptest::collection::vec(0usize..3, 0..300),
        ) {
            let mut value = StreamValue::default();
            let mut id = StreamId::new(1, 0);
            for (at, (ms, seq)) in steps.iter().enumerate() {
                id = if *ms == 0 { StreamId::new(id.ms, id.seq + 1 + seq) } else { StreamId::new(id.ms + ms, *seq) };
                let count = 1 + at % names.len();
                let fields = (0..count)
                    .map(|n| (names[(at + n) % names.len()].clone(), values[(at * 7 + n) % values.len()].clone()))
                    .collect();
                value.entries.push(StreamEntry { id, fields });
            }
            value.last_id = StreamId::new(id.ms, id.seq + 5);
            value.entries_added = value.entries.len() as u64 + 3;
            let mut consumers: Vec<Consumer> = (0..3)
                .map(|n| Consumer { name: Bytes::from(format!("c{n}")), seen_ms: 1_000 + n, active_ms: None, pending: Vec::new() })
                .collect();
            for (entry, owner) in value.entries.iter().zip(&owners) {
                consumers[*owner].pending.push(Pending { id: entry.id, delivery_ms: 5_000, deliveries: 1 + *owner as u64 });
            }
            value.groups.push(Group { name: b("g"), last_id: id, entries_read: Some(7), consumers });
            proptest::prop_assert_eq!(decode_stream(&encode_stream(&value)), Ok(value));
        }
    }
}
