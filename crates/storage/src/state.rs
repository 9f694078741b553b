//! The state store: small, transactional, durable key-value tables (stream metadata,
//! committed consumer offsets, and later consumer and job state) in one `redb` file.
//!
//! Payloads never live here; they stay in the partition logs. Tables are addressed by a
//! static name and hold UTF-8 keys and opaque byte values: the layer above chooses its own
//! serialization, so this layer stays free of engine types. Every write is durable before it
//! returns: written to the store's journal and fsynced, then applied to redb without an
//! fsync of its own; a durable redb commit twice a second lets the journal start again
//! (`state/journal.rs` says why and how, byte by byte).
//!
//! redb does its own file I/O, so the state store does not go through [`crate::io::Io`];
//! its crash safety is redb's (copy-on-write B-trees with a checksummed commit slot) up to
//! its last durable commit, and the journal's after it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use redb::{Database, Durability, ReadableTable, TableDefinition};
use tokio::sync::{mpsc, oneshot};

use crate::disk::DiskReserve;
use crate::error::{Result, StorageError};
use crate::io::FaultPlan;

/// Checkpoints (durable redb commits that let the journal start again) and recovery.
mod checkpoint;
/// Transactions: the committer thread that groups callers' writes, and how writes become
/// redb table updates.
mod commit;
/// `StateStore::open_with_faults`: a store whose file fails on demand, for tests.
mod faults;
/// The append-only journal that makes a state commit one small fsync.
mod journal;
/// Point lookups and scans.
mod read;
/// Tables read back only at open, whose writes reach redb at the next checkpoint.
mod write_behind;

#[cfg(test)]
use commit::without_overwritten;
use commit::{run_committer, stage};
pub(crate) use journal::check_decoding as check_journal_decoding;
use journal::Journal;

/// Memory redb may use to cache pages of the state store.
pub const STATE_CACHE_BYTES: usize = 64 * 1024 * 1024;
/// Most write requests waiting for the committer; `commit` waits for room beyond this.
const COMMIT_QUEUE_MAX: usize = 16 * 1024;
/// Most requests folded into one transaction, so one huge group cannot stall the rest.
const COMMIT_GROUP_MAX: usize = 4096;

type CommitRequest = (Vec<StateWrite>, oneshot::Sender<Result<()>>);

/// Writes queued by [`StateStore::submit`], not yet known to be durable.
#[must_use = "submitted writes are not known to be durable until `durable` resolves"]
pub struct Submitted {
    wait: oneshot::Receiver<Result<()>>,
}

impl Submitted {
    /// Resolves once the writes are durable (or their transaction failed).
    pub async fn durable(self) -> Result<()> {
        self.wait.await.map_err(|_| StorageError::Closed)?
    }
}

pub struct StateStore {
    shared: Arc<Shared>,
    committer: Mutex<Option<Committer>>,
}

/// What the store's callers and its committer thread share.
///
/// After a failed commit redb refuses every further transaction ("Previous I/O error
/// occurred") until the database is closed and opened again. So the database sits behind a
/// lock: every read and write holds it shared for the length of its transaction, and the
/// first operation after a failure takes it exclusively, drops the failed database (no
/// transaction of it is left) and opens the file again. redb's recovery then finds the last
/// commit that reached the disk; a failed commit never answered its callers with success.
struct Shared {
    path: PathBuf,
    /// How the database is opened (and reopened): plainly, or on a fault-injecting backend.
    opener: Opener,
    /// `None` only when a reopen failed; the next operation tries again.
    db: RwLock<Option<Database>>,
    /// Taken by every write for its whole length (so records and redb commits keep one
    /// order) and by a reopen, which replays it: always before `db`.
    journal: Mutex<Journal>,
    /// Set when an I/O error means the database must be reopened before its next use.
    failed: AtomicBool,
    /// Set by [`StateStore::close`]: every later operation is refused, nothing reopens.
    closed: AtomicBool,
    /// Why, for health reports: the error that failed the database (or its reopen).
    failure: Mutex<Option<String>>,
    /// Released on the first ENOSPC so a metadata delete can get the pages it needs.
    reserve: Mutex<Option<Arc<DiskReserve>>>,
    counters: Counters,
    write_behind: write_behind::WriteBehind,
    /// The checkpoint of a sealed journal side, running on a thread of its own
    /// ([`Shared::checkpoint_if_due`]); taken and joined under the journal's lock.
    checkpointing: Mutex<Option<std::thread::JoinHandle<CheckpointOutcome>>>,
}

/// How a sealed side's checkpoint ended: on failure, with the write-behind writes it took,
/// which go back to be kept for the next one.
type CheckpointOutcome = std::result::Result<(), (StorageError, Vec<StateWrite>)>;

/// What the store has committed since it was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StateStats {
    /// Transactions committed (each one journal record and its fsync).
    pub commits: u64,
    /// Writes applied in them, after dropping writes that a later one in the same
    /// transaction replaced.
    pub writes: u64,
}

#[derive(Default)]
struct Counters {
    commits: AtomicU64,
    writes: AtomicU64,
}

impl Counters {
    fn count(&self, writes: usize) {
        self.commits.fetch_add(1, Ordering::Relaxed);
        self.writes.fetch_add(writes as u64, Ordering::Relaxed);
    }
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
        self.shared.checkpoint_at_close();
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
    /// Puts `value` unless the key already holds a value that sorts at or above it (byte
    /// order, which for big-endian numbers of one width is numeric order). For state that only
    /// grows — a queue's ack floor, the end of a run of finished offsets — so that two commits
    /// that reach the store in the other order than their changes were made keep the newer,
    /// larger value instead of taking it back.
    PutMax {
        table: &'static str,
        key: String,
        value: Vec<u8>,
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

/// Classifies a redb error: an I/O error (ENOSPC becomes [`StorageError::DiskFull`]) and
/// redb's refusal after an earlier one are I/O failures that call for a reopen; anything
/// else (a table of the wrong type, corruption) is a state store error.
impl StateWrite {
    fn table(&self) -> &'static str {
        match self {
            StateWrite::Put { table, .. }
            | StateWrite::PutMax { table, .. }
            | StateWrite::Delete { table, .. }
            | StateWrite::DeletePrefix { table, .. }
            | StateWrite::DeleteRange { table, .. } => table,
        }
    }
}

fn state_error(error: impl Into<redb::Error>) -> StorageError {
    match error.into() {
        redb::Error::Io(source) => StorageError::io("using the state store", source),
        redb::Error::PreviousIo | redb::Error::DatabaseClosed => StorageError::io(
            "using the state store",
            std::io::Error::other("an earlier I/O error left the database to be reopened"),
        ),
        other => StorageError::State(other.to_string()),
    }
}

/// Whether the database must be reopened after `error`.
/// How long writes are refused after a checkpoint failed for want of disk space, before one
/// of them tries it again.
const CHECKPOINT_RETRY: std::time::Duration = std::time::Duration::from_millis(100);

/// The error of a write refused while checkpoints fail for want of disk space.
fn checkpoint_refused() -> StorageError {
    StorageError::DiskFull {
        context: "checkpointing the state store".into(),
    }
}

fn needs_reopen(error: &StorageError) -> bool {
    matches!(
        error,
        StorageError::Io { .. } | StorageError::DiskFull { .. }
    )
}

/// Opens the database file at a path.
type Opener = Box<dyn Fn(&Path) -> Result<Database> + Send + Sync>;

fn open_database(path: &Path) -> Result<Database> {
    // redb caches pages in memory, by default up to 1 GiB; bounded here so memory does not
    // grow with the number of stored keys (millions of delayed messages, job records).
    Database::builder()
        .set_cache_size(STATE_CACHE_BYTES)
        .create(path)
        .map_err(state_error)
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

impl Shared {
    fn new(path: &Path, db: Database, journal: Journal, opener: Opener) -> Shared {
        Shared {
            path: path.to_path_buf(),
            opener,
            db: RwLock::new(Some(db)),
            journal: Mutex::new(journal),
            failed: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            failure: Mutex::new(None),
            reserve: Mutex::new(None),
            counters: Counters::default(),
            write_behind: write_behind::WriteBehind::default(),
            checkpointing: Mutex::new(None),
        }
    }

    /// Runs a read of `table` on the database, reopening it first if an earlier operation
    /// failed, and applying the writes kept back for it if it is a write-behind table.
    fn run<T>(&self, table: &'static str, operation: impl Fn(&Database) -> Result<T>) -> Result<T> {
        self.reopen_if_failed()?;
        self.settle_write_behind(table)?;
        self.on_database(operation)
    }

    /// Runs `operation` on the open database; an I/O error marks it for a reopen.
    fn on_database<T>(&self, operation: impl FnOnce(&Database) -> Result<T>) -> Result<T> {
        let db = self.db.read().unwrap_or_else(|p| p.into_inner());
        let Some(database) = db.as_ref() else {
            if self.closed.load(Ordering::Acquire) {
                return Err(StorageError::Closed);
            }
            // A reopen failed between our check and taking the lock.
            return Err(self.failure_error());
        };
        let outcome = operation(database);
        drop(db);
        if let Err(error) = &outcome {
            if needs_reopen(error) {
                self.record_failure(error);
            }
        }
        outcome
    }

    fn record_failure(&self, error: &StorageError) {
        tracing::error!(path = %self.path.display(), "state store failed, reopening it before its next use: {error}");
        *self.failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(error.to_string());
        self.failed.store(true, Ordering::Release);
    }

    fn failure_error(&self) -> StorageError {
        let reason = self.failure().unwrap_or_else(|| "closed".into());
        if reason.starts_with("disk full") {
            StorageError::DiskFull {
                context: "reopening the state store".into(),
            }
        } else {
            StorageError::State(reason)
        }
    }

    fn failure(&self) -> Option<String> {
        self.failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Closes the failed database and opens the file again. The exclusive lock means no
    /// transaction of the old database is alive, so redb lets go of the file.
    fn reopen_if_failed(&self) -> Result<()> {
        if !self.failed.load(Ordering::Acquire) {
            return Ok(());
        }
        let mut journal = self.journal.lock().unwrap_or_else(|p| p.into_inner());
        self.reopen_if_failed_locked(&mut journal)
    }

    /// As [`Shared::reopen_if_failed`], with the journal already held. The reopened database
    /// is at its last durable commit; the journal's records after it are applied again.
    fn reopen_if_failed_locked(&self, journal: &mut Journal) -> Result<()> {
        if !self.failed.load(Ordering::Acquire) {
            return Ok(());
        }
        // A checkpoint still running holds the database; the replay below applies what it
        // took, so its outcome is taken in (and forgotten) first.
        self.settle_checkpoint_locked(journal);
        let mut db = self.db.write().unwrap_or_else(|p| p.into_inner());
        if !self.failed.load(Ordering::Acquire) {
            return Ok(());
        }
        if self.closed.load(Ordering::Acquire) {
            return Err(StorageError::Closed);
        }
        drop(db.take());
        let reopened = (self.opener)(&self.path).and_then(|database| {
            match checkpoint::recover(&database, journal) {
                Ok(()) => Ok(database),
                Err(error) => Err(error),
            }
        });
        match reopened {
            Ok(reopened) => {
                // The journal, now applied, holds everything kept back.
                self.write_behind.forget();
                *db = Some(reopened);
                *self.failure.lock().unwrap_or_else(|p| p.into_inner()) = None;
                self.failed.store(false, Ordering::Release);
                tracing::info!(path = %self.path.display(), "state store reopened");
                Ok(())
            }
            Err(error) => {
                *self.failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(error.to_string());
                Err(error)
            }
        }
    }

    fn release_reserve(&self) -> bool {
        let reserve = self
            .reserve
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        reserve.is_some_and(|reserve| reserve.release())
    }

    /// Applies writes in one transaction, durable on return. A transaction that frees space
    /// (deletes only) that finds the disk full releases the disk reserve (if any is left) and
    /// tries once more. Only deletes may spend the reserve — a put that spent it would leave
    /// nothing for the delete that frees space.
    fn apply(&self, writes: &[StateWrite]) -> Result<()> {
        let start = std::time::Instant::now();
        let frees_space = writes
            .iter()
            .all(|write| !matches!(write, StateWrite::Put { .. } | StateWrite::PutMax { .. }));
        match self.apply_once(writes, frees_space) {
            Err(error) if frees_space && error.is_disk_full() && self.release_reserve() => {
                self.apply_once(writes, frees_space)?
            }
            outcome => outcome?,
        }
        self.counters.count(writes.len());
        crate::metrics::STATE_COMMIT_SECONDS.observe_since(start);
        Ok(())
    }

    /// Journals the writes (one record, fsynced), then commits them to redb without an fsync
    /// of its own; checkpoints when one is due. The writes are staged in their redb
    /// transaction before the record is written, so a write redb refuses is refused before
    /// anything is journaled. If the commit fails after the record's fsync, the record is
    /// durable: the database is reopened at once, which applies it, and the writes count as
    /// done if that works.
    ///
    /// While checkpoints fail for want of disk space, writes that do not free space are
    /// refused (their records would pile up behind a checkpoint that needs more space the
    /// more of them there are); one of them retries the checkpoint every
    /// [`CHECKPOINT_RETRY`]. Writes that free space still go through the journal.
    fn apply_once(&self, writes: &[StateWrite], frees_space: bool) -> Result<()> {
        let mut journal = self.journal.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(refused_at) = journal.checkpoint_refused_at() {
            if !frees_space {
                if refused_at.elapsed() < CHECKPOINT_RETRY {
                    return Err(self.journal_failed(checkpoint_refused()));
                }
                self.checkpoint_locked(&mut journal, false)?;
            }
        }
        self.reopen_if_failed_locked(&mut journal)?;
        journal.prepare(writes);
        if let Err(error) = journal.make_room() {
            // No room to grow: a checkpoint lets the record go at offset 0, over the file's
            // own blocks.
            if !error.is_disk_full() || !journal.has_records() {
                return Err(self.journal_failed(error));
            }
            self.checkpoint_locked(&mut journal, frees_space)?;
            journal.prepare(writes);
            journal.make_room().map_err(|e| self.journal_failed(e))?;
        }
        let mut journaled = false;
        // Writes to write-behind tables are journaled with the rest and kept back for the
        // next checkpoint; a commit of nothing else opens no redb transaction at all.
        let (now, behind) = self.write_behind.split(writes);
        let outcome = self.on_database(|database| {
            let transaction = match now.is_empty() {
                true => None,
                false => Some(stage(database, &now, Durability::None)?),
            };
            if let Err(error) = journal.write_prepared(!now.is_empty()) {
                // Nothing durable, and redb untouched: the transaction is dropped unapplied.
                return Ok(Err(error));
            }
            journaled = true;
            if let Some(transaction) = transaction {
                transaction.commit().map_err(state_error)?;
            }
            Ok(Ok(()))
        });
        if journaled {
            // Durable in the journal; a failed redb commit reopens, and the reopen's replay
            // applies (and forgets) what is kept back.
            self.write_behind.keep(behind);
        }
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(journal_error)) => return Err(self.journal_failed(journal_error)),
            Err(error) if journaled && self.failed.load(Ordering::Acquire) => {
                tracing::warn!("state store: a commit failed after its journal record was written, reopening to apply it: {error}");
                self.reopen_if_failed_locked(&mut journal)?;
            }
            Err(error) => return Err(error),
        }
        Ok(())
    }

    /// A journal write that failed wrote nothing durable and left redb as it was, but the
    /// store cannot take writes: it is reported as failed (and reopened before its next use,
    /// which also reads back where the journal ends).
    fn journal_failed(&self, error: StorageError) -> StorageError {
        if needs_reopen(&error) {
            self.record_failure(&error);
        }
        error
    }

    /// A durable redb commit of everything journaled, after which the journal starts again
    /// at offset 0. On a full disk, `may_spend_reserve` lets it release the disk reserve and
    /// try once more (for writes that free space, see [`Shared::apply`]).
    fn checkpoint_locked(&self, journal: &mut Journal, may_spend_reserve: bool) -> Result<()> {
        let outcome = match self.checkpoint_once(journal) {
            Err(error) if error.is_disk_full() && may_spend_reserve && self.release_reserve() => {
                self.checkpoint_once(journal)
            }
            outcome => outcome,
        };
        if let Err(error) = &outcome {
            if error.is_disk_full() {
                journal.checkpoint_refused();
            }
        }
        outcome
    }

    /// Reopens a failed store, and retries a checkpoint that the disk refused: the store
    /// works again only when both have succeeded.
    fn recover_if_failed(&self) -> Result<()> {
        let mut journal = self.journal.lock().unwrap_or_else(|p| p.into_inner());
        self.reopen_if_failed_locked(&mut journal)?;
        if journal.checkpoint_refused_at().is_some() {
            self.checkpoint_locked(&mut journal, false)?;
        }
        Ok(())
    }

    fn checkpoint_once(&self, journal: &mut Journal) -> Result<()> {
        self.settle_checkpoint_locked(journal);
        self.reopen_if_failed_locked(journal)?;
        let mut kept_back = self.write_behind.take();
        let outcome =
            self.on_database(|database| checkpoint::checkpoint(database, journal, &mut kept_back));
        if outcome.is_err() {
            self.write_behind.give_back(kept_back);
        }
        outcome
    }

    /// At a clean close: a checkpoint, so the next open has nothing to apply.
    fn checkpoint_at_close(&self) {
        let mut journal = self.journal.lock().unwrap_or_else(|p| p.into_inner());
        self.settle_checkpoint_locked(&mut journal);
        if self.failed.load(Ordering::Acquire) {
            return;
        }
        let db = self.db.read().unwrap_or_else(|p| p.into_inner());
        // No database: already closed (and checkpointed then), or a reopen failed.
        let Some(database) = db.as_ref() else {
            return;
        };
        if journal.has_records() {
            let mut kept_back = self.write_behind.take();
            if let Err(error) = checkpoint::checkpoint(database, &mut journal, &mut kept_back) {
                tracing::warn!("state store: the closing checkpoint failed (the journal is applied at the next open): {error}");
            }
        }
    }
}

impl StateStore {
    pub fn open(path: &Path) -> Result<StateStore> {
        Self::open_with(path, Box::new(open_database), None)
    }

    /// Opens the store with `opener`, which is also how it reopens after an I/O error, and
    /// applies what its journal holds after the last checkpoint.
    fn open_with(
        path: &Path,
        opener: Opener,
        faults: Option<Arc<FaultPlan>>,
    ) -> Result<StateStore> {
        let db = opener(path)?;
        let mut journal = Journal::open(&journal::path_beside(path), faults)?;
        checkpoint::recover(&db, &mut journal)?;
        if let Ok(metadata) = std::fs::metadata(path) {
            journal.size_checkpoints(metadata.len());
        }
        Ok(StateStore {
            shared: Arc::new(Shared::new(path, db, journal, opener)),
            committer: std::sync::Mutex::new(None),
        })
    }

    /// Makes `tables` write-behind tables (`state/write_behind.rs`): their writes are
    /// durable before a commit returns, as any other, but reach redb at the next checkpoint.
    /// For tables read back only when the store opens.
    pub fn write_behind(&self, tables: &[&'static str]) {
        self.shared.write_behind.add_tables(tables);
    }

    /// The reserve to release when a write finds the disk full (see `disk.rs`).
    pub fn set_disk_reserve(&self, reserve: Arc<DiskReserve>) {
        *self
            .shared
            .reserve
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(reserve);
    }

    /// Why the store is failed and waiting to be reopened, or `None` when it works.
    pub fn failure(&self) -> Option<String> {
        self.shared
            .failed
            .load(Ordering::Acquire)
            .then(|| self.shared.failure())
            .flatten()
    }

    /// Reopens a failed store now (the maintenance pass calls this once space is back, so
    /// health turns good without waiting for the next write). `Ok` when the store works.
    pub fn reopen_if_failed(&self) -> Result<()> {
        self.shared.recover_if_failed()
    }

    /// Commits and writes so far (for benchmarks and metrics).
    pub fn stats(&self) -> StateStats {
        StateStats {
            commits: self.shared.counters.commits.load(Ordering::Relaxed),
            writes: self.shared.counters.writes.load(Ordering::Relaxed),
        }
    }

    /// Closes the database now, so its file can be opened again (a restart in the same
    /// process) while something still holds this store: the engine calls it at shutdown,
    /// when connection tasks may still hold the engine. Waits for the committer to finish
    /// what was queued; every later operation is refused with [`StorageError::Closed`].
    /// Blocking: call it from a blocking thread.
    pub fn close(&self) {
        let committer = {
            let mut committer = self.committer.lock().unwrap_or_else(|p| p.into_inner());
            // Under the committer's lock, so no commit starts a new committer after this.
            self.shared.closed.store(true, Ordering::Release);
            committer.take()
        };
        if let Some(Committer { sender, thread }) = committer {
            drop(sender);
            let _ = thread.join();
        }
        self.shared.checkpoint_at_close();
        let mut db = self.shared.db.write().unwrap_or_else(|p| p.into_inner());
        drop(db.take());
    }

    /// Applies all writes in one transaction, durable on return.
    pub fn write(&self, writes: &[StateWrite]) -> Result<()> {
        self.shared.apply(writes)?;
        self.shared.checkpoint_if_due();
        Ok(())
    }

    /// Group-committed write: the writes of every caller waiting at the same time go into one
    /// transaction (one fsync), each caller's writes in the order given and callers in arrival
    /// order. Resolves once durable. For hot paths (acks, deliveries, offset commits) where
    /// one fsync per call would cap throughput at the disk's fsync rate.
    pub async fn commit(&self, writes: Vec<StateWrite>) -> Result<()> {
        self.submit(writes).await?.durable().await
    }

    /// The first half of [`StateStore::commit`]: queues `writes` for the committer and returns
    /// once they have their place in its order, without waiting for them to be durable.
    /// Commits are applied in the order they are submitted, so a caller that submits under
    /// its own ordering (a lock held across the submission) gets that order on disk.
    pub async fn submit(&self, writes: Vec<StateWrite>) -> Result<Submitted> {
        let sender = self.committer_sender()?;
        let (done, wait) = oneshot::channel();
        sender
            .send((writes, done))
            .await
            .map_err(|_| StorageError::Closed)?;
        Ok(Submitted { wait })
    }

    fn committer_sender(&self) -> Result<mpsc::Sender<CommitRequest>> {
        let mut committer = self.committer.lock().unwrap_or_else(|p| p.into_inner());
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(StorageError::Closed);
        }
        Ok(committer
            .get_or_insert_with(|| {
                let (sender, receiver) = mpsc::channel(COMMIT_QUEUE_MAX);
                let shared = self.shared.clone();
                let thread = std::thread::Builder::new()
                    .name("state-commit".into())
                    .spawn(move || run_committer(shared, receiver))
                    .expect("spawning the state committer thread");
                Committer { sender, thread }
            })
            .sender
            .clone())
    }

    pub fn put(&self, table: &'static str, key: &str, value: &[u8]) -> Result<()> {
        self.write(&[StateWrite::Put {
            table,
            key: key.to_string(),
            value: value.to_vec(),
        }])
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod full_disk_tests;
