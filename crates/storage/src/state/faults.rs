//! A state store whose file fails writes or fsyncs on demand, for tests above the storage
//! layer: redb does its own file I/O (not through [`crate::io::Io`]), so faults reach it
//! through a `redb::StorageBackend` that wraps redb's own `FileBackend` and asks the same
//! [`FaultPlan`] the partition logs use before each data write and each fsync.
//!
//! After a failed write or fsync redb refuses every later write transaction ("Previous I/O
//! error occurred"); the store must be dropped and opened again, as after a real disk error.

use std::fs::OpenOptions;
use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;

use redb::backends::FileBackend;
use redb::{BackendError, Database, StorageBackend};

use super::{state_error, StateStore, STATE_CACHE_BYTES};
use crate::error::{Result, StorageError};
use crate::io::FaultPlan;

impl StateStore {
    /// Opens the store at `path` (created if missing) on a backend that fails writes and
    /// fsyncs as `plan` says ([`FaultPlan::fail_write`], [`FaultPlan::fail_sync`],
    /// [`FaultPlan::hold_syncs`]). For tests: the file is the same one [`StateStore::open`]
    /// reads, so a test can reopen it without faults and see what was durable.
    pub fn open_with_faults(path: &Path, plan: Arc<FaultPlan>) -> Result<StateStore> {
        Self::open_with(
            path,
            Box::new({
                let plan = plan.clone();
                move |path: &Path| open_faulty(path, plan.clone())
            }),
            Some(plan),
        )
    }
}

fn open_faulty(path: &Path, plan: Arc<FaultPlan>) -> Result<Database> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|error| {
            StorageError::io(format!("opening state store {}", path.display()), error)
        })?;
    let inner = FileBackend::new(file).map_err(state_error)?;
    Database::builder()
        .set_cache_size(STATE_CACHE_BYTES)
        .create_with_backend(FaultyBackend {
            inner,
            plan,
            path: path.to_path_buf(),
        })
        .map_err(state_error)
}

/// redb's file backend with injected faults; locks and reads pass straight through.
#[derive(Debug)]
struct FaultyBackend {
    inner: FileBackend,
    plan: Arc<FaultPlan>,
    /// The database file, so a hold of one directory's fsyncs can include it or not.
    path: std::path::PathBuf,
}

impl StorageBackend for FaultyBackend {
    fn len(&self) -> std::io::Result<u64> {
        self.inner.len()
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> std::io::Result<()> {
        self.inner.read(offset, out)
    }

    fn set_len(&self, len: u64) -> std::io::Result<()> {
        self.inner.set_len(len)
    }

    fn sync_data(&self) -> std::io::Result<()> {
        self.plan.check_sync(&self.path)?;
        self.inner.sync_data()
    }

    fn write(&self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        self.plan.check_write()?;
        self.inner.write(offset, data)
    }

    fn close(&self) -> std::io::Result<()> {
        self.inner.close()
    }

    fn try_lock_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> std::result::Result<bool, BackendError> {
        self.inner.try_lock_range(start, end)
    }

    fn try_lock_shared_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> std::result::Result<bool, BackendError> {
        self.inner.try_lock_shared_range(start, end)
    }

    fn lock_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> std::result::Result<(), BackendError> {
        self.inner.lock_range(start, end)
    }

    fn lock_shared_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> std::result::Result<(), BackendError> {
        self.inner.lock_shared_range(start, end)
    }

    fn unlock_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> std::result::Result<(), BackendError> {
        self.inner.unlock_range(start, end)
    }

    fn query_lock_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> std::result::Result<bool, BackendError> {
        self.inner.query_lock_range(start, end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StateWrite;

    fn put(key: &str) -> StateWrite {
        StateWrite::Put {
            table: "t",
            key: key.to_string(),
            value: b"v".to_vec(),
        }
    }

    /// Opens the file again without faults, once the faulty store has let go of it.
    fn reopen(path: &Path) -> StateStore {
        StateStore::open(path).expect("the store reopens without faults")
    }

    #[tokio::test]
    async fn a_failed_fsync_fails_the_commit_and_the_store_reopens_on_the_same_backend() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.redb");
        let plan = FaultPlan::new();
        {
            let store = StateStore::open_with_faults(&path, plan.clone()).unwrap();
            store.commit(vec![put("before")]).await.unwrap();
            plan.fail_sync(1);
            let failed = store.commit(vec![put("lost")]).await;
            assert!(failed.is_err(), "the commit whose fsync failed fails");
            plan.clear();
            // The store reopens the database (on the faulty backend again) before its next
            // use, so later commits go through it and still see the plan.
            store.commit(vec![put("after")]).await.unwrap();
            plan.fail_write(1);
            assert!(store.commit(vec![put("refused")]).await.is_err());
        }
        // Whether "lost" reached the disk is unknown after a failed fsync (its bytes were
        // written); what came before and after it is durable and what was refused is not.
        let store = reopen(&path);
        assert!(store.get("t", "before").unwrap().is_some());
        assert!(store.get("t", "after").unwrap().is_some());
        assert_eq!(store.get("t", "refused").unwrap(), None);
    }

    #[tokio::test]
    async fn a_failed_write_fails_the_commit_and_nothing_of_it_is_durable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.redb");
        let plan = FaultPlan::new();
        {
            let store = StateStore::open_with_faults(&path, plan.clone()).unwrap();
            store.write(&[put("before")]).unwrap();
            plan.fail_write(1);
            assert!(store.write(&[put("lost")]).is_err());
        }
        let store = reopen(&path);
        assert!(store.get("t", "before").unwrap().is_some());
        assert_eq!(store.get("t", "lost").unwrap(), None);
    }

    #[test]
    fn without_faults_it_is_an_ordinary_store() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.redb");
        {
            let store = StateStore::open_with_faults(&path, FaultPlan::new()).unwrap();
            store.put("t", "k", b"v").unwrap();
            assert!(
                StateStore::open(&path).is_err(),
                "the file stays locked while the store is open"
            );
        }
        assert_eq!(reopen(&path).get("t", "k").unwrap(), Some(b"v".to_vec()));
    }
}
