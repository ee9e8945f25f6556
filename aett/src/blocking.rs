//! A blocking facade for programs that are not async, as `reqwest::blocking` is for reqwest.
//!
//! [`Store`] wraps any store with a runtime of its own and offers every store role as plain
//! method calls; reads are iterators. [`AggregateRepository`] and [`SagaRepository`] do the
//! same for the repositories.
//!
//! ```
//! # use serde::{Deserialize, Serialize};
//! # use aett::{Aggregate, AggregateState, Apply};
//! # #[aett::event(topic = "doc.blocking.added")] #[derive(Serialize, Deserialize)] struct Added { n: u64 }
//! # #[derive(Aggregate, Default, Serialize, Deserialize)] #[aggregate(events(Added))]
//! # struct Sum { #[serde(skip)] state: AggregateState, total: u64 }
//! # impl Apply<Added> for Sum { fn apply(&mut self, e: &Added) { self.total += e.n; } }
//! let store = aett::blocking::connect("memory://")?;
//! let sums = aett::blocking::AggregateRepository::new("tenant", &store);
//! let mut sum: Sum = sums.get("s-1")?;
//! sum.raise(Added { n: 2 });
//! sums.save(&mut sum, aett::Headers::new())?;
//! let log: Vec<aett::LogEntry> = store.get_from(0).collect::<Result<_, _>>()?;
//! assert_eq!(log.len(), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Like every blocking client, these calls must not be made from inside an async runtime
//! (they would block one of its threads); async code uses the store directly.

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::stream::{BoxStream, StreamExt};
use tokio::runtime::Runtime;

use crate::conflict::ConflictDetector;
use crate::domain::{Aggregate, Saga};
use crate::error::{Operation, Scope, StoreError};
use crate::model::{Commit, CommitAttempt, EventMessage, Headers, LogEntry, Snapshot};
use crate::repository::RepositoryError;
use crate::store::{EventStore, StreamToSnapshot};

/// Opens the store a URL names (see [`crate::connect`]), initialised, for blocking use.
pub fn connect(url: &str) -> Result<Store, StoreError> {
    connect_with(url, Arc::default())
}

/// [`connect`], with the conflict detector the store consults when a commit loses a race.
pub fn connect_with(url: &str, detector: Arc<ConflictDetector>) -> Result<Store, StoreError> {
    let runtime = runtime()?;
    let store = runtime.block_on(crate::connect_with(url, detector))?;
    Ok(Store { store, runtime })
}

fn runtime() -> Result<Arc<Runtime>, StoreError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map(Arc::new)
        .map_err(|e| StoreError::storage(Operation::Open, Scope::Store, e))
}

/// A store in every role, with blocking calls. Cheap to clone; clones share the store and the
/// runtime.
#[derive(Clone)]
pub struct Store {
    store: Arc<dyn EventStore>,
    runtime: Arc<Runtime>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("blocking::Store").finish_non_exhaustive()
    }
}

impl Store {
    /// Wraps a store opened elsewhere. A PostgreSQL store must be opened through
    /// [`connect`] or [`Store::open_with`] instead, so its connections live on this facade's
    /// runtime.
    pub fn new(store: Arc<dyn EventStore>) -> Result<Self, StoreError> {
        Ok(Self {
            store,
            runtime: runtime()?,
        })
    }

    /// Opens a store with an async constructor, on this facade's runtime:
    /// `Store::open_with(|| async { Ok(Arc::new(PostgresStore::connect(config).await?) as _) })`.
    pub fn open_with<F, Fut>(open: F) -> Result<Self, StoreError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Arc<dyn EventStore>, StoreError>>,
    {
        let runtime = runtime()?;
        let store = runtime.block_on(open())?;
        Ok(Self { store, runtime })
    }

    /// The async store underneath.
    pub fn as_async(&self) -> &Arc<dyn EventStore> {
        &self.store
    }

    fn iter<T>(&self, stream: BoxStream<'static, Result<T, StoreError>>) -> Read<T> {
        Read {
            stream,
            runtime: self.runtime.clone(),
        }
    }

    /// See [`crate::CommitStore::get`].
    pub fn get(
        &self,
        tenant_id: &str,
        stream_id: &str,
        min_revision: u64,
        max_revision: u64,
    ) -> Read<Commit> {
        self.iter(
            self.store
                .get(tenant_id, stream_id, min_revision, max_revision),
        )
    }

    /// See [`crate::CommitStore::get_to`].
    pub fn get_to(
        &self,
        tenant_id: &str,
        stream_id: &str,
        max_time: DateTime<Utc>,
    ) -> Read<Commit> {
        self.iter(self.store.get_to(tenant_id, stream_id, max_time))
    }

    /// See [`crate::CommitStore::commit`].
    pub fn commit(&self, attempt: CommitAttempt) -> Result<Commit, StoreError> {
        self.runtime.block_on(self.store.commit(attempt))
    }

    /// See [`crate::SnapshotStore::get_snapshot`].
    pub fn get_snapshot(
        &self,
        tenant_id: &str,
        stream_id: &str,
        max_revision: u64,
    ) -> Result<Option<Snapshot>, StoreError> {
        self.runtime
            .block_on(self.store.get_snapshot(tenant_id, stream_id, max_revision))
    }

    /// See [`crate::SnapshotStore::add_snapshot`].
    pub fn add_snapshot(&self, snapshot: Snapshot) -> Result<(), StoreError> {
        self.runtime.block_on(self.store.add_snapshot(snapshot))
    }

    /// See [`crate::CommitLog::get_from`].
    pub fn get_from(&self, checkpoint: u64) -> Read<LogEntry> {
        self.iter(self.store.get_from(checkpoint))
    }

    /// See [`crate::CommitLog::get_tenant_from`].
    pub fn get_tenant_from(&self, tenant_id: &str, checkpoint: u64) -> Read<LogEntry> {
        self.iter(self.store.get_tenant_from(tenant_id, checkpoint))
    }

    /// See [`crate::CommitLog::get_all_to`].
    pub fn get_all_to(&self, tenant_id: &str, max_time: DateTime<Utc>) -> Read<Commit> {
        self.iter(self.store.get_all_to(tenant_id, max_time))
    }

    /// See [`crate::PersistenceManagement::initialize`].
    pub fn initialize(&self) -> Result<(), StoreError> {
        self.runtime.block_on(self.store.initialize())
    }

    /// See [`crate::PersistenceManagement::drop_all`].
    pub fn drop_all(&self) -> Result<(), StoreError> {
        self.runtime.block_on(self.store.drop_all())
    }

    /// See [`crate::PersistenceManagement::purge`].
    pub fn purge(&self, tenant_id: &str) -> Result<(), StoreError> {
        self.runtime.block_on(self.store.purge(tenant_id))
    }

    /// See [`crate::PersistenceManagement::truncate_stream`].
    pub fn truncate_stream(
        &self,
        tenant_id: &str,
        stream_id: &str,
        revision: u64,
    ) -> Result<(), StoreError> {
        self.runtime
            .block_on(self.store.truncate_stream(tenant_id, stream_id, revision))
    }

    /// See [`crate::SnapshotStore::streams_to_snapshot`].
    pub fn streams_to_snapshot(&self, tenant_id: &str, threshold: u64) -> Read<StreamToSnapshot> {
        self.iter(self.store.streams_to_snapshot(tenant_id, threshold))
    }

    /// See [`crate::PersistenceManagement::delete_stream`].
    pub fn delete_stream(&self, tenant_id: &str, stream_id: &str) -> Result<(), StoreError> {
        self.runtime
            .block_on(self.store.delete_stream(tenant_id, stream_id))
    }
}

/// The commits (or log entries) of a read, fetched a page at a time as the iterator advances.
/// After an `Err` it ends, as the async stream does.
pub struct Read<T> {
    stream: BoxStream<'static, Result<T, StoreError>>,
    runtime: Arc<Runtime>,
}

impl<T> fmt::Debug for Read<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("blocking::Read").finish_non_exhaustive()
    }
}

impl<T> Iterator for Read<T> {
    type Item = Result<T, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.runtime.block_on(self.stream.next())
    }
}

/// [`crate::AggregateRepository`] with blocking calls.
#[derive(Debug, Clone)]
pub struct AggregateRepository {
    inner: crate::AggregateRepository,
    runtime: Arc<Runtime>,
}

impl AggregateRepository {
    /// A repository for `tenant` over `store`.
    pub fn new(tenant: impl Into<String>, store: &Store) -> Self {
        Self {
            inner: crate::AggregateRepository::new(tenant, &store.store),
            runtime: store.runtime.clone(),
        }
    }

    /// See [`crate::AggregateRepository::with_snapshot_policy`].
    pub fn with_snapshot_policy(mut self, policy: crate::SnapshotPolicy) -> Self {
        self.inner = self.inner.with_snapshot_policy(policy);
        self
    }

    /// See [`crate::AggregateRepository::with_snapshot_fallback`].
    pub fn with_snapshot_fallback(mut self, fallback: crate::SnapshotFallback) -> Self {
        self.inner = self.inner.with_snapshot_fallback(fallback);
        self
    }

    /// See [`crate::AggregateRepository::correlated`].
    pub fn correlated(&self, correlation: crate::Correlation) -> Self {
        Self {
            inner: self.inner.correlated(correlation),
            runtime: self.runtime.clone(),
        }
    }

    /// See [`crate::AggregateRepository::get`].
    pub fn get<A: Aggregate>(&self, id: &str) -> Result<A, RepositoryError> {
        self.runtime.block_on(self.inner.get(id))
    }

    /// See [`crate::AggregateRepository::get_with_report`].
    pub fn get_with_report<A: Aggregate>(
        &self,
        id: &str,
    ) -> Result<(A, crate::LoadReport), RepositoryError> {
        self.runtime.block_on(self.inner.get_with_report(id))
    }

    /// See [`crate::AggregateRepository::get_version`].
    pub fn get_version<A: Aggregate>(
        &self,
        id: &str,
        max_version: u64,
    ) -> Result<A, RepositoryError> {
        self.runtime
            .block_on(self.inner.get_version(id, max_version))
    }

    /// See [`crate::AggregateRepository::get_as_of`].
    pub fn get_as_of<A: Aggregate>(
        &self,
        id: &str,
        max_time: DateTime<Utc>,
    ) -> Result<A, RepositoryError> {
        self.runtime.block_on(self.inner.get_as_of(id, max_time))
    }

    /// See [`crate::AggregateRepository::save`].
    pub fn save<A: Aggregate>(
        &self,
        aggregate: &mut A,
        headers: Headers,
    ) -> Result<Option<Commit>, RepositoryError> {
        self.runtime.block_on(self.inner.save(aggregate, headers))
    }

    /// See [`crate::AggregateRepository::save_with_id`].
    pub fn save_with_id<A: Aggregate>(
        &self,
        aggregate: &mut A,
        headers: Headers,
        commit_id: uuid::Uuid,
    ) -> Result<Option<Commit>, RepositoryError> {
        self.runtime
            .block_on(self.inner.save_with_id(aggregate, headers, commit_id))
    }

    /// See [`crate::AggregateRepository::update`].
    pub fn update<A, T, E, F>(
        &self,
        id: &str,
        headers: Headers,
        attempts: usize,
        command: F,
    ) -> Result<crate::Updated<A, T>, crate::UpdateError<E>>
    where
        A: Aggregate,
        F: FnMut(&mut A) -> Result<T, E>,
    {
        self.runtime
            .block_on(self.inner.update(id, headers, attempts, command))
    }

    /// See [`crate::AggregateRepository::snapshot`].
    pub fn snapshot<A: Aggregate>(
        &self,
        id: &str,
        version: u64,
        headers: Headers,
    ) -> Result<Snapshot, RepositoryError> {
        self.runtime
            .block_on(self.inner.snapshot::<A>(id, version, headers))
    }

    /// See [`crate::AggregateRepository::snapshot_as_of`].
    pub fn snapshot_as_of<A: Aggregate>(
        &self,
        id: &str,
        cut_off: DateTime<Utc>,
        headers: Headers,
    ) -> Result<Snapshot, RepositoryError> {
        self.runtime
            .block_on(self.inner.snapshot_as_of::<A>(id, cut_off, headers))
    }
}

/// [`crate::SagaRepository`] with blocking calls.
#[derive(Debug, Clone)]
pub struct SagaRepository {
    inner: crate::SagaRepository,
    runtime: Arc<Runtime>,
}

impl SagaRepository {
    /// A repository for `tenant` over `store`.
    pub fn new(tenant: impl Into<String>, store: &Store) -> Self {
        Self {
            inner: crate::SagaRepository::new(tenant, &store.store),
            runtime: store.runtime.clone(),
        }
    }

    /// See [`crate::SagaRepository::get`].
    pub fn get<S: Saga>(&self, id: &str) -> Result<S, RepositoryError> {
        self.runtime.block_on(self.inner.get(id))
    }

    /// See [`crate::SagaRepository::save`].
    pub fn save<S: Saga>(
        &self,
        saga: &mut S,
        headers: Headers,
    ) -> Result<Vec<EventMessage>, RepositoryError> {
        self.runtime.block_on(self.inner.save(saga, headers))
    }
}
