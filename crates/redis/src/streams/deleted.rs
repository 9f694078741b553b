//! Entries removed by XDEL. An Omnibus log deletes only from the front, so XDEL keeps the
//! offsets it removed as a door setting of the stream (`redis.deleted`, kept with the stream
//! and deleted with it) and every read skips them; trimming past them forgets them. The
//! largest ID XDEL removed is kept beside it (`redis.max-deleted-id`) for XINFO.
//!
//! The sets are cached in memory per stream, with the stream's creation time, so a stream
//! deleted and made again through another door does not inherit the old set.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use omnibus_engine::{Engine, EngineError};

use super::created_ms;
use super::id::StreamId;

pub(crate) const DELETED_SETTING: &str = "redis.deleted";
pub(crate) const MAX_DELETED_SETTING: &str = "redis.max-deleted-id";
/// Deleted entries one stream may hold (beyond its start) before XDEL is refused; trimming
/// the stream past them frees room. Bounded by the size of one door setting.
pub(crate) const DELETED_MAX: usize = 4_000;

pub(crate) type Deleted = Arc<BTreeSet<u64>>;

#[derive(Default)]
pub(crate) struct DeletedEntries {
    cache: Mutex<HashMap<String, (i64, Deleted)>>,
}

fn parse(text: &str) -> BTreeSet<u64> {
    text.split_ascii_whitespace()
        .filter_map(|offset| offset.parse().ok())
        .collect()
}

impl DeletedEntries {
    /// The deleted offsets of `stream` (empty when it has none or does not exist).
    pub(crate) fn of(&self, engine: &Engine, stream: &str) -> Deleted {
        let Some(created) = created_ms(engine, stream) else {
            return Deleted::default();
        };
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((when, set)) = cache.get(stream) {
            if *when == created {
                return set.clone();
            }
        }
        let set: Deleted = Arc::new(
            engine
                .stream_door_settings(stream)
                .ok()
                .and_then(|settings| settings.get(DELETED_SETTING).map(|text| parse(text)))
                .unwrap_or_default(),
        );
        cache.insert(stream.to_string(), (created, set.clone()));
        set
    }

    /// Stores `set` (and the largest deleted ID) durably, then caches it.
    pub(crate) async fn store(
        &self,
        engine: &Engine,
        stream: &str,
        set: BTreeSet<u64>,
        max_deleted: Option<StreamId>,
    ) -> Result<(), EngineError> {
        let mut settings: BTreeMap<String, String> = engine.stream_door_settings(stream)?;
        let text: Vec<String> = set.iter().map(u64::to_string).collect();
        settings.insert(DELETED_SETTING.to_string(), text.join(" "));
        if let Some(id) = max_deleted {
            settings.insert(MAX_DELETED_SETTING.to_string(), id.to_string());
        }
        engine.set_stream_door_settings(stream, settings).await?;
        if let Some(created) = created_ms(engine, stream) {
            self.cache
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(stream.to_string(), (created, Arc::new(set)));
        }
        Ok(())
    }
}

/// The largest ID XDEL removed from `stream` (0-0 if none).
pub(crate) fn max_deleted(engine: &Engine, stream: &str) -> StreamId {
    engine
        .stream_door_settings(stream)
        .ok()
        .and_then(|settings| {
            settings
                .get(MAX_DELETED_SETTING)
                .and_then(|text| StreamId::parse(text.as_bytes(), 0))
        })
        .unwrap_or(StreamId::MIN)
}
