//! The storage traits every backend implements, and the rules they share.

mod clash;
mod paging;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::stream::{BoxStream, StreamExt};

use crate::commit::{Commit, CommitAttempt};
use crate::error::StoreError;
use crate::snapshot::Snapshot;

pub(crate) use clash::check_follows_head;
pub use clash::resolve_taken_sequence;
pub use paging::{paged, paged_items, Page, PageItem, Resume, FIRST_PAGE, PAGE_BYTES, PAGE_SIZE};

/// A stream of commits read from a store, one page fetched at a time: replaying a stream of a
/// million events never holds all of it in memory.
pub type CommitStream<'a> = BoxStream<'a, Result<Commit, StoreError>>;

/// A stream of commits for replay (see [`CommitStore::get_for_replay`]).
pub type ReplayStream<'a> = BoxStream<'a, Result<ReplayCommit, StoreError>>;

/// What replaying a commit into an aggregate or saga needs: its position and its events, which a
/// backend may hand over still as the stored JSON so they are decoded in one pass, straight into
/// the typed events.
#[derive(Debug, Clone)]
pub struct ReplayCommit {
    /// The commit's sequence.
    pub commit_sequence: u64,
    /// The revision of the commit's last event.
    pub stream_revision: u64,
    /// How many events the commit holds.
    pub event_count: u64,
    /// The events.
    pub events: ReplayEvents,
}

/// A commit's events for replay.
#[derive(Debug, Clone)]
pub enum ReplayEvents {
    /// Already decoded messages.
    Messages(Vec<crate::EventMessage>),
    /// The JSON array of messages as stored (`[{"topic": …, "headers": …, "body": …}, …]`).
    Json(Vec<u8>),
}

impl From<Commit> for ReplayCommit {
    fn from(commit: Commit) -> Self {
        Self {
            commit_sequence: commit.commit_sequence,
            stream_revision: commit.stream_revision,
            event_count: commit.events.len() as u64,
            events: ReplayEvents::Messages(commit.events),
        }
    }
}

/// Reads and appends commits.
///
/// Object safe: `Arc<dyn CommitStore>` is how repositories hold a store.
#[async_trait]
pub trait CommitStore: Send + Sync {
    /// The commits of one stream that hold an event with a revision in
    /// `min_revision..=max_revision`, in order. A commit that straddles either bound is included
    /// whole. A stream that does not exist yields nothing.
    fn get<'a>(
        &'a self,
        tenant_id: &'a str,
        stream_id: &'a str,
        min_revision: u64,
        max_revision: u64,
    ) -> CommitStream<'a>;

    /// The commits of one stream stamped at or before `max_time`, in order.
    fn get_to<'a>(
        &'a self,
        tenant_id: &'a str,
        stream_id: &'a str,
        max_time: DateTime<Utc>,
    ) -> CommitStream<'a>;

    /// Every commit of one tenant stamped at or before `max_time`, in checkpoint order.
    fn get_all_to<'a>(&'a self, tenant_id: &'a str, max_time: DateTime<Utc>) -> CommitStream<'a>;

    /// The commits [`CommitStore::get`] returns, in the form replay needs. Backends that store
    /// events as JSON override it to hand the JSON over undecoded, so that loading an aggregate
    /// decodes each event once, straight into its type.
    fn get_for_replay<'a>(
        &'a self,
        tenant_id: &'a str,
        stream_id: &'a str,
        min_revision: u64,
        max_revision: u64,
    ) -> ReplayStream<'a> {
        use futures::TryStreamExt;
        self.get(tenant_id, stream_id, min_revision, max_revision)
            .map_ok(ReplayCommit::from)
            .boxed()
    }

    /// Appends `attempt` atomically and returns it as stored.
    ///
    /// The sequence must be the stream's next one and the revision must follow the stream's
    /// head. When another writer took the sequence first, the error tells what happened:
    /// [`StoreError::DuplicateCommit`] if this very commit id is stored already, otherwise
    /// [`StoreError::ConflictingCommit`] or [`StoreError::NonConflictingCommit`] as the store's
    /// [`crate::ConflictDetector`] decides over the commits the writer had not seen. A failed
    /// commit leaves the stream exactly as it was.
    async fn commit(&self, attempt: CommitAttempt) -> Result<Commit, StoreError>;
}

/// Reads and writes snapshots.
#[async_trait]
pub trait SnapshotStore: Send + Sync {
    /// The newest snapshot of the stream at or below `max_revision`, if any.
    async fn get_snapshot(
        &self,
        tenant_id: &str,
        stream_id: &str,
        max_revision: u64,
    ) -> Result<Option<Snapshot>, StoreError>;

    /// Stores a snapshot; one at the same revision of the same stream is replaced.
    async fn add_snapshot(&self, snapshot: Snapshot) -> Result<(), StoreError>;
}

/// Setting up, tearing down and reading a whole store.
#[async_trait]
pub trait PersistenceManagement: Send + Sync {
    /// Creates what the store needs (tables, indexes). Idempotent; a store that cannot be
    /// reached or set up is an error, never ignored.
    async fn initialize(&self) -> Result<(), StoreError>;

    /// Removes every commit and snapshot of every tenant, and the store's schema.
    /// [`PersistenceManagement::initialize`] makes it usable again.
    async fn drop_all(&self) -> Result<(), StoreError>;

    /// Removes every commit and snapshot of one tenant and nothing else.
    async fn purge(&self, tenant_id: &str) -> Result<(), StoreError>;

    /// Every commit of every tenant with a checkpoint greater than `checkpoint`, in checkpoint
    /// order (`0` reads everything). A reader that resumes from the last checkpoint it saw never
    /// skips a commit and never sees one twice.
    fn get_from(&self, checkpoint: u64) -> CommitStream<'_>;
}

/// A backend that is all three: what [`crate::connect`] hands out.
pub trait EventStore: CommitStore + SnapshotStore + PersistenceManagement {}

impl<T: CommitStore + SnapshotStore + PersistenceManagement + ?Sized> EventStore for T {}

/// One backend seen through each of its three roles.
#[derive(Clone)]
pub struct Stores {
    /// The commit store.
    pub commits: Arc<dyn CommitStore>,
    /// The snapshot store.
    pub snapshots: Arc<dyn SnapshotStore>,
    /// Persistence management.
    pub management: Arc<dyn PersistenceManagement>,
}

impl Stores {
    /// The three roles of one backend.
    pub fn from_backend<S: EventStore + 'static>(backend: Arc<S>) -> Self {
        Self {
            commits: backend.clone(),
            snapshots: backend.clone(),
            management: backend,
        }
    }
}

impl std::fmt::Debug for Stores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stores").finish_non_exhaustive()
    }
}
