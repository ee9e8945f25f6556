//! The log: every commit, and the notice of every deleted stream, in checkpoint order.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::Commit;

/// One entry of the log, as [`crate::CommitLog::get_from`] reads it.
///
/// A reader that keeps a read model handles both: a commit adds what its events say; a deleted
/// stream means the read model drops what it holds of that stream (its commits are physically
/// gone from the store).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum LogEntry {
    /// A commit.
    Commit(Commit),
    /// A stream was deleted at this point of the log.
    StreamDeleted(StreamDeleted),
}

/// The notice, in the log, that a stream was deleted ([`crate::PersistenceManagement::delete_stream`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StreamDeleted {
    /// The tenant.
    pub tenant_id: String,
    /// The stream that was deleted.
    pub stream_id: String,
    /// The notice's position in the log.
    pub checkpoint: u64,
    /// When the stream was deleted, in UTC, at microsecond precision.
    pub deleted_at: DateTime<Utc>,
}

impl StreamDeleted {
    /// The notice that `stream_id` of `tenant_id` was deleted at `deleted_at`, at `checkpoint`.
    pub fn new(
        tenant_id: impl Into<String>,
        stream_id: impl Into<String>,
        checkpoint: u64,
        deleted_at: DateTime<Utc>,
    ) -> Self {
        Self {
            tenant_id: tenant_id.into(),
            stream_id: stream_id.into(),
            checkpoint,
            deleted_at,
        }
    }
}

impl LogEntry {
    /// The entry's position in the log: a reader resumes after it.
    pub fn checkpoint(&self) -> u64 {
        match self {
            LogEntry::Commit(commit) => commit.checkpoint,
            LogEntry::StreamDeleted(deleted) => deleted.checkpoint,
        }
    }

    /// The tenant of the stream the entry is about.
    pub fn tenant_id(&self) -> &str {
        match self {
            LogEntry::Commit(commit) => &commit.tenant_id,
            LogEntry::StreamDeleted(deleted) => &deleted.tenant_id,
        }
    }

    /// The stream the entry is about.
    pub fn stream_id(&self) -> &str {
        match self {
            LogEntry::Commit(commit) => &commit.stream_id,
            LogEntry::StreamDeleted(deleted) => &deleted.stream_id,
        }
    }

    /// The commit, if the entry is one.
    pub fn as_commit(&self) -> Option<&Commit> {
        match self {
            LogEntry::Commit(commit) => Some(commit),
            LogEntry::StreamDeleted(_) => None,
        }
    }

    /// The commit, if the entry is one.
    pub fn into_commit(self) -> Option<Commit> {
        match self {
            LogEntry::Commit(commit) => Some(commit),
            LogEntry::StreamDeleted(_) => None,
        }
    }
}

impl From<Commit> for LogEntry {
    fn from(commit: Commit) -> Self {
        LogEntry::Commit(commit)
    }
}
