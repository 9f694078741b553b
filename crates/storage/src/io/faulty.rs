//! A backend that wraps another and fails chosen operations, to prove the log refuses writes
//! after an I/O error instead of guessing what reached the disk. It can also hold every
//! file fsync until released: a disk that stalls, for timeouts above the log.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use super::{Io, IoFile};

/// Which file fsyncs are held.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
enum Hold {
    #[default]
    None,
    All,
    /// Only files under this directory: one stream's disk stalls, the others' do not.
    Under(PathBuf),
}

impl Hold {
    fn holds(&self, path: &Path) -> bool {
        match self {
            Hold::None => false,
            Hold::All => true,
            Hold::Under(dir) => path.starts_with(dir),
        }
    }
}

/// Every fsync held until this is dropped ([`FaultPlan::hold_syncs_while_held`]).
#[must_use = "the fsyncs are released when this is dropped"]
pub struct SyncsHeld<'a>(&'a FaultPlan);

impl Drop for SyncsHeld<'_> {
    fn drop(&mut self) {
        self.0.hold_syncs(false);
    }
}

/// Which operations fail. Counters count down on each matching call; the call that takes a
/// counter from 1 to 0 fails, and so does every later one when `sticky` is set.
#[derive(Debug, Default)]
pub struct FaultPlan {
    writes_until_failure: AtomicI64,
    syncs_until_failure: AtomicI64,
    disk_full: AtomicBool,
    sticky: AtomicBool,
    tripped: AtomicBool,
    /// Which file fsyncs wait (on their blocking thread) until released.
    syncs_held: Mutex<Hold>,
    syncs_released: Condvar,
}

impl FaultPlan {
    pub fn new() -> Arc<Self> {
        Arc::new(FaultPlan::default())
    }

    /// The `n`th data write from now fails (1 = the next one).
    pub fn fail_write(&self, n: i64) {
        self.writes_until_failure.store(n, Ordering::SeqCst);
    }

    /// The `n`th fsync from now fails (1 = the next one).
    pub fn fail_sync(&self, n: i64) {
        self.syncs_until_failure.store(n, Ordering::SeqCst);
    }

    /// Failed writes report ENOSPC instead of EIO.
    pub fn as_disk_full(&self, yes: bool) {
        self.disk_full.store(yes, Ordering::SeqCst);
    }

    /// Once tripped, keep failing every write and sync.
    pub fn sticky(&self, yes: bool) {
        self.sticky.store(yes, Ordering::SeqCst);
    }

    /// Holds every fsync (of files and of directories) from now until `hold_syncs(false)`;
    /// the writes before them proceed. A held fsync neither fails nor completes, like a
    /// stalled disk.
    pub fn hold_syncs(&self, hold: bool) {
        self.set_hold(if hold { Hold::All } else { Hold::None });
    }

    /// As `hold_syncs(true)` until the guard is dropped. A test that fails while the disk is
    /// held then releases it and fails, instead of hanging: a held fsync keeps its thread, and
    /// a runtime shutting down waits for its blocking threads.
    pub fn hold_syncs_while_held(&self) -> SyncsHeld<'_> {
        self.hold_syncs(true);
        SyncsHeld(self)
    }

    /// As [`FaultPlan::hold_syncs`], for the files under `dir` only (until
    /// `hold_syncs(false)`): a disk that stalls for one stream while the others' go on.
    pub fn hold_syncs_under(&self, dir: &Path) {
        self.set_hold(Hold::Under(dir.to_path_buf()));
    }

    fn set_hold(&self, hold: Hold) {
        let mut held = self.syncs_held.lock().unwrap_or_else(|p| p.into_inner());
        *held = hold;
        self.syncs_released.notify_all();
    }

    fn wait_while_syncs_held(&self, path: &Path) {
        let held = self.syncs_held.lock().unwrap_or_else(|p| p.into_inner());
        let _released = self
            .syncs_released
            .wait_while(held, |held| held.holds(path))
            .unwrap_or_else(|p| p.into_inner());
    }

    /// A sticky disk-full fault that has tripped: the disk is full until `clear`, and free
    /// space is reported as none (so the engine's health sees what a real full disk shows).
    pub fn reports_full(&self) -> bool {
        self.disk_full.load(Ordering::SeqCst)
            && self.sticky.load(Ordering::SeqCst)
            && self.tripped.load(Ordering::SeqCst)
    }

    pub fn clear(&self) {
        self.writes_until_failure.store(0, Ordering::SeqCst);
        self.syncs_until_failure.store(0, Ordering::SeqCst);
        self.tripped.store(false, Ordering::SeqCst);
    }

    /// Counts a data write of another backend of this crate (the state store's), failing it
    /// as a file write would fail.
    pub(crate) fn check_write(&self) -> io::Result<()> {
        self.check(&self.writes_until_failure)
    }

    /// Counts an fsync of another backend of this crate (the state store's): held while
    /// syncs are held, failed as a file fsync would fail.
    pub(crate) fn check_sync(&self, path: &Path) -> io::Result<()> {
        self.wait_while_syncs_held(path);
        self.check(&self.syncs_until_failure)
    }

    /// Counts an fsync that is failed as any other but never held (the state store's fsync
    /// of a file redb has just extended: `state/faults.rs` says why).
    pub(crate) fn check_sync_unheld(&self) -> io::Result<()> {
        self.check(&self.syncs_until_failure)
    }

    fn check(&self, counter: &AtomicI64) -> io::Result<()> {
        if self.sticky.load(Ordering::SeqCst) && self.tripped.load(Ordering::SeqCst) {
            return Err(self.error());
        }
        let before = counter
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n > 0).then(|| n - 1)
            })
            .unwrap_or(0);
        if before == 1 {
            self.tripped.store(true, Ordering::SeqCst);
            return Err(self.error());
        }
        Ok(())
    }

    fn error(&self) -> io::Error {
        if self.disk_full.load(Ordering::SeqCst) {
            io::Error::from_raw_os_error(libc::ENOSPC)
        } else {
            io::Error::other("injected I/O failure")
        }
    }
}

pub struct FaultyIo {
    inner: Arc<dyn Io>,
    plan: Arc<FaultPlan>,
}

impl FaultyIo {
    pub fn new(inner: Arc<dyn Io>, plan: Arc<FaultPlan>) -> Self {
        FaultyIo { inner, plan }
    }
}

impl Io for FaultyIo {
    fn create_dir(&self, path: &Path) -> io::Result<()> {
        self.inner.create_dir(path)
    }
    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        self.inner.list_dir(path)
    }
    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn IoFile>> {
        let inner = self.inner.open(path, create)?;
        Ok(Arc::new(FaultyFile {
            inner,
            plan: self.plan.clone(),
            path: path.to_path_buf(),
        }))
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.inner.remove_file(path)
    }
    fn remove_tree(&self, path: &Path) -> io::Result<()> {
        self.inner.remove_tree(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.inner.rename(from, to)
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        self.plan.wait_while_syncs_held(path);
        self.plan.check(&self.plan.syncs_until_failure)?;
        self.inner.sync_dir(path)
    }
    fn exists(&self, path: &Path) -> bool {
        self.inner.exists(path)
    }
    fn available_bytes(&self, path: &Path) -> io::Result<u64> {
        if self.plan.reports_full() {
            return Ok(0);
        }
        self.inner.available_bytes(path)
    }
}

struct FaultyFile {
    inner: Arc<dyn IoFile>,
    plan: Arc<FaultPlan>,
    path: PathBuf,
}

impl IoFile for FaultyFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.inner.read_at(buf, offset)
    }
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.plan.check(&self.plan.writes_until_failure)?;
        self.inner.write_at(buf, offset)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.plan.wait_while_syncs_held(&self.path);
        self.plan.check(&self.plan.syncs_until_failure)?;
        self.inner.sync_data()
    }
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }
}
