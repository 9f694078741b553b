//! Clients blocked on list keys (BLPOP, BRPOP, BLMPOP, BLMOVE) and on sorted-set keys
//! (BZPOPMIN, BZPOPMAX, BZMPOP): Redis's rules. A client
//! that finds every key empty waits on all of them, in a line per key; a push to one of them
//! serves the line's longest-waiting client at once, under the same lock as the push, so no
//! other client can take the element first. A client served through one key leaves every
//! line. One that gives up (its timeout, its connection gone) leaves them all too; if an
//! element reached it in that moment, the element is put back where it came from instead of
//! being lost.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::oneshot;

use super::entry::{Entry, Inner, KeyKind, List, SortedSet, Value};
use super::lists::{pop_many, push_one, End, Popped};
use super::zsets::Scored;
use super::{stored, Commit, Durable, Keyspace};
use crate::error::{EngineError, Result};

/// What a blocked client asks for once an element (or a member) is there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListRequest {
    /// Up to `count` elements from `end` of the first key that has some.
    Pop { end: End, count: usize },
    /// One element from `from` of the key, pushed at `to` of `destination` (BLMOVE).
    Move {
        destination: Bytes,
        from: End,
        to: End,
    },
    /// Up to `count` members with the lowest scores (`highest`: the highest) of the first
    /// sorted set that has some (BZPOPMIN, BZPOPMAX, BZMPOP).
    ZPop { highest: bool, count: usize },
}

impl ListRequest {
    /// Whether `value` has what this request takes.
    fn ready(&self, value: Option<&Value>) -> bool {
        match (self, value) {
            (ListRequest::Pop { .. } | ListRequest::Move { .. }, Some(Value::List(list))) => {
                !list.items.is_empty()
            }
            (ListRequest::ZPop { .. }, Some(Value::SortedSet(set))) => !set.scores.is_empty(),
            _ => false,
        }
    }
}

/// What a blocking command took: the key, the elements (a list's) or members (a sorted
/// set's) in the order taken, and for a sorted set each member's score (empty for a list).
#[derive(Debug, Clone, PartialEq)]
pub struct Took {
    pub key: Bytes,
    pub items: Vec<Bytes>,
    pub scores: Vec<f64>,
}

impl Took {
    fn list((key, items): Popped) -> Took {
        Took {
            key,
            items,
            scores: Vec::new(),
        }
    }

    pub(super) fn scored(key: Bytes, scored: Vec<Scored>) -> Took {
        let (items, scores) = scored.into_iter().unzip();
        Took { key, items, scores }
    }

    /// The key and the elements, for a list.
    pub fn into_popped(self) -> Popped {
        (self.key, self.items)
    }
}

/// What a blocked client received; durable once [`Served::wait`] resolves.
pub struct Served {
    took: Took,
    commit: Commit,
}

impl Served {
    pub async fn wait(self) -> Result<Took> {
        self.commit.wait().await?;
        Ok(self.took)
    }
}

/// One blocked client, in the line of each of its keys.
pub(super) struct Waiter {
    id: u64,
    keys: Vec<Bytes>,
    request: ListRequest,
    /// Taken by whoever ends the wait first: a push serving it, or the client giving up.
    sender: Mutex<Option<oneshot::Sender<Result<Served>>>>,
}

static WAITERS: AtomicU64 = AtomicU64::new(1);

/// The outcome of a blocking list command: what it took at once, or its place in line.
pub enum Taken {
    Now(Durable<Option<Took>>),
    Blocked(Blocked),
}

/// A client waiting in line; dropping it leaves the line.
pub struct Blocked {
    keyspace: Arc<Keyspace>,
    waiter: Arc<Waiter>,
    receiver: Option<oneshot::Receiver<Result<Served>>>,
}

impl Blocked {
    /// Waits until served or until `timeout` (`None`: for ever); `None` on a timeout.
    /// Dropped while it waits (the client gone), it leaves the line as [`Blocked`] does.
    pub async fn wait(self, timeout: Option<Duration>) -> Result<Option<Took>> {
        self.wait_or(timeout, std::future::pending()).await
    }

    /// [`Blocked::wait`], also ended (as by its timeout) when `interrupted` resolves: Redis's
    /// CLIENT UNBLOCK. Served in the same moment, it answers what it was served.
    pub async fn wait_or(
        mut self,
        timeout: Option<Duration>,
        interrupted: impl std::future::Future<Output = ()>,
    ) -> Result<Option<Took>> {
        let receiver = self.receiver.as_mut().expect("waited once");
        let given_up = async {
            match timeout {
                Some(timeout) => {
                    tokio::select! {
                        () = tokio::time::sleep(timeout) => {}
                        () = interrupted => {}
                    }
                }
                None => interrupted.await,
            }
        };
        let outcome = tokio::select! {
            received = &mut *receiver => Some(received),
            () = given_up => None,
        };
        let received = match outcome {
            Some(received) => received,
            None => {
                if self.keyspace.leave(&self.waiter) {
                    self.receiver = None;
                    return Ok(None);
                }
                // Served as it gave up: the elements are in the channel.
                receiver.await
            }
        };
        // Received: from here on the elements are this client's.
        self.receiver = None;
        let served = received.map_err(|_| EngineError::ShuttingDown)??;
        served.wait().await.map(Some)
    }
}

impl Drop for Blocked {
    fn drop(&mut self) {
        let Some(mut receiver) = self.receiver.take() else {
            return;
        };
        if self.keyspace.leave(&self.waiter) {
            return;
        }
        // Served, but nobody will read it: the elements go back where they came from.
        let Ok(Ok(served)) = receiver.try_recv() else {
            return;
        };
        // A hold on another thread may need this one (a script waiting for a stream's
        // writer): when the gate is taken, the elements go back from a task that waits for it.
        if let Some(mut inner) = self.keyspace.try_lock() {
            self.keyspace
                .give_back_locked(&mut inner, served, &self.waiter.request);
            return;
        }
        let keyspace = self.keyspace.clone();
        let waiter = self.waiter.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    let _entered = keyspace.enter().await;
                    keyspace.give_back(served, &waiter.request);
                });
            }
            Err(_) => keyspace.give_back(served, &waiter.request),
        }
    }
}

impl Keyspace {
    /// Takes what `request` asks for from the first of `keys` that has elements, or joins
    /// the line of every one of them (a key named twice waits once). For a move, `keys` is
    /// the source alone. A string among the keys met before a list with elements is refused.
    pub fn take_or_block(
        self: &Arc<Self>,
        keys: Vec<Bytes>,
        request: ListRequest,
    ) -> Result<Taken> {
        let mut inner = self.lock();
        match &request {
            ListRequest::Pop { end, count } => {
                let taken = self.pop_first_locked(&mut inner, &keys, *end, *count)?;
                let (value, commit) = taken.split();
                if let Some(popped) = value {
                    let value = Some(Took::list(popped));
                    return Ok(Taken::Now(Durable { value, commit }));
                }
            }
            ListRequest::ZPop { highest, count } => {
                let taken = self.zset_pop_first_locked(&mut inner, &keys, *count, *highest)?;
                let (value, commit) = taken.split();
                if value.is_some() {
                    return Ok(Taken::Now(Durable { value, commit }));
                }
            }
            ListRequest::Move {
                destination,
                from,
                to,
            } => {
                let source = &keys[0];
                if let Some((element, waiter)) =
                    self.move_locked(&mut inner, source, destination, *from, *to)?
                {
                    self.serve(&mut inner, destination.clone());
                    let taken = Some(Took::list((source.clone(), vec![element])));
                    return Ok(Taken::Now(Durable::new(taken, waiter)));
                }
                // As in Redis, the destination is looked at only once there is something
                // to move: a string there refuses the client then, not before it waits.
            }
        }
        let mut unique: Vec<Bytes> = Vec::with_capacity(keys.len());
        for key in keys {
            if !unique.contains(&key) {
                unique.push(key);
            }
        }
        let (sender, receiver) = oneshot::channel();
        let waiter = Arc::new(Waiter {
            id: WAITERS.fetch_add(1, Ordering::Relaxed),
            keys: unique,
            request,
            sender: Mutex::new(Some(sender)),
        });
        for key in &waiter.keys {
            inner
                .waiters
                .entry(key.clone())
                .or_default()
                .push_back(waiter.clone());
        }
        Ok(Taken::Blocked(Blocked {
            keyspace: self.clone(),
            waiter,
            receiver: Some(receiver),
        }))
    }

    /// Clients blocked now, on any key.
    pub fn blocked_clients(&self) -> usize {
        let inner = self.lock();
        let mut ids: Vec<u64> = inner
            .waiters
            .values()
            .flat_map(|line| line.iter().map(|waiter| waiter.id))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids.len()
    }

    /// Takes `waiter` out of every line; whether it was still waiting (not served).
    fn leave(&self, waiter: &Arc<Waiter>) -> bool {
        // Not behind the gate: leaving a line changes no key, and it runs in a door's async
        // code, whose thread a script holding the keyspace may need.
        let mut inner = self.lock_ungated();
        let waiting = take_sender(waiter).is_some();
        remove_from_lines(&mut inner, waiter, None);
        waiting
    }

    /// Puts back the elements a client was served and never received.
    fn give_back(&self, served: Served, request: &ListRequest) {
        let mut inner = self.lock();
        self.give_back_locked(&mut inner, served, request);
    }

    fn give_back_locked(&self, inner: &mut Inner, served: Served, request: &ListRequest) {
        let end = match request {
            ListRequest::Pop { end, .. } => end,
            ListRequest::ZPop { .. } => return self.give_back_scored(inner, served.took),
            // A moved element stays in its destination: nothing was lost.
            ListRequest::Move { .. } => return,
        };
        let key = served.took.key;
        let now = crate::engine::now_ms();
        let old = match self.live(inner, &key, now) {
            None => None,
            Some(entry) if matches!(entry.value, Value::List(_)) => Some(entry.size()),
            // The key holds another kind meanwhile: the elements have nowhere to go.
            Some(_) => return,
        };
        let mut writes = Vec::new();
        if old.is_none() {
            writes.push(stored::put_list_deadline(&key, None));
            inner.insert(key.clone(), Entry::empty(KeyKind::List));
        }
        self.edit(inner, &key, &mut writes, |list: &mut List, hex, writes| {
            // Pushed back in reverse, they stand as they stood.
            for item in served.took.items.into_iter().rev() {
                push_one(list, hex, *end, item, writes);
            }
        });
        self.writer.queue_detached(writes);
        self.serve(inner, key);
    }

    /// Puts members a client was served and never received back with their scores (unless
    /// the key holds another kind meanwhile, or the member was added again since).
    fn give_back_scored(&self, inner: &mut Inner, took: Took) {
        let key = took.key;
        let now = crate::engine::now_ms();
        match self.live(inner, &key, now) {
            None => {
                inner.insert(key.clone(), Entry::empty(KeyKind::SortedSet));
            }
            Some(entry) if matches!(entry.value, Value::SortedSet(_)) => {}
            Some(_) => return,
        }
        let mut writes = vec![stored::put_meta(
            stored::ZSETS_TABLE,
            &key,
            inner.entries.get(&key).and_then(|entry| entry.deadline),
        )];
        self.edit(
            inner,
            &key,
            &mut writes,
            |set: &mut SortedSet, hex, writes| {
                for (member, score) in took.items.into_iter().zip(took.scores) {
                    if !set.scores.contains_key(&member) {
                        writes.push(stored::put_scored(hex, &member, score));
                        set.put(member, score);
                    }
                }
            },
        );
        self.writer.queue_detached(writes);
        self.serve(inner, key);
    }

    /// Serves the clients blocked on the keys a hold wrote, in the order they were first
    /// written, once the hold has ended but before its changes are released to the writer
    /// (what the clients take is committed with them).
    pub(super) fn serve_held_back(&self) {
        let mut inner = self.lock_ungated();
        for key in std::mem::take(&mut inner.ready_after_hold) {
            self.serve_waiting(&mut inner, &key);
        }
    }

    /// [`Keyspace::serve`] when anyone is blocked on `key` (skipping its allocation when
    /// nobody is blocked anywhere).
    pub(super) fn serve_waiting(&self, inner: &mut Inner, key: &Bytes) {
        if inner.waiters.contains_key(key) {
            self.serve(inner, key.clone());
        }
    }

    /// Serves the clients blocked on `key` while it has elements, oldest first; a move
    /// into another key serves that key's line next.
    ///
    /// Inside a hold (a transaction or a script), the key is only noted: its clients are
    /// served from what the hold leaves ([`Keyspace::serve_held_back`]), as Redis serves
    /// blocked clients after EXEC or a script, so `LPUSH k a; DEL k` in one MULTI gives a
    /// blocked BLPOP nothing.
    pub(super) fn serve(&self, inner: &mut Inner, key: Bytes) {
        if self.holds_here() {
            // Only keys someone waits on (few), so the list stays short.
            if inner.waiters.contains_key(&key) && !inner.ready_after_hold.contains(&key) {
                inner.ready_after_hold.push(key);
            }
            return;
        }
        let mut ready = vec![key];
        while let Some(key) = ready.pop() {
            loop {
                // The longest-waiting client that wants what the key holds (a key that
                // became a sorted set serves BZPOPMIN clients, not BLPOP ones).
                let value = inner.entries.get(&key).map(|entry| &entry.value);
                let Some(index) = inner
                    .waiters
                    .get(&key)
                    .and_then(|line| line.iter().position(|w| w.request.ready(value)))
                else {
                    break;
                };
                let waiter = inner
                    .waiters
                    .get_mut(&key)
                    .and_then(|line| line.remove(index))
                    .expect("the waiter just found");
                remove_from_lines(inner, &waiter, Some(&key));
                let Some(sender) = take_sender(&waiter) else {
                    continue;
                };
                let served = match &waiter.request {
                    ListRequest::Pop { end, count } => {
                        let mut writes = Vec::new();
                        let items =
                            self.edit(inner, &key, &mut writes, |list: &mut List, hex, writes| {
                                pop_many(list, hex, *end, (*count).max(1), writes)
                            });
                        let commit = Commit::keyspace(self.writer.queue(writes));
                        Ok(Served {
                            took: Took::list((key.clone(), items)),
                            commit,
                        })
                    }
                    ListRequest::ZPop { highest, count } => self
                        .zset_pop_locked(inner, &key, *count, *highest)
                        .map(|popped| {
                            let (scored, commit) = popped.split();
                            Served {
                                took: Took::scored(key.clone(), scored),
                                commit,
                            }
                        }),
                    ListRequest::Move {
                        destination,
                        from,
                        to,
                    } => self
                        .move_locked(inner, &key, destination, *from, *to)
                        .map(|moved| {
                            let (element, waiter) = moved.expect("the source has elements");
                            if destination != &key {
                                ready.push(destination.clone());
                            }
                            Served {
                                took: Took::list((key.clone(), vec![element])),
                                commit: Commit::keyspace(waiter),
                            }
                        }),
                };
                // A receiver already gone (its client dropped without leaving the line)
                // cannot take them: they go back.
                if let Err(Ok(served)) = sender.send(served) {
                    self.give_back_locked(inner, served, &waiter.request);
                }
            }
            if inner.waiters.get(&key).is_some_and(VecDeque::is_empty) {
                inner.waiters.remove(&key);
            }
        }
    }
}

fn take_sender(waiter: &Waiter) -> Option<oneshot::Sender<Result<Served>>> {
    waiter
        .sender
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take()
}

/// Takes `waiter` out of the lines of its keys (but `except`, already done).
fn remove_from_lines(inner: &mut Inner, waiter: &Waiter, except: Option<&Bytes>) {
    for key in &waiter.keys {
        if Some(key) == except {
            continue;
        }
        if let Some(line) = inner.waiters.get_mut(key) {
            line.retain(|other| other.id != waiter.id);
            if line.is_empty() {
                inner.waiters.remove(key);
            }
        }
    }
}
