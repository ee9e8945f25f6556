//! `AggregateRepository::update` and `update_async`: the aggregate and the command's output
//! come back, the command's error stays its own, an awaiting command, and idempotency keys.

use std::sync::Arc;

use aett::{
    Aggregate, AggregateRepository, Headers, InMemoryStore, RepositoryError, StoreError,
    UpdateError,
};
use aett_conformance::domain::Counter;
use uuid::Uuid;

#[tokio::test]
async fn an_update_returns_the_aggregate_and_the_output() {
    let store = Arc::new(InMemoryStore::new());
    let repo = AggregateRepository::new("t", &store);
    let updated = repo
        .update("c", Headers::new(), 3, |counter: &mut Counter| {
            counter.add(4)?;
            Ok::<_, &str>(counter.total * 10)
        })
        .await
        .unwrap();
    assert_eq!(updated.output, Some(40));
    assert_eq!(updated.aggregate.total, 4);
    assert_eq!(updated.attempts, 1);
    assert_eq!(updated.commit.unwrap().commit_sequence, 1);
    // The command's own error, with no conversion from the repository's.
    match repo
        .update("c", Headers::new(), 3, |counter: &mut Counter| {
            counter.add(0)
        })
        .await
    {
        Err(UpdateError::Command(error)) => assert_eq!(error, "zero"),
        other => panic!("expected the command's error, got {other:?}"),
    }
    let error = repo
        .update("c", Headers::new(), 3, |counter: &mut Counter| {
            counter.add(0)
        })
        .await
        .unwrap_err();
    assert_eq!(error.to_string(), "the command refused: zero");
}

#[tokio::test]
async fn a_command_can_await() {
    let store = Arc::new(InMemoryStore::new());
    let repo = AggregateRepository::new("t", &store);
    let (send, receive) = tokio::sync::oneshot::channel::<i64>();
    let mut receive = Some(receive);
    tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        send.send(7).unwrap();
    });
    let updated = repo
        .update_async(
            "c",
            Headers::new(),
            3,
            None,
            async |counter: &mut Counter| {
                // What another service answers.
                let by = receive.take().expect("run once").await.expect("an answer");
                counter.add(by)
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.aggregate.total, 7);
}

#[tokio::test]
async fn an_idempotency_key_stores_a_request_once() {
    let store = Arc::new(InMemoryStore::new());
    let repo = AggregateRepository::new("t", &store);
    let request = Uuid::new_v4();
    let mut runs = 0;
    for _ in 0..3 {
        let updated = repo
            .update_async(
                "c",
                Headers::new(),
                3,
                Some(request),
                async |c: &mut Counter| {
                    runs += 1;
                    c.add(5)
                },
            )
            .await
            .unwrap();
        assert_eq!(updated.commit.as_ref().unwrap().commit_id, request);
        assert_eq!(updated.aggregate.total, 5);
    }
    assert_eq!(runs, 1, "a retried request does not run the command again");
    let counter: Counter = repo.get("c").await.unwrap();
    assert_eq!((counter.total, counter.version()), (5, 1));

    // save_with_id: a repeat of the same attempt is success; the key stored as another commit
    // is a duplicate, and nothing is stored.
    let mut first: Counter = repo.get("d").await.unwrap();
    first.add(1).unwrap();
    let key = Uuid::new_v4();
    let commit = repo
        .save_with_id(&mut first, Headers::new(), key)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(commit.commit_id, key);
    let mut again: Counter = repo.get("d").await.unwrap();
    again.add(1).unwrap();
    match repo.save_with_id(&mut again, Headers::new(), key).await {
        Err(RepositoryError::Store(StoreError::DuplicateCommit { commit_id, .. })) => {
            assert_eq!(commit_id, key)
        }
        other => panic!("expected a duplicate commit, got {other:?}"),
    }
    let d: Counter = repo.get("d").await.unwrap();
    assert_eq!(d.total, 1);
}
