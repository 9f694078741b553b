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

#[test]
fn faulty_holds_fsyncs_until_released() {
    let plan = FaultPlan::new();
    let io = FaultyIo::new(Arc::new(MemoryIo::new()), plan.clone());
    io.create_dir_all(Path::new("/d")).unwrap();
    let file = io.open(Path::new("/d/f"), true).unwrap();
    plan.hold_syncs(true);
    file.write_at(b"a", 0).unwrap();
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
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let syncing = std::thread::spawn(move || {
        let result = slow.sync_data();
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
