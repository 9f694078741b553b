//! Settings a front door keeps beside a stream: names and values the engine stores with the
//! stream and deletes with it, but never reads (JetStream's retention policy and the parts of
//! its stream config Omnibus has no field for). A door that needs more than the engine's
//! stream model keeps it here instead of in a store of its own.

use std::collections::BTreeMap;

use omnibus_storage::StateWrite;

use crate::engine::Engine;
use crate::error::Result;

/// Where door settings are stored, under `<stream>␟<name>`.
pub const STREAM_DOOR_SETTINGS_TABLE: &str = "stream_door_settings";
/// Settings one stream may hold, and the bytes of one value.
pub const DOOR_SETTINGS_MAX: usize = 64;
pub const DOOR_SETTING_BYTES_MAX: usize = 64 * 1024;

fn prefix(stream: &str) -> String {
    format!("{stream}\u{1f}")
}

/// The writes that remove every door setting of `stream` (with the stream).
pub(crate) fn delete_writes(stream: &str) -> StateWrite {
    StateWrite::DeletePrefix {
        table: STREAM_DOOR_SETTINGS_TABLE,
        prefix: prefix(stream),
    }
}

impl Engine {
    /// Replaces the door settings of `stream`, durably.
    pub async fn set_stream_door_settings(
        &self,
        stream: &str,
        settings: BTreeMap<String, String>,
    ) -> Result<()> {
        self.check_running()?;
        self.stream(stream)?;
        if settings.len() > DOOR_SETTINGS_MAX
            || settings
                .iter()
                .any(|(name, value)| name.len() + value.len() > DOOR_SETTING_BYTES_MAX)
        {
            return Err(crate::EngineError::LimitExceeded(format!(
                "a stream holds at most {DOOR_SETTINGS_MAX} door settings of {DOOR_SETTING_BYTES_MAX} bytes"
            )));
        }
        let mut writes = vec![delete_writes(stream)];
        for (name, value) in settings {
            writes.push(StateWrite::Put {
                table: STREAM_DOOR_SETTINGS_TABLE,
                key: format!("{}{name}", prefix(stream)),
                value: value.into_bytes(),
            });
        }
        self.state.commit(writes).await?;
        Ok(())
    }

    /// The door settings of `stream` (empty when none were set).
    pub fn stream_door_settings(&self, stream: &str) -> Result<BTreeMap<String, String>> {
        let prefix = prefix(stream);
        Ok(self
            .state
            .scan_prefix(STREAM_DOOR_SETTINGS_TABLE, &prefix)?
            .into_iter()
            .filter_map(|(key, value)| {
                let name = key.strip_prefix(&prefix)?.to_string();
                Some((name, String::from_utf8_lossy(&value).into_owned()))
            })
            .collect())
    }
}
