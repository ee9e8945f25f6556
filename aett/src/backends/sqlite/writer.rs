//! The writer: one thread owns the store's write connection and takes jobs from a queue.
//!
//! Commits that queue up while the writer is busy are written together, in one transaction and
//! so with one sync to disk (group commit). Each attempt in the group is still checked on its
//! own and gets its own answer; a refused attempt writes nothing and so never fails another.
//! Every answer is sent only once the transaction is durable. A caller pays one hand-off to the
//! writer and one wake-up, where a blocking-pool task per commit paid a hand-off to the pool, a
//! wait for the connection's lock, and the wake-up.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{Receiver, SendError, Sender, TryRecvError};
use std::sync::Weak;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use tokio::sync::oneshot;

use super::{clamp, raw_commit, Inner};
use crate::backends::kit::sql::{encode_payload, why_refused, Refused};
use crate::backends::kit::{resolve_taken_sequence, stamp_to_micros};
use crate::error::{Operation, Scope, StoreError};
use crate::model::{Commit, CommitAttempt};

/// The most commits written in one transaction. Enough to take every caller that queued while
/// the last group was synced; small enough that a group's payload stays a few megabytes.
const MAX_GROUP: usize = 64;

/// Work that runs on the writer thread with the write connection.
type Work = Box<dyn FnOnce(&Inner, &mut Connection) + Send>;

/// Work for the writer thread.
enum Job {
    /// A commit attempt, answered on its channel once written (or refused).
    Commit {
        attempt: CommitAttempt,
        answer: oneshot::Sender<Result<Commit, StoreError>>,
    },
    /// Anything else that writes: snapshots, checkpoints, leases, schema, deletions. Runs alone,
    /// in the order it was queued.
    Run(Work),
}

/// The sending side of the writer's queue; the writer thread ends when it is dropped.
#[derive(Debug)]
pub(super) struct Writer {
    jobs: Sender<Job>,
}

/// The receiving side, handed to the thread by [`start`].
pub(super) struct Queue(Receiver<Job>);

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Job::Commit { attempt, .. } => f
                .debug_struct("Commit")
                .field("tenant_id", &attempt.tenant_id)
                .field("stream_id", &attempt.stream_id)
                .finish(),
            Job::Run(_) => f.write_str("Run"),
        }
    }
}

/// Starts the writer thread on `connection`. The thread holds the store weakly, so dropping the
/// last clone of the store drops the queue's sender, and the thread closes the connection and
/// ends.
pub(super) fn start(
    connection: Connection,
    queue: Queue,
    store: Weak<Inner>,
) -> Result<(), StoreError> {
    std::thread::Builder::new()
        .name("aett-sqlite-writer".to_owned())
        .spawn(move || run(connection, queue.0, store))
        .map_err(|e| StoreError::storage(Operation::Open, Scope::Store, e))?;
    Ok(())
}

impl Writer {
    /// A queue for a writer thread that [`start`] starts.
    pub(super) fn new() -> (Self, Queue) {
        let (jobs, queue) = std::sync::mpsc::channel();
        (Self { jobs }, Queue(queue))
    }

    /// Queues `attempt` and waits for its answer. The writer answers every commit it takes,
    /// with an error naming the stream if it cannot write it, so the stream's scope is built
    /// only for an error.
    pub(super) async fn commit(&self, attempt: CommitAttempt) -> Result<Commit, StoreError> {
        let (answer, answered) = oneshot::channel();
        if let Err(SendError(job)) = self.jobs.send(Job::Commit { attempt, answer }) {
            let scope = match &job {
                Job::Commit { attempt, .. } => scope_of(attempt),
                Job::Run(_) => Scope::Store,
            };
            return Err(stopped(Operation::Commit, scope));
        }
        // Without an answer the thread itself is gone, and with it the commit's scope.
        answered
            .await
            .unwrap_or_else(|_| Err(stopped(Operation::Commit, Scope::Store)))
    }

    /// Runs `work` on the writer thread with the write connection and waits for its result.
    pub(super) async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Inner, &mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (answer, answered) = oneshot::channel();
        let job = Job::Run(Box::new(move |inner, connection| {
            // The caller may have stopped waiting; the work is done either way.
            let _ = answer.send(work(inner, connection));
        }));
        self.jobs
            .send(job)
            .map_err(|_| stopped(Operation::Connect, Scope::Store))?;
        answered
            .await
            .unwrap_or_else(|_| Err(stopped(Operation::Connect, Scope::Store)))
    }
}

fn scope_of(attempt: &CommitAttempt) -> Scope {
    Scope::stream(&attempt.tenant_id, &attempt.stream_id)
}

/// The error for a job the writer could not do: it panicked, or the store is being dropped.
fn stopped(operation: Operation, scope: Scope) -> StoreError {
    StoreError::storage(
        operation,
        scope,
        "the SQLite writer dropped this job: the store is closing or the job panicked",
    )
}

/// The writer thread: takes the next job, and with a commit every commit queued behind it.
fn run(mut connection: Connection, queue: Receiver<Job>, store: Weak<Inner>) {
    let mut next = None;
    loop {
        let job = match next.take() {
            Some(job) => job,
            None => match queue.recv() {
                Ok(job) => job,
                Err(_) => return,
            },
        };
        let Some(inner) = store.upgrade() else {
            if let Job::Commit { attempt, answer } = job {
                let _ = answer.send(Err(stopped(Operation::Commit, scope_of(&attempt))));
            }
            return;
        };
        match job {
            Job::Run(work) => {
                // A panic in the work drops its answer channel, which its caller reads as a
                // stopped writer; the connection stays usable (a transaction rolls back on drop).
                let _ = catch_unwind(AssertUnwindSafe(|| work(&inner, &mut connection)));
            }
            Job::Commit { attempt, answer } => {
                let mut group = vec![(attempt, answer)];
                while group.len() < MAX_GROUP {
                    match queue.try_recv() {
                        Ok(Job::Commit { attempt, answer }) => group.push((attempt, answer)),
                        Ok(other) => {
                            next = Some(other);
                            break;
                        }
                        Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
                    }
                }
                let outcomes = catch_unwind(AssertUnwindSafe(|| {
                    write_group(&inner, &mut connection, &group)
                }))
                .unwrap_or_else(|_| {
                    // A panic rolled the transaction back (it drops): nothing of the group is
                    // stored, and every commit in it is told so.
                    group
                        .iter()
                        .map(|(attempt, _)| Err(stopped(Operation::Commit, scope_of(attempt))))
                        .collect()
                });
                if outcomes.iter().any(Result::is_ok) {
                    inner.signal.raise();
                }
                for ((attempt, answer), outcome) in group.into_iter().zip(outcomes) {
                    let commit =
                        outcome.map(|checkpoint| Commit::from_attempt(attempt, checkpoint));
                    let _ = answer.send(commit);
                }
            }
        }
    }
}

type Answer = oneshot::Sender<Result<Commit, StoreError>>;

/// Writes a group of attempts: the checkpoint each was stored at, or why not. A group of
/// several is one transaction; if the database fails it (not an attempt's refusal: an I/O or
/// lock error), each attempt is written again on its own, so one attempt's failure is never
/// another's.
fn write_group(
    inner: &Inner,
    connection: &mut Connection,
    group: &[(CommitAttempt, Answer)],
) -> Vec<Result<u64, StoreError>> {
    let together = if group.len() == 1 {
        None
    } else {
        write_together(inner, connection, group).ok()
    };
    together.unwrap_or_else(|| {
        group
            .iter()
            .map(|(attempt, _)| write_alone(inner, connection, attempt))
            .collect()
    })
}

/// Every attempt of the group in one immediate transaction: the checkpoint each was stored at,
/// or the reason it was refused.
fn write_together(
    inner: &Inner,
    connection: &mut Connection,
    group: &[(CommitAttempt, Answer)],
) -> rusqlite::Result<Vec<Result<u64, StoreError>>> {
    let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut outcomes = Vec::with_capacity(group.len());
    for (attempt, _) in group {
        let outcome = match insert(inner, &tx, attempt)? {
            Ok(Some(checkpoint)) => Ok(checkpoint),
            Ok(None) => Err(refusal(inner, &tx, attempt)?),
            Err(answer) => Err(answer),
        };
        outcomes.push(outcome);
    }
    tx.commit()?;
    Ok(outcomes)
}

/// One attempt on its own: the single insert statement, atomic by itself, and a read
/// transaction to find out why when nothing went in.
fn write_alone(
    inner: &Inner,
    connection: &mut Connection,
    attempt: &CommitAttempt,
) -> Result<u64, StoreError> {
    let fail = |e: rusqlite::Error| StoreError::storage(Operation::Commit, scope_of(attempt), e);
    if let Some(checkpoint) = insert(inner, connection, attempt).map_err(fail)?? {
        return Ok(checkpoint);
    }
    let tx = connection.transaction().map_err(fail)?;
    Err(refusal(inner, &tx, attempt).map_err(fail)?)
}

/// Inserts the attempt's row if it follows the stream's head: the row's checkpoint, or `None`
/// when nothing went in. The inner error is the attempt's own (its payload does not encode).
fn insert(
    inner: &Inner,
    connection: &Connection,
    attempt: &CommitAttempt,
) -> rusqlite::Result<Result<Option<u64>, StoreError>> {
    let (headers, events) = match encode_payload(
        &attempt.tenant_id,
        &attempt.stream_id,
        &attempt.headers,
        &attempt.events,
    ) {
        Ok(payload) => payload,
        Err(error) => return Ok(Err(error)),
    };
    let inserted = connection
        .prepare_cached(&inner.sql.insert_commit)?
        .execute(params![
            attempt.tenant_id,
            attempt.stream_id,
            clamp(attempt.stream_revision),
            attempt.events.len() as i64,
            attempt.commit_id.as_bytes(),
            clamp(attempt.commit_sequence),
            stamp_to_micros(attempt.commit_stamp),
            headers,
            events,
            attempt.stream_type,
        ]);
    match inserted {
        // Only the writer thread inserts through this connection, so this is our row.
        Ok(1) => Ok(Ok(Some(
            u64::try_from(connection.last_insert_rowid()).unwrap_or_default(),
        ))),
        Ok(_) => Ok(Ok(None)),
        Err(rusqlite::Error::SqliteFailure(error, _))
            if error.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            Ok(Ok(None))
        }
        Err(error) => Err(error),
    }
}

/// Why an attempt was not stored: a duplicate, an attempt that does not follow the head, or a
/// sequence another commit took (then the conflict detector judges the commits from it on).
/// Runs inside a transaction, so the reads agree with each other.
fn refusal(
    inner: &Inner,
    connection: &Connection,
    attempt: &CommitAttempt,
) -> rusqlite::Result<StoreError> {
    let duplicate = connection
        .prepare_cached(&inner.sql.has_commit_id)?
        .query_row(
            params![
                attempt.tenant_id,
                attempt.stream_id,
                attempt.commit_id.as_bytes()
            ],
            |_| Ok(()),
        )
        .optional()?
        .is_some();
    let head: (i64, i64) = connection
        .prepare_cached(&inner.sql.head)?
        .query_row(params![attempt.tenant_id, attempt.stream_id], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?
        .unwrap_or((0, 0));
    match why_refused(attempt, duplicate, head) {
        Refused::Answer(error) => Ok(error),
        Refused::SequenceTaken => {
            let mut statement = connection.prepare_cached(&inner.sql.later_commits)?;
            let rows = statement.query_map(
                params![
                    attempt.tenant_id,
                    attempt.stream_id,
                    clamp(attempt.commit_sequence)
                ],
                raw_commit,
            )?;
            let mut later = Vec::new();
            for row in rows {
                match row?.decode() {
                    Ok(commit) => later.push(commit),
                    Err(damaged) => return Ok(damaged),
                }
            }
            Ok(resolve_taken_sequence(
                attempt,
                later,
                &inner.config.detector,
            ))
        }
    }
}
