//! The state store on a real filesystem that fills up (a tmpfs; skipped without root).

use std::path::Path;
use std::sync::Arc;

use super::*;

/// Writes `path` until the filesystem is full.
fn fill_disk(path: &Path) {
    use std::io::Write;
    let mut file = std::fs::File::create(path).unwrap();
    let chunk = vec![7u8; 64 * 1024];
    while file.write_all(&chunk).is_ok() {}
    let _ = file.sync_all();
}

fn put_until_full(store: &StateStore) -> StorageError {
    for index in 0..100_000 {
        if let Err(error) = store.put("t", &format!("k{index:06}"), &[1u8; 4096]) {
            return error;
        }
    }
    panic!("the disk never filled");
}

#[test]
fn a_store_that_hit_a_full_disk_works_again_once_space_returns() {
    let dir = tempfile::tempdir().unwrap();
    let Some(mount) = crate::tmpfs::TmpfsMount::new(dir.path(), 4 * 1024 * 1024) else {
        return;
    };
    let store = StateStore::open(&mount.path().join("state.redb")).unwrap();
    store.put("t", "kept", b"before").unwrap();
    fill_disk(&mount.path().join("filler"));
    let error = put_until_full(&store);
    assert_eq!(error.code(), omnibus_types::ErrorCode::DiskFull, "{error}");
    assert!(store.failure().is_some(), "the failure is reported");
    // A put may still land after a reopen (its journal record is durable, and redb holds it
    // unflushed), but the store soon refuses again while the disk stays full.
    let again = put_until_full(&store);
    assert_eq!(again.code(), omnibus_types::ErrorCode::DiskFull, "{again}");

    std::fs::remove_file(mount.path().join("filler")).unwrap();
    // Writes are refused for a moment after a checkpoint the disk refused; then the next
    // one retries it, and works.
    std::thread::sleep(CHECKPOINT_RETRY);
    store.put("t", "after", b"space returned").unwrap();
    assert_eq!(store.failure(), None);
    assert_eq!(
        store.get("t", "kept").unwrap().as_deref(),
        Some(&b"before"[..])
    );
    assert_eq!(
        store.get("t", "after").unwrap().as_deref(),
        Some(&b"space returned"[..])
    );
}

#[test]
fn a_delete_on_a_full_disk_succeeds_and_puts_never_spend_the_reserve() {
    let dir = tempfile::tempdir().unwrap();
    let Some(mount) = crate::tmpfs::TmpfsMount::new(dir.path(), 4 * 1024 * 1024) else {
        return;
    };
    let reserve = Arc::new(DiskReserve::new(mount.path(), 512 * 1024));
    reserve.restore().unwrap();
    let store = StateStore::open(&mount.path().join("state.redb")).unwrap();
    store.set_disk_reserve(reserve.clone());
    for index in 0..64 {
        store
            .put("t", &format!("k{index:06}"), &[2u8; 1024])
            .unwrap();
    }
    fill_disk(&mount.path().join("filler"));
    // Every page the store can get is used: nothing is left for copy-on-write.
    let _ = put_until_full(&store);
    assert!(reserve.is_in_place(), "a put does not spend the reserve");
    store
        .write(&[StateWrite::DeletePrefix {
            table: "t",
            prefix: "k".into(),
        }])
        .unwrap();
    // Whether the delete needed the reserve depends on the free pages redb had left.
    assert!(store.scan_prefix("t", "k").unwrap().is_empty());
}
