//! The contract tests. Each takes a [`Harness`] and panics, with a message saying what broke,
//! when the backend misbehaves.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use aett::{
    Aggregate, AggregateRepository, Commit, CommitAttempt, CommitLog, CommitStore, CommitStream,
    ConflictDetector, Event, EventMessage, EventStream, Headers, LogEntry, LogStream, Operation,
    PersistenceManagement, RepositoryError, Saga, SagaRepository, Scope, Snapshot, SnapshotStore,
    StoreError,
};
use chrono::{DateTime, Duration, TimeZone, Utc};
use futures::{StreamExt, TryStreamExt};
use serde_json::json;
use uuid::Uuid;

use crate::domain::{
    BillCustomer, Counter, Fulfilment, Incremented, Note, OrderPlaced, PaymentReceived, Reset,
    ShipOrder, Tag, Tally,
};
use crate::Harness;

pub use crate::read_side::{
    a_damaged_commit_stops_the_runner_or_is_skipped,
    a_failing_handler_stops_the_runner_before_its_commit, a_projection_follows_new_commits_live,
    a_projection_reads_only_what_its_filter_lets_through,
    a_projection_resumes_from_its_stored_checkpoint, concurrent_runners_get_one_lease,
    eight_concurrent_writers_miss_no_event, exactly_once_runs_or_is_refused,
    loading_a_stream_as_another_type_is_a_typed_error, one_projection_runs_in_one_runner_at_a_time,
    saga_commands_survive_a_crash_between_save_and_dispatch, saga_update_retries_on_concurrency,
    stream_types_are_recorded_and_filter_the_log,
    the_saga_runner_routes_events_and_dispatches_commands,
};

const TENANT: &str = "tenant-a";

async fn store<H: Harness>(harness: &H) -> Arc<H::Store> {
    harness.store(ConflictDetector::new()).await
}

async fn collect(stream: CommitStream) -> Vec<Commit> {
    stream.try_collect().await.expect("reading commits failed")
}

/// The commits of a read of the log that holds no deleted-stream notice.
async fn log_commits(stream: LogStream) -> Vec<Commit> {
    log_entries(stream)
        .await
        .into_iter()
        .map(|entry| entry.into_commit().expect("no stream was deleted here"))
        .collect()
}

async fn log_entries(stream: LogStream) -> Vec<LogEntry> {
    stream.try_collect().await.expect("reading the log failed")
}

/// Every result of a read of the log, as commits (no stream was deleted).
async fn log_results(stream: LogStream) -> Vec<Result<Commit, StoreError>> {
    stream
        .map(|entry| entry.map(|e| e.into_commit().expect("no stream was deleted here")))
        .collect()
        .await
}

async fn read_stream(store: &dyn CommitStore, tenant: &str, stream: &str) -> Vec<Commit> {
    collect(store.get(tenant, stream, 0, u64::MAX)).await
}

fn message<E: Event>(event: &E) -> EventMessage {
    EventMessage::from_event(event).expect("test events serialise")
}

fn increments(range: std::ops::Range<i64>) -> Vec<EventMessage> {
    range.map(|by| message(&Incremented { by })).collect()
}

fn attempt(
    tenant: &str,
    stream: &str,
    sequence: u64,
    revision: u64,
    events: Vec<EventMessage>,
) -> CommitAttempt {
    CommitAttempt::new(tenant, stream, revision, sequence, Headers::new(), events)
}

/// Appends a commit of `events` after the stream's current head.
async fn append(
    store: &dyn CommitStore,
    tenant: &str,
    stream: &str,
    events: Vec<EventMessage>,
) -> Commit {
    let head = read_stream(store, tenant, stream)
        .await
        .last()
        .map_or((0, 0), |c| (c.commit_sequence, c.stream_revision));
    let count = events.len() as u64;
    store
        .commit(attempt(tenant, stream, head.0 + 1, head.1 + count, events))
        .await
        .expect("appending after the head succeeds")
}

fn sequences(commits: &[Commit]) -> Vec<u64> {
    commits.iter().map(|c| c.commit_sequence).collect()
}

fn stamp(seconds: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + Duration::seconds(seconds)
}

/// `initialize` may run any number of times.
pub async fn initialize_is_idempotent<H: Harness>(harness: &H) {
    let store = store(harness).await;
    append(&*store, TENANT, "s", increments(1..2)).await;
    store.initialize().await.expect("second initialize");
    store.initialize().await.expect("third initialize");
    assert_eq!(
        read_stream(&*store, TENANT, "s").await.len(),
        1,
        "initialize must not lose data"
    );
}

/// `schema_version` reports the layout `initialize` brought the store to: readable at once, a
/// version from 1 where the backend keeps one, and the same after `initialize` runs again and
/// after a drop and a fresh `initialize`.
pub async fn schema_version_is_what_initialize_recorded<H: Harness>(harness: &H) {
    let store = store(harness).await;
    let version = store.schema_version().await.expect("schema version");
    assert!(
        version.is_none_or(|v| v >= 1),
        "versions start at 1: {version:?}"
    );
    store.initialize().await.expect("second initialize");
    assert_eq!(store.schema_version().await.expect("again"), version);
    store.drop_all().await.expect("drop");
    store.initialize().await.expect("initialize after drop");
    assert_eq!(store.schema_version().await.expect("after a drop"), version);
}

/// Every field of a commit comes back as written: headers, UTC stamp, unicode, nested bodies.
pub async fn commit_round_trips_every_field<H: Harness>(harness: &H) {
    let store = store(harness).await;
    let note = Note {
        text: "héllo wörld — 日本語 🎉 \"quoted\" \\ back\nslash".to_owned(),
        tags: vec![
            Tag {
                key: "nested".to_owned(),
                value: json!({"a": [1, 2, {"b": null}], "c": "ü"}),
            },
            Tag {
                key: "".to_owned(),
                value: json!(1.5e300),
            },
        ],
        weight: Some(-0.25),
    };
    let mut headers = Headers::new();
    headers.insert("user".to_owned(), json!("zoë"));
    headers.insert("nested".to_owned(), json!({"list": [true, false], "n": 42}));
    let mut attempt = CommitAttempt::new(
        TENANT,
        "round-trip",
        2,
        1,
        headers,
        vec![
            message(&note).with_header("causation", "abc"),
            message(&Reset {}),
        ],
    );
    attempt.commit_stamp =
        Utc.with_ymd_and_hms(2026, 3, 4, 5, 6, 7).unwrap() + Duration::nanoseconds(123_456_789);
    let written = store.commit(attempt.clone()).await.expect("commit");
    assert_eq!(
        written.commit_stamp,
        Utc.with_ymd_and_hms(2026, 3, 4, 5, 6, 7).unwrap() + Duration::microseconds(123_456),
        "stamps keep microseconds"
    );
    assert_eq!(written.commit_id, attempt.commit_id);
    assert!(written.checkpoint > 0, "a stored commit has a checkpoint");

    let read = read_stream(&*store, TENANT, "round-trip").await;
    assert_eq!(
        read,
        vec![written.clone()],
        "read back differs from what was written"
    );
    let decoded: Note = read[0].events[0].decode().expect("decode note");
    assert_eq!(decoded, note);
    assert_eq!(
        read[0].events[0].headers.get("causation"),
        Some(&json!("abc"))
    );
    assert_eq!(read[0].commit_stamp.timezone(), Utc);
    assert_eq!(log_commits(store.get_from(0)).await, vec![written.clone()]);
    assert_eq!(
        collect(store.get_all_to(TENANT, Utc::now())).await,
        vec![written]
    );
}

/// Revision ranges: bounds, straddling commits, empty ranges, missing streams.
pub async fn revision_ranges<H: Harness>(harness: &H) {
    let store = store(harness).await;
    // Commits of 2, 3, 1 and 4 events: revisions 1-2, 3-5, 6, 7-10.
    for (start, count) in [(0, 2), (10, 3), (20, 1), (30, 4)] {
        append(&*store, TENANT, "ranges", increments(start..start + count)).await;
    }
    let get = |min, max| {
        let store = store.clone();
        async move { sequences(&collect(store.get(TENANT, "ranges", min, max)).await) }
    };
    assert_eq!(get(0, u64::MAX).await, vec![1, 2, 3, 4]);
    assert_eq!(get(1, 2).await, vec![1]);
    assert_eq!(
        get(3, 3).await,
        vec![2],
        "a commit straddling both bounds is included"
    );
    assert_eq!(
        get(4, 6).await,
        vec![2, 3],
        "commits straddling a bound are included"
    );
    assert_eq!(get(5, 7).await, vec![2, 3, 4]);
    assert_eq!(
        get(6, 6).await,
        vec![3],
        "exactly one revision, no more (max_revision is inclusive, not off by one)"
    );
    assert_eq!(get(10, 10).await, vec![4]);
    assert_eq!(
        get(11, u64::MAX).await,
        Vec::<u64>::new(),
        "beyond the head is empty"
    );
    assert_eq!(get(7, 3).await, Vec::<u64>::new(), "min above max is empty");
    assert_eq!(
        get(0, 0).await,
        Vec::<u64>::new(),
        "revision 0 holds no event"
    );
    assert!(collect(store.get(TENANT, "no-such-stream", 0, u64::MAX))
        .await
        .is_empty());
    assert!(collect(store.get("no-such-tenant", "ranges", 0, u64::MAX))
        .await
        .is_empty());
}

/// `EventStream::open` from a revision above 0 on a missing stream is stream-not-found.
pub async fn opening_a_missing_stream_from_a_revision_is_stream_not_found<H: Harness>(harness: &H) {
    let store = store(harness).await;
    let commits: Arc<dyn CommitStore> = store.clone();
    match EventStream::open(commits.clone(), TENANT, "missing", 1, u64::MAX).await {
        Err(StoreError::StreamNotFound { tenant, stream }) => {
            assert_eq!((tenant.as_str(), stream.as_str()), (TENANT, "missing"))
        }
        other => panic!("expected StreamNotFound, got {other:?}"),
    }
    let empty = EventStream::open(commits, TENANT, "missing", 0, u64::MAX)
        .await
        .expect("from 0 is a new stream");
    assert_eq!(empty.stream_revision(), 0);
}

/// A stream up to a point in time; a whole tenant up to a point in time, in checkpoint order.
pub async fn reads_up_to_a_point_in_time<H: Harness>(harness: &H) {
    let store = store(harness).await;
    let mut written = Vec::new();
    for (i, (stream, seconds)) in [("a", 0), ("b", 10), ("a", 20), ("b", 30)]
        .into_iter()
        .enumerate()
    {
        let sequence = if i < 2 { 1 } else { 2 };
        let mut attempt = attempt(TENANT, stream, sequence, sequence, increments(0..1));
        attempt.commit_stamp = stamp(seconds);
        written.push(store.commit(attempt).await.expect("commit"));
    }
    let mut other = attempt("tenant-other", "a", 1, 1, increments(0..1));
    other.commit_stamp = stamp(0);
    store.commit(other).await.expect("commit other tenant");

    assert_eq!(
        sequences(&collect(store.get_to(TENANT, "a", stamp(19))).await),
        vec![1]
    );
    assert_eq!(
        sequences(&collect(store.get_to(TENANT, "a", stamp(20))).await),
        vec![1, 2],
        "the bound is inclusive"
    );
    assert!(collect(store.get_to(TENANT, "a", stamp(-1)))
        .await
        .is_empty());
    let tenant = collect(store.get_all_to(TENANT, stamp(20))).await;
    assert_eq!(
        tenant,
        written[..3].to_vec(),
        "tenant reads hold only that tenant, in checkpoint order"
    );
    assert_eq!(collect(store.get_all_to(TENANT, stamp(100))).await, written);
}

/// Checkpoints increase strictly across tenants and streams.
pub async fn checkpoints_increase_across_tenants<H: Harness>(harness: &H) {
    let store = store(harness).await;
    let mut last = 0;
    for i in 0..12 {
        let tenant = ["t1", "t2", "t3"][i % 3];
        let commit = append(&*store, tenant, &format!("s{}", i % 2), increments(0..1)).await;
        assert!(
            commit.checkpoint > last,
            "checkpoint {} after {last}",
            commit.checkpoint
        );
        last = commit.checkpoint;
    }
}

/// Reading from a checkpoint returns every later commit once, in order.
pub async fn reading_from_a_checkpoint_returns_every_later_commit_once<H: Harness>(harness: &H) {
    let store = store(harness).await;
    let mut written = Vec::new();
    for i in 0..25 {
        written.push(
            append(
                &*store,
                ["t1", "t2"][i % 2],
                &format!("s{}", i % 3),
                increments(0..(1 + i as i64 % 3)),
            )
            .await,
        );
    }
    assert_eq!(
        log_commits(store.get_from(0)).await,
        written,
        "from 0: everything, in order"
    );
    for from in [1, 7, 24] {
        let checkpoint = written[from - 1].checkpoint;
        assert_eq!(
            log_commits(store.get_from(checkpoint)).await,
            written[from..].to_vec(),
            "from checkpoint {checkpoint}"
        );
    }
    let last = written.last().unwrap().checkpoint;
    assert!(log_commits(store.get_from(last)).await.is_empty());
}

/// The same commit id again is a duplicate, and changes nothing.
pub async fn duplicate_commit_is_recognised<H: Harness>(harness: &H) {
    let store = store(harness).await;
    let first = attempt(TENANT, "dup", 1, 1, increments(0..1));
    store.commit(first.clone()).await.expect("first commit");
    for retry in [
        first.clone(),
        CommitAttempt {
            commit_sequence: 2,
            stream_revision: 2,
            ..first.clone()
        },
    ] {
        match store.commit(retry).await {
            Err(StoreError::DuplicateCommit {
                tenant,
                stream,
                commit_id,
                ..
            }) => {
                assert_eq!(
                    (tenant.as_str(), stream.as_str(), commit_id),
                    (TENANT, "dup", first.commit_id)
                );
            }
            other => panic!("expected DuplicateCommit, got {other:?}"),
        }
    }
    assert_eq!(read_stream(&*store, TENANT, "dup").await.len(), 1);
}

/// A taken sequence whose winners do not conflict: non-conflicting, carrying the winners.
pub async fn taken_sequence_without_conflict_is_non_conflicting<H: Harness>(harness: &H) {
    let store = store(harness).await;
    append(&*store, TENANT, "race", increments(0..1)).await;
    let winner = append(&*store, TENANT, "race", increments(1..3)).await;
    let before = read_stream(&*store, TENANT, "race").await;
    match store
        .commit(attempt(TENANT, "race", 2, 2, increments(5..6)))
        .await
    {
        Err(StoreError::NonConflictingCommit {
            tenant,
            stream,
            commit_sequence,
            committed,
        }) => {
            assert_eq!(
                (tenant.as_str(), stream.as_str(), commit_sequence),
                (TENANT, "race", 2)
            );
            assert_eq!(
                committed,
                vec![winner],
                "the error carries the commits the writer had not seen"
            );
        }
        other => panic!("expected NonConflictingCommit, got {other:?}"),
    }
    assert_eq!(
        read_stream(&*store, TENANT, "race").await,
        before,
        "a failed commit leaves the stream as it was"
    );
}

fn withdrawal_detector(strict: bool) -> ConflictDetector {
    let mut detector = if strict {
        ConflictDetector::strict()
    } else {
        ConflictDetector::new()
    };
    detector.register(|mine: &Note, theirs: &Note| mine.text == theirs.text);
    detector
}

fn note(text: &str) -> EventMessage {
    message(&Note {
        text: text.to_owned(),
        tags: Vec::new(),
        weight: None,
    })
}

/// A taken sequence whose winners conflict, as the detector's delegate decides.
pub async fn taken_sequence_with_conflict_is_conflicting<H: Harness>(harness: &H) {
    let store = harness.store(withdrawal_detector(false)).await;
    append(&*store, TENANT, "acct", vec![note("x")]).await;
    let before = read_stream(&*store, TENANT, "acct").await;
    match store
        .commit(attempt(TENANT, "acct", 1, 2, vec![note("y"), note("x")]))
        .await
    {
        Err(StoreError::ConflictingCommit {
            tenant,
            stream,
            commit_sequence,
            committed,
        }) => {
            assert_eq!(
                (tenant.as_str(), stream.as_str(), commit_sequence),
                (TENANT, "acct", 1)
            );
            assert_eq!(committed, before);
        }
        other => panic!("expected ConflictingCommit, got {other:?}"),
    }
    match store
        .commit(attempt(TENANT, "acct", 1, 1, vec![note("z")]))
        .await
    {
        Err(StoreError::NonConflictingCommit { .. }) => {}
        other => panic!("a delegate answering false is no conflict; got {other:?}"),
    }
    assert_eq!(read_stream(&*store, TENANT, "acct").await, before);
}

/// The detector compares only with the commits the writer had not seen, never the whole history.
pub async fn conflicts_are_judged_only_against_unseen_commits<H: Harness>(harness: &H) {
    let store = harness.store(withdrawal_detector(false)).await;
    append(&*store, TENANT, "acct", vec![note("x")]).await; // seen by the writer below
    append(&*store, TENANT, "acct", vec![note("y")]).await; // not seen
    match store
        .commit(attempt(TENANT, "acct", 2, 2, vec![note("x")]))
        .await
    {
        Err(StoreError::NonConflictingCommit { committed, .. }) => {
            assert_eq!(sequences(&committed), vec![2])
        }
        other => panic!("the seen commit 1 must not count as a conflict; got {other:?}"),
    }
    match store
        .commit(attempt(TENANT, "acct", 2, 2, vec![note("y")]))
        .await
    {
        Err(StoreError::ConflictingCommit { committed, .. }) => {
            assert_eq!(sequences(&committed), vec![2])
        }
        other => panic!("the unseen commit 2 conflicts; got {other:?}"),
    }
}

/// Strict mode: same topic without a delegate conflicts; different topics do not.
pub async fn strict_detector_conflicts_on_same_topic<H: Harness>(harness: &H) {
    let store = harness.store(ConflictDetector::strict()).await;
    append(&*store, TENANT, "s", increments(0..1)).await;
    match store
        .commit(attempt(TENANT, "s", 1, 1, increments(0..1)))
        .await
    {
        Err(StoreError::ConflictingCommit { .. }) => {}
        other => panic!("strict: same topic conflicts; got {other:?}"),
    }
    match store
        .commit(attempt(TENANT, "s", 1, 1, vec![message(&Reset {})]))
        .await
    {
        Err(StoreError::NonConflictingCommit { .. }) => {}
        other => panic!("strict: different topics do not conflict; got {other:?}"),
    }
}

/// Attempts that break the rules are rejected and write nothing.
pub async fn invalid_commits_are_rejected<H: Harness>(harness: &H) {
    let store = store(harness).await;
    append(&*store, TENANT, "s", increments(0..2)).await;
    let cases = [
        ("empty", attempt(TENANT, "s", 2, 2, Vec::new())),
        ("sequence 0", attempt(TENANT, "s", 0, 3, increments(0..1))),
        (
            "skips a sequence",
            attempt(TENANT, "s", 3, 3, increments(0..1)),
        ),
        ("revision gap", attempt(TENANT, "s", 2, 5, increments(0..1))),
        (
            "revision overlap",
            attempt(TENANT, "s", 2, 2, increments(0..1)),
        ),
        (
            "revision below count",
            attempt(TENANT, "s", 2, 1, increments(0..2)),
        ),
        (
            "empty stream id",
            attempt(TENANT, "", 1, 1, increments(0..1)),
        ),
    ];
    for (what, attempt) in cases {
        match store.commit(attempt).await {
            Err(StoreError::InvalidCommit { .. }) => {}
            other => panic!("{what}: expected InvalidCommit, got {other:?}"),
        }
    }
    assert_eq!(sequences(&read_stream(&*store, TENANT, "s").await), vec![1]);
}

/// 8 writers × 50 commits on one stream, each reloading and retrying on a concurrency error:
/// sequences and revisions end contiguous, and no event is lost or duplicated.
pub async fn concurrent_writers_on_one_stream_lose_and_duplicate_nothing<H: Harness>(harness: &H) {
    const WRITERS: usize = 8;
    const COMMITS: usize = 50;
    let store = store(harness).await;
    let commits: Arc<dyn CommitStore> = store.clone();
    let mut tasks = Vec::new();
    for writer in 0..WRITERS {
        let commits = commits.clone();
        tasks.push(tokio::spawn(async move {
            let mut written = Vec::new();
            let mut retries = 0usize;
            for n in 0..COMMITS {
                let mut stream = EventStream::open(commits.clone(), TENANT, "hot", 0, u64::MAX)
                    .await
                    .expect("open");
                let events = 1 + (writer + n) % 2;
                for part in 0..events {
                    stream.add(message(&Note {
                        text: format!("{writer}/{n}/{part}"),
                        tags: Vec::new(),
                        weight: None,
                    }));
                }
                let id = Uuid::new_v4();
                loop {
                    match stream.commit(id).await {
                        Ok(commit) => {
                            written.push(commit.expect("events were added"));
                            break;
                        }
                        Err(error) if error.is_concurrency_conflict() => {
                            retries += 1;
                            // Reload (the stream took in the newer commits) and try again.
                            tokio::task::yield_now().await;
                        }
                        Err(error) => panic!("writer {writer}: unexpected error {error}"),
                    }
                }
            }
            (written, retries)
        }));
    }
    let mut written = Vec::new();
    for task in tasks {
        let (commits, _retries) = task.await.expect("writer task");
        written.extend(commits);
    }
    let stored = read_stream(&*store, TENANT, "hot").await;
    assert_eq!(stored.len(), WRITERS * COMMITS);
    let mut revision = 0;
    for (index, commit) in stored.iter().enumerate() {
        assert_eq!(
            commit.commit_sequence,
            index as u64 + 1,
            "sequences are contiguous"
        );
        assert_eq!(
            commit.first_revision(),
            revision + 1,
            "revisions are contiguous"
        );
        revision = commit.stream_revision;
    }
    let texts: Vec<String> = stored
        .iter()
        .flat_map(|c| &c.events)
        .map(|e| e.decode::<Note>().expect("decode").text)
        .collect();
    let unique: HashSet<&String> = texts.iter().collect();
    assert_eq!(unique.len(), texts.len(), "no event is duplicated");
    let expected: usize = (0..WRITERS)
        .flat_map(|w| (0..COMMITS).map(move |n| 1 + (w + n) % 2))
        .sum();
    assert_eq!(texts.len(), expected, "no event is lost");
    written.sort_by_key(|c| c.commit_sequence);
    assert_eq!(
        written, stored,
        "every successful commit is readable as it was returned"
    );
}

fn snapshot(stream: &str, revision: u64, total: i64) -> Snapshot {
    Snapshot {
        tenant_id: TENANT.to_owned(),
        stream_id: stream.to_owned(),
        stream_revision: revision,
        commit_sequence: revision,
        payload: serde_json::value::to_raw_value(&json!({ "total": total })).unwrap(),
        headers: Headers::from([("by".to_owned(), json!("test"))]),
    }
}

/// The newest snapshot at or below a revision; none below the first; a newer one is accepted,
/// one at the same revision replaced.
pub async fn snapshots_newest_at_or_below<H: Harness>(harness: &H) {
    let store = store(harness).await;
    assert_eq!(
        store
            .get_snapshot(TENANT, "s", u64::MAX)
            .await
            .expect("get"),
        None
    );
    for revision in [5, 10, 20] {
        store
            .add_snapshot(snapshot("s", revision, revision as i64))
            .await
            .expect("add");
    }
    let at = |max| {
        let store = store.clone();
        async move {
            store
                .get_snapshot(TENANT, "s", max)
                .await
                .expect("get")
                .map(|s| s.stream_revision)
        }
    };
    assert_eq!(at(4).await, None);
    assert_eq!(at(5).await, Some(5));
    assert_eq!(at(19).await, Some(10));
    assert_eq!(at(u64::MAX).await, Some(20));
    store
        .add_snapshot(snapshot("s", 10, 99))
        .await
        .expect("replace");
    let replaced = store
        .get_snapshot(TENANT, "s", 10)
        .await
        .expect("get")
        .expect("some");
    assert_eq!(replaced, snapshot("s", 10, 99));
    assert_eq!(
        store
            .get_snapshot("tenant-other", "s", u64::MAX)
            .await
            .expect("get"),
        None
    );
}

/// After a snapshot and further events, a load replays only the later events and reaches the
/// right state.
pub async fn load_from_snapshot_replays_only_later_events<H: Harness>(harness: &H) {
    let store = store(harness).await;
    let repo = AggregateRepository::new(TENANT, &store);
    let mut counter: Counter = repo.get("c").await.expect("get");
    for by in 1..=20 {
        counter.add(by).unwrap();
        if by % 4 == 0 {
            repo.save(&mut counter, Headers::new()).await.expect("save");
        }
    }
    let snap = repo
        .snapshot::<Counter>("c", 10, Headers::new())
        .await
        .expect("snapshot");
    assert_eq!(
        snap.stream_revision, 10,
        "a snapshot at version 10 lands at 10, not 9 or 11"
    );
    assert_eq!(
        snap.commit_sequence, 3,
        "revision 10 is in the third commit"
    );
    let loaded: Counter = repo.get("c").await.expect("load");
    assert_eq!(loaded.total, (1..=20).sum::<i64>());
    assert_eq!(loaded.version(), 20);
    assert_eq!(loaded.commit_sequence(), 5);
    assert_eq!(
        loaded.applied, 10,
        "only the 10 events after the snapshot are replayed"
    );
    let at_12: Counter = repo.get_version("c", 12).await.expect("load at 12");
    assert_eq!(
        (at_12.total, at_12.version(), at_12.applied),
        ((1..=12).sum::<i64>(), 12, 2)
    );
    let at_8: Counter = repo.get_version("c", 8).await.expect("load at 8");
    assert_eq!(
        (at_8.total, at_8.version(), at_8.applied),
        ((1..=8).sum::<i64>(), 8, 8),
        "below the snapshot: replay from the start"
    );
}

/// A custom memento type is what the snapshot holds, and restores.
pub async fn custom_memento_round_trips<H: Harness>(harness: &H) {
    let store = store(harness).await;
    let repo = AggregateRepository::new(TENANT, &store);
    let mut tally: Tally = repo.get("t").await.expect("get");
    tally.raise(Incremented { by: 7 });
    tally.raise(Incremented { by: 5 });
    repo.save(&mut tally, Headers::new()).await.expect("save");
    let snap = repo
        .snapshot::<Tally>("t", u64::MAX, Headers::new())
        .await
        .expect("snapshot");
    assert_eq!(snap.payload.get(), r#"{"value":12}"#);
    tally.raise(Reset {});
    tally.raise(Incremented { by: 1 });
    repo.save(&mut tally, Headers::new())
        .await
        .expect("save again");
    let loaded: Tally = repo.get("t").await.expect("load");
    assert_eq!((loaded.total, loaded.version()), (1, 4));
}

/// The same stream id in two tenants is two streams.
pub async fn same_stream_id_in_two_tenants_is_two_streams<H: Harness>(harness: &H) {
    let store = store(harness).await;
    append(&*store, "t1", "shared", increments(0..1)).await;
    append(&*store, "t2", "shared", increments(0..3)).await;
    append(&*store, "t1", "shared", increments(0..1)).await;
    assert_eq!(
        sequences(&read_stream(&*store, "t1", "shared").await),
        vec![1, 2]
    );
    let t2 = read_stream(&*store, "t2", "shared").await;
    assert_eq!((sequences(&t2), t2[0].stream_revision), (vec![1], 3));
}

/// A purge that removes the newest commits of the log does not give their checkpoints out
/// again: a reader that had passed them would skip the commits that took them.
pub async fn purged_checkpoints_are_not_handed_out_again<H: Harness>(harness: &H) {
    let store = store(harness).await;
    let kept = append(&*store, "kept", "s", increments(0..1)).await;
    let purged = append(&*store, "purged", "s", increments(0..1)).await;
    assert!(purged.checkpoint > kept.checkpoint);
    store.purge("purged").await.expect("purge");
    let next = append(&*store, "kept", "s", increments(1..2)).await;
    assert!(
        next.checkpoint > purged.checkpoint,
        "checkpoint {} of a purged commit was handed out again",
        purged.checkpoint
    );
    let after: Vec<LogEntry> = store
        .get_from(purged.checkpoint)
        .try_collect()
        .await
        .expect("read the log");
    assert_eq!(
        after.len(),
        1,
        "a reader that had passed the purged commit sees the new one"
    );
}

/// Purge removes one tenant's commits and snapshots, and nothing else.
pub async fn purge_removes_one_tenant_only<H: Harness>(harness: &H) {
    let store = store(harness).await;
    for tenant in ["keep", "gone"] {
        append(&*store, tenant, "s", increments(0..2)).await;
        append(&*store, tenant, "other", increments(0..1)).await;
        let mut snap = snapshot("s", 2, 1);
        snap.tenant_id = tenant.to_owned();
        store.add_snapshot(snap).await.expect("snapshot");
    }
    let kept_before = collect(store.get_all_to("keep", Utc::now())).await;
    store.purge("gone").await.expect("purge");
    assert!(collect(store.get_all_to("gone", Utc::now()))
        .await
        .is_empty());
    assert!(read_stream(&*store, "gone", "s").await.is_empty());
    assert_eq!(
        store
            .get_snapshot("gone", "s", u64::MAX)
            .await
            .expect("get"),
        None
    );
    assert_eq!(
        collect(store.get_all_to("keep", Utc::now())).await,
        kept_before
    );
    assert!(store
        .get_snapshot("keep", "s", u64::MAX)
        .await
        .expect("get")
        .is_some());
    assert_eq!(log_commits(store.get_from(0)).await, kept_before);
    store
        .purge("never-existed")
        .await
        .expect("purging an unknown tenant is fine");
    // Checkpoints are never reused, even after a purge.
    let next = append(&*store, "gone", "s", increments(0..1)).await;
    assert!(next.checkpoint > kept_before.last().unwrap().checkpoint + 2);
}

/// Drop removes everything; initialize makes the store usable again.
pub async fn drop_removes_everything<H: Harness>(harness: &H) {
    let store = store(harness).await;
    append(&*store, "t1", "s", increments(0..2)).await;
    store
        .add_snapshot(snapshot("s", 2, 1))
        .await
        .expect("snapshot");
    store.drop_all().await.expect("drop");
    store.initialize().await.expect("initialize after drop");
    assert!(log_commits(store.get_from(0)).await.is_empty());
    assert_eq!(
        store
            .get_snapshot(TENANT, "s", u64::MAX)
            .await
            .expect("get"),
        None
    );
    append(&*store, "t1", "s", increments(0..1)).await;
}

/// Ids of 1,000+ characters with quotes, slashes, `%`, `;--` and non-ASCII round-trip.
pub async fn awkward_ids_round_trip<H: Harness>(harness: &H) {
    let store = store(harness).await;
    let awkward = [
        format!(
            "{}'\"/\\%;-- DROP TABLE commits; 日本語 ü 🎉 {}",
            "x".repeat(600),
            "y".repeat(600)
        ),
        "a/b/../c?d=e&f#g".to_owned(),
        "%_%".to_owned(),
        " padded ".to_owned(),
        "'".to_owned(),
    ];
    for tenant in &awkward {
        for stream in &awkward {
            let commit = append(&*store, tenant, stream, increments(0..1)).await;
            let read = read_stream(&*store, tenant, stream).await;
            assert_eq!(read, vec![commit], "tenant {tenant:?} stream {stream:?}");
            let mut snap = snapshot(stream, 1, 1);
            snap.tenant_id = tenant.clone();
            store.add_snapshot(snap.clone()).await.expect("snapshot");
            assert_eq!(
                store.get_snapshot(tenant, stream, 1).await.expect("get"),
                Some(snap)
            );
        }
    }
    // `%` and `_` are not wildcards: only exact ids match.
    assert!(read_stream(&*store, "%", "%").await.is_empty());
    assert!(
        read_stream(&*store, "padded", "padded").await.is_empty(),
        "ids are not trimmed"
    );
    store.purge(&awkward[0]).await.expect("purge");
    assert!(read_stream(&*store, &awkward[0], &awkward[1])
        .await
        .is_empty());
    assert_eq!(
        read_stream(&*store, &awkward[1], &awkward[0]).await.len(),
        1
    );
}

/// A commit of 10,000 events.
pub async fn commit_of_ten_thousand_events<H: Harness>(harness: &H) {
    let store = store(harness).await;
    let commit = append(&*store, TENANT, "big", increments(0..10_000)).await;
    assert_eq!(commit.stream_revision, 10_000);
    let read = read_stream(&*store, TENANT, "big").await;
    assert_eq!(read.len(), 1);
    assert_eq!(read[0].events.len(), 10_000);
    assert_eq!(
        read[0].events[9_999].decode::<Incremented>().unwrap(),
        Incremented { by: 9_999 }
    );
    let repo = AggregateRepository::new(TENANT, &store);
    let counter: Counter = repo.get("big").await.expect("load");
    assert_eq!(
        (counter.version(), counter.total),
        (10_000, (0..10_000).sum::<i64>())
    );
}

/// A stream of 1,000 single-event commits loads at version 1,000.
pub async fn stream_of_a_thousand_commits_loads_at_version_one_thousand<H: Harness>(harness: &H) {
    let store = store(harness).await;
    let repo = AggregateRepository::new(TENANT, &store);
    let mut counter: Counter = repo.get("long").await.expect("get");
    for _ in 0..1_000 {
        counter.add(1).unwrap();
        repo.save(&mut counter, Headers::new()).await.expect("save");
    }
    let loaded: Counter = repo.get("long").await.expect("load");
    assert_eq!(
        (loaded.version(), loaded.commit_sequence(), loaded.total),
        (1_000, 1_000, 1_000)
    );
    assert_eq!(
        read_stream(&*store, TENANT, "long").await.len(),
        1_000,
        "paged reads return every commit"
    );
}

/// A damaged stored commit is a typed error naming stream and commit, never a panic, and the
/// rest of the store stays readable.
pub async fn corrupt_data_is_a_typed_error_and_the_rest_stays_readable<H: Harness>(harness: &H) {
    let store = store(harness).await;
    append(&*store, TENANT, "damaged", increments(0..1)).await;
    append(&*store, TENANT, "damaged", increments(0..1)).await;
    let healthy = append(&*store, TENANT, "healthy", increments(0..1)).await;
    if !harness.corrupt_events(&store, TENANT, "damaged", 2).await {
        return; // This backend holds no bytes that could be damaged.
    }
    let result: Result<Vec<Commit>, StoreError> = store
        .get(TENANT, "damaged", 0, u64::MAX)
        .try_collect()
        .await;
    match result {
        Err(StoreError::Corrupt {
            scope,
            commit_sequence,
            ..
        }) => {
            assert_eq!(scope, Scope::stream(TENANT, "damaged"));
            assert_eq!(commit_sequence, Some(2));
        }
        other => panic!("expected Corrupt naming the commit, got {other:?}"),
    }
    let repo = AggregateRepository::new(TENANT, &store);
    match repo.get::<Counter>("damaged").await {
        Err(RepositoryError::Store(StoreError::Corrupt { .. })) => {}
        other => panic!("loading a damaged aggregate: expected Corrupt, got {other:?}"),
    }
    assert_eq!(read_stream(&*store, TENANT, "healthy").await, vec![healthy]);
    assert_eq!(
        sequences(&collect(store.get(TENANT, "damaged", 1, 1)).await),
        vec![1],
        "the undamaged commit still reads"
    );
}

/// An unknown topic, or a body that does not fit its type, is a typed error naming the commit.
pub async fn unknown_topic_and_undecodable_body_are_typed_errors<H: Harness>(harness: &H) {
    let store = store(harness).await;
    append(&*store, TENANT, "odd", increments(0..1)).await;
    append(
        &*store,
        TENANT,
        "odd",
        vec![message(&OrderPlaced {
            order: "o".into(),
            amount: 1,
        })],
    )
    .await;
    let repo = AggregateRepository::new(TENANT, &store);
    match repo.get::<Counter>("odd").await {
        Err(RepositoryError::UnknownTopic {
            tenant,
            stream,
            commit_sequence,
            topic,
            target,
        }) => {
            assert_eq!(
                (tenant.as_str(), stream.as_str(), commit_sequence),
                (TENANT, "odd", 2)
            );
            assert_eq!(topic, OrderPlaced::TOPIC);
            assert_eq!(target, "Counter");
        }
        other => panic!("expected UnknownTopic, got {other:?}"),
    }
    let wrong_body = EventMessage::from_raw(
        Incremented::TOPIC,
        serde_json::value::to_raw_value(&json!({"by": "not a number"})).unwrap(),
    );
    append(&*store, TENANT, "bad-body", vec![wrong_body]).await;
    match repo.get::<Counter>("bad-body").await {
        Err(RepositoryError::Decode {
            stream,
            commit_sequence,
            topic,
            ..
        }) => {
            assert_eq!(
                (stream.as_str(), commit_sequence, topic.as_str()),
                ("bad-body", 1, Incremented::TOPIC)
            );
        }
        other => panic!("expected Decode, got {other:?}"),
    }
    assert_eq!(
        read_stream(&*store, TENANT, "bad-body").await.len(),
        1,
        "the store itself reads fine"
    );
}

/// Get a new aggregate, save, save again with the same instance, with headers; nothing to save
/// writes nothing.
pub async fn aggregate_repository_round_trip<H: Harness>(harness: &H) {
    let store = store(harness).await;
    let repo = AggregateRepository::new(TENANT, &store);
    let mut counter: Counter = repo.get("acc").await.expect("get new");
    assert_eq!(
        (counter.id(), counter.version(), counter.commit_sequence()),
        ("acc", 0, 0)
    );
    assert_eq!(
        repo.save(&mut counter, Headers::new())
            .await
            .expect("save nothing"),
        None
    );
    assert!(
        read_stream(&*store, TENANT, "acc").await.is_empty(),
        "nothing to save, no commit"
    );
    counter.add(5).unwrap();
    counter.add(6).unwrap();
    let headers = Headers::from([("user".to_owned(), json!("alice"))]);
    let commit = repo
        .save(&mut counter, headers.clone())
        .await
        .expect("save")
        .expect("a commit");
    assert_eq!(
        (
            commit.commit_sequence,
            commit.stream_revision,
            commit.events.len()
        ),
        (1, 2, 2)
    );
    assert_eq!(commit.headers, headers);
    assert!(counter.uncommitted().is_empty());
    counter.add(7).unwrap();
    let second = repo
        .save(&mut counter, Headers::new())
        .await
        .expect("save same instance again")
        .expect("a commit");
    assert_eq!((second.commit_sequence, second.stream_revision), (2, 3));
    let loaded: Counter = repo.get("acc").await.expect("load");
    assert_eq!(
        (loaded.total, loaded.version(), loaded.commit_sequence()),
        (18, 3, 2)
    );
    assert_eq!(repo.get::<Counter>("acc").await.unwrap().total, 18);

    // A stale instance is refused with a concurrency error, and leaves the stream as it was.
    let mut stale: Counter = repo.get_version("acc", 2).await.expect("stale");
    stale.add(1).unwrap();
    let error = repo
        .save(&mut stale, Headers::new())
        .await
        .expect_err("stale save");
    assert!(error.is_concurrency_conflict(), "{error}");
    assert_eq!(read_stream(&*store, TENANT, "acc").await.len(), 2);
}

/// Get up to a version, and as of a point in time.
pub async fn aggregate_repository_versions_and_time<H: Harness>(harness: &H) {
    let store = store(harness).await;
    let repo = AggregateRepository::new(TENANT, &store);
    let mut stamps = Vec::new();
    for (sequence, events) in [(1u64, vec![1i64, 2]), (2, vec![3, 4, 5]), (3, vec![6])] {
        let revision = [2u64, 5, 6][sequence as usize - 1];
        let mut attempt = attempt(
            TENANT,
            "v",
            sequence,
            revision,
            events
                .iter()
                .map(|&by| message(&Incremented { by }))
                .collect(),
        );
        attempt.commit_stamp = stamp(sequence as i64 * 60);
        stamps.push(store.commit(attempt).await.expect("commit").commit_stamp);
    }
    for (version, total) in [(0, 0), (1, 1), (3, 6), (5, 15), (6, 21), (100, 21)] {
        let counter: Counter = repo.get_version("v", version).await.expect("get_version");
        assert_eq!(
            (counter.version(), counter.total),
            (version.min(6), total),
            "at version {version}"
        );
    }
    let as_of: Counter = repo.get_as_of("v", stamps[1]).await.expect("as of");
    assert_eq!(
        (as_of.version(), as_of.total, as_of.commit_sequence()),
        (5, 15, 2)
    );
    let before: Counter = repo
        .get_as_of("v", stamps[0] - Duration::seconds(1))
        .await
        .expect("before");
    assert_eq!(before.version(), 0);
}

/// Snapshot at a version and as of a time; loads start from the right snapshot.
pub async fn aggregate_repository_snapshots<H: Harness>(harness: &H) {
    let store = store(harness).await;
    let repo = AggregateRepository::new(TENANT, &store);
    match repo.snapshot::<Counter>("none", 5, Headers::new()).await {
        Err(RepositoryError::NothingToSnapshot { .. }) => {}
        other => panic!("snapshot of an empty stream: {other:?}"),
    }
    for (sequence, minute) in [(1u64, 1i64), (2, 2), (3, 3)] {
        let mut attempt = attempt(TENANT, "snap", sequence, sequence * 2, increments(0..2));
        attempt.commit_stamp = stamp(minute * 60);
        store.commit(attempt).await.expect("commit");
    }
    let n = 6;
    let snap = repo
        .snapshot::<Counter>("snap", n - 3, Headers::from([("k".to_owned(), json!(1))]))
        .await
        .expect("snapshot");
    assert_eq!((snap.stream_revision, snap.commit_sequence), (3, 2));
    assert_eq!(snap.headers.get("k"), Some(&json!(1)));
    let as_of = repo
        .snapshot_as_of::<Counter>("snap", stamp(60), Headers::new())
        .await
        .expect("snapshot as of");
    assert_eq!((as_of.stream_revision, as_of.commit_sequence), (2, 1));
    let stored = store
        .get_snapshot(TENANT, "snap", u64::MAX)
        .await
        .expect("get")
        .expect("some");
    assert_eq!(stored, snap);
    let loaded: Counter = repo.get("snap").await.expect("load");
    assert_eq!((loaded.version(), loaded.applied, loaded.total), (6, 3, 3));
}

/// `update` reloads and reruns the command after a concurrency error.
pub async fn aggregate_update_retries_on_concurrency<H: Harness>(harness: &H) {
    let store = store(harness).await;
    let repo = AggregateRepository::new(TENANT, &store);
    let mut first: Counter = repo.get("u").await.unwrap();
    first.add(1).unwrap();
    repo.save(&mut first, Headers::new()).await.unwrap();
    let mut runs = 0;
    let updated = repo
        .update(
            "u",
            Headers::new(),
            3,
            |counter: &mut Counter| -> Result<(), RepositoryError> {
                runs += 1;
                if runs == 1 {
                    // Simulate another writer getting in between this load and its save.
                    let other = store.clone();
                    let handle = tokio::runtime::Handle::current();
                    std::thread::scope(|scope| {
                        scope.spawn(|| {
                            handle.block_on(async move {
                                let repo = AggregateRepository::new(TENANT, &other);
                                let mut rival: Counter = repo.get("u").await.unwrap();
                                rival.add(10).unwrap();
                                repo.save(&mut rival, Headers::new()).await.unwrap();
                            })
                        });
                    });
                }
                counter.add(100).unwrap();
                Ok(())
            },
        )
        .await
        .expect("update");
    assert_eq!(runs, 2, "the command ran again after the concurrency error");
    assert_eq!(updated.attempts, 2);
    assert_eq!(updated.aggregate.total, 111, "the aggregate as saved");
    assert_eq!(updated.commit.expect("a commit").commit_sequence, 3);
    assert_eq!(repo.get::<Counter>("u").await.unwrap().total, 111);
}

/// A saga's events are saved and replayed; its commands come back from save and are stored
/// in the commit headers.
pub async fn saga_repository_round_trip<H: Harness>(harness: &H) {
    let store = store(harness).await;
    let repo = SagaRepository::new(TENANT, &store);
    let mut saga: Fulfilment = repo.get("order-1").await.expect("get new");
    assert_eq!(
        repo.save(&mut saga, Headers::new()).await.expect("nothing"),
        Vec::new()
    );
    saga.handle(OrderPlaced {
        order: "order-1".into(),
        amount: 30,
    });
    let commands = repo.save(&mut saga, Headers::new()).await.expect("save");
    assert_eq!(commands.len(), 1);
    assert_eq!(
        commands[0].decode_event::<BillCustomer>().unwrap(),
        Some(BillCustomer {
            order: "order-1".into(),
            amount: 30
        })
    );
    assert!(saga.undispatched().is_empty());

    let mut saga: Fulfilment = repo.get("order-1").await.expect("reload");
    assert!(saga.placed && !saga.paid);
    assert!(
        saga.undispatched().is_empty(),
        "replay does not dispatch again"
    );
    saga.handle(PaymentReceived {
        order: "order-1".into(),
    });
    let commands = repo
        .save(&mut saga, Headers::from([("h".to_owned(), json!("v"))]))
        .await
        .expect("save 2");
    assert_eq!(commands.len(), 1);
    assert!(commands[0].is::<ShipOrder>());

    let commits = read_stream(&*store, TENANT, "order-1").await;
    assert_eq!(sequences(&commits), vec![1, 2]);
    let header = commits[1]
        .headers
        .get("UndispatchedMessage.0")
        .expect("command header");
    assert_eq!(header["topic"], json!(ShipOrder::TOPIC));
    assert_eq!(commits[1].headers.get("h"), Some(&json!("v")));
    let loaded: Fulfilment = repo.get("order-1").await.expect("reload");
    assert!(loaded.placed && loaded.paid);
    assert_eq!((loaded.version(), loaded.state().commit_sequence()), (2, 2));
}

/// `EventStream`: add, commit, reopen within bounds; a lost race absorbs the winners.
pub async fn event_stream_round_trip<H: Harness>(harness: &H) {
    let store = store(harness).await;
    let commits: Arc<dyn CommitStore> = store.clone();
    let mut stream = EventStream::create(commits.clone(), TENANT, "es");
    stream.add_event(&Incremented { by: 1 }).unwrap();
    stream.add_event(&Incremented { by: 2 }).unwrap();
    stream.set_header("who", "me");
    assert_eq!(stream.uncommitted_events().len(), 2);
    let id = Uuid::new_v4();
    let commit = stream.commit(id).await.expect("commit").expect("some");
    assert_eq!((commit.commit_id, commit.stream_revision), (id, 2));
    assert_eq!(
        (
            stream.stream_revision(),
            stream.commit_sequence(),
            stream.committed_events().len()
        ),
        (2, 1, 2)
    );
    assert!(stream.uncommitted_events().is_empty() && stream.uncommitted_headers().is_empty());
    assert_eq!(stream.commit(Uuid::new_v4()).await.expect("nothing"), None);

    let mut rival = EventStream::open(commits.clone(), TENANT, "es", 0, u64::MAX)
        .await
        .expect("open");
    stream.add_event(&Incremented { by: 3 }).unwrap();
    stream.commit(Uuid::new_v4()).await.expect("commit 2");
    rival.add_event(&Reset {}).unwrap();
    let error = rival.commit(Uuid::new_v4()).await.expect_err("rival loses");
    assert!(
        matches!(error, StoreError::NonConflictingCommit { .. }),
        "{error}"
    );
    assert_eq!(
        rival.stream_revision(),
        3,
        "the rival took in the winner's commit"
    );
    rival
        .commit(Uuid::new_v4())
        .await
        .expect("retry after non-conflicting")
        .expect("some");
    assert_eq!(rival.stream_revision(), 4);

    let part = EventStream::open(commits, TENANT, "es", 2, 3)
        .await
        .expect("open part");
    let topics: BTreeSet<&str> = part
        .committed_events()
        .iter()
        .map(|e| e.topic.as_str())
        .collect();
    assert_eq!(part.committed_events().len(), 2, "revisions 2 and 3 only");
    assert_eq!(topics, BTreeSet::from([Incremented::TOPIC]));
    assert_eq!(part.stream_revision(), 3);
    assert_eq!(part.committed_headers().get("who"), Some(&json!("me")));
    let _: &Counter = &Counter::create("unused");
    let _ = Fulfilment::TOPICS;
}

/// A damaged commit in the log: a reader receives every intact commit before it (even from the
/// same page), then the typed error naming tenant, stream, commit and checkpoint; reading again
/// from that checkpoint continues right after it.
pub async fn a_damaged_commit_ends_a_read_after_every_intact_commit_before_it<H: Harness>(
    harness: &H,
) {
    let store = store(harness).await;
    let first = append(&*store, TENANT, "a", increments(0..1)).await;
    let second = append(&*store, "tenant-b", "b", increments(0..1)).await;
    let damaged = append(&*store, TENANT, "c", increments(0..1)).await;
    let fourth = append(&*store, TENANT, "a", increments(1..2)).await;
    if !harness.corrupt_events(&store, TENANT, "c", 1).await {
        return; // This backend holds no bytes that could be damaged.
    }
    let read = log_results(store.get_from(0)).await;
    assert_eq!(
        read.len(),
        3,
        "two intact commits, then the error: {read:?}"
    );
    assert_eq!(read[0].as_ref().unwrap(), &first);
    assert_eq!(read[1].as_ref().unwrap(), &second);
    let error = read[2].as_ref().unwrap_err();
    assert!(matches!(error, StoreError::Corrupt { .. }), "{error}");
    assert_eq!(
        (
            error.tenant(),
            error.stream(),
            error.commit_sequence(),
            error.checkpoint()
        ),
        (Some(TENANT), Some("c"), Some(1), Some(damaged.checkpoint)),
        "the error names the damaged commit: {error}"
    );
    assert_eq!(
        log_commits(store.get_from(error.checkpoint().unwrap())).await,
        vec![fourth.clone()],
        "reading from the damaged commit's checkpoint continues right after it"
    );
    let tenant = log_results(store.get_tenant_from(TENANT, 0)).await;
    assert_eq!(tenant.len(), 2, "{tenant:?}");
    assert_eq!(tenant[0].as_ref().unwrap(), &first);
    assert_eq!(
        tenant[1].as_ref().unwrap_err().checkpoint(),
        Some(damaged.checkpoint)
    );
}

/// Reading one tenant's log from a checkpoint: only that tenant, in checkpoint order, resuming
/// after the checkpoint given.
pub async fn reading_one_tenants_log_from_a_checkpoint<H: Harness>(harness: &H) {
    let store = store(harness).await;
    let mut mine = Vec::new();
    for n in 0..6 {
        let tenant = if n % 2 == 0 { TENANT } else { "tenant-b" };
        let commit = append(
            &*store,
            tenant,
            &format!("s{}", n % 3),
            increments(n..n + 1),
        )
        .await;
        if tenant == TENANT {
            mine.push(commit);
        }
    }
    assert_eq!(log_commits(store.get_tenant_from(TENANT, 0)).await, mine);
    assert_eq!(
        log_commits(store.get_tenant_from(TENANT, mine[0].checkpoint)).await,
        mine[1..].to_vec()
    );
    assert!(log_commits(store.get_tenant_from("nobody", 0))
        .await
        .is_empty());
    // A reader that may read but not destroy: the log role alone.
    let log: Arc<dyn CommitLog> = store.clone();
    assert_eq!(log_commits(log.get_tenant_from(TENANT, 0)).await.len(), 3);
}

/// "Stamped at or before" a time before any commit is empty on every backend, even at the
/// earliest time chrono holds; the latest time reads everything.
pub async fn time_bounds_at_the_ends_of_time<H: Harness>(harness: &H) {
    let store = store(harness).await;
    let written = append(&*store, TENANT, "t", increments(0..1)).await;
    assert!(collect(store.get_to(TENANT, "t", DateTime::<Utc>::MIN_UTC))
        .await
        .is_empty());
    assert!(collect(store.get_all_to(TENANT, DateTime::<Utc>::MIN_UTC))
        .await
        .is_empty());
    assert_eq!(
        collect(store.get_to(TENANT, "t", DateTime::<Utc>::MAX_UTC)).await,
        vec![written.clone()]
    );
    assert_eq!(
        collect(store.get_all_to(TENANT, DateTime::<Utc>::MAX_UTC)).await,
        vec![written]
    );
}

/// Read streams own what they need: they move into spawned tasks, outliving the arguments.
pub async fn read_streams_move_into_spawned_tasks<H: Harness>(harness: &H) {
    let store = store(harness).await;
    append(&*store, TENANT, "moved", increments(0..3)).await;
    let stream = {
        let tenant = TENANT.to_owned();
        let id = String::from("moved");
        store.get(&tenant, &id, 0, u64::MAX)
    };
    let log = store.get_from(0);
    let (commits, logged) = tokio::spawn(async move {
        let commits: Vec<Commit> = stream.try_collect().await.unwrap();
        let logged: Vec<LogEntry> = log.try_collect().await.unwrap();
        (commits, logged)
    })
    .await
    .unwrap();
    assert_eq!((commits.len(), logged.len()), (1, 1));
}

/// An aggregate loaded at a version inside a commit of several events has not seen the rest of
/// that commit: saving it is a concurrency error, so `update`-style retry logic retries.
pub async fn saving_an_aggregate_loaded_inside_a_commit_is_a_concurrency_conflict<H: Harness>(
    harness: &H,
) {
    let store = store(harness).await;
    append(&*store, TENANT, "mid", increments(1..4)).await; // revisions 1-3 in one commit
    let repo = AggregateRepository::new(TENANT, &store);
    let mut inside: Counter = repo.get_version("mid", 2).await.expect("load at 2");
    assert_eq!((inside.version(), inside.total), (2, 3));
    inside.add(10).unwrap();
    match repo.save(&mut inside, Headers::new()).await {
        Err(error) if error.is_concurrency_conflict() => {}
        other => panic!("expected a concurrency conflict, got {other:?}"),
    }
    let mut latest: Counter = repo.get("mid").await.unwrap();
    latest.add(10).unwrap();
    repo.save(&mut latest, Headers::new())
        .await
        .expect("the latest version saves");
    // Loaded at the end of that commit from a snapshot, the aggregate is current.
    repo.snapshot::<Counter>("mid", 4, Headers::new())
        .await
        .unwrap();
    let mut at_head: Counter = repo.get_version("mid", 4).await.unwrap();
    at_head.add(1).unwrap();
    repo.save(&mut at_head, Headers::new())
        .await
        .expect("an aggregate loaded at the head from a snapshot saves");
}

/// A saga fed a message from the store records the event with the commands it dispatched, so
/// saving stores both; commands dispatched without an event are saved too, and loading skips
/// what carried them.
pub async fn saga_fed_messages_saves_its_events_and_every_command<H: Harness>(harness: &H) {
    let store = store(harness).await;
    let sagas = SagaRepository::new(TENANT, &store);
    let placed = message(&OrderPlaced {
        order: "o-1".into(),
        amount: 5,
    });
    let mut saga: Fulfilment = sagas.get("o-1").await.unwrap();
    saga.handle_message(&placed).expect("a listed topic");
    let commands = sagas.save(&mut saga, Headers::new()).await.expect("save");
    assert_eq!(commands.len(), 1);
    let stored = read_stream(&*store, TENANT, "o-1").await;
    assert_eq!(stored.len(), 1);
    assert_eq!(
        stored[0].events,
        vec![placed.clone()],
        "the event is stored"
    );
    assert_eq!(
        stored[0].headers.get("UndispatchedMessage.0"),
        Some(&serde_json::to_value(&commands[0]).unwrap()),
        "the header holds the command's message, as handed back"
    );

    match saga.handle_message(&message(&Incremented { by: 1 })) {
        Err(aett::ApplyError::UnknownTopic { .. }) => {}
        other => panic!("an unlisted topic: {other:?}"),
    }
    saga.dispatch(ShipOrder {
        order: "o-1".into(),
    });
    let commands = sagas.save(&mut saga, Headers::new()).await.expect("save");
    assert_eq!(commands.len(), 1, "a command without an event is saved");
    let stored = read_stream(&*store, TENANT, "o-1").await;
    assert_eq!(stored.len(), 2);
    assert!(stored[1].headers.contains_key("UndispatchedMessage.0"));
    let reloaded: Fulfilment = sagas.get("o-1").await.expect("loading skips the marker");
    assert!(reloaded.placed && !reloaded.paid);
    assert_eq!(reloaded.version(), saga.version());
    let mut reloaded = reloaded;
    reloaded.handle(PaymentReceived {
        order: "o-1".into(),
    });
    sagas
        .save(&mut reloaded, Headers::new())
        .await
        .expect("saving after a commands-only commit");
}

/// A commit store that stores a commit and then reports a failure, as a connection lost after
/// the insert and before the acknowledgement does: the outcome is unknown to the writer.
struct LoseAcknowledgements<S> {
    inner: Arc<S>,
    lose: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl<S: CommitStore> CommitStore for LoseAcknowledgements<S> {
    fn get(&self, tenant: &str, stream: &str, min: u64, max: u64) -> CommitStream {
        self.inner.get(tenant, stream, min, max)
    }

    fn get_to(&self, tenant: &str, stream: &str, max_time: DateTime<Utc>) -> CommitStream {
        self.inner.get_to(tenant, stream, max_time)
    }

    async fn commit(&self, attempt: CommitAttempt) -> Result<Commit, StoreError> {
        let scope = Scope::stream(&attempt.tenant_id, &attempt.stream_id);
        let stored = self.inner.commit(attempt).await?;
        let lost = self
            .lose
            .fetch_update(
                std::sync::atomic::Ordering::SeqCst,
                std::sync::atomic::Ordering::SeqCst,
                |n| n.checked_sub(1),
            )
            .is_ok();
        if lost {
            Err(StoreError::storage(
                Operation::Commit,
                scope,
                "connection lost before the acknowledgement",
            ))
        } else {
            Ok(stored)
        }
    }
}

/// An unknown outcome never stores twice: a save whose acknowledgement was lost, saved again,
/// reuses its commit id, and finding its own earlier attempt stored is success.
pub async fn a_save_whose_acknowledgement_was_lost_is_not_stored_twice<H: Harness>(harness: &H) {
    let store = store(harness).await;
    let lossy = Arc::new(LoseAcknowledgements {
        inner: store.clone(),
        lose: std::sync::atomic::AtomicUsize::new(1),
    });
    let repo = AggregateRepository::from_roles(TENANT, lossy.clone(), store.clone());
    let mut counter: Counter = repo.get("lossy").await.unwrap();
    counter.add(5).unwrap();
    counter.add(6).unwrap();
    match repo.save(&mut counter, Headers::new()).await {
        Err(RepositoryError::Store(StoreError::Storage { .. })) => {}
        other => panic!("the lost acknowledgement is an error: {other:?}"),
    }
    let commit = repo
        .save(&mut counter, Headers::new())
        .await
        .expect("the retry recognises its own stored attempt")
        .expect("a commit");
    assert_eq!(commit.commit_sequence, 1);
    let stored = read_stream(&*store, TENANT, "lossy").await;
    assert_eq!(stored, vec![commit], "stored once");
    counter.add(7).unwrap();
    let next = repo
        .save(&mut counter, Headers::new())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        next.commit_sequence, 2,
        "the instance goes on after the retry"
    );

    // The same for a saga.
    lossy.lose.store(1, std::sync::atomic::Ordering::SeqCst);
    let sagas = SagaRepository::from_commit_store(TENANT, lossy.clone());
    let mut saga: Fulfilment = sagas.get("lossy-saga").await.unwrap();
    saga.handle(OrderPlaced {
        order: "o".into(),
        amount: 1,
    });
    assert!(sagas.save(&mut saga, Headers::new()).await.is_err());
    let commands = sagas.save(&mut saga, Headers::new()).await.expect("retry");
    assert_eq!(
        commands.len(),
        1,
        "the commands are handed out once it is known stored"
    );
    assert_eq!(read_stream(&*store, TENANT, "lossy-saga").await.len(), 1);
}

/// The replay form of a snapshot is the stored snapshot: position and memento bytes alike.
pub async fn snapshots_for_replay_are_the_stored_snapshots<H: Harness>(harness: &H) {
    let store = store(harness).await;
    assert!(store
        .get_snapshot_for_replay(TENANT, "snap", u64::MAX)
        .await
        .unwrap()
        .is_none());
    let snapshot = Snapshot {
        tenant_id: TENANT.to_owned(),
        stream_id: "snap".to_owned(),
        stream_revision: 7,
        commit_sequence: 3,
        payload: serde_json::value::to_raw_value(&json!({"total": 12, "ü": [1, 2]})).unwrap(),
        headers: Headers::from([("h".to_owned(), json!(true))]),
    };
    store.add_snapshot(snapshot.clone()).await.unwrap();
    let replay = store
        .get_snapshot_for_replay(TENANT, "snap", 7)
        .await
        .unwrap()
        .expect("the snapshot at 7");
    assert_eq!((replay.stream_revision, replay.commit_sequence), (7, 3));
    assert_eq!(replay.payload, snapshot.payload.get().as_bytes());
    assert!(store
        .get_snapshot_for_replay(TENANT, "snap", 6)
        .await
        .unwrap()
        .is_none());
}

/// Deleting a stream removes its commits and snapshots and nothing else, writes a notice to
/// the log where it happened, and lets the stream start afresh from sequence 1. Deleting a
/// stream that holds nothing is not an error and writes no notice.
pub async fn deleting_a_stream_removes_it_and_tells_the_log<H: Harness>(harness: &H) {
    let store = store(harness).await;
    let repo = AggregateRepository::new(TENANT, &store);
    append(&*store, TENANT, "gone", increments(1..3)).await;
    append(&*store, TENANT, "gone", increments(3..4)).await;
    repo.snapshot::<Counter>("gone", 3, Headers::new())
        .await
        .unwrap();
    let kept = append(&*store, TENANT, "kept", increments(1..2)).await;
    let other_tenant = append(&*store, "tenant-b", "gone", increments(1..2)).await;
    let before = log_entries(store.get_from(0)).await;

    store.delete_stream(TENANT, "gone").await.expect("delete");
    assert!(read_stream(&*store, TENANT, "gone").await.is_empty());
    assert!(store
        .get_snapshot(TENANT, "gone", u64::MAX)
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        read_stream(&*store, TENANT, "kept").await,
        vec![kept.clone()]
    );
    assert_eq!(
        read_stream(&*store, "tenant-b", "gone").await,
        vec![other_tenant.clone()],
        "the same stream id of another tenant is another stream"
    );

    let after = log_entries(store.get_from(0)).await;
    assert_eq!(
        after.len(),
        3,
        "kept, the other tenant's commit, and the notice: {after:?}"
    );
    let notice = match after.last() {
        Some(LogEntry::StreamDeleted(notice)) => notice.clone(),
        other => panic!("expected the deletion notice last, got {other:?}"),
    };
    assert_eq!(
        (notice.tenant_id.as_str(), notice.stream_id.as_str()),
        (TENANT, "gone")
    );
    let last_before = before.last().unwrap().checkpoint();
    assert!(
        notice.checkpoint > last_before,
        "the notice comes after everything before the deletion"
    );
    assert_eq!(
        log_entries(store.get_from(last_before)).await,
        vec![LogEntry::StreamDeleted(notice.clone())],
        "a reader that had seen everything learns of the deletion"
    );
    assert_eq!(
        log_entries(store.get_tenant_from(TENANT, last_before))
            .await
            .len(),
        1
    );
    assert!(log_entries(store.get_tenant_from("tenant-b", last_before))
        .await
        .is_empty());
    assert!(
        log_commits(store.get_tenant_from("tenant-b", 0)).await == vec![other_tenant],
        "the other tenant's log holds no notice"
    );
    assert_eq!(
        collect(store.get_all_to(TENANT, DateTime::<Utc>::MAX_UTC)).await,
        vec![kept],
        "reads of commits by time hold commits only"
    );

    // The stream starts afresh, from sequence 1, and loads as new.
    let fresh: Counter = repo.get("gone").await.unwrap();
    assert_eq!((fresh.version(), fresh.total), (0, 0));
    let restarted = store
        .commit(attempt(TENANT, "gone", 1, 1, increments(7..8)))
        .await
        .expect("sequence 1 again");
    assert_eq!(restarted.commit_sequence, 1);
    let mut counter: Counter = repo.get("gone").await.unwrap();
    assert_eq!((counter.version(), counter.total), (1, 7));
    counter.add(1).unwrap();
    repo.save(&mut counter, Headers::new())
        .await
        .expect("the restarted stream goes on");

    // Nothing to delete: no error, no notice.
    let end = log_entries(store.get_from(0))
        .await
        .last()
        .unwrap()
        .checkpoint();
    store.delete_stream(TENANT, "never-written").await.unwrap();
    assert!(log_entries(store.get_from(end)).await.is_empty());

    // Deleted again, the stream gets a second notice; a purge removes the notices too.
    store.delete_stream(TENANT, "gone").await.unwrap();
    let notices = log_entries(store.get_tenant_from(TENANT, 0))
        .await
        .into_iter()
        .filter(|entry| matches!(entry, LogEntry::StreamDeleted(_)))
        .count();
    assert_eq!(notices, 2);
    store.purge(TENANT).await.unwrap();
    assert!(log_entries(store.get_tenant_from(TENANT, 0))
        .await
        .is_empty());
}

/// Truncating a stream removes the commits wholly before the revision when a snapshot at or
/// after it exists, refuses (removing nothing) when none does, keeps the latest state loadable,
/// and makes a version whose history is gone a typed error rather than a different aggregate.
pub async fn truncating_a_stream_keeps_the_latest_state_and_refuses_the_lost_past<H: Harness>(
    harness: &H,
) {
    let store = store(harness).await;
    let repo = AggregateRepository::new(TENANT, &store);
    // Commits of revisions 1-2, 3-4, 5-6, 7-8 (totals 3, 10, 21, 36).
    for pair in [1..3, 3..5, 5..7, 7..9] {
        append(&*store, TENANT, "long", increments(pair)).await;
    }
    match store.truncate_stream(TENANT, "long", 5).await {
        Err(StoreError::TruncationRefused {
            tenant,
            stream,
            revision: 5,
        }) => assert_eq!((tenant.as_str(), stream.as_str()), (TENANT, "long")),
        other => panic!("no snapshot at or after 5: expected a refusal, got {other:?}"),
    }
    assert_eq!(
        read_stream(&*store, TENANT, "long").await.len(),
        4,
        "a refused truncation removes nothing"
    );

    repo.snapshot::<Counter>("long", 6, Headers::new())
        .await
        .unwrap();
    store
        .truncate_stream(TENANT, "long", 5)
        .await
        .expect("a snapshot at 6 covers truncating before 5");
    let left = read_stream(&*store, TENANT, "long").await;
    assert_eq!(
        sequences(&left),
        vec![3, 4],
        "the commits wholly before revision 5 are gone"
    );

    let latest: Counter = repo.get("long").await.expect("the latest state loads");
    assert_eq!((latest.version(), latest.total), (8, 36));
    let at_snapshot: Counter = repo.get_version("long", 6).await.unwrap();
    assert_eq!(at_snapshot.total, 21);
    for version in [2, 4] {
        match repo.get_version::<Counter>("long", version).await {
            Err(RepositoryError::HistoryTruncated {
                available_from: 5, ..
            }) => {}
            other => panic!("version {version} lies in truncated history: {other:?}"),
        }
    }
    match repo.get_as_of::<Counter>("long", Utc::now()).await {
        Err(RepositoryError::HistoryTruncated { .. }) => {}
        other => panic!("a time read starting in truncated history: {other:?}"),
    }
    // The stream goes on after the truncation.
    let mut counter: Counter = repo.get("long").await.unwrap();
    counter.add(1).unwrap();
    repo.save(&mut counter, Headers::new()).await.unwrap();

    // The last commit always stays, so the sequence goes on even when the cut passes the head.
    repo.snapshot::<Counter>("long", 9, Headers::new())
        .await
        .unwrap();
    assert!(matches!(
        store.truncate_stream(TENANT, "long", 100).await,
        Err(StoreError::TruncationRefused { .. })
    ));
    store.truncate_stream(TENANT, "long", 9).await.unwrap();
    let left = read_stream(&*store, TENANT, "long").await;
    assert_eq!(sequences(&left), vec![5]);
    let mut counter: Counter = repo.get("long").await.unwrap();
    assert_eq!((counter.version(), counter.total), (9, 37));
    counter.add(1).unwrap();
    repo.save(&mut counter, Headers::new())
        .await
        .expect("sequence 6 follows the kept head");

    // A saga cannot be snapshotted: with part of its history gone it does not load.
    let sagas = SagaRepository::new(TENANT, &store);
    for order in ["o-1", "o-2"] {
        let mut saga: Fulfilment = sagas.get("saga").await.unwrap();
        saga.handle(OrderPlaced {
            order: order.into(),
            amount: 1,
        });
        sagas.save(&mut saga, Headers::new()).await.unwrap();
    }
    store
        .add_snapshot(Snapshot {
            tenant_id: TENANT.into(),
            stream_id: "saga".into(),
            stream_revision: 2,
            commit_sequence: 2,
            payload: serde_json::value::to_raw_value(&json!({})).unwrap(),
            headers: Headers::new(),
        })
        .await
        .unwrap();
    store.truncate_stream(TENANT, "saga", 2).await.unwrap();
    match sagas.get::<Fulfilment>("saga").await {
        Err(RepositoryError::HistoryTruncated { .. }) => {}
        other => panic!("a saga with truncated history: {other:?}"),
    }
}

/// The streams of a tenant whose head is at least N revisions past their newest snapshot (or
/// the start), in stream id order, from the index of stream heads, across pages.
pub async fn streams_that_need_a_snapshot<H: Harness>(harness: &H) {
    let store = store(harness).await;
    let repo = AggregateRepository::new(TENANT, &store);
    let list = |threshold| {
        let store = store.clone();
        async move {
            store
                .streams_to_snapshot(TENANT, threshold)
                .try_collect::<Vec<_>>()
                .await
                .expect("streams to snapshot")
        }
    };
    assert!(list(0).await.is_empty());
    append(&*store, TENANT, "b-far", increments(0..12)).await;
    append(&*store, TENANT, "a-near", increments(0..3)).await;
    append(&*store, TENANT, "c-snapped", increments(0..10)).await;
    append(&*store, TENANT, "c-snapped", increments(10..12)).await;
    append(&*store, "tenant-b", "b-far", increments(0..50)).await;
    repo.snapshot::<Counter>("c-snapped", 10, Headers::new())
        .await
        .unwrap();

    let all = list(0).await;
    assert_eq!(
        all.iter()
            .map(|s| (s.stream_id.as_str(), s.head_revision, s.snapshot_revision))
            .collect::<Vec<_>>(),
        vec![
            ("a-near", 3, None),
            ("b-far", 12, None),
            ("c-snapped", 12, Some(10)),
        ],
        "every stream of the tenant, in stream id order, with head and snapshot"
    );
    let due: Vec<String> = list(5).await.into_iter().map(|s| s.stream_id).collect();
    assert_eq!(due, vec!["b-far".to_owned()]);
    assert_eq!(list(5).await[0].revisions_behind(), 12);

    // Snapshotting it takes it off the list; new commits put it back.
    repo.snapshot::<Counter>("b-far", 12, Headers::new())
        .await
        .unwrap();
    assert!(list(5).await.is_empty());
    append(&*store, TENANT, "b-far", increments(0..5)).await;
    assert_eq!(list(5).await.len(), 1);
    // A deleted stream leaves the index.
    store.delete_stream(TENANT, "b-far").await.unwrap();
    assert!(list(0).await.iter().all(|s| s.stream_id != "b-far"));

    // More streams than a page holds are all listed, once each.
    let many = 1_100;
    for n in 0..many {
        store
            .commit(attempt(
                "tenant-many",
                &format!("s{n:05}"),
                1,
                1,
                increments(0..1),
            ))
            .await
            .unwrap();
    }
    let listed: Vec<String> = store
        .streams_to_snapshot("tenant-many", 1)
        .map_ok(|s| s.stream_id)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(listed.len(), many);
    assert!(
        listed.windows(2).all(|w| w[0] < w[1]),
        "in order, no repeats"
    );
}

/// Events stored in older shapes and under old topics load through their types' upcasters and
/// aliases (from the store's replay path and from its log), new ones are stored with their
/// version, and a version newer than the program knows is a typed error naming the event.
pub async fn evolved_events_load_through_upcasters_and_aliases<H: Harness>(harness: &H) {
    use crate::evolution::{Account, Deposited, Hold, Withdrawn};

    let store = store(harness).await;
    let raw = |topic: &str, version: Option<u32>, body: serde_json::Value| {
        let message = EventMessage::from_raw(
            topic,
            serde_json::value::to_raw_value(&body).expect("JSON serialises"),
        );
        match version {
            Some(version) => message.with_header(aett::VERSION_HEADER, version),
            None => message,
        }
    };
    // Written by older releases: every upcaster path, both aliases, each variant.
    let old = vec![
        raw("test.account.credited", None, json!({"amount": 5})),
        raw("test.account.deposited", Some(2), json!({"cents": 250})),
        raw("test.account.withdrawn", None, json!({"amount": 1})),
        raw("test.account.frozen", None, json!({"why": "audit"})),
        raw("test.account.hold_extended", Some(2), json!(3)),
        raw("test.account.hold_lifted", Some(2), json!(null)),
    ];
    append(&*store, TENANT, "acct", old).await;
    let repo = AggregateRepository::new(TENANT, &store);
    let mut account: Account = repo.get("acct").await.expect("old shapes load");
    assert_eq!(account.balance, 500 + 250 - 100);
    assert_eq!(account.currencies, ["EUR"]);
    assert_eq!(account.reasons, ["unknown"]);
    assert_eq!((account.hold.as_deref(), account.extended), (None, 3));
    assert_eq!(account.version(), 6);

    account.raise(Deposited {
        cents: 40,
        currency: "USD".into(),
    });
    account.raise(Withdrawn {
        cents: 10,
        reason: "fee".into(),
    });
    account.raise(Hold::Placed {
        reason: "review".into(),
    });
    let commit = repo
        .save(&mut account, Headers::new())
        .await
        .expect("save")
        .expect("a commit");
    let stored: Vec<_> = read_stream(&*store, TENANT, "acct")
        .await
        .into_iter()
        .flat_map(|commit| commit.events)
        .skip(6)
        .collect();
    let shapes: Vec<_> = stored
        .iter()
        .map(|m| {
            (
                m.topic.as_str(),
                m.headers.get(aett::VERSION_HEADER).cloned(),
                serde_json::from_str::<serde_json::Value>(m.body.get()).unwrap(),
            )
        })
        .collect();
    assert_eq!(
        shapes,
        [
            (
                "test.account.deposited",
                Some(json!(3)),
                json!({"cents": 40, "currency": "USD"})
            ),
            (
                "test.account.withdrawn",
                Some(json!(2)),
                json!({"cents": 10, "reason": "fee"})
            ),
            (
                "test.account.hold_placed",
                Some(json!(2)),
                json!({"reason": "review"})
            ),
        ],
        "written under the current topic and version, an enum as its variant's content"
    );
    let reloaded: Account = repo.get("acct").await.expect("reload");
    assert_eq!(reloaded.balance, 650 + 40 - 10);
    assert_eq!(reloaded.currencies, ["EUR", "USD"]);
    assert_eq!(reloaded.hold.as_deref(), Some("review"));

    // The log gives the same messages back; each decodes as its type.
    let logged = log_commits(store.get_from(0)).await;
    let events: Vec<_> = logged.iter().flat_map(|c| &c.events).collect();
    assert_eq!(events.len(), 9);
    let deposits: Vec<u64> = events
        .iter()
        .filter_map(|m| m.decode_event::<Deposited>().expect("decodes"))
        .map(|d| d.cents)
        .collect();
    assert_eq!(deposits, [500, 250, 40]);
    assert_eq!(events.iter().filter(|m| m.is::<Hold>()).count(), 4);
    assert_eq!(commit.commit_sequence, 2);

    // A later release wrote version 4 of a deposit.
    append(
        &*store,
        TENANT,
        "acct",
        vec![raw("test.account.deposited", Some(4), json!({"cents": 1}))],
    )
    .await;
    match repo.get::<Account>("acct").await {
        Err(RepositoryError::NewerEventVersion {
            tenant,
            stream,
            commit_sequence,
            topic,
            stored,
            known,
        }) => assert_eq!(
            (
                tenant.as_str(),
                stream.as_str(),
                commit_sequence,
                topic.as_str(),
                stored,
                known
            ),
            (TENANT, "acct", 3, "test.account.deposited", 4, 3)
        ),
        other => panic!("expected a newer-version error, got {other:?}"),
    }
}

/// A snapshot records its memento's version; a load passes over a snapshot of another version,
/// or one that no longer decodes, and replays from the start instead (and says so), or fails
/// when told to.
pub async fn snapshots_of_another_memento_version_are_replayed_past<H: Harness>(harness: &H) {
    use crate::evolution::{Account, Deposited};

    let store = store(harness).await;
    let repo = AggregateRepository::new(TENANT, &store);
    let mut account = Account::create("acct");
    for cents in [100, 200, 300] {
        account.raise(Deposited {
            cents,
            currency: "EUR".into(),
        });
    }
    repo.save(&mut account, Headers::new()).await.expect("save");
    let taken = repo
        .snapshot::<Account>("acct", 2, Headers::from([("by".to_owned(), json!("test"))]))
        .await
        .expect("snapshot");
    assert_eq!(
        taken.headers.get(aett::MEMENTO_VERSION_HEADER),
        Some(&json!(2))
    );
    assert_eq!(taken.headers.get("by"), Some(&json!("test")));
    let (loaded, report) = repo.get_with_report::<Account>("acct").await.expect("load");
    assert_eq!(
        (
            loaded.balance,
            report.snapshot_revision,
            report.events_replayed
        ),
        (600, Some(2), 1),
        "a snapshot of the current memento version is used"
    );
    assert_eq!(report.snapshot_discarded, None);

    // Taken by an older release (no version header: version 1), at the head.
    let old = Snapshot {
        tenant_id: TENANT.to_owned(),
        stream_id: "acct".to_owned(),
        stream_revision: 3,
        commit_sequence: 1,
        payload: serde_json::value::to_raw_value(&json!({"balance": 1, "currencies": []})).unwrap(),
        headers: Headers::new(),
    };
    store.add_snapshot(old.clone()).await.expect("snapshot");
    let (loaded, report) = repo.get_with_report::<Account>("acct").await.expect("load");
    assert_eq!(
        (
            loaded.balance,
            report.snapshot_revision,
            report.snapshot_discarded,
            report.events_replayed
        ),
        (600, None, Some(3), 3),
        "a memento of version 1 is passed over: a replay from the start"
    );
    let strict = AggregateRepository::new(TENANT, &store)
        .with_snapshot_fallback(aett::SnapshotFallback::Error);
    match strict.get::<Account>("acct").await {
        Err(RepositoryError::StaleSnapshot {
            tenant,
            stream,
            revision: 3,
            stored: 1,
            expected: 2,
        }) => assert_eq!((tenant.as_str(), stream.as_str()), (TENANT, "acct")),
        other => panic!(
            "expected a stale snapshot, got {:?}",
            other.map(|a| a.balance)
        ),
    }

    // Of the right version but no longer decoding.
    let mut broken = old;
    broken.payload = serde_json::value::to_raw_value(&json!({"balance": "lots"})).unwrap();
    broken.headers = Headers::from([(aett::MEMENTO_VERSION_HEADER.to_owned(), json!(2))]);
    store.add_snapshot(broken).await.expect("snapshot");
    let (loaded, report) = repo.get_with_report::<Account>("acct").await.expect("load");
    assert_eq!((loaded.balance, report.snapshot_discarded), (600, Some(3)));
    assert!(matches!(
        strict.get::<Account>("acct").await,
        Err(RepositoryError::Memento { revision: 3, .. })
    ));
}
