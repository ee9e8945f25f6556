//! What every backend's store written by an earlier release (schema version 1 or 2) must do
//! once `initialize` has migrated it. Each backend's test writes such a store with that
//! release's DDL and one commit (tenant `t`, stream `s`, one `test.counter.incremented` event
//! `{"by":5}`), migrates it, checks the version it records, and calls [`check_migrated_store`].

use std::time::Duration;

use aett::{
    Commit, CommitAttempt, EventMessage, EventStore, Headers, Lease, LogEntry, LogFilter,
    StreamToSnapshot,
};
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
    assert_eq!(
        commits[0].stream_type, None,
        "an old commit records no stream type"
    );
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
        .commit(
            CommitAttempt::new(
                "t",
                "s",
                2,
                2,
                Headers::new(),
                vec![EventMessage::from_event(&Incremented { by: 1 }).unwrap()],
            )
            .with_stream_type("counter"),
        )
        .await
        .expect("the migrated store takes commits");
    assert_eq!(next.commit_sequence, 2);
    let typed: Vec<LogEntry> = store
        .get_filtered(0, &LogFilter::new().stream_type("counter"))
        .try_collect()
        .await
        .expect("read the log by stream type");
    assert_eq!(typed.len(), 1, "only the new commit records a type");
    assert_eq!(typed[0].stream_type(), Some("counter"));
    let lease = Lease::new("migrated-projection", Duration::from_secs(30));
    let position = store.acquire_lease(&lease).await.expect("checkpoints work");
    assert_eq!(position.checkpoint, 0);
    store
        .save_checkpoint(&lease, next.checkpoint, None)
        .await
        .expect("save a checkpoint");
    store.delete_stream("t", "s").await.expect("delete");
    let log: Vec<LogEntry> = store.get_from(0).try_collect().await.expect("read the log");
    assert!(
        matches!(log.as_slice(), [LogEntry::StreamDeleted(d)] if d.stream_type.as_deref() == Some("counter")),
        "{log:?}"
    );
}
