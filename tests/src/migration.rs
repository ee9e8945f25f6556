//! What every backend's store written by the first release (schema version 1) must do once
//! `initialize` has migrated it. Each backend's test writes such a store with that release's DDL
//! and one commit (tenant `t`, stream `s`, one `test.counter.incremented` event `{"by":5}`),
//! migrates it, checks the version it records, and calls [`check_migrated_store`].

use aett::{Commit, CommitAttempt, EventMessage, EventStore, Headers, LogEntry, StreamToSnapshot};
use futures::TryStreamExt;

use crate::domain::Incremented;

/// The first release's commit reads back, is in the index of stream heads, the stream goes on,
/// and deleting it leaves a notice in the log.
pub async fn check_migrated_store<S: EventStore + ?Sized>(store: &S) {
    store.initialize().await.expect("initialize again");
    let commits: Vec<Commit> = store
        .get("t", "s", 0, u64::MAX)
        .try_collect()
        .await
        .expect("read the first release's commit");
    assert_eq!(commits.len(), 1);
    assert_eq!(commits[0].events[0].body.get(), r#"{"by":5}"#);
    let heads: Vec<StreamToSnapshot> = store
        .streams_to_snapshot("t", 0)
        .try_collect()
        .await
        .expect("streams to snapshot");
    assert_eq!(
        heads
            .iter()
            .map(|h| (h.stream_id.as_str(), h.head_revision))
            .collect::<Vec<_>>(),
        vec![("s", 1)],
        "the migration fills the index of stream heads from the existing commits"
    );
    let next = store
        .commit(CommitAttempt::new(
            "t",
            "s",
            2,
            2,
            Headers::new(),
            vec![EventMessage::from_event(&Incremented { by: 1 }).unwrap()],
        ))
        .await
        .expect("the migrated store takes commits");
    assert_eq!(next.commit_sequence, 2);
    store.delete_stream("t", "s").await.expect("delete");
    let log: Vec<LogEntry> = store.get_from(0).try_collect().await.expect("read the log");
    assert!(
        matches!(log.as_slice(), [LogEntry::StreamDeleted(_)]),
        "{log:?}"
    );
}
