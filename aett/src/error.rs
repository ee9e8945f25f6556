//! The store layer's one error type, and the context every store error carries.

use std::fmt;
use std::time::Duration;

use uuid::Uuid;

use crate::model::Commit;

/// Boxed source error of a backend (driver errors, I/O errors).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What a failed store operation was working on: the whole store, one tenant or one stream.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Scope {
    /// The whole store (initialize, drop, reading every tenant's log).
    Store,
    /// One tenant (purge, reading a tenant's log).
    Tenant {
        /// The tenant.
        tenant: String,
    },
    /// One stream of one tenant.
    Stream {
        /// The tenant.
        tenant: String,
        /// The stream.
        stream: String,
    },
    /// A projection's checkpoint and lease.
    Projection {
        /// The projection's name.
        projection: String,
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

    /// The scope of one projection's checkpoint.
    pub fn projection(projection: &str) -> Self {
        Self::Projection {
            projection: projection.to_owned(),
        }
    }

    /// The scope of one tenant.
    pub fn tenant(tenant: &str) -> Self {
        Self::Tenant {
            tenant: tenant.to_owned(),
        }
    }

    /// The tenant, unless the scope is the whole store.
    pub fn tenant_id(&self) -> Option<&str> {
        match self {
            Scope::Store | Scope::Projection { .. } => None,
            Scope::Tenant { tenant } | Scope::Stream { tenant, .. } => Some(tenant),
        }
    }

    /// The stream, when the scope is one stream.
    pub fn stream_id(&self) -> Option<&str> {
        match self {
            Scope::Stream { stream, .. } => Some(stream),
            _ => None,
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Store => f.write_str("the whole store"),
            Scope::Tenant { tenant } => write!(f, "tenant `{tenant}`"),
            Scope::Stream { tenant, stream } => write!(f, "stream `{stream}` of tenant `{tenant}`"),
            Scope::Projection { projection } => write!(f, "projection `{projection}`"),
        }
    }
}

/// The store operation that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Operation {
    /// Opening a store (a file, a connection pool).
    Open,
    /// Connecting to a server, or taking a connection from the pool.
    Connect,
    /// [`crate::PersistenceManagement::initialize`].
    Initialize,
    /// Reading the version of the store's layout.
    SchemaVersion,
    /// [`crate::PersistenceManagement::drop_all`].
    Drop,
    /// [`crate::PersistenceManagement::purge`].
    Purge,
    /// [`crate::PersistenceManagement::delete_stream`].
    DeleteStream,
    /// [`crate::PersistenceManagement::truncate_stream`].
    TruncateStream,
    /// [`crate::SnapshotStore::streams_to_snapshot`].
    StreamsToSnapshot,
    /// [`crate::CommitStore::commit`].
    Commit,
    /// Reading one stream by revision ([`crate::CommitStore::get`], replay).
    ReadStream,
    /// Reading one stream up to a time ([`crate::CommitStore::get_to`]).
    ReadStreamToTime,
    /// Reading every tenant's log from a checkpoint ([`crate::CommitLog::get_from`]).
    ReadLog,
    /// Reading one tenant's log from a checkpoint ([`crate::CommitLog::get_tenant_from`]).
    ReadTenantLog,
    /// Reading one tenant's log up to a time ([`crate::CommitLog::get_all_to`]).
    ReadTenantToTime,
    /// [`crate::SnapshotStore::get_snapshot`].
    GetSnapshot,
    /// [`crate::SnapshotStore::add_snapshot`].
    AddSnapshot,
    /// Reading a projection's checkpoint ([`crate::CheckpointStore::load_checkpoint`]).
    LoadCheckpoint,
    /// Saving a projection's checkpoint, alone or with the read model's transaction.
    SaveCheckpoint,
    /// Taking or renewing a projection's lease ([`crate::CheckpointStore::acquire_lease`]).
    AcquireLease,
    /// Giving a projection's lease up ([`crate::CheckpointStore::release_lease`]).
    ReleaseLease,
    /// Listening for new commits ([`crate::CommitLog::wakeups`]).
    Listen,
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Operation::Open => "open",
            Operation::Connect => "connect",
            Operation::Initialize => "initialize",
            Operation::SchemaVersion => "read the schema version",
            Operation::Drop => "drop",
            Operation::Purge => "purge",
            Operation::DeleteStream => "delete stream",
            Operation::TruncateStream => "truncate stream",
            Operation::StreamsToSnapshot => "streams to snapshot",
            Operation::Commit => "commit",
            Operation::ReadStream => "read stream",
            Operation::ReadStreamToTime => "read stream to time",
            Operation::ReadLog => "read log",
            Operation::ReadTenantLog => "read tenant log",
            Operation::ReadTenantToTime => "read tenant to time",
            Operation::GetSnapshot => "get snapshot",
            Operation::AddSnapshot => "add snapshot",
            Operation::LoadCheckpoint => "load checkpoint",
            Operation::SaveCheckpoint => "save checkpoint",
            Operation::AcquireLease => "acquire lease",
            Operation::ReleaseLease => "release lease",
            Operation::Listen => "listen for commits",
        })
    }
}

/// Everything that can go wrong in the event store layer: commit stores, snapshot stores, the
/// log, persistence management and store URLs.
///
/// Context is carried the same way in every variant: a variant that is always about one stream
/// has `tenant` and `stream` fields; one that may be about the whole store, a tenant or a stream
/// has a [`Scope`]; positions are `commit_sequence` and `checkpoint`. [`StoreError::tenant`],
/// [`StoreError::stream`], [`StoreError::commit_sequence`] and [`StoreError::checkpoint`] read
/// them from any variant.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
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
        /// The sequence the attempt asked for.
        commit_sequence: u64,
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

    /// The commit attempt breaks a rule every store enforces (see
    /// [`crate::CommitAttempt::validate`]).
    #[error(
        "invalid commit {commit_sequence} on stream `{stream}` of tenant `{tenant}`: {reason}"
    )]
    InvalidCommit {
        /// The tenant.
        tenant: String,
        /// The stream.
        stream: String,
        /// The sequence the attempt asked for.
        commit_sequence: u64,
        /// What is wrong.
        reason: String,
    },

    /// A truncation was refused: the stream has no snapshot at or after the revision, so its
    /// latest state could not be loaded without the history to be removed. Nothing was removed.
    #[error("truncating stream `{stream}` of tenant `{tenant}` before revision {revision} refused: no snapshot at or after that revision")]
    TruncationRefused {
        /// The tenant.
        tenant: String,
        /// The stream.
        stream: String,
        /// The revision asked to truncate before.
        revision: u64,
    },

    /// A stored commit or snapshot could not be read back: its data is damaged. A reader has
    /// received every intact commit before this one; reading again from `checkpoint` (the log)
    /// or after `commit_sequence` (a stream) continues right after it.
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
        /// Why it did not decode.
        #[source]
        source: Box<crate::ApplyError>,
    },

    /// The storage backend failed.
    #[error("storage failure during {operation} on {scope}: {source}")]
    Storage {
        /// The store operation that failed.
        operation: Operation,
        /// What it was working on.
        scope: Scope,
        /// The backend's error.
        #[source]
        source: BoxError,
    },

    /// The operation did not finish within its configured time. For a commit the outcome is
    /// unknown: retry with the same commit id, and a [`StoreError::DuplicateCommit`] means the
    /// first attempt was stored.
    #[error("{operation} on {scope} timed out after {after:?}")]
    Timeout {
        /// The store operation that timed out.
        operation: Operation,
        /// What it was working on.
        scope: Scope,
        /// The limit that was reached.
        after: Duration,
    },

    /// The backend cannot offer this operation (see the backend's documentation for why).
    #[error("{operation} is not supported by the {backend} backend: {reason}")]
    Unsupported {
        /// The operation asked for.
        operation: Operation,
        /// The backend.
        backend: &'static str,
        /// Why not.
        reason: &'static str,
    },

    /// Another runner holds the projection's lease: two runners must not both process one
    /// projection. It expires at `until` unless its holder renews it.
    #[error("projection `{projection}` is leased by another runner until {until}")]
    LeaseHeld {
        /// The projection.
        projection: String,
        /// When the other runner's lease expires.
        until: chrono::DateTime<chrono::Utc>,
    },

    /// The runner's lease on the projection expired and another runner took it over; the
    /// checkpoint was not saved, and this runner must stop.
    #[error("the lease on projection `{projection}` was lost to another runner; the checkpoint was not saved")]
    LeaseLost {
        /// The projection.
        projection: String,
    },

    /// The store is configured wrongly (a bad table name, a bad store URL, a table that is not
    /// aett's).
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
    pub fn storage(operation: Operation, scope: Scope, source: impl Into<BoxError>) -> Self {
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

    /// The tenant the error is about, if it is about one.
    pub fn tenant(&self) -> Option<&str> {
        match self {
            Self::DuplicateCommit { tenant, .. }
            | Self::ConflictingCommit { tenant, .. }
            | Self::NonConflictingCommit { tenant, .. }
            | Self::StreamNotFound { tenant, .. }
            | Self::InvalidCommit { tenant, .. }
            | Self::TruncationRefused { tenant, .. }
            | Self::ConflictDetection { tenant, .. } => Some(tenant),
            Self::Corrupt { scope, .. }
            | Self::Serialization { scope, .. }
            | Self::Storage { scope, .. }
            | Self::Timeout { scope, .. } => scope.tenant_id(),
            Self::Unsupported { .. }
            | Self::Configuration(_)
            | Self::FeatureDisabled { .. }
            | Self::LeaseHeld { .. }
            | Self::LeaseLost { .. } => None,
        }
    }

    /// The stream the error is about, if it is about one.
    pub fn stream(&self) -> Option<&str> {
        match self {
            Self::DuplicateCommit { stream, .. }
            | Self::ConflictingCommit { stream, .. }
            | Self::NonConflictingCommit { stream, .. }
            | Self::StreamNotFound { stream, .. }
            | Self::InvalidCommit { stream, .. }
            | Self::TruncationRefused { stream, .. }
            | Self::ConflictDetection { stream, .. } => Some(stream),
            Self::Corrupt { scope, .. }
            | Self::Serialization { scope, .. }
            | Self::Storage { scope, .. }
            | Self::Timeout { scope, .. } => scope.stream_id(),
            Self::Unsupported { .. }
            | Self::Configuration(_)
            | Self::FeatureDisabled { .. }
            | Self::LeaseHeld { .. }
            | Self::LeaseLost { .. } => None,
        }
    }

    /// The commit sequence the error is about, if known.
    pub fn commit_sequence(&self) -> Option<u64> {
        match self {
            Self::DuplicateCommit {
                commit_sequence, ..
            }
            | Self::ConflictingCommit {
                commit_sequence, ..
            }
            | Self::NonConflictingCommit {
                commit_sequence, ..
            }
            | Self::InvalidCommit {
                commit_sequence, ..
            } => Some(*commit_sequence),
            Self::Corrupt {
                commit_sequence, ..
            } => *commit_sequence,
            _ => None,
        }
    }

    /// The checkpoint of the commit the error is about, if known: a log reader resumes from it.
    pub fn checkpoint(&self) -> Option<u64> {
        match self {
            Self::Corrupt { checkpoint, .. } => *checkpoint,
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_reads_the_same_from_every_kind_of_variant() {
        let duplicate = StoreError::DuplicateCommit {
            tenant: "t".into(),
            stream: "s".into(),
            commit_id: Uuid::nil(),
            commit_sequence: 3,
        };
        assert_eq!(
            (duplicate.tenant(), duplicate.stream()),
            (Some("t"), Some("s"))
        );
        assert_eq!(duplicate.commit_sequence(), Some(3));
        let corrupt = StoreError::Corrupt {
            scope: Scope::stream("t", "s"),
            commit_sequence: Some(2),
            checkpoint: Some(9),
            reason: "x".into(),
        };
        assert_eq!(
            (corrupt.tenant(), corrupt.stream(), corrupt.checkpoint()),
            (Some("t"), Some("s"), Some(9))
        );
        let storage = StoreError::storage(Operation::Purge, Scope::tenant("t"), "boom");
        assert_eq!((storage.tenant(), storage.stream()), (Some("t"), None));
        assert_eq!(
            storage.to_string(),
            "storage failure during purge on tenant `t`: boom"
        );
    }
}
