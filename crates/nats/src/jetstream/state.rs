//! What JetStream keeps beside a stream's log: the `Nats-Msg-Id`s seen within the duplicate
//! window, the last message id, and the last sequence per subject — for the dedup and
//! `Nats-Expected-*` checks of a publish.
//!
//! None of it has a store of its own: the first publish to a stream after a start rebuilds it
//! from the stream's newest records (their headers carry the message ids), so a duplicate is
//! still caught after a restart or a kill -9 as long as the original is among the newest
//! [`SCAN_RECORDS_MAX`] records. Memory is bounded: at most [`MESSAGE_IDS_MAX`] ids and
//! [`SUBJECTS_MAX`] subjects per stream are kept, the oldest dropped first.

use std::collections::{HashMap, VecDeque};

use omnibus_engine::{Engine, EngineError, FetchRequest};
use omnibus_types::Record;

/// Newest records read to rebuild the state after a start.
pub(crate) const SCAN_RECORDS_MAX: u64 = 100_000;
/// Message ids kept per stream within the duplicate window.
pub(crate) const MESSAGE_IDS_MAX: usize = 100_000;
/// Subjects whose last sequence is kept per stream.
pub(crate) const SUBJECTS_MAX: usize = 100_000;
/// Records read per fetch while scanning.
const SCAN_BATCH_RECORDS: usize = 1000;
const SCAN_BATCH_BYTES: usize = 4 * 1024 * 1024;

pub(crate) const MESSAGE_ID: &str = "Nats-Msg-Id";

#[derive(Default)]
pub(crate) struct StreamState {
    loaded: bool,
    /// The stream's duplicate window, read with the rest at load.
    window_ms: i64,
    /// The stream's `max_msgs`, read at load.
    pub(crate) max_messages: Option<u64>,
    /// Message id → (sequence, time it was stored in ms).
    message_ids: HashMap<String, (u64, i64)>,
    /// Ids in the order they were stored, to expire and bound them.
    message_id_order: VecDeque<(i64, String)>,
    pub(crate) last_message_id: Option<String>,
    last_by_subject: HashMap<String, u64>,
    /// The last sequence given out by a publish through this state (it may not be durable
    /// yet, so the log's high watermark can be behind it).
    last_sequence: u64,
    /// `{"stream":"<name>","seq":` — the start of every PubAck of the stream, rendered once.
    pub(crate) pub_ack_prefix: bytes::Bytes,
    /// Whether `last_by_subject` covers the whole stream (it held at most
    /// [`SCAN_RECORDS_MAX`] records when rebuilt, and no subject was dropped since).
    subjects_complete: bool,
}

impl StreamState {
    /// Rebuilds the state from the stream's newest records, once.
    pub(crate) async fn load(&mut self, engine: &Engine, stream: &str) -> Result<(), EngineError> {
        if self.loaded {
            return Ok(());
        }
        let extras = super::extras::StreamExtras::of(engine, stream);
        self.window_ms = extras.duplicate_window_ms as i64;
        let name = serde_json::Value::from(stream).to_string();
        self.pub_ack_prefix = format!("{{\"stream\":{name},\"seq\":").into();
        self.max_messages = extras.max_messages;
        let (start, end) = engine.partition_bounds(stream, 0)?;
        let from = start.max(end.saturating_sub(SCAN_RECORDS_MAX));
        self.subjects_complete = from == start;
        let now = super::streams::now_ms();
        let mut records = Vec::new();
        scan(engine, stream, from, end, |record| records.push(record)).await?;
        for record in records {
            let sequence = record.offset + 1;
            self.note_subject(subject_of(stream, &record), sequence);
            if let Some(id) = header(&record.headers, MESSAGE_ID) {
                if record.timestamp_ms + self.window_ms >= now {
                    self.note_message_id(id.clone(), sequence, record.timestamp_ms);
                }
                self.last_message_id = Some(id);
            }
        }
        self.last_sequence = end;
        self.loaded = true;
        Ok(())
    }

    /// Drops ids older than the duplicate window.
    pub(crate) fn expire(&mut self, now_ms: i64) {
        while let Some((stored_ms, _)) = self.message_id_order.front() {
            if stored_ms + self.window_ms >= now_ms {
                break;
            }
            if let Some((_, id)) = self.message_id_order.pop_front() {
                self.message_ids.remove(&id);
            }
        }
    }

    /// The sequence of the message stored under `id` within the window, if any.
    pub(crate) fn duplicate_of(&self, id: &str) -> Option<u64> {
        self.message_ids.get(id).map(|(sequence, _)| *sequence)
    }

    /// The stream's last sequence: what this state gave out, or the log's, whichever is
    /// later (other doors append too).
    pub(crate) fn last_sequence(&self, high_watermark: u64) -> u64 {
        self.last_sequence.max(high_watermark)
    }

    /// The last sequence stored on `subject`; `None` when it is not known for certain.
    pub(crate) fn last_for_subject(&self, subject: &str) -> Option<u64> {
        match self.last_by_subject.get(subject) {
            Some(sequence) => Some(*sequence),
            None if self.subjects_complete => Some(0),
            None => None,
        }
    }

    /// Records a publish that was given `sequence`.
    pub(crate) fn stored(&mut self, subject: &str, id: Option<String>, sequence: u64, now_ms: i64) {
        self.last_sequence = self.last_sequence.max(sequence);
        self.note_subject(subject, sequence);
        if let Some(id) = id {
            self.note_message_id(id.clone(), sequence, now_ms);
            self.last_message_id = Some(id);
        }
    }

    fn note_subject(&mut self, subject: &str, sequence: u64) {
        // The common case, a subject seen before, costs no allocation.
        if let Some(last) = self.last_by_subject.get_mut(subject) {
            *last = sequence;
            return;
        }
        if !self.last_by_subject.contains_key(subject) && self.last_by_subject.len() >= SUBJECTS_MAX
        {
            // Forgetting one subject makes every unknown subject uncertain.
            self.last_by_subject.clear();
            self.subjects_complete = false;
        }
        self.last_by_subject.insert(subject.to_string(), sequence);
    }

    fn note_message_id(&mut self, id: String, sequence: u64, stored_ms: i64) {
        if self.message_id_order.len() >= MESSAGE_IDS_MAX {
            if let Some((_, oldest)) = self.message_id_order.pop_front() {
                self.message_ids.remove(&oldest);
            }
        }
        self.message_ids.insert(id.clone(), (sequence, stored_ms));
        self.message_id_order.push_back((stored_ms, id));
    }
}

/// The first value of header `name` (case-insensitive, as NATS header names are).
pub(crate) fn header(headers: &[omnibus_types::Header], name: &str) -> Option<String> {
    headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .map(|h| String::from_utf8_lossy(&h.value).into_owned())
}

/// A stored record's subject (stored empty when it is the stream's name).
fn subject_of<'a>(stream: &'a str, record: &'a Record) -> &'a str {
    if record.subject.is_empty() {
        stream
    } else {
        &record.subject
    }
}

/// Reads partition 0 of `stream` from `from` up to `end`, record by record.
async fn scan(
    engine: &Engine,
    stream: &str,
    from: u64,
    end: u64,
    mut visit: impl FnMut(Record),
) -> Result<(), EngineError> {
    let mut offset = from;
    while offset < end {
        let fetched = engine
            .fetch(FetchRequest {
                stream: stream.to_string(),
                partition: 0,
                offset,
                max_records: SCAN_BATCH_RECORDS,
                max_bytes: SCAN_BATCH_BYTES,
                wait_ms: 0,
            })
            .await?;
        if fetched.next_offset <= offset {
            break;
        }
        offset = fetched.next_offset;
        fetched
            .records
            .into_iter()
            .filter(|r| r.offset < end)
            .for_each(&mut visit);
    }
    Ok(())
}

/// The newest record stored on `subject` among the newest [`SCAN_RECORDS_MAX`] (MSG.GET's
/// `last_by_subj`).
pub(crate) async fn last_for_subject(
    engine: &Engine,
    stream: &str,
    subject: &str,
) -> Result<Option<Record>, EngineError> {
    let (start, end) = engine.partition_bounds(stream, 0)?;
    let from = start.max(end.saturating_sub(SCAN_RECORDS_MAX));
    let mut last = None;
    scan(engine, stream, from, end, |record| {
        if subject_of(stream, &record) == subject {
            last = Some(record);
        }
    })
    .await?;
    Ok(last)
}
