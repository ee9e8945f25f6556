//! The store layer's one error type.

use std::fmt;

use uuid::Uuid;

use crate::commit::Commit;

/// Boxed source error of a backend (driver errors, I/O errors).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What a failed store operation was working on, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// The whole store (initialize, drop, reading every tenant).
    Store,
    /// One tenant (purge, reading a tenant).
    Tenant(String),
    /// One stream of one tenant.
    Stream {
        /// The tenant.
        tenant: String,
        /// The stream.
        stream: String,
    },
}

impl Scope {
    /// The scope of one stream.
    pub fn stream(tenant: &str, stream: &str) -> Self {
        Self::Stream {
            tenant: tenant.to_owned(),
            stream: stream.to_owned(),
        }
    }

    /// The scope of one tenant.
    pub fn tenant(tenant: &str) -> Self {
        Self::Tenant(tenant.to_owned())
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Store => f.write_str("the whole store"),
            Scope::Tenant(tenant) => write!(f, "tenant `{tenant}`"),
            Scope::Stream { tenant, stream } => write!(f, "stream `{stream}` of tenant `{tenant}`"),
        }
    }
}

/// Everything that can go wrong in the event store layer: commit stores, snapshot stores,
/// persistence management and store URLs.
///
/// Every variant names what it failed on (tenant and stream where there is one).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A commit with this commit id is already stored on the stream: the attempt is a retry of
    /// a commit that succeeded, and can be treated as done.
    #[error("duplicate commit {commit_id} on stream `{stream}` of tenant `{tenant}`: it is already stored")]
    DuplicateCommit {
        /// The tenant.
        tenant: String,
        /// The stream.
        stream: String,
        /// The commit id that is already stored.
        commit_id: Uuid,
    },

    /// Another writer committed to the stream first, and the conflict detector found that its
    /// events conflict with the attempt's.
    #[error(
        "commit {commit_sequence} on stream `{stream}` of tenant `{tenant}` conflicts with {} commit(s) written since the writer read the stream",
        committed.len()
    )]
    ConflictingCommit {
        /// The tenant.
        tenant: String,
        /// The stream.
        stream: String,
        /// The sequence the attempt asked for.
        commit_sequence: u64,
        /// The commits the writer had not seen, in order.
        committed: Vec<Commit>,
    },

    /// Another writer committed to the stream first, but its events do not conflict with the
    /// attempt's: reload (or apply `committed`) and commit again.
    #[error(
        "commit {commit_sequence} on stream `{stream}` of tenant `{tenant}` was overtaken by {} commit(s) that do not conflict with it; reload and retry",
        committed.len()
    )]
    NonConflictingCommit {
        /// The tenant.
        tenant: String,
        /// The stream.
        stream: String,
        /// The sequence the attempt asked for.
        commit_sequence: u64,
        /// The commits the writer had not seen, in order: what a caller needs to rebase.
        committed: Vec<Commit>,
    },

    /// The stream does not exist (or has fewer revisions than were asked for).
    #[error("stream `{stream}` of tenant `{tenant}` not found")]
    StreamNotFound {
        /// The tenant.
        tenant: String,
        /// The stream.
        stream: String,
    },

    /// The commit attempt breaks a rule every store enforces (see [`crate::CommitAttempt::validate`]).
    #[error("invalid commit on stream `{stream}` of tenant `{tenant}`: {reason}")]
    InvalidCommit {
        /// The tenant.
        tenant: String,
        /// The stream.
        stream: String,
        /// What is wrong.
        reason: String,
    },

    /// A stored commit or snapshot could not be read back: its data is damaged.
    #[error("corrupt data in {scope} (commit sequence {commit_sequence:?}, checkpoint {checkpoint:?}): {reason}")]
    Corrupt {
        /// Where the damaged row is.
        scope: Scope,
        /// The commit sequence of the damaged row, where known.
        commit_sequence: Option<u64>,
        /// The checkpoint of the damaged row, where known.
        checkpoint: Option<u64>,
        /// What could not be read.
        reason: String,
    },

    /// Headers or events could not be serialised for storage.
    #[error("cannot serialise {what} for {scope}: {source}")]
    Serialization {
        /// Where.
        scope: Scope,
        /// What was being serialised.
        what: &'static str,
        /// The serde error.
        #[source]
        source: serde_json::Error,
    },

    /// The conflict detector could not decode an event it was asked to compare.
    #[error("conflict detection on stream `{stream}` of tenant `{tenant}` failed to decode an event of topic `{topic}`: {source}")]
    ConflictDetection {
        /// The tenant.
        tenant: String,
        /// The stream.
        stream: String,
        /// The topic of the event that did not decode.
        topic: String,
        /// The serde error.
        #[source]
        source: serde_json::Error,
    },

    /// The storage backend failed.
    #[error("storage failure during {operation} on {scope}: {source}")]
    Storage {
        /// The store operation that failed (e.g. `"commit"`, `"purge"`).
        operation: &'static str,
        /// What it was working on.
        scope: Scope,
        /// The backend's error.
        #[source]
        source: BoxError,
    },

    /// The store is configured wrongly (a bad table name, a bad store URL).
    #[error("invalid store configuration: {0}")]
    Configuration(String),

    /// The store URL names a backend whose cargo feature is not enabled.
    #[error("store URL scheme `{scheme}` needs aett's `{feature}` cargo feature; enable it in Cargo.toml")]
    FeatureDisabled {
        /// The URL scheme.
        scheme: String,
        /// The feature to enable.
        feature: &'static str,
    },
}

impl StoreError {
    /// Wraps a backend error as [`StoreError::Storage`].
    pub fn storage(operation: &'static str, scope: Scope, source: impl Into<BoxError>) -> Self {
        Self::Storage {
            operation,
            scope,
            source: source.into(),
        }
    }

    /// Whether this is a concurrency error (conflicting or not) after which a writer reloads.
    pub fn is_concurrency_conflict(&self) -> bool {
        matches!(
            self,
            Self::ConflictingCommit { .. } | Self::NonConflictingCommit { .. }
        )
    }
}
