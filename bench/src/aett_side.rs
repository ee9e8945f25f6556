//! Each scenario through aett's public API, the way an application would use it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aett::{
    Aggregate, AggregateRepository, BoxError, Commit, CommitAttempt, EventContext, EventMessage,
    Headers, Project, ProjectionRunner, StoreError,
};

use crate::Stores;
use futures::TryStreamExt;

use crate::report::Measured;
use crate::workload::{deposit, Account, Deposited, Sum};

const TENANT: &str = "bench";

fn events(first: u64, count: u64) -> Vec<EventMessage> {
    (first..first + count)
        .map(|n| EventMessage::from_event(&deposit(n)).expect("serialise"))
        .collect()
}

async fn commit(
    stores: &Stores,
    stream: &str,
    sequence: u64,
    revision: u64,
    events: Vec<EventMessage>,
) -> Result<Commit, StoreError> {
    stores
        .commit(CommitAttempt::new(
            TENANT,
            stream,
            revision,
            sequence,
            Headers::new(),
            events,
        ))
        .await
}

/// Commits events `first..first + count` to `stream` at `sequence`, ending at `revision`.
pub async fn commit_events(
    stores: &Stores,
    stream: &str,
    sequence: u64,
    revision: u64,
    first: u64,
    count: u64,
) -> Result<Commit, StoreError> {
    commit(stores, stream, sequence, revision, events(first, count)).await
}

/// Single-event commits round-robin over 100 streams.
pub async fn append_single(stores: &Stores, round: u64, commits: u64) -> Measured {
    let start = Instant::now();
    for i in 0..commits {
        let sequence = i / 100 + 1;
        commit(
            stores,
            &format!("single-{round}-{}", i % 100),
            sequence,
            sequence,
            events(i, 1),
        )
        .await
        .expect("commit");
    }
    Measured::new(commits, start.elapsed())
}

/// 100-event commits round-robin over 10 streams; counts events.
pub async fn append_batch(stores: &Stores, round: u64, commits: u64) -> Measured {
    let start = Instant::now();
    for i in 0..commits {
        let sequence = i / 10 + 1;
        commit(
            stores,
            &format!("batch-{round}-{}", i % 10),
            sequence,
            sequence * 100,
            events(i * 100, 100),
        )
        .await
        .expect("commit");
    }
    Measured::new(commits * 100, start.elapsed())
}

/// 8 writers, each on its own stream.
pub async fn parallel(stores: &Stores, round: u64, per_writer: u64) -> Measured {
    let start = Instant::now();
    let tasks: Vec<_> = (0..8)
        .map(|writer| {
            let stores = stores.clone();
            tokio::spawn(async move {
                for n in 1..=per_writer {
                    commit(
                        &stores,
                        &format!("parallel-{round}-{writer}"),
                        n,
                        n,
                        events(n, 1),
                    )
                    .await
                    .expect("commit");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("writer");
    }
    Measured::new(8 * per_writer, start.elapsed())
}

/// 8 writers on one stream; a writer that loses a race takes the new head from the error and
/// retries. Reports commits/s and the share of attempts that lost.
pub async fn contended(stores: &Stores, round: u64, per_writer: u64) -> Measured {
    let stream = format!("contended-{round}");
    let start = Instant::now();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let stores = stores.clone();
            let stream = stream.clone();
            tokio::spawn(async move {
                let (mut head_sequence, mut head_revision) = (0, 0);
                let (mut attempts, mut lost) = (0u64, 0u64);
                for n in 0..per_writer {
                    loop {
                        attempts += 1;
                        match commit(
                            &stores,
                            &stream,
                            head_sequence + 1,
                            head_revision + 1,
                            events(n, 1),
                        )
                        .await
                        {
                            Ok(stored) => {
                                (head_sequence, head_revision) =
                                    (stored.commit_sequence, stored.stream_revision);
                                break;
                            }
                            Err(StoreError::NonConflictingCommit { committed, .. }) => {
                                lost += 1;
                                let last = committed.last().expect("the winners");
                                (head_sequence, head_revision) =
                                    (last.commit_sequence, last.stream_revision);
                            }
                            Err(other) => panic!("contended commit: {other}"),
                        }
                    }
                }
                (attempts, lost, start.elapsed())
            })
        })
        .collect();
    let (mut attempts, mut lost, mut finished) = (0, 0, Vec::new());
    for task in tasks {
        let (a, l, done) = task.await.expect("writer");
        attempts += a;
        lost += l;
        finished.push(done);
    }
    Measured::new(8 * per_writer, start.elapsed())
        .with_conflict_rate(lost as f64 / attempts as f64)
        .with_first_done(&finished)
}

/// Writes the aggregate the load scenarios read: `events` events in commits of 10.
pub async fn prepare_aggregate(stores: &Stores, id: &str, events_total: u64) {
    for sequence in 1..=events_total / 10 {
        commit(
            stores,
            id,
            sequence,
            sequence * 10,
            events(sequence * 10, 10),
        )
        .await
        .expect("prepare");
    }
}

/// Loads the aggregate `id` `times` times; counts events replayed.
pub async fn load(stores: &Stores, id: &str, times: u64) -> Measured {
    let repo = AggregateRepository::new(TENANT, stores);
    let start = Instant::now();
    let mut replayed = 0;
    for _ in 0..times {
        let account: Account = repo.get(id).await.expect("load");
        assert!(account.balance > 0);
        replayed += account.version();
    }
    Measured::new(replayed, start.elapsed())
}

/// Takes a snapshot 10 events below the head of `id`.
pub async fn snapshot_near_head(stores: &Stores, id: &str, events_total: u64) {
    let repo = AggregateRepository::new(TENANT, stores);
    repo.snapshot::<Account>(id, events_total - 10, Headers::new())
        .await
        .expect("snapshot");
}

/// Loads the snapshotted aggregate `times` times; counts loads.
pub async fn load_from_snapshot(stores: &Stores, id: &str, times: u64) -> Measured {
    let repo = AggregateRepository::new(TENANT, stores);
    let start = Instant::now();
    for _ in 0..times {
        let account: Account = repo.get(id).await.expect("load");
        assert!(account.balance > 0);
    }
    Measured::new(times, start.elapsed())
}

/// Writes `events_total` events in commits of 100 over 50 streams, for the read-everything
/// scenario.
pub async fn prepare_log(stores: &Stores, events_total: u64) {
    for i in 0..events_total / 100 {
        let sequence = i / 50 + 1;
        commit(
            stores,
            &format!("log-{}", i % 50),
            sequence,
            sequence * 100,
            events(i * 100, 100),
        )
        .await
        .expect("prepare");
    }
}

/// Reads every commit from checkpoint 0 through a projection (under a fresh name each round,
/// so each starts from 0), its checkpoint saved in the store as it goes.
pub async fn read_all(stores: &Stores) -> Measured {
    let start = Instant::now();
    let sum = ProjectionRunner::new(stores, Sum::default())
        .name(format!("bench-read-{}", uuid::Uuid::new_v4().simple()))
        .batch_size(1_000)
        .catch_up()
        .await
        .expect("project");
    assert!(sum.sum > 0);
    Measured::new(sum.count, start.elapsed())
}

/// Records when each commit reached the projection's handler.
#[derive(aett::Projection)]
#[projection(name = "bench.clock", events(Deposited))]
struct Clock {
    handled: Arc<Mutex<HashMap<u64, Instant>>>,
}

impl Project<Deposited> for Clock {
    async fn project(&mut self, _: Deposited, context: &EventContext<'_>) -> Result<(), BoxError> {
        self.handled
            .lock()
            .expect("clock")
            .insert(context.checkpoint, Instant::now());
        Ok(())
    }
}

/// Commit-to-handler latency: one writer appends single-event commits, 2 ms apart, while a
/// runner on `runner_store` follows the log; the time from each commit's return to its handler.
/// Returns the 50th and 99th percentiles and the maximum.
pub async fn latency(
    stores: &Stores,
    runner_store: &Stores,
    commits: u64,
) -> (Duration, Duration, Duration) {
    let handled = Arc::new(Mutex::new(HashMap::new()));
    let mut running = ProjectionRunner::new(
        runner_store,
        Clock {
            handled: handled.clone(),
        },
    )
    .name(format!("bench-latency-{}", uuid::Uuid::new_v4().simple()))
    .spawn();
    let stream = format!("latency-{}", uuid::Uuid::new_v4().simple());
    // Let the runner catch up with what is there before the clock starts.
    let head = stores
        .get_from(0)
        .try_fold(0, |_, entry| async move { Ok(entry.checkpoint()) })
        .await
        .expect("read the log");
    running.wait_for(head).await.expect("catch up");
    let mut committed = Vec::new();
    for i in 0..commits {
        let commit = commit(stores, &stream, i + 1, i + 1, events(i, 1))
            .await
            .expect("commit");
        committed.push((commit.checkpoint, Instant::now()));
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let last = committed.last().expect("commits").0;
    tokio::time::timeout(Duration::from_secs(60), running.wait_for(last))
        .await
        .expect("the runner keeps up")
        .expect("the runner runs");
    running.stop().await.expect("stop");
    let handled = handled.lock().expect("clock");
    let mut latencies: Vec<Duration> = committed
        .iter()
        .map(|(checkpoint, at)| handled[checkpoint].saturating_duration_since(*at))
        .collect();
    latencies.sort();
    let at = |share: f64| latencies[((latencies.len() - 1) as f64 * share).round() as usize];
    (at(0.5), at(0.99), *latencies.last().expect("latencies"))
}

/// Replays the aggregate `id` once (for the peak-memory measurement).
pub async fn replay_once(stores: &Stores, id: &str) -> u64 {
    let repo = AggregateRepository::new(TENANT, stores);
    let account: Account = repo.get(id).await.expect("load");
    account.version()
}

/// Writes `events_total` events to `id` in commits of 1,000 (for the peak-memory measurement).
pub async fn prepare_big(stores: &Stores, id: &str, events_total: u64) {
    for sequence in 1..=events_total / 1_000 {
        commit(
            stores,
            id,
            sequence,
            sequence * 1_000,
            events(sequence, 1_000),
        )
        .await
        .expect("prepare");
    }
}

/// Opens the connections 8 concurrent writers use, as a running service has them open; the
/// hand-written program connects before its timer starts, so aett's pool does too.
pub async fn warm_up(stores: &Stores) {
    let tasks: Vec<_> = (0..8)
        .map(|writer| {
            let stores = stores.clone();
            tokio::spawn(async move {
                for n in 1..=3 {
                    commit(&stores, &format!("warm-{writer}"), n, n, events(n, 1))
                        .await
                        .expect("warm up");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("warm-up writer");
    }
}
