//! The roles a store plays, as object-safe traits every backend implements.
//!
//! | trait | what it can do | who holds it |
//! |---|---|---|
//! | [`CommitStore`] | read one stream, append commits | repositories, [`crate::EventStream`] |
//! | [`SnapshotStore`] | read and write snapshots | the aggregate repository |
//! | [`CommitLog`] | read the log: every commit in checkpoint order, of all tenants or of one | projections, tools |
//! | [`CheckpointStore`] | keep projections' checkpoints and leases | projection and saga runners |
//! | [`PersistenceManagement`] | set up, drop, purge | the application's setup code |
//! | [`EventStore`] | all five | what [`crate::connect`] hands out |
//!
//! A reader of the log holds an `Arc<dyn CommitLog>`, which cannot purge or drop anything. One
//! `Arc<dyn EventStore>` serves every role: it coerces to any of them
//! (`let log: Arc<dyn CommitLog> = store.clone();`).
//!
//! Every read returns a `'static` stream that owns what it needs, so it can be moved into a
//! spawned task; commits are fetched a page at a time, so replaying a stream of a million events
//! never holds all of it in memory.

mod checkpoint;

use crate::model::Headers;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::stream::{BoxStream, StreamExt, TryStreamExt};

use crate::error::StoreError;
use crate::model::{Commit, CommitAttempt, EventMessage, LogEntry, LogFilter, Snapshot};

pub use checkpoint::{
    CheckpointStore, CheckpointTransaction, Lease, ProjectionPosition, SkippedCommit,
};

/// Signals that commits may have been appended to the log (see [`CommitLog::wakeups`]).
pub type Wakeups = BoxStream<'static, Result<(), StoreError>>;

/// A stream of commits read from a store, one page fetched at a time. It owns what it needs
/// (`'static`). After an `Err` it ends; every intact commit before the failure was yielded.
pub type CommitStream = BoxStream<'static, Result<Commit, StoreError>>;

/// A stream of log entries (commits and deleted-stream notices) in checkpoint order, read from a
/// store one page at a time; `'static`, and ends after an `Err` as [`CommitStream`] does.
pub type LogStream = BoxStream<'static, Result<LogEntry, StoreError>>;

/// A stream of commits for replay (see [`CommitStore::get_for_replay`]).
pub type ReplayStream = BoxStream<'static, Result<ReplayCommit, StoreError>>;

/// A stream of log entries for replay into projections (see
/// [`CommitLog::get_filtered_for_replay`]).
pub type ReplayLogStream = BoxStream<'static, Result<ReplayEntry, StoreError>>;

/// An entry of the log in the form a projection runner replays: a commit whose headers and
/// events a backend may hand over as the stored JSON, decoded by the runner in one pass
/// straight into the typed events; or a deleted-stream notice.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ReplayEntry {
    /// A commit.
    Commit(ReplayLogCommit),
    /// A stream was deleted at this point of the log.
    StreamDeleted(crate::model::StreamDeleted),
}

impl ReplayEntry {
    /// The entry's position in the log.
    pub fn checkpoint(&self) -> u64 {
        match self {
            ReplayEntry::Commit(commit) => commit.checkpoint,
            ReplayEntry::StreamDeleted(deleted) => deleted.checkpoint,
        }
    }
}

impl From<LogEntry> for ReplayEntry {
    fn from(entry: LogEntry) -> Self {
        match entry {
            LogEntry::Commit(commit) => ReplayEntry::Commit(ReplayLogCommit {
                tenant_id: commit.tenant_id,
                stream_id: commit.stream_id,
                stream_type: commit.stream_type,
                commit_id: commit.commit_id,
                commit_sequence: commit.commit_sequence,
                stream_revision: commit.stream_revision,
                commit_stamp: commit.commit_stamp,
                checkpoint: commit.checkpoint,
                headers: ReplayHeaders::Parsed(commit.headers),
                events: ReplayEvents::Messages(commit.events),
            }),
            LogEntry::StreamDeleted(deleted) => ReplayEntry::StreamDeleted(deleted),
        }
    }
}

/// A commit of the log for replay: its place and identity read, its headers and events
/// perhaps still the stored JSON.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ReplayLogCommit {
    /// The tenant.
    pub tenant_id: String,
    /// The stream.
    pub stream_id: String,
    /// The type of what wrote the stream.
    pub stream_type: Option<String>,
    /// The commit's id.
    pub commit_id: uuid::Uuid,
    /// The commit's sequence.
    pub commit_sequence: u64,
    /// The revision of its last event.
    pub stream_revision: u64,
    /// When it was made.
    pub commit_stamp: DateTime<Utc>,
    /// Its position in the log.
    pub checkpoint: u64,
    /// Its headers.
    pub headers: ReplayHeaders,
    /// Its events.
    pub events: ReplayEvents,
}

impl ReplayLogCommit {
    /// A commit read for replay, its headers and events the stored JSON.
    #[allow(clippy::too_many_arguments)]
    pub fn from_json(
        tenant_id: String,
        stream_id: String,
        stream_type: Option<String>,
        commit_id: uuid::Uuid,
        commit_sequence: u64,
        stream_revision: u64,
        commit_stamp: DateTime<Utc>,
        checkpoint: u64,
        headers: Vec<u8>,
        events: Vec<u8>,
    ) -> Self {
        Self {
            tenant_id,
            stream_id,
            stream_type,
            commit_id,
            commit_sequence,
            stream_revision,
            commit_stamp,
            checkpoint,
            headers: ReplayHeaders::Json(headers),
            events: ReplayEvents::Json(events),
        }
    }
}

/// A commit's headers for replay.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ReplayHeaders {
    /// Already read.
    Parsed(crate::model::Headers),
    /// The JSON object as stored.
    Json(Vec<u8>),
}

/// What replaying a commit into an aggregate or saga needs: its position and its events, which a
/// backend may hand over still as the stored JSON so they are decoded in one pass, straight into
/// the typed events.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ReplayCommit {
    /// The commit's sequence.
    pub commit_sequence: u64,
    /// The revision of the commit's last event.
    pub stream_revision: u64,
    /// How many events the commit holds.
    pub event_count: u64,
    /// The events.
    pub events: ReplayEvents,
    /// The type of what wrote the commit (see [`Commit::stream_type`]).
    pub stream_type: Option<String>,
}

impl ReplayCommit {
    /// A commit whose events are the stored JSON array of messages.
    pub fn from_json(
        commit_sequence: u64,
        stream_revision: u64,
        event_count: u64,
        events: Vec<u8>,
    ) -> Self {
        Self {
            commit_sequence,
            stream_revision,
            event_count,
            events: ReplayEvents::Json(events),
            stream_type: None,
        }
    }

    /// Sets the type of what wrote the commit.
    pub fn with_stream_type(mut self, stream_type: Option<String>) -> Self {
        self.stream_type = stream_type;
        self
    }
}

/// A commit's events for replay.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ReplayEvents {
    /// Messages already read (each body still its stored JSON text).
    Messages(Vec<EventMessage>),
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
            stream_type: commit.stream_type,
        }
    }
}

/// Reads streams and appends commits.
///
/// Object safe: `Arc<dyn CommitStore>` is how repositories hold a store.
#[async_trait]
pub trait CommitStore: Send + Sync {
    /// The commits of one stream that hold an event with a revision in
    /// `min_revision..=max_revision`, in order. A commit that straddles either bound is included
    /// whole. A stream that does not exist yields nothing.
    fn get(
        &self,
        tenant_id: &str,
        stream_id: &str,
        min_revision: u64,
        max_revision: u64,
    ) -> CommitStream;

    /// The commits of one stream stamped at or before `max_time`, in order. A time before any
    /// commit (even [`DateTime::<Utc>::MIN_UTC`]) yields nothing.
    fn get_to(&self, tenant_id: &str, stream_id: &str, max_time: DateTime<Utc>) -> CommitStream;

    /// The commits [`CommitStore::get`] returns, in the form replay needs. Backends that store
    /// events as JSON override it to hand the JSON over undecoded, so that loading an aggregate
    /// decodes each event once, straight into its type.
    fn get_for_replay(
        &self,
        tenant_id: &str,
        stream_id: &str,
        min_revision: u64,
        max_revision: u64,
    ) -> ReplayStream {
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

/// What loading an aggregate from a snapshot needs: its position and its memento as the stored
/// JSON, which the aggregate parses once, straight into its type.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ReplaySnapshot {
    /// The revision of the last event folded into the memento.
    pub stream_revision: u64,
    /// The sequence of the commit that holds that event.
    pub commit_sequence: u64,
    /// The memento, as stored JSON.
    pub payload: Vec<u8>,
    /// The headers the snapshot was stored with (they record the memento's version).
    pub headers: Headers,
}

impl ReplaySnapshot {
    /// A snapshot for replay from its position and its stored JSON, without headers.
    pub fn new(stream_revision: u64, commit_sequence: u64, payload: Vec<u8>) -> Self {
        Self {
            stream_revision,
            commit_sequence,
            payload,
            headers: Headers::new(),
        }
    }

    /// The same snapshot with the headers it was stored with.
    pub fn with_headers(mut self, headers: Headers) -> Self {
        self.headers = headers;
        self
    }
}

impl From<Snapshot> for ReplaySnapshot {
    fn from(snapshot: Snapshot) -> Self {
        Self::new(
            snapshot.stream_revision,
            snapshot.commit_sequence,
            snapshot.payload.get().as_bytes().to_vec(),
        )
        .with_headers(snapshot.headers)
    }
}

/// A stream whose head is far past its newest snapshot (see
/// [`SnapshotStore::streams_to_snapshot`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StreamToSnapshot {
    /// The tenant.
    pub tenant_id: String,
    /// The stream.
    pub stream_id: String,
    /// The revision of the stream's last event.
    pub head_revision: u64,
    /// The revision of its newest snapshot, if it has one.
    pub snapshot_revision: Option<u64>,
}

impl StreamToSnapshot {
    /// A stream at `head_revision` whose newest snapshot is at `snapshot_revision`.
    pub fn new(
        tenant_id: impl Into<String>,
        stream_id: impl Into<String>,
        head_revision: u64,
        snapshot_revision: Option<u64>,
    ) -> Self {
        Self {
            tenant_id: tenant_id.into(),
            stream_id: stream_id.into(),
            head_revision,
            snapshot_revision,
        }
    }

    /// How many revisions the head is past the newest snapshot (or past the start).
    pub fn revisions_behind(&self) -> u64 {
        self.head_revision - self.snapshot_revision.unwrap_or(0).min(self.head_revision)
    }
}

/// Streams that need a snapshot, read a page at a time in stream id order.
pub type StreamsToSnapshot = BoxStream<'static, Result<StreamToSnapshot, StoreError>>;

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

    /// The streams of `tenant_id` whose head is at least `threshold` revisions past their
    /// newest snapshot (or past the start, for a stream without one), in stream id order, read a
    /// page at a time. Answered from an index of stream heads that every commit and snapshot
    /// keeps current, never by scanning commits. `threshold` 0 lists every stream.
    fn streams_to_snapshot(&self, tenant_id: &str, threshold: u64) -> StreamsToSnapshot;

    /// The snapshot [`SnapshotStore::get_snapshot`] returns, in the form loading needs.
    /// Backends that store the memento as JSON override it to hand the JSON over unparsed, so
    /// a load parses the memento once, straight into the aggregate; the headers come too (they
    /// record the memento's version).
    async fn get_snapshot_for_replay(
        &self,
        tenant_id: &str,
        stream_id: &str,
        max_revision: u64,
    ) -> Result<Option<ReplaySnapshot>, StoreError> {
        Ok(self
            .get_snapshot(tenant_id, stream_id, max_revision)
            .await?
            .map(ReplaySnapshot::from))
    }
}

/// Reads the log: commits across streams in checkpoint order, and the notices of deleted
/// streams where the deletions happened. It cannot change the store, so it is the handle to give
/// a projection or a reporting tool.
///
/// A reader that resumes from the last checkpoint it saw never skips an entry and never sees
/// one twice. When a stored commit is damaged, the stream yields every intact entry before it,
/// then [`StoreError::Corrupt`] with the damaged commit's checkpoint: reading again from that
/// checkpoint continues right after it.
pub trait CommitLog: Send + Sync {
    /// Every entry of every tenant with a checkpoint greater than `checkpoint`, in checkpoint
    /// order (`0` reads everything).
    fn get_from(&self, checkpoint: u64) -> LogStream;

    /// Every entry of one tenant with a checkpoint greater than `checkpoint`, in checkpoint
    /// order.
    fn get_tenant_from(&self, tenant_id: &str, checkpoint: u64) -> LogStream;

    /// Every commit of one tenant stamped at or before `max_time`, in checkpoint order.
    fn get_all_to(&self, tenant_id: &str, max_time: DateTime<Utc>) -> CommitStream;

    /// The entries after `checkpoint` that `filter` lets through, in checkpoint order.
    /// Backends push tenants and stream types into their queries; the default reads the log
    /// (one tenant's, when the filter names exactly one) and filters as it goes.
    fn get_filtered(&self, checkpoint: u64, filter: &LogFilter) -> LogStream {
        let entries = match filter.tenants.as_slice() {
            [tenant] => self.get_tenant_from(tenant, checkpoint),
            _ => self.get_from(checkpoint),
        };
        keep_matching(entries, filter)
    }

    /// The entries [`CommitLog::get_filtered`] returns, in the form a projection runner
    /// replays. Backends that store events as JSON override it to hand the JSON over undecoded,
    /// so that each event is decoded once, straight into its type, and events a projection
    /// does not list are never decoded.
    fn get_filtered_for_replay(&self, checkpoint: u64, filter: &LogFilter) -> ReplayLogStream {
        for_replay(self.get_filtered(checkpoint, filter))
    }

    /// A signal each time commits may have been appended, so a follower of the log wakes at
    /// once instead of polling; it may fire without a new commit, and (across processes)
    /// may miss one, so followers still poll now and then. `None` (the default) when the
    /// backend has no such signal: followers poll with backoff.
    fn wakeups(&self) -> Option<Wakeups> {
        None
    }
}

/// The entries of `entries` that `filter` lets through (all of them for an empty filter).
/// Backends that push part of a filter into their queries use it for the rest (topics).
pub(crate) fn keep_matching(entries: LogStream, filter: &LogFilter) -> LogStream {
    if filter.is_empty() {
        return entries;
    }
    let filter = filter.clone();
    entries
        .try_filter(move |entry| futures::future::ready(filter.matches(entry)))
        .boxed()
}

/// Log entries in the form a projection runner replays.
pub(crate) fn for_replay(entries: LogStream) -> ReplayLogStream {
    entries.map_ok(ReplayEntry::from).boxed()
}

/// Setting up and tearing down a store.
#[async_trait]
pub trait PersistenceManagement: Send + Sync {
    /// Creates what the store needs (tables, indexes). Idempotent; a store that cannot be
    /// reached or set up, or whose existing tables are not aett's, is an error, never ignored.
    async fn initialize(&self) -> Result<(), StoreError>;

    /// The version of aett's storage layout the store records (the one
    /// [`PersistenceManagement::initialize`] brought it to), for tools that report on a store.
    /// `None` (the default) for a backend that does not version its layout.
    async fn schema_version(&self) -> Result<Option<u32>, StoreError> {
        Ok(None)
    }

    /// Removes every commit and snapshot of every tenant, and the store's own schema (nothing
    /// that aett did not create). [`PersistenceManagement::initialize`] makes it usable again.
    async fn drop_all(&self) -> Result<(), StoreError>;

    /// Removes every commit and snapshot of one tenant and nothing else (its notices in the log
    /// too).
    async fn purge(&self, tenant_id: &str) -> Result<(), StoreError>;

    /// Truncates a stream: its commits wholly before `revision` (their last event's revision is
    /// below it) are physically removed, except the stream's last commit, which always stays so
    /// that its sequence goes on; in one transaction where the backend has them, provided
    /// a snapshot at or after `revision` exists; otherwise [`StoreError::TruncationRefused`],
    /// and nothing is removed. Loading the latest state still works (it starts from that
    /// snapshot); loading a version whose history is gone is
    /// [`crate::RepositoryError::HistoryTruncated`], never a different aggregate.
    async fn truncate_stream(
        &self,
        tenant_id: &str,
        stream_id: &str,
        revision: u64,
    ) -> Result<(), StoreError>;

    /// Deletes one stream: every commit and snapshot of it is physically removed, in one
    /// transaction where the backend has them, and a [`crate::StreamDeleted`] notice is written
    /// to the log at that point, so readers of the log learn of it. The stream can then start
    /// afresh from sequence 1. Deleting a stream that holds nothing is not an error (and writes
    /// no notice).
    async fn delete_stream(&self, tenant_id: &str, stream_id: &str) -> Result<(), StoreError>;
}

/// A backend in every role: what [`crate::connect`] hands out as `Arc<dyn EventStore>`.
///
/// Implemented for every type that implements the four role traits. An `Arc<dyn EventStore>`
/// coerces to an `Arc` of any one role.
pub trait EventStore:
    CommitStore + SnapshotStore + CommitLog + CheckpointStore + PersistenceManagement
{
}

impl<
        T: CommitStore + SnapshotStore + CommitLog + CheckpointStore + PersistenceManagement + ?Sized,
    > EventStore for T
{
}

/// A shared handle to a whole store, from which repositories take the roles they use:
/// `Arc<dyn EventStore>` (what [`crate::connect`] returns) or an `Arc` of a backend type.
pub trait SharedStore {
    /// The store as a commit store.
    fn commit_store(&self) -> Arc<dyn CommitStore>;
    /// The store as a snapshot store.
    fn snapshot_store(&self) -> Arc<dyn SnapshotStore>;
    /// The store as a reader of the log.
    fn commit_log(&self) -> Arc<dyn CommitLog>;
    /// The store as the keeper of projection checkpoints.
    fn checkpoint_store(&self) -> Arc<dyn CheckpointStore>;
}

impl SharedStore for Arc<dyn EventStore> {
    fn commit_store(&self) -> Arc<dyn CommitStore> {
        self.clone()
    }

    fn snapshot_store(&self) -> Arc<dyn SnapshotStore> {
        self.clone()
    }

    fn commit_log(&self) -> Arc<dyn CommitLog> {
        self.clone()
    }

    fn checkpoint_store(&self) -> Arc<dyn CheckpointStore> {
        self.clone()
    }
}

impl<S: EventStore + 'static> SharedStore for Arc<S> {
    fn commit_store(&self) -> Arc<dyn CommitStore> {
        self.clone()
    }

    fn snapshot_store(&self) -> Arc<dyn SnapshotStore> {
        self.clone()
    }

    fn commit_log(&self) -> Arc<dyn CommitLog> {
        self.clone()
    }

    fn checkpoint_store(&self) -> Arc<dyn CheckpointStore> {
        self.clone()
    }
}
