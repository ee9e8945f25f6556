//! What a handler learns about the event in hand besides the event itself.

use std::any::Any;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::model::{Commit, Correlation, Headers, StreamDeleted};
use crate::store::ReplayLogCommit;

static NO_HEADERS: Headers = Headers::new();

/// Where an event comes from: its tenant, stream, stream type, commit, checkpoint, revision,
/// stamp and headers; and, for a projection run exactly once, the transaction its read model
/// is written in.
#[derive(Clone, Copy)]
#[non_exhaustive]
pub struct EventContext<'a> {
    /// The tenant.
    pub tenant_id: &'a str,
    /// The stream.
    pub stream_id: &'a str,
    /// The type of what wrote the stream ([`Commit::stream_type`]).
    pub stream_type: Option<&'a str>,
    /// The commit's id (nil for a deleted-stream notice).
    pub commit_id: Uuid,
    /// The commit's sequence in its stream (0 for a deleted-stream notice).
    pub commit_sequence: u64,
    /// The commit's position in the log: the checkpoint a runner saves after handling it.
    pub checkpoint: u64,
    /// The event's revision in its stream (0 for a deleted-stream notice).
    pub revision: u64,
    /// When the commit was made (or the stream deleted).
    pub commit_stamp: DateTime<Utc>,
    /// The commit's headers.
    pub commit_headers: &'a Headers,
    /// The event's own headers.
    pub event_headers: &'a Headers,
    /// The event's position in its commit, from 0 (0 for a deleted-stream notice).
    pub event_index: usize,
    transaction: Option<&'a (dyn Any + Send + Sync)>,
}

impl std::fmt::Debug for EventContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventContext")
            .field("tenant_id", &self.tenant_id)
            .field("stream_id", &self.stream_id)
            .field("stream_type", &self.stream_type)
            .field("commit_id", &self.commit_id)
            .field("commit_sequence", &self.commit_sequence)
            .field("checkpoint", &self.checkpoint)
            .field("revision", &self.revision)
            .field("commit_stamp", &self.commit_stamp)
            .field("in_transaction", &self.transaction.is_some())
            .finish_non_exhaustive()
    }
}

impl<'a> EventContext<'a> {
    /// The context of the event at `index` of `commit` (for handlers under test, too).
    ///
    /// # Panics
    /// When `commit` has no event at `index`.
    pub fn of_event(commit: &'a Commit, index: usize) -> Self {
        Self {
            tenant_id: &commit.tenant_id,
            stream_id: &commit.stream_id,
            stream_type: commit.stream_type.as_deref(),
            commit_id: commit.commit_id,
            commit_sequence: commit.commit_sequence,
            checkpoint: commit.checkpoint,
            revision: commit.first_revision() + index as u64,
            commit_stamp: commit.commit_stamp,
            commit_headers: &commit.headers,
            event_headers: &commit.events[index].headers,
            event_index: index,
            transaction: None,
        }
    }

    /// The context of the event at `index` of a replayed commit whose headers are read.
    pub(crate) fn of_replayed(
        commit: &'a ReplayLogCommit,
        commit_headers: &'a Headers,
        index: usize,
        count: usize,
        event_headers: &'a Headers,
    ) -> Self {
        let first = (commit.stream_revision + 1).saturating_sub(count as u64);
        Self {
            tenant_id: &commit.tenant_id,
            stream_id: &commit.stream_id,
            stream_type: commit.stream_type.as_deref(),
            commit_id: commit.commit_id,
            commit_sequence: commit.commit_sequence,
            checkpoint: commit.checkpoint,
            revision: first + index as u64,
            commit_stamp: commit.commit_stamp,
            commit_headers,
            event_headers,
            event_index: index,
            transaction: None,
        }
    }

    /// The context of a deleted-stream notice.
    pub fn of_deletion(deleted: &'a StreamDeleted) -> Self {
        Self {
            tenant_id: &deleted.tenant_id,
            stream_id: &deleted.stream_id,
            stream_type: deleted.stream_type.as_deref(),
            commit_id: Uuid::nil(),
            commit_sequence: 0,
            checkpoint: deleted.checkpoint,
            revision: 0,
            commit_stamp: deleted.deleted_at,
            commit_headers: &NO_HEADERS,
            event_headers: &NO_HEADERS,
            event_index: 0,
            transaction: None,
        }
    }

    /// The correlation for what handling this event causes (a command sent, a commit made):
    /// the event's conversation, and the event as the cause (see
    /// [`Correlation::caused_by_event`]).
    pub fn correlation(&self) -> Correlation {
        Correlation::caused_by_event(
            self.commit_id,
            self.event_index,
            self.commit_headers,
            self.event_headers,
        )
    }

    /// The same context inside a transaction of the store's database.
    pub fn in_transaction(mut self, transaction: &'a (dyn Any + Send + Sync)) -> Self {
        self.transaction = Some(transaction);
        self
    }

    /// The transaction of the store's database the read model is written in, when the
    /// projection runs exactly once (see [`crate::Delivery::ExactlyOnce`]), as the backend's
    /// type: `aett::backends::sqlite::SqliteTransaction` or
    /// `aett::backends::postgres::PostgresTransaction`. `None` when the projection runs at
    /// least once, or `T` is another backend's type.
    pub fn transaction<T: Any>(&self) -> Option<&'a T> {
        self.transaction?.downcast_ref()
    }
}
