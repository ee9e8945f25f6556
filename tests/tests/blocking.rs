//! The blocking facade on every backend, from plain (non-async) tests.

use aett::{blocking, CommitAttempt, EventMessage, Headers, Saga, StoreError};
use aett_conformance::domain::{Counter, Fulfilment, Incremented, OrderPlaced};

fn exercise(store: &blocking::Store) {
    let stream = format!("blocking-{}", uuid::Uuid::new_v4());
    let commit = store
        .commit(CommitAttempt::new(
            "t",
            &stream,
            1,
            1,
            Headers::new(),
            vec![EventMessage::from_event(&Incremented { by: 4 }).unwrap()],
        ))
        .expect("commit");
    let read: Vec<_> = store
        .get("t", &stream, 0, u64::MAX)
        .collect::<Result<_, StoreError>>()
        .unwrap();
    assert_eq!(read, vec![commit.clone()]);
    let log: Vec<_> = store
        .get_tenant_from("t", commit.checkpoint - 1)
        .collect::<Result<_, StoreError>>()
        .unwrap();
    assert_eq!(
        log.first().and_then(aett::LogEntry::as_commit),
        Some(&commit)
    );

    let counters = blocking::AggregateRepository::new("t", store);
    let mut counter: Counter = counters.get(&stream).unwrap();
    assert_eq!(counter.total, 4);
    counter.add(6).unwrap();
    counters.save(&mut counter, Headers::new()).unwrap();
    counters
        .snapshot::<Counter>(&stream, 2, Headers::new())
        .unwrap();
    let total = counters
        .update(
            &stream,
            Headers::new(),
            3,
            |c: &mut Counter| -> Result<i64, aett::RepositoryError> {
                c.add(1).unwrap();
                Ok(c.total)
            },
        )
        .unwrap()
        .output
        .expect("the command ran");
    assert_eq!(total, 11);
    assert_eq!(
        store
            .get_snapshot("t", &stream, u64::MAX)
            .unwrap()
            .unwrap()
            .stream_revision,
        2
    );

    let (loaded, report) = counters.get_with_report::<Counter>(&stream).unwrap();
    assert_eq!(
        (
            loaded.total,
            report.snapshot_revision,
            report.events_replayed
        ),
        (11, Some(2), 1)
    );
    let stamped = counters
        .clone()
        .with_snapshot_policy(aett::SnapshotPolicy::EveryEvents(1))
        .with_snapshot_fallback(aett::SnapshotFallback::Error)
        .correlated(aett::Correlation::start("req-b"));
    let mut counter: Counter = stamped.get(&stream).unwrap();
    counter.add(2).unwrap();
    let request = uuid::Uuid::new_v4();
    let saved = stamped
        .save_with_id(&mut counter, Headers::new(), request)
        .unwrap()
        .expect("a commit");
    assert_eq!(saved.commit_id, request);
    assert_eq!(
        aett::Correlation::from_headers(&saved.headers),
        Some(aett::Correlation::start("req-b"))
    );
    assert_eq!(
        store
            .get_snapshot("t", &stream, u64::MAX)
            .unwrap()
            .unwrap()
            .stream_revision,
        4,
        "the policy snapshotted the instance just saved"
    );

    let sagas = blocking::SagaRepository::new("t", store);
    let mut saga: Fulfilment = sagas.get(&format!("{stream}-saga")).unwrap();
    saga.handle(OrderPlaced {
        order: "o".into(),
        amount: 1,
    });
    assert_eq!(sagas.save(&mut saga, Headers::new()).unwrap().len(), 1);
    store.delete_stream("t", &stream).unwrap();
    assert_eq!(store.get("t", &stream, 0, u64::MAX).count(), 0);
    store.purge("t").unwrap();
    assert_eq!(store.get_tenant_from("t", 0).count(), 0);
}

#[test]
fn the_blocking_facade_on_memory() {
    exercise(&blocking::connect("memory://").unwrap());
}

#[cfg(feature = "sqlite")]
#[test]
fn the_blocking_facade_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("blocking.db").display());
    exercise(&blocking::connect(&url).unwrap());
}

#[cfg(feature = "postgres")]
#[test]
fn the_blocking_facade_on_postgres() {
    let url = format!(
        "{}{}schema={}",
        aett_conformance::postgres::url(),
        if aett_conformance::postgres::url().contains('?') {
            "&"
        } else {
            "?"
        },
        aett_conformance::postgres::unique_schema()
    );
    exercise(&blocking::connect(&url).unwrap());
}
