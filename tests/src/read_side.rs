//! The read side's contract: stream types, projections run from the log, checkpoints and
//! leases kept by the store, and sagas run from the log with an outbox. Part of the contract
//! suite (re-exported by [`crate::contract`]); every backend runs all of it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aett::{
    Aggregate, AggregateRepository, BoxError, CheckpointStore, CommandDispatcher, Commit,
    CommitAttempt, CommitLog, CommitStore, ConflictDetector, Delivery, DispatchedCommand,
    EventContext, EventMessage, EventStream, Headers, Lease, LogEntry, LogFilter, OnDamage,
    PersistenceManagement, Project, Projection, ProjectionRunner, RepositoryError, RunnerError,
    Saga, SagaRepository, SagaRunner, StoreError, StreamDeleted, CAUSATION_HEADER,
    CORRELATION_HEADER,
};
use futures::TryStreamExt;
use uuid::Uuid;

use crate::domain::{
    BillCustomer, Counter, Fulfilment, Incremented, OrderPlaced, PaymentReceived, ShipOrder, Tally,
};
use crate::Harness;

const TENANT: &str = "tenant-r";

/// How long a test waits for a runner before it calls the runner stuck.
const PATIENCE: Duration = Duration::from_secs(30);

async fn store<H: Harness>(harness: &H) -> Arc<H::Store> {
    harness.store(ConflictDetector::new()).await
}

fn incremented(by: i64) -> EventMessage {
    EventMessage::from_event(&Incremented { by }).expect("test events serialise")
}

/// Appends one commit of `events` after the stream's head, recording `stream_type`.
async fn append_typed(
    store: &dyn CommitStore,
    tenant: &str,
    stream: &str,
    stream_type: Option<&str>,
    events: Vec<EventMessage>,
) -> Commit {
    let head: Vec<Commit> = store
        .get(tenant, stream, 0, u64::MAX)
        .try_collect()
        .await
        .expect("read the stream");
    let (sequence, revision) = head
        .last()
        .map_or((0, 0), |c| (c.commit_sequence, c.stream_revision));
    let mut attempt = CommitAttempt::new(
        tenant,
        stream,
        revision + events.len() as u64,
        sequence + 1,
        Headers::new(),
        events,
    );
    attempt.stream_type = stream_type.map(str::to_owned);
    store.commit(attempt).await.expect("append")
}

async fn append(store: &dyn CommitStore, tenant: &str, stream: &str, by: i64) -> Commit {
    append_typed(
        store,
        tenant,
        stream,
        Some("counter"),
        vec![incremented(by)],
    )
    .await
}

/// What a [`Totals`] handler saw of one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// Tenant.
    pub tenant: String,
    /// Stream.
    pub stream: String,
    /// Stream type.
    pub stream_type: Option<String>,
    /// Commit id.
    pub commit_id: Uuid,
    /// Commit sequence.
    pub commit_sequence: u64,
    /// Checkpoint.
    pub checkpoint: u64,
    /// Revision of the event.
    pub revision: u64,
    /// The event's `by`.
    pub by: i64,
}

/// A projection that sums increments per stream and records what it saw, in order.
#[derive(Debug, Default, Projection)]
#[projection(name = "totals", events(Incremented), deletions)]
pub struct Totals {
    /// Sum per (tenant, stream).
    pub totals: BTreeMap<(String, String), i64>,
    /// Every event handled, in order.
    pub seen: Vec<Seen>,
    /// Streams whose deletion was handled.
    pub deleted: Vec<String>,
    /// A `by` value whose handler fails.
    pub fail_on: Option<i64>,
}

impl Project<Incremented> for Totals {
    async fn project(
        &mut self,
        event: Incremented,
        context: &EventContext<'_>,
    ) -> Result<(), BoxError> {
        if self.fail_on == Some(event.by) {
            return Err(format!("refusing {}", event.by).into());
        }
        *self
            .totals
            .entry((context.tenant_id.to_owned(), context.stream_id.to_owned()))
            .or_default() += event.by;
        self.seen.push(Seen {
            tenant: context.tenant_id.to_owned(),
            stream: context.stream_id.to_owned(),
            stream_type: context.stream_type.map(str::to_owned),
            commit_id: context.commit_id,
            commit_sequence: context.commit_sequence,
            checkpoint: context.checkpoint,
            revision: context.revision,
            by: event.by,
        });
        Ok(())
    }
}

impl Project<StreamDeleted> for Totals {
    async fn project(
        &mut self,
        event: StreamDeleted,
        _: &EventContext<'_>,
    ) -> Result<(), BoxError> {
        self.totals
            .remove(&(event.tenant_id.clone(), event.stream_id.clone()));
        self.deleted.push(event.stream_id);
        Ok(())
    }
}

fn totals_with_failure(by: i64) -> Totals {
    Totals {
        fail_on: Some(by),
        ..Totals::default()
    }
}

/// Every commit records the type of what wrote it; the log filters on it, on tenants and on
/// topics; a deleted stream's notice carries its type.
pub async fn stream_types_are_recorded_and_filter_the_log<H: Harness>(harness: &H) {
    let store = store(harness).await;
    let counters = AggregateRepository::new(TENANT, &store);
    counters
        .update::<Counter, _, RepositoryError, _>("c-1", Headers::new(), 1, |c| {
            c.add(2).unwrap();
            Ok(())
        })
        .await
        .expect("save a counter");
    let mut notes = EventStream::create(store.clone(), TENANT, "notes-1").with_stream_type("notes");
    notes.add(EventMessage::from_raw(
        "test.note.raw",
        serde_json::value::to_raw_value(&1).unwrap(),
    ));
    notes.commit(Uuid::new_v4()).await.expect("commit notes");
    append_typed(
        &*store,
        "tenant-other",
        "c-2",
        Some("Counter"),
        vec![incremented(1)],
    )
    .await;
    append_typed(&*store, TENANT, "untyped", None, vec![incremented(1)]).await;

    let all: Vec<LogEntry> = store.get_from(0).try_collect().await.expect("read the log");
    let types: Vec<Option<&str>> = all.iter().map(LogEntry::stream_type).collect();
    assert_eq!(
        types,
        vec![Some("Counter"), Some("notes"), Some("Counter"), None],
        "repositories record the type's name; direct writes what they set"
    );
    let reread: Vec<Commit> = store
        .get(TENANT, "notes-1", 0, u64::MAX)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(reread[0].stream_type.as_deref(), Some("notes"));
    let reopened = EventStream::open(store.clone(), TENANT, "notes-1", 0, u64::MAX)
        .await
        .unwrap();
    assert_eq!(
        reopened.stream_type(),
        Some("notes"),
        "a reopened stream keeps its type"
    );

    let read = |filter: LogFilter| {
        let store = store.clone();
        async move {
            store
                .get_filtered(0, &filter)
                .try_collect::<Vec<LogEntry>>()
                .await
                .expect("filtered read")
                .iter()
                .map(|e| format!("{}/{}", e.tenant_id(), e.stream_id()))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        read(LogFilter::new().stream_type("Counter")).await,
        vec!["tenant-r/c-1", "tenant-other/c-2"]
    );
    assert_eq!(
        read(LogFilter::new().tenant(TENANT).stream_type("Counter")).await,
        vec!["tenant-r/c-1"]
    );
    assert_eq!(
        read(LogFilter::new().tenant("tenant-other").tenant(TENANT))
            .await
            .len(),
        4
    );
    assert_eq!(
        read(LogFilter::new().topic("test.note.raw")).await,
        vec!["tenant-r/notes-1"]
    );
    assert_eq!(
        read(LogFilter::new().stream_type("nothing")).await,
        Vec::<String>::new()
    );
    let last = all.last().unwrap().checkpoint();
    assert!(
        store
            .get_filtered(last, &LogFilter::new().stream_type("Counter"))
            .try_collect::<Vec<_>>()
            .await
            .unwrap()
            .is_empty(),
        "a filtered read starts after its checkpoint"
    );

    store.delete_stream(TENANT, "c-1").await.expect("delete");
    let deleted: Vec<LogEntry> = store
        .get_filtered(last, &LogFilter::new().stream_type("Counter"))
        .try_collect()
        .await
        .unwrap();
    match deleted.as_slice() {
        [LogEntry::StreamDeleted(notice)] => {
            assert_eq!(notice.stream_type.as_deref(), Some("Counter"));
        }
        other => panic!("expected the deletion notice of the counter, got {other:?}"),
    }
}

/// A stream written by one aggregate type does not load as another: a typed error naming both.
pub async fn loading_a_stream_as_another_type_is_a_typed_error<H: Harness>(harness: &H) {
    let store = store(harness).await;
    let repository = AggregateRepository::new(TENANT, &store);
    let mut counter = <Counter as aett::Aggregate>::create("shared");
    counter.add(1).unwrap();
    repository.save(&mut counter, Headers::new()).await.unwrap();
    match repository.get::<Tally>("shared").await {
        Err(RepositoryError::WrongStreamType {
            expected,
            found,
            stream,
            commit_sequence,
            ..
        }) => {
            assert_eq!((expected, found.as_str()), ("Tally", "Counter"));
            assert_eq!((stream.as_str(), commit_sequence), ("shared", 1));
        }
        other => panic!("expected WrongStreamType, got {other:?}"),
    }
    // A stream of untyped commits (written before stream types existed) loads as any type.
    append_typed(&*store, TENANT, "old", None, vec![incremented(4)]).await;
    let tally: Tally = repository.get("old").await.expect("untyped commits load");
    assert_eq!(tally.version(), 1);
    let sagas = SagaRepository::new(TENANT, &store);
    assert!(matches!(
        sagas.get::<Fulfilment>("shared").await,
        Err(RepositoryError::WrongStreamType { .. })
    ));
}

/// A projection catches up, its checkpoint is stored, and a restarted runner (a fresh
/// projection value) handles only what came after; handlers get the event's full context.
pub async fn a_projection_resumes_from_its_stored_checkpoint<H: Harness>(harness: &H) {
    let store = store(harness).await;
    let first = append(&*store, TENANT, "a", 1).await;
    let mut two = CommitAttempt::new(
        TENANT,
        "a",
        3,
        2,
        Headers::from([("who".to_owned(), "tester".into())]),
        vec![incremented(2), incremented(3).with_header("n", 3)],
    );
    two.stream_type = Some("counter".to_owned());
    let second = store.commit(two).await.unwrap();
    append_typed(
        &*store,
        TENANT,
        "other-topic",
        Some("x"),
        vec![EventMessage::from_raw(
            "test.unlisted",
            serde_json::value::to_raw_value(&"not for totals").unwrap(),
        )],
    )
    .await;

    let totals = ProjectionRunner::new(&store, Totals::default())
        .catch_up()
        .await
        .expect("catch up");
    assert_eq!(totals.totals[&(TENANT.to_owned(), "a".to_owned())], 6);
    assert_eq!(
        totals.seen[0],
        Seen {
            tenant: TENANT.to_owned(),
            stream: "a".to_owned(),
            stream_type: Some("counter".to_owned()),
            commit_id: first.commit_id,
            commit_sequence: 1,
            checkpoint: first.checkpoint,
            revision: 1,
            by: 1,
        }
    );
    assert_eq!(
        totals.seen[2].revision, 3,
        "the second event of a commit has its own revision"
    );
    assert_eq!(totals.seen[2].checkpoint, second.checkpoint);
    let position = store
        .load_checkpoint("totals")
        .await
        .unwrap()
        .expect("the checkpoint is stored");
    let head = store.get_from(0).try_collect::<Vec<_>>().await.unwrap();
    assert_eq!(
        position.checkpoint,
        head.last().unwrap().checkpoint(),
        "the checkpoint passes entries the projection does not list, too"
    );

    let third = append(&*store, TENANT, "a", 10).await;
    let resumed = ProjectionRunner::new(&store, Totals::default())
        .catch_up()
        .await
        .expect("resume");
    assert_eq!(
        resumed.seen.iter().map(|s| s.by).collect::<Vec<_>>(),
        vec![10],
        "a restarted runner starts after its stored checkpoint"
    );
    assert_eq!(
        store
            .load_checkpoint("totals")
            .await
            .unwrap()
            .unwrap()
            .checkpoint,
        third.checkpoint
    );
    // Another projection name has a checkpoint of its own.
    let renamed = ProjectionRunner::new(&store, Totals::default())
        .name("totals-again")
        .catch_up()
        .await
        .unwrap();
    assert_eq!(renamed.seen.len(), 4);
}

/// A spawned runner follows commits as they are written, and hands deleted-stream notices to
/// a projection that asks for them.
pub async fn a_projection_follows_new_commits_live<H: Harness>(harness: &H) {
    let store = store(harness).await;
    append(&*store, TENANT, "live", 1).await;
    let mut running = ProjectionRunner::new(&store, Totals::default())
        .max_poll_interval(Duration::from_millis(200))
        .spawn();
    let later = append(&*store, TENANT, "live", 2).await;
    tokio::time::timeout(PATIENCE, running.wait_for(later.checkpoint))
        .await
        .expect("the runner picks up a new commit")
        .expect("the runner runs");
    store.delete_stream(TENANT, "live").await.unwrap();
    let notice = store
        .get_from(later.checkpoint)
        .try_collect::<Vec<_>>()
        .await
        .unwrap()[0]
        .checkpoint();
    tokio::time::timeout(PATIENCE, running.wait_for(notice))
        .await
        .expect("the runner picks up the deletion")
        .unwrap();
    assert!(running.checkpoint() >= notice);
    let totals = running.stop().await.expect("stop");
    assert_eq!(
        totals.seen.iter().map(|s| s.by).collect::<Vec<_>>(),
        vec![1, 2]
    );
    assert_eq!(totals.deleted, vec!["live"]);
    assert!(
        totals.totals.is_empty(),
        "the deletion removed the stream's total"
    );
}

/// With eight writers appending while the runner follows, every event reaches the projection
/// (at least once), and a restarted runner resumes without a gap.
pub async fn eight_concurrent_writers_miss_no_event<H: Harness>(harness: &H) {
    let store = store(harness).await;
    let running = ProjectionRunner::new(&store, Totals::default())
        .batch_size(7)
        .max_poll_interval(Duration::from_millis(100))
        .spawn();
    let mut writers = Vec::new();
    for writer in 0..8i64 {
        let store = store.clone();
        writers.push(tokio::spawn(async move {
            for i in 0..25i64 {
                append(&*store, TENANT, &format!("w-{writer}"), writer * 1000 + i).await;
            }
        }));
    }
    // Stop the first runner midway; a second takes over from its checkpoint.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let first = running.stop().await.expect("stop the first runner");
    for writer in writers {
        writer.await.unwrap();
    }
    let mut running = ProjectionRunner::new(&store, Totals::default())
        .batch_size(7)
        .spawn();
    let head = store
        .get_from(0)
        .try_collect::<Vec<_>>()
        .await
        .unwrap()
        .last()
        .unwrap()
        .checkpoint();
    tokio::time::timeout(PATIENCE, running.wait_for(head))
        .await
        .expect("the second runner catches up")
        .unwrap();
    let second = running.stop().await.unwrap();
    let seen: BTreeSet<i64> = first
        .seen
        .iter()
        .chain(&second.seen)
        .map(|s| s.by)
        .collect();
    let expected: BTreeSet<i64> = (0..8i64)
        .flat_map(|w| (0..25i64).map(move |i| w * 1000 + i))
        .collect();
    assert_eq!(seen, expected, "no event is missed");
    let checkpoints: Vec<u64> = first
        .seen
        .iter()
        .chain(&second.seen)
        .map(|s| s.checkpoint)
        .collect();
    assert!(
        checkpoints.windows(2).all(|w| w[0] <= w[1]),
        "events arrive in checkpoint order"
    );
}

/// Filters pick tenants, stream types and topics.
pub async fn a_projection_reads_only_what_its_filter_lets_through<H: Harness>(harness: &H) {
    let store = store(harness).await;
    append(&*store, TENANT, "mine", 1).await;
    append(&*store, "tenant-x", "theirs", 2).await;
    append_typed(
        &*store,
        TENANT,
        "typed",
        Some("gauge"),
        vec![incremented(3)],
    )
    .await;
    let by_tenant = ProjectionRunner::new(&store, Totals::default())
        .name("by-tenant")
        .filter(LogFilter::new().tenant(TENANT))
        .catch_up()
        .await
        .unwrap();
    assert_eq!(
        by_tenant.seen.iter().map(|s| s.by).collect::<Vec<_>>(),
        vec![1, 3]
    );
    let by_type = ProjectionRunner::new(&store, Totals::default())
        .name("by-type")
        .filter(LogFilter::new().stream_type("counter"))
        .catch_up()
        .await
        .unwrap();
    assert_eq!(
        by_type.seen.iter().map(|s| s.by).collect::<Vec<_>>(),
        vec![1, 2]
    );
    let by_topic = ProjectionRunner::new(&store, Totals::default())
        .name("by-topic")
        .filter(LogFilter::new().topic("test.counter.reset"))
        .catch_up()
        .await
        .unwrap();
    assert!(by_topic.seen.is_empty());
}

/// A failing handler stops the runner with a typed error naming the event's tenant, stream,
/// commit and checkpoint; the stored checkpoint stays before that commit, so a fixed handler
/// picks it up.
pub async fn a_failing_handler_stops_the_runner_before_its_commit<H: Harness>(harness: &H) {
    let store = store(harness).await;
    let ok = append(&*store, TENANT, "f", 1).await;
    let bad = append(&*store, TENANT, "f", 13).await;
    append(&*store, TENANT, "f", 2).await;
    match ProjectionRunner::new(&store, totals_with_failure(13))
        .catch_up()
        .await
    {
        Err(RunnerError::Handler {
            projection,
            tenant,
            stream,
            commit_sequence,
            checkpoint,
            topic,
            ..
        }) => {
            assert_eq!(projection, "totals");
            assert_eq!((tenant.as_str(), stream.as_str()), (TENANT, "f"));
            assert_eq!((commit_sequence, checkpoint), (2, bad.checkpoint));
            assert_eq!(topic, "test.counter.incremented");
        }
        other => panic!("expected a handler error, got {other:?}"),
    }
    assert_eq!(
        store
            .load_checkpoint("totals")
            .await
            .unwrap()
            .unwrap()
            .checkpoint,
        ok.checkpoint,
        "the checkpoint never passes an event that was not handled"
    );
    let fixed = ProjectionRunner::new(&store, Totals::default())
        .catch_up()
        .await
        .expect("the lease was given up: a fixed runner starts at once");
    assert_eq!(
        fixed.seen.iter().map(|s| s.by).collect::<Vec<_>>(),
        vec![13, 2]
    );
}

/// A damaged commit stops the runner with a typed error naming it, or, when the runner is told
/// to, is skipped and recorded with the checkpoint.
pub async fn a_damaged_commit_stops_the_runner_or_is_skipped<H: Harness>(harness: &H) {
    let store = store(harness).await;
    append(&*store, TENANT, "d", 1).await;
    let damaged = append(&*store, TENANT, "d", 2).await;
    append(&*store, TENANT, "e", 3).await;
    if !harness.corrupt_events(&store, TENANT, "d", 2).await {
        return; // This backend holds no bytes that could be damaged.
    }
    match ProjectionRunner::new(&store, Totals::default())
        .catch_up()
        .await
    {
        Err(error @ RunnerError::Damaged { .. }) => {
            assert_eq!(error.checkpoint(), Some(damaged.checkpoint));
            let RunnerError::Damaged { source, .. } = error else {
                unreachable!()
            };
            assert_eq!(
                (source.tenant(), source.stream()),
                (Some(TENANT), Some("d"))
            );
            assert_eq!(source.commit_sequence(), Some(2));
        }
        other => panic!("expected Damaged, got {other:?}"),
    }
    let stored = store.load_checkpoint("totals").await.unwrap().unwrap();
    assert!(stored.checkpoint < damaged.checkpoint);
    let skipping = ProjectionRunner::new(&store, Totals::default())
        .on_damage(OnDamage::Skip)
        .catch_up()
        .await
        .expect("skip the damaged commit");
    assert_eq!(
        skipping.seen.iter().map(|s| s.by).collect::<Vec<_>>(),
        vec![3]
    );
    let stored = store.load_checkpoint("totals").await.unwrap().unwrap();
    assert_eq!(stored.skipped.len(), 1, "{stored:?}");
    assert_eq!(stored.skipped[0].checkpoint, damaged.checkpoint);
    assert_eq!(stored.skipped[0].stream_id.as_deref(), Some("d"));
}

/// Two runners of one projection never both run: the second is refused while the first holds
/// the lease; a runner whose lease was taken over cannot move the checkpoint.
pub async fn one_projection_runs_in_one_runner_at_a_time<H: Harness>(harness: &H) {
    let store = store(harness).await;
    let first = append(&*store, TENANT, "l", 1).await;
    let mut running = ProjectionRunner::new(&store, Totals::default()).spawn();
    tokio::time::timeout(PATIENCE, running.wait_for(first.checkpoint))
        .await
        .unwrap()
        .unwrap();
    match ProjectionRunner::new(&store, Totals::default())
        .catch_up()
        .await
    {
        Err(RunnerError::Store {
            source: StoreError::LeaseHeld { projection, .. },
            ..
        }) => assert_eq!(projection, "totals"),
        other => panic!("expected the lease to be held, got {other:?}"),
    }
    // A different projection runs beside it.
    ProjectionRunner::new(&store, Totals::default())
        .name("other")
        .catch_up()
        .await
        .expect("another projection runs beside");
    running.stop().await.unwrap();
    ProjectionRunner::new(&store, Totals::default())
        .catch_up()
        .await
        .expect("after a stop the lease is free");

    // Leases expire; the expired holder's saves are fenced off. (A second is long enough that
    // a slow test server answers the next request before it runs out.)
    let old = Lease::new("fenced", Duration::from_secs(1));
    store.acquire_lease(&old).await.unwrap();
    let young = Lease::new("fenced", Duration::from_secs(60));
    assert!(matches!(
        store.acquire_lease(&young).await,
        Err(StoreError::LeaseHeld { .. })
    ));
    tokio::time::sleep(Duration::from_millis(1200)).await;
    store
        .acquire_lease(&young)
        .await
        .expect("an expired lease is taken over");
    assert!(matches!(
        store.save_checkpoint(&old, 5, None).await,
        Err(StoreError::LeaseLost { .. })
    ));
    store.save_checkpoint(&young, 7, None).await.unwrap();
    store.release_lease(&old).await.unwrap();
    assert!(
        matches!(
            store.acquire_lease(&old).await,
            Err(StoreError::LeaseHeld { .. })
        ),
        "releasing a lease one no longer holds does nothing"
    );
    store.release_lease(&young).await.unwrap();
    assert_eq!(store.acquire_lease(&old).await.unwrap().checkpoint, 7);
}

/// Runners starting at the same moment for a projection never seen: exactly one gets the
/// lease, every other is told it is held.
pub async fn concurrent_runners_get_one_lease<H: Harness>(harness: &H) {
    let store = store(harness).await;
    for round in 0..5 {
        let projection = format!("race-{round}");
        let takers: Vec<_> = (0..8)
            .map(|_| {
                let store = store.clone();
                let lease = Lease::new(projection.clone(), Duration::from_secs(60));
                tokio::spawn(async move { store.acquire_lease(&lease).await })
            })
            .collect();
        let mut won = 0;
        for taker in takers {
            match taker.await.unwrap() {
                Ok(position) => {
                    assert_eq!(position.checkpoint, 0);
                    won += 1;
                }
                Err(StoreError::LeaseHeld { .. }) => {}
                Err(other) => panic!("a lease taker failed: {other:?}"),
            }
        }
        assert_eq!(won, 1, "exactly one runner holds the lease");
    }
}

/// Exactly-once delivery runs where the store has transactions, and is refused with a typed
/// error where it has not.
pub async fn exactly_once_runs_or_is_refused<H: Harness>(harness: &H) {
    let store = store(harness).await;
    append(&*store, TENANT, "x", 1).await;
    append(&*store, TENANT, "x", 2).await;
    let outcome = ProjectionRunner::new(&store, Totals::default())
        .delivery(Delivery::ExactlyOnce)
        .catch_up()
        .await;
    if H::EXACTLY_ONCE {
        let totals = outcome.expect("exactly once runs");
        assert_eq!(totals.seen.len(), 2);
        assert_eq!(
            store
                .load_checkpoint("totals")
                .await
                .unwrap()
                .unwrap()
                .checkpoint,
            totals.seen[1].checkpoint
        );
    } else {
        assert!(
            matches!(
                outcome,
                Err(RunnerError::Store {
                    source: StoreError::Unsupported { .. },
                    ..
                })
            ),
            "{outcome:?}"
        );
    }
}

/// Records the commands a saga runner dispatches; fails while `failing` is set.
#[derive(Debug, Clone, Default)]
pub struct Recorder {
    /// The commands dispatched, in order.
    pub commands: Arc<Mutex<Vec<DispatchedCommand>>>,
    /// Refuse every command while set.
    pub failing: Arc<Mutex<bool>>,
}

impl CommandDispatcher for Recorder {
    async fn dispatch(&self, command: &DispatchedCommand) -> Result<(), BoxError> {
        if *self.failing.lock().unwrap() {
            return Err("the command bus is down".into());
        }
        self.commands.lock().unwrap().push(command.clone());
        Ok(())
    }
}

/// Appends `event` to the stream of `order`, as an order aggregate would, with `headers` of its
/// own.
async fn order_event<E: aett::Event>(
    store: &dyn CommitStore,
    order: &str,
    event: &E,
    headers: Headers,
) -> Commit {
    let message = EventMessage::from_event(event)
        .unwrap()
        .with_headers(headers);
    append_typed(
        store,
        TENANT,
        &format!("order-{order}"),
        Some("order"),
        vec![message],
    )
    .await
}

async fn place_order(store: &dyn CommitStore, order: &str, amount: u64) -> Commit {
    let placed = OrderPlaced {
        order: order.to_owned(),
        amount,
    };
    order_event(store, order, &placed, Headers::new()).await
}

async fn pay_order(store: &dyn CommitStore, order: &str) -> Commit {
    let paid = PaymentReceived {
        order: order.to_owned(),
    };
    // Paid through a request that started a conversation of its own.
    let request = aett::Correlation::start(format!("request-{order}"));
    order_event(store, order, &paid, request.headers()).await
}

/// The saga runner routes each event to its saga instance, saves the saga, and dispatches its
/// commands with causation and correlation; the saga's own streams are not fed back to it.
pub async fn the_saga_runner_routes_events_and_dispatches_commands<H: Harness>(harness: &H) {
    let store = store(harness).await;
    let placed = place_order(&*store, "1", 40).await;
    place_order(&*store, "2", 7).await;
    let paid = pay_order(&*store, "1").await;
    let recorder = SagaRunner::<Fulfilment, _>::new(&store, Recorder::default())
        .catch_up()
        .await
        .expect("run the sagas");
    let commands = recorder.commands.lock().unwrap().clone();
    let topics: Vec<&str> = commands.iter().map(|c| c.message.topic.as_str()).collect();
    assert_eq!(
        topics,
        vec![
            "test.command.bill",
            "test.command.bill",
            "test.command.ship"
        ]
    );
    assert_eq!(
        commands[0].decode::<BillCustomer>().unwrap(),
        Some(BillCustomer {
            order: "1".into(),
            amount: 40
        })
    );
    assert_eq!(
        commands[2].decode::<ShipOrder>().unwrap(),
        Some(ShipOrder { order: "1".into() })
    );
    assert_eq!(commands[0].saga_id, "fulfilment-1");
    // Caused by the event; in the event's conversation, or one the event starts.
    assert_eq!(
        commands[0].message.headers[CAUSATION_HEADER],
        format!("{}/0", placed.commit_id)
    );
    assert_eq!(
        commands[0].message.headers[CORRELATION_HEADER],
        format!("{}/0", placed.commit_id)
    );
    assert_eq!(
        commands[2].causation_headers()[CAUSATION_HEADER],
        format!("{}/0", paid.commit_id)
    );
    assert_eq!(
        commands[2].correlation(),
        Some(aett::Correlation::new(
            "request-1",
            format!("{}/0", paid.commit_id)
        ))
    );
    let saga_commits: Vec<Commit> = store
        .get(TENANT, "fulfilment-1", 0, u64::MAX)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(
        aett::Correlation::from_headers(&saga_commits[1].headers),
        commands[2].correlation(),
        "the saga's commit carries the conversation on too"
    );
    let saga: Fulfilment = SagaRepository::new(TENANT, &store)
        .get("fulfilment-1")
        .await
        .unwrap();
    assert!(saga.placed && saga.paid);
    assert_eq!(saga.version(), 2, "each event handled once");
    // Running again hands nothing over twice.
    let again = SagaRunner::<Fulfilment, _>::new(&store, Recorder::default())
        .catch_up()
        .await
        .unwrap();
    assert!(again.commands.lock().unwrap().is_empty());
}

/// Commands are saved with the saga before they are dispatched: when dispatching fails (a
/// crash between saving and dispatching), a restarted runner dispatches the stored commands,
/// and the saga has handled the event once.
pub async fn saga_commands_survive_a_crash_between_save_and_dispatch<H: Harness>(harness: &H) {
    let store = store(harness).await;
    place_order(&*store, "9", 12).await;
    let down = Recorder::default();
    *down.failing.lock().unwrap() = true;
    match SagaRunner::<Fulfilment, _>::new(&store, down)
        .catch_up()
        .await
    {
        Err(RunnerError::Handler { stream, .. }) => assert_eq!(stream, "order-9"),
        other => panic!("expected the dispatch failure to stop the runner, got {other:?}"),
    }
    let saved: Vec<Commit> = store
        .get(TENANT, "fulfilment-9", 0, u64::MAX)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(
        saved.len(),
        1,
        "the saga was saved with its command before dispatching"
    );
    assert_eq!(
        saved[0].stream_type.as_deref(),
        Some(<Fulfilment as Saga>::NAME)
    );

    let up = SagaRunner::<Fulfilment, _>::new(&store, Recorder::default())
        .catch_up()
        .await
        .expect("the restarted runner dispatches");
    let commands = up.commands.lock().unwrap().clone();
    assert_eq!(commands.len(), 1);
    assert_eq!(
        commands[0].decode::<BillCustomer>().unwrap(),
        Some(BillCustomer {
            order: "9".into(),
            amount: 12
        })
    );
    let after: Vec<Commit> = store
        .get(TENANT, "fulfilment-9", 0, u64::MAX)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(after.len(), 1, "the event was not handled twice");
    let saga: Fulfilment = SagaRepository::new(TENANT, &store)
        .get("fulfilment-9")
        .await
        .unwrap();
    assert_eq!(saga.version(), 1);
}

/// `SagaRepository::update` handles an event and saves, retrying on concurrency.
pub async fn saga_update_retries_on_concurrency<H: Harness>(harness: &H) {
    let store = store(harness).await;
    let sagas = SagaRepository::new(TENANT, &store);
    let mut racing: Fulfilment = sagas.get("race").await.unwrap();
    racing.handle(OrderPlaced {
        order: "r".into(),
        amount: 1,
    });
    let mut calls = 0;
    let ((), commands) = sagas
        .update::<Fulfilment, _, RepositoryError, _>("race", Headers::new(), 3, |saga| {
            calls += 1;
            if calls == 1 {
                // Another writer saves first, between this load and this save.
                let mut other = Fulfilment::default();
                std::mem::swap(&mut other, &mut racing);
                tokio::task::block_in_place(|| {
                    tokio::runtime::Handle::current()
                        .block_on(sagas.save(&mut other, Headers::new()))
                })
                .unwrap();
            }
            saga.handle(PaymentReceived { order: "r".into() });
            Ok(())
        })
        .await
        .expect("update retries");
    assert_eq!(calls, 2);
    assert_eq!(commands.len(), 1);
    let saga: Fulfilment = sagas.get("race").await.unwrap();
    assert!(saga.placed && saga.paid);
}

/// Helpers for each backend's exactly-once tests, whose read model lives in the backend's own
/// database: the projection, and the check that every event was applied once.
pub mod exactly_once {
    use super::*;

    /// Runs `round` (one runner over the store, which fails at `fail_on` while given) until a
    /// round succeeds, while eight writers append; then checks every event was applied exactly
    /// once, as `applied` reports: event `by` value → times applied.
    pub async fn check<S, R, F, A, AF>(store: Arc<S>, mut round: R, applied: A)
    where
        S: aett::EventStore + 'static,
        R: FnMut(Option<i64>) -> F,
        F: std::future::Future<Output = Result<(), RunnerError>>,
        A: FnOnce() -> AF,
        AF: std::future::Future<Output = HashMap<i64, u64>>,
    {
        let mut writers = Vec::new();
        for writer in 0..8i64 {
            let store = store.clone();
            writers.push(tokio::spawn(async move {
                for i in 0..20i64 {
                    append(&*store, TENANT, &format!("w-{writer}"), writer * 1000 + i).await;
                }
            }));
        }
        // A round that fails mid-batch (after its handler wrote, before the checkpoint) must
        // leave nothing of that batch behind.
        let failed = round(Some(3005)).await;
        for writer in writers {
            writer.await.unwrap();
        }
        if failed.is_ok() {
            // The runner finished before writer 3 got that far; fail on a later event instead.
            assert!(round(Some(3019)).await.is_err(), "the failing round fails");
        } else {
            assert!(
                matches!(failed, Err(RunnerError::Handler { .. })),
                "{failed:?}"
            );
            assert!(
                round(Some(3019)).await.is_err(),
                "the failing round fails again"
            );
        }
        round(None).await.expect("a clean round catches up");
        let applied = applied().await;
        let expected: BTreeSet<i64> = (0..8i64)
            .flat_map(|w| (0..20i64).map(move |i| w * 1000 + i))
            .collect();
        assert_eq!(
            applied.keys().copied().collect::<BTreeSet<_>>(),
            expected,
            "no event missed"
        );
        let repeated: Vec<_> = applied.iter().filter(|(_, n)| **n != 1).collect();
        assert!(repeated.is_empty(), "applied more than once: {repeated:?}");
    }
}
