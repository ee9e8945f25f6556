//! The check a backend whose checkpoints come from a server runs beside writers: a reader that
//! follows the log from the last checkpoint it saw sees every commit, once, in order.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use aett::{Commit, CommitAttempt, EventMessage, EventStore, Headers, LogEntry};
use futures::TryStreamExt;

use crate::domain::Incremented;

/// `writers` tasks each commit `commits` single-event commits to a stream of their own while a
/// reader follows `get_from`; the reader must see exactly what the log holds afterwards, in
/// checkpoint order, none twice, none skipped. Returns the log, for checks of the backend's own.
pub async fn a_reader_beside_writers_sees_every_commit<S: EventStore + 'static>(
    store: Arc<S>,
    writers: i64,
    commits: i64,
) -> Vec<Commit> {
    let tasks: Vec<_> = (0..writers)
        .map(|writer| {
            let store = store.clone();
            tokio::spawn(async move {
                for n in 1..=commits {
                    let attempt = CommitAttempt::new(
                        "t",
                        format!("w{writer}"),
                        n as u64,
                        n as u64,
                        Headers::new(),
                        vec![EventMessage::from_event(&Incremented {
                            by: writer * 10_000 + n,
                        })
                        .unwrap()],
                    );
                    store.commit(attempt).await.expect("commit");
                }
            })
        })
        .collect();
    let reader = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut seen: Vec<Commit> = Vec::new();
            let total = (writers * commits) as usize;
            let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
            while seen.len() < total && tokio::time::Instant::now() < deadline {
                let from = seen.last().map_or(0, |c| c.checkpoint);
                let batch: Vec<LogEntry> = store
                    .get_from(from)
                    .try_collect()
                    .await
                    .expect("read from checkpoint");
                seen.extend(batch.into_iter().filter_map(LogEntry::into_commit));
            }
            seen
        })
    };
    for task in tasks {
        task.await.expect("writer");
    }
    let seen = reader.await.expect("reader");
    let all: Vec<Commit> = store
        .get_from(0)
        .map_ok(|entry| entry.into_commit().expect("no stream is deleted here"))
        .try_collect()
        .await
        .expect("read all");
    assert_eq!(all.len(), (writers * commits) as usize);
    for pair in seen.windows(2) {
        assert!(
            pair[0].checkpoint < pair[1].checkpoint,
            "the reader saw checkpoints out of order"
        );
    }
    let seen_ids: HashSet<_> = seen.iter().map(|c| c.commit_id).collect();
    assert_eq!(seen_ids.len(), seen.len(), "the reader saw a commit twice");
    let missed: Vec<_> = all
        .iter()
        .filter(|c| !seen_ids.contains(&c.commit_id))
        .map(|c| c.checkpoint)
        .collect();
    assert!(
        missed.is_empty(),
        "the reader skipped {} commits, e.g. checkpoints {:?}",
        missed.len(),
        &missed[..missed.len().min(5)]
    );
    assert_eq!(seen, all);
    all
}
