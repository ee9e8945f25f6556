//! The aggregate repository's snapshot policy, snapshots of an aggregate in hand, and load
//! reports.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use aett::{
    AggregateRepository, CommitAttempt, CommitStore, CommitStream, EventStore, Headers,
    InMemoryStore, LoadReport, RepositoryError, Snapshot, SnapshotPolicy, SnapshotStore,
    StoreError, StreamsToSnapshot,
};
use aett_conformance::domain::Counter;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// Loads counter `id`, adds 1, and saves it.
async fn add_one(repository: &AggregateRepository, id: &str) {
    let mut counter: Counter = repository.get(id).await.expect("a load");
    counter.add(1).expect("a command");
    repository
        .save(&mut counter, Headers::new())
        .await
        .expect("a save");
}

async fn snapshot_revisions(store: &dyn SnapshotStore, id: &str) -> Vec<u64> {
    let mut found = Vec::new();
    let mut below = u64::MAX >> 1;
    while let Some(snapshot) = store.get_snapshot("t", id, below).await.unwrap() {
        found.push(snapshot.stream_revision);
        below = snapshot.stream_revision - 1;
    }
    found.reverse();
    found
}

async fn every_three_events(store: Arc<dyn EventStore>) {
    let repository =
        AggregateRepository::new("t", &store).with_snapshot_policy(SnapshotPolicy::EveryEvents(3));
    for _ in 0..7 {
        add_one(&repository, "c").await;
    }
    assert_eq!(snapshot_revisions(&*store, "c").await, [3, 6]);
    let (counter, report): (Counter, LoadReport) = repository.get_with_report("c").await.unwrap();
    assert_eq!(counter.total, 7);
    assert_eq!(report.snapshot_revision, Some(6));
    assert_eq!(report.events_replayed, 1);
    let (_, report): (Counter, LoadReport) =
        repository.get_version_with_report("c", 2).await.unwrap();
    assert_eq!(
        report.snapshot_revision, None,
        "no snapshot at or below version 2"
    );
    assert_eq!(report.events_replayed, 2);
}

#[tokio::test]
async fn a_policy_snapshots_every_n_events_in_memory() {
    every_three_events(Arc::new(InMemoryStore::new())).await;
}

#[tokio::test]
async fn a_policy_snapshots_every_n_events_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("policy.db").display());
    every_three_events(aett::connect(&url).await.unwrap()).await;
}

/// A commit store that counts the reads of streams.
struct CountingReads {
    inner: Arc<InMemoryStore>,
    reads: AtomicUsize,
}

#[async_trait]
impl CommitStore for CountingReads {
    fn get(&self, tenant: &str, stream: &str, min: u64, max: u64) -> CommitStream {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.inner.get(tenant, stream, min, max)
    }

    fn get_to(&self, tenant: &str, stream: &str, max_time: DateTime<Utc>) -> CommitStream {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.inner.get_to(tenant, stream, max_time)
    }

    async fn commit(&self, attempt: CommitAttempt) -> Result<aett::Commit, StoreError> {
        self.inner.commit(attempt).await
    }
}

/// A snapshot store that refuses to store, and counts the attempts.
struct RefusingSnapshots {
    inner: Arc<InMemoryStore>,
    attempts: AtomicUsize,
}

#[async_trait]
impl SnapshotStore for RefusingSnapshots {
    async fn get_snapshot(
        &self,
        tenant: &str,
        stream: &str,
        max_revision: u64,
    ) -> Result<Option<Snapshot>, StoreError> {
        self.inner.get_snapshot(tenant, stream, max_revision).await
    }

    async fn add_snapshot(&self, _: Snapshot) -> Result<(), StoreError> {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        Err(StoreError::Unsupported {
            operation: aett::Operation::AddSnapshot,
            backend: "test",
            reason: "snapshots refused by the test",
        })
    }

    fn streams_to_snapshot(&self, tenant: &str, threshold: u64) -> StreamsToSnapshot {
        self.inner.streams_to_snapshot(tenant, threshold)
    }
}

#[tokio::test]
async fn the_instance_just_saved_is_snapshotted_without_a_reload() {
    let store = Arc::new(InMemoryStore::new());
    let commits = Arc::new(CountingReads {
        inner: store.clone(),
        reads: AtomicUsize::new(0),
    });
    let decided = Arc::new(AtomicUsize::new(0));
    let seen = decided.clone();
    let repository = AggregateRepository::from_roles("t", commits.clone(), store.clone())
        .with_snapshot_policy(SnapshotPolicy::when(move |candidate| {
            seen.fetch_add(1, Ordering::SeqCst);
            assert_eq!(candidate.stream_type, "Counter");
            assert_eq!(candidate.stream_id, "c");
            candidate.events_saved == 2
        }));
    let mut counter: Counter = repository.get("c").await.unwrap();
    counter.add(5).unwrap();
    repository.save(&mut counter, Headers::new()).await.unwrap();
    counter.add(6).unwrap();
    counter.add(7).unwrap();
    let reads = commits.reads.load(Ordering::SeqCst);
    repository.save(&mut counter, Headers::new()).await.unwrap();
    assert_eq!(
        commits.reads.load(Ordering::SeqCst),
        reads,
        "nothing was read back"
    );
    assert_eq!(decided.load(Ordering::SeqCst), 2, "asked after each save");
    let snapshot = store.get_snapshot("t", "c", 100).await.unwrap().unwrap();
    assert_eq!(snapshot.stream_revision, 3);
    assert_eq!(snapshot.payload.get(), r#"{"total":18}"#);
}

#[tokio::test]
async fn a_snapshot_that_fails_does_not_fail_the_save() {
    let store = Arc::new(InMemoryStore::new());
    let snapshots = Arc::new(RefusingSnapshots {
        inner: store.clone(),
        attempts: AtomicUsize::new(0),
    });
    let repository = AggregateRepository::from_roles("t", store.clone(), snapshots.clone())
        .with_snapshot_policy(SnapshotPolicy::EveryEvents(1));
    add_one(&repository, "c").await;
    add_one(&repository, "c").await;
    assert_eq!(
        snapshots.attempts.load(Ordering::SeqCst),
        2,
        "each save tried again"
    );
    let counter: Counter = repository.get("c").await.unwrap();
    assert_eq!(counter.total, 2, "both saves stand");
}

#[tokio::test]
async fn an_aggregate_in_hand_is_snapshotted_once_saved() {
    let store = Arc::new(InMemoryStore::new());
    let repository = AggregateRepository::new("t", &store);
    let mut counter: Counter = repository.get("c").await.unwrap();
    assert!(matches!(
        repository
            .snapshot_aggregate(&mut counter, Headers::new())
            .await,
        Err(RepositoryError::NothingToSnapshot { .. })
    ));
    counter.add(4).unwrap();
    match repository
        .snapshot_aggregate(&mut counter, Headers::new())
        .await
    {
        Err(RepositoryError::UnsavedEvents { stream, events, .. }) => {
            assert_eq!((stream.as_str(), events), ("c", 1));
        }
        other => panic!("expected UnsavedEvents, got {other:?}"),
    }
    repository.save(&mut counter, Headers::new()).await.unwrap();
    let snapshot = repository
        .snapshot_aggregate(&mut counter, Headers::new())
        .await
        .unwrap();
    assert_eq!((snapshot.stream_revision, snapshot.commit_sequence), (1, 1));
    let (_, report): (Counter, LoadReport) = repository.get_with_report("c").await.unwrap();
    assert_eq!(report.snapshot_revision, Some(1));
    assert_eq!(report.events_replayed, 0);
}
