//! The state store's journal: why a durable state commit costs one small fsync.
//!
//! A redb transaction committed durably writes its changed B-tree pages and fsyncs the file
//! (and its header), several hundred microseconds even for one changed key. Every group of
//! state writes goes instead to the end of this append-only file, which is fsynced
//! (`fdatasync`) once, and is then applied to redb with `Durability::None`: visible to every
//! later read at once, but not yet on disk. Now and then (see "How big a checkpoint is") one
//! durable redb commit makes all of it durable there and records the last journal record it
//! holds.
//!
//! # How big a checkpoint is
//!
//! Two kinds of records wait for a checkpoint, and each has its own bound:
//!
//! - Records with writes applied to redb at once (queues, jobs, offsets: every table but the
//!   write-behind ones, `write_behind.rs`) are due one after [`APPLIED_INTERVAL`] or
//!   [`APPLIED_BYTES`] of them. redb frees the pages such commits replace only at a durable
//!   commit, so this bounds how far the database file grows between checkpoints.
//! - Every record, write-behind ones included, is due one after [`CHECKPOINT_INTERVAL`] or
//!   [`checkpoint_bytes_for`] the database's size. A checkpoint of write-behind writes does
//!   all their B-tree work, and that grows with the database, not only with the rows it
//!   writes: with a million keys, a checkpoint of 55,000 random ones rewrites about as many
//!   pages, each holding a few keys, for the one key it came for. So the journal may hold a
//!   share of the database ([`CHECKPOINT_SHARE`]), between [`CHECKPOINT_BYTES`] and
//!   [`CHECKPOINT_BYTES_MAX`], sized when a side starts taking records
//!   ([`Journal::size_checkpoints`]); and the interval is long, or at a few thousand keys a
//!   second the checkpoints would be small again (docs/benchmarks.md, "Checkpoints sized to
//!   the database"). What a crash replays is then at most two sides of
//!   `CHECKPOINT_BYTES_MAX` (one sealed, its checkpoint running, and the active one), and
//!   what the write-behind tables keep in memory is the same bytes' worth.
//!
//! # Two files, so that a checkpoint does not stop the commits
//!
//! The journal is two files, `state.journal` and `state.journal.b`. Records go to one (the
//! active side). When a checkpoint is due the active side is *sealed* ([`Journal::seal`]):
//! records go on at offset 0 of the other side while the checkpoint of the sealed side's
//! records runs on a thread of its own (`Shared::start_checkpoint`), so commits do not wait
//! for its B-tree work and its two fsyncs. Once it is durable the sealed side is free again.
//! One checkpoint runs at a time; one that fails leaves its side sealed, and the next
//! checkpoint covers both sides at once, under the journal's lock, after which the active
//! side starts again at offset 0 ([`Journal::restart_after`]). (Until 2026-12-06 the journal
//! was one file and every checkpoint ran inside a commit: a checkpoint of many distinct keys
//! held every commit behind it.)
//!
//! After a crash, redb opens at its last durable commit and the journal's records after that
//! checkpoint are applied again, in order, from both files ([`Journal::read`]). Re-applying a record that redb already
//! holds is harmless: every write decides its key's value without reading it (a put or a
//! delete), or only raises it (put-max), so applying a run of records twice leaves what
//! applying it once does.
//!
//! # Format (all integers little-endian)
//!
//! Each file is a run of records from offset 0 (a one-file journal from before is read as
//! the first side, the second made empty):
//!
//! ```text
//! record   := length u32 | crc32c u32 | body            (length = body bytes; crc of body)
//! body     := sequence u64 | count u32 | write × count
//! write    := tag u8 | table (u16 length, bytes) | fields
//!   tag 0 Put, 1 PutMax:      key (u32 length, bytes) | value (u32 length, bytes)
//!   tag 2 Delete:             key
//!   tag 3 DeletePrefix:       prefix (u32 length, bytes)
//!   tag 4 DeleteRange:        start | end               (u32 length, bytes each)
//! ```
//!
//! Sequences grow by one per record, across both files, and never restart. A side is
//! overwritten in place from offset 0 when records go to it again, so what follows its
//! newest record is an older, lower-numbered one, zeros, or a torn write: reading a side
//! stops at the first record that does not check out or whose sequence is not the previous
//! one plus one. The records after the checkpoint are those of both runs, in sequence order;
//! writing goes on after the side holding the newest.
//!
//! # Space
//!
//! Each file grows in steps of [`GROW_BYTES`] of zeros written ahead of the records, never
//! shrinks, and is reused from offset 0 when records go to it again. So a record is almost always
//! written over blocks the file already has: its `fdatasync` does not also write the inode,
//! and it cannot fail for want of disk space. When the file must grow and the disk is full,
//! the store checkpoints first and writes the record at offset 0 instead (`Shared::apply`).
//!
//! # Replay without disk space
//!
//! Records found after the checkpoint at open (or at a reopen after an I/O error) are applied
//! to redb again without an fsync — redb keeps such commits in its write buffer, so this
//! needs no disk space — and new records go after them. The next checkpoint makes them
//! durable in redb. A store on a full disk can therefore always be reopened and read.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{Result, StorageError};
use crate::io::FaultPlan;

use super::StateWrite;

/// The record format: encoding, and reading a file's run of records back.
mod records;

pub(crate) use records::check_decoding;
use records::{encode, parse, Run};

/// How long records may wait for the durable redb commit that lets the journal start
/// again, however few they are: a store written slowly replays little after a crash.
pub(super) const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(10);
/// How long records with writes applied to redb at once may wait for a checkpoint, and how
/// many bytes of them: redb holds the pages they replaced until a durable commit.
pub(super) const APPLIED_INTERVAL: Duration = Duration::from_millis(500);
pub(super) const APPLIED_BYTES: u64 = 8 * 1024 * 1024;
/// Journal bytes after which a checkpoint comes sooner than the interval, at least.
pub(super) const CHECKPOINT_BYTES: u64 = 8 * 1024 * 1024;
/// … and at most, however big the database: bounds the replay after a crash (about two
/// seconds a side with a million keys, docs/benchmarks.md) and the writes kept in memory.
pub(super) const CHECKPOINT_BYTES_MAX: u64 = 64 * 1024 * 1024;
/// Between those, the journal may grow to the database's size divided by this.
const CHECKPOINT_SHARE: u64 = 4;
/// The redb table holding the sequence of the last record a durable commit includes.
pub(super) const CHECKPOINT_TABLE: &str = "$state_journal";
pub(super) const CHECKPOINT_KEY: &str = "checkpoint";
/// The journal file grows by this much at a time (zeros written ahead of the records).
const GROW_BYTES: u64 = 1024 * 1024;

/// One of the journal's two files and where its next record goes.
struct Side {
    path: PathBuf,
    file: File,
    /// Where the next record is written.
    offset: u64,
    /// The bytes the file is known to have (written records or zeros).
    length: u64,
}

/// The journal: two files, one taking records ([`Journal::active`]), the other sealed while
/// a checkpoint of its records runs, or free.
pub(super) struct Journal {
    sides: [Side; 2],
    /// The side records are written to.
    active: usize,
    /// The other side's records, all at or below this sequence and not yet known to be in
    /// a durable checkpoint: that side is not written again until a checkpoint covers them.
    sealed: Option<u64>,
    faults: Option<Arc<FaultPlan>>,
    /// The next record's sequence.
    next_sequence: u64,
    /// When the active side's records began to wait for a checkpoint.
    since: Instant,
    /// The active side's records with writes applied to redb at once: when the first of
    /// them was written, and their bytes.
    applied_since: Instant,
    applied_bytes: u64,
    /// When a checkpoint last failed for want of disk space, until one succeeds.
    checkpoint_refused_at: Option<Instant>,
    /// The active side's bytes after which a checkpoint is due ([`checkpoint_bytes_for`]).
    checkpoint_bytes: u64,
    buffer: Vec<u8>,
}

/// The journal bytes after which a checkpoint is due, for a database of this many bytes
/// (see "How big a checkpoint is").
pub(super) fn checkpoint_bytes_for(database_bytes: u64) -> u64 {
    (database_bytes / CHECKPOINT_SHARE).clamp(CHECKPOINT_BYTES, CHECKPOINT_BYTES_MAX)
}

/// What reading the journal found: the records after `checkpoint` on both sides, in order.
pub(super) struct Found {
    pub(super) records: Vec<(u64, Vec<StateWrite>)>,
    /// The highest sequence read, whether or not it was after the checkpoint.
    pub(super) last_sequence: u64,
    /// Per side, the offset just after the last record of its run.
    ends: [u64; 2],
    /// The side holding the newest record, where writing goes on.
    active: usize,
    /// The other side's last sequence, if it holds records after the checkpoint.
    sealed: Option<u64>,
}

/// The journal's paths beside the database file: `state.redb` → `state.journal` and
/// `state.journal.b`.
pub(super) fn path_beside(database: &Path) -> PathBuf {
    database.with_extension("journal")
}

fn second_path(first: &Path) -> PathBuf {
    let mut name = first.as_os_str().to_owned();
    name.push(".b");
    PathBuf::from(name)
}

impl Side {
    fn open(path: PathBuf) -> Result<Side> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| StorageError::io(format!("opening {}", path.display()), e))?;
        let length = file
            .metadata()
            .map_err(|e| StorageError::io(format!("reading {}", path.display()), e))?
            .len();
        Ok(Side {
            path,
            file,
            offset: 0,
            length,
        })
    }

    fn read(&self, checkpoint: u64) -> Result<Run> {
        let error = |e| StorageError::io(format!("reading {}", self.path.display()), e);
        let length = self.file.metadata().map_err(error)?.len();
        let mut bytes = vec![0; length as usize];
        self.file.read_exact_at(&mut bytes, 0).map_err(error)?;
        Ok(parse(&bytes, checkpoint))
    }
}

impl Journal {
    /// Opens the journal's files: `path` and the second one beside it (made if missing, as
    /// in a folder a one-file journal wrote).
    pub(super) fn open(path: &Path, faults: Option<Arc<FaultPlan>>) -> Result<Journal> {
        Ok(Journal {
            sides: [
                Side::open(path.to_path_buf())?,
                Side::open(second_path(path))?,
            ],
            active: 0,
            sealed: None,
            faults,
            next_sequence: 1,
            since: Instant::now(),
            applied_since: Instant::now(),
            applied_bytes: 0,
            checkpoint_refused_at: None,
            checkpoint_bytes: CHECKPOINT_BYTES,
            buffer: Vec::new(),
        })
    }

    /// Reads the records after `checkpoint` from both files (see the module docs for where
    /// reading stops), in sequence order.
    pub(super) fn read(&self, checkpoint: u64) -> Result<Found> {
        let runs = [
            self.sides[0].read(checkpoint)?,
            self.sides[1].read(checkpoint)?,
        ];
        Ok(merge(runs, checkpoint))
    }

    /// Starts again at offset 0 of the active side with sequences after `last`: what is on
    /// disk, on either side, is all at or below a durable checkpoint now.
    pub(super) fn restart_after(&mut self, last: u64) {
        self.checkpoint_refused_at = None;
        self.sealed = None;
        self.sides[self.active].offset = 0;
        self.next_sequence = self.next_sequence.max(last + 1);
        self.nothing_waits();
    }

    /// The active side holds no record waiting for a checkpoint (it starts at offset 0).
    fn nothing_waits(&mut self) {
        self.since = Instant::now();
        self.applied_since = self.since;
        self.applied_bytes = 0;
    }

    /// The sequence the next record gets.
    pub(super) fn next_sequence(&self) -> u64 {
        self.next_sequence
    }

    /// Continues after the records `found` read (applied again, not yet checkpointed): the
    /// next record goes after them, on the side holding the newest.
    pub(super) fn resume_after(&mut self, found: &Found) {
        self.sides[0].offset = found.ends[0];
        self.sides[1].offset = found.ends[1];
        self.active = found.active;
        self.sealed = found.sealed;
        self.next_sequence = self.next_sequence.max(found.last_sequence + 1);
        self.since = Instant::now();
        // Replayed into redb at once, all of them: counted as such, so a big replay is
        // checkpointed soon.
        self.applied_since = self.since;
        self.applied_bytes = found.ends[0] + found.ends[1];
    }

    /// Seals the active side for a checkpoint that runs while records go on to the other
    /// side, from its start; answers the last sequence sealed. `None` while the other side
    /// is still sealed (its checkpoint running or failed): a checkpoint then has to cover
    /// both sides, under the journal's lock ([`Journal::restart_after`]).
    pub(super) fn seal(&mut self) -> Option<u64> {
        if self.sealed.is_some() {
            return None;
        }
        let last = self.next_sequence - 1;
        self.sealed = Some(last);
        self.active = 1 - self.active;
        self.sides[self.active].offset = 0;
        self.nothing_waits();
        Some(last)
    }

    /// The sealed side's checkpoint is durable: that side may be written again.
    pub(super) fn sealed_checkpointed(&mut self) {
        self.sealed = None;
        self.checkpoint_refused_at = None;
    }

    /// Writes `writes` as the next record and fsyncs it (see [`Journal::prepare`],
    /// [`Journal::make_room`] and [`Journal::write_prepared`]).
    #[cfg(test)]
    pub(super) fn append(&mut self, writes: &[StateWrite]) -> Result<()> {
        self.append_as(writes, true)
    }

    /// [`Journal::append`] of a record whose writes are `applied` to redb at once, or not.
    #[cfg(test)]
    pub(super) fn append_as(&mut self, writes: &[StateWrite], applied: bool) -> Result<()> {
        self.prepare(writes);
        self.make_room()?;
        self.write_prepared(applied)
    }

    /// Encodes `writes` as the next record, to be written by [`Journal::write_prepared`].
    pub(super) fn prepare(&mut self, writes: &[StateWrite]) {
        encode(&mut self.buffer, self.next_sequence, writes);
    }

    /// Grows the active file, if the prepared record does not fit in it at the current
    /// offset, by zeros up to the next [`GROW_BYTES`] step (or just what the record needs,
    /// if the disk has no more). An error (the disk is full) leaves the records untouched.
    pub(super) fn make_room(&mut self) -> Result<()> {
        let side = &self.sides[self.active];
        let needed = side.offset + self.buffer.len() as u64;
        if needed <= side.length {
            return Ok(());
        }
        let stepped = needed.div_ceil(GROW_BYTES) * GROW_BYTES;
        match self.zero_to(stepped) {
            Err(error) if error.is_disk_full() && stepped > needed => self.zero_to(needed),
            outcome => outcome,
        }
    }

    /// Writes zeros from the active file's known length to `length`.
    fn zero_to(&mut self, length: u64) -> Result<()> {
        const CHUNK: usize = 64 * 1024;
        let zeros = [0u8; CHUNK];
        let side = &mut self.sides[self.active];
        while side.length < length {
            let n = ((length - side.length) as usize).min(CHUNK);
            if let Some(plan) = &self.faults {
                plan.check_write().map_err(|e| error(side, "growing", e))?;
            }
            side.file
                .write_all_at(&zeros[..n], side.length)
                .map_err(|e| error(side, "growing", e))?;
            side.length += n as u64;
        }
        Ok(())
    }

    /// Writes the prepared record and fsyncs it. On success the record is durable; on an
    /// error nothing is counted as written (the next record goes to the same place).
    /// `applied`: some of its writes are applied to redb at once (not all write-behind).
    pub(super) fn write_prepared(&mut self, applied: bool) -> Result<()> {
        let side = &mut self.sides[self.active];
        if let Some(plan) = &self.faults {
            plan.check_write().map_err(|e| error(side, "writing", e))?;
        }
        side.file
            .write_all_at(&self.buffer, side.offset)
            .map_err(|e| error(side, "writing", e))?;
        if let Some(plan) = &self.faults {
            plan.check_sync(&side.path)
                .map_err(|e| error(side, "syncing", e))?;
        }
        side.file
            .sync_data()
            .map_err(|e| error(side, "syncing", e))?;
        if side.offset == 0 {
            // The interval runs from the first record waiting for a checkpoint, so a store
            // written once in a while is not checkpointed after every record.
            self.since = Instant::now();
        }
        if applied {
            if self.applied_bytes == 0 {
                self.applied_since = Instant::now();
            }
            self.applied_bytes += self.buffer.len() as u64;
        }
        side.offset += self.buffer.len() as u64;
        side.length = side.length.max(side.offset);
        self.next_sequence += 1;
        Ok(())
    }

    /// Whether the records written to the active side are due a checkpoint (see "How big a
    /// checkpoint is").
    pub(super) fn checkpoint_due(&self) -> bool {
        let offset = self.sides[self.active].offset;
        let applied = self.applied_bytes > 0
            && (self.applied_bytes >= APPLIED_BYTES
                || self.applied_since.elapsed() >= APPLIED_INTERVAL);
        offset > 0
            && (applied
                || offset >= self.checkpoint_bytes
                || self.since.elapsed() >= CHECKPOINT_INTERVAL)
    }

    /// Sizes the checkpoints to come for a database of `database_bytes`.
    pub(super) fn size_checkpoints(&mut self, database_bytes: u64) {
        self.checkpoint_bytes = checkpoint_bytes_for(database_bytes);
    }

    #[cfg(test)]
    pub(super) fn checkpoint_bytes(&self) -> u64 {
        self.checkpoint_bytes
    }

    /// Makes the active side's records look as old as the interval, so a checkpoint is due.
    #[cfg(test)]
    pub(super) fn since_long_ago(&mut self) {
        self.since = Instant::now()
            .checked_sub(CHECKPOINT_INTERVAL)
            .unwrap_or(self.since);
        self.applied_since = self.since;
    }

    /// Notes that a checkpoint failed for want of disk space.
    pub(super) fn checkpoint_refused(&mut self) {
        self.checkpoint_refused_at = Some(Instant::now());
    }

    /// When a checkpoint last failed for want of disk space, if none has succeeded since.
    pub(super) fn checkpoint_refused_at(&self) -> Option<Instant> {
        self.checkpoint_refused_at
    }

    /// Whether any record waits for a checkpoint.
    pub(super) fn has_records(&self) -> bool {
        self.sides[self.active].offset > 0 || self.sealed.is_some()
    }
}

fn error(side: &Side, doing: &str, source: std::io::Error) -> StorageError {
    StorageError::io(format!("{doing} {}", side.path.display()), source)
}

/// Both sides' runs as one: the records after the checkpoint in sequence order, and where
/// writing goes on. The records after a checkpoint are consecutive across the two sides
/// (the sealed side's, then the active one's); a gap means records we promised are
/// missing: said loudly, and what there is still applied.
fn merge(runs: [Run; 2], checkpoint: u64) -> Found {
    let active = usize::from(runs[1].last_sequence > runs[0].last_sequence);
    let other = 1 - active;
    let sealed = runs[other].records.last().map(|(sequence, _)| *sequence);
    let [first, second] = runs;
    let ends = [first.end, second.end];
    let last_sequence = first.last_sequence.max(second.last_sequence);
    let mut records = first.records;
    records.extend(second.records);
    records.sort_by_key(|(sequence, _)| *sequence);
    let mut expected = (checkpoint > 0).then_some(checkpoint + 1);
    for (sequence, _) in &records {
        if expected.is_some_and(|expected| *sequence != expected) {
            tracing::error!(
                checkpoint,
                sequence,
                "state journal: records between the checkpoint and this one are missing"
            );
        }
        expected = Some(sequence + 1);
    }
    Found {
        records,
        last_sequence,
        ends,
        active,
        sealed,
    }
}

#[cfg(test)]
mod tests {
    use super::records::HEADER_BYTES;
    use super::*;

    fn sample() -> Vec<StateWrite> {
        vec![
            StateWrite::Put {
                table: "t",
                key: "k".into(),
                value: b"v".to_vec(),
            },
            StateWrite::PutMax {
                table: "floors",
                key: "q".into(),
                value: vec![0, 0, 1],
            },
            StateWrite::Delete {
                table: "t",
                key: "gone".into(),
            },
            StateWrite::DeletePrefix {
                table: "t",
                prefix: "p/".into(),
            },
            StateWrite::DeleteRange {
                table: "u",
                start: "a".into(),
                end: "c".into(),
            },
        ]
    }

    fn records(sequences: std::ops::RangeInclusive<u64>) -> Vec<u8> {
        let mut bytes = Vec::new();
        let mut one = Vec::new();
        for sequence in sequences {
            encode(&mut one, sequence, &sample());
            bytes.extend_from_slice(&one);
        }
        bytes
    }

    #[test]
    fn records_read_back_as_written_after_the_checkpoint() {
        let found = parse(&records(1..=3), 1);
        assert_eq!(found.last_sequence, 3);
        let sequences: Vec<u64> = found.records.iter().map(|(s, _)| *s).collect();
        assert_eq!(sequences, vec![2, 3]);
        assert_eq!(found.records[0].1, sample());
    }

    #[test]
    fn reading_stops_at_a_torn_record_or_an_older_one() {
        let whole = records(1..=3);
        // A torn last record: every cut short of its end keeps the first two.
        let two = records(1..=2).len();
        for cut in two..whole.len() {
            let found = parse(&whole[..cut], 0);
            assert_eq!(found.last_sequence, 2, "cut at {cut}");
        }
        // A flipped byte in the second record ends the run after the first.
        let mut flipped = whole.clone();
        flipped[two - 3] ^= 0x40;
        assert_eq!(parse(&flipped, 0).last_sequence, 1);
        // Newer records written over the start of an older cycle: the old tail is not read.
        let mut overwritten = records(1..=5);
        let newer = records(6..=6);
        overwritten[..newer.len()].copy_from_slice(&newer);
        let found = parse(&overwritten, 5);
        assert_eq!(found.last_sequence, 6);
        assert_eq!(found.records.len(), 1);
    }

    #[test]
    fn an_old_cycle_wholly_under_the_checkpoint_gives_nothing_to_apply() {
        let found = parse(&records(4..=7), 7);
        assert!(found.records.is_empty());
        assert_eq!(found.last_sequence, 7);
        assert!(parse(&[], 0).records.is_empty());
        assert!(parse(&[0; 64], 0).records.is_empty());
    }

    #[test]
    fn the_file_grows_in_steps_of_zeros_and_is_reused_from_its_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.journal");
        let mut journal = Journal::open(&path, None).unwrap();
        let big = vec![StateWrite::Put {
            table: "t",
            key: "k".into(),
            value: vec![9; 300 * 1024],
        }];
        journal.append(&big).unwrap();
        let size = || std::fs::metadata(&path).unwrap().len();
        assert_eq!(size(), GROW_BYTES, "one step covers the first record");
        for _ in 0..3 {
            journal.append(&big).unwrap();
        }
        assert_eq!(
            size(),
            2 * GROW_BYTES,
            "the fourth record took a second step"
        );
        journal.restart_after(4);
        journal.append(&sample()).unwrap();
        assert_eq!(
            size(),
            2 * GROW_BYTES,
            "after a checkpoint the file is reused"
        );
        let found = journal.read(4).unwrap();
        assert_eq!(found.records, vec![(5, sample())]);
        assert_eq!(
            found.ends[journal.active],
            journal.sides[journal.active].offset
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]

        /// The fuzz target's body on noise, and on whole records cut and flipped anywhere.
        #[test]
        fn decoding_never_panics_and_runs_encode_back(
            noise in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
            count in 0u64..5,
            cut in proptest::prelude::any::<u16>(),
            flip in proptest::prelude::any::<u16>(),
        ) {
            check_decoding(&noise);
            let mut whole = records(1..=count);
            whole.extend_from_slice(&noise);
            check_decoding(&whole);
            let cut = cut as usize % (whole.len() + 1);
            check_decoding(&whole[..cut]);
            if !whole.is_empty() {
                let at = flip as usize % whole.len();
                whole[at] ^= 0x5a;
                check_decoding(&whole);
            }
        }
    }

    #[test]
    fn a_record_numbered_zero_or_with_bytes_after_its_writes_is_not_read() {
        // Found by the fuzz target: twelve zero bytes framed as a record (sequence 0).
        check_decoding(&[0; 12]);
        let mut zero = Vec::new();
        encode(&mut zero, 0, &sample());
        assert_eq!(parse(&zero, 0).end, 0);
        let mut padded = Vec::new();
        encode(&mut padded, 1, &sample());
        padded.push(7);
        let body = padded.len() - HEADER_BYTES;
        padded[..4].copy_from_slice(&(body as u32).to_le_bytes());
        let crc = crc32c::crc32c(&padded[HEADER_BYTES..]);
        padded[4..8].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(parse(&padded, 0).end, 0);
        check_decoding(&padded);
    }

    #[test]
    fn records_on_both_sides_read_back_in_order_and_writing_resumes_on_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.journal");
        let mut journal = Journal::open(&path, None).unwrap();
        for _ in 0..3 {
            journal.append(&sample()).unwrap();
        }
        assert_eq!(journal.seal(), Some(3));
        assert_eq!(journal.seal(), None, "one side sealed at a time");
        journal.append(&sample()).unwrap();
        journal.append(&sample()[..1]).unwrap();
        let sequences = |found: &Found| -> Vec<u64> {
            found
                .records
                .iter()
                .map(|(sequence, _)| *sequence)
                .collect()
        };
        assert_eq!(sequences(&journal.read(0).unwrap()), [1, 2, 3, 4, 5]);
        assert_eq!(sequences(&journal.read(3).unwrap()), [4, 5]);
        // A crash before the sealed side's checkpoint: both sides are applied again, and
        // writing goes on after the newest record, the sealed side still sealed.
        let mut reopened = Journal::open(&path, None).unwrap();
        let found = reopened.read(2).unwrap();
        assert_eq!(sequences(&found), [3, 4, 5]);
        assert_eq!(found.records[2].1, sample()[..1].to_vec());
        reopened.resume_after(&found);
        assert_eq!(reopened.seal(), None);
        reopened.append(&sample()[2..3]).unwrap();
        assert_eq!(sequences(&reopened.read(2).unwrap()), [3, 4, 5, 6]);
        // Its checkpoint done, the first side is written again from its start: its old
        // records after the new one are not read.
        reopened.sealed_checkpointed();
        assert_eq!(reopened.seal(), Some(6));
        reopened.append(&sample()[2..3]).unwrap();
        assert_eq!(sequences(&reopened.read(3).unwrap()), [4, 5, 6, 7]);
        assert_eq!(sequences(&reopened.read(6).unwrap()), [7]);
    }

    #[test]
    fn appended_records_are_on_disk_and_restart_overwrites_from_the_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.journal");
        let mut journal = Journal::open(&path, None).unwrap();
        journal.append(&sample()).unwrap();
        journal.append(&sample()[..1]).unwrap();
        assert!(journal.has_records());
        let found = Journal::open(&path, None).unwrap().read(0).unwrap();
        assert_eq!(found.records.len(), 2);
        assert_eq!(found.records[1].1, sample()[..1].to_vec());
        journal.restart_after(2);
        journal.append(&sample()[2..3]).unwrap();
        let found = journal.read(2).unwrap();
        assert_eq!(found.last_sequence, 3);
        assert_eq!(found.records, vec![(3, sample()[2..3].to_vec())]);
    }

    #[test]
    fn a_checkpoint_is_due_after_a_share_of_the_database_within_bounds() {
        const MIB: u64 = 1024 * 1024;
        assert_eq!(checkpoint_bytes_for(0), CHECKPOINT_BYTES);
        assert_eq!(checkpoint_bytes_for(20 * MIB), CHECKPOINT_BYTES);
        assert_eq!(checkpoint_bytes_for(100 * MIB), 25 * MIB);
        assert_eq!(checkpoint_bytes_for(10_000 * MIB), CHECKPOINT_BYTES_MAX);

        let dir = tempfile::tempdir().unwrap();
        let mut journal = Journal::open(&dir.path().join("state.journal"), None).unwrap();
        let big = |bytes: usize| {
            vec![StateWrite::Put {
                table: "t",
                key: "k".into(),
                value: vec![7; bytes],
            }]
        };
        // A database of 48 MiB: write-behind records are due after 12 MiB of journal, not
        // after the 8 MiB a small one gets.
        journal.size_checkpoints(48 * MIB);
        journal.append_as(&big(10 * MIB as usize), false).unwrap();
        assert!(!journal.checkpoint_due());
        journal.append_as(&big(3 * MIB as usize), false).unwrap();
        assert!(journal.checkpoint_due());
        // Sized again for a small database: the same bytes are well past its bound.
        journal.size_checkpoints(MIB);
        assert!(journal.checkpoint_due());

        // Records applied to redb at once keep their own bound, however big the database.
        journal.restart_after(journal.next_sequence() - 1);
        journal.size_checkpoints(48 * MIB);
        journal.append_as(&big(MIB as usize), false).unwrap();
        journal.append_as(&big(7 * MIB as usize), true).unwrap();
        assert!(!journal.checkpoint_due());
        journal.append_as(&big(MIB as usize), true).unwrap();
        assert!(journal.checkpoint_due());

        // And their own interval: a second of write-behind records is not due yet, a second
        // of records applied at once is.
        let ago = |wait: Duration| Instant::now().checked_sub(wait).unwrap();
        journal.restart_after(journal.next_sequence() - 1);
        journal.append_as(&sample(), false).unwrap();
        journal.since = ago(2 * APPLIED_INTERVAL);
        assert!(!journal.checkpoint_due());
        journal.since = ago(CHECKPOINT_INTERVAL);
        assert!(journal.checkpoint_due());
        journal.restart_after(journal.next_sequence() - 1);
        journal.append_as(&sample(), true).unwrap();
        journal.applied_since = ago(2 * APPLIED_INTERVAL);
        assert!(journal.checkpoint_due());
    }
}
