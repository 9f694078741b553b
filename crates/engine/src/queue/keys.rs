//! How a queue's state is laid out in the state store's `queue_state` table. Every key starts
//! with `<queue>␟` (0x1F, which no queue name contains), then one tag letter:
//!
//! | key | value | meaning |
//! |---|---|---|
//! | `F` | u64 BE | ack floor: every offset below it is finished (acked or dead-lettered) |
//! | `A<start:20>` | u64 BE end | offsets `[start, end)` are finished, above the floor: one key per run of finished offsets, so consecutive acks rewrite one key (empty value: the older one-key-per-offset layout, `[start, start+1)`) |
//! | `D<offset:20>` | u32 BE attempts, then UTF-8 last error | deliveries that may have happened, not finished: written by a failure with the retry it schedules already counted, or by a delivery not yet counted (`core/leases.rs`) |
//! | `G<end:20>` | u64 BE first | offsets `[first, end)` were delivered at least once (one fetch's first deliveries); an unfinished one without a `D` key has had one attempt |
//! | `L<priority:1>` | u64 BE | first-delivery frontier of a priority level: every offset of that priority below it counts as delivered once unless it has a `D` key (`core/leases.rs`); put-max |
//! | `T<due_ms:20><offset:20>` | empty | waiting until `due_ms` (delayed enqueue, or retry backoff) |
//! | `P<first:20>` | u64 BE end, u8 priority | offsets `[first, end)` have this priority (0 is not stored) |
//! | `S` | `paused` | the queue is paused |
//! | `R` | u64 BE | dead-letter offset up to which messages were redriven |
//! | `X<offset:20>` | empty | the dead letter at this offset (at or above `R`) was redriven on its own (`redrive.rs`) |
//!
//! `F`, `A`, `D` and `L` keys are written with put-max (`StateWrite::PutMax`): a queue's commits are not
//! ordered among themselves, and an older ack's commit that reaches the store after a newer
//! one's must not take the floor, a run's end or an attempt count back (an attempt count only
//! grows: its bytes start with the count, big-endian). Stale `A`, `D` and `G` keys below the
//! floor, or for finished offsets, are ignored at recovery.
//!
//! Everything else is derived at startup: an offset below the stream's high watermark that is
//! not finished and has no timer is ready; a lease lost in a crash is simply ready again with
//! its attempt counted.

pub const TABLE: &str = "queue_state";
const SEPARATOR: char = '\u{1f}';

/// Digits of a number padded to 20 (every u64 fits), so numeric order is byte order.
pub const PADDED_DIGITS: usize = 20;

/// Appends `number` as [`PADDED_DIGITS`] zero-padded decimal digits. Written by hand: the
/// keys of acks and deliveries are built once per message, and `format!` with a width
/// was most of their cost.
pub fn push_padded(out: &mut String, mut number: u64) {
    let mut digits = [b'0'; PADDED_DIGITS];
    for digit in digits.iter_mut().rev() {
        *digit = b'0' + (number % 10) as u8;
        number /= 10;
        if number == 0 {
            break;
        }
    }
    out.extend(digits.iter().map(|&digit| char::from(digit)));
}

/// `<queue>␟<tag>` followed by `offset` padded, built in one allocation.
fn tagged_offset(queue: &str, tag: char, offset: u64) -> String {
    let mut key = String::with_capacity(queue.len() + 2 + PADDED_DIGITS);
    key.push_str(queue);
    key.push(SEPARATOR);
    key.push(tag);
    push_padded(&mut key, offset);
    key
}

pub fn prefix(queue: &str) -> String {
    format!("{queue}{SEPARATOR}")
}

pub fn floor(queue: &str) -> String {
    let mut key = String::with_capacity(queue.len() + 2);
    key.push_str(queue);
    key.push(SEPARATOR);
    key.push('F');
    key
}

pub fn acked(queue: &str, offset: u64) -> String {
    tagged_offset(queue, 'A', offset)
}

pub fn delivery(queue: &str, offset: u64) -> String {
    tagged_offset(queue, 'D', offset)
}

/// `G<end>` → u64 BE first: a run of first deliveries (see `core/runs.rs`).
pub fn delivered_run(queue: &str, end: u64) -> String {
    tagged_offset(queue, 'G', end)
}

/// `L<priority>` → u64 BE: the first-delivery frontier of a priority level.
pub fn frontier(queue: &str, priority: usize) -> String {
    format!("{queue}{SEPARATOR}L{priority}")
}

pub fn timer(queue: &str, due_ms: i64, offset: u64) -> String {
    format!("{queue}{SEPARATOR}T{:020}{offset:020}", due_ms.max(0))
}

pub fn timer_range_start(queue: &str) -> String {
    format!("{queue}{SEPARATOR}T")
}

pub fn timer_range_end(queue: &str) -> String {
    format!("{queue}{SEPARATOR}U")
}

/// `S` → `paused` while the queue is paused.
pub fn paused(queue: &str) -> String {
    format!("{queue}{SEPARATOR}S")
}

/// `R` → u64 BE: the dead-letter stream offset up to which messages were redriven.
pub fn redrive(queue: &str) -> String {
    format!("{queue}{SEPARATOR}R")
}

/// `X<offset:20>` → empty: this dead letter was redriven on its own.
pub fn redriven_one(queue: &str, offset: u64) -> String {
    format!("{queue}{SEPARATOR}X{offset:020}")
}

pub fn redriven_one_prefix(queue: &str) -> String {
    format!("{queue}{SEPARATOR}X")
}

pub fn priority(queue: &str, first: u64) -> String {
    tagged_offset(queue, 'P', first)
}

/// The part of a key after `<queue>␟`.
pub fn suffix<'a>(queue: &str, key: &'a str) -> Option<&'a str> {
    key.strip_prefix(queue)?.strip_prefix(SEPARATOR)
}

pub fn parse_timer(suffix: &str) -> Option<(i64, u64)> {
    let body = suffix.strip_prefix('T')?;
    if body.len() != 40 {
        return None;
    }
    Some((body[..20].parse().ok()?, body[20..].parse().ok()?))
}

pub fn encode_delivery(attempts: u32, last_error: &str) -> Vec<u8> {
    let mut bytes = attempts.to_be_bytes().to_vec();
    bytes.extend_from_slice(last_error.as_bytes());
    bytes
}

pub fn decode_delivery(bytes: &[u8]) -> (u32, String) {
    if bytes.len() < 4 {
        return (0, String::new());
    }
    let attempts = u32::from_be_bytes(bytes[..4].try_into().expect("4 bytes"));
    (attempts, String::from_utf8_lossy(&bytes[4..]).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timer_keys_sort_by_due_time_then_offset() {
        let a = timer("q", 5, 900);
        let b = timer("q", 10, 1);
        let c = timer("q", 10, 2);
        assert!(a < b && b < c);
        assert!(timer_range_start("q") < a && c < timer_range_end("q"));
        assert_eq!(parse_timer(suffix("q", &b).unwrap()), Some((10, 1)));
        assert_eq!(
            decode_delivery(&encode_delivery(3, "boom")),
            (3, "boom".into())
        );
    }

    #[test]
    fn keys_built_by_hand_read_as_the_formatted_layout() {
        for offset in [0, 7, 1_000, 99_999_999_999, u64::MAX] {
            assert_eq!(acked("q", offset), format!("q\u{1f}A{offset:020}"));
            assert_eq!(delivery("q", offset), format!("q\u{1f}D{offset:020}"));
            assert_eq!(delivered_run("q", offset), format!("q\u{1f}G{offset:020}"));
            assert_eq!(priority("q", offset), format!("q\u{1f}P{offset:020}"));
        }
        assert_eq!(floor("q"), "q\u{1f}F");
        // Numeric order is byte order.
        assert!(acked("q", 9) < acked("q", 10) && acked("q", 10) < acked("q", u64::MAX));
    }
}
