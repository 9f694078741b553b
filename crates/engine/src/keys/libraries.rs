//! Script libraries: named bodies of code a door keeps for its clients, durable like keys
//! (the Redis door's FUNCTION LOAD keeps Lua libraries here). The engine stores them and
//! knows nothing of their language: a row per library in the state store's
//! `script_libraries` table (hex of the name → the code), written through the keyspace's
//! writer, so a library is fsynced before the change is acknowledged and a start reads every
//! one back. They are not keys: SCAN, KEYS and FLUSHALL do not see them.

use std::collections::BTreeMap;

use bytes::Bytes;
use omnibus_storage::{StateStore, StateWrite};

use super::stored::{decode_key, encode_key};
use super::{Durable, Keyspace};
use crate::error::{EngineError, Result};

/// The state-store table of script libraries.
pub const LIBRARIES_TABLE: &str = "script_libraries";

/// Every library the store holds, by name.
pub(super) fn load(state: &StateStore) -> Result<BTreeMap<Bytes, Bytes>> {
    let mut libraries = BTreeMap::new();
    for (stored_key, code) in state.scan_prefix(LIBRARIES_TABLE, "")? {
        let name = decode_key(&stored_key).ok_or_else(|| {
            EngineError::Storage(omnibus_storage::StorageError::Corrupt(format!(
                "script library row {stored_key:?} has no valid name"
            )))
        })?;
        libraries.insert(name, Bytes::from(code));
    }
    Ok(libraries)
}

impl Keyspace {
    /// Every library, by name.
    pub fn libraries(&self) -> Vec<(Bytes, Bytes)> {
        let libraries = self.libraries.lock().unwrap_or_else(|p| p.into_inner());
        libraries
            .iter()
            .map(|(n, c)| (n.clone(), c.clone()))
            .collect()
    }

    /// Keeps `code` as library `name`, in place of any library of that name.
    pub fn library_put(&self, name: Bytes, code: Bytes) -> Durable<()> {
        let mut libraries = self.libraries.lock().unwrap_or_else(|p| p.into_inner());
        let write = StateWrite::Put {
            table: LIBRARIES_TABLE,
            key: encode_key(&name),
            value: code.to_vec(),
        };
        libraries.insert(name, code);
        Durable::new((), self.writer.queue(vec![write]))
    }

    /// Deletes library `name`; whether there was one.
    pub fn library_delete(&self, name: &[u8]) -> Durable<bool> {
        let mut libraries = self.libraries.lock().unwrap_or_else(|p| p.into_inner());
        if libraries.remove(name).is_none() {
            return Durable::ready(false);
        }
        let write = StateWrite::Delete {
            table: LIBRARIES_TABLE,
            key: encode_key(name),
        };
        Durable::new(true, self.writer.queue(vec![write]))
    }

    /// Deletes every library; how many there were.
    pub fn libraries_clear(&self) -> Durable<usize> {
        let mut libraries = self.libraries.lock().unwrap_or_else(|p| p.into_inner());
        let writes: Vec<StateWrite> = libraries
            .keys()
            .map(|name| StateWrite::Delete {
                table: LIBRARIES_TABLE,
                key: encode_key(name),
            })
            .collect();
        let count = libraries.len();
        libraries.clear();
        if count == 0 {
            return Durable::ready(0);
        }
        Durable::new(count, self.writer.queue(writes))
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use crate::keys::tests::reopen;

    #[tokio::test]
    async fn libraries_are_kept_replaced_deleted_and_read_back_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (_state, keys) = reopen(dir.path()).await;
            let put = |name: &str, code: &str| {
                keys.library_put(Bytes::from(name.to_string()), Bytes::from(code.to_string()))
            };
            put("mylib", "v1").wait().await.unwrap();
            put("other", "o").wait().await.unwrap();
            put("mylib", "v2").wait().await.unwrap();
            put("gone", "g").wait().await.unwrap();
            assert!(keys.library_delete(b"gone").wait().await.unwrap());
            assert!(!keys.library_delete(b"never").wait().await.unwrap());
            assert_eq!(keys.len(), 0, "libraries are not keys");
        }
        {
            let (_state, keys) = reopen(dir.path()).await;
            assert_eq!(
                keys.libraries(),
                vec![
                    (Bytes::from("mylib"), Bytes::from("v2")),
                    (Bytes::from("other"), Bytes::from("o")),
                ]
            );
            assert_eq!(keys.libraries_clear().wait().await.unwrap(), 2);
        }
        let (_state, keys) = reopen(dir.path()).await;
        assert!(keys.libraries().is_empty());
    }
}
