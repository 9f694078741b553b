//! XSETID in the stream's writer: the last ID moved forward (kept as the door setting
//! `redis.last-id`), with the checks redis-server makes first.

use super::{engine_error, Writer};
use crate::codec::Reply;
use crate::streams::clock::Top;
use crate::streams::deleted::max_deleted;
use crate::streams::id::StreamId;
use crate::streams::read::{bounds, last_record_id};

impl Writer {
    pub(super) async fn set_id(
        &mut self,
        id: StreamId,
        entries_added: Option<u64>,
    ) -> Result<Reply, Reply> {
        let Some((start, end)) = bounds(&self.engine, &self.stream).map_err(engine_error)? else {
            return Err(Reply::error("ERR no such key"));
        };
        if id < max_deleted(&self.engine, &self.stream) {
            return Err(Reply::error(
                "ERR The ID specified in XSETID is smaller than current max_deleted_entry_id",
            ));
        }
        let newest = last_record_id(&self.engine, &self.stream)
            .await
            .map_err(engine_error)?;
        if newest.is_some_and(|newest| id < newest) {
            return Err(Reply::error(
                "ERR The ID specified in XSETID is smaller than the target stream top item",
            ));
        }
        let deleted = self.deleted.of(&self.engine, &self.stream);
        let length = end - start - deleted.range(start..end).count() as u64;
        if entries_added.is_some_and(|added| added < length) {
            return Err(Reply::error(
                "ERR The entries_added specified in XSETID is smaller than the target stream length",
            ));
        }
        self.store_last_id(id).await.map_err(engine_error)?;
        let top = self.top().await.map_err(engine_error)?;
        self.clock().top = Some(Top { last: id, ..top });
        Ok(Reply::ok())
    }
}
