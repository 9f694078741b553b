//! The state store: small, transactional, durable key-value tables (stream metadata,
//! committed consumer offsets, and later consumer and job state) in one `redb` file.
//!
//! Payloads never live here; they stay in the partition logs. Tables are addressed by a
//! static name and hold UTF-8 keys and opaque byte values: the layer above chooses its own
//! serialization, so this layer stays free of engine types. Every write is one redb
//! transaction committed with fsync before it returns.
//!
//! redb does its own file I/O, so the state store does not go through [`crate::io::Io`];
//! its crash safety is redb's (copy-on-write B-trees with a checksummed commit slot).

use std::path::Path;
use std::sync::Arc;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use tokio::sync::{mpsc, oneshot};

use crate::error::{Result, StorageError};

/// Memory redb may use to cache pages of the state store.
pub const STATE_CACHE_BYTES: usize = 64 * 1024 * 1024;
/// Most write requests waiting for the committer; `commit` waits for room beyond this.
const COMMIT_QUEUE_MAX: usize = 16 * 1024;
/// Most requests folded into one transaction, so one huge group cannot stall the rest.
const COMMIT_GROUP_MAX: usize = 4096;

type CommitRequest = (Vec<StateWrite>, oneshot::Sender<Result<()>>);

pub struct StateStore {
    db: Arc<Database>,
    committer: std::sync::Mutex<Option<Committer>>,
}

struct Committer {
    sender: mpsc::Sender<CommitRequest>,
    thread: std::thread::JoinHandle<()>,
}

impl Drop for StateStore {
    /// Stops the committer and waits for it, so the database file is unlocked when the store
    /// is gone (a restart in the same process can open it again at once).
    fn drop(&mut self) {
        let committer = self
            .committer
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(Committer { sender, thread }) = committer {
            drop(sender);
            let _ = thread.join();
        }
    }
}

/// One write in a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateWrite {
    Put {
        table: &'static str,
        key: String,
        value: Vec<u8>,
    },
    Delete {
        table: &'static str,
        key: String,
    },
    /// Deletes every key starting with `prefix`.
    DeletePrefix {
        table: &'static str,
        prefix: String,
    },
    /// Deletes every key in `[start, end)`.
    DeleteRange {
        table: &'static str,
        start: String,
        end: String,
    },
}

fn state_error(error: impl std::fmt::Display) -> StorageError {
    StorageError::State(error.to_string())
}

fn definition(table: &'static str) -> TableDefinition<'static, &'static str, &'static [u8]> {
    TableDefinition::new(table)
}

/// The smallest string greater than every string starting with `prefix`, for range scans.
fn prefix_end(prefix: &str) -> Option<String> {
    let mut bytes = prefix.as_bytes().to_vec();
    while let Some(last) = bytes.pop() {
        if last < 0xff {
            bytes.push(last + 1);
            return String::from_utf8(bytes).ok();
        }
    }
    None
}

impl StateStore {
    pub fn open(path: &Path) -> Result<StateStore> {
        // redb caches pages in memory, by default up to 1 GiB; bounded here so memory does not
        // grow with the number of stored keys (millions of delayed messages, job records).
        let db = Database::builder()
            .set_cache_size(STATE_CACHE_BYTES)
            .create(path)
            .map_err(state_error)?;
        Ok(StateStore {
            db: Arc::new(db),
            committer: std::sync::Mutex::new(None),
        })
    }

    /// Applies all writes in one transaction, durable on return.
    pub fn write(&self, writes: &[StateWrite]) -> Result<()> {
        apply(&self.db, writes)
    }

    /// Group-committed write: the writes of every caller waiting at the same time go into one
    /// transaction (one fsync), each caller's writes in the order given and callers in arrival
    /// order. Resolves once durable. For hot paths (acks, deliveries, offset commits) where
    /// one fsync per call would cap throughput at the disk's fsync rate.
    pub async fn commit(&self, writes: Vec<StateWrite>) -> Result<()> {
        let sender = self.committer_sender();
        let (done, wait) = oneshot::channel();
        sender
            .send((writes, done))
            .await
            .map_err(|_| StorageError::Closed)?;
        wait.await.map_err(|_| StorageError::Closed)?
    }

    fn committer_sender(&self) -> mpsc::Sender<CommitRequest> {
        let mut committer = self.committer.lock().unwrap_or_else(|p| p.into_inner());
        committer
            .get_or_insert_with(|| {
                let (sender, receiver) = mpsc::channel(COMMIT_QUEUE_MAX);
                let db = self.db.clone();
                let thread = std::thread::Builder::new()
                    .name("state-commit".into())
                    .spawn(move || run_committer(db, receiver))
                    .expect("spawning the state committer thread");
                Committer { sender, thread }
            })
            .sender
            .clone()
    }

    pub fn put(&self, table: &'static str, key: &str, value: &[u8]) -> Result<()> {
        self.write(&[StateWrite::Put {
            table,
            key: key.to_string(),
            value: value.to_vec(),
        }])
    }

    /// Values of several keys, read in one transaction.
    pub fn get_many(&self, table: &'static str, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>> {
        let transaction = self.db.begin_read().map_err(state_error)?;
        let table = match transaction.open_table(definition(table)) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(vec![None; keys.len()]),
            Err(error) => return Err(state_error(error)),
        };
        keys.iter()
            .map(|key| {
                Ok(table
                    .get(key.as_str())
                    .map_err(state_error)?
                    .map(|value| value.value().to_vec()))
            })
            .collect()
    }

    pub fn get(&self, table: &'static str, key: &str) -> Result<Option<Vec<u8>>> {
        let transaction = self.db.begin_read().map_err(state_error)?;
        let table = match transaction.open_table(definition(table)) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(error) => return Err(state_error(error)),
        };
        Ok(table
            .get(key)
            .map_err(state_error)?
            .map(|value| value.value().to_vec()))
    }

    /// Up to `limit` entries with keys in `[start, end)`, in key order.
    pub fn scan_range(
        &self,
        table: &'static str,
        start: &str,
        end: &str,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>> {
        let transaction = self.db.begin_read().map_err(state_error)?;
        let table = match transaction.open_table(definition(table)) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(error) => return Err(state_error(error)),
        };
        let mut entries = Vec::new();
        for entry in table.range(start..end).map_err(state_error)? {
            if entries.len() >= limit {
                break;
            }
            let (key, value) = entry.map_err(state_error)?;
            entries.push((key.value().to_string(), value.value().to_vec()));
        }
        Ok(entries)
    }

    /// Every entry whose key starts with `prefix`, in key order.
    pub fn scan_prefix(&self, table: &'static str, prefix: &str) -> Result<Vec<(String, Vec<u8>)>> {
        let transaction = self.db.begin_read().map_err(state_error)?;
        let table = match transaction.open_table(definition(table)) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(error) => return Err(state_error(error)),
        };
        let range = match prefix_end(prefix) {
            Some(end) => table.range(prefix..end.as_str()),
            None => table.range(prefix..),
        }
        .map_err(state_error)?;
        let mut entries = Vec::new();
        for entry in range {
            let (key, value) = entry.map_err(state_error)?;
            entries.push((key.value().to_string(), value.value().to_vec()));
        }
        Ok(entries)
    }
}

/// The committer thread: takes everything queued (up to a bound), applies it in one
/// transaction, answers every caller. Ends when every sender is gone.
fn run_committer(db: Arc<Database>, mut receiver: mpsc::Receiver<CommitRequest>) {
    while let Some(first) = receiver.blocking_recv() {
        let mut group = vec![first];
        while group.len() < COMMIT_GROUP_MAX {
            match receiver.try_recv() {
                Ok(request) => group.push(request),
                Err(_) => break,
            }
        }
        let writes: Vec<StateWrite> = group
            .iter_mut()
            .flat_map(|(writes, _)| std::mem::take(writes))
            .collect();
        let outcome = apply(&db, &writes);
        for (_, done) in group {
            let answer = match &outcome {
                Ok(()) => Ok(()),
                Err(error) => Err(StorageError::State(error.to_string())),
            };
            let _ = done.send(answer);
        }
    }
}

fn delete_keys(
    table: &mut redb::Table<'_, &'static str, &'static [u8]>,
    start: &str,
    end: Option<&str>,
) -> Result<()> {
    let keys: Vec<String> = {
        let range = match end {
            Some(end) => table.range(start..end),
            None => table.range(start..),
        }
        .map_err(state_error)?;
        let mut keys = Vec::new();
        for entry in range {
            let (key, _) = entry.map_err(state_error)?;
            keys.push(key.value().to_string());
        }
        keys
    };
    for key in keys {
        table.remove(key.as_str()).map_err(state_error)?;
    }
    Ok(())
}

fn apply(db: &Database, writes: &[StateWrite]) -> Result<()> {
    let transaction = db.begin_write().map_err(state_error)?;
    for write in writes {
        match write {
            StateWrite::Put { table, key, value } => {
                let mut table = transaction
                    .open_table(definition(table))
                    .map_err(state_error)?;
                table
                    .insert(key.as_str(), value.as_slice())
                    .map_err(state_error)?;
            }
            StateWrite::Delete { table, key } => {
                let mut table = transaction
                    .open_table(definition(table))
                    .map_err(state_error)?;
                table.remove(key.as_str()).map_err(state_error)?;
            }
            StateWrite::DeletePrefix { table, prefix } => {
                let mut table = transaction
                    .open_table(definition(table))
                    .map_err(state_error)?;
                let end = prefix_end(prefix);
                delete_keys(&mut table, prefix, end.as_deref())?;
            }
            StateWrite::DeleteRange { table, start, end } => {
                let mut table = transaction
                    .open_table(definition(table))
                    .map_err(state_error)?;
                delete_keys(&mut table, start, Some(end))?;
            }
        }
    }
    transaction.commit().map_err(state_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_survive_reopen_and_prefix_scans_are_exact() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.redb");
        {
            let store = StateStore::open(&path).unwrap();
            store.put("t", "a/1", b"one").unwrap();
            store.put("t", "a/2", b"two").unwrap();
            store.put("t", "b/1", b"three").unwrap();
            store.put("t", "a", b"exact").unwrap();
        }
        let store = StateStore::open(&path).unwrap();
        assert_eq!(store.get("t", "a/2").unwrap().as_deref(), Some(&b"two"[..]));
        assert_eq!(store.get("missing", "x").unwrap(), None);
        let keys: Vec<String> = store
            .scan_prefix("t", "a/")
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(keys, vec!["a/1", "a/2"]);
        store
            .write(&[StateWrite::DeletePrefix {
                table: "t",
                prefix: "a/".into(),
            }])
            .unwrap();
        assert!(store.scan_prefix("t", "a/").unwrap().is_empty());
        assert_eq!(store.get("t", "a").unwrap().as_deref(), Some(&b"exact"[..]));
        assert_eq!(store.scan_prefix("empty", "").unwrap(), vec![]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_group_commits_are_all_durable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.redb");
        {
            let store = Arc::new(StateStore::open(&path).unwrap());
            let mut tasks = Vec::new();
            for writer in 0..32 {
                let store = store.clone();
                tasks.push(tokio::spawn(async move {
                    for i in 0..50 {
                        store
                            .commit(vec![StateWrite::Put {
                                table: "t",
                                key: format!("{writer:02}/{i:03}"),
                                value: vec![writer as u8],
                            }])
                            .await
                            .unwrap();
                    }
                }));
            }
            for task in tasks {
                task.await.unwrap();
            }
        }
        // The committer thread lets go of the database once the store is dropped.
        let mut reopened = None;
        for _ in 0..100 {
            match StateStore::open(&path) {
                Ok(store) => {
                    reopened = Some(store);
                    break;
                }
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(10)),
            }
        }
        let store = reopened.expect("reopen");
        assert_eq!(store.scan_prefix("t", "").unwrap().len(), 32 * 50);
    }
}
