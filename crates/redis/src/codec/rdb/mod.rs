//! DUMP payloads: one value in Redis's RDB serialization, then the RDB version (2 bytes,
//! little-endian) and a CRC-64 (Jones polynomial, reflected, 8 bytes little-endian) of
//! everything before it — what redis-server's DUMP answers and its RESTORE (and MIGRATE)
//! send. Written here from the format's description: no crate reads Redis's object
//! encodings.
//!
//! Read: strings (plain, integer-encoded, LZF-compressed), lists (`RDB_TYPE_LIST` and
//! quicklists of listpacks or plain nodes), sets (plain, intset, listpack), sorted sets
//! (binary or text scores, listpack) and hashes (plain, listpack) — every encoding Redis 7.0
//! to 7.2 writes for them — and Redis 7.4's hashes with field deadlines (metadata and
//! listpack forms, their release candidates' too). Not read: streams, modules, and the ziplist/zipmap encodings of
//! Redis 6 and older. Written: the plain forms (a string as its bytes, `RDB_TYPE_LIST`,
//! `RDB_TYPE_SET`, `RDB_TYPE_ZSET_2`, `RDB_TYPE_HASH`) at RDB version 10, which redis-server
//! 7.0 and later load; a hash with a field deadline as `RDB_TYPE_HASH_METADATA` at version
//! 12, which only redis-server 7.4 and later load (an older one refuses its version, as it
//! refuses 7.4's own DUMP of such a hash). Every length is checked against the bytes left before anything is
//! allocated for it (`fuzz/fuzz_targets/redis_dump_payload.rs`).
//!
//! FUNCTION DUMP / RESTORE payloads are the same frame around libraries instead of a value:
//! each library's code after `RDB_OPCODE_FUNCTION2` (or Redis 7.0 RC's older form, read too).

mod lzf;
mod packed;
mod stream;

pub(crate) use stream::{
    decode_stream, encode_stream, is_stream, Consumer, Group, Pending, StreamEntry, StreamValue,
};

use bytes::Bytes;
use omnibus_engine::keys::Whole;

pub use packed::DECODED_BYTES_MAX;
use packed::{intset, listpack, number, Budget};

/// The RDB version written (Redis 7.0's).
pub const VERSION_WRITTEN: u16 = 10;
/// The RDB version written for a hash with field deadlines (Redis 7.4's).
pub const VERSION_FIELD_DEADLINES: u16 = 12;
/// The newest RDB version read (Redis 7.4's).
pub const VERSION_READ_MAX: u16 = 12;

const TYPE_STRING: u8 = 0;
const TYPE_LIST: u8 = 1;
const TYPE_SET: u8 = 2;
const TYPE_ZSET: u8 = 3;
const TYPE_HASH: u8 = 4;
const TYPE_ZSET_2: u8 = 5;
const TYPE_SET_INTSET: u8 = 11;
const TYPE_HASH_LISTPACK: u8 = 16;
const TYPE_ZSET_LISTPACK: u8 = 17;
const TYPE_LIST_QUICKLIST_2: u8 = 18;
const TYPE_SET_LISTPACK: u8 = 20;
/// Hashes with field deadlines (Redis 7.4): its release candidates' forms, with absolute
/// deadlines and no earliest deadline up front, then the released ones.
const TYPE_HASH_METADATA_PRE_GA: u8 = 22;
const TYPE_HASH_LISTPACK_EX_PRE_GA: u8 = 23;
const TYPE_HASH_METADATA: u8 = 24;
const TYPE_HASH_LISTPACK_EX: u8 = 25;
/// The latest field deadline a payload may hold (Redis's `EB_EXPIRE_TIME_MAX`, 48 bits).
const FIELD_DEADLINE_MAX: u64 = (1 << 48) - 1;
/// A library's code (FUNCTION DUMP since Redis 7.0).
const OPCODE_FUNCTION2: u8 = 245;
/// A library as Redis 7.0's release candidates wrote it: name, engine, description, code.
const OPCODE_FUNCTION_PRE_GA: u8 = 246;

/// Why a payload was refused, in RESTORE's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayloadError {
    /// `ERR DUMP payload version or checksum are wrong`.
    VersionOrChecksum,
    /// `ERR Bad data format`.
    BadFormat,
    /// Read, it would take more than [`DECODED_BYTES_MAX`] of memory (Omnibus's bound).
    TooLarge,
}

/// The CRC-64 Redis puts on payloads (Jones polynomial, reflected in and out, start 0:
/// the catalogue's CRC-64/REDIS).
pub fn crc64(data: &[u8]) -> u64 {
    static CRC: crc::Crc<u64, crc::Table<16>> =
        crc::Crc::<u64, crc::Table<16>>::new(&crc::CRC_64_REDIS);
    CRC.checksum(data)
}

/// The payload DUMP answers for `value`.
pub fn encode(value: &Whole) -> Vec<u8> {
    let mut out = Vec::new();
    match value {
        Whole::String(bytes) => {
            out.push(TYPE_STRING);
            string(&mut out, bytes);
        }
        Whole::List(items) => {
            out.push(TYPE_LIST);
            length(&mut out, items.len() as u64);
            items.iter().for_each(|item| string(&mut out, item));
        }
        Whole::Set(members) => {
            out.push(TYPE_SET);
            length(&mut out, members.len() as u64);
            members.iter().for_each(|member| string(&mut out, member));
        }
        Whole::SortedSet(members) => {
            out.push(TYPE_ZSET_2);
            length(&mut out, members.len() as u64);
            for (member, score) in members {
                string(&mut out, member);
                out.extend_from_slice(&score.to_le_bytes());
            }
        }
        Whole::Hash(fields) => {
            out.push(TYPE_HASH);
            length(&mut out, fields.len() as u64);
            for (field, value) in fields {
                string(&mut out, field);
                string(&mut out, value);
            }
        }
        Whole::ExpiringHash(fields) => {
            // The earliest deadline (8 bytes, little-endian ms), then before each field its
            // deadline as a length: 0 for none, else its distance from the earliest, plus 1.
            out.push(TYPE_HASH_METADATA);
            let earliest = fields
                .iter()
                .filter_map(|(_, _, at)| *at)
                .min()
                .unwrap_or(0);
            out.extend_from_slice(&earliest.to_le_bytes());
            length(&mut out, fields.len() as u64);
            for (field, value, at) in fields {
                length(&mut out, at.map_or(0, |at| at.abs_diff(earliest) + 1));
                string(&mut out, field);
                string(&mut out, value);
            }
            return seal_as(out, VERSION_FIELD_DEADLINES);
        }
    }
    seal(out)
}

/// Ends a payload with the RDB version and the CRC-64 of everything before it.
fn seal(out: Vec<u8>) -> Vec<u8> {
    seal_as(out, VERSION_WRITTEN)
}

fn seal_as(mut out: Vec<u8>, version: u16) -> Vec<u8> {
    out.extend_from_slice(&version.to_le_bytes());
    let crc = crc64(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// FUNCTION DUMP's payload for these libraries' code.
pub fn encode_functions<'a>(codes: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    for code in codes {
        out.push(OPCODE_FUNCTION2);
        string(&mut out, code);
    }
    seal(out)
}

/// The libraries' code a FUNCTION RESTORE payload holds, in order, or the refusal in
/// Redis's words (after `ERR `).
pub fn decode_functions(payload: &[u8]) -> Result<Vec<Bytes>, String> {
    let body = checked_body(payload)
        .ok_or_else(|| "DUMP payload version or checksum are wrong".to_string())?;
    let mut reader = Reader::new(body);
    let mut codes = Vec::new();
    while !reader.bytes.is_empty() {
        let kind = reader.byte().ok_or("can not read data type")?;
        match kind {
            OPCODE_FUNCTION2 => {
                let code = reader.string().ok_or("Failed loading library payload")?;
                codes.push(code);
            }
            OPCODE_FUNCTION_PRE_GA => {
                let name = reader.string().ok_or("Failed loading library name")?;
                let engine = reader.string().ok_or("Failed loading engine name")?;
                let has_description = reader
                    .length()
                    .ok_or("Failed loading library description indicator")?;
                if has_description != 0 {
                    reader
                        .string()
                        .ok_or("Failed loading library description")?;
                }
                let blob = reader.string().ok_or("Failed loading library blob")?;
                let mut code = format!(
                    "#!{} name={}\n",
                    String::from_utf8_lossy(&engine),
                    String::from_utf8_lossy(&name)
                )
                .into_bytes();
                code.extend_from_slice(&blob);
                codes.push(Bytes::from(code));
            }
            _ => return Err("given type is not a function".into()),
        }
    }
    Ok(codes)
}

/// A payload's body, if its version is one read here and its checksum holds.
fn checked_body(payload: &[u8]) -> Option<&[u8]> {
    if payload.len() < 10 {
        return None;
    }
    let (body, footer) = payload.split_at(payload.len() - 10);
    let version = u16::from_le_bytes([footer[0], footer[1]]);
    let crc = u64::from_le_bytes(footer[2..10].try_into().expect("8 bytes"));
    (version <= VERSION_READ_MAX && crc64(&payload[..payload.len() - 8]) == crc).then_some(body)
}

fn length(out: &mut Vec<u8>, len: u64) {
    if len < 1 << 6 {
        out.push(len as u8);
    } else if len < 1 << 14 {
        out.extend_from_slice(&[0x40 | (len >> 8) as u8, len as u8]);
    } else if len <= u64::from(u32::MAX) {
        out.push(0x80);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    } else {
        out.push(0x81);
        out.extend_from_slice(&len.to_be_bytes());
    }
}

/// A string, LZF-compressed as Redis writes one (`rdbcompression`, its default): when
/// longer than 20 bytes and it saves more than 4 — the LZF encoding byte, the compressed
/// and the plain lengths, then the compressed bytes.
fn string(out: &mut Vec<u8>, bytes: &[u8]) {
    if bytes.len() > 20 {
        if let Some(packed) = lzf::compress(bytes, bytes.len() - 5) {
            out.push(0xc0 | 3);
            length(out, packed.len() as u64);
            length(out, bytes.len() as u64);
            out.extend_from_slice(&packed);
            return;
        }
    }
    length(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// A field's deadline as a payload holds it (0: none); `None` past the latest Redis takes.
fn field_deadline(at: u64) -> Option<Option<i64>> {
    match at {
        0 => Some(None),
        at if at <= FIELD_DEADLINE_MAX => Some(Some(at as i64)),
        _ => None,
    }
}

/// The value a payload holds, after its version and checksum are checked.
pub fn decode(payload: &[u8]) -> Result<Whole, PayloadError> {
    let body = checked_body(payload).ok_or(PayloadError::VersionOrChecksum)?;
    let mut reader = Reader::new(body);
    let value = reader.object();
    reader.finish(value)
}

/// A cursor over a payload's bytes; every read checks what is left (`None`: bad format,
/// or the [`Budget`] exceeded).
struct Reader<'a> {
    bytes: &'a [u8],
    budget: Budget,
}

/// A length, or a string's special encoding.
enum Length {
    Plain(u64),
    Encoded(u8),
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader {
            bytes,
            budget: Budget::default(),
        }
    }

    /// The outcome of reading a whole payload: `value`, if every byte was read.
    fn finish<T>(&self, value: Option<T>) -> Result<T, PayloadError> {
        match value {
            _ if self.budget.exceeded => Err(PayloadError::TooLarge),
            Some(value) if self.bytes.is_empty() => Ok(value),
            _ => Err(PayloadError::BadFormat),
        }
    }

    fn listpack(&mut self, blob: &[u8]) -> Option<Vec<Bytes>> {
        listpack(blob, &mut self.budget)
    }

    /// A string holding a listpack, and its items.
    fn read_listpack(&mut self) -> Option<Vec<Bytes>> {
        let blob = self.string()?;
        self.listpack(&blob)
    }

    fn take(&mut self, count: usize) -> Option<&'a [u8]> {
        if count > self.bytes.len() {
            return None;
        }
        let (taken, rest) = self.bytes.split_at(count);
        self.bytes = rest;
        Some(taken)
    }

    fn byte(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn length_or_encoding(&mut self) -> Option<Length> {
        let first = self.byte()?;
        Some(match first >> 6 {
            0 => Length::Plain(u64::from(first & 0x3f)),
            1 => Length::Plain(u64::from(first & 0x3f) << 8 | u64::from(self.byte()?)),
            2 if first == 0x80 => Length::Plain(u64::from(u32::from_be_bytes(
                self.take(4)?.try_into().ok()?,
            ))),
            2 if first == 0x81 => Length::Plain(u64::from_be_bytes(self.take(8)?.try_into().ok()?)),
            2 => return None,
            _ => Length::Encoded(first & 0x3f),
        })
    }

    fn length(&mut self) -> Option<u64> {
        match self.length_or_encoding()? {
            Length::Plain(len) => Some(len),
            Length::Encoded(_) => None,
        }
    }

    /// A count of items each taking at least `min_bytes`: refused when the bytes left
    /// cannot hold them (so nothing is allocated for a made-up count).
    fn count(&mut self, min_bytes: usize) -> Option<usize> {
        let count = usize::try_from(self.length()?).ok()?;
        (count.checked_mul(min_bytes)? <= self.bytes.len()).then_some(count)
    }

    fn string(&mut self) -> Option<Bytes> {
        match self.length_or_encoding()? {
            Length::Plain(len) => {
                let len = usize::try_from(len).ok()?;
                self.budget.spend(len)?;
                Some(Bytes::copy_from_slice(self.take(len)?))
            }
            Length::Encoded(0) => Some(number(i64::from(self.byte()? as i8))),
            Length::Encoded(1) => Some(number(i64::from(i16::from_le_bytes(
                self.take(2)?.try_into().ok()?,
            )))),
            Length::Encoded(2) => Some(number(i64::from(i32::from_le_bytes(
                self.take(4)?.try_into().ok()?,
            )))),
            Length::Encoded(3) => {
                let compressed = usize::try_from(self.length()?).ok()?;
                let plain = usize::try_from(self.length()?).ok()?;
                let input = self.take(compressed)?;
                self.budget.spend(plain)?;
                lzf::decompress(input, plain).map(Bytes::from)
            }
            Length::Encoded(_) => None,
        }
    }

    fn object(&mut self) -> Option<Whole> {
        let kind = self.byte()?;
        let value = match kind {
            TYPE_STRING => Whole::String(self.string()?),
            TYPE_LIST => {
                let count = self.count(1)?;
                Whole::List((0..count).map(|_| self.string()).collect::<Option<_>>()?)
            }
            TYPE_SET => {
                let count = self.count(1)?;
                Whole::Set((0..count).map(|_| self.string()).collect::<Option<_>>()?)
            }
            TYPE_ZSET | TYPE_ZSET_2 => {
                let count = self.count(2)?;
                let mut members = Vec::with_capacity(count);
                for _ in 0..count {
                    let member = self.string()?;
                    let score = match kind {
                        TYPE_ZSET_2 => f64::from_le_bytes(self.take(8)?.try_into().ok()?),
                        _ => self.text_score()?,
                    };
                    if score.is_nan() {
                        return None;
                    }
                    members.push((member, score));
                }
                Whole::SortedSet(members)
            }
            TYPE_HASH => {
                let count = self.count(2)?;
                let mut fields = Vec::with_capacity(count);
                for _ in 0..count {
                    fields.push((self.string()?, self.string()?));
                }
                Whole::Hash(fields)
            }
            TYPE_HASH_METADATA | TYPE_HASH_METADATA_PRE_GA => {
                // Deadlines relative to the earliest (+1), or absolute before the release.
                let earliest = match kind {
                    TYPE_HASH_METADATA => Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?)),
                    _ => None,
                };
                let count = self.count(3)?;
                let mut fields = Vec::with_capacity(count);
                for _ in 0..count {
                    let at = match (self.length()?, earliest) {
                        (0, _) => 0,
                        (distance, Some(earliest)) => (distance - 1).checked_add(earliest)?,
                        (at, None) => at,
                    };
                    fields.push((self.string()?, self.string()?, field_deadline(at)?));
                }
                Whole::ExpiringHash(fields)
            }
            TYPE_HASH_LISTPACK_EX | TYPE_HASH_LISTPACK_EX_PRE_GA => {
                if kind == TYPE_HASH_LISTPACK_EX {
                    self.take(8)?; // The earliest deadline, which the fields repeat.
                }
                let items = self.read_listpack()?;
                if items.len() % 3 != 0 {
                    return None;
                }
                let mut fields = Vec::with_capacity(items.len() / 3);
                for triple in items.chunks(3) {
                    let at = std::str::from_utf8(&triple[2]).ok()?.parse::<u64>().ok()?;
                    fields.push((triple[0].clone(), triple[1].clone(), field_deadline(at)?));
                }
                Whole::ExpiringHash(fields)
            }
            TYPE_SET_INTSET => Whole::Set(intset(&self.string()?, &mut self.budget)?),
            TYPE_SET_LISTPACK => Whole::Set(self.read_listpack()?),
            TYPE_HASH_LISTPACK => {
                let items = self.read_listpack()?;
                if items.len() % 2 != 0 {
                    return None;
                }
                let pairs = items
                    .chunks(2)
                    .map(|p| (p[0].clone(), p[1].clone()))
                    .collect();
                Whole::Hash(pairs)
            }
            TYPE_ZSET_LISTPACK => {
                let items = self.read_listpack()?;
                if items.len() % 2 != 0 {
                    return None;
                }
                let mut members = Vec::with_capacity(items.len() / 2);
                for pair in items.chunks(2) {
                    let score: f64 = std::str::from_utf8(&pair[1]).ok()?.parse().ok()?;
                    if score.is_nan() {
                        return None;
                    }
                    members.push((pair[0].clone(), score));
                }
                Whole::SortedSet(members)
            }
            TYPE_LIST_QUICKLIST_2 => {
                let nodes = self.count(2)?;
                let mut items = Vec::new();
                for _ in 0..nodes {
                    let container = self.length()?;
                    let node = self.string()?;
                    match container {
                        // A plain node: one element.
                        1 => items.push(node),
                        2 => items.extend(self.listpack(&node)?),
                        _ => return None,
                    }
                }
                Whole::List(items)
            }
            _ => return None,
        };
        // Redis refuses an empty collection ("empty keys").
        let empty = match &value {
            Whole::String(_) => false,
            Whole::List(v) | Whole::Set(v) => v.is_empty(),
            Whole::Hash(v) => v.is_empty(),
            Whole::ExpiringHash(v) => v.is_empty(),
            Whole::SortedSet(v) => v.is_empty(),
        };
        (!empty).then_some(value)
    }

    /// An old-style score: a length byte then its text (253 nan, 254 +inf, 255 -inf).
    fn text_score(&mut self) -> Option<f64> {
        match self.byte()? {
            253 => Some(f64::NAN),
            254 => Some(f64::INFINITY),
            255 => Some(f64::NEG_INFINITY),
            len => std::str::from_utf8(self.take(usize::from(len))?)
                .ok()?
                .parse()
                .ok(),
        }
    }
}

/// The fuzz body (`fuzzing::dump_payload`): `data` as a payload, and sealed as one, read as
/// a key's value and as FUNCTION RESTORE's libraries; what reads must write and read back.
pub(crate) fn round_trip(data: &[u8]) {
    let _ = decode(data);
    let _ = decode_functions(data);
    let _ = stream::decode_stream(data);
    let sealed = seal(data.to_vec());
    stream::round_trip(&sealed);
    if let Ok(value) = decode(&sealed) {
        assert_eq!(decode(&encode(&value)), Ok(value));
    }
    if let Ok(codes) = decode_functions(&sealed) {
        let written = encode_functions(codes.iter().map(|code| &code[..]));
        assert_eq!(decode_functions(&written), Ok(codes));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(text: &str) -> Bytes {
        Bytes::copy_from_slice(text.as_bytes())
    }

    #[test]
    fn the_checksum_is_redis_s_crc64() {
        // The check value of CRC-64/Jones as Redis computes it (its crc64 test).
        assert_eq!(crc64(b"123456789"), 0xe9c6_d914_c4b8_d9ca);
    }

    fn from_hex(hex: &str) -> Vec<u8> {
        (0..hex.len())
            .step_by(2)
            .map(|at| u8::from_str_radix(&hex[at..at + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn payloads_redis_server_wrote_are_read() {
        // `DUMP` answers of redis-server 7.0, whole (their checksums included): SET s hello;
        // SET n 12345 (an integer); RPUSH l a b (a quicklist of one listpack); SADD i 1 2 3
        // (an intset); HSET h f v and ZADD z 1.5 m (listpacks); SET big to "abc" × 100
        // (LZF); RPUSH of e0..e4, -70000, 300 and 5,000 × "x" (one listpack, LZF-compressed,
        // its integers in 7-bit, 13-bit and 24-bit forms).
        let big_list: Vec<Bytes> = ["e0", "e1", "e2", "e3", "e4", "-70000", "300"]
            .iter()
            .map(|t| b(t))
            .chain([Bytes::from(vec![b'x'; 5000])])
            .collect();
        let cases: [(&str, Whole); 8] = [
            ("000568656c6c6f0a006372df766534200a", Whole::String(b("hello"))),
            ("00c139300a009d94ea2793fc08b9", Whole::String(b("12345"))),
            ("1201020d0d0000000200816102816202ff0a0068eb0a891341bbb1", Whole::List(vec![b("a"), b("b")])),
            ("0b0e02000000030000000100020003000a00a5025ce26d6e4d1b", Whole::Set(vec![b("1"), b("2"), b("3")])),
            ("100d0d0000000200816602817602ff0a0020f13d442354089d", Whole::Hash(vec![(b("f"), b("v"))])),
            ("110f0f0000000200816d0283312e3504ff0a0049d9876078254e8a", Whole::SortedSet(vec![(b("m"), 1.5)])),
            ("00c30e412c0361626361e0ff02e115070162630a00d25733cec044e12b", Whole::String(Bytes::from("abc".repeat(100)))),
            ("120102c3406653b20cb2130000080082653003826531200300322003003320030b3403f290eefe04c12c02f08820220078e0ff00e0ff00e0ff00e0ff00e0ff00e0ff00e0ff00e0ff00e0ff00e0ff00e0ff00e0ff00e0ff00e0ff00e0ff00e0ff00e0ff00e0ff00e0ee0002278dff0a00e6bfe7c4e35b5196", Whole::List(big_list)),
        ];
        for (hex, value) in cases {
            assert_eq!(decode(&from_hex(hex)), Ok(value), "{hex}");
        }
    }

    #[test]
    fn hashes_with_field_deadlines_go_both_ways_with_redis_7_4() {
        // redis-server 7.4.1's DUMP of HSET small a 1 b 2 c 3 with HPEXPIREAT 4102444800000
        // on a and 4102444800123 on c: RDB_TYPE_HASH_LISTPACK_EX, the fields with deadlines
        // first, earliest first, then the others.
        let redis = "1900d8c32cbb0300002c2c00000009008161020101f400d8c32cbb030000098163020301f47bd8c32cbb0300000981620202010001ff0c00e5110c228b5517e6";
        let (a, c) = (Some(4_102_444_800_000), Some(4_102_444_800_123));
        let small = Whole::ExpiringHash(vec![
            (b("a"), b("1"), a),
            (b("c"), b("3"), c),
            (b("b"), b("2"), None),
        ]);
        assert_eq!(decode(&from_hex(redis)), Ok(small.clone()));
        // What Omnibus writes for it (RDB_TYPE_HASH_METADATA, version 12): redis-server
        // 7.4.1 restored this payload with both deadlines.
        let ours = "1800d8c32cbb0300000301016101310001620132407c016301330c001ccc266587842d17";
        let written = Whole::ExpiringHash(vec![
            (b("a"), b("1"), a),
            (b("b"), b("2"), None),
            (b("c"), b("3"), c),
        ]);
        assert_eq!(encode(&written), from_hex(ours));
        assert_eq!(decode(&from_hex(ours)), Ok(written));
        // A deadline past Redis's 48-bit clock is refused.
        let mut past_max = vec![TYPE_HASH_METADATA_PRE_GA, 1, 0x81];
        past_max.extend_from_slice(&(1u64 << 48).to_be_bytes());
        past_max.extend_from_slice(&[1, b'f', 1, b'v']);
        assert_eq!(decode(&seal_as(past_max, 12)), Err(PayloadError::BadFormat));
    }

    #[test]
    fn what_is_written_reads_back_and_damage_is_refused() {
        let values = [
            Whole::String(b("")),
            Whole::String(Bytes::from(vec![7u8; 20_000])),
            Whole::List((0..100).map(|n| b(&n.to_string())).collect()),
            Whole::Set(vec![b("a"), b("b")]),
            Whole::SortedSet(vec![(b("a"), -1.25), (b("b"), f64::INFINITY)]),
            Whole::Hash(vec![(b("f"), b("v")), (b("g"), b(""))]),
        ];
        for value in values {
            let payload = encode(&value);
            assert_eq!(decode(&payload), Ok(value.clone()));
            let mut damaged = payload.clone();
            damaged[0] ^= 1;
            assert_eq!(decode(&damaged), Err(PayloadError::VersionOrChecksum));
            let mut newer = payload[..payload.len() - 10].to_vec();
            newer.extend_from_slice(&13u16.to_le_bytes());
            let crc = crc64(&newer);
            newer.extend_from_slice(&crc.to_le_bytes());
            assert_eq!(decode(&newer), Err(PayloadError::VersionOrChecksum));
        }
        // A well-sealed payload that says nothing sensible.
        let mut nonsense = vec![TYPE_LIST, 0x80, 0xff, 0xff, 0xff, 0xff];
        nonsense.extend_from_slice(&10u16.to_le_bytes());
        let crc = crc64(&nonsense);
        nonsense.extend_from_slice(&crc.to_le_bytes());
        assert_eq!(decode(&nonsense), Err(PayloadError::BadFormat));
    }

    #[test]
    fn payloads_that_would_expand_past_the_bound_are_refused_before_they_do() {
        // A string whose LZF form says it expands to 1 GiB: refused before any allocation.
        let mut body = vec![TYPE_STRING, 0xc0 | 3];
        length(&mut body, 3);
        length(&mut body, 1 << 30);
        body.extend_from_slice(&[0x01, b'a', b'b']);
        assert_eq!(decode(&seal(body)), Err(PayloadError::TooLarge));
        // Items count against the bound as they are read: a listpack of a thousand small
        // integers within a small bound.
        let items: Vec<packed::Item> = (0..1_000).map(packed::Item::Int).collect();
        let mut body = vec![TYPE_SET_LISTPACK];
        string(&mut body, &packed::write_listpack(&items));
        let mut reader = Reader::new(&body);
        reader.budget = Budget::with_left(10_000);
        let value = reader.object();
        assert_eq!(reader.finish(value), Err(PayloadError::TooLarge));
        let mut reader = Reader::new(&body);
        let value = reader.object();
        assert!(matches!(reader.finish(value), Ok(Whole::Set(members)) if members.len() == 1_000));
    }

    proptest::proptest! {
        /// Any bytes, sealed as a payload or not: read without a panic, and what reads
        /// writes back to the same value (the fuzz target's body).
        #[test]
        fn any_payload_reads_safely(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256)) {
            round_trip(&data);
        }

        /// Listpack-shaped bytes (a valid header, then anything) reach the entry reader.
        #[test]
        fn listpack_bodies_read_safely(entries in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)) {
            let mut blob = ((entries.len() + 7) as u32).to_le_bytes().to_vec();
            blob.extend_from_slice(&2u16.to_le_bytes());
            blob.extend_from_slice(&entries);
            blob.push(0xff);
            let _ = listpack(&blob, &mut Budget::default());
            let mut body = vec![TYPE_HASH_LISTPACK];
            string(&mut body, &blob);
            round_trip(&body);
        }
    }

    #[test]
    fn function_payloads_read_back_in_both_forms_and_refuse_what_is_not_a_library() {
        let codes = [&b"#!lua name=a\nreturn 1"[..], &b"#!lua name=b\n"[..]];
        let payload = encode_functions(codes);
        let read = decode_functions(&payload).unwrap();
        assert_eq!(read, vec![b("#!lua name=a\nreturn 1"), b("#!lua name=b\n")]);
        assert_eq!(
            decode_functions(&encode_functions([])).unwrap(),
            Vec::<Bytes>::new()
        );
        // Redis 7.0 RC's form: name, engine, a description (given), the code.
        let mut old = vec![OPCODE_FUNCTION_PRE_GA];
        for part in [&b"lib"[..], b"LUA"] {
            string(&mut old, part);
        }
        length(&mut old, 1);
        string(&mut old, b"described");
        string(
            &mut old,
            b"redis.register_function('f', function() return 1 end)",
        );
        assert_eq!(
            decode_functions(&seal(old)).unwrap(),
            vec![b(
                "#!LUA name=lib\nredis.register_function('f', function() return 1 end)"
            )]
        );
        let key = encode(&Whole::String(b("v")));
        assert_eq!(
            decode_functions(&key),
            Err("given type is not a function".into())
        );
        let cut = seal(vec![OPCODE_FUNCTION2, 10, b'x']);
        assert_eq!(
            decode_functions(&cut),
            Err("Failed loading library payload".into())
        );
        let mut damaged = payload.clone();
        damaged[1] ^= 1;
        assert_eq!(
            decode_functions(&damaged),
            Err("DUMP payload version or checksum are wrong".into())
        );
    }
}
