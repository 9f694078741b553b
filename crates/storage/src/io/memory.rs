//! An in-memory backend that remembers what was made durable, so a test can "crash" it and see
//! exactly what a real disk would have kept: file contents up to their last `sync_data`, and
//! only files whose directory entry was synced after creation.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use super::{Io, IoFile};

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

struct Entry {
    file: Arc<MemFile>,
    /// Whether the directory entry itself survives a crash.
    entry_durable: bool,
}

#[derive(Default)]
struct Tree {
    dirs: BTreeMap<PathBuf, ()>,
    files: HashMap<PathBuf, Entry>,
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

    /// Simulates power loss: every file falls back to its last synced contents, and files
    /// whose creation was never made durable by `sync_dir` disappear. Handles opened before
    /// the crash must not be used afterwards (open the log again).
    pub fn crash(&self) {
        let mut tree = self.lock();
        tree.files.retain(|_, entry| entry.entry_durable);
        let mut fresh = HashMap::new();
        for (path, entry) in tree.files.drain() {
            let durable = entry.file.lock().durable.clone();
            let file = Arc::new(MemFile {
                state: Mutex::new(FileState {
                    dirty_from: durable.len(),
                    data: durable.clone(),
                    durable,
                }),
            });
            fresh.insert(
                path,
                Entry {
                    file,
                    entry_durable: true,
                },
            );
        }
        tree.files = fresh;
    }

    /// Overwrites bytes of a file directly (durably), to test recovery from corruption.
    pub fn corrupt(&self, path: &Path, offset: usize, bytes: &[u8]) -> io::Result<()> {
        let tree = self.lock();
        let entry = tree.files.get(path).ok_or_else(not_found)?;
        let mut state = entry.file.lock();
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
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut tree = self.lock();
        for ancestor in path.ancestors() {
            tree.dirs.insert(ancestor.to_path_buf(), ());
        }
        Ok(())
    }

    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        let tree = self.lock();
        if !tree.dirs.contains_key(path) {
            return Err(not_found());
        }
        let mut names: Vec<String> = tree
            .files
            .keys()
            .chain(tree.dirs.keys())
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
        if let Some(entry) = tree.files.get(path) {
            return Ok(entry.file.clone());
        }
        if !create {
            return Err(not_found());
        }
        let parent = path.parent().unwrap_or(Path::new(""));
        if !tree.dirs.contains_key(parent) {
            return Err(not_found());
        }
        let file = Arc::new(MemFile::default());
        tree.files.insert(
            path.to_path_buf(),
            Entry {
                file: file.clone(),
                entry_durable: false,
            },
        );
        Ok(file)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.lock()
            .files
            .remove(path)
            .map(|_| ())
            .ok_or_else(not_found)
    }

    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut tree = self.lock();
        tree.files
            .retain(|candidate, _| !candidate.starts_with(path));
        let dirs: Vec<PathBuf> = tree
            .dirs
            .keys()
            .filter(|candidate| candidate.starts_with(path))
            .cloned()
            .collect();
        for dir in dirs {
            tree.dirs.remove(&dir);
        }
        Ok(())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut tree = self.lock();
        let entry = tree.files.remove(from).ok_or_else(not_found)?;
        // A rename is modelled as durable at once: the log only renames files whose contents
        // were synced first, and the test of interest is the torn data, not the rename.
        tree.files.insert(
            to.to_path_buf(),
            Entry {
                file: entry.file,
                entry_durable: true,
            },
        );
        Ok(())
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        let mut tree = self.lock();
        for (candidate, entry) in tree.files.iter_mut() {
            if candidate.parent() == Some(path) {
                entry.entry_durable = true;
            }
        }
        Ok(())
    }

    fn exists(&self, path: &Path) -> bool {
        let tree = self.lock();
        tree.files.contains_key(path) || tree.dirs.contains_key(path)
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
