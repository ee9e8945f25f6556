//! With the `tracing` feature, commits, reads, replays and runner runs are spans; retries and a
//! runner's checkpoints are events.
#![cfg(feature = "tracing")]

use std::sync::{Arc, Mutex};

use aett::{AggregateRepository, Headers, RepositoryError};
use aett_conformance::domain::Counter;
use futures::TryStreamExt;
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// Records the names of the spans opened and the messages of the events emitted.
#[derive(Default, Clone)]
struct Recorder {
    seen: Arc<Mutex<Vec<String>>>,
    next: Arc<Mutex<u64>>,
}

struct Message<'a>(&'a mut String);

impl tracing::field::Visit for Message<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            *self.0 = format!("{value:?}");
        }
    }
}

impl Subscriber for Recorder {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, attributes: &Attributes<'_>) -> Id {
        self.seen
            .lock()
            .unwrap()
            .push(format!("span {}", attributes.metadata().name()));
        let mut next = self.next.lock().unwrap();
        *next += 1;
        Id::from_u64(*next)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut message = String::new();
        event.record(&mut Message(&mut message));
        self.seen.lock().unwrap().push(format!("event {message}"));
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

#[test]
fn commits_reads_replays_and_retries_are_traced() {
    let recorder = Recorder::default();
    tracing::subscriber::with_default(recorder.clone(), || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let url = format!("sqlite://{}", dir.path().join("traced.db").display());
            let store = aett::connect(&url).await.unwrap();
            let repo = AggregateRepository::new("t", &store);
            let mut first: Counter = repo.get("c").await.unwrap();
            let mut second: Counter = repo.get("c").await.unwrap();
            first.add(1).unwrap();
            repo.save(&mut first, Headers::new()).await.unwrap();
            second.add(2).unwrap();
            assert!(repo.save(&mut second, Headers::new()).await.is_err());
            let mut raced = false;
            repo.update(
                "c",
                Headers::new(),
                3,
                |c: &mut Counter| -> Result<(), RepositoryError> {
                    if !raced {
                        raced = true;
                        // Another writer commits between this load and its save.
                        let other = repo.clone();
                        std::thread::scope(|scope| {
                            scope.spawn(|| {
                                tokio::runtime::Builder::new_current_thread()
                                    .build()
                                    .unwrap()
                                    .block_on(async {
                                        let mut c: Counter = other.get("c").await.unwrap();
                                        c.add(5).unwrap();
                                        other.save(&mut c, Headers::new()).await.unwrap();
                                    })
                            });
                        });
                    }
                    c.add(3).expect("not zero");
                    Ok(())
                },
            )
            .await
            .unwrap();
            let log: Vec<_> = store.get_from(0).try_collect().await.unwrap();
            assert_eq!(log.len(), 3);
            aett::ProjectionRunner::new(&store, aett_conformance::read_side::Totals::default())
                .catch_up()
                .await
                .unwrap();
        });
    });
    let seen = recorder.seen.lock().unwrap().clone();
    for expected in [
        "span aett.commit",
        "span aett.read",
        "span aett.replay",
        "span aett.runner",
    ] {
        assert!(
            seen.iter().any(|s| s == expected),
            "no {expected} in {seen:?}"
        );
    }
    for expected in [
        "no snapshot",
        "concurrency conflict",
        "read finished",
        "runner started from its checkpoint",
        "checkpoint saved",
    ] {
        assert!(
            seen.iter()
                .any(|s| s.starts_with("event") && s.contains(expected)),
            "no event about {expected:?} in {seen:?}"
        );
    }
}
