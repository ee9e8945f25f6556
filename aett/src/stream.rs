//! `EventStream`: one stream opened for reading and optimistic appending.

use std::sync::Arc;

use futures::TryStreamExt;
use uuid::Uuid;

use crate::error::StoreError;
use crate::model::Event;
use crate::model::{Commit, CommitAttempt};
use crate::model::{EventMessage, Headers};
use crate::store::CommitStore;

/// A stream of events, read from a store and appended to with optimistic concurrency
/// (NEventStore's `OptimisticEventStream`).
///
/// ```
/// # async fn demo() -> Result<(), aett::StoreError> {
/// # use serde::{Deserialize, Serialize};
/// # #[aett::event(topic = "note.added")] #[derive(Serialize, Deserialize)] struct NoteAdded { text: String }
/// use std::sync::Arc;
/// let store = Arc::new(aett::InMemoryStore::new());
/// let mut stream = aett::EventStream::create(store.clone(), "tenant", "notes");
/// stream.add_event(&NoteAdded { text: "hello".into() })?;
/// stream.commit(uuid::Uuid::new_v4()).await?;
/// let reopened = aett::EventStream::open(store, "tenant", "notes", 0, u64::MAX).await?;
/// assert_eq!(reopened.stream_revision(), 1);
/// # Ok(()) }
/// # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
/// ```
pub struct EventStream {
    store: Arc<dyn CommitStore>,
    tenant_id: String,
    stream_id: String,
    stream_revision: u64,
    commit_sequence: u64,
    committed: Vec<EventMessage>,
    committed_headers: Headers,
    uncommitted: Vec<EventMessage>,
    uncommitted_headers: Headers,
    stream_type: Option<String>,
}

impl std::fmt::Debug for EventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStream")
            .field("tenant_id", &self.tenant_id)
            .field("stream_id", &self.stream_id)
            .field("stream_revision", &self.stream_revision)
            .field("commit_sequence", &self.commit_sequence)
            .field("committed", &self.committed.len())
            .field("uncommitted", &self.uncommitted.len())
            .finish()
    }
}

impl EventStream {
    /// A new, empty stream (nothing is read).
    pub fn create(
        store: Arc<dyn CommitStore>,
        tenant_id: impl Into<String>,
        stream_id: impl Into<String>,
    ) -> Self {
        Self {
            store,
            tenant_id: tenant_id.into(),
            stream_id: stream_id.into(),
            stream_revision: 0,
            commit_sequence: 0,
            committed: Vec::new(),
            committed_headers: Headers::new(),
            uncommitted: Vec::new(),
            uncommitted_headers: Headers::new(),
            stream_type: None,
        }
    }

    /// Sets the stream type the stream's commits record (see [`Commit::stream_type`]).
    pub fn with_stream_type(mut self, stream_type: impl Into<String>) -> Self {
        self.stream_type = Some(stream_type.into());
        self
    }

    /// The stream type: the one set, or else the one its last commit read recorded.
    pub fn stream_type(&self) -> Option<&str> {
        self.stream_type.as_deref()
    }

    /// Opens a stream with its committed events between `min_revision` and `max_revision`
    /// (inclusive). Asking from a revision above 0 of a stream that does not exist is
    /// [`StoreError::StreamNotFound`].
    pub async fn open(
        store: Arc<dyn CommitStore>,
        tenant_id: impl Into<String>,
        stream_id: impl Into<String>,
        min_revision: u64,
        max_revision: u64,
    ) -> Result<Self, StoreError> {
        let (tenant_id, stream_id) = (tenant_id.into(), stream_id.into());
        let mut stream = Self::create(store.clone(), tenant_id.clone(), stream_id.clone());
        let mut commits = store.get(&tenant_id, &stream_id, min_revision, max_revision);
        while let Some(commit) = commits.try_next().await? {
            stream.absorb(&commit, min_revision, max_revision);
        }
        if min_revision > 0 && stream.commit_sequence == 0 {
            return Err(StoreError::StreamNotFound {
                tenant: stream.tenant_id,
                stream: stream.stream_id,
            });
        }
        Ok(stream)
    }

    fn absorb(&mut self, commit: &Commit, min_revision: u64, max_revision: u64) {
        for (revision, event) in commit.events_with_revisions() {
            if revision < min_revision || revision <= self.stream_revision {
                continue;
            }
            if revision > max_revision {
                break;
            }
            self.committed.push(event.clone());
            self.stream_revision = revision;
        }
        self.committed_headers.extend(commit.headers.clone());
        self.commit_sequence = commit.commit_sequence;
        if self.stream_type.is_none() {
            self.stream_type.clone_from(&commit.stream_type);
        }
    }

    /// The tenant.
    pub fn tenant_id(&self) -> &str {
        &self.tenant_id
    }

    /// The stream's id.
    pub fn stream_id(&self) -> &str {
        &self.stream_id
    }

    /// The revision of the last committed event read.
    pub fn stream_revision(&self) -> u64 {
        self.stream_revision
    }

    /// The sequence of the last commit read.
    pub fn commit_sequence(&self) -> u64 {
        self.commit_sequence
    }

    /// The committed events read (and written through this stream), in order.
    pub fn committed_events(&self) -> &[EventMessage] {
        &self.committed
    }

    /// The headers of the commits read, later ones overriding earlier ones.
    pub fn committed_headers(&self) -> &Headers {
        &self.committed_headers
    }

    /// Events added and not yet committed.
    pub fn uncommitted_events(&self) -> &[EventMessage] {
        &self.uncommitted
    }

    /// Headers for the next commit.
    pub fn uncommitted_headers(&self) -> &Headers {
        &self.uncommitted_headers
    }

    /// Adds an event message to the next commit.
    pub fn add(&mut self, message: EventMessage) {
        self.uncommitted.push(message);
    }

    /// Serialises a typed event and adds it to the next commit.
    pub fn add_event<E: Event>(&mut self, event: &E) -> Result<(), StoreError> {
        let message =
            EventMessage::from_event(event).map_err(|source| StoreError::Serialization {
                scope: crate::error::Scope::stream(&self.tenant_id, &self.stream_id),
                what: "an event",
                source,
            })?;
        self.add(message);
        Ok(())
    }

    /// Sets a header of the next commit.
    pub fn set_header(&mut self, key: impl Into<String>, value: impl Into<serde_json::Value>) {
        self.uncommitted_headers.insert(key.into(), value.into());
    }

    /// Drops the uncommitted events and headers.
    pub fn clear_changes(&mut self) {
        self.uncommitted.clear();
        self.uncommitted_headers.clear();
    }

    /// Commits the uncommitted events as one commit with id `commit_id`. With nothing to commit
    /// it returns `Ok(None)`.
    ///
    /// When another writer got there first, the stream takes in the commits it had not seen
    /// (so [`EventStream::committed_events`] is current), keeps its uncommitted events, and
    /// returns the concurrency error: after a non-conflicting error, committing again appends
    /// after the newer commits.
    pub async fn commit(&mut self, commit_id: Uuid) -> Result<Option<Commit>, StoreError> {
        if self.uncommitted.is_empty() {
            return Ok(None);
        }
        let mut attempt = CommitAttempt::new(
            self.tenant_id.clone(),
            self.stream_id.clone(),
            self.stream_revision + self.uncommitted.len() as u64,
            self.commit_sequence + 1,
            self.uncommitted_headers.clone(),
            self.uncommitted.clone(),
        );
        attempt.commit_id = commit_id;
        attempt.stream_type.clone_from(&self.stream_type);
        match self.store.commit(attempt).await {
            Ok(commit) => {
                self.absorb(&commit, 0, u64::MAX);
                self.clear_changes();
                Ok(Some(commit))
            }
            Err(error) => {
                if let StoreError::ConflictingCommit { committed, .. }
                | StoreError::NonConflictingCommit { committed, .. } = &error
                {
                    for commit in committed {
                        self.absorb(commit, 0, u64::MAX);
                    }
                }
                Err(error)
            }
        }
    }
}
