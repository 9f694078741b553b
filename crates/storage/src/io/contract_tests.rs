//! The same contract, run against every backend.

use std::path::Path;
use std::sync::Arc;

use super::*;

fn backends() -> Vec<(&'static str, Arc<dyn Io>, tempfile::TempDir)> {
    let dir = || tempfile::tempdir().expect("tempdir");
    vec![
        ("file", Arc::new(FileIo) as Arc<dyn Io>, dir()),
        ("memory", Arc::new(MemoryIo::new()), dir()),
        (
            "faulty",
            Arc::new(FaultyIo::new(Arc::new(MemoryIo::new()), FaultPlan::new())),
            dir(),
        ),
    ]
}

#[test]
fn write_read_len_truncate_round_trip() {
    for (name, io, root) in backends() {
        let dir = root.path().join("a");
        io.create_dir_all(&dir).unwrap();
        let path = dir.join("f.log");
        let file = io.open(&path, true).unwrap();
        file.write_at(b"hello world", 0).unwrap();
        file.write_at(b"HELLO", 0).unwrap();
        file.sync_data().unwrap();
        let mut buf = [0u8; 11];
        file.read_exact_at(&mut buf, 0).unwrap();
        assert_eq!(&buf, b"HELLO world", "{name}");
        assert_eq!(file.len().unwrap(), 11, "{name}");
        file.set_len(5).unwrap();
        assert_eq!(file.len().unwrap(), 5, "{name}");
        let mut short = [0u8; 8];
        assert_eq!(file.read_at(&mut short, 0).unwrap(), 5, "{name}");
        assert!(file.read_exact_at(&mut short, 0).is_err(), "{name}");
        io.sync_dir(&dir).unwrap();
        assert_eq!(
            io.list_dir(&dir).unwrap(),
            vec!["f.log".to_string()],
            "{name}"
        );
    }
}

#[test]
fn rename_remove_and_exists() {
    for (name, io, root) in backends() {
        let dir = root.path().join("b");
        io.create_dir_all(&dir).unwrap();
        let from = dir.join("x.tmp");
        let to = dir.join("x.index");
        io.open(&from, true).unwrap().write_at(b"1", 0).unwrap();
        io.rename(&from, &to).unwrap();
        assert!(!io.exists(&from), "{name}");
        assert!(io.exists(&to), "{name}");
        assert!(io.open(&from, false).is_err(), "{name}");
        io.remove_file(&to).unwrap();
        assert!(!io.exists(&to), "{name}");
        io.remove_dir_all(&dir).unwrap();
        assert!(!io.exists(&dir), "{name}");
        assert!(!io.exists(Path::new(&dir.join("x.index"))), "{name}");
    }
}

#[test]
fn memory_crash_keeps_only_synced_bytes_and_synced_entries() {
    let io = MemoryIo::new();
    let dir = Path::new("/data");
    io.create_dir_all(dir).unwrap();
    let kept = io.open(&dir.join("kept"), true).unwrap();
    io.sync_dir(dir).unwrap();
    let lost = io.open(&dir.join("lost"), true).unwrap();
    kept.write_at(b"durable", 0).unwrap();
    kept.sync_data().unwrap();
    kept.write_at(b"-volatile", 7).unwrap();
    lost.write_at(b"x", 0).unwrap();
    lost.sync_data().unwrap();
    io.crash();
    assert!(!io.exists(&dir.join("lost")));
    let kept = io.open(&dir.join("kept"), false).unwrap();
    assert_eq!(kept.len().unwrap(), 7);
}

#[test]
fn faulty_fails_the_chosen_operation_only() {
    let plan = FaultPlan::new();
    let io = FaultyIo::new(Arc::new(MemoryIo::new()), plan.clone());
    let dir = Path::new("/d");
    io.create_dir_all(dir).unwrap();
    let file = io.open(&dir.join("f"), true).unwrap();
    plan.fail_write(2);
    file.write_at(b"a", 0).unwrap();
    assert!(file.write_at(b"b", 1).is_err());
    file.write_at(b"c", 1).unwrap();
    plan.fail_sync(1);
    plan.as_disk_full(true);
    let error = file.sync_data().unwrap_err();
    assert_eq!(error.raw_os_error(), Some(libc::ENOSPC));
    file.sync_data().unwrap();
    plan.sticky(true);
    plan.fail_sync(1);
    assert!(file.sync_data().is_err());
    assert!(
        file.write_at(b"d", 2).is_err(),
        "sticky failure covers writes too"
    );
}

/// Syncs `file` on another thread and checks the fsync waits while `plan` holds it and
/// completes once released.
fn assert_sync_held_until_released(plan: &FaultPlan, file: Arc<dyn IoFile>) {
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let syncing = std::thread::spawn(move || {
        let result = file.sync_data();
        done_tx.send(()).unwrap();
        result
    });
    assert!(
        done_rx
            .recv_timeout(std::time::Duration::from_millis(100))
            .is_err(),
        "a held fsync must not complete"
    );
    plan.hold_syncs(false);
    done_rx
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("a released fsync completes");
    syncing.join().unwrap().unwrap();
}

#[test]
fn faulty_holds_fsyncs_until_released() {
    let plan = FaultPlan::new();
    let io = FaultyIo::new(Arc::new(MemoryIo::new()), plan.clone());
    io.create_dir_all(Path::new("/d")).unwrap();
    let file = io.open(Path::new("/d/f"), true).unwrap();
    plan.hold_syncs(true);
    file.write_at(b"a", 0).unwrap();
    assert_sync_held_until_released(&plan, file);
}

#[test]
fn faulty_holds_only_the_fsyncs_under_the_chosen_directory() {
    let plan = FaultPlan::new();
    let io = FaultyIo::new(Arc::new(MemoryIo::new()), plan.clone());
    io.create_dir_all(Path::new("/d/slow")).unwrap();
    io.create_dir_all(Path::new("/d/fast")).unwrap();
    let slow = io.open(Path::new("/d/slow/f"), true).unwrap();
    let fast = io.open(Path::new("/d/fast/f"), true).unwrap();
    plan.hold_syncs_under(Path::new("/d/slow"));
    fast.sync_data()
        .expect("a file outside the held directory syncs at once");
    assert_sync_held_until_released(&plan, slow);
}

#[test]
fn directories_are_created_level_by_level_and_removed_idempotently() {
    for (name, io, root) in backends() {
        let deep = root.path().join("x/y/z");
        io.create_dir_all(&deep).unwrap();
        assert!(io.exists(&deep), "{name}");
        io.create_dir_all(&deep).unwrap();
        let error = io.create_dir(&deep).unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::AlreadyExists, "{name}");
        let orphan = root.path().join("none/child");
        let error = io.create_dir(&orphan).unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::NotFound, "{name}");
        assert_eq!(
            io.list_dir(&root.path().join("x")).unwrap(),
            vec!["y".to_string()],
            "{name}"
        );
        io.remove_dir_all(&root.path().join("x")).unwrap();
        assert!(!io.exists(&deep), "{name}");
        io.remove_dir_all(&root.path().join("x"))
            .expect("removing what is gone is not an error");
    }
}

#[test]
fn memory_crash_keeps_directories_made_by_create_dir_all() {
    let io = MemoryIo::new();
    let partition = Path::new("/data/streams/orders/0");
    io.create_dir_all(partition).unwrap();
    let file = io.open(&partition.join("f"), true).unwrap();
    file.write_at(b"acknowledged", 0).unwrap();
    file.sync_data().unwrap();
    io.sync_dir(partition).unwrap();
    io.crash();
    assert_eq!(
        io.open(&partition.join("f"), false).unwrap().len().unwrap(),
        12
    );
}

#[test]
fn memory_crash_drops_a_directory_whose_parent_was_never_synced() {
    let io = MemoryIo::new();
    io.create_dir_all(Path::new("/data")).unwrap();
    // The primitive alone: the entry of `new` lives only in the page cache.
    io.create_dir(Path::new("/data/new")).unwrap();
    let file = io.open(Path::new("/data/new/f"), true).unwrap();
    file.write_at(b"synced bytes", 0).unwrap();
    file.sync_data().unwrap();
    io.sync_dir(Path::new("/data/new")).unwrap();
    io.crash();
    assert!(io.exists(Path::new("/data")));
    assert!(!io.exists(Path::new("/data/new")));
    assert!(!io.exists(Path::new("/data/new/f")), "gone with its folder");
}

#[test]
fn memory_crash_undoes_unsynced_renames_and_removals() {
    let io = MemoryIo::new();
    let dir = Path::new("/d");
    io.create_dir_all(dir).unwrap();
    let old = io.open(&dir.join("x.index"), true).unwrap();
    old.write_at(b"old", 0).unwrap();
    old.sync_data().unwrap();
    let doomed = io.open(&dir.join("doomed"), true).unwrap();
    doomed.sync_data().unwrap();
    io.sync_dir(dir).unwrap();
    let new = io.open(&dir.join("x.tmp"), true).unwrap();
    new.write_at(b"new!", 0).unwrap();
    new.sync_data().unwrap();
    io.rename(&dir.join("x.tmp"), &dir.join("x.index")).unwrap();
    io.remove_file(&dir.join("doomed")).unwrap();
    let image = io.crash_image();
    let index = image.open(&dir.join("x.index"), false).unwrap();
    assert_eq!(
        index.len().unwrap(),
        3,
        "the old file is back under the name"
    );
    assert!(image.exists(&dir.join("doomed")), "the removal is undone");
    assert!(
        !image.exists(&dir.join("x.tmp")),
        "the tmp entry was never synced"
    );
    io.sync_dir(dir).unwrap();
    io.crash();
    let index = io.open(&dir.join("x.index"), false).unwrap();
    assert_eq!(index.len().unwrap(), 4, "synced: the rename holds");
    assert!(!io.exists(&dir.join("doomed")));
}

#[test]
fn memory_remove_dir_all_is_durable_and_remove_tree_alone_is_not() {
    let io = MemoryIo::new();
    // Different parents: syncing one folder makes every removal in it durable.
    for name in ["/a/kept", "/b/gone"] {
        let dir = Path::new(name);
        io.create_dir_all(dir).unwrap();
        io.open(&dir.join("f"), true).unwrap().sync_data().unwrap();
        io.sync_dir(dir).unwrap();
    }
    io.remove_tree(Path::new("/a/kept")).unwrap();
    io.remove_dir_all(Path::new("/b/gone")).unwrap();
    assert!(!io.exists(Path::new("/a/kept")));
    io.crash();
    assert!(
        io.exists(Path::new("/a/kept/f")),
        "an unsynced removal is undone"
    );
    assert!(!io.exists(Path::new("/b/gone")));
}
