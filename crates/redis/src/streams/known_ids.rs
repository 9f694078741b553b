//! IDs whose offsets the door has just seen (entries XREADGROUP, XCLAIM and XAUTOCLAIM
//! answered), so the XACK that follows them finds its offsets without a lookup in the
//! stream (`read::offsets_of_ids`). Bounded per stream and in streams; keyed by the stream's
//! creation time, so a stream deleted and made again does not reuse old offsets.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use omnibus_engine::Engine;

use super::created_ms;
use super::id::StreamId;

/// IDs remembered per stream (the smallest are forgotten first).
pub(crate) const KNOWN_IDS_PER_STREAM: usize = 65_536;
/// Streams remembered at once (all are forgotten when more come).
pub(crate) const KNOWN_STREAMS_MAX: usize = 1_024;

/// One stream's known IDs with their offsets, and the stream's creation time.
type StreamIds = (i64, BTreeMap<StreamId, u64>);

#[derive(Default)]
pub(crate) struct KnownIds {
    streams: Mutex<HashMap<String, StreamIds>>,
}

impl KnownIds {
    pub(crate) fn remember(
        &self,
        engine: &Engine,
        stream: &str,
        pairs: impl IntoIterator<Item = (StreamId, u64)>,
    ) {
        let Some(created) = created_ms(engine, stream) else {
            return;
        };
        let mut streams = self.streams.lock().unwrap_or_else(|p| p.into_inner());
        if streams.len() >= KNOWN_STREAMS_MAX && !streams.contains_key(stream) {
            streams.clear();
        }
        let entry = streams
            .entry(stream.to_string())
            .or_insert_with(|| (created, BTreeMap::new()));
        if entry.0 != created {
            *entry = (created, BTreeMap::new());
        }
        entry.1.extend(pairs);
        while entry.1.len() > KNOWN_IDS_PER_STREAM {
            entry.1.pop_first();
        }
    }

    /// The offsets known for `ids`, and the IDs not known.
    pub(crate) fn lookup(
        &self,
        engine: &Engine,
        stream: &str,
        ids: &[StreamId],
    ) -> (HashMap<StreamId, u64>, Vec<StreamId>) {
        let created = created_ms(engine, stream);
        let streams = self.streams.lock().unwrap_or_else(|p| p.into_inner());
        let known = streams
            .get(stream)
            .filter(|(when, _)| Some(*when) == created)
            .map(|(_, ids)| ids);
        let mut found = HashMap::new();
        let mut missing = Vec::new();
        for id in ids {
            match known.and_then(|known| known.get(id)) {
                Some(offset) => {
                    found.insert(*id, *offset);
                }
                None => missing.push(*id),
            }
        }
        (found, missing)
    }
}

impl KnownIds {
    /// The IDs known for `offsets` (those the door answered lately): how an entry trimmed
    /// away while pending keeps showing its ID, as Redis's pending lists do. Offsets grow
    /// with IDs, so the map is in offset order too; one walk serves all of them.
    pub(crate) fn ids_of(
        &self,
        engine: &Engine,
        stream: &str,
        offsets: &[u64],
    ) -> HashMap<u64, StreamId> {
        let created = created_ms(engine, stream);
        let streams = self.streams.lock().unwrap_or_else(|p| p.into_inner());
        let Some((_, known)) = streams
            .get(stream)
            .filter(|(when, _)| Some(*when) == created)
        else {
            return HashMap::new();
        };
        let wanted: std::collections::HashSet<u64> = offsets.iter().copied().collect();
        let last = offsets.iter().copied().max().unwrap_or(0);
        known
            .iter()
            .take_while(|(_, offset)| **offset <= last)
            .filter(|(_, offset)| wanted.contains(offset))
            .map(|(id, offset)| (*offset, *id))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use omnibus_engine::{EngineConfig, StreamSpec};

    fn spec() -> StreamSpec {
        StreamSpec {
            name: "s".into(),
            partitions: Some(1),
            ..StreamSpec::default()
        }
    }

    #[tokio::test]
    async fn known_ids_are_bounded_and_forgotten_with_their_stream() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(EngineConfig::new(dir.path())).await.unwrap();
        engine.create_stream(spec()).await.unwrap();
        let known = KnownIds::default();
        let pairs = (0..KNOWN_IDS_PER_STREAM as u64 + 10).map(|n| (StreamId::new(n, 0), n));
        known.remember(&engine, "s", pairs);
        let (found, missing) =
            known.lookup(&engine, "s", &[StreamId::new(5, 0), StreamId::new(20, 0)]);
        assert_eq!(
            missing,
            vec![StreamId::new(5, 0)],
            "the smallest went first"
        );
        assert_eq!(found.get(&StreamId::new(20, 0)), Some(&20));
        let ids = known.ids_of(&engine, "s", &[20, 21, 3]);
        assert_eq!(ids.get(&20), Some(&StreamId::new(20, 0)));
        assert_eq!(ids.get(&21), Some(&StreamId::new(21, 0)));
        assert_eq!(ids.get(&3), None, "forgotten");
        // Made again, the stream's old offsets are not offered.
        engine.delete_stream("s").await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        engine.create_stream(spec()).await.unwrap();
        let (found, _) = known.lookup(&engine, "s", &[StreamId::new(20, 0)]);
        assert!(found.is_empty());
        engine.shutdown().await.unwrap();
    }
}
