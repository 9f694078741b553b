//! Redis streams on Omnibus streams (docs/redis.md, "Streams"): IDs (`id.rs`), the entry ↔
//! record mapping (`entry.rs`), reading by ID (`read.rs`) and the one writer per stream that
//! orders and group-commits XADD, XTRIM, XSETID and XDEL (`writer.rs`; what it is handed,
//! `change.rs`) with its ID clock,
//! which scripts give IDs out of themselves (`clock.rs`) and the sessions' side of it
//! (`writers.rs`), entries XDEL removed
//! (`deleted.rs`), offsets of IDs just answered, for the XACK after them (`known_ids.rs`),
//! and stream keys' deadlines with the sweeper that deletes them (`expiry.rs`).

pub(crate) mod change;
pub(crate) mod clock;
pub(crate) mod deleted;
pub(crate) mod entry;
pub(crate) mod expiry;
pub(crate) mod id;
pub(crate) mod known_ids;
pub(crate) mod read;
pub(crate) mod trim;
pub(crate) mod turns;
pub(crate) mod writer;
pub(crate) mod writers;

/// When `stream` was made, if it exists: a stream deleted and made again through another
/// door has another, so what the door keeps about a stream is kept with it.
pub(crate) fn created_ms(engine: &omnibus_engine::Engine, stream: &str) -> Option<i64> {
    engine.stream_created_ms(stream).ok()
}

/// How the door makes a stream for a Redis stream key: one partition, and no retention by
/// age, as entries carry their ID's time, which may be any time (Redis never expires them).
pub(crate) fn new_stream_spec(name: &str) -> omnibus_engine::StreamSpec {
    omnibus_engine::StreamSpec {
        name: name.to_string(),
        partitions: Some(1),
        no_time_retention: true,
        ..omnibus_engine::StreamSpec::default()
    }
}

pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
