//! Headers of one event (`raise_with_headers`) and of one command (`dispatch_with_headers`).

use std::sync::Arc;

use aett::{
    Aggregate, AggregateRepository, Headers, InMemoryStore, LogEntry, Saga, SagaRepository,
};
use aett_conformance::domain::{Counter, Fulfilment, Incremented, ShipOrder};
use futures::TryStreamExt;
use serde_json::json;

#[tokio::test]
async fn an_event_keeps_its_own_headers() {
    let store = Arc::new(InMemoryStore::new());
    let repo = AggregateRepository::new("t", &store);
    let mut counter: Counter = repo.get("c").await.unwrap();
    let mut own = Headers::new();
    own.insert("reason".into(), json!("refund"));
    counter.raise_with_headers(Incremented { by: 2 }, own);
    counter.raise(Incremented { by: 3 });
    let mut shared = Headers::new();
    shared.insert("user".into(), json!("ann"));
    repo.save(&mut counter, shared).await.unwrap();
    let log: Vec<LogEntry> = aett::CommitLog::get_from(&*store, 0)
        .try_collect()
        .await
        .unwrap();
    let LogEntry::Commit(commit) = &log[0] else {
        panic!("a commit")
    };
    assert_eq!(commit.headers.get("user"), Some(&json!("ann")));
    assert_eq!(
        commit.events[0].headers.get("reason"),
        Some(&json!("refund"))
    );
    assert!(commit.events[1].headers.is_empty());
    let loaded: Counter = repo.get("c").await.unwrap();
    assert_eq!(loaded.total, 5);
}

#[tokio::test]
async fn a_command_keeps_its_own_headers() {
    let store = Arc::new(InMemoryStore::new());
    let sagas = SagaRepository::new("t", &store);
    let mut saga: Fulfilment = sagas.get("f").await.unwrap();
    let mut own = Headers::new();
    own.insert("priority".into(), json!("high"));
    saga.dispatch_with_headers(ShipOrder { order: "o".into() }, own);
    let commands = sagas.save(&mut saga, Headers::new()).await.unwrap();
    assert_eq!(commands.len(), 1);
    assert_eq!(commands[0].headers.get("priority"), Some(&json!("high")));
    assert_eq!(commands[0].topic, "test.command.ship");
}
