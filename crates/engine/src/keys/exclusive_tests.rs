//! Exclusive holds (`Keyspace::exclusive`): what scripts and transactions rely on.

use std::time::Duration;

use bytes::Bytes;

use super::tests::reopen;
use super::*;

fn b(text: &str) -> Bytes {
    Bytes::copy_from_slice(text.as_bytes())
}

fn set(keys: &Keyspace, key: &str, value: &str) -> Commit {
    keys.set(b(key), b(value), SetOptions::default())
        .expect("set")
        .split()
        .1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_thread_sees_a_hold_whole_never_half_of_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_state, keys) = reopen(dir.path()).await;
    set(&keys, "a", "0").wait().await.unwrap();
    set(&keys, "b", "0").wait().await.unwrap();

    let (started, holding) = std::sync::mpsc::channel();
    let holder = {
        let keys = keys.clone();
        std::thread::spawn(move || {
            let held = keys.exclusive();
            let first = set(&keys, "a", "1");
            started.send(()).unwrap();
            // Long enough for the reader below to try in the middle of the hold.
            std::thread::sleep(Duration::from_millis(200));
            let second = set(&keys, "b", "1");
            drop(held);
            (first, second)
        })
    };
    holding.recv().unwrap();
    let reader = {
        let keys = keys.clone();
        std::thread::spawn(move || keys.get_many(&[b("a"), b("b")]))
    };
    let seen = reader.join().unwrap();
    assert_eq!(
        seen,
        vec![Some(b("1")), Some(b("1"))],
        "read in the middle of a hold"
    );
    let (first, second) = holder.join().unwrap();
    first.wait().await.unwrap();
    second.wait().await.unwrap();
}

/// Runs `work` holding `keys` on a thread of its own until `release` gets a message (a hold
/// is never kept across an `.await`: the runtime's own threads may be waiting for it).
fn hold_on_a_thread<T: Send + 'static>(
    keys: &Arc<Keyspace>,
    work: impl FnOnce(&Keyspace) -> T + Send + 'static,
) -> (T, std::sync::mpsc::Sender<()>, std::thread::JoinHandle<()>) {
    let (made, outcome) = std::sync::mpsc::channel();
    let (release, released) = std::sync::mpsc::channel::<()>();
    let keys = keys.clone();
    let thread = std::thread::spawn(move || {
        let held = keys.exclusive();
        made.send(work(&keys)).unwrap();
        released.recv().unwrap();
        drop(held);
    });
    (outcome.recv().unwrap(), release, thread)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holds_changes_become_durable_together_when_it_ends() {
    let dir = tempfile::tempdir().expect("temp dir");
    {
        let (_state, keys) = reopen(dir.path()).await;
        let ((x, y, seen), release, holder) = hold_on_a_thread(&keys, |keys| {
            let x = set(keys, "x", "1");
            let y = keys
                .push(&b("list"), vec![b("p"), b("q")], End::Right, false)
                .expect("push")
                .split()
                .1;
            // The holder reads its own changes at once.
            (x, y, keys.get(b"x"))
        });
        assert_eq!(seen, Some(b("1")));
        let x = tokio::spawn(x.wait());
        std::thread::sleep(Duration::from_millis(150));
        assert!(
            !x.is_finished(),
            "a change was durable before its hold ended"
        );
        release.send(()).unwrap();
        holder.join().unwrap();
        x.await.unwrap().unwrap();
        y.wait().await.unwrap();
    }
    let (_state, keys) = reopen(dir.path()).await;
    assert_eq!(keys.get(b"x"), Some(b("1")));
    assert_eq!(keys.list_len(b"list").unwrap(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hold_nests_on_its_own_thread_and_ends_with_the_outer_one() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_state, keys) = reopen(dir.path()).await;
    let (change, release, holder) = hold_on_a_thread(&keys, |keys| {
        let inner = keys.exclusive();
        let change = set(keys, "k", "v");
        drop(inner);
        change
    });
    let waiting = tokio::spawn(change.wait());
    // Another thread is still kept out, and nothing was committed.
    let other = {
        let keys = keys.clone();
        std::thread::spawn(move || keys.get(b"k"))
    };
    std::thread::sleep(Duration::from_millis(150));
    assert!(
        !waiting.is_finished(),
        "the inner hold's end committed early"
    );
    assert!(
        !other.is_finished(),
        "another thread read during the outer hold"
    );
    release.send(()).unwrap();
    holder.join().unwrap();
    assert_eq!(other.join().unwrap(), Some(b("v")));
    waiting.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweep_skips_a_held_keyspace_instead_of_waiting() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_state, keys) = reopen(dir.path()).await;
    let past = SetOptions {
        expiry: SetExpiry::At(now_ms() + 20),
        ..SetOptions::default()
    };
    keys.set(b("gone"), b("v"), past)
        .unwrap()
        .wait()
        .await
        .unwrap();
    std::thread::sleep(Duration::from_millis(30));
    let ((), release, holder) = hold_on_a_thread(&keys, |_| ());
    // On the broker's shared runtime a sweep that waited would stall other doors' tasks.
    assert_eq!(keys.sweep(), 0, "swept a held keyspace");
    release.send(()).unwrap();
    holder.join().unwrap();
    // This sweep or the background one takes it now.
    keys.sweep();
    assert_eq!(keys.expiring(), 0);
}

/// A door's command waits for a hold without blocking its thread: the holder here goes on
/// only once a task on that same one-thread runtime has run (as a script waits for a stream
/// writer that may share a thread with clients waiting for the script).
#[test]
fn entering_waits_for_a_hold_without_blocking_the_thread() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().expect("temp dir");
    let (_state, keys) = runtime.block_on(reopen(dir.path()));
    let (needed, needs) = std::sync::mpsc::channel::<()>();
    let (release, released) = std::sync::mpsc::channel::<()>();
    let holder = {
        let keys = keys.clone();
        std::thread::spawn(move || {
            let held = keys.exclusive();
            let first = set(&keys, "k", "held");
            release.send(()).unwrap();
            // The hold needs the runtime's thread before it ends.
            needs
                .recv_timeout(Duration::from_secs(10))
                .expect("the runtime's thread was blocked");
            drop(held);
            first
        })
    };
    released.recv().unwrap();
    let seen = runtime.block_on(async {
        let reader = {
            let keys = keys.clone();
            tokio::spawn(async move {
                let _entered = keys.enter().await;
                keys.get(b"k")
            })
        };
        // Runs while the reader waits at the gate.
        tokio::spawn(async move { needed.send(()).unwrap() })
            .await
            .unwrap();
        reader.await.unwrap()
    });
    assert_eq!(seen, Some(b("held")), "read inside the hold");
    let first = holder.join().unwrap();
    runtime.block_on(first.wait()).unwrap();
}

/// A hold asked for from a door waits for the commands in the gate and goes before the
/// commands that come after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hold_from_a_door_gets_in_between_commands() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_state, keys) = reopen(dir.path()).await;
    let busy = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let mut readers = Vec::new();
    for _ in 0..2 {
        let (keys, busy) = (keys.clone(), busy.clone());
        readers.push(tokio::spawn(async move {
            let mut entries = 0u64;
            while busy.load(std::sync::atomic::Ordering::Relaxed) {
                {
                    let _entered = keys.enter().await;
                    let _ = keys.get(b"k");
                    entries += 1;
                }
                // As a door's session awaits its socket between commands (a task that never
                // yields would keep the keyspace's own tasks from running).
                tokio::task::yield_now().await;
            }
            entries
        }));
    }
    for round in 0..50 {
        let held = tokio::time::timeout(Duration::from_secs(10), keys.exclusive_async())
            .await
            .expect("a hold never got in between the commands");
        let commit = set(&keys, "k", &round.to_string());
        drop(held);
        commit.wait().await.unwrap();
    }
    busy.store(false, std::sync::atomic::Ordering::Relaxed);
    for reader in readers {
        assert!(reader.await.unwrap() > 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_client_is_served_from_what_a_hold_leaves() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_state, keys) = reopen(dir.path()).await;
    let pop = ListRequest::Pop {
        end: End::Left,
        count: 1,
    };
    let Taken::Blocked(first) = keys.take_or_block(vec![b("l")], pop.clone()).unwrap() else {
        panic!("the list is empty: the client waits");
    };
    // As MULTI; LPUSH l a; DEL l; LPUSH l b; EXEC: the client is served what is there at
    // the end, not the element pushed first.
    {
        let _hold = keys.exclusive();
        let _ = keys.push(&b("l"), vec![b("a")], End::Left, false).unwrap();
        let _ = keys.delete(&[b("l")]).unwrap();
        let _ = keys.push(&b("l"), vec![b("b")], End::Left, false).unwrap();
    }
    let took = first.wait(Some(Duration::from_secs(5))).await.unwrap();
    assert_eq!(took.expect("served").items, vec![b("b")]);
    assert_eq!(keys.list_len(b"l").unwrap(), 0);

    // A hold that leaves the key a string serves nobody; the next push does.
    let Taken::Blocked(second) = keys.take_or_block(vec![b("l")], pop).unwrap() else {
        panic!("the list is empty: the client waits");
    };
    {
        let _hold = keys.exclusive();
        let _ = keys.push(&b("l"), vec![b("a")], End::Left, false).unwrap();
        let _ = keys.delete(&[b("l")]).unwrap();
        let _ = set(&keys, "l", "text");
    }
    assert_eq!(keys.blocked_clients(), 1);
    keys.delete(&[b("l")]).unwrap().wait().await.unwrap();
    let _ = keys.push(&b("l"), vec![b("c")], End::Left, false).unwrap();
    let took = second.wait(Some(Duration::from_secs(5))).await.unwrap();
    assert_eq!(took.expect("served").items, vec![b("c")]);
}
