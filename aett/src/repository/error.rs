//! The repository layer's one error type.

use crate::error::StoreError;

/// What can go wrong loading or saving an aggregate or saga.
///
/// Every variant about a stream names its tenant and stream in `tenant` and `stream` fields,
/// and the commit in `commit_sequence` where there is one, as [`StoreError`] does.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RepositoryError {
    /// The store failed, or refused the commit (duplicate, conflicting, non-conflicting…).
    #[error(transparent)]
    Store(#[from] StoreError),

    /// A stored event's topic is not listed by the type being loaded.
    #[error("stream `{stream}` of tenant `{tenant}`, commit {commit_sequence}: topic `{topic}` is not an event of `{target}`")]
    UnknownTopic {
        /// The tenant.
        tenant: String,
        /// The stream.
        stream: String,
        /// The commit holding the event.
        commit_sequence: u64,
        /// The stored topic.
        topic: String,
        /// The aggregate or saga type.
        target: &'static str,
    },

    /// A topic the aggregate or saga lists is declared by another type of the program too
    /// (see [`crate::TopicMap::global`]); nothing is read or written until one is renamed.
    #[error(transparent)]
    DuplicateTopic(#[from] crate::DuplicateTopic),

    /// A stored event is at a version of its shape newer than the program's event type knows
    /// (see [`crate::Event::VERSION`]): written by a newer release of the program.
    #[error("stream `{stream}` of tenant `{tenant}`, commit {commit_sequence}: the event of topic `{topic}` is stored at version {stored}, newer than version {known}, the newest this program knows")]
    NewerEventVersion {
        /// The tenant.
        tenant: String,
        /// The stream.
        stream: String,
        /// The commit holding the event.
        commit_sequence: u64,
        /// The stored topic.
        topic: String,
        /// The version stored.
        stored: u32,
        /// The event type's version.
        known: u32,
    },

    /// The stream was written by another type: its commits record another stream type than the
    /// one being loaded (see [`crate::Aggregate::NAME`]).
    #[error("stream `{stream}` of tenant `{tenant}`, commit {commit_sequence}: written as a `{found}`, not loadable as a `{expected}`")]
    WrongStreamType {
        /// The tenant.
        tenant: String,
        /// The stream.
        stream: String,
        /// The first commit of the other type.
        commit_sequence: u64,
        /// The stream type of the type being loaded.
        expected: &'static str,
        /// The stream type the commit records.
        found: String,
    },

    /// A stored event's body does not decode into its type.
    #[error("stream `{stream}` of tenant `{tenant}`, commit {commit_sequence}: the event of topic `{topic}` does not decode: {source}")]
    Decode {
        /// The tenant.
        tenant: String,
        /// The stream.
        stream: String,
        /// The commit holding the event.
        commit_sequence: u64,
        /// The stored topic.
        topic: String,
        /// The serde error.
        #[source]
        source: serde_json::Error,
    },

    /// An uncommitted event, command or memento could not be serialised.
    #[error("stream `{stream}` of tenant `{tenant}`: cannot serialise {what}: {source}")]
    Encode {
        /// The tenant.
        tenant: String,
        /// The stream.
        stream: String,
        /// What was being serialised.
        what: String,
        /// The serde error.
        #[source]
        source: serde_json::Error,
    },

    /// A stored snapshot does not restore into the aggregate.
    #[error("stream `{stream}` of tenant `{tenant}`: the snapshot at revision {revision} does not restore: {source}")]
    Memento {
        /// The tenant.
        tenant: String,
        /// The stream.
        stream: String,
        /// The snapshot's revision.
        revision: u64,
        /// The serde error.
        #[source]
        source: serde_json::Error,
    },

    /// A stored snapshot's memento is of another version than the aggregate's
    /// `memento_version` (with [`crate::SnapshotFallback::Error`]; by default the load replays
    /// from the start instead).
    #[error("stream `{stream}` of tenant `{tenant}`: the snapshot at revision {revision} holds a memento of version {stored}, not version {expected}")]
    StaleSnapshot {
        /// The tenant.
        tenant: String,
        /// The stream.
        stream: String,
        /// The snapshot's revision.
        revision: u64,
        /// The memento version the snapshot records.
        stored: u32,
        /// The aggregate's memento version.
        expected: u32,
    },

    /// The version asked for cannot be rebuilt: the stream's history before `available_from` was
    /// truncated, and no snapshot covers the gap.
    #[error("stream `{stream}` of tenant `{tenant}`: the history before revision {available_from} was truncated, so version {version} cannot be loaded")]
    HistoryTruncated {
        /// The tenant.
        tenant: String,
        /// The stream.
        stream: String,
        /// The version that was to be loaded (or the revision replay needed next).
        version: u64,
        /// The first revision the stream still holds.
        available_from: u64,
    },

    /// A snapshot was asked of an aggregate in hand that has events not yet saved: its state is
    /// ahead of its stream, and a snapshot of it would hold events the stream does not.
    #[error("stream `{stream}` of tenant `{tenant}`: the aggregate has {events} unsaved events; save it before taking its snapshot")]
    UnsavedEvents {
        /// The tenant.
        tenant: String,
        /// The stream.
        stream: String,
        /// How many events are not saved.
        events: usize,
    },

    /// A snapshot was asked for a stream that has no events at or before the cut-off.
    #[error("stream `{stream}` of tenant `{tenant}` has no events to snapshot")]
    NothingToSnapshot {
        /// The tenant.
        tenant: String,
        /// The stream.
        stream: String,
    },
}

impl RepositoryError {
    /// The error of a stored event of a commit that could not be decoded or applied.
    pub(crate) fn from_apply(
        error: crate::ApplyError,
        tenant: &str,
        stream: &str,
        commit_sequence: u64,
    ) -> Self {
        let (tenant, stream) = (tenant.to_owned(), stream.to_owned());
        match error {
            crate::ApplyError::UnknownTopic { topic, target } => Self::UnknownTopic {
                tenant,
                stream,
                commit_sequence,
                topic,
                target,
            },
            crate::ApplyError::Decode { topic, source } => Self::Decode {
                tenant,
                stream,
                commit_sequence,
                topic,
                source,
            },
            crate::ApplyError::NewerVersion {
                topic,
                stored,
                known,
            } => Self::NewerEventVersion {
                tenant,
                stream,
                commit_sequence,
                topic,
                stored,
                known,
            },
            crate::ApplyError::InvalidVersion { topic, reason } => {
                Self::Store(StoreError::Corrupt {
                    scope: crate::Scope::stream(&tenant, &stream),
                    commit_sequence: Some(commit_sequence),
                    checkpoint: None,
                    reason: format!("the event of topic `{topic}`: {reason}"),
                })
            }
        }
    }

    /// Whether this is a concurrency error after which the caller reloads and retries.
    pub fn is_concurrency_conflict(&self) -> bool {
        matches!(self, Self::Store(error) if error.is_concurrency_conflict())
    }

    pub(crate) fn encode(
        tenant: &str,
        stream: &str,
        what: String,
        source: serde_json::Error,
    ) -> Self {
        Self::Encode {
            tenant: tenant.to_owned(),
            stream: stream.to_owned(),
            what,
            source,
        }
    }
}
