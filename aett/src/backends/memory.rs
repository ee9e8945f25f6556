//! The in-memory store: full semantics, nothing persisted. For tests and prototypes.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt};

use uuid::Uuid;

use crate::backends::kit::{check_follows_head, lease_check, resolve_taken_sequence, CommitSignal};
use crate::conflict::ConflictDetector;
use crate::error::StoreError;
use crate::model::{Commit, CommitAttempt, LogEntry, Snapshot, StreamDeleted};
use crate::store::{
    CheckpointStore, CommitLog, CommitStore, CommitStream, Lease, LogStream, PersistenceManagement,
    ProjectionPosition, SkippedCommit, SnapshotStore, StreamToSnapshot, StreamsToSnapshot, Wakeups,
};

/// An event store held in memory, safe to share between threads and tasks.
///
/// Commits are kept behind `Arc`s; reading clones each commit as it is yielded.
#[derive(Debug, Default)]
pub struct InMemoryStore {
    state: Mutex<State>,
    detector: Arc<ConflictDetector>,
    signal: CommitSignal,
}

#[derive(Debug, Default)]
struct State {
    last_checkpoint: u64,
    tenants: HashMap<String, Tenant>,
    /// Every commit of every tenant, and every deleted-stream notice, by checkpoint.
    log: BTreeMap<u64, Logged>,
    /// Projection checkpoints and leases, by projection.
    projections: HashMap<String, Projection>,
}

#[derive(Debug, Default)]
struct Projection {
    position: ProjectionPosition,
    holder: Option<(Uuid, DateTime<Utc>)>,
}

#[derive(Debug, Clone)]
enum Logged {
    Commit(Arc<Commit>),
    Deleted(Arc<StreamDeleted>),
}

impl Logged {
    fn tenant_id(&self) -> &str {
        match self {
            Logged::Commit(commit) => &commit.tenant_id,
            Logged::Deleted(deleted) => &deleted.tenant_id,
        }
    }

    fn entry(&self) -> LogEntry {
        match self {
            Logged::Commit(commit) => LogEntry::Commit(Commit::clone(commit)),
            Logged::Deleted(deleted) => LogEntry::StreamDeleted(StreamDeleted::clone(deleted)),
        }
    }
}

#[derive(Debug, Default)]
struct Tenant {
    streams: HashMap<String, Vec<Arc<Commit>>>,
    snapshots: HashMap<String, BTreeMap<u64, Snapshot>>,
}

impl InMemoryStore {
    /// An empty store with the default conflict detector.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store that decides conflicts with `detector`.
    pub fn with_conflict_detector(detector: Arc<ConflictDetector>) -> Self {
        Self {
            state: Mutex::default(),
            detector,
            signal: CommitSignal::default(),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave a half-written commit (every mutation is
        // a single insert after all checks), so a poisoned lock is safe to keep using.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The entries of the log after `checkpoint` that `keep` selects.
    fn log_after(&self, checkpoint: u64, keep: impl Fn(&Logged) -> bool) -> Vec<Logged> {
        self.state()
            .log
            .range(checkpoint.saturating_add(1)..)
            .filter(|(_, entry)| keep(entry))
            .map(|(_, entry)| entry.clone())
            .collect()
    }

    fn stream_commits(&self, tenant_id: &str, stream_id: &str) -> Vec<Arc<Commit>> {
        self.state()
            .tenants
            .get(tenant_id)
            .and_then(|tenant| tenant.streams.get(stream_id))
            .cloned()
            .unwrap_or_default()
    }
}

fn owned(commits: Vec<Arc<Commit>>) -> CommitStream {
    stream::iter(commits.into_iter().map(|commit| Ok(Commit::clone(&commit)))).boxed()
}

#[async_trait]
impl CommitStore for InMemoryStore {
    fn get(
        &self,
        tenant_id: &str,
        stream_id: &str,
        min_revision: u64,
        max_revision: u64,
    ) -> CommitStream {
        let mut commits = self.stream_commits(tenant_id, stream_id);
        commits.retain(|c| c.stream_revision >= min_revision && c.first_revision() <= max_revision);
        owned(commits)
    }

    fn get_to(&self, tenant_id: &str, stream_id: &str, max_time: DateTime<Utc>) -> CommitStream {
        let mut commits = self.stream_commits(tenant_id, stream_id);
        commits.retain(|c| c.commit_stamp <= max_time);
        owned(commits)
    }

    async fn commit(&self, attempt: CommitAttempt) -> Result<Commit, StoreError> {
        let span = crate::trace::commit_span(&attempt);
        let commit = crate::trace::in_span(span, async move { self.commit_now(attempt) }).await?;
        self.signal.raise();
        Ok(commit)
    }
}

impl InMemoryStore {
    fn commit_now(&self, attempt: CommitAttempt) -> Result<Commit, StoreError> {
        attempt.validate()?;
        let mut state = self.state();
        let state = &mut *state;
        let tenant = state.tenants.entry(attempt.tenant_id.clone()).or_default();
        let stream = tenant.streams.entry(attempt.stream_id.clone()).or_default();
        if stream.iter().any(|c| c.commit_id == attempt.commit_id) {
            return Err(StoreError::DuplicateCommit {
                tenant: attempt.tenant_id,
                stream: attempt.stream_id,
                commit_id: attempt.commit_id,
                commit_sequence: attempt.commit_sequence,
            });
        }
        let head = stream
            .last()
            .map_or((0, 0), |c| (c.commit_sequence, c.stream_revision));
        check_follows_head(&attempt, head)?;
        if attempt.commit_sequence <= head.0 {
            let later = stream
                .iter()
                .filter(|c| c.commit_sequence >= attempt.commit_sequence)
                .map(|c| Commit::clone(c))
                .collect();
            return Err(resolve_taken_sequence(&attempt, later, &self.detector));
        }
        state.last_checkpoint += 1;
        let commit = Arc::new(Commit::from_attempt(attempt, state.last_checkpoint));
        stream.push(commit.clone());
        state
            .log
            .insert(commit.checkpoint, Logged::Commit(commit.clone()));
        Ok(Commit::clone(&commit))
    }
}

#[async_trait]
impl SnapshotStore for InMemoryStore {
    async fn get_snapshot(
        &self,
        tenant_id: &str,
        stream_id: &str,
        max_revision: u64,
    ) -> Result<Option<Snapshot>, StoreError> {
        Ok(self
            .state()
            .tenants
            .get(tenant_id)
            .and_then(|tenant| tenant.snapshots.get(stream_id))
            .and_then(|snapshots| snapshots.range(..=max_revision).next_back())
            .map(|(_, snapshot)| snapshot.clone()))
    }

    fn streams_to_snapshot(&self, tenant_id: &str, threshold: u64) -> StreamsToSnapshot {
        let state = self.state();
        let mut streams: Vec<StreamToSnapshot> = state
            .tenants
            .get(tenant_id)
            .map(|tenant| {
                tenant
                    .streams
                    .iter()
                    .filter_map(|(stream_id, commits)| {
                        let head = commits.last()?.stream_revision;
                        let snapshot = tenant
                            .snapshots
                            .get(stream_id)
                            .and_then(|s| s.keys().next_back().copied());
                        let stream = StreamToSnapshot::new(tenant_id, stream_id, head, snapshot);
                        (stream.revisions_behind() >= threshold).then_some(stream)
                    })
                    .collect()
            })
            .unwrap_or_default();
        drop(state);
        streams.sort_by(|a, b| a.stream_id.cmp(&b.stream_id));
        stream::iter(streams.into_iter().map(Ok)).boxed()
    }

    async fn add_snapshot(&self, snapshot: Snapshot) -> Result<(), StoreError> {
        self.state()
            .tenants
            .entry(snapshot.tenant_id.clone())
            .or_default()
            .snapshots
            .entry(snapshot.stream_id.clone())
            .or_default()
            .insert(snapshot.stream_revision, snapshot);
        Ok(())
    }
}

#[async_trait]
impl PersistenceManagement for InMemoryStore {
    async fn initialize(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn drop_all(&self) -> Result<(), StoreError> {
        let mut state = self.state();
        state.tenants.clear();
        state.log.clear();
        state.projections.clear();
        Ok(())
    }

    async fn purge(&self, tenant_id: &str) -> Result<(), StoreError> {
        let mut state = self.state();
        state.tenants.remove(tenant_id);
        state.log.retain(|_, entry| entry.tenant_id() != tenant_id);
        Ok(())
    }

    async fn truncate_stream(
        &self,
        tenant_id: &str,
        stream_id: &str,
        revision: u64,
    ) -> Result<(), StoreError> {
        let mut state = self.state();
        let state = &mut *state;
        let refused = || StoreError::TruncationRefused {
            tenant: tenant_id.to_owned(),
            stream: stream_id.to_owned(),
            revision,
        };
        let tenant = state.tenants.get_mut(tenant_id).ok_or_else(refused)?;
        let covered = tenant
            .snapshots
            .get(stream_id)
            .is_some_and(|s| s.range(revision..).next().is_some());
        if !covered {
            return Err(refused());
        }
        if let Some(commits) = tenant.streams.get_mut(stream_id) {
            // The head commit always stays: the stream's next sequence follows it.
            let head = commits.last().map_or(0, |c| c.commit_sequence);
            let gone = |c: &Commit| c.stream_revision < revision && c.commit_sequence < head;
            for commit in commits.iter().filter(|c| gone(c)) {
                state.log.remove(&commit.checkpoint);
            }
            commits.retain(|c| !gone(c));
        }
        Ok(())
    }

    async fn delete_stream(&self, tenant_id: &str, stream_id: &str) -> Result<(), StoreError> {
        let mut guard = self.state();
        let state = &mut *guard;
        let Some(tenant) = state.tenants.get_mut(tenant_id) else {
            return Ok(());
        };
        let commits = tenant.streams.remove(stream_id).unwrap_or_default();
        let snapshots = tenant.snapshots.remove(stream_id).unwrap_or_default();
        if commits.is_empty() && snapshots.is_empty() {
            return Ok(());
        }
        for commit in &commits {
            state.log.remove(&commit.checkpoint);
        }
        state.last_checkpoint += 1;
        let deleted = StreamDeleted::new(
            tenant_id,
            stream_id,
            state.last_checkpoint,
            chrono::SubsecRound::trunc_subsecs(Utc::now(), 6),
        )
        .with_stream_type(commits.last().and_then(|c| c.stream_type.clone()));
        state
            .log
            .insert(deleted.checkpoint, Logged::Deleted(Arc::new(deleted)));
        drop(guard);
        self.signal.raise();
        Ok(())
    }
}

impl CommitLog for InMemoryStore {
    fn get_from(&self, checkpoint: u64) -> LogStream {
        entries(self.log_after(checkpoint, |_| true))
    }

    fn get_tenant_from(&self, tenant_id: &str, checkpoint: u64) -> LogStream {
        entries(self.log_after(checkpoint, |entry| entry.tenant_id() == tenant_id))
    }

    fn get_all_to(&self, tenant_id: &str, max_time: DateTime<Utc>) -> CommitStream {
        let commits = self
            .log_after(0, |_| true)
            .into_iter()
            .filter_map(|entry| match entry {
                Logged::Commit(c) if c.tenant_id == tenant_id && c.commit_stamp <= max_time => {
                    Some(c)
                }
                _ => None,
            })
            .collect();
        owned(commits)
    }

    fn wakeups(&self) -> Option<Wakeups> {
        Some(self.signal.wakeups())
    }
}

#[async_trait]
impl CheckpointStore for InMemoryStore {
    async fn load_checkpoint(
        &self,
        projection: &str,
    ) -> Result<Option<ProjectionPosition>, StoreError> {
        Ok(self
            .state()
            .projections
            .get(projection)
            .map(|p| p.position.clone()))
    }

    async fn acquire_lease(&self, lease: &Lease) -> Result<ProjectionPosition, StoreError> {
        let mut state = self.state();
        let now = Utc::now();
        let projection = state
            .projections
            .entry(lease.projection.clone())
            .or_default();
        lease_check(&lease.projection, lease.owner, projection.holder, now)?;
        projection.holder = Some((lease.owner, now + lease.ttl));
        Ok(projection.position.clone())
    }

    async fn save_checkpoint(
        &self,
        lease: &Lease,
        checkpoint: u64,
        skipped: Option<SkippedCommit>,
    ) -> Result<(), StoreError> {
        let mut state = self.state();
        let lost = || StoreError::LeaseLost {
            projection: lease.projection.clone(),
        };
        let projection = state
            .projections
            .get_mut(&lease.projection)
            .ok_or_else(lost)?;
        match projection.holder {
            Some((holder, _)) if holder == lease.owner => {}
            _ => return Err(lost()),
        }
        projection.position.checkpoint = checkpoint;
        projection.position.skipped.extend(skipped);
        projection.holder = Some((lease.owner, Utc::now() + lease.ttl));
        Ok(())
    }

    async fn release_lease(&self, lease: &Lease) -> Result<(), StoreError> {
        let mut state = self.state();
        if let Some(projection) = state.projections.get_mut(&lease.projection) {
            if projection
                .holder
                .is_some_and(|(holder, _)| holder == lease.owner)
            {
                projection.holder = None;
            }
        }
        Ok(())
    }
}

fn entries(logged: Vec<Logged>) -> LogStream {
    stream::iter(logged.into_iter().map(|entry| Ok(entry.entry()))).boxed()
}
