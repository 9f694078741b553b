//! HyperLogLog: PFADD, PFCOUNT, PFMERGE over string values in Redis's own format, so a value
//! written here reads in redis-server and the reverse, and counts come out as Redis counts
//! them (the same hash, registers and estimator).
//!
//! The format (Redis's `hyperloglog.c`, written here from its description): a 16-byte header
//! — `HYLL`, an encoding byte (0 dense, 1 sparse), three unused bytes, and a cached count (8
//! bytes, little-endian; the top bit of the last byte set when it is stale) — then the
//! registers. 2^14 registers of 6 bits each; an element's 64-bit MurmurHash64A (seed
//! `0xadc83b19`) picks the register with its low 14 bits, and the register keeps the
//! longest run of zeros (plus one) seen in the remaining 50 bits, counted from the low end.
//! Dense packs the registers little-endian, 12,288 bytes. Sparse is runs: `00xxxxxx` (x+1
//! zero registers), `01xxxxxx yyyyyyyy` (xy+1 zero registers), `1vvvvvxx` (xx+1 registers
//! of value v+1). The count is Otmar Ertl's estimator over the registers' histogram, which
//! Redis uses since 5.0.
//!
//! A value is written sparse while its runs fit in 3,000 bytes and no register is above 32,
//! dense past that, as Redis switches (its runs may be cut differently: both read either).
//! What differs from redis-server: PFCOUNT does not write its count back into the value's
//! cache (it is computed each time, ~16k registers read), and PFADD and PFMERGE write the
//! whole value (docs/redis.md, "HyperLogLog").

use bytes::Bytes;
use omnibus_engine::keys::SetExpiry;

use super::strings::{check_string, map, step};
use crate::codec::Reply;
use crate::session::{Session, Step};

const P: u32 = 14;
const REGISTERS: usize = 1 << P;
const Q: u32 = 64 - P;
const BITS: usize = 6;
const REGISTER_MAX: u8 = (1 << BITS) - 1;
const HEADER: usize = 16;
const DENSE_BYTES: usize = HEADER + (REGISTERS * BITS).div_ceil(8);
const MAGIC: &[u8; 4] = b"HYLL";
const DENSE: u8 = 0;
const SPARSE: u8 = 1;
const SEED: u64 = 0xadc8_3b19;
/// 0.5 / ln 2, the estimator's constant for many registers.
const ALPHA_INF: f64 = 0.721_347_520_444_481_7;

const INVALID: &str = "WRONGTYPE Key is not a valid HyperLogLog string value.";

pub(super) fn run(session: &mut Session, name: &str, arguments: &[Bytes]) -> Step {
    let outcome = match name {
        "pfadd" => pfadd(session, arguments),
        "pfcount" => pfcount(session, arguments),
        "pfmerge" => pfmerge(session, arguments),
        _ => Err(Reply::error(format!("ERR unknown command '{name}'"))),
    };
    outcome.unwrap_or_else(Step::from)
}

/// One register per byte, as a value is read into memory.
type Registers = Vec<u8>;

/// The registers of a HyperLogLog value, or `None` when the string is not one.
fn read(value: &[u8]) -> Option<Registers> {
    if value.len() < HEADER || &value[..4] != MAGIC {
        return None;
    }
    let body = &value[HEADER..];
    match value[4] {
        DENSE if value.len() == DENSE_BYTES => {
            Some((0..REGISTERS).map(|index| dense_get(body, index)).collect())
        }
        SPARSE => read_sparse(body),
        _ => None,
    }
}

fn dense_get(body: &[u8], index: usize) -> u8 {
    let bit = index * BITS;
    let (byte, shift) = (bit / 8, bit % 8);
    let low = u16::from(body[byte]);
    let high = u16::from(body.get(byte + 1).copied().unwrap_or(0));
    (((low | high << 8) >> shift) as u8) & REGISTER_MAX
}

/// Sparse runs; `None` when they do not cover the registers exactly.
fn read_sparse(body: &[u8]) -> Option<Registers> {
    let mut registers = Vec::with_capacity(REGISTERS);
    let mut at = 0;
    while at < body.len() {
        let op = body[at];
        let (value, run) = if op & 0x80 != 0 {
            at += 1;
            (((op >> 2) & 0x1f) + 1, usize::from(op & 0x03) + 1)
        } else if op & 0x40 != 0 {
            let low = *body.get(at + 1)?;
            at += 2;
            (0, (usize::from(op & 0x3f) << 8 | usize::from(low)) + 1)
        } else {
            at += 1;
            (0, usize::from(op & 0x3f) + 1)
        };
        if registers.len() + run > REGISTERS {
            return None;
        }
        registers.extend(std::iter::repeat_n(value, run));
    }
    (registers.len() == REGISTERS).then_some(registers)
}

/// Redis's `hll-sparse-max-bytes` default: a sparse value longer than this is written dense.
const SPARSE_BYTES_MAX: usize = 3_000;
/// The largest register a sparse run can hold (`1vvvvvxx`: v + 1).
const SPARSE_VALUE_MAX: u8 = 32;

/// The value of `registers`, its cached count marked stale: sparse while every register
/// fits a sparse run and the runs stay within [`SPARSE_BYTES_MAX`] (a HyperLogLog of a few
/// hundred elements is tens of bytes, not 12 KiB), dense past that, as Redis switches.
fn write(registers: &[u8]) -> Vec<u8> {
    write_sparse(registers).unwrap_or_else(|| write_dense(registers))
}

fn header(encoding: u8, capacity: usize) -> Vec<u8> {
    let mut value = Vec::with_capacity(capacity);
    value.extend_from_slice(MAGIC);
    value.extend_from_slice(&[encoding, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80]);
    value
}

fn write_dense(registers: &[u8]) -> Vec<u8> {
    let mut value = header(DENSE, DENSE_BYTES);
    value.resize(DENSE_BYTES, 0);
    let body = &mut value[HEADER..];
    for (index, &register) in registers.iter().enumerate() {
        let bit = index * BITS;
        let (byte, shift) = (bit / 8, bit % 8);
        let bits = u16::from(register) << shift;
        body[byte] |= bits as u8;
        if let Some(next) = body.get_mut(byte + 1) {
            *next |= (bits >> 8) as u8;
        }
    }
    value
}

/// The runs of `registers` (zeros as ZERO or XZERO, others as VAL runs of up to 4), or
/// `None` when a register is too big for a run or the runs grow past the bound.
fn write_sparse(registers: &[u8]) -> Option<Vec<u8>> {
    let mut value = header(SPARSE, 64);
    let mut at = 0;
    while at < registers.len() {
        let register = registers[at];
        if register > SPARSE_VALUE_MAX {
            return None;
        }
        let same = registers[at..]
            .iter()
            .take_while(|&&other| other == register)
            .count();
        if register == 0 {
            let run = same.min(1 << 14);
            if run <= 64 {
                value.push((run - 1) as u8);
            } else {
                let length = run - 1;
                value.extend_from_slice(&[0x40 | (length >> 8) as u8, (length & 0xff) as u8]);
            }
            at += run;
        } else {
            let run = same.min(4);
            value.push(0x80 | (register - 1) << 2 | (run - 1) as u8);
            at += run;
        }
        if value.len() > SPARSE_BYTES_MAX {
            return None;
        }
    }
    Some(value)
}

/// Austin Appleby's MurmurHash64A, reading 8-byte words little-endian (as Redis does on
/// every machine).
fn murmur64a(data: &[u8], seed: u64) -> u64 {
    const M: u64 = 0xc6a4_a793_5bd1_e995;
    const R: u32 = 47;
    let mut h = seed ^ (data.len() as u64).wrapping_mul(M);
    let mut words = data.chunks_exact(8);
    for word in words.by_ref() {
        let mut k = u64::from_le_bytes(word.try_into().expect("8 bytes"));
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h ^= k;
        h = h.wrapping_mul(M);
    }
    let tail = words.remainder();
    if !tail.is_empty() {
        for (at, &byte) in tail.iter().enumerate() {
            h ^= u64::from(byte) << (8 * at);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> R;
    h = h.wrapping_mul(M);
    h ^= h >> R;
    h
}

/// The register an element counts in, and the value it offers it.
fn register_of(element: &[u8]) -> (usize, u8) {
    let hash = murmur64a(element, SEED);
    let index = (hash & (REGISTERS as u64 - 1)) as usize;
    // The bit past the 50 kept ends the run of zeros, so the value is at most Q + 1.
    let rest = (hash >> P) | 1 << Q;
    (index, rest.trailing_zeros() as u8 + 1)
}

/// Offers `element` to `registers`; whether a register grew.
fn add(registers: &mut [u8], element: &[u8]) -> bool {
    let (index, count) = register_of(element);
    if registers[index] < count {
        registers[index] = count;
        return true;
    }
    false
}

fn sigma(mut x: f64) -> f64 {
    if x == 1.0 {
        return f64::INFINITY;
    }
    let (mut y, mut z) = (1.0, x);
    loop {
        x *= x;
        let before = z;
        z += x * y;
        y += y;
        if z == before {
            return z;
        }
    }
}

fn tau(mut x: f64) -> f64 {
    if x == 0.0 || x == 1.0 {
        return 0.0;
    }
    let (mut y, mut z) = (1.0, 1.0 - x);
    loop {
        x = x.sqrt();
        let before = z;
        y *= 0.5;
        z -= (1.0 - x).powi(2) * y;
        if z == before {
            return z / 3.0;
        }
    }
}

/// The estimated number of distinct elements offered to `registers` (Ertl's estimator).
fn count(registers: &[u8]) -> u64 {
    let mut histogram = [0u32; Q as usize + 2];
    for &register in registers {
        histogram[usize::from(register).min(Q as usize + 1)] += 1;
    }
    let m = REGISTERS as f64;
    let mut z = m * tau((m - f64::from(histogram[Q as usize + 1])) / m);
    for j in (1..=Q as usize).rev() {
        z += f64::from(histogram[j]);
        z *= 0.5;
    }
    z += m * sigma(f64::from(histogram[0]) / m);
    (ALPHA_INF * m * m / z).round() as u64
}

/// PFADD key [element …]: 1 when a register grew or the key was made.
fn pfadd(session: &mut Session, arguments: &[Bytes]) -> Result<Step, Reply> {
    check_string(session, &arguments[0])?;
    let elements = &arguments[1..];
    let outcome = session.keys.change_string(&arguments[0], |old| {
        let (mut registers, mut changed) = match old {
            None => (vec![0; REGISTERS], true),
            Some(value) => match read(value) {
                Some(registers) => (registers, false),
                None => return (None, Err(())),
            },
        };
        for element in elements {
            changed |= add(&mut registers, element);
        }
        match changed {
            true => (Some(write(&registers)), Ok(true)),
            false => (None, Ok(false)),
        }
    });
    Ok(step(outcome.map(|durable| {
        map(durable, |changed| match changed {
            Ok(changed) => Reply::Integer(i64::from(changed)),
            Err(()) => Reply::error(INVALID),
        })
    })))
}

/// PFCOUNT key [key …]: the estimate for the union of the keys' elements.
fn pfcount(session: &mut Session, arguments: &[Bytes]) -> Result<Step, Reply> {
    for key in arguments {
        check_string(session, key)?;
    }
    let mut union = vec![0u8; REGISTERS];
    for value in session.keys.get_many(arguments).into_iter().flatten() {
        let registers = read(&value).ok_or_else(|| Reply::error(INVALID))?;
        for (kept, register) in union.iter_mut().zip(registers) {
            *kept = (*kept).max(register);
        }
    }
    Ok(Reply::Integer(count(&union) as i64).into())
}

/// PFMERGE destkey [sourcekey …]: the destination holds the union of itself and the sources,
/// and keeps its deadline (Redis changes it where it is).
fn pfmerge(session: &mut Session, arguments: &[Bytes]) -> Result<Step, Reply> {
    for key in arguments {
        check_string(session, key)?;
    }
    // The destination is a source too (its own elements stay), and first.
    let outcome =
        session
            .keys
            .combine_strings(&arguments[0], arguments, SetExpiry::Keep, |values| {
                let mut union = vec![0u8; REGISTERS];
                for value in values.iter().flatten() {
                    for (kept, register) in union.iter_mut().zip(read(value)?) {
                        *kept = (*kept).max(register);
                    }
                }
                Some(write(&union))
            });
    Ok(step(outcome.map(|durable| {
        map(durable, |stored| match stored {
            Some(_) => Reply::ok(),
            None => Reply::error(INVALID),
        })
    })))
}

/// The body of the `redis_hyperloglog` fuzz target (`crate::fuzzing::hyperloglog_value`):
/// `value` read as a HyperLogLog, and if it reads, written and read again to the same
/// registers, counted, and offered an element.
pub(crate) fn round_trip(value: &[u8]) {
    let Some(mut registers) = read(value) else {
        return;
    };
    assert_eq!(registers.len(), REGISTERS);
    assert!(registers.iter().all(|register| *register <= REGISTER_MAX));
    assert_eq!(read(&write(&registers)).as_ref(), Some(&registers));
    let _ = count(&registers);
    add(&mut registers, value);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_registers_read_back_what_was_written() {
        let registers: Vec<u8> = (0..REGISTERS).map(|i| (i * 7 % 64) as u8).collect();
        let value = write(&registers);
        // Registers above 32 have no sparse run: dense.
        assert_eq!((value.len(), value[4]), (12_304, DENSE));
        assert_eq!(read(&value), Some(registers));
        // Not a HyperLogLog: other magic, another length, an unknown encoding.
        assert_eq!(read(b"HYLX"), None);
        assert_eq!(read(&value[..100]), None);
        let mut unknown = value.clone();
        unknown[4] = 2;
        assert_eq!(read(&unknown), None);
    }

    #[test]
    fn sparse_runs_cover_every_register_or_are_refused() {
        let mut sparse = b"HYLL\x01\0\0\0\0\0\0\0\0\0\0\0".to_vec();
        // XZERO of 16,380, VAL 3 × 2 (1 00010 01), ZERO of 2.
        sparse.extend_from_slice(&[0x40 | (16_379 >> 8) as u8, (16_379 & 0xff) as u8]);
        sparse.extend_from_slice(&[0b1000_1001, 0b0000_0001]);
        let registers = read(&sparse).expect("a valid sparse value");
        assert_eq!(registers[16_379], 0);
        assert_eq!(&registers[16_380..16_382], &[3, 3]);
        assert_eq!(&registers[16_382..], &[0, 0]);
        sparse.push(0);
        assert_eq!(read(&sparse), None);
    }

    #[test]
    fn few_registers_are_written_sparse_and_many_dense() {
        let mut registers = vec![0u8; REGISTERS];
        let empty = write(&registers);
        // One XZERO run covers all 16,384 registers.
        assert_eq!(empty.len(), HEADER + 2);
        assert_eq!(read(&empty).as_deref(), Some(&registers[..]));
        registers[0] = 1;
        registers[1] = 1;
        registers[100] = 32;
        registers[16_383] = 7;
        let few = write(&registers);
        assert_eq!(few[4], SPARSE);
        assert!(few.len() < 32, "{}", few.len());
        assert_eq!(read(&few).as_deref(), Some(&registers[..]));
        // A register above 32, or runs past 3,000 bytes: dense.
        registers[200] = 33;
        assert_eq!(write(&registers)[4], DENSE);
        let varied: Vec<u8> = (0..REGISTERS).map(|i| (i % 3) as u8).collect();
        assert_eq!(write(&varied)[4], DENSE);
        assert_eq!(read(&write(&varied)), Some(varied));
    }

    #[test]
    fn murmur_hashes_every_byte_of_a_tail() {
        // Nothing to mix in: the empty input with seed 0 hashes to 0.
        assert_eq!(murmur64a(b"", 0), 0);
        // Each tail length reads all of its bytes (redis-server's counts, matched by the
        // differential test, check the values themselves).
        for length in 1..16 {
            let data: Vec<u8> = (0..length as u8).collect();
            let mut changed = data.clone();
            changed[length - 1] ^= 1;
            assert_ne!(
                murmur64a(&data, SEED),
                murmur64a(&changed, SEED),
                "{length}"
            );
        }
    }

    proptest::proptest! {
        /// The fuzz target's body on values that read (dense and sparse) and that do not.
        #[test]
        fn any_value_reads_safely(
            registers in proptest::collection::vec(0u8..64, REGISTERS),
            noise in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
        ) {
            let dense = write(&registers);
            round_trip(&dense);
            let mut sparse = b"HYLL\x01\0\0\0\0\0\0\0\0\0\0\0".to_vec();
            sparse.extend_from_slice(&noise);
            round_trip(&sparse);
            let mut damaged = dense.clone();
            damaged.truncate(HEADER + noise.len());
            round_trip(&damaged);
        }
    }

    #[test]
    fn counts_are_close_to_the_truth() {
        let mut registers = vec![0u8; REGISTERS];
        assert_eq!(count(&registers), 0);
        for n in 0..100_000u32 {
            add(&mut registers, format!("element:{n}").as_bytes());
        }
        let estimate = count(&registers) as f64;
        assert!(
            (estimate - 100_000.0).abs() < 100_000.0 * 0.03,
            "{estimate}"
        );
    }
}
