//! What a JetStream stream config holds that the Omnibus stream has no field for, kept beside
//! the stream as engine door settings (`Engine::set_stream_door_settings`, deleted with the
//! stream): the retention policy (`limits`, `workqueue` or `interest`), the duplicate window, and
//! `max_msgs` (kept by removing the oldest records after a JetStream publish, `discard:old`).

use std::collections::BTreeMap;

use omnibus_engine::Engine;

use super::errors::ApiError;

const RETENTION_SETTING: &str = "nats.retention";
const WINDOW_SETTING: &str = "nats.duplicate_window_ms";
const MAX_MESSAGES_SETTING: &str = "nats.max_msgs";

/// The Go zero-value duplicate window nats-server fills in: two minutes.
pub(crate) const DUPLICATE_WINDOW_MS: u64 = 120_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StreamExtras {
    /// `limits`, `workqueue` or `interest`.
    pub(crate) retention: String,
    pub(crate) duplicate_window_ms: u64,
    /// Most records the stream keeps; `None`: no bound.
    pub(crate) max_messages: Option<u64>,
}

impl Default for StreamExtras {
    fn default() -> Self {
        StreamExtras {
            retention: "limits".to_string(),
            duplicate_window_ms: DUPLICATE_WINDOW_MS,
            max_messages: None,
        }
    }
}

impl StreamExtras {
    /// A stream's extras; the defaults for a stream created by another door.
    pub(crate) fn of(engine: &Engine, stream: &str) -> StreamExtras {
        let settings = engine.stream_door_settings(stream).unwrap_or_default();
        let defaults = StreamExtras::default();
        StreamExtras {
            retention: settings
                .get(RETENTION_SETTING)
                .cloned()
                .unwrap_or(defaults.retention),
            duplicate_window_ms: settings
                .get(WINDOW_SETTING)
                .and_then(|v| v.parse().ok())
                .unwrap_or(defaults.duplicate_window_ms),
            max_messages: settings
                .get(MAX_MESSAGES_SETTING)
                .and_then(|v| v.parse().ok()),
        }
    }

    pub(crate) fn is_work_queue(&self) -> bool {
        self.retention == "workqueue"
    }

    /// Stores them, durably.
    pub(crate) async fn store(&self, engine: &Engine, stream: &str) -> Result<(), ApiError> {
        let mut settings = BTreeMap::from([
            (RETENTION_SETTING.to_string(), self.retention.clone()),
            (
                WINDOW_SETTING.to_string(),
                self.duplicate_window_ms.to_string(),
            ),
        ]);
        if let Some(max) = self.max_messages {
            settings.insert(MAX_MESSAGES_SETTING.to_string(), max.to_string());
        }
        engine
            .set_stream_door_settings(stream, settings)
            .await
            .map_err(|e| ApiError::from_engine(&e))
    }
}

/// Removes the oldest records of partition 0 beyond `max_messages` (discard old).
pub(crate) async fn trim(engine: &Engine, stream: &str, max_messages: u64) {
    let Ok((start, end)) = engine.partition_bounds(stream, 0) else {
        return;
    };
    if end.saturating_sub(start) <= max_messages {
        return;
    }
    if let Err(error) = engine
        .delete_records(stream, 0, Some(end - max_messages))
        .await
    {
        tracing::warn!(stream, "trimming a stream to its max_msgs failed: {error}");
    }
}
