//! Projection checkpoints kept by the store itself, with a lease so one runner at a time
//! processes a projection.

use std::any::Any;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{Operation, StoreError};

/// A projection's stored position: the checkpoint of the last log entry it has handled, and
/// the damaged commits it was told to skip.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ProjectionPosition {
    /// The checkpoint of the last entry handled (`0`: nothing yet).
    pub checkpoint: u64,
    /// The commits skipped as damaged, oldest first.
    pub skipped: Vec<SkippedCommit>,
}

impl ProjectionPosition {
    /// A position at `checkpoint` with the given skipped commits.
    pub fn new(checkpoint: u64, skipped: Vec<SkippedCommit>) -> Self {
        Self {
            checkpoint,
            skipped,
        }
    }
}

/// A damaged commit a runner skipped instead of stopping, recorded with the projection's
/// checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SkippedCommit {
    /// The checkpoint of the damaged commit.
    pub checkpoint: u64,
    /// Its tenant, where known.
    pub tenant_id: Option<String>,
    /// Its stream, where known.
    pub stream_id: Option<String>,
    /// Why it could not be read.
    pub reason: String,
    /// When it was skipped.
    pub skipped_at: DateTime<Utc>,
}

impl SkippedCommit {
    /// The record of skipping the damaged commit at `checkpoint`, now.
    pub fn new(
        checkpoint: u64,
        tenant_id: Option<String>,
        stream_id: Option<String>,
        reason: impl Into<String>,
    ) -> Self {
        Self {
            checkpoint,
            tenant_id,
            stream_id,
            reason: reason.into(),
            skipped_at: chrono::SubsecRound::trunc_subsecs(Utc::now(), 6),
        }
    }
}

/// The lease a runner holds on a projection: its owner id and how long a renewal lasts.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Lease {
    /// The projection's name.
    pub projection: String,
    /// The runner's id.
    pub owner: Uuid,
    /// How long the lease lasts after each renewal.
    pub ttl: Duration,
}

impl Lease {
    /// A lease on `projection` for a fresh owner id.
    pub fn new(projection: impl Into<String>, ttl: Duration) -> Self {
        Self {
            projection: projection.into(),
            owner: Uuid::new_v4(),
            ttl,
        }
    }

    /// The lease's time to live in whole microseconds, as stores keep it.
    pub fn ttl_micros(&self) -> i64 {
        i64::try_from(self.ttl.as_micros()).unwrap_or(i64::MAX)
    }
}

/// Stores projection checkpoints next to the commits, so a read model needs no other system,
/// and leases them so two runners never both process one projection.
///
/// Every save is fenced by the lease: a runner whose lease another runner took over cannot
/// move the checkpoint ([`StoreError::LeaseLost`]).
#[async_trait]
pub trait CheckpointStore: Send + Sync {
    /// The projection's stored position, without taking its lease (for tools and tests).
    /// `None` for a projection never saved.
    async fn load_checkpoint(
        &self,
        projection: &str,
    ) -> Result<Option<ProjectionPosition>, StoreError>;

    /// Takes the projection's lease (or renews it, for its holder) until `ttl` from now, and
    /// returns its stored position. Another owner's lease that has not expired is
    /// [`StoreError::LeaseHeld`].
    async fn acquire_lease(&self, lease: &Lease) -> Result<ProjectionPosition, StoreError>;

    /// Stores the projection's checkpoint (and a commit it skipped, if any) and renews the
    /// lease. [`StoreError::LeaseLost`] when another runner holds the lease now.
    async fn save_checkpoint(
        &self,
        lease: &Lease,
        checkpoint: u64,
        skipped: Option<SkippedCommit>,
    ) -> Result<(), StoreError>;

    /// Gives the lease up, so another runner may start at once; the checkpoint stays.
    async fn release_lease(&self, lease: &Lease) -> Result<(), StoreError>;

    /// Starts a transaction of the store's own database in which a batch's handlers write the
    /// read model and the checkpoint advances: both or neither are kept (exactly once). The
    /// handlers reach the transaction through [`crate::EventContext::transaction`]. Backends
    /// without such transactions answer [`StoreError::Unsupported`], the default.
    async fn begin_checkpoint_transaction(
        &self,
        lease: &Lease,
    ) -> Result<Box<dyn CheckpointTransaction>, StoreError> {
        let _ = lease;
        Err(StoreError::Unsupported {
            operation: Operation::SaveCheckpoint,
            backend: "this",
            reason: "it has no transactions that a read model can share",
        })
    }
}

/// A transaction of the store's database, open for one batch of a projection run exactly
/// once: the handlers write the read model through it, then [`CheckpointTransaction::commit`]
/// advances the checkpoint in it and commits. Dropping it without committing rolls it back.
#[async_trait]
pub trait CheckpointTransaction: Send + Sync {
    /// The backend's transaction, which handlers downcast to the backend's type (see the
    /// backend's documentation: `aett::backends::sqlite::SqliteTransaction`,
    /// `aett::backends::postgres::PostgresTransaction`).
    fn as_any(&self) -> &(dyn Any + Send + Sync);

    /// Stores the checkpoint (and a skipped commit), renews the lease and commits everything
    /// written in the transaction. [`StoreError::LeaseLost`] (and nothing kept) when another
    /// runner holds the lease now.
    async fn commit(
        self: Box<Self>,
        checkpoint: u64,
        skipped: Option<SkippedCommit>,
    ) -> Result<(), StoreError>;
}
