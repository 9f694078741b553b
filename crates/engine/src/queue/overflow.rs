//! Queue limits: `max_length` (waiting messages) and `max_bytes` (their bytes), and what an
//! enqueue that would go past either does — refuse it, or take the oldest ready messages out
//! (dropped, or moved to the dead-letter stream) until the new ones fit, or refuse it and
//! dead-letter what was refused.
//!
//! "Waiting" is ready or delayed: leased messages are with their workers and count toward
//! neither limit. A message's bytes are [`message_bytes`] of its stored record.
//!
//! The check and the append are not one atomic step (that would serialize every enqueue into a
//! bounded queue behind one fsync): enqueues racing each other may pass a limit by what they
//! carry together, as with `max_length` before.

use bytes::Bytes;
use omnibus_types::Record;

use super::core::DeadLetter;
use super::rates::RateKind;
use super::runtime::Queue;
use super::Overflow;
use crate::error::{EngineError, Result};

/// Rounds of removing the oldest messages one enqueue may run before giving up as full.
const MAKE_ROOM_ROUNDS_MAX: usize = 10_000;
/// Oldest ready messages read per round.
const REMOVE_PAGE_MAX: u64 = 10_000;

/// What a message counts toward `max_bytes` and the queue's `waiting_bytes`: its value (the
/// body), as RabbitMQ's `x-max-length-bytes` counts bodies. Key and headers — the producer's
/// and the broker's own (priority, delay, TTL, routing, dead-letter history) — do not count:
/// a limit set to hold N bodies of B bytes holds exactly that, whatever door they came by.
pub fn message_bytes(record: &Record) -> u64 {
    record.value.as_ref().map_or(0, Bytes::len) as u64
}

/// What an enqueue brings, measured before anything is appended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Incoming {
    pub messages: u64,
    pub bytes: u64,
    /// The largest single message.
    pub largest: u64,
}

impl Incoming {
    pub(crate) fn add(&mut self, bytes: u64) {
        self.messages += 1;
        self.bytes = self.bytes.saturating_add(bytes);
        self.largest = self.largest.max(bytes);
    }
}

/// How far past its limits a queue would be.
#[derive(Debug, Clone, Copy)]
struct Excess {
    messages: u64,
    bytes: u64,
}

impl Queue {
    /// Applies `max_length` and `max_bytes` before `incoming` messages are enqueued.
    pub(crate) async fn make_room(&self, incoming: Incoming) -> Result<()> {
        if self.config.max_length.is_none() && self.config.max_bytes.is_none() {
            return Ok(());
        }
        self.check_can_ever_fit(incoming)?;
        for _ in 0..MAKE_ROOM_ROUNDS_MAX {
            let (waiting, waiting_bytes) = {
                let core = self.lock();
                let counts = core.counts();
                (counts.ready + counts.delayed, core.waiting_bytes())
            };
            let excess = Excess {
                messages: self
                    .config
                    .max_length
                    .map_or(0, |max| (waiting + incoming.messages).saturating_sub(max)),
                bytes: self.config.max_bytes.map_or(0, |max| {
                    waiting_bytes
                        .saturating_add(incoming.bytes)
                        .saturating_sub(max)
                }),
            };
            if excess.messages == 0 && excess.bytes == 0 {
                return Ok(());
            }
            if matches!(
                self.config.overflow,
                Overflow::RejectNew | Overflow::DeadLetterNew
            ) {
                return Err(self.full(excess, waiting, waiting_bytes, incoming));
            }
            let average = waiting_bytes.checked_div(waiting).unwrap_or(1).max(1);
            let removed = self.remove_oldest(excess, average).await?;
            if removed == 0 {
                return Err(EngineError::QueueFull(format!(
                    "queue {:?} is full and its waiting messages are delayed, not ready",
                    self.config.name
                )));
            }
        }
        Err(EngineError::QueueFull(format!(
            "queue {:?} is full: other enqueues kept filling it while room was made",
            self.config.name
        )))
    }

    /// After a message went back to waiting (a nack, a requeue): a queue whose overflow takes
    /// the oldest out does so until it is within its limits again, as RabbitMQ's drop-head
    /// does when a requeued message puts a queue past `x-max-length` (the requeued message,
    /// back at its old place at the head, is usually the one to go). Under the policies that
    /// refuse new messages nothing is taken out: only enqueues are refused.
    pub(crate) async fn trim_after_requeue(&self) -> Result<()> {
        if matches!(
            self.config.overflow,
            Overflow::DropOldest | Overflow::DeadLetterOldest
        ) {
            self.make_room(Incoming::default()).await?;
        }
        Ok(())
    }

    /// Under `dead_letter_new`, writes the messages a full queue refused (`records`, never
    /// in the queue) to its dead-letter stream, so its dead-letter route sees them; the
    /// enqueue is refused all the same.
    pub(crate) async fn dead_letter_refused(
        &self,
        mut records: Vec<Record>,
        refusal: &EngineError,
    ) -> Result<()> {
        let limit = match refusal {
            EngineError::QueueFull(text) if text.contains("max_bytes") => "max_bytes",
            EngineError::MessageTooLarge { .. } => "max_bytes",
            _ => "max_length",
        };
        let reason = format!("queue full ({limit}): refused message dead-lettered");
        let now = crate::engine::now_ms();
        for record in &mut records {
            super::deaths::mark_death(
                record,
                super::deaths::Dying {
                    reason: &reason,
                    attempts: 0,
                    last_error: "",
                    source: &self.config.name,
                    offset: None,
                    now_ms: now,
                },
            );
        }
        let count = records.len() as u64;
        self.dead_letter
            .append_encoded(omnibus_storage::batch::EncodedBatches::of(&records)?)
            .await?;
        self.count(RateKind::DeadLettered, count);
        Ok(())
    }

    /// Refuses what no amount of room could take.
    fn check_can_ever_fit(&self, incoming: Incoming) -> Result<()> {
        let name = &self.config.name;
        if let Some(max) = self.config.max_length {
            if incoming.messages > max {
                return Err(EngineError::LimitExceeded(format!(
                    "{} messages exceed queue {name:?}'s max_length of {max}",
                    incoming.messages
                )));
            }
        }
        if let Some(max) = self.config.max_bytes {
            if incoming.largest > max {
                return Err(EngineError::MessageTooLarge {
                    what: "message (its value, counted against the queue's max_bytes)",
                    bytes: usize::try_from(incoming.largest).unwrap_or(usize::MAX),
                    max: usize::try_from(max).unwrap_or(usize::MAX),
                });
            }
            if incoming.bytes > max {
                return Err(EngineError::LimitExceeded(format!(
                    "{} messages of {} bytes in all exceed queue {name:?}'s max_bytes of {max}",
                    incoming.messages, incoming.bytes
                )));
            }
        }
        Ok(())
    }

    fn full(&self, excess: Excess, waiting: u64, bytes: u64, incoming: Incoming) -> EngineError {
        let name = &self.config.name;
        let text = match (self.config.max_length, self.config.max_bytes) {
            (Some(max), _) if excess.messages > 0 => {
                format!("queue {name:?} is full ({waiting} waiting, max_length {max})")
            }
            (_, Some(max)) => format!(
                "queue {name:?} is full ({bytes} bytes waiting + {} incoming, max_bytes {max})",
                incoming.bytes
            ),
            _ => format!("queue {name:?} is full"),
        };
        EngineError::QueueFull(text)
    }

    /// Takes the oldest ready messages out until `excess` is covered (or a page is used up),
    /// dead-lettering them first under `dead_letter_oldest`. Returns how many were removed.
    async fn remove_oldest(&self, excess: Excess, average_bytes: u64) -> Result<u64> {
        let wanted = excess
            .messages
            .max(excess.bytes.div_ceil(average_bytes))
            .clamp(1, REMOVE_PAGE_MAX);
        let candidates = self.lock().ready_after(None, wanted as usize);
        if candidates.is_empty() {
            return Ok(0);
        }
        let records = self.records(&candidates).await?;
        let mut chosen = Vec::new();
        let (mut messages, mut bytes) = (0u64, 0u64);
        for (offset, record) in candidates.iter().zip(&records) {
            if messages >= excess.messages && bytes >= excess.bytes {
                break;
            }
            let size = message_bytes(record);
            chosen.push((*offset, size));
            messages += 1;
            bytes = bytes.saturating_add(size);
        }
        let dead_letter = self.config.overflow == Overflow::DeadLetterOldest;
        let limit = if excess.messages > 0 {
            "max_length"
        } else {
            "max_bytes"
        };
        let reason = format!("queue full ({limit}): oldest message dead-lettered");
        let by_offset = candidates.iter().copied().zip(records).collect();
        self.remove_ready_records(&chosen, by_offset, dead_letter, &reason)
            .await
    }

    /// Takes `chosen` — `(offset, size)` — out of the queue where they are still ready (some
    /// may have been delivered meanwhile: those stay with their workers), dead-lettered with
    /// `reason` when `dead_letter`, dropped otherwise. `records` holds their stored records.
    /// Returns how many were removed. Shared by the full queue's policies and TTL expiry.
    pub(super) async fn remove_ready_records(
        &self,
        chosen: &[(u64, u64)],
        mut records: std::collections::HashMap<u64, Record>,
        dead_letter: bool,
        reason: &str,
    ) -> Result<u64> {
        let (removed, mut writes) = self.lock_for_change()?.remove_ready(chosen, dead_letter);
        let mut after = None;
        if dead_letter && !removed.is_empty() {
            let mut letters = Vec::with_capacity(removed.len());
            let mut originals = Vec::with_capacity(removed.len());
            for (offset, attempts) in &removed {
                if let Some(record) = records.remove(offset) {
                    originals.push(record);
                    letters.push(DeadLetter {
                        offset: *offset,
                        reason: reason.to_string(),
                        attempts: *attempts,
                        last_error: String::new(),
                    });
                }
            }
            let records = self
                .append_dead_letters(letters, originals)
                .await
                .map_err(|error| self.uncommitted(error))?;
            after = Some(records.append_to(&mut writes));
        }
        self.commit(writes).await?;
        if let Some(after) = after {
            after.run();
        }
        if !dead_letter {
            self.count(RateKind::Dropped, removed.len() as u64);
        }
        Ok(removed.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use omnibus_types::Header;

    #[test]
    fn message_bytes_counts_the_value_alone() {
        let record = Record {
            offset: 0,
            timestamp_ms: 0,
            subject: String::new(),
            key: Some(Bytes::from_static(b"key")),
            value: Some(Bytes::from_static(b"value")),
            headers: vec![Header {
                name: "trace".into(),
                value: Bytes::from_static(b"abc"),
            }],
        };
        assert_eq!(message_bytes(&record), 5, "the value alone");
        let mut incoming = Incoming::default();
        incoming.add(10);
        incoming.add(30);
        assert_eq!(
            incoming,
            Incoming {
                messages: 2,
                bytes: 40,
                largest: 30
            }
        );
    }
}
