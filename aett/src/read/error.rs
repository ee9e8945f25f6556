//! The read side's one error type.

use crate::error::{BoxError, StoreError};

/// Why a projection or saga runner stopped.
///
/// Every variant about an event names the projection, and the tenant, stream, commit and
/// checkpoint of the event; the runner's stored checkpoint is before that commit.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunnerError {
    /// The store failed: reading the log, or keeping the checkpoint and lease (another runner
    /// holding the lease is [`StoreError::LeaseHeld`]; losing it, [`StoreError::LeaseLost`]).
    #[error("projection `{projection}`: {source}")]
    Store {
        /// The projection (or saga runner).
        projection: String,
        /// The store's error.
        #[source]
        source: StoreError,
    },

    /// A handler failed.
    #[error("projection `{projection}`: the handler of the event of topic `{topic}` in commit {commit_sequence} of stream `{stream}` of tenant `{tenant}` (checkpoint {checkpoint}) failed: {source}")]
    Handler {
        /// The projection (or saga runner).
        projection: String,
        /// The tenant.
        tenant: String,
        /// The stream.
        stream: String,
        /// The commit's sequence.
        commit_sequence: u64,
        /// The commit's checkpoint.
        checkpoint: u64,
        /// The event's topic (empty for a deleted-stream notice).
        topic: String,
        /// The handler's error.
        #[source]
        source: BoxError,
    },

    /// An event of a listed topic does not decode into its type, or is stored at a version
    /// newer than its type knows ([`crate::ApplyError::NewerVersion`]).
    #[error("projection `{projection}`: the event of topic `{topic}` in commit {commit_sequence} of stream `{stream}` of tenant `{tenant}` (checkpoint {checkpoint}) does not decode: {source}")]
    Decode {
        /// The projection (or saga runner).
        projection: String,
        /// The tenant.
        tenant: String,
        /// The stream.
        stream: String,
        /// The commit's sequence.
        commit_sequence: u64,
        /// The commit's checkpoint.
        checkpoint: u64,
        /// The event's topic.
        topic: String,
        /// What went wrong.
        #[source]
        source: crate::ApplyError,
    },

    /// A topic the projection or saga lists is declared by another type of the program too
    /// (see [`crate::TopicMap::global`]); the runner does not start.
    #[error("projection `{projection}` does not start: {source}")]
    DuplicateTopic {
        /// The projection (or saga runner).
        projection: String,
        /// The topic and the two types.
        #[source]
        source: crate::DuplicateTopic,
    },

    /// A commit in the log is damaged and cannot be read ([`StoreError::Corrupt`], which names
    /// its tenant, stream, commit and checkpoint). The runner can be told to skip such commits
    /// instead ([`crate::OnDamage::Skip`]).
    #[error("projection `{projection}` met a damaged commit: {source}")]
    Damaged {
        /// The projection (or saga runner).
        projection: String,
        /// The store's report of the damage.
        #[source]
        source: StoreError,
    },

    /// The runner's task panicked or was cancelled.
    #[error("projection `{projection}`: the runner's task ended abnormally: {reason}")]
    Aborted {
        /// The projection (or saga runner).
        projection: String,
        /// What happened.
        reason: String,
    },
}

impl RunnerError {
    /// The projection (or saga runner) the error is about.
    pub fn projection(&self) -> &str {
        match self {
            Self::Store { projection, .. }
            | Self::Handler { projection, .. }
            | Self::Decode { projection, .. }
            | Self::DuplicateTopic { projection, .. }
            | Self::Damaged { projection, .. }
            | Self::Aborted { projection, .. } => projection,
        }
    }

    /// The checkpoint of the commit the error is about, if it is about one.
    pub fn checkpoint(&self) -> Option<u64> {
        match self {
            Self::Handler { checkpoint, .. } | Self::Decode { checkpoint, .. } => Some(*checkpoint),
            Self::Damaged { source, .. } => source.checkpoint(),
            _ => None,
        }
    }
}
