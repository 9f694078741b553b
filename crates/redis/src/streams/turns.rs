//! Blocked XREADGROUP readers of one group are served in the order they blocked, as
//! redis-server serves the clients blocked on a key: an XADD goes to the reader that has
//! waited longest, and the others stay blocked. Without this every waiting reader woke at
//! the XADD and the quickest to reach the group took the entry, so a worker that had just
//! arrived could starve one that had waited for minutes.
//!
//! A reader that may block (`BLOCK`, one stream, `>`) takes its place in its group's *line*
//! before it first looks for entries: a fair async mutex (tokio's, whose waiters are served
//! in the order they asked), held while the reader waits for entries and released when it
//! answers (entries, its timeout, NOGROUP, CLIENT UNBLOCK or its connection closing). The
//! first in line is the only one an XADD can serve; the next one gets the line and looks for
//! entries itself, and takes what the first left (COUNT 1 of two new entries leaves one).
//! A reader of several streams takes no place: waiting in several lines at once could
//! deadlock two readers that name the same streams in different orders. A read without
//! BLOCK takes none either: it never waits, as a Redis client that is not blocked is not
//! queued behind the blocked ones.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

/// A group's line: held by the reader whose turn it is.
pub(crate) type Line = Arc<tokio::sync::Mutex<()>>;

/// A (stream, group) pair.
type GroupKey = (String, String);

/// The lines of the groups some reader waits in, by (stream, group). An entry lives while a
/// reader holds its line; dead ones are dropped when a line is made.
#[derive(Default)]
pub(crate) struct GroupLines {
    lines: Mutex<HashMap<GroupKey, Weak<tokio::sync::Mutex<()>>>>,
}

impl GroupLines {
    /// The line of `group` of `stream`, made if no reader is in it.
    pub(crate) fn line(&self, stream: &str, group: &str) -> Line {
        let mut lines = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        let key = (stream.to_string(), group.to_string());
        if let Some(line) = lines.get(&key).and_then(Weak::upgrade) {
            return line;
        }
        // Bounded by the readers waiting now: a line no one holds is dropped here.
        lines.retain(|_, line| line.strong_count() > 0);
        let line = Line::default();
        lines.insert(key, Arc::downgrade(&line));
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn readers_get_their_turn_in_the_order_they_asked() {
        let lines = GroupLines::default();
        let line = lines.line("jobs", "workers");
        assert!(Arc::ptr_eq(&line, &lines.line("jobs", "workers")));
        assert!(!Arc::ptr_eq(&line, &lines.line("jobs", "others")));
        let first = line.clone().lock_owned().await;
        let (sender, mut order) = tokio::sync::mpsc::unbounded_channel();
        let mut waiting = Vec::new();
        for reader in 0..3 {
            let (line, sender) = (line.clone(), sender.clone());
            waiting.push(tokio::spawn(async move {
                let _turn = line.lock_owned().await;
                sender.send(reader).unwrap();
            }));
            // Each asks before the next one does.
            tokio::task::yield_now().await;
        }
        drop(first);
        for task in waiting {
            task.await.unwrap();
        }
        let served: Vec<i32> = std::iter::from_fn(|| order.try_recv().ok()).collect();
        assert_eq!(served, vec![0, 1, 2]);
    }

    #[test]
    fn lines_no_reader_holds_are_dropped() {
        let lines = GroupLines::default();
        drop(lines.line("a", "g"));
        let _held = lines.line("b", "g");
        assert_eq!(lines.lines.lock().unwrap().len(), 1);
    }
}
