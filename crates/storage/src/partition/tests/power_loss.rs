//! Power loss at every step of a workload.
//!
//! A deterministic workload (create partitions, acknowledged appends, segment rolls with
//! their index files and producer snapshots, deleting records, retention, close and reopen)
//! runs on [`MemoryIo`] behind a wrapper that counts every operation that changes the disk
//! and, after each, keeps the crash image a power loss at that point would leave (only what
//! was fsynced, directory entries included). Every image is then reopened and checked:
//! every append acknowledged before the cut is there with its offsets and bytes, the log is
//! a clean prefix (consecutive offsets, CRCs valid), nothing is set aside or refused, and
//! the log accepts a new append at its end.
//!
//! Writes change no image (only syncs do), so cut points share images; each distinct image
//! is checked against the most demanding cut point that leaves it. The default run stops
//! after `DEFAULT_CUTS` cut points; `OMNIBUS_POWER_LOSS_CUTS=<n>` asks for more.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use super::*;
use crate::batch::set_base_offset;
use crate::io::IoFile;

const DEFAULT_CUTS: u64 = 20_000;
const PARTITIONS: u32 = 2;
const STEPS_PER_SEED: usize = 80;

/// One image and the last cut point (operation count) that leaves it.
struct Image {
    last_cut: u64,
    io: MemoryIo,
}

/// Counts disk-changing operations and keeps the crash image after each.
struct CuttingIo {
    memory: MemoryIo,
    operations: AtomicU64,
    images: Mutex<Vec<Image>>,
}

impl CuttingIo {
    fn new() -> Arc<Self> {
        Arc::new(CuttingIo {
            memory: MemoryIo::new(),
            operations: AtomicU64::new(0),
            images: Mutex::new(vec![Image {
                last_cut: 0,
                io: MemoryIo::new(),
            }]),
        })
    }

    fn operations(&self) -> u64 {
        self.operations.load(Ordering::SeqCst)
    }

    /// Called after each operation; `durable_changed` when it may have changed the image.
    fn cut(&self, durable_changed: bool) {
        let count = self.operations.fetch_add(1, Ordering::SeqCst) + 1;
        let mut images = self.images.lock().unwrap();
        if durable_changed {
            images.push(Image {
                last_cut: count,
                io: self.memory.crash_image(),
            });
        } else {
            images.last_mut().expect("an initial image").last_cut = count;
        }
    }

    fn counted<T>(&self, durable_changed: bool, result: std::io::Result<T>) -> std::io::Result<T> {
        self.cut(durable_changed);
        result
    }
}

impl Io for Arc<CuttingIo> {
    fn create_dir(&self, path: &Path) -> std::io::Result<()> {
        self.counted(false, self.memory.create_dir(path))
    }
    fn list_dir(&self, path: &Path) -> std::io::Result<Vec<String>> {
        self.memory.list_dir(path)
    }
    fn open(&self, path: &Path, create: bool) -> std::io::Result<Arc<dyn IoFile>> {
        let inner = if create && !self.memory.exists(path) {
            self.counted(false, self.memory.open(path, true))?
        } else {
            self.memory.open(path, create)?
        };
        Ok(Arc::new(CuttingFile {
            inner,
            io: self.clone(),
        }))
    }
    fn remove_file(&self, path: &Path) -> std::io::Result<()> {
        self.counted(false, self.memory.remove_file(path))
    }
    fn remove_tree(&self, path: &Path) -> std::io::Result<()> {
        self.counted(false, self.memory.remove_tree(path))
    }
    fn rename(&self, from: &Path, to: &Path) -> std::io::Result<()> {
        self.counted(false, self.memory.rename(from, to))
    }
    fn sync_dir(&self, path: &Path) -> std::io::Result<()> {
        self.counted(true, self.memory.sync_dir(path))
    }
    fn exists(&self, path: &Path) -> bool {
        self.memory.exists(path)
    }
}

struct CuttingFile {
    inner: Arc<dyn IoFile>,
    io: Arc<CuttingIo>,
}

impl IoFile for CuttingFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
        self.inner.read_at(buf, offset)
    }
    fn write_at(&self, buf: &[u8], offset: u64) -> std::io::Result<()> {
        self.io.counted(false, self.inner.write_at(buf, offset))
    }
    fn sync_data(&self) -> std::io::Result<()> {
        self.io.counted(true, self.inner.sync_data())
    }
    fn len(&self) -> std::io::Result<u64> {
        self.inner.len()
    }
    fn set_len(&self, len: u64) -> std::io::Result<()> {
        self.io.counted(false, self.inner.set_len(len))
    }
}

/// An acknowledged append: when it was acknowledged and what the log must hold for it.
struct Acknowledged {
    partition: u32,
    after_operations: u64,
    first_offset: u64,
    bytes: Vec<u8>,
}

/// A log start a call (deleting records, retention) set, and how many operations had run
/// when the call began and when it returned: both are durable when they return.
struct StartMoved {
    partition: u32,
    began_after_operations: u64,
    finished_after_operations: u64,
    log_start: u64,
}

struct Workload {
    acknowledged: Vec<Acknowledged>,
    starts: Vec<StartMoved>,
    /// Segments rolled, so a run can show that it covered rolls.
    rolls: u64,
}

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 1024,
        index_interval_bytes: 128,
        retention_bytes: Some(3000),
        ..LogConfig::default()
    }
}

fn partition_dir(partition: u32) -> PathBuf {
    PathBuf::from(format!("/data/streams/orders/{partition}"))
}

/// A small deterministic generator (no dependency on a crate's sequence across versions).
struct Steps(u64);

impl Steps {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % bound
    }
}

fn run_workload(io: &Arc<CuttingIo>, seed: u64, rt: &tokio::runtime::Runtime) -> Workload {
    let mut steps = Steps(seed);
    let mut workload = Workload {
        acknowledged: Vec::new(),
        starts: Vec::new(),
        rolls: 0,
    };
    let shared: Arc<dyn Io> = Arc::new(io.clone());
    let mut logs: Vec<Arc<PartitionLog>> = (0..PARTITIONS)
        .map(|p| PartitionLog::open(shared.clone(), &partition_dir(p), config()).unwrap())
        .collect();
    for step in 0..STEPS_PER_SEED {
        let partition = steps.below(PARTITIONS as u64) as u32;
        let log = logs[partition as usize].clone();
        match steps.below(20) {
            0 => {
                let began = io.operations();
                let (start, end) = (log.log_start_offset(), log.high_watermark());
                let target = start + steps.below(end - start + 1);
                let log_start = log.delete_records_before(target).unwrap();
                workload.starts.push(StartMoved {
                    partition,
                    began_after_operations: began,
                    finished_after_operations: io.operations(),
                    log_start,
                });
            }
            1 => {
                let began = io.operations();
                log.enforce_retention().unwrap();
                workload.starts.push(StartMoved {
                    partition,
                    began_after_operations: began,
                    finished_after_operations: io.operations(),
                    log_start: log.log_start_offset(),
                });
            }
            2 => {
                log.close().unwrap();
                logs[partition as usize] =
                    PartitionLog::open(shared.clone(), &partition_dir(partition), config())
                        .unwrap();
            }
            _ => {
                let count = 1 + steps.below(3) as usize;
                let values: Vec<String> = (0..count)
                    .map(|index| {
                        let filler = "x".repeat(steps.below(120) as usize);
                        format!("s{seed}-{step}-{index}-{filler}")
                    })
                    .collect();
                let refs: Vec<&str> = values.iter().map(String::as_str).collect();
                let mut bytes = batch(&refs);
                let segments = log.status().segments;
                let info = rt.block_on(log.append(bytes.clone())).unwrap();
                workload.rolls += (log.status().segments > segments) as u64;
                set_base_offset(&mut bytes, info.first_offset);
                workload.acknowledged.push(Acknowledged {
                    partition,
                    after_operations: io.operations(),
                    first_offset: info.first_offset,
                    bytes: bytes.to_vec(),
                });
            }
        }
    }
    workload
}

/// Walks every batch from the log start to the high watermark: offsets must follow each
/// other and every batch must decode (CRC included).
fn assert_clean_prefix(log: &PartitionLog, context: &str) {
    let mut offset = log.log_start_offset();
    let high_watermark = log.high_watermark();
    while offset < high_watermark {
        let read = log.read(offset, 1 << 16).unwrap();
        assert!(!read.bytes.is_empty(), "{context}: no batch at {offset}");
        let records = decode_batches(read.bytes.clone(), offset).unwrap();
        let mut position = 0;
        let mut first = true;
        while position < read.bytes.len() {
            let header = crate::batch::BatchHeader::parse(&read.bytes[position..]).unwrap();
            if first {
                assert!(
                    header.base_offset <= offset,
                    "{context}: gap before {offset}"
                );
                first = false;
            } else {
                assert_eq!(header.base_offset, offset, "{context}: offsets follow");
            }
            offset = header.last_offset() + 1;
            position += header.total_bytes();
        }
        assert!(!records.is_empty(), "{context}: records decode");
    }
    assert_eq!(
        offset, high_watermark,
        "{context}: ends at the high watermark"
    );
}

/// Checks one crash image against the cut point `cut`; returns the appends it verified.
fn check_image(
    image: &MemoryIo,
    cut: u64,
    workload: &Workload,
    rt: &tokio::runtime::Runtime,
) -> u64 {
    let io: Arc<dyn Io> = Arc::new(image.clone());
    let mut verified = 0;
    for partition in 0..PARTITIONS {
        let context = format!("cut after operation {cut}, partition {partition}");
        let log = PartitionLog::open(io.clone(), &partition_dir(partition), config())
            .unwrap_or_else(|error| panic!("{context}: reopen failed: {error}"));
        let status = log.status();
        assert_eq!(status.failure, None, "{context}");
        assert!(status.quarantined.is_empty(), "{context}: {status:?}");
        // The start may only have moved as far as a call begun before the cut asked, and at
        // least as far as every call finished before the cut (deleted records stay deleted).
        let starts = workload.starts.iter().filter(|s| s.partition == partition);
        let start_most = starts
            .clone()
            .filter(|s| s.began_after_operations <= cut)
            .map(|s| s.log_start)
            .max()
            .unwrap_or(0);
        let start_least = starts
            .filter(|s| s.finished_after_operations <= cut)
            .map(|s| s.log_start)
            .max()
            .unwrap_or(0);
        let start = log.log_start_offset();
        assert!(
            start <= start_most,
            "{context}: log start {start} moved on its own"
        );
        assert!(
            start >= start_least,
            "{context}: log start {start} went back below {start_least}"
        );
        for append in workload
            .acknowledged
            .iter()
            .filter(|a| a.partition == partition && a.after_operations <= cut)
            .filter(|a| a.first_offset >= log.log_start_offset())
        {
            assert!(
                append.first_offset < log.high_watermark(),
                "{context}: acknowledged offset {} lost (high watermark {})",
                append.first_offset,
                log.high_watermark()
            );
            let read = log.read(append.first_offset, 1).unwrap();
            assert_eq!(
                read.bytes.get(..append.bytes.len()),
                Some(&append.bytes[..]),
                "{context}: bytes of offset {}",
                append.first_offset
            );
            verified += 1;
        }
        assert_clean_prefix(&log, &context);
        let high_watermark = log.high_watermark();
        let info = rt
            .block_on(log.append(batch(&["after the crash"])))
            .unwrap();
        assert_eq!(info.first_offset, high_watermark, "{context}");
    }
    verified
}

#[test]
fn acknowledged_appends_survive_power_loss_at_every_cut_point() {
    let wanted = std::env::var("OMNIBUS_POWER_LOSS_CUTS")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(DEFAULT_CUTS);
    let started = std::time::Instant::now();
    let rt = runtime();
    let (mut cuts, mut images, mut acknowledged, mut verified) = (0u64, 0u64, 0u64, 0u64);
    let (mut rolls, mut starts_moved) = (0u64, 0u64);
    let mut seed = 1;
    while cuts < wanted {
        let io = CuttingIo::new();
        let workload = run_workload(&io, seed, &rt);
        acknowledged += workload.acknowledged.len() as u64;
        rolls += workload.rolls;
        starts_moved += workload.starts.iter().filter(|s| s.log_start > 0).count() as u64;
        let taken = std::mem::take(&mut *io.images.lock().unwrap());
        cuts += io.operations() + 1;
        images += taken.len() as u64;
        for image in &taken {
            verified += check_image(&image.io, image.last_cut, &workload, &rt);
        }
        seed += 1;
    }
    assert!(
        rolls > 0 && starts_moved > 0,
        "the workload rolls and deletes"
    );
    eprintln!(
        "power loss: {cuts} cut points over {} workloads ({images} distinct crash images), \
         {acknowledged} appends acknowledged, {verified} acknowledged-append checks, 0 lost, \
         {rolls} segment rolls, {starts_moved} log start moves, in {:?}",
        seed - 1,
        started.elapsed()
    );
}
