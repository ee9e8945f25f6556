//! Loading and saving aggregates.

use crate::model::event::check_topics;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use uuid::Uuid;

use crate::domain::Aggregate;
use crate::error::StoreError;
use crate::model::Snapshot;
use crate::model::{Commit, CommitAttempt, Correlation};
use crate::model::{EventMessage, Headers};
use crate::repository::policy::{SnapshotFallback, MEMENTO_VERSION_HEADER};
use crate::repository::replay::{replay_commit, Applied};
use crate::repository::{
    LoadReport, RepositoryError, SnapshotCandidate, SnapshotPolicy, UpdateError, Updated,
};
use crate::store::{CommitStore, ReplayCommit, ReplaySnapshot, SharedStore, SnapshotStore};
use crate::trace;

/// Loads and saves the aggregates of one tenant.
///
/// A load starts from the newest snapshot at or below the wanted version and replays only
/// the events after it; each event is decoded straight from its stored JSON into its type.
///
/// ```
/// # async fn demo() -> Result<(), aett::StoreError> {
/// let store = aett::connect("memory://").await?;
/// let accounts = aett::AggregateRepository::new("tenant-1", &store);
/// # let _ = accounts; Ok(()) }
/// ```
#[derive(Clone)]
pub struct AggregateRepository {
    tenant: String,
    commits: Arc<dyn CommitStore>,
    snapshots: Arc<dyn SnapshotStore>,
    policy: SnapshotPolicy,
    fallback: SnapshotFallback,
    correlation: Option<Correlation>,
}

impl std::fmt::Debug for AggregateRepository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AggregateRepository")
            .field("tenant", &self.tenant)
            .field("policy", &self.policy)
            .field("fallback", &self.fallback)
            .field("correlation", &self.correlation)
            .finish_non_exhaustive()
    }
}

impl AggregateRepository {
    /// A repository for `tenant` over one store: what [`crate::connect`] returns, or an `Arc`
    /// of a backend.
    pub fn new(tenant: impl Into<String>, store: &impl SharedStore) -> Self {
        Self::from_roles(tenant, store.commit_store(), store.snapshot_store())
    }

    /// A repository for `tenant` over a commit store and a snapshot store given separately.
    pub fn from_roles(
        tenant: impl Into<String>,
        commits: Arc<dyn CommitStore>,
        snapshots: Arc<dyn SnapshotStore>,
    ) -> Self {
        Self {
            tenant: tenant.into(),
            commits,
            snapshots,
            policy: SnapshotPolicy::Never,
            fallback: SnapshotFallback::Replay,
            correlation: None,
        }
    }

    /// A copy of this repository whose commits carry `correlation` ([`crate::CORRELATION_HEADER`]
    /// and [`crate::CAUSATION_HEADER`], unless the headers given to a save already hold them):
    /// for handling one request or command, so everything it writes names its conversation and
    /// cause.
    ///
    /// ```
    /// # async fn demo(command: aett::DispatchedCommand) -> Result<(), aett::StoreError> {
    /// let store = aett::connect("memory://").await?;
    /// let accounts = aett::AggregateRepository::new("tenant-1", &store);
    /// // A command a saga dispatched: its commit continues the saga's conversation.
    /// let handling = accounts.correlated(command.correlation().unwrap_or_else(|| {
    ///     aett::Correlation::start(command.commit_id.to_string())
    /// }));
    /// # let _ = handling; Ok(()) }
    /// ```
    pub fn correlated(&self, correlation: Correlation) -> Self {
        let mut correlated = self.clone();
        correlated.correlation = Some(correlation);
        correlated
    }

    /// The same repository, doing `fallback` with a snapshot it cannot use (see
    /// [`SnapshotFallback`]; by default it replays from the start).
    pub fn with_snapshot_fallback(mut self, fallback: SnapshotFallback) -> Self {
        self.fallback = fallback;
        self
    }

    /// The same repository, snapshotting every aggregate it saves when `policy` says so (see
    /// [`SnapshotPolicy`]).
    ///
    /// ```
    /// # async fn demo() -> Result<(), aett::StoreError> {
    /// let store = aett::connect("memory://").await?;
    /// let accounts = aett::AggregateRepository::new("tenant-1", &store)
    ///     .with_snapshot_policy(aett::SnapshotPolicy::EveryEvents(100));
    /// # let _ = accounts; Ok(()) }
    /// ```
    pub fn with_snapshot_policy(mut self, policy: SnapshotPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The tenant this repository works for.
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// The aggregate `id` at its latest version; a fresh one (version 0) if its stream does
    /// not exist.
    pub async fn get<A: Aggregate>(&self, id: &str) -> Result<A, RepositoryError> {
        self.get_version(id, u64::MAX).await
    }

    /// The aggregate `id` as it was at `max_version` (or its latest version, if lower).
    pub async fn get_version<A: Aggregate>(
        &self,
        id: &str,
        max_version: u64,
    ) -> Result<A, RepositoryError> {
        Ok(self.get_version_with_report(id, max_version).await?.0)
    }

    /// [`AggregateRepository::get`], and what the load did: the snapshot it started from and
    /// how many events it replayed.
    pub async fn get_with_report<A: Aggregate>(
        &self,
        id: &str,
    ) -> Result<(A, LoadReport), RepositoryError> {
        self.get_version_with_report(id, u64::MAX).await
    }

    /// [`AggregateRepository::get_version`], and what the load did.
    pub async fn get_version_with_report<A: Aggregate>(
        &self,
        id: &str,
        max_version: u64,
    ) -> Result<(A, LoadReport), RepositoryError> {
        let span = trace::replay_span(&self.tenant, id, A::NAME);
        let loaded = trace::in_span(span.clone(), self.load_version(id, max_version)).await?;
        trace::record_replayed(&span, loaded.1.events_replayed);
        Ok(loaded)
    }

    /// Loads as [`AggregateRepository::get_version`] says, reporting what it did.
    async fn load_version<A: Aggregate>(
        &self,
        id: &str,
        max_version: u64,
    ) -> Result<(A, LoadReport), RepositoryError> {
        check_topics(A::TOPICS)?;
        let mut report = LoadReport::default();
        let mut aggregate = A::create(id);
        let mut from_revision = 1;
        if let Some(snapshot) = self
            .snapshots
            .get_snapshot_for_replay(&self.tenant, id, max_version)
            .await?
        {
            match self.restore(&mut aggregate, &snapshot) {
                Ok(()) => {
                    let state = aggregate.state_mut();
                    state.loaded(snapshot.stream_revision, snapshot.commit_sequence, false);
                    state.snapshotted(snapshot.stream_revision);
                    report.snapshot_revision = Some(snapshot.stream_revision);
                    from_revision = snapshot.stream_revision + 1;
                }
                #[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
                Err(unusable) if self.fallback == SnapshotFallback::Replay => {
                    trace::warning!(
                        revision = snapshot.stream_revision,
                        error = %unusable,
                        "the snapshot cannot be used: replaying from the start"
                    );
                    report.snapshot_discarded = Some(snapshot.stream_revision);
                    aggregate = A::create(id);
                }
                Err(unusable) => return Err(unusable),
            }
        } else {
            trace::debug!(
                max_version,
                "no snapshot at or below the version: replaying from the start"
            );
        }
        let restored = aggregate.version();
        // When the snapshot is at `max_version` itself, the commit holding it is still read
        // (nothing of it is applied) to learn whether it ends there.
        let mut commits = self.commits.get_for_replay(
            &self.tenant,
            id,
            from_revision.min(max_version),
            max_version,
        );
        while let Some(commit) = commits.try_next().await? {
            self.replay(&mut aggregate, &commit, max_version)?;
        }
        if aggregate.version() == 0 && max_version < u64::MAX {
            // The latest version always loads (truncation keeps a snapshot past the cut); an
            // earlier one may lie in history that is gone.
            self.refuse_if_truncated(id, max_version).await?;
        }
        report.events_replayed = aggregate.version() - restored;
        Ok((aggregate, report))
    }

    /// The aggregate `id` as it was at `max_time`: every commit stamped at or before it.
    pub async fn get_as_of<A: Aggregate>(
        &self,
        id: &str,
        max_time: DateTime<Utc>,
    ) -> Result<A, RepositoryError> {
        check_topics(A::TOPICS)?;
        let mut aggregate = A::create(id);
        let mut commits = self.commits.get_to(&self.tenant, id, max_time);
        while let Some(commit) = commits.try_next().await? {
            self.replay(&mut aggregate, &ReplayCommit::from(commit), u64::MAX)?;
        }
        if aggregate.version() == 0 {
            self.refuse_if_truncated(id, 0).await?;
        }
        Ok(aggregate)
    }

    /// Restores `aggregate` from `snapshot` if its memento is of the aggregate's version and
    /// decodes.
    fn restore<A: Aggregate>(
        &self,
        aggregate: &mut A,
        snapshot: &ReplaySnapshot,
    ) -> Result<(), RepositoryError> {
        let stored = match snapshot.headers.get(MEMENTO_VERSION_HEADER) {
            None => Some(1),
            Some(value) => value.as_u64().and_then(|v| u32::try_from(v).ok()),
        };
        if stored != Some(A::MEMENTO_VERSION) {
            return Err(RepositoryError::StaleSnapshot {
                tenant: self.tenant.clone(),
                stream: aggregate.id().to_owned(),
                revision: snapshot.stream_revision,
                stored: stored.unwrap_or(0),
                expected: A::MEMENTO_VERSION,
            });
        }
        aggregate
            .apply_memento_json(&snapshot.payload)
            .map_err(|source| RepositoryError::Memento {
                tenant: self.tenant.clone(),
                stream: aggregate.id().to_owned(),
                revision: snapshot.stream_revision,
                source,
            })
    }

    /// Nothing was found at or before the version or time asked for: that is a fresh aggregate,
    /// unless the stream's history was truncated, in which case the state asked for is gone.
    async fn refuse_if_truncated(&self, id: &str, version: u64) -> Result<(), RepositoryError> {
        let mut commits = self.commits.get(&self.tenant, id, 0, u64::MAX);
        match commits.try_next().await? {
            Some(first) if first.first_revision() > 1 => Err(RepositoryError::HistoryTruncated {
                tenant: self.tenant.clone(),
                stream: id.to_owned(),
                version,
                available_from: first.first_revision(),
            }),
            _ => Ok(()),
        }
    }

    /// Applies the events of `commit` after the aggregate's version, up to `max_version`.
    fn replay<A: Aggregate>(
        &self,
        aggregate: &mut A,
        commit: &ReplayCommit,
        max_version: u64,
    ) -> Result<(), RepositoryError> {
        let from = aggregate.version() + 1;
        let id = aggregate.id().to_owned();
        let first = (commit.stream_revision + 1).saturating_sub(commit.event_count);
        if first > from {
            // The events between the aggregate's version and this commit were truncated away.
            return Err(RepositoryError::HistoryTruncated {
                tenant: self.tenant.clone(),
                stream: id,
                version: from,
                available_from: first,
            });
        }
        let last = replay_commit(
            &mut Applied(aggregate),
            commit,
            from,
            max_version,
            &self.tenant,
            &id,
        )?;
        let version = last.unwrap_or(aggregate.version());
        let partial = version < commit.stream_revision;
        aggregate
            .state_mut()
            .loaded(version, commit.commit_sequence, partial);
        Ok(())
    }

    /// Saves the aggregate's uncommitted events as one commit with `headers`, and returns it;
    /// `None`, and no commit, when there is nothing to save.
    ///
    /// On success the aggregate's commit sequence advances, so the same instance can be changed
    /// and saved again. On a concurrency error the aggregate is left as it was: reload it and
    /// run the command again ([`AggregateRepository::update`] does that for you).
    ///
    /// An unknown outcome never stores twice: when a save fails in a way that leaves open
    /// whether the commit was stored (a timeout, a dropped connection), saving the same
    /// instance again reuses the commit id of that attempt, and finding it already stored is
    /// success.
    pub async fn save<A: Aggregate>(
        &self,
        aggregate: &mut A,
        headers: Headers,
    ) -> Result<Option<Commit>, RepositoryError> {
        if aggregate.uncommitted().is_empty() {
            return Ok(None);
        }
        let commit_id = aggregate.state_mut().commit_id_for_save();
        self.save_with_id(aggregate, headers, commit_id).await
    }

    /// [`AggregateRepository::save`] under the commit id `commit_id`: an idempotency key (a
    /// request id), so that the same request cannot be stored twice. Saving again after an
    /// unknown outcome is success when the earlier attempt was stored (answered with the stored
    /// commit). When the key is already stored as another commit of the stream (the request
    /// was handled before, and this instance ran it again), the save is
    /// [`StoreError::DuplicateCommit`] and stores nothing: reload the aggregate.
    /// [`AggregateRepository::update_async`] checks the key before running the command.
    pub async fn save_with_id<A: Aggregate>(
        &self,
        aggregate: &mut A,
        mut headers: Headers,
        commit_id: Uuid,
    ) -> Result<Option<Commit>, RepositoryError> {
        if aggregate.uncommitted().is_empty() {
            return Ok(None);
        }
        if let Some(correlation) = &self.correlation {
            correlation.add_to(&mut headers);
        }
        check_topics(A::TOPICS)?;
        let id = aggregate.id();
        let events = aggregate
            .uncommitted()
            .iter()
            .map(|pending| {
                pending.to_message().map_err(|source| {
                    RepositoryError::encode(
                        &self.tenant,
                        id,
                        format!("an event of topic `{}`", pending.topic()),
                        source,
                    )
                })
            })
            .collect::<Result<Vec<EventMessage>, _>>()?;
        let mut attempt = CommitAttempt::new(
            self.tenant.clone(),
            id,
            aggregate.version(),
            aggregate.state().next_sequence(),
            headers,
            events,
        )
        .with_stream_type(A::NAME);
        attempt.commit_id = commit_id;
        let events_saved = attempt.events.len() as u64;
        let commit = commit_once(&*self.commits, attempt).await?;
        aggregate.state_mut().saved(commit.commit_sequence);
        self.apply_policy(aggregate, events_saved).await;
        Ok(Some(commit))
    }

    /// Snapshots the aggregate just saved if the policy wants it. A failure leaves the save as
    /// it is (it succeeded) and the next save tries again.
    async fn apply_policy<A: Aggregate>(&self, aggregate: &mut A, events_saved: u64) {
        let candidate = SnapshotCandidate {
            stream_type: A::NAME,
            stream_id: aggregate.id(),
            version: aggregate.version(),
            events_saved,
            events_since_snapshot: aggregate.version()
                - aggregate
                    .state()
                    .snapshot_revision()
                    .min(aggregate.version()),
        };
        if !self.policy.wants(&candidate) {
            return;
        }
        if let Err(error) = self.snapshot_aggregate(aggregate, Headers::new()).await {
            trace::warning!(id = aggregate.id(), %error, "the snapshot policy's snapshot failed; the save stands");
            let _ = error;
        }
    }

    /// Takes a snapshot of an aggregate in hand, as it is (nothing is reloaded), stores it with
    /// `headers`, and returns it. The aggregate must have no unsaved events
    /// ([`RepositoryError::UnsavedEvents`]): a snapshot holds only what its stream holds.
    pub async fn snapshot_aggregate<A: Aggregate>(
        &self,
        aggregate: &mut A,
        headers: Headers,
    ) -> Result<Snapshot, RepositoryError> {
        if !aggregate.uncommitted().is_empty() {
            return Err(RepositoryError::UnsavedEvents {
                tenant: self.tenant.clone(),
                stream: aggregate.id().to_owned(),
                events: aggregate.uncommitted().len(),
            });
        }
        let snapshot = self.store_snapshot(aggregate, headers).await?;
        aggregate.state_mut().snapshotted(snapshot.stream_revision);
        Ok(snapshot)
    }

    /// Loads the aggregate `id`, runs `command` on it and saves it; on a concurrency error
    /// (conflicting or not) it reloads and runs the command again, up to `attempts` times in
    /// all. Returns the aggregate as saved, what the command returned, and the commit (`None`
    /// if nothing was raised).
    ///
    /// The command's error stays its own: a refusal is [`UpdateError::Command`], a failure to
    /// load or save [`UpdateError::Repository`].
    pub async fn update<A, T, E, F>(
        &self,
        id: &str,
        headers: Headers,
        attempts: usize,
        mut command: F,
    ) -> Result<Updated<A, T>, UpdateError<E>>
    where
        A: Aggregate,
        F: FnMut(&mut A) -> Result<T, E>,
    {
        // Not through `update_async` with an async closure: the future of one that wraps a
        // generic closure is not `Send` where a caller's boxed future needs it to be.
        let mut tries = 0;
        loop {
            tries += 1;
            let mut aggregate: A = self.get(id).await?;
            let output = command(&mut aggregate).map_err(UpdateError::Command)?;
            if let Some(commit) = self
                .save_or_retry(&mut aggregate, &headers, None, tries, attempts)
                .await?
            {
                return Ok(Updated {
                    aggregate,
                    output: Some(output),
                    commit,
                    attempts: tries,
                });
            }
        }
    }

    /// [`AggregateRepository::update`] with a command that awaits (to ask another service,
    /// read a projection, …) and an optional idempotency key.
    ///
    /// `commit_id`, when given, is the commit's id: an idempotency key, so that a request that
    /// is retried (by its client, after a timeout) cannot write twice. When a commit with that
    /// id is already stored in the stream, the command is not run again and the update answers
    /// with that commit and the aggregate as it is now (`output` is then `None`).
    pub async fn update_async<A, T, E, F>(
        &self,
        id: &str,
        headers: Headers,
        attempts: usize,
        commit_id: Option<Uuid>,
        mut command: F,
    ) -> Result<Updated<A, T>, UpdateError<E>>
    where
        A: Aggregate,
        F: AsyncFnMut(&mut A) -> Result<T, E>,
    {
        let mut tries = 0;
        loop {
            tries += 1;
            let mut aggregate: A = self.get(id).await?;
            if let Some(key) = commit_id {
                if let Some(stored) = self.find_commit(id, key).await? {
                    return Ok(Updated {
                        aggregate,
                        output: None,
                        commit: Some(stored),
                        attempts: tries,
                    });
                }
            }
            let output = command(&mut aggregate)
                .await
                .map_err(UpdateError::Command)?;
            if let Some(commit) = self
                .save_or_retry(&mut aggregate, &headers, commit_id, tries, attempts)
                .await?
            {
                return Ok(Updated {
                    aggregate,
                    output: Some(output),
                    commit,
                    attempts: tries,
                });
            }
        }
    }

    /// Saves what a command raised: `Some` with the commit (if any) when saved, `None` when a
    /// concurrency conflict leaves tries for a reload and another run.
    async fn save_or_retry<A: Aggregate>(
        &self,
        aggregate: &mut A,
        headers: &Headers,
        commit_id: Option<Uuid>,
        tries: usize,
        attempts: usize,
    ) -> Result<Option<Option<Commit>>, RepositoryError> {
        let saved = match commit_id {
            Some(key) => self.save_with_id(aggregate, headers.clone(), key).await,
            None => self.save(aggregate, headers.clone()).await,
        };
        match saved {
            Ok(commit) => Ok(Some(commit)),
            Err(error) if error.is_concurrency_conflict() && tries < attempts.max(1) => {
                trace::debug!(id = aggregate.id(), tries, %error, "concurrency conflict: reloading and running the command again");
                Ok(None)
            }
            Err(error) => Err(error),
        }
    }

    /// The stored commit of stream `id` with `commit_id`, if there is one.
    async fn find_commit(
        &self,
        id: &str,
        commit_id: Uuid,
    ) -> Result<Option<Commit>, RepositoryError> {
        let mut commits = self.commits.get(&self.tenant, id, 0, u64::MAX);
        while let Some(commit) = commits.try_next().await? {
            if commit.commit_id == commit_id {
                return Ok(Some(commit));
            }
        }
        Ok(None)
    }

    /// Takes a snapshot of the aggregate `id` at `version` (or its latest version, if lower),
    /// stores it with `headers`, and returns it.
    pub async fn snapshot<A: Aggregate>(
        &self,
        id: &str,
        version: u64,
        headers: Headers,
    ) -> Result<Snapshot, RepositoryError> {
        let aggregate: A = self.get_version(id, version).await?;
        self.store_snapshot(&aggregate, headers).await
    }

    /// Takes a snapshot of the aggregate `id` as it was at `cut_off`, stores it with
    /// `headers`, and returns it.
    pub async fn snapshot_as_of<A: Aggregate>(
        &self,
        id: &str,
        cut_off: DateTime<Utc>,
        headers: Headers,
    ) -> Result<Snapshot, RepositoryError> {
        let aggregate: A = self.get_as_of(id, cut_off).await?;
        self.store_snapshot(&aggregate, headers).await
    }

    async fn store_snapshot<A: Aggregate>(
        &self,
        aggregate: &A,
        mut headers: Headers,
    ) -> Result<Snapshot, RepositoryError> {
        if A::MEMENTO_VERSION != 1 {
            headers.insert(MEMENTO_VERSION_HEADER.to_owned(), A::MEMENTO_VERSION.into());
        }
        if aggregate.version() == 0 {
            return Err(RepositoryError::NothingToSnapshot {
                tenant: self.tenant.clone(),
                stream: aggregate.id().to_owned(),
            });
        }
        let payload = aggregate.get_memento_json().map_err(|source| {
            RepositoryError::encode(
                &self.tenant,
                aggregate.id(),
                "the memento".to_owned(),
                source,
            )
        })?;
        let snapshot = Snapshot {
            tenant_id: self.tenant.clone(),
            stream_id: aggregate.id().to_owned(),
            stream_revision: aggregate.version(),
            commit_sequence: aggregate.commit_sequence(),
            payload,
            headers,
        };
        self.snapshots.add_snapshot(snapshot.clone()).await?;
        Ok(snapshot)
    }
}

/// Commits `attempt`; finding its commit id already stored (an earlier attempt of this very
/// commit whose acknowledgement was lost) is success, answered with the stored commit.
pub(crate) async fn commit_once(
    commits: &dyn CommitStore,
    attempt: CommitAttempt,
) -> Result<Commit, RepositoryError> {
    let (first, last, commit_id, sequence) = (
        attempt.first_revision(),
        attempt.stream_revision,
        attempt.commit_id,
        attempt.commit_sequence,
    );
    let (tenant, stream) = (attempt.tenant_id.clone(), attempt.stream_id.clone());
    match commits.commit(attempt).await {
        Ok(commit) => Ok(commit),
        Err(StoreError::DuplicateCommit { commit_id: id, .. }) if id == commit_id => {
            let mut stored = commits.get(&tenant, &stream, first, last);
            while let Some(commit) = stored.try_next().await? {
                if commit.commit_id == commit_id {
                    return Ok(commit);
                }
            }
            Err(StoreError::DuplicateCommit {
                tenant,
                stream,
                commit_id,
                commit_sequence: sequence,
            }
            .into())
        }
        Err(error) => Err(error.into()),
    }
}
