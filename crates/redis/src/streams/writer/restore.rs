//! RESTORE and MIGRATE of a stream key, the writer's part (`commands/stream_dump.rs` and
//! `commands/migrate.rs` have the session's): for RESTORE the stream is made with the
//! payload's entries under their own IDs and keeps the payload's last ID and largest
//! deleted ID, in order with the stream's other changes (a failure part way deletes what was
//! made, so a refused RESTORE leaves no stream behind); for MIGRATE the stream is deleted
//! once the target took it, unless something was appended to it meanwhile.

use bytes::Bytes;
use omnibus_engine::EngineError;
use tokio::sync::oneshot;

use super::{engine_error, Waiting, Writer};
use crate::codec::Reply;
use crate::notify::GENERIC;
use crate::streams::change::Restored;
use crate::streams::deleted::MAX_DELETED_SETTING;
use crate::streams::entry::to_record;
use crate::streams::id::StreamId;
use crate::streams::read::{bounds, LAST_ID_SETTING};

/// Entries appended per publish while restoring.
const RESTORE_BATCH: usize = 4_096;

pub(crate) const BUSY_KEY: &str = "BUSYKEY Target key name already exists.";

impl Writer {
    /// Makes the stream; whether this call made it (another door may have meanwhile).
    pub(super) async fn make_stream(&mut self) -> Result<bool, EngineError> {
        let spec = crate::streams::new_stream_spec(&self.stream);
        match self.engine.create_stream(spec).await {
            Ok(_) => Ok(true),
            Err(EngineError::StreamExists(_)) => Ok(false),
            Err(error) => Err(error),
        }
    }

    pub(super) async fn restore(&mut self, restored: Restored) -> Reply {
        self.checked = false;
        self.flush().await;
        match bounds(&self.engine, &self.stream) {
            Ok(None) => {}
            Ok(Some(_)) => return Reply::error(BUSY_KEY),
            Err(error) => return engine_error(error),
        }
        match self.make_stream().await {
            Ok(true) => {}
            Ok(false) => return Reply::error(BUSY_KEY),
            Err(error) => return engine_error(error),
        }
        self.forget_top();
        match self.fill(&restored).await {
            // Its events are the session's (`notify/events.rs`: RESTORE's, RENAME's, COPY's).
            Ok(()) => Reply::ok(),
            Err(reply) => {
                if let Err(error) = self.destroy().await {
                    tracing::warn!(stream = %self.stream, "removing a stream whose RESTORE failed: {error}");
                }
                reply
            }
        }
    }

    /// Deletes the stream if its log still ends at `end`: 1 if deleted, 0 if kept.
    pub(super) async fn destroy_if_unchanged(&mut self, end: u64, event: &'static str) -> Reply {
        self.checked = false;
        self.flush().await;
        match self.engine.partition_next_offset(&self.stream, 0) {
            Ok(now) if now == end => {}
            Ok(_) | Err(EngineError::StreamNotFound(_)) => return Reply::Integer(0),
            Err(error) => return engine_error(error),
        }
        match self.destroy().await {
            Ok(existed) => {
                self.send_if(existed && !event.is_empty(), GENERIC, event);
                Reply::Integer(i64::from(existed))
            }
            Err(error) => engine_error(error),
        }
    }

    async fn fill(&mut self, restored: &Restored) -> Result<(), Reply> {
        // Every batch enqueued at once, each with an answer to learn its outcome: their
        // fsyncs overlap the next batches' encoding instead of one waiting for the other.
        let mut outcomes = Vec::new();
        for chunk in restored.entries.chunks(RESTORE_BATCH) {
            for entry in chunk {
                let record = to_record(entry.id, &entry.fields).map_err(Reply::error)?;
                self.records.push(record);
                self.clock().unenqueued += 1;
            }
            let (answer, outcome) = oneshot::channel();
            let (id, events) = (Bytes::new(), Vec::new());
            self.waiting.push(Waiting { answer, id, events });
            self.publish().await;
            outcomes.push(outcome);
        }
        self.settle().await;
        for outcome in outcomes {
            match outcome.await {
                Ok(Reply::Error(text)) => return Err(Reply::Error(text)),
                Ok(_) => {}
                Err(_) => return Err(Reply::error("ERR the stream's writer stopped")),
            }
        }
        self.forget_top();
        let newest = restored.entries.last().map_or(StreamId::MIN, |e| e.id);
        let mut settings = self
            .engine
            .stream_door_settings(&self.stream)
            .map_err(engine_error)?;
        if restored.last_id > newest {
            settings.insert(LAST_ID_SETTING.to_string(), restored.last_id.to_string());
        }
        if restored.max_deleted_id > StreamId::MIN {
            let text = restored.max_deleted_id.to_string();
            settings.insert(MAX_DELETED_SETTING.to_string(), text);
        }
        self.engine
            .set_stream_door_settings(&self.stream, settings)
            .await
            .map_err(engine_error)
    }
}
