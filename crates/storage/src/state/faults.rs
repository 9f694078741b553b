//! A state store whose file fails writes or fsyncs on demand, for tests above the storage
//! layer: redb does its own file I/O (not through [`crate::io::Io`]), so faults reach it
//! through a `redb::StorageBackend` that wraps redb's own `FileBackend` and asks the same
//! [`FaultPlan`] the partition logs use before each data write and each fsync.
//!
//! After a failed write or fsync redb refuses every later write transaction ("Previous I/O
//! error occurred"); the store must be dropped and opened again, as after a real disk error.
//!
//! A hold ([`FaultPlan::hold_syncs`]) stalls the fsyncs that make writes durable — the
//! journal's and a checkpoint's — but lets through the one redb takes right after extending
//! its file. redb makes a longer file durable before any header can name it, and it does so
//! holding the lock every read transaction starts under (`TransactionalMemory::grow`), so on
//! a disk that stalls, a read that meets a growth waits for that one fsync. That is real and
//! documented (docs/storage.md, *Reads and the disk*): redb grows by doubling up to 4 GiB,
//! then by 4 GiB regions, so it happens a few dozen times in a store's life. Holding it here
//! made the tests that prove reads never wait for a *commit* hang whenever a held commit
//! happened to grow the file. Growth fsyncs still count toward [`FaultPlan::fail_sync`].

use std::fs::OpenOptions;
use std::ops::Bound;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
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
            grown: AtomicBool::new(false),
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
    /// The file was just made longer: the next fsync is redb's growth fsync.
    grown: AtomicBool,
}

impl StorageBackend for FaultyBackend {
    fn len(&self) -> std::io::Result<u64> {
        self.inner.len()
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> std::io::Result<()> {
        self.inner.read(offset, out)
    }

    fn set_len(&self, len: u64) -> std::io::Result<()> {
        let longer = len > self.inner.len()?;
        self.inner.set_len(len)?;
        if longer {
            self.grown.store(true, Ordering::SeqCst);
        }
        Ok(())
    }

    fn sync_data(&self) -> std::io::Result<()> {
        if self.grown.swap(false, Ordering::SeqCst) {
            self.plan.check_sync_unheld()?;
        } else {
            self.plan.check_sync(&self.path)?;
        }
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

    /// A commit that makes redb extend its file, held at its fsync: a read of what was
    /// committed before answers meanwhile. (redb fsyncs a grown file under the lock a read
    /// transaction starts under; were that fsync held too, the read would wait.)
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_read_does_not_wait_for_a_held_commit_that_grows_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.redb");
        let plan = FaultPlan::new();
        let store = Arc::new(StateStore::open_with_faults(&path, plan.clone()).unwrap());
        store.commit(vec![put("before")]).await.unwrap();
        let size_before = std::fs::metadata(&path).unwrap().len();

        let held = plan.hold_syncs_while_held();
        let committing = tokio::spawn({
            let store = store.clone();
            async move {
                let large = StateWrite::Put {
                    table: "t",
                    key: "large".into(),
                    value: vec![7; 4 * 1024 * 1024],
                };
                store.commit(vec![large]).await
            }
        });
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::fs::metadata(&path).unwrap().len() <= size_before {
            assert!(std::time::Instant::now() < deadline, "the file never grew");
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        let read = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            tokio::task::spawn_blocking({
                let store = store.clone();
                move || store.get("t", "before")
            }),
        )
        .await
        .expect("the read waited for the held commit")
        .unwrap()
        .unwrap();
        assert_eq!(read, Some(b"v".to_vec()));
        assert!(!committing.is_finished(), "the commit waits for its fsync");
        drop(held);
        committing.await.unwrap().unwrap();
        assert_eq!(
            store.get("t", "large").unwrap().map(|v| v.len()),
            Some(4 << 20)
        );
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
