//! An in-memory backend that remembers what was made durable, so a test can "crash" it and see
//! exactly what a real disk would have kept: file contents up to their last `sync_data`, and
//! directory entries (files and directories created, renamed or removed) as of the last
//! `sync_dir` of the directory holding them.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use super::{is_root, parent_of, Io, IoFile};

#[derive(Default)]
struct FileState {
    data: Vec<u8>,
    durable: Vec<u8>,
    /// Lowest byte changed since the last sync; syncing copies only from here, so a test
    /// that syncs after every small append stays linear.
    dirty_from: usize,
}

#[derive(Default)]
struct MemFile {
    state: Mutex<FileState>,
}

impl MemFile {
    fn lock(&self) -> MutexGuard<'_, FileState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Two views of the directory tree: what a reader sees now, and the directory entries as
/// the disk holds them. Only `sync_dir` copies a directory's entries from the first view to
/// the second, so a created, renamed or removed entry is undone by a crash until its
/// directory is synced — for files and directories alike.
#[derive(Default, Clone)]
struct Tree {
    live_dirs: BTreeSet<PathBuf>,
    live_files: BTreeMap<PathBuf, Arc<MemFile>>,
    durable_dirs: BTreeSet<PathBuf>,
    durable_files: BTreeMap<PathBuf, Arc<MemFile>>,
}

impl Tree {
    fn dir_exists(&self, path: &Path) -> bool {
        is_root(path) || self.live_dirs.contains(path)
    }

    /// The tree a power loss would leave: the durable entries whose every ancestor
    /// survives, each file holding its last synced bytes. A file linked under two names
    /// (renamed between two syncs of different directories) stays one file.
    fn crash_image(&self) -> Tree {
        let mut image = Tree::default();
        // Sorted order visits a directory before anything under it.
        for dir in &self.durable_dirs {
            if is_root(&parent_of(dir)) || image.live_dirs.contains(&parent_of(dir)) {
                image.live_dirs.insert(dir.clone());
            }
        }
        let mut fresh: Vec<(Arc<MemFile>, Arc<MemFile>)> = Vec::new();
        for (path, file) in &self.durable_files {
            let parent = parent_of(path);
            if !is_root(&parent) && !image.live_dirs.contains(&parent) {
                continue;
            }
            let copy = match fresh.iter().find(|(old, _)| Arc::ptr_eq(old, file)) {
                Some((_, copy)) => copy.clone(),
                None => {
                    let durable = file.lock().durable.clone();
                    let copy = Arc::new(MemFile {
                        state: Mutex::new(FileState {
                            dirty_from: durable.len(),
                            data: durable.clone(),
                            durable,
                        }),
                    });
                    fresh.push((file.clone(), copy.clone()));
                    copy
                }
            };
            image.live_files.insert(path.clone(), copy);
        }
        image.durable_dirs = image.live_dirs.clone();
        image.durable_files = image.live_files.clone();
        image
    }
}

/// Cloning shares the same tree, so a test can keep a handle to crash it.
#[derive(Clone, Default)]
pub struct MemoryIo {
    tree: Arc<Mutex<Tree>>,
}

impl MemoryIo {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Tree> {
        self.tree
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Simulates power loss: every file falls back to its last synced contents, and every
    /// directory entry to its state at the last `sync_dir` of its directory (an unsynced
    /// new file or directory disappears with everything under it; an unsynced rename or
    /// removal is undone). Handles opened before the crash must not be used afterwards
    /// (open the log again).
    pub fn crash(&self) {
        let mut tree = self.lock();
        *tree = tree.crash_image();
    }

    /// A new, independent backend holding what a power loss right now would leave, while
    /// this one carries on: a crash image to reopen without stopping the workload.
    pub fn crash_image(&self) -> MemoryIo {
        let image = self.lock().crash_image();
        MemoryIo {
            tree: Arc::new(Mutex::new(image)),
        }
    }

    /// Overwrites bytes of a file directly (durably), to test recovery from corruption.
    pub fn corrupt(&self, path: &Path, offset: usize, bytes: &[u8]) -> io::Result<()> {
        let tree = self.lock();
        let file = tree.live_files.get(path).ok_or_else(not_found)?;
        let mut state = file.lock();
        for (index, byte) in bytes.iter().enumerate() {
            if let Some(slot) = state.data.get_mut(offset + index) {
                *slot = *byte;
            }
            if let Some(slot) = state.durable.get_mut(offset + index) {
                *slot = *byte;
            }
        }
        Ok(())
    }
}

fn not_found() -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, "no such file or directory")
}

impl Io for MemoryIo {
    fn create_dir(&self, path: &Path) -> io::Result<()> {
        let mut tree = self.lock();
        if tree.dir_exists(path) || tree.live_files.contains_key(path) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "the entry already exists",
            ));
        }
        if !tree.dir_exists(&parent_of(path)) {
            return Err(not_found());
        }
        tree.live_dirs.insert(path.to_path_buf());
        Ok(())
    }

    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        let tree = self.lock();
        if !tree.dir_exists(path) {
            return Err(not_found());
        }
        let mut names: Vec<String> = tree
            .live_files
            .keys()
            .chain(tree.live_dirs.iter())
            .filter(|candidate| candidate.parent() == Some(path))
            .filter_map(|candidate| candidate.file_name())
            .map(|name| name.to_string_lossy().into_owned())
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn IoFile>> {
        let mut tree = self.lock();
        if let Some(file) = tree.live_files.get(path) {
            return Ok(file.clone());
        }
        if !create || !tree.dir_exists(&parent_of(path)) {
            return Err(not_found());
        }
        let file = Arc::new(MemFile::default());
        tree.live_files.insert(path.to_path_buf(), file.clone());
        Ok(file)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.lock()
            .live_files
            .remove(path)
            .map(|_| ())
            .ok_or_else(not_found)
    }

    fn remove_tree(&self, path: &Path) -> io::Result<()> {
        let mut tree = self.lock();
        if !tree.live_dirs.contains(path) {
            return Err(not_found());
        }
        tree.live_files
            .retain(|candidate, _| !candidate.starts_with(path));
        tree.live_dirs
            .retain(|candidate| !candidate.starts_with(path));
        Ok(())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut tree = self.lock();
        if !tree.dir_exists(&parent_of(to)) {
            return Err(not_found());
        }
        let file = tree.live_files.remove(from).ok_or_else(not_found)?;
        // Durable only once the directories are synced: until then a crash brings back
        // the old name and whatever `to` named before (`crash_image`).
        tree.live_files.insert(to.to_path_buf(), file);
        Ok(())
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        let mut tree = self.lock();
        if !tree.dir_exists(path) {
            return Err(not_found());
        }
        let inside = |candidate: &Path| parent_of(candidate) == path;
        let Tree {
            live_dirs,
            live_files,
            durable_dirs,
            durable_files,
        } = &mut *tree;
        durable_dirs.retain(|candidate| !inside(candidate));
        durable_dirs.extend(live_dirs.iter().filter(|c| inside(c)).cloned());
        durable_files.retain(|candidate, _| !inside(candidate));
        durable_files.extend(
            live_files
                .iter()
                .filter(|(c, _)| inside(c))
                .map(|(c, f)| (c.clone(), f.clone())),
        );
        Ok(())
    }

    fn exists(&self, path: &Path) -> bool {
        let tree = self.lock();
        tree.dir_exists(path) || tree.live_files.contains_key(path)
    }
}

impl IoFile for MemFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let state = self.lock();
        let start = (offset as usize).min(state.data.len());
        let end = (start + buf.len()).min(state.data.len());
        buf[..end - start].copy_from_slice(&state.data[start..end]);
        Ok(end - start)
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        let mut state = self.lock();
        let end = offset as usize + buf.len();
        if state.data.len() < end {
            state.data.resize(end, 0);
        }
        state.data[offset as usize..end].copy_from_slice(buf);
        state.dirty_from = state.dirty_from.min(offset as usize);
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        let mut state = self.lock();
        let from = state
            .dirty_from
            .min(state.data.len())
            .min(state.durable.len());
        state.durable.truncate(from);
        let tail = state.data[from..].to_vec();
        state.durable.extend_from_slice(&tail);
        state.dirty_from = state.data.len();
        Ok(())
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.lock().data.len() as u64)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut state = self.lock();
        state.data.resize(len as usize, 0);
        state.dirty_from = state.dirty_from.min(len as usize);
        Ok(())
    }
}
