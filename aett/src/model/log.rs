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
    /// The type of what wrote the stream (its last commit's [`Commit::stream_type`]).
    pub stream_type: Option<String>,
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
            stream_type: None,
        }
    }

    /// Sets the type of what wrote the stream.
    pub fn with_stream_type(mut self, stream_type: Option<String>) -> Self {
        self.stream_type = stream_type;
        self
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

    /// The type of what wrote the stream the entry is about, if known.
    pub fn stream_type(&self) -> Option<&str> {
        match self {
            LogEntry::Commit(commit) => commit.stream_type.as_deref(),
            LogEntry::StreamDeleted(deleted) => deleted.stream_type.as_deref(),
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

/// Which entries of the log a reader wants (see [`crate::CommitLog::get_filtered`]): every
/// list left empty lets everything through; a list that is not empty lets through only what
/// it names.
///
/// ```
/// let filter = aett::LogFilter::new().tenant("shop").stream_type("order");
/// # let _ = filter;
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LogFilter {
    /// Tenants whose entries pass.
    pub tenants: Vec<String>,
    /// Stream types ([`Commit::stream_type`]) whose entries pass; an entry without a stream
    /// type does not pass a filter that names types.
    pub stream_types: Vec<String>,
    /// Topics: a commit passes if one of its events has one of them. Deleted-stream notices
    /// have no events, and pass this part of the filter.
    pub topics: Vec<String>,
}

impl LogFilter {
    /// A filter that lets every entry through.
    pub fn new() -> Self {
        Self::default()
    }

    /// Also lets entries of `tenant` through (the first call restricts to it).
    pub fn tenant(mut self, tenant: impl Into<String>) -> Self {
        self.tenants.push(tenant.into());
        self
    }

    /// Also lets entries of streams of `stream_type` through (the first call restricts to it).
    pub fn stream_type(mut self, stream_type: impl Into<String>) -> Self {
        self.stream_types.push(stream_type.into());
        self
    }

    /// Also lets commits holding an event of `topic` through (the first call restricts to it).
    pub fn topic(mut self, topic: impl Into<String>) -> Self {
        self.topics.push(topic.into());
        self
    }

    /// Whether the filter lets everything through.
    pub fn is_empty(&self) -> bool {
        self.tenants.is_empty() && self.stream_types.is_empty() && self.topics.is_empty()
    }

    /// Whether `entry` passes the filter.
    pub fn matches(&self, entry: &LogEntry) -> bool {
        let tenant_ok =
            self.tenants.is_empty() || self.tenants.iter().any(|t| t == entry.tenant_id());
        let type_ok = self.stream_types.is_empty()
            || entry
                .stream_type()
                .is_some_and(|found| self.stream_types.iter().any(|t| t == found));
        let topic_ok = self.topics.is_empty()
            || match entry {
                LogEntry::Commit(commit) => commit
                    .events
                    .iter()
                    .any(|event| self.topics.contains(&event.topic)),
                LogEntry::StreamDeleted(_) => true,
            };
        tenant_ok && type_ok && topic_ok
    }
}
