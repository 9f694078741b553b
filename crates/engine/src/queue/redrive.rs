//! Redriving dead letters back into their queue: all of them (`redrive`, a cursor over the
//! dead-letter stream) or one chosen letter (`redrive_dead_letter`, the dashboard's
//! "redrive" button on a letter).
//!
//! What is durable: the cursor (`R` key: every letter below it was redriven) and one `X`
//! key per letter redriven on its own above the cursor (`keys.rs`). A later redrive of all
//! skips the letters with an `X` key, and once the cursor passes them their keys are deleted
//! in the same commit that moves the cursor, so the set stays as small as the letters
//! redriven one by one and not yet passed. Both are at-least-once: the message is enqueued
//! before its mark is committed, so a crash in between may redrive a letter twice.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;

use omnibus_storage::{StateStore, StateWrite};
use omnibus_types::Record;

use super::keys;
use super::{EnqueueMessage, Queue, DUE_HEADER, EXPIRES_HEADER, PRIORITY_HEADER};
use crate::engine::Engine;
use crate::error::{EngineError, Result};

/// Where the redrives of a queue's dead letters stand, for a dashboard.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RedriveState {
    /// Every dead letter below this offset was redriven (or is gone to retention).
    pub redriven_below: u64,
    /// Letters at or above `redriven_below` that were redriven one at a time.
    pub redriven_offsets: Vec<u64>,
}

/// The `X` marks of a queue, read when it opens.
pub(crate) fn load_redriven_one(state: &StateStore, queue: &str) -> Result<BTreeSet<u64>> {
    let prefix = keys::redriven_one_prefix(queue);
    Ok(state
        .scan_prefix(keys::TABLE, &prefix)?
        .into_iter()
        .filter_map(|(key, _)| key.strip_prefix(&prefix)?.parse().ok())
        .collect())
}

/// The message a dead letter becomes again: its key, value, headers (less the broker's own
/// dead-letter, timer and priority headers) and priority, with fresh attempts. `None` when the
/// letter came from another queue sharing the dead-letter stream.
fn message_of_dead_letter(queue_name: &str, record: &Record) -> Option<EnqueueMessage> {
    let from_here = record
        .headers
        .iter()
        .find(|h| h.name == "omnibus.dlq.source")
        .is_none_or(|h| h.value.as_ref() == queue_name.as_bytes());
    if !from_here {
        return None;
    }
    let priority = record
        .headers
        .iter()
        .find(|h| h.name == PRIORITY_HEADER)
        .and_then(|h| std::str::from_utf8(&h.value).ok()?.parse().ok())
        .unwrap_or(0);
    let headers = record
        .headers
        .iter()
        .filter(|h| {
            !h.name.starts_with("omnibus.dlq.")
                && h.name != DUE_HEADER
                && h.name != EXPIRES_HEADER
                && h.name != PRIORITY_HEADER
        })
        .cloned()
        .collect();
    Some(EnqueueMessage {
        key: record.key.clone(),
        value: record.value.clone(),
        headers,
        priority,
        delay_ms: None,
        ttl_ms: None,
        id: None,
    })
}

impl Queue {
    fn redriven_one(&self) -> std::sync::MutexGuard<'_, BTreeSet<u64>> {
        self.redriven_one.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn redrive_cursor(&self) -> u64 {
        self.redriven
            .load(Ordering::Acquire)
            .max(self.dead_letter.log_start_offset())
    }

    /// Dead letters not yet redriven.
    pub(crate) fn dead_letter_depth(&self) -> u64 {
        let cursor = self.redrive_cursor();
        let one_by_one = self.redriven_one().range(cursor..).count() as u64;
        self.dead_letter
            .high_watermark()
            .saturating_sub(cursor)
            .saturating_sub(one_by_one)
    }

    /// Moves the cursor to `upto` and forgets the marks it passed, in one commit.
    pub(crate) async fn save_redriven(&self, upto: u64) -> Result<()> {
        self.check_healthy()?;
        self.redriven.fetch_max(upto, Ordering::AcqRel);
        let mut writes = vec![StateWrite::Put {
            table: keys::TABLE,
            key: keys::redrive(&self.config.name),
            value: upto.to_be_bytes().to_vec(),
        }];
        let passed: Vec<u64> = self.redriven_one().range(..upto).copied().collect();
        for offset in &passed {
            writes.push(StateWrite::Delete {
                table: keys::TABLE,
                key: keys::redriven_one(&self.config.name, *offset),
            });
        }
        self.commit(writes).await?;
        let mut marks = self.redriven_one();
        for offset in passed {
            marks.remove(&offset);
        }
        Ok(())
    }
}

impl Engine {
    /// Moves up to `max` dead letters not yet redriven back into the queue (fresh attempts,
    /// their original key, value, headers and priority). At-least-once: a crash during a
    /// redrive may redrive a message twice.
    pub async fn redrive(&self, queue_name: &str, max: usize) -> Result<u64> {
        let queue = self.queue(queue_name)?;
        queue.check_healthy()?;
        let from = queue.redrive_cursor();
        let letters = self
            .dead_letters(queue_name, from, max.clamp(1, 10_000))
            .await?;
        if letters.records.is_empty() {
            return Ok(0);
        }
        let messages: Vec<EnqueueMessage> = {
            let marks = queue.redriven_one();
            letters
                .records
                .iter()
                .filter(|record| !marks.contains(&record.offset))
                .filter_map(|record| message_of_dead_letter(queue_name, record))
                .collect()
        };
        let count = messages.len() as u64;
        if !messages.is_empty() {
            self.enqueue(queue_name, messages).await?;
        }
        queue.save_redriven(letters.next_offset).await?;
        Ok(count)
    }

    /// Moves the one dead letter at `offset` of the queue's dead-letter stream back into the
    /// queue. A letter already redriven (alone or by a redrive of all) is refused, and so is
    /// one that came from another queue.
    pub async fn redrive_dead_letter(&self, queue_name: &str, offset: u64) -> Result<()> {
        let queue = self.queue(queue_name)?;
        queue.check_healthy()?;
        if offset < queue.redrive_cursor() || queue.redriven_one().contains(&offset) {
            return Err(EngineError::BadRequest(format!(
                "dead letter {offset} of queue {queue_name:?} was already redriven"
            )));
        }
        let letters = self.dead_letters(queue_name, offset, 1).await?;
        let record = letters
            .records
            .into_iter()
            .find(|record| record.offset == offset)
            .ok_or_else(|| {
                EngineError::BadRequest(format!(
                    "queue {queue_name:?} has no dead letter at offset {offset}"
                ))
            })?;
        let message = message_of_dead_letter(queue_name, &record).ok_or_else(|| {
            EngineError::BadRequest(format!(
                "dead letter {offset} came from another queue; redrive it there"
            ))
        })?;
        self.enqueue(queue_name, vec![message]).await?;
        queue
            .commit(vec![StateWrite::Put {
                table: keys::TABLE,
                key: keys::redriven_one(queue_name, offset),
                value: Vec::new(),
            }])
            .await?;
        queue.redriven_one().insert(offset);
        Ok(())
    }

    /// The cursor and the one-by-one marks of a queue's redrives.
    pub fn redrive_state(&self, queue_name: &str) -> Result<RedriveState> {
        let queue = self.queue(queue_name)?;
        let redriven_below = queue.redrive_cursor();
        let redriven_offsets = queue
            .redriven_one()
            .range(redriven_below..)
            .copied()
            .collect();
        Ok(RedriveState {
            redriven_below,
            redriven_offsets,
        })
    }
}
